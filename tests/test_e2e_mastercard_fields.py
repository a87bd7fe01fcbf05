"""A Mastercard link over TCP, on both stores: every answer echoes the settlement date (15) and
the network data (63, the Banknet reference number) the network finds the transaction by, an
answer's field 48 starts with the request's transaction category code, and the network's own
0800 codes (echo test 270, group sign-on 061) are answered 00 with its prefix (2) and network
data (63) echoed (docs/iso.md, "Mastercard's fields")."""

from __future__ import annotations

import re
import time

import trio
from iso_client import Switch, next_stan
from test_e2e_auth import (  # noqa: F401
    chip_read,
    ecommerce,
    field_90,
    purchase,
    start_host,
    store_url,
)
from typer.testing import CliRunner

from authhost.iso.messages import TokenData
from authhost.iso.subfields import build_pan_mapping
from authhost.security import emv
from simulator.cli import app

BANKNET = "MCCA1B2C3   "  # DE 63: financial network code MCC, Banknet reference number
SETTLEMENT = "1126"  # DE 15, MMDD


def mastercard(fields: dict, tcc: str = "R", subelements: str = "") -> dict:
    """A request as Mastercard's network sends it: TCC-led field 48, fields 15 and 63."""
    return {**fields, "15": SETTLEMENT, "48": tcc + subelements, "63": BANKNET}


async def test_mastercard_answers_echo_15_and_63_and_lead_field_48_with_the_tcc(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url, merchant_advice=True)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    answers = []
    approved_request = mastercard(purchase(card), subelements="610510000")
    approved = await switch.send(approved_request)
    answers.append(approved)
    assert approved["39"] == "00" and "48" not in approved
    assert (approved.get("15"), approved.get("63")) == (SETTLEMENT, BANKNET)
    declined = await switch.send(mastercard(purchase(host.cards["lost"]), tcc="T"))
    answers.append(declined)
    # SE 84 after the TCC: "T840203", never "840203", which a TCC-first reader reads as TCC
    # "8" and a subelement "40" of 20 characters running past the end
    assert (declined["39"], declined["48"]) == ("41", "T840203")
    reversal = mastercard(
        purchase(card, t="0400", **{"39": "00", "90": field_90(approved_request)}), tcc="R"
    )
    answers.append(await switch.send(reversal))
    advice = mastercard(purchase(card, t="0120", **{"38": "ABC123", "39": "00"}))
    answers.append(await switch.send({**advice, "60": "1070000"}))  # DE 60: advice reason
    broken = await switch.send(mastercard(purchase(card), subelements="9209123"))
    answers.append(broken)  # a subelement that runs past the end of field 48
    assert [a["t"] + a["39"] for a in answers] == ["011000", "011041", "041000", "013000",
                                                   "011030"]  # fmt: skip
    for answer in answers:
        assert (answer.get("15"), answer.get("63")) == (SETTLEMENT, BANKNET), answer["t"]
    # the connection carries on after the 30, and a request without 15 and 63 gets neither
    plain = await switch.send(purchase(card))
    assert plain["39"] == "00" and "15" not in plain and "63" not in plain


async def test_mastercard_network_management_codes_and_echoes(nursery, tmp_path):
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}")
    switch = await Switch.connect(host.port)

    async def network(code: str, **fields: str) -> dict:
        return await switch.send(
            {"t": "0800", "7": "1126120000", "11": next_stan(), "33": "654321", "70": code,
             **fields}
        )  # fmt: skip

    echo = await network("270")  # Mastercard's echo test (network connection status)
    assert (echo["t"], echo["39"], echo["70"], echo["33"]) == ("0810", "00", "270", "654321")
    assert (await network("061"))["39"] == "00"  # sign-on by group
    assert (await network("062"))["39"] == "00"  # sign-off by group
    sign_on = await network("001", **{"2": "545454", "63": "MCCA1B2C3"})  # by prefix
    assert (sign_on["39"], sign_on["2"], sign_on["63"]) == ("00", "545454", "MCCA1B2C3")
    # a field 2 that could be a card number is never echoed, even in an 0810
    long = await network("001", **{"2": "5454545454545454"})
    assert long["39"] == "00" and "2" not in long
    assert (await network("999"))["39"] == "12"  # a code nobody defined is still refused


