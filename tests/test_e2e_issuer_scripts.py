"""Issuer scripts over a running host, on both stores: the answer to an online chip request
carries commands for the chip (tag 72 of field 55), each with a MAC that pyemv, playing the
card, recomputes from the issuer master key for secure messaging (IMK-SMI): an application
block to a lost card, a PIN unblock after the PIN was unlocked, what an operator queued. The
card's results (tag 9F5B) in a later message are journalled."""

from __future__ import annotations

import json
import time
import warnings
from typing import Any

import pytest
from host_admin import card_id_of, cli_config, run_cli, start_host_with_admin
from iso_client import Switch, next_stan
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import (  # noqa: F401 - fixture
    Host,
    chip_read,
    field_90,
    purchase,
    store_url,
    with_pin,
    wrong_pins,
)

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cards.model import PinMethod
from authhost.cards.track2 import build_track2
from authhost.security import emv
from authhost.security.module import SecurityModule
from authhost.security.pinblock import encrypt_pin_block
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

with warnings.catch_warnings():  # pyemv builds TDES from cryptography's old location
    warnings.simplefilter("ignore")
    import pyemv

CARD_MAKERS = {10: pyemv.cvn.VisaCVN10, 16: pyemv.cvn.MasterCardCVN16,
               17: pyemv.cvn.MasterCardCVN17, 18: pyemv.cvn.VisaCVN18, 20: pyemv.cvn.MasterCardCVN20,
               21: pyemv.cvn.MasterCardCVN21, 22: pyemv.cvn.VisaCVN22}  # fmt: skip
HEADERS = {
    "application_block": bytes.fromhex("841E000008"),
    "application_unblock": bytes.fromhex("8418000008"),
    "pin_unblock": bytes.fromhex("8424000008"),
}


def chip_request(
    host: Host, card: dict[str, Any], fields: dict[str, Any], cvn: int, atc: int
) -> tuple[dict[str, Any], Any, bytes, bytes]:
    """``fields`` with a genuine chip's field 55; the card (pyemv, with the host's IMK-SMI, to
    check the commands as the chip would), its ARQC and its ATC."""
    fields, _, arqc = chip_read(host, card, fields, cvn, atc=atc)
    keys = {name: bytes.fromhex(host.keys[name]) for name in ("imk_ac", "imk_smi")}
    chip = CARD_MAKERS[cvn](
        iss_mk_ac=keys["imk_ac"], iss_mk_smi=keys["imk_smi"], iss_mk_smc=keys["imk_smi"],
        pan=card["pan"], psn="00",
    )  # fmt: skip
    return fields, chip, arqc, atc.to_bytes(2, "big")


def commands_in(reply: dict[str, Any]) -> tuple[bytes | None, list[bytes]]:
    """The answer's script identifier (9F18) and commands (86), from tag 72 of field 55."""
    if "55" not in reply:
        return None, []
    template = emv.parse_tlv(bytes.fromhex(reply["55"])).get("72")
    if template is None:
        return None, []
    identifier, commands, i = None, [], 0
    while i < len(template):
        if template[i : i + 2] == b"\x9f\x18":
            identifier, i = template[i + 3 : i + 3 + template[i + 2]], i + 3 + template[i + 2]
        else:
            assert template[i] == 0x86, template.hex()
            commands.append(template[i + 2 : i + 2 + template[i + 1]])
            i += 2 + template[i + 1]
    return identifier, commands


def expected_command(chip: Any, name: str, arqc: bytes, atc: bytes) -> bytes:
    header = HEADERS[name]
    return header + chip.generate_command_mac(command_header=header, tag_9f26=arqc, tag_9f36=atc)


