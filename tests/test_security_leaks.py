"""No clear PIN, PAN, PIN block or key in logs, error messages or reprs of the security module.

Runs every operation (good and bad inputs) with all logging captured at DEBUG, collects every
error message and repr, and searches them and the key store file for the secrets involved.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from authhost.cards.model import PinMethod
from authhost.config import SecurityConfig
from authhost.security import dukpt, pinblock, tr31
from authhost.security.errors import SecurityError
from authhost.security.module import SecurityModule

PAN = "4761739001010119"
PIN = "4739"
LONG_PIN = "473918"


def test_nothing_secret_is_logged_raised_or_shown(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    config = SecurityConfig(key_store=str(tmp_path / "keys.json"))
    hsm = SecurityModule.open(config, demo=True, env={})
    test_keys = hsm.demo_test_keys()
    zpk = bytes.fromhex(test_keys["zpk"])
    store = hsm.key_store
    secrets_seen = {
        "PAN": PAN,
        "PIN": PIN,
        **{f"key {e.name}": store.get(e.name).material.hex() for e in store.entries()},
    }
    master_file = Path(config.key_store + ".demo-master-key")
    secrets_seen["master key"] = master_file.read_text().splitlines()[-1]

    texts: list[str] = [repr(hsm), repr(store), *(repr(store.get(e.name)) for e in store.entries())]
    source = hsm.pin_source(None, None)
    block = pinblock.encrypt_pin_block(zpk, PIN, PAN)
    secrets_seen["PIN block"] = block.hex()
    wrong_block = pinblock.encrypt_pin_block(zpk, "1111", PAN)

    def attempt(call) -> None:
        try:
            texts.append(repr(call()))
        except (SecurityError, ValueError) as exc:
            texts.extend([str(exc), repr(exc)])

    index = hsm.pan_index(PAN)
    blob = hsm.encrypt_pan(PAN, "card-1")
    attempt(lambda: hsm.decrypt_pan(blob, "card-2"))
    attempt(lambda: hsm.decrypt_pan(blob[:-2], "card-1"))
    values = hsm.card_values(PAN, "2812", "201", "cvk")
    texts.append(repr(values))
    attempt(lambda: hsm.card_values(PAN, "2812", "201", "no-such-cvk"))
    attempt(lambda: hsm.card_values(PAN + "x", "2812", "201", "cvk"))
    pvv = hsm.pin_reference(block, PAN, source, PinMethod.VISA_PVV, "pvk", "1")
    for candidate in (block, wrong_block, block[:7], b"\x00" * 8, b"\x01" * 16):
        attempt(lambda c=candidate: hsm.verify_pin(c, PAN, source, "visa_pvv", "pvk", "1", pvv))
    long_block = pinblock.encrypt_pin_block(zpk, LONG_PIN, PAN)
    attempt(lambda: hsm.pin_reference(long_block, PAN, source, PinMethod.VISA_PVV, "pvk", "1"))
    attempt(lambda: hsm.pin_reference(b"\x00" * 8, PAN, source, PinMethod.IBM3624, "pvk", "1"))
    attempt(lambda: hsm.translate_pin(b"\x00" * 8, PAN, source, "zpk-aes"))
    attempt(
        lambda: hsm.verify_pin(block, PAN, hsm.pin_source(None, "9"), "ibm3624", "nope", "1", "0")
    )
    ksn = "FFFF9876543210E00001"
    dukpt_block = dukpt.terminal_encrypt_pin_tdes(bytes.fromhex(test_keys["bdk"]), ksn, PIN, PAN)
    attempt(
        lambda: hsm.verify_pin(
            dukpt_block, PAN, hsm.pin_source(ksn, None), "visa_pvv", "pvk", "1", pvv
        )
    )
    attempt(
        lambda: hsm.verify_pin(
            dukpt_block,
            PAN,
            hsm.pin_source("FFFF9876543210EFFFFF", None),
            "visa_pvv",
            "pvk",
            "1",
            pvv,
        )
    )
    texts.append(repr(hsm._cache))  # noqa: SLF001 - the cached keys and DUKPT hosts
    attempt(lambda: pinblock.encode("12a4", PAN))
    attempt(lambda: pinblock.decode(bytes.fromhex("041234FFFFFFFFFF"), "123"))
    attempt(lambda: tr31.unwrap(bytes(16), "B0080P0TE00E0000" + "00" * 32))
    attempt(lambda: hsm.mac_message(b"body " + PAN.encode(), "zpk"))

    shown = "\n".join([*texts, caplog.text]).upper()
    # long random hex (index, wrapped keys) could contain 4 digits by chance: keys only there
    hex_noise = "\n".join([index, Path(config.key_store).read_text()]).upper()
    # a 4-digit PIN turns up by chance inside random hex (key check values, generated keys:
    # about once in 200 runs); short secrets are looked for outside hex runs of 8 or more,
    # where a PIN written in clear would stand (a PIN block is looked for whole, below)
    outside_hex = re.sub(r"[0-9A-F]{8,}", " ", shown)
    for what, secret in secrets_seen.items():
        assert secret.upper() not in (shown if len(secret) >= 8 else outside_hex), f"{what} leaked"
        if len(secret) >= 16:
            assert secret.upper() not in hex_noise, f"{what} leaked"
    assert LONG_PIN not in shown


@pytest.mark.parametrize("pin", ["4739", "473918"])
def test_pin_block_errors_do_not_echo_input(pin: str) -> None:
    with pytest.raises(pinblock.PinBlockError) as info:
        pinblock.encode(pin + "x", "4761739001010119")
    assert pin not in str(info.value)