async def test_a_key_entered_or_stored_card_has_its_cvc2_checked_without_field_25(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Mastercard's mail and telephone orders and stored-card payments come with field 22 01x
    or 10x, the CVC 2 in field 48 SE 92 and what the channel is in DE 61, never field 25: with
    no stripe or chip read, the CVC 2 is the only check and a wrong one is declined N7."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    wrong = "000" if card["cvv2"] != "000" else "111"
    moto = "2032100000102761011"  # DE 61: cardholder not present (mail order), card absent

    def keyed(entry: str, cvc2: str) -> dict:
        fields = purchase(card, **{"14": card["expiry"], "22": entry, "35": None, "61": moto})
        return mastercard(fields, subelements="9203" + cvc2)

    answers = [await switch.send(keyed(entry, cvc2)) for entry in ("012", "102")
               for cvc2 in (card["cvv2"], wrong)]  # fmt: skip
    assert [a["39"] for a in answers] == ["00", "N7", "00", "N7"]
    # read beside a track 2, the stripe is the check: a CVV2 there is not processed
    present = await switch.send(mastercard(purchase(card), subelements="9203" + wrong))
    assert present["39"] == "00"


async def test_chip_data_that_vouches_for_nothing_leaves_the_cvv2_the_check(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A CVV2 beside a chip read is not processed because the chip's cryptogram is the check;
    a field 55 without a cryptogram (any tag will do), or for a product whose cryptograms are
    not checked, checks nothing: a card number without its CVV2 was approved by adding one."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card, unchecked = host.cards["active-visa"], host.cards["restricted"]  # no IMK-AC
    wrong = "000" if card["cvv2"] != "000" else "111"
    no_cryptogram = emv.encode_tlv({"9F33": bytes.fromhex("E0F8C8")}).hex().upper()
    online = await switch.send(ecommerce(card, wrong, **{"55": no_cryptogram}))
    assert online["39"] == "N7"
    keyed = {"22": "012", "35": None, "61": "2032100000102761011"}  # Mastercard's mail order
    moto = await switch.send(ecommerce(card, wrong, **{**keyed, "25": None, "55": no_cryptogram}))
    assert moto["39"] == "N7"
    wrong_there = "000" if unchecked["cvv2"] != "000" else "111"
    chip, _, _ = chip_read(host, unchecked, purchase(unchecked, **keyed), 18)
    assert (await switch.send({**chip, "48": "9203" + wrong_there}))["39"] == "N7"
    # a cryptogram the host checks is the check: the CVV2 beside it is not processed
    genuine, _, _ = chip_read(host, card, purchase(card, **keyed), 18)
    assert (await switch.send({**genuine, "48": "9203" + wrong}))["39"] == "00"


async def test_the_simulator_sends_mastercards_fields_and_shows_their_echoes(
    nursery, tmp_path, monkeypatch
):
    """``authhost-sim send --network mastercard``: the purchase and its reversal go with a
    TCC-led field 48, DE 15 and DE 63, and the answers printed carry them back."""
    monkeypatch.chdir(tmp_path)  # the demo export is written to the working directory
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}")

    def send(*args: str) -> str:
        options = ["--cards", "demo-cards.json", "--port", str(host.port)]
        result = CliRunner().invoke(app, ["send", *args, *options], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())  # as wrapped at the terminal's width

    printed = await trio.to_thread.run_sync(send, "reversal", "--network", "mastercard")
    settlement = time.strftime("%m%d", time.gmtime())
    # the two requests and their two answers, each row "│ number │ name │ value │"
    assert shown(printed, "15") == [settlement] * 4, printed[-1500:]
    references = shown(printed, "63")
    assert len(references) == 4 and len(set(references)) == 1  # the reversal names its original
    assert re.fullmatch(r"MCC[0-9A-F]{9}", references[0])
    assert shown(printed, "48") == ["TCC:R", "TCC:R"]  # a chip purchase, its reversal
    assert "APPROVED: 00" in printed
    web = await trio.to_thread.run_sync(
        send, "purchase", "--entry", "ecommerce", "--card", "1", "--network", "mastercard"
    )
    assert shown(web, "48") == ["TCC:T 92:***"] and len(shown(web, "63")) == 2
    plain = await trio.to_thread.run_sync(send, "purchase")
    assert "TCC" not in plain and not shown(plain, "15") and not shown(plain, "63")


def shown(printed: str, number: str) -> list[str]:
    """The values the simulator printed for field ``number``, requests and answers in order."""
    return re.findall(rf"│ {number} │ [^│]*│ ([^│]*?) │", printed)


async def test_a_refund_or_a_token_payment_is_not_declined_for_a_cvc2_that_is_not_the_cards(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Two CVC 2s the card's CVK cannot check, approved before the CVC 2 was checked without
    field 25 and declined N7 since: a refund's (money to the cardholder, credited even to a lost
    card: a wrong CVC 2 must not keep it from them, nor a refund answer tell a guesser which
    CVC 2 is right), and a wallet or card-on-file token's (field 48 SE 33: the merchant held the
    token, whose dynamic code is not the card's). Both are not processed: P."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    wrong = "000" if card["cvv2"] != "000" else "111"
    keyed = {"14": card["expiry"], "22": "012", "35": None, "61": "2032100000102761011"}
    refund = purchase(card, t="0200", **{**keyed, "3": "200000", "48": "T9203" + wrong})
    assert (await switch.send(refund))["39"] == "00"
    online = {**refund, "11": next_stan(), "22": "812", "25": "59"}  # the same, e-commerce
    assert (await switch.send(online))["39"] == "00"
    token = card["token"]
    mapping = build_pan_mapping(TokenData(token["pan"], token["expiry"], token["requestor_id"]))
    stored = {**keyed, "22": "102", "48": f"T33{len(mapping):02d}{mapping}9203{wrong}"}
    assert (await switch.send(purchase(card, **stored)))["39"] == "00"
    # the card's own number with a wrong CVC 2 is still declined
    assert (await switch.send(purchase(card, **{**keyed, "48": "T9203" + wrong})))["39"] == "N7"
