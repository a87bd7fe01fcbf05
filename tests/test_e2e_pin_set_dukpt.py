"""A PIN set by the bank from a DUKPT device (a branch PIN pad): the admin API takes the block
with its KSN, 20 hex digits for TDES DUKPT or 24 for AES DUKPT (the AES one was refused as a
malformed request), and the card then pays with that PIN and not with the old one."""

from __future__ import annotations

import pytest
from host_admin import card_id_of, start_host_with_admin
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import purchase, store_url, with_pin  # noqa: F401 - fixture

from authhost.security import dukpt


@pytest.mark.parametrize("kind", ["tdes", "aes"])
async def test_a_pin_from_a_dukpt_pin_pad_is_set(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    kind,
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    card = host.cards["active-3624"]  # IBM 3624: any PIN length, every PIN told apart
    new_pin = "4826" if card["pin"] != "4826" else "4827"
    keys = host.runtime.security.demo_test_keys()
    if kind == "aes":
        ksn = "123456789012345600000007"
        block = dukpt.terminal_encrypt_pin_aes(bytes.fromhex(keys["bdk-aes"]), ksn, new_pin,
                                               card["pan"])  # fmt: skip
    else:
        ksn = "FFFF9876543210E00007"
        block = dukpt.terminal_encrypt_pin_tdes(bytes.fromhex(keys["bdk"]), ksn, new_pin,
                                                card["pan"])  # fmt: skip
    card_id = await card_id_of(port, card["pan"])
    body = {"pin_block": block.hex().upper(), "ksn": ksn}
    done = await call(port, "PUT", f"/v1/cards/{card_id}/pin", payload=body)
    assert done.status == 200, done
    switch = await Switch.connect(host.port)
    assert (await switch.send(with_pin(purchase(card), host, card, new_pin)))["39"] == "00"
    assert (await switch.send(with_pin(purchase(card), host, card, card["pin"])))["39"] == "55"
    await switch.aclose()