async def unblocked_at_an_atm(
    switch: Any, host: Any, card: dict[str, Any], atc: int = 0x21
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A locked chip card's PIN unblock at an ATM with the right PIN (processing code 91):
    the request and its answer, which carries PIN UNBLOCK for the chip."""
    atm = purchase(card, **{"3": "910000", "4": "000000000000", "18": "6011"})
    atm, chip, arqc, atc_bytes = chip_request(host, card, atm, 10, atc=atc)
    atm = {k: v for k, v in with_pin(atm, host, card, card["pin"]).items() if k != "4"}
    reply = await switch.send(atm)
    assert reply["39"] == "00"
    assert commands_in(reply)[1] == [expected_command(chip, "pin_unblock", arqc, atc_bytes)]
    return atm, reply


async def journal_reasons(url: str) -> dict[str, str]:
    async with opened_store(url) as store:
        return {e.stan: e.reason_codes for e in await store.journal(JournalQuery(limit=1000))}


async def test_a_lost_chip_card_is_told_to_block_itself(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Declined 41, and the chip gets APPLICATION BLOCK so it refuses offline as well; a
    stripe read of the same card gets the 41 alone (there is no chip to talk to)."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    lost = host.cards["lost"]  # the demo Visa debit product: CVN 18, IMK-SMI "imk-smi"
    fields, chip, arqc, atc = chip_request(host, lost, purchase(lost), 18, atc=0x31)
    reply = await switch.send(fields)
    assert reply["39"] == "41"
    identifier, commands = commands_in(reply)
    assert commands == [expected_command(chip, "application_block", arqc, atc)]
    assert identifier is not None and identifier[:2] == atc
    assert "91" not in emv.parse_tlv(bytes.fromhex(reply["55"]))  # its cryptogram was not checked

    again = await switch.send(fields)  # the first answer lost: the switch sends it again
    assert again["39"] == "41" and commands_in(again) == (identifier, commands)

    stripe = await switch.send(purchase(lost))
    assert stripe["39"] == "41" and "55" not in stripe
    reasons = await journal_reasons(store_url)
    assert "chip.script_application_block" in reasons[fields["11"]]
    assert "chip.script_application_block" not in reasons[stripe["11"]]


async def test_queued_commands_go_once_with_the_next_accepted_cryptogram(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """An operator queues APPLICATION UNBLOCK on a Mastercard (CVN 16): a forged cryptogram
    gets 82 and nothing; the next genuine one gets 00, its ARPC and the command; the card's
    queue is then empty and the answer after carries no script."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-3624"]
    card_id = await card_id_of(port, card["pan"])
    path = f"/v1/cards/{card_id}/chip-scripts"
    queued = await call(port, "PUT", path, payload={"commands": ["application_unblock"]})
    assert queued.status == 200 and queued.json["chip_scripts"] == ["application_unblock"]

    fields, chip, arqc, atc = chip_request(host, card, purchase(card, amount=1_200), 16, 0x50)
    tags = emv.parse_tlv(bytes.fromhex(fields["55"]))
    tags["9F26"] = bytes(8)
    refused = await switch.send({**fields, "11": purchase(card)["11"],
                                 "55": emv.encode_tlv(tags).hex()})  # fmt: skip
    assert refused["39"] == "82" and commands_in(refused) == (None, [])

    reply = await switch.send(fields)
    assert reply["39"] == "00"
    answer = emv.parse_tlv(bytes.fromhex(reply["55"]))
    assert answer["91"] == chip.generate_arpc(tag_9f26=arqc, arpc_rc=b"00") + b"00"
    assert commands_in(reply)[1] == [expected_command(chip, "application_unblock", arqc, atc)]
    resent = await switch.send(fields)  # a retransmission: the same ARPC and command again
    assert resent["55"] == reply["55"] and resent["38"] == reply["38"]
    view = await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)
    assert view.json["chip_scripts"] == []

    after, _, _, _ = chip_request(host, card, purchase(card, amount=1_300), 16, 0x51)
    next_reply = await switch.send(after)
    assert next_reply["39"] == "00" and commands_in(next_reply) == (None, [])
    reasons = await journal_reasons(store_url)
    assert "chip.script_application_unblock" in reasons[fields["11"]]
    assert "chip.script_application_unblock" not in reasons[after["11"]]

    # the CLI queues two, and withdraws them again; wrong requests are refused with a reason
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli(
        "cards", "chip-scripts", card_id, "application_block,pin_unblock", "--config", str(config)
    )
    assert code == 0 and json.loads(output)["chip_scripts"] == ["application_block", "pin_unblock"]
    code, output = await run_cli("cards", "chip-scripts", card_id, "--config", str(config))
    assert code == 0 and json.loads(output)["chip_scripts"] == [], output
    bad = await call(port, "PUT", path, payload={"commands": ["format_the_chip"]})
    assert bad.status == 422
    restricted = await card_id_of(port, host.cards["restricted"]["pan"])  # no IMK-SMI
    refused_product = await call(
        port, "PUT", f"/v1/cards/{restricted}/chip-scripts", payload={"commands": ["pin_unblock"]}
    )
    assert refused_product.status == 409 and "imk_smi_name" in refused_product.json["error"]
    audit = await call(port, "GET", f"/v1/audit?subject={card_id}", token=AUDITOR_TOKEN)
    assert [e["action"] for e in audit.json["audit"]].count("card.chip_scripts") == 3


