"""PIN mailers over a running host, on both stores: `authhost pin generate` gives new cards
random PINs that leave authhost only as PIN blocks under the PIN mailer printer's key; the
printer's PIN (decrypted here with that test key, as the printer would) is the card's PIN at
the host from then on."""

from __future__ import annotations

import json
import stat

import pytest
from host_admin import cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import Host, purchase, store_url, with_pin  # noqa: F401 - fixture

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cards.track2 import build_track2
from authhost.security.module import SecurityModule
from authhost.security.pin_generation import is_weak, random_pin
from authhost.security.pinblock import decrypt_pin_block
from authhost.store import opened_store


async def new_cards(
    host: Host, count: int, product: str = "demo-visa-debit", account: str = "demo-acc-1"
) -> list[dict]:
    """Cards at created, without a PIN, issued while the host serves."""
    security = SecurityModule.open(host.config.security, demo=True)
    cards = []
    async with opened_store(host.store_url) as store:
        service = CardService(store, security, actor="e2e")
        for _ in range(count):
            card = await service.issue_card(
                rq.IssueCard(product_id=product, account_id=account, cardholder_name="NEW")
            )
            pan = security.decrypt_pan(await store.pan_ciphertext(card["card_id"]), card["card_id"])
            values = security.card_values(pan, card["expiry"], card["service_code"], "cvk")
            track2 = build_track2(pan, card["expiry"], card["service_code"], values.icvv)
            cards.append({**card, "pan": pan, "track2": track2, "currency": "978"})
    return cards


async def test_generated_pins_reach_the_printer_and_work_at_the_host(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    first, second, visa_3624 = await new_cards(host, 2) + await new_cards(host, 1, "demo-mc-3624")
    config = cli_config(tmp_path, store_url)
    mailers = tmp_path / "mailers.jsonl"
    code, output = await run_cli(
        "pin", "generate", "--all-created", "--out", str(mailers), "--config", str(config)
    )
    assert code == 0, output
    assert stat.S_IMODE(mailers.stat().st_mode) == 0o600
    records = {r["card_id"]: r for r in map(json.loads, mailers.read_text().splitlines())}
    # the demo's own card at created has no PIN either, and gets one: three new and one demo
    assert {first["card_id"], second["card_id"], visa_3624["card_id"]} <= set(records)
    printer_key = bytes.fromhex(SecurityModule.open(host.config.security, demo=True)
                                .demo_test_keys()["pin-mailer"])  # fmt: skip
    pins = {}
    for card in (first, second, visa_3624):
        record = records[card["card_id"]]
        assert record["pan"] == card["pan"] and record["pin_block_format"] == "ISO-0"
        assert record["key"] == "pin-mailer" and len(record["kcv"]) == 6
        pin = decrypt_pin_block(printer_key, bytes.fromhex(record["pin_block"]), card["pan"])
        assert len(pin) == 4 and not is_weak(pin) and pin not in output
        pins[card["card_id"]] = pin

    for card in (first, visa_3624):  # ship, activate, and pay with the printer's PIN
        for action in ("ship", "activate"):
            done = await call(port, "POST", f"/v1/cards/{card['card_id']}/{action}")
            assert done.status == 200, done
        pin = pins[card["card_id"]]
        wrong = "1357" if pin != "1357" else "2468"
        assert (await switch.send(with_pin(purchase(card), host, card, pin)))["39"] == "00"
        assert (await switch.send(with_pin(purchase(card), host, card, wrong)))["39"] == "55"

    # a forgotten PIN: a new one replaces it, the old one stops working
    again = tmp_path / "again.jsonl"
    code, output = await run_cli(
        "pin", "generate", first["card_id"], "--out", str(again), "--config", str(config)
    )
    assert code == 0, output
    (record,) = map(json.loads, again.read_text().splitlines())
    new_pin = decrypt_pin_block(printer_key, bytes.fromhex(record["pin_block"]), first["pan"])
    if new_pin != pins[first["card_id"]]:
        old = with_pin(purchase(first), host, first, pins[first["card_id"]])
        assert (await switch.send(old))["39"] == "55"
    assert (await switch.send(with_pin(purchase(first), host, first, new_pin)))["39"] == "00"

    # refused, with nothing written: an existing file, a closed card
    code, output = await run_cli(
        "pin", "generate", second["card_id"], "--out", str(again), "--config", str(config)
    )
    assert code != 0 and "exists" in output
    closed = host.cards["closed"]
    cards = (await call(port, "GET", "/v1/cards?state=closed", token=AUDITOR_TOKEN)).json
    closed_id = cards["cards"][0]["card_id"]
    code, output = await run_cli("pin", "generate", closed_id, "--out", str(tmp_path / "c.jsonl"),
                                 "--config", str(config))  # fmt: skip
    assert code != 0 and "closed" in output and not (tmp_path / "c.jsonl").exists()
    assert closed["pan"] not in output
    audit = await call(port, "GET", f"/v1/audit?subject={first['card_id']}", token=AUDITOR_TOKEN)
    generated = [a for a in audit.json["audit"] if a["action"] == "pin.generate"]
    assert len(generated) == 2
    assert all(record["pin_block"] not in json.dumps(a) for a in generated)


@pytest.mark.parametrize("length", [4, 6, 12])
def test_random_pins_are_never_weak_and_use_every_digit(length):
    pins = [random_pin(length) for _ in range(2_000)]
    assert all(len(p) == length and p.isdigit() and not is_weak(p) for p in pins)
    assert {d for p in pins for d in p} == set("0123456789")
    # 2,000 draws from 10,000 values give about 1,813 distinct ones (1 - e^-0.2 of 10,000)
    assert len(set(pins)) > (1_700 if length == 4 else 1_990)


def test_weak_pins():
    for weak in ("0000", "1111", "1234", "3456", "9876", "8901", "2109", "999999", "012345"):
        assert is_weak(weak), weak
    for fine in ("1357", "2580", "1243", "9119", "4826"):
        assert not is_weak(fine), fine
