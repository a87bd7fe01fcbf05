"""Visa's fields over TCP on both stores (docs/iso.md, "Visa's fields"): a web purchase a
switch sends the VisaNet Base I way, with its e-commerce indicator in field 60 (60.8), its CAVV
in 126.9, its CVV2 in 126.10 and the billing address to verify in field 123, is decided as the
same purchase in field 48's subelements is, and answered in field 44 at Visa's positions
(44.2 the address, 44.10 the CVV2, 44.13 the CAVV, position 15); a retransmission gets the
same field 44; a malformed field 126, or one value sent in both layouts, is answered 30 and the
link lives on; neither the CVV2, the CAVV nor the address reaches a log or the store.

The requests are written here from docs/iso.md, not with authhost's encoder of them."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import trio
from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture
from test_e2e_three_ds import web_purchase as mastercard_web_purchase
from test_e2e_three_ds import wrong_cavv

from authhost.cards.velocity import Velocity
from authhost.models.context import context_from_row
from authhost.rules.dataset import USED_COLUMNS
from authhost.security.cavv import make_cavv
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

SHOP = "WEBSHOP00000126"
ECI = {"authenticated": "05", "attempted": "06", "none": "07"}


def field_126(*, cavv: bytes | None = None, cvv2: str | None = None, result: str = "1") -> str:
    """Visa's field 126 as docs/iso.md lays it out: its bitmap (16 hex characters), 126.9 (the
    CAVV, 40 hex characters), 126.10 (presence 1, response type, the CVV2 right-justified)."""
    bits, parts = 0, ""
    if cavv is not None:
        bits |= 1 << (64 - 9)
        parts += cavv.hex().upper()
    if cvv2 is not None:
        bits |= 1 << (64 - 10)
        parts += "1" + result + cvv2.rjust(4)
    return f"{bits:016X}" + parts


# 126.1 to 126.7 as docs/iso.md lays them out: bill payment data (customer name 25, customer
# address 57, biller address 57, biller telephone 18 characters), the Visa merchant identifier
# (8 characters), the cardholder's and merchant's SET certificate serial numbers (17 bytes each,
# 34 hex characters); 126.8, the XID, 20 bytes
BILL_PAYMENT = ("QUENTIN CARDHOLDER".ljust(25) + "7 ZEPHYR ROAD LONDON".ljust(57)
                + "NORTHERN POWER LEEDS".ljust(57) + "+44 113 496 0000".ljust(18))  # fmt: skip
MERCHANT_IDENTIFIER = "VMID0042"
CERTIFICATE = "10" + "0123456789ABCDEF" * 2  # 16 significant digits, then 16 bytes
XID = "AB" * 20


def field_126_in_full(cavv: bytes, cvv2: str) -> str:
    """Field 126 naming every subfield from 126.1 to 126.10 (bitmap FFC0...): what authhost
    reads past (bill payment data, merchant identifier, certificates, XID), then the CAVV and
    the CVV2 it checks."""
    before = BILL_PAYMENT + MERCHANT_IDENTIFIER + CERTIFICATE * 2 + XID
    return "FFC0000000000000" + before + cavv.hex().upper() + "11" + cvv2.rjust(4)


def visa_web(card: dict, amount: int = 1_000, **changes: Any) -> dict[str, Any]:
    """A web purchase the Visa way: key-entered (22 = 010), condition 59, no track 2; field 60
    says "non-authenticated e-commerce" (60.8 = 07) unless ``changes`` says otherwise."""
    web = {"18": "5999", "22": "010", "25": "59", "35": None, "41": "WEB00126", "42": SHOP,
           "60": "010000000700"}  # fmt: skip
    return purchase(card, amount, **{**web, **changes})


def pos_information(authentication: str) -> str:
    return "01000000" + ECI[authentication] + "00"  # 60.8 at positions 9-10


def cavv_of(key_hex: str, card: dict, *, attempt: bool = False) -> bytes:
    atn = f"{int.from_bytes(os.urandom(8), 'big') % 10**16:016d}"
    return make_cavv(bytes.fromhex(key_hex), card["pan"], atn=atn, attempt=attempt).to_bytes()


def position(answer: dict, at: int) -> str:
    """The result code at position ``at`` (1-based) of the answer's field 44."""
    return answer.get("44", "")[at - 1 : at].strip()