async def test_a_new_pin_for_a_locked_card_is_unblocked_on_the_chip_too(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A cardholder who locked the PIN and asks the bank for a new one: the host's count goes
    back to zero, and so must the chip's, as with an unlock (it was not: the chip kept
    refusing offline PIN at the till). A new PIN for a card not locked queues nothing."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]
    card_id = await card_id_of(port, card["pan"])
    wrong = "9999" if card["pin"] != "9999" else "8888"
    codes = [(await switch.send(with_pin(purchase(card), host, card, wrong)))["39"] for _ in "123"]
    assert codes == ["55", "55", "75"]
    new_pin = "2580" if card["pin"] != "2580" else "1470"
    block = encrypt_pin_block(host.zpk(), new_pin, card["pan"]).hex().upper()
    reset = await call(port, "PUT", f"/v1/cards/{card_id}/pin", payload={"pin_block": block})
    assert reset.status == 200, reset
    assert reset.json["pin_tries"] == 0 and reset.json["chip_scripts"] == ["pin_unblock"]

    fields, chip, arqc, atc = chip_request(host, card, purchase(card), 10, atc=0x20)
    reply = await switch.send(with_pin(fields, host, card, new_pin))
    assert reply["39"] == "00"
    assert commands_in(reply)[1] == [expected_command(chip, "pin_unblock", arqc, atc)]
    again = await call(port, "PUT", f"/v1/cards/{card_id}/pin", payload={"pin_block": block})
    assert again.status == 200 and again.json["chip_scripts"] == []  # not locked: nothing
    await switch.aclose()


async def test_a_reversed_answer_queues_its_commands_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The purchase whose answer carried the operator's APPLICATION UNBLOCK is reversed (the
    terminal never got the answer, so neither did the chip): its hold is released and the
    command is queued again, goes with the next genuine cryptogram, and only once; a repeat
    of the reversal queues nothing."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-3624"]
    card_id = await card_id_of(port, card["pan"])
    path = f"/v1/cards/{card_id}/chip-scripts"
    assert (
        await call(port, "PUT", path, payload={"commands": ["application_unblock"]})
    ).status == 200
    account = f"/v1/accounts/{card['account']}"
    before = (await call(port, "GET", account, token=AUDITOR_TOKEN)).json

    fields, chip, arqc, atc = chip_request(host, card, purchase(card, amount=1_200), 16, 0x60)
    reply = await switch.send(fields)
    assert reply["39"] == "00"
    assert commands_in(reply)[1] == [expected_command(chip, "application_unblock", arqc, atc)]
    view = await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)
    assert view.json["chip_scripts"] == []

    reversal = {**fields, "t": "0400", "11": next_stan(), "90": field_90(fields)}
    assert (await switch.send(reversal))["39"] == "00"
    view = await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)
    assert view.json["chip_scripts"] == ["application_unblock"]
    after = (await call(port, "GET", account, token=AUDITOR_TOKEN)).json
    assert after["open_to_buy"] == before["open_to_buy"], (before, after)  # hold released
    repeat = {**reversal, "11": next_stan()}
    assert (await switch.send(repeat))["39"] == "00"

    fields, chip, arqc, atc = chip_request(host, card, purchase(card, amount=1_300), 16, 0x61)
    reply = await switch.send(fields)
    assert commands_in(reply)[1] == [expected_command(chip, "application_unblock", arqc, atc)]
    fields, _, _, _ = chip_request(host, card, purchase(card, amount=1_400), 16, 0x62)
    assert commands_in(await switch.send(fields))[1] == []
    reasons = await journal_reasons(store_url)
    assert "reversal.chip_scripts_requeued" in reasons[reversal["11"]]
    assert "reversal.full" in reasons[reversal["11"]]
    assert "reversal.chip_scripts_requeued" not in reasons[repeat["11"]]


