"""3-D Secure authentication values over TCP on both stores: a web purchase whose claim
(field 48 SE 42) comes with the issuer ACS's CAVV (SE 43) is approved and answered with the
CAVV result in field 44; a forged CAVV, or a genuine one of another card, is declined 05 and
moves no money; what is not a CAVV is reported as such; the journal keeps each result, a
retransmission gets the same answer, rules read the result, and a product without a CAVV key
leaves the merchant's claim as it was."""

from __future__ import annotations

import os

import trio
from host_admin import visa_at_host
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture

from authhost.iso.subfields import parse_additional_response
from authhost.security.cavv import make_cavv
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

WEB_MERCHANT = "WEBSHOP00000003"


def web_purchase(card: dict, amount: int, level: str, cavv: str | None) -> dict:
    """A web purchase with the card's CVV2, the security level indicator and the CAVV."""
    additional = f"92{len(card['cvv2']):02d}{card['cvv2']}42{len(level):02d}{level}"
    if cavv is not None:
        additional += f"43{len(cavv):02d}{cavv}"
    web = {"18": "5999", "22": "812", "25": "59", "35": None, "41": "WEB00003"}
    return purchase(card, amount, **web, **{"42": WEB_MERCHANT, "48": additional})


def cavv_for(key_hex: str, card: dict, *, attempt: bool = False) -> str:
    atn = f"{int.from_bytes(os.urandom(8), 'big') % 10**16:016d}"
    return make_cavv(bytes.fromhex(key_hex), card["pan"], atn=atn, attempt=attempt).to_text()


def wrong_cavv(
    key_hex: str, made_with: str, card: dict, for_card: dict, attempt: bool = False
) -> str:
    """A CAVV for ``card`` made with the key ``made_with`` for ``for_card``'s PAN whose 3-digit
    output is not the genuine one (by chance, 1 in 1,000, it would be: a forger's lucky guess
    is approved, as it should be, and a test drawing one at random would fail)."""
    while True:
        atn = f"{int.from_bytes(os.urandom(8), 'big') % 10**16:016d}"
        value = make_cavv(bytes.fromhex(made_with), for_card["pan"], atn=atn, attempt=attempt)
        genuine = make_cavv(bytes.fromhex(key_hex), card["pan"], atn=atn, attempt=attempt)
        if value.output != genuine.output:
            return value.to_text()


async def test_a_cavv_is_checked_and_a_forged_one_declined(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card, other = host.cards["active-credit"], host.cards["active-visa"]
    key = host.keys["cavv"]
    forger = os.urandom(16).hex()
    cases = [
        # claim, CAVV, response code, CAVV result (field 44 and journal)
        ("212", cavv_for(key, card), "00", "2"),
        ("211", cavv_for(key, card, attempt=True), "00", "3"),
        ("212", wrong_cavv(key, forger, card, card), "05", "1"),  # without the issuer's key
        ("211", wrong_cavv(key, forger, card, card, attempt=True), "05", "4"),
        ("212", wrong_cavv(key, key, card, other), "05", "1"),  # genuine, for another card
        ("212", "NOTACAVV", "00", "0"),  # not a CAVV: reported, not declined
        ("212", None, "00", ""),  # a claim without a value: nothing to check
    ]
    for level, cavv, code, result in cases:
        answer = await switch.send(web_purchase(card, 1_500, level, cavv))
        assert answer["39"] == code, (level, cavv, answer)
        assert parse_additional_response(answer.get("44")) == result
        assert ("38" in answer) == (code == "00")
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
        account = await store.get_account(entries[0].account_id)
    web = [e for e in entries if e.merchant_id == WEB_MERCHANT]
    assert [(e.response_code, e.cavv_result) for e in web] == [(c, r) for *_, c, r in cases]
    declined = [e for e in web if e.response_code == "05"]
    assert {e.reason_codes.split(";")[0] for e in declined} == {"3ds.cavv_failed"}
    assert all(e.hold_amount == 0 and e.approval_code == "" for e in declined)
    approved = sum(1 for *_, code, _ in cases if code == "00")
    assert account is not None and account.holds == approved * 1_500  # nothing held for 05s


async def test_a_retransmission_gets_the_same_cavv_result(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]
    request = web_purchase(card, 2_000, "212", cavv_for(host.keys["cavv"], card))
    first = await switch.send(request)
    again = await switch.send(request)
    assert first["39"] == again["39"] == "00" and first["38"] == again["38"]
    assert parse_additional_response(again.get("44")) == "2"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=10))
    assert [e.cavv_result for e in entries if e.merchant_id == WEB_MERCHANT] == ["2"]