def wrong_cvv2(card: dict) -> str:
    return "000" if card["cvv2"] != "000" else "111"


async def test_a_visa_web_purchase_with_a_good_cavv_is_approved_and_a_bad_one_declined(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url, visa_fields=True)
    switch = await Switch.connect(host.port)
    card, other, key = host.cards["active-visa"], host.cards["active-credit"], host.keys["cavv"]
    forger = os.urandom(16).hex()
    forged = wrong_cavv(key, forger, card, card)  # base64, as field 48 SE 43 carries it
    cases = [
        # 60.8, 126.9, response code, 44.13 (position 15)
        ("authenticated", cavv_of(key, card), "00", "2"),
        ("attempted", cavv_of(key, card, attempt=True), "00", "3"),
        ("authenticated", base64.b64decode(forged), "05", "1"),  # without the issuer's key
        ("authenticated", base64.b64decode(wrong_cavv(key, key, card, other)), "05", "1"),
    ]
    for claim, cavv, code, result in cases:
        answer = await switch.send(
            visa_web(card, **{"60": pos_information(claim), "126": field_126(cavv=cavv)})
        )
        assert (answer["39"], position(answer, 15)) == (code, result), claim
        assert len(answer["44"]) == 15 and position(answer, 13) == ""  # not field 48's place
        assert "48" not in answer and ("38" in answer) == (code == "00")
    # the same forged value in field 48's layout is declined with the same code
    mastercard = await switch.send(mastercard_web_purchase(card, 1_000, "212", forged))
    assert mastercard["39"] == "05" and position(mastercard, 13) == "1"
    plain = await switch.send(visa_web(card, **{"126": field_126(cvv2=card["cvv2"])}))
    assert plain["39"] == "00" and position(plain, 15) == ""  # no CAVV: no 44.13

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
        account = await store.get_account(entries[0].account_id)
    visa = sorted((e for e in entries if e.merchant_id == SHOP), key=lambda e: e.journal_id)
    assert [(e.response_code, e.authentication, e.cavv_result) for e in visa[:4]] == [
        (code, claim, result) for claim, _, code, result in cases
    ]
    assert visa[4].authentication == "none"  # 60.8 = 07: non-authenticated e-commerce
    assert {e.reason_codes.split(";")[0] for e in visa if e.response_code == "05"} == {
        "3ds.cavv_failed"
    }
    assert all(e.hold_amount == 0 for e in visa if e.response_code == "05")
    assert account is not None and account.holds >= 3 * 1_000


async def test_the_cvv2_of_126_10_is_checked_and_its_result_answered_in_44_10(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url, visa_fields=True)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    good = visa_web(card, **{"126": field_126(cvv2=card["cvv2"])})
    answer = await switch.send(good)
    assert (answer["39"], answer["44"]) == ("00", " " * 10 + "M")
    again = await switch.send(good)  # a retransmission: the same answer, field 44 included
    assert (again["39"], again["38"], again["44"]) == ("00", answer["38"], answer["44"])
    bad = await switch.send(visa_web(card, **{"126": field_126(cvv2=wrong_cvv2(card))}))
    assert (bad["39"], bad["44"]) == ("N7", " " * 10 + "N") and "38" not in bad
    unasked = visa_web(card, **{"126": field_126(cvv2=wrong_cvv2(card), result="0")})
    quiet = await switch.send(unasked)  # response type 0: field 39 only
    assert quiet["39"] == "N7" and "44" not in quiet
    not_on_card = await switch.send(visa_web(card, **{"126": "0040000000000000" + "90    "}))
    assert not_on_card["39"] == "00" and "44" not in not_on_card  # response type 0: unasked
    mastercard = await switch.send(visa_web(card, **{"60": None, "48": f"R9203{wrong_cvv2(card)}"}))
    assert mastercard["39"] == "N7" and "44" not in mastercard  # field 48: answered as before

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    results = [(e.response_code, e.cvv2_result) for e in entries if e.merchant_id == SHOP]
    assert sorted(results) == sorted(
        [("00", "M"), ("N7", "N"), ("N7", "N"), ("00", "S"), ("N7", "N")]
    )