async def test_a_pin_unlocked_at_the_bank_or_the_atm_is_unblocked_on_the_chip(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The chip counts wrong offline PINs itself. Unlocking the PIN at the bank queues PIN
    UNBLOCK for the chip's next online request (Visa CVN 10 here); a PIN unblock at an ATM
    (processing code 91) carries it in its own answer."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]
    card_id = await card_id_of(port, card["pan"])
    [wrong] = wrong_pins(host, card)
    codes = [(await switch.send(with_pin(purchase(card), host, card, wrong)))["39"] for _ in "123"]
    assert codes == ["55", "55", "75"]
    unlocked = await call(port, "POST", f"/v1/cards/{card_id}/pin/unlock")
    assert unlocked.status == 200 and unlocked.json["chip_scripts"] == ["pin_unblock"]

    fields, chip, arqc, atc = chip_request(host, card, purchase(card), 10, atc=0x20)
    reply = await switch.send(with_pin(fields, host, card, card["pin"]))
    assert reply["39"] == "00"
    assert commands_in(reply)[1] == [expected_command(chip, "pin_unblock", arqc, atc)]

    for _ in "123":  # locked again: now unblocked at an ATM with the right PIN
        await switch.send(with_pin(purchase(card), host, card, wrong))
    atm, reply = await unblocked_at_an_atm(switch, host, card)

    # the ATM reverses the unblock (its answer may never have reached the chip): the PIN
    # UNBLOCK goes again with the chip's next online request, once
    reversal = {**atm, "t": "0400", "11": next_stan(), "90": field_90(atm)}
    assert (await switch.send(reversal))["39"] == "00"
    fields, chip, arqc, atc = chip_request(host, card, purchase(card), 10, atc=0x22)
    reply = await switch.send(with_pin(fields, host, card, card["pin"]))
    assert commands_in(reply)[1] == [expected_command(chip, "pin_unblock", arqc, atc)]
    fields, _, _, _ = chip_request(host, card, purchase(card), 10, atc=0x23)
    assert commands_in(await switch.send(with_pin(fields, host, card, card["pin"])))[1] == []
    assert "reversal.pin_unblock_requeued" in (await journal_reasons(store_url))[reversal["11"]]


@pytest.mark.parametrize("result, reason", [("20", "chip.script_performed"),
                                            ("11", "chip.script_failed")])  # fmt: skip
async def test_what_the_chip_did_with_a_script_is_journalled(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    result,
    reason,
):
    """Tag 9F5B of a later request (5 bytes a script: the result, the script identifier)."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    fields, _, _, _ = chip_request(host, card, purchase(card), 18, atc=0x60)
    tags = emv.parse_tlv(bytes.fromhex(fields["55"]))
    tags["9F5B"] = bytes.fromhex(result + "005F0001")  # the script sent with ATC 0x5F
    reply = await switch.send({**fields, "55": emv.encode_tlv(tags).hex()})
    assert reply["39"] == "00"
    assert reason in (await journal_reasons(store_url))[fields["11"]]


@pytest.mark.parametrize("name, cvn", [("active-visa", 18), ("active-3624", 16),
                                       ("active-credit", 10)])  # fmt: skip
async def test_a_pin_changed_at_the_atm_is_changed_on_the_chip_too(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    name,
    cvn,
):
    """Processing code 92 with chip data: the answer carries PIN CHANGE, the new PIN
    enciphered for the chip and MACed, exactly what pyemv's card expects
    (generate_pin_change_command); a refused change (a wrong current PIN) carries nothing."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards[name]
    new = "4826" if card["pin"] != "4826" else "4827"

    def change(current: str, atc: int) -> tuple[dict[str, Any], Any, bytes, bytes]:
        atm = purchase(card, **{"3": "920000", "4": "000000000000", "18": "6011"})
        fields, chip, arqc, atc_bytes = chip_request(host, card, atm, cvn, atc=atc)
        fields = with_pin(fields, host, card, current)
        fields["125"] = encrypt_pin_block(host.zpk(), new, card["pan"]).hex().upper()
        chip = CARD_MAKERS[cvn](
            iss_mk_ac=bytes.fromhex(host.keys["imk_ac"]),
            iss_mk_smi=bytes.fromhex(host.keys["imk_smi"]),
            iss_mk_smc=bytes.fromhex(host.keys["imk_smc"]), pan=card["pan"], psn="00",
        )  # fmt: skip
        return {k: v for k, v in fields.items() if k != "4"}, chip, arqc, atc_bytes

    refused, _, _, _ = change(new, 0x70)  # the current PIN is wrong
    reply = await switch.send(refused)
    assert reply["39"] == "55" and commands_in(reply)[1] == []

    fields, chip, arqc, atc = change(card["pin"], 0x71)
    reply = await switch.send(fields)
    assert reply["39"] == "00"
    expected = chip.generate_pin_change_command(pin=new, tag_9f26=arqc, tag_9f36=atc)
    assert commands_in(reply)[1] == [expected]
    assert new.encode() not in bytes.fromhex(reply["55"])  # enciphered, never in clear
    assert "chip.script_pin_change" in (await journal_reasons(store_url))[fields["11"]]

    again = await switch.send(fields)  # the first answer lost: the same PIN CHANGE again
    assert again["39"] == "00" and commands_in(again)[1] == [expected]
    [other] = wrong_pins(host, card, pin=new)  # a copy that swapped in another PIN
    altered = {**fields, "125": encrypt_pin_block(host.zpk(), other, card["pan"]).hex().upper()}
    reply = await switch.send(altered)
    assert reply["39"] == "00" and commands_in(reply)[1] == []  # the original answer, no PIN


async def test_a_resent_pin_change_is_no_way_to_test_pins(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A captured PIN change sent again with another new PIN (field 125) used to say, by
    carrying PIN CHANGE or not, whether that PIN is the card's, without counting a try: now
    each wrong one is a wrong PIN (journalled, counted), and a locked card is not checked."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    new = "4826" if card["pin"] != "4826" else "4827"
    atm = purchase(card, **{"3": "920000", "4": "000000000000", "18": "6011"})
    fields, _, _, _ = chip_request(host, card, atm, 18, atc=0x72)
    fields = with_pin(fields, host, card, card["pin"])
    fields["125"] = encrypt_pin_block(host.zpk(), new, card["pan"]).hex().upper()
    fields = {k: v for k, v in fields.items() if k != "4"}
    reply = await switch.send(fields)
    assert reply["39"] == "00" and len(commands_in(reply)[1]) == 1

    def resent_with(pin: str) -> dict[str, Any]:
        return {**fields, "125": encrypt_pin_block(host.zpk(), pin, card["pan"]).hex().upper()}

    guesses = wrong_pins(host, card, 3, pin=new)  # the card's PIN is new now
    for guess in guesses[:3]:  # the answer stays the original's, never with the script
        again = await switch.send(resent_with(guess))
        assert again["39"] == "00" and commands_in(again)[1] == []
    # three wrong: the PIN is locked; now even the right new PIN is not checked
    again = await switch.send(resent_with(new))
    assert again["39"] == "00" and commands_in(again)[1] == []
    assert (await switch.send(with_pin(purchase(card), host, card, new)))["39"] == "75"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    counted = [e for e in entries if e.reason_codes == "pin.change_replay_wrong"]
    assert len(counted) == 3 and {e.response_code for e in counted} == {"55"}
    assert all(e.pin_failed and e.hold_amount == 0 and not e.approval_code for e in counted)


async def add_chip_card(host: Host, cvn: int) -> dict[str, Any]:
    """An active card with a PIN on a new product of cryptogram version ``cvn``, issued while
    the host serves (its row as the demo export has them)."""
    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(host.store_url) as store:
        service = CardService(store, security, actor="e2e")
        product = rq.NewProduct(
            product_id=f"chip-cvn-{cvn}", issuer_id="e2e", name=f"CVN {cvn}", bin="541333"
            if cvn != 22 else "476173", pin_method=PinMethod.IBM3624 if cvn != 22
            else PinMethod.VISA_PVV, imk_ac_name="imk-ac", chip_cvn=cvn,
            imk_smi_name="imk-smi", imk_smc_name="imk-smc",
        )  # fmt: skip
        await service.create_product(product)
        account = f"chip-acc-{cvn}"
        await service.create_account(rq.NewAccount(account_id=account, balance=500_000))
        card = await service.issue_card(
            rq.IssueCard(product_id=product.product_id, account_id=account)
        )
        pan = security.decrypt_pan(await store.pan_ciphertext(card["card_id"]), card["card_id"])
        block = encrypt_pin_block(host.zpk(), "2580", pan)
        await service.set_pin(card["card_id"], rq.PinChange(pin_block=block.hex()))
        for action in ("ship", "activate"):
            await service.apply(card["card_id"], action)
        values = security.card_values(pan, card["expiry"], card["service_code"], "cvk")
    track2 = build_track2(pan, card["expiry"], card["service_code"], values.icvv)
    return {"pan": pan, "expiry": card["expiry"], "track2": track2, "pin": "2580",
            "currency": "978", "card_id": card["card_id"]}  # fmt: skip


@pytest.mark.parametrize("cvn", [17, 20, 21, 22])
async def test_the_newer_mastercard_and_visa_chips(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    cvn,
):
    """The newer cryptogram versions end to end (Mastercard 17, 20, 21; Visa 22): the ARQC checked (a forged one 82), the ARPC
    and a PIN change for the chip as pyemv's card computes them."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = await add_chip_card(host, cvn)
    keys = {name: bytes.fromhex(host.keys[name]) for name in ("imk_ac", "imk_smi", "imk_smc")}
    chip = CARD_MAKERS[cvn](
        iss_mk_ac=keys["imk_ac"], iss_mk_smi=keys["imk_smi"], iss_mk_smc=keys["imk_smc"],
        pan=card["pan"], psn="00",
    )  # fmt: skip

    def chip_fields(fields: dict[str, Any], atc: int) -> tuple[dict[str, Any], bytes]:
        tags = {
            "9F02": bytes.fromhex(fields["4"]), "9F03": bytes(6), "9F1A": bytes.fromhex("0276"),
            "95": bytes(5), "5F2A": bytes.fromhex("0978"),
            "9A": bytes.fromhex(time.strftime("%y%m%d", time.gmtime())), "9C": b"\x00",
            "9F37": bytes.fromhex("52BF4585"), "82": bytes.fromhex("3900"),
            "9F36": atc.to_bytes(2, "big"),
        }  # fmt: skip
        args = {f"tag_{t.lower()}": v for t, v in tags.items()}
        if cvn in (17, 21):  # M/Chip: KDI, CVN, CVR (6), dynamic number (2), counters (8)
            iad = bytes.fromhex(f"01{cvn:02X}A00003220000" + "0000" + "000000000000" + "00FF")
            arqc = chip.generate_ac(**args, cvr=iad[2:8], counters=iad[10:18])
        elif cvn == 20:
            iad = bytes.fromhex("0114A00003220000" + "0000")
            arqc = chip.generate_ac(**args, cvr=iad[2:8])
        else:
            iad = bytes.fromhex("06011603A0B800")
            arqc = chip.generate_ac(**args, tag_9f10=iad)
        tags.update({"9F10": iad, "5F34": b"\x00", "9F26": arqc})
        return {**fields, "55": emv.encode_tlv(tags).hex().upper()}, arqc

    fields, arqc = chip_fields(purchase(card, amount=2_000), 0x10)
    reply = await switch.send(fields)
    assert reply["39"] == "00"
    answer = emv.parse_tlv(bytes.fromhex(reply["55"]))
    if cvn == 17:
        assert answer["91"] == chip.generate_arpc(tag_9f26=arqc, arpc_rc=b"00") + b"00"
    elif cvn in (20, 21):
        arpc = chip.generate_arpc(tag_9f26=arqc, tag_9f36=b"\x00\x10", arpc_rc=b"00")
        assert answer["91"] == arpc + b"00"
    else:
        csu = bytes.fromhex("00800000")
        expected = chip.generate_arpc(tag_9f26=arqc, tag_9f36=b"\x00\x10", csu=csu)
        assert answer["91"] == expected + csu
    forged, _ = chip_fields(purchase(card, amount=2_000), 0x11)
    forged["55"] = forged["55"][:-16] + "0" * 16  # the ARQC is the last tag
    assert (await switch.send(forged))["39"] == "82"

    atm = purchase(card, **{"3": "920000", "4": "000000000000", "18": "6011"})
    atm, arqc = chip_fields(atm, 0x12)
    atm = {k: v for k, v in with_pin(atm, host, card, card["pin"]).items() if k != "4"}
    atm["125"] = encrypt_pin_block(host.zpk(), "7531", card["pan"]).hex().upper()
    reply = await switch.send(atm)
    assert reply["39"] == "00"
    expected = chip.generate_pin_change_command(pin="7531", tag_9f26=arqc, tag_9f36=b"\x00\x12")
    assert commands_in(reply)[1] == [expected]


async def test_a_script_the_chip_did_not_run_is_sent_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The chip reports (9F5B) that an earlier script of authhost's failed: its commands go
    with this answer again; reported in an advice, which carries nothing back to the chip,
    they wait on the card for its next online request."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-3624"]
    card_id = await card_id_of(port, card["pan"])
    fields, chip, arqc, atc = chip_request(host, card, purchase(card), 16, atc=0x40)
    tags = emv.parse_tlv(bytes.fromhex(fields["55"]))
    tags["9F5B"] = bytes.fromhex("11" + "003F0002")  # the unblock sent with ATC 0x3F: failed
    reply = await switch.send({**fields, "55": emv.encode_tlv(tags).hex()})
    assert reply["39"] == "00"
    assert commands_in(reply)[1] == [expected_command(chip, "application_unblock", arqc, atc)]
    assert "chip.script_failed" in (await journal_reasons(store_url))[fields["11"]]

    advice = purchase(card, amount=700, t="0220")
    tags = {"9F5B": bytes.fromhex("10" + "00410004"), "9F36": b"\x00\x41"}  # PIN unblock failed
    reply = await switch.send({**advice, "55": emv.encode_tlv(tags).hex()})
    assert reply["39"] == "00" and commands_in(reply) == (None, [])
    view = await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)
    assert view.json["chip_scripts"] == ["pin_unblock"]


def test_a_retransmission_resends_what_the_first_answer_carried() -> None:
    from authhost.auth.issuer_scripts import resent_commands
    from authhost.security.emv_scripts import ScriptCommand as C

    carried = ["00", "chip.script_pin_unblock", "chip.script_pin_change", "duplicate.replayed"]
    assert resent_commands(carried, cryptogram_verified=True) == (C.PIN_UNBLOCK,)
    assert resent_commands(carried, True, new_pin_is_the_cards=True) == (C.PIN_UNBLOCK,
                                                                        C.PIN_CHANGE)  # fmt: skip
    assert resent_commands(carried, cryptogram_verified=False) == ()
    blocked = ["card.lost", "chip.script_application_block"]
    assert resent_commands(blocked, cryptogram_verified=False) == (C.APPLICATION_BLOCK,)
