"""SIGHUP re-reads the key store: a zone PIN key rotated by `authhost keys generate` while the
server runs is used from the signal on, without a restart and without dropping the link."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import trio
from conftest import free_port
from iso_client import Switch, next_stan
from test_e2e_auth import purchase
from test_e2e_crash import start_server, wait_for_port

from authhost.config import SecurityConfig
from authhost.security.module import SecurityModule
from authhost.security.pinblock import encrypt_pin_block


def newest_zpk(workdir) -> bytes:
    """The zone PIN key a switch would now use: the newest version in the key store."""
    config = SecurityConfig(key_store=str(workdir / "authhost-keys.json"), demo=True)
    return bytes.fromhex(SecurityModule.open(config, demo=True).demo_test_keys()["zpk"])


async def test_sighup_switches_to_a_rotated_zone_pin_key(tmp_path):
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        await wait_for_port(port, proc)
        card = json.loads((tmp_path / "demo-cards.json").read_text())["cards"][0]
        switch = await Switch.connect(port)

        async def with_pin_under(zpk: bytes) -> str:
            fields = purchase(card, 100, **{"11": next_stan()})
            fields["52"] = encrypt_pin_block(zpk, card["pin"], card["pan"]).hex()
            return (await switch.send(fields))["39"]

        old_zpk = newest_zpk(tmp_path)
        assert await with_pin_under(old_zpk) == "00"
        subprocess.run(
            [sys.executable, "-m", "authhost", "keys", "generate", "zpk", "--type", "zpk",
             "--new-version"],
            cwd=tmp_path, check=True, capture_output=True,
        )  # fmt: skip
        new_zpk = newest_zpk(tmp_path)
        assert new_zpk != old_zpk
        assert await with_pin_under(new_zpk) != "00"  # the server still has the old key

        proc.send_signal(signal.SIGHUP)
        with trio.fail_after(10):  # the reload runs in the server's own time
            while await with_pin_under(new_zpk) != "00":
                await trio.sleep(0.1)
        assert await with_pin_under(old_zpk) != "00"  # on the same connection, never dropped
        await switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