def withheld_126(presence: str) -> str:
    """Field 126 with 126.10 alone: the merchant has no CVV2 to give (``presence`` 2: on the
    card but illegible; 9: not on the card), and wants the result in 44.10."""
    return "0040000000000000" + presence + "1    "


CVV2_RULES = Path(__file__).parent.parent / "examples" / "rules" / "cvv2_rules.toml"


async def test_a_cvv2_the_merchant_cannot_give_is_answered_s_and_rules_see_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Every card authhost issues has a CVV2: a merchant saying it is not on the card (126.10
    presence 9) or illegible (2) is answered S in 44.10 (Visa's "should be on the card"), which
    a rule may decline; a CVV2 sent with a card-present purchase (the stripe is the check) is
    answered P, not processed. Journalled, so a retransmission answers the same."""
    host = await start_host(
        nursery, tmp_path, store_url, visa_fields=True, rules=CVV2_RULES.read_text()
    )
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    small = visa_web(card, 1_000, **{"126": withheld_126("9")})
    answer = await switch.send(small)
    assert (answer["39"], position(answer, 11)) == ("00", "S")
    again = await switch.send(small)  # a retransmission: the same 44.10
    assert (again["39"], again["38"], again["44"]) == ("00", answer["38"], answer["44"])
    illegible = await switch.send(visa_web(card, 6_000, **{"126": withheld_126("2")}))
    assert (illegible["39"], position(illegible, 11)) == ("05", "S")  # CVV2-01: 50.00 and up
    given = await switch.send(visa_web(card, 6_000, **{"126": field_126(cvv2=card["cvv2"])}))
    assert (given["39"], position(given, 11)) == ("00", "M")  # the rule is about S alone
    present = purchase(card, 6_000, **{"42": SHOP, "126": field_126(cvv2=wrong_cvv2(card))})
    at_the_till = await switch.send(present)  # track 2 checked, the CVV2 is not: no N7
    assert (at_the_till["39"], position(at_the_till, 11)) == ("00", "P")

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    results = [(e.response_code, e.cvv2_result) for e in entries if e.merchant_id == SHOP]
    assert sorted(results) == sorted([("00", "S"), ("05", "S"), ("00", "M"), ("00", "P")])
    declined = next(e for e in entries if e.response_code == "05")
    assert "R-cvv2-withheld" in declined.reason_codes
    replayed = context_from_row(declined.as_row(), Velocity())  # what a backtest's rules see
    assert replayed.cvv2_result == "S" and "cvv2_result" in USED_COLUMNS


async def test_the_address_of_field_123_is_verified_and_answered_in_44_2(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    caplog,
):
    caplog.set_level(logging.INFO)
    host = await start_host(nursery, tmp_path, store_url, visa_fields=True)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]  # the demo's billing address: EC1A 1BB, 12 Lovelace St
    cavv = cavv_of(host.keys["cavv"], card)
    cases = [
        ("EC1A 1BB", "12 Lovelace Street", "Y"),
        ("SW1A 2AA", "12 Lovelace Street", "A"),
        ("SW1A 2AA", "10 Downing Street", "N"),  # approved all the same
    ]
    for postcode, street, result in cases:
        answer = await switch.send(visa_web(card, **{"123": postcode.ljust(9) + street}))
        assert (answer["39"], answer["44"]) == ("00", " " + result), (postcode, street)
        assert "48" not in answer  # not field 48 SE 83: asked in Visa's field, answered there
    everything = visa_web(card, **{"60": pos_information("authenticated"),
                                   "123": "EC1A 1BB 12 Lovelace Street",
                                   "126": field_126(cavv=cavv, cvv2=card["cvv2"])})  # fmt: skip
    answer = await switch.send(everything)
    assert (answer["39"], answer["44"]) == ("00", " Y        M   2")
    no_address = await switch.send(
        visa_web(host.cards["active-visa-low"], **{"123": "EC1A 1BB 12 X"})
    )
    assert no_address["44"] == " U"
    mastercard = await switch.send(visa_web(card, **{"60": None, "48": "R820252",
                                                     "120": "EC1A 1BB 12 Lovelace Street"}))  # fmt: skip
    assert mastercard["48"] == "R8301Y" and "44" not in mastercard  # the TCC, SE 83

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    answered = sorted((e for e in entries if e.merchant_id == SHOP), key=lambda e: e.journal_id)
    assert [e.avs_result for e in answered] == ["Y", "A", "N", "Y", "U", "Y"]
    logged = caplog.text
    for name in ("authhost.db", "authhost.db-wal"):  # the SQLite store's file (Redis: none)
        if (tmp_path / name).exists():
            logged += (tmp_path / name).read_bytes().decode("latin-1")
    for clear in ("EC1A 1BB", "Lovelace", "Downing", cavv.hex().upper(), cavv.hex()):
        assert clear not in logged
    assert field_126(cvv2=card["cvv2"])[16:] not in logged  # "11 " and the CVV2


async def test_a_malformed_field_126_is_answered_30_and_the_link_lives_on(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    caplog,
):
    caplog.set_level(logging.INFO)
    host = await start_host(nursery, tmp_path, store_url, visa_fields=True)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    cvv2_data = "11" + card["cvv2"].rjust(4)
    malformed = [
        "00C000000000000G" + "00" * 20 + cvv2_data,  # the bitmap is not hex
        "0040000000000000" + cvv2_data[:-1],  # 126.10 cut short
        "0040000000000000" + "11 12X",  # the CVV2 is not digits
        "0440000000000000" + "X" * 34 + cvv2_data,  # 126.6 (17 bytes) not hex
        "F040000000000000" + BILL_PAYMENT[:-1] + cvv2_data,  # 126.1-126.4 a character short
        "0040000000000000" + cvv2_data + "9",  # data no subfield accounts for
    ]
    for value in malformed:
        request = visa_web(card, **{"126": value})
        answer = await switch.send(request)
        assert (answer["t"], answer["11"], answer["39"]) == ("0110", request["11"], "30")
        assert "38" not in answer and "44" not in answer
    both = visa_web(card, **{"48": f"R9203{card['cvv2']}", "126": field_126(cvv2=card["cvv2"])})
    assert (await switch.send(both))["39"] == "30"  # one value in both layouts
    after = await switch.send(visa_web(card, **{"126": field_126(cvv2=card["cvv2"])}))
    assert (after["39"], after["44"]) == ("00", " " * 10 + "M")  # the same link lives on
    fresh = await Switch.connect(host.port)
    assert (await fresh.send(visa_web(card)))["39"] == "00"

    for _ in range(40):  # a 30 is journalled off the response path: wait for that write
        async with opened_store(store_url) as store:
            entries = await store.journal(JournalQuery(limit=100))
        refused = [e for e in entries if e.response_code == "30"]
        if len(refused) == len(malformed) + 1:
            break
        await trio.sleep(0.1)
    assert len(refused) == len(malformed) + 1
    assert all(e.reason_codes == "format" and e.hold_amount == 0 for e in refused)
    for value in malformed:  # the log names field 126, never its value
        assert value not in caplog.text and value[16:] not in caplog.text
    assert cvv2_data not in caplog.text


async def test_126_1_to_126_8_are_read_past_and_the_cavv_and_cvv2_after_them_checked(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    caplog,
):
    """Bill payment data, the Visa merchant identifier and SET certificate serial numbers
    (126.1-126.7) before 126.8-126.10 are read past by their layout: the CAVV and the CVV2
    after them are found and checked, a subfield after 126.10 left unread; one of them out of
    its layout is 30 and the link lives on. The cardholder's name and address never reach a
    log or the store."""
    caplog.set_level(logging.INFO)
    host = await start_host(nursery, tmp_path, store_url, visa_fields=True)
    switch = await Switch.connect(host.port)
    card, key = host.cards["active-visa"], host.keys["cavv"]
    authenticated = {"60": pos_information("authenticated")}
    full = field_126_in_full(cavv_of(key, card), card["cvv2"])
    good = await switch.send(visa_web(card, **authenticated, **{"126": full}))
    assert (good["39"], good["44"]) == ("00", " " * 10 + "M   2")
    wrong = field_126_in_full(cavv_of(key, card), wrong_cvv2(card))
    bad = await switch.send(visa_web(card, **authenticated, **{"126": wrong}))
    assert (bad["39"], position(bad, 11)) == ("N7", "N")  # declined before the CAVV step
    forged = base64.b64decode(wrong_cavv(key, os.urandom(16).hex(), card, card))
    declined = await switch.send(
        visa_web(card, **authenticated, **{"126": field_126_in_full(forged, card["cvv2"])})
    )
    assert (declined["39"], position(declined, 15)) == ("05", "1")
    bill = "F060000000000000" + BILL_PAYMENT + "11" + card["cvv2"].rjust(4) + "R"  # 1-4, 10, 11
    paid = await switch.send(visa_web(card, **{"126": bill}))
    assert (paid["39"], paid["44"]) == ("00", " " * 10 + "M")
    short = "0840000000000000" + MERCHANT_IDENTIFIER[:-1] + "11" + card["cvv2"].rjust(4)
    refused = await switch.send(visa_web(card, **{"126": short}))  # 126.5 a character short
    assert (refused["39"], "44" in refused) == ("30", False)
    assert (await switch.send(visa_web(card, **{"126": bill})))["39"] == "00"  # link lives

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    answered = sorted((e for e in entries if e.merchant_id == SHOP and e.response_code != "30"),
                      key=lambda e: e.journal_id)  # fmt: skip
    assert [(e.response_code, e.cvv2_result, e.cavv_result) for e in answered] == [
        ("00", "M", "2"), ("N7", "N", ""), ("05", "M", "1"), ("00", "M", ""), ("00", "M", "")]  # fmt: skip
    logged = caplog.text
    for name in ("authhost.db", "authhost.db-wal"):  # the SQLite store's file (Redis: none)
        if (tmp_path / name).exists():
            logged += (tmp_path / name).read_bytes().decode("latin-1")
    for clear in ("QUENTIN", "ZEPHYR", "NORTHERN POWER", "496 0000", MERCHANT_IDENTIFIER):
        assert clear not in logged


async def test_a_stand_in_advices_eci_is_journalled_as_a_requests_is(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A Visa stand-in advice (0120, 0220 and their repeats) carries the purchase's 60.8 as
    the request did: journalled as the advice's authentication; a field 60 out of Visa's
    layout, or 60.8 beside field 48 SE 42, is 30 there as in an 0100, and the link lives on."""
    host = await start_host(nursery, tmp_path, store_url, visa_fields=True)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    stand_in = {"39": "00", "38": "5T0126"}
    cases = [("0120", "authenticated", "0130"), ("0220", "attempted", "0230"),
             ("0121", "none", "0130"), ("0221", "authenticated", "0230")]  # fmt: skip
    sent = []
    for mti, claim, answered in cases:
        advice = visa_web(card, t=mti, **stand_in, **{"60": pos_information(claim)})
        answer = await switch.send(advice)
        assert (answer["t"], answer["39"]) == (answered, "00"), mti
        sent.append((mti, advice["11"], claim))
    mail_order = visa_web(card, t="0120", **stand_in, **{"60": "010000000100", "25": "08"})
    assert (await switch.send(mail_order))["39"] == "00"  # 60.8 = 01: not e-commerce
    broken = visa_web(card, t="0120", **stand_in, **{"60": "1410001STAND-IN"})
    assert (await switch.send(broken))["39"] == "30"  # Mastercard's DE 60: not Visa's layout
    both = visa_web(card, t="0220", **stand_in, **{"48": "R4203212"})
    assert (await switch.send(both))["39"] == "30"  # 60.8 and SE 42: one layout per value
    after = visa_web(card, t="0120", **stand_in, **{"60": pos_information("authenticated")})
    assert (await switch.send(after))["39"] == "00"  # the same link lives on

    async with opened_store(store_url) as store:
        entries = {(e.mti, e.stan): e for e in await store.journal(JournalQuery(limit=100))}
    assert [entries[(mti, stan)].authentication for mti, stan, _ in sent] == [
        claim for _, _, claim in sent
    ]
    assert entries[("0120", mail_order["11"])].authentication == ""
    assert entries[("0120", after["11"])].authentication == "authenticated"


@pytest.mark.parametrize("dialect", ["bcd-binary-bitmap", "ebcdic-binary-bitmap"])
async def test_visas_fields_in_other_dialects(nursery, tmp_path, monkeypatch, dialect):
    """The same fields from a jPOS BCD switch and an EBCDIC one: field 126's hex text in the
    dialect's characters, the answers' field 44 likewise."""
    monkeypatch.chdir(tmp_path)
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}",
                            dialect=dialect, visa_fields=True)  # fmt: skip
    switch = await Switch.connect(host.port, dialect)
    card = host.cards["active-visa"]
    cavv = cavv_of(host.keys["cavv"], card)
    good = await switch.send(visa_web(card, **{"60": pos_information("authenticated"),
                                               "123": "EC1A 1BB 12 Lovelace Street",
                                               "126": field_126(cavv=cavv, cvv2=card["cvv2"])}))  # fmt: skip
    assert (good["39"], good["44"]) == ("00", " Y        M   2")
    bad = await switch.send(visa_web(card, **{"126": field_126(cvv2=wrong_cvv2(card))}))
    assert (bad["39"], bad["44"]) == ("N7", " " * 10 + "N")
    broken = await switch.send(visa_web(card, **{"126": "0040000000000000" + "11 12X"}))
    assert broken["39"] == "30"
    assert (await switch.send(visa_web(card)))["39"] == "00"


async def test_a_listener_without_visa_fields_leaves_60_123_and_126_to_the_switch(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Other switches use fields 60, 123 and 126 for their own data (BASE24's terminal data in
    60, a private 126). A listener that does not read Visa's fields (the default) approves
    their purchase as before and answers no field 44; one that does reads them as Visa's:
    the same 60 is not digits there, 30."""
    own = {"60": "TERMDATA BASE24", "126": "PRIVATE USE 126", "123": "OUR OWN DATA"}
    plain = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(plain.port)
    card = plain.cards["active-visa"]
    answer = await switch.send(purchase(card, 1_200, **own))
    assert answer["39"] == "00" and "44" not in answer
    # a Visa-layout CVV2 the listener does not read: not checked (a wrong one is not N7)
    wrong = visa_web(card, 1_300, **{"126": field_126(cvv2=wrong_cvv2(card))})
    assert (await switch.send(wrong))["39"] == "00"

    visa_db = f"sqlite:///{tmp_path / 'visa.db'}"  # another host, on its own store
    visa = await start_host(nursery, tmp_path, visa_db, visa_fields=True)
    card = visa.cards["active-visa"]
    answer = await (await Switch.connect(visa.port)).send(purchase(card, 1_400, **own))
    assert answer["39"] == "30"