UNPROVEN_CLAIM_RULE = """
[[rule]]
name = "3DS-01 claimed authentication without a verified value"
expression = "channel == 'ecommerce' and authentication == 'authenticated' and not authentication_verified"
action = "decline"
response_code = "65"
reason = "3ds.unproven"
"""


async def test_rules_read_the_cavv_result(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host = await start_host(nursery, tmp_path, store_url, rules=UNPROVEN_CLAIM_RULE)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]
    proven = await switch.send(web_purchase(card, 1_000, "212", cavv_for(host.keys["cavv"], card)))
    unproven = await switch.send(web_purchase(card, 1_000, "212", None))
    erroneous = await switch.send(web_purchase(card, 1_000, "212", "AAAA"))
    assert (proven["39"], unproven["39"], erroneous["39"]) == ("00", "65", "65")


async def test_the_cavv_key_is_set_on_a_live_product_over_the_admin_api(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Without a key the merchant's claim stands unchecked (nothing in field 44); a key that is
    not in the key store is refused and changes nothing; the key set again checks at once."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    card, path = at.visa, "/v1/products/demo-visa-debit"
    forged = cavv_for(os.urandom(16).hex(), card)
    assert (await at.switch.send(web_purchase(card, 1_000, "212", forged)))["39"] == "05"

    stopped = await call(at.port, "PATCH", path, payload={"cavv_key_name": ""})
    assert stopped.status == 200 and stopped.json["cavv_key_name"] == ""
    unchecked = await at.switch.send(web_purchase(card, 1_000, "212", forged))
    assert unchecked["39"] == "00" and "44" not in unchecked

    unknown = await call(at.port, "PATCH", path, payload={"cavv_key_name": "no-such-key"})
    assert unknown.status == 422 and "no-such-key" in unknown.json["error"]
    assert (await call(at.port, "GET", path)).json == stopped.json

    again = await call(at.port, "PATCH", path, payload={"cavv_key_name": "cavv"})
    assert again.status == 200
    assert (await at.switch.send(web_purchase(card, 1_000, "212", forged)))["39"] == "05"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=10))
    assert [(e.response_code, e.authentication, e.cavv_result) for e in entries] == [
        ("05", "authenticated", "1"),
        ("00", "authenticated", ""),
        ("05", "authenticated", "1"),
    ]


async def test_a_cavv_buys_one_purchase(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The authentication behind a CAVV is used up by the approval it was made for: the same
    value on a new purchase is declined 05, even two sent at once get one approval, while a
    retransmission is answered as the first, and a decline uses nothing up."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]
    copied = cavv_for(host.keys["cavv"], card)
    first = web_purchase(card, 1_000, "212", copied)
    assert (await switch.send(first))["39"] == "00"
    again = await switch.send(first)  # a retransmission: the first answer, not a reuse
    assert again["39"] == "00" and "38" in again
    reused = await switch.send(web_purchase(card, 1_000, "212", copied))
    assert reused["39"] == "05" and "38" not in reused
    assert parse_additional_response(reused.get("44")) == "2"  # the value itself is genuine

    declined_first = cavv_for(host.keys["cavv"], card)
    too_much = await switch.send(web_purchase(card, 900_000, "212", declined_first))
    assert too_much["39"] == "51"
    assert (await switch.send(web_purchase(card, 1_000, "212", declined_first)))["39"] == "00"

    racing = cavv_for(host.keys["cavv"], card)
    links = [await Switch.connect(host.port) for _ in range(4)]
    answers: list[str] = []

    async def send(link: Switch) -> None:
        answers.append((await link.send(web_purchase(card, 500, "212", racing)))["39"])

    async with trio.open_nursery() as together:
        for link in links:
            together.start_soon(send, link)
    assert sorted(answers) == ["00", "05", "05", "05"]

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
        account = await store.get_account(entries[0].account_id)
    refused = [e for e in entries if "3ds.cavv_reused" in e.reason_codes]
    assert len(refused) == 4 and all(e.response_code == "05" for e in refused)
    assert all(e.cavv_result == "2" and e.hold_amount == 0 for e in refused)
    assert account is not None and account.holds == 1_000 + 1_000 + 500  # three approvals
