"""Keys change while the server runs, without a restart and without dropping the link: a zone
PIN key rotated by `authhost keys generate` is used from a SIGHUP on (or within a second of the
key store changing, with security.watch_key_store), and a switch's key change (0800/161) on
one worker's connection is the key every worker reads PIN blocks with."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import trio
from conftest import free_port, serve_process
from iso_client import Switch, next_stan
from test_e2e_auth import purchase
from test_e2e_crash import start_server, wait_for_port

from authhost.config import SecurityConfig
from authhost.iso.subfields import build_additional_data
from authhost.security.blockcipher import tdes_ecb_encrypt
from authhost.security.keys import KeyAlgorithm, generate_material
from authhost.security.module import SecurityModule
from authhost.security.pinblock import encrypt_pin_block


def clear_keys(workdir) -> dict[str, bytes]:
    """The clear demo keys a switch would now use: the newest version of each."""
    config = SecurityConfig(key_store=str(workdir / "authhost-keys.json"), demo=True)
    keys = SecurityModule.open(config, demo=True).demo_test_keys()
    return {name: bytes.fromhex(value) for name, value in keys.items()}


def rotate_zpk(workdir) -> None:
    subprocess.run(
        [sys.executable, "-m", "authhost", "keys", "generate", "zpk", "--type", "zpk",
         "--new-version"],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip


def key_change(zmk: bytes, new_zpk: bytes) -> dict[str, str]:
    """A switch's 0800 key change: the new zone PIN key under the zone master key."""
    check = tdes_ecb_encrypt(new_zpk, bytes(8)).hex().upper()
    block = "PK0101" + tdes_ecb_encrypt(zmk, new_zpk).hex().upper() + check
    return {"t": "0800", "7": "1127120000", "11": next_stan(), "32": "123456", "70": "161",
            "48": build_additional_data({"11": block})}  # fmt: skip


class Terminal:
    """Requests with the demo card's PIN under a given zone PIN key, on one connection."""

    def __init__(self, switch: Switch, card: dict) -> None:
        self.switch, self.card = switch, card

    @classmethod
    async def on_demo_host(cls, workdir, port: int) -> Terminal:
        """A terminal with the first demo card, on a new connection to the demo host at
        ``port`` (its card file in ``workdir``)."""
        card = json.loads((workdir / "demo-cards.json").read_text())["cards"][0]
        return cls(await Switch.connect(port), card)

    async def pin_under(self, zpk: bytes) -> str:
        """A balance inquiry with the PIN: its PIN is checked as a purchase's is, and it counts
        against no limit, however many rounds a test waits (the demo card allows 20
        purchases a day)."""
        fields = purchase(self.card, **{"3": "310000", "4": None, "11": next_stan()})
        fields["52"] = encrypt_pin_block(zpk, self.card["pin"], self.card["pan"]).hex()
        return (await self.switch.send(fields))["39"]

    async def takes_a_rotated_zpk(self, workdir) -> None:
        """Rotate the zone PIN key in the key store file, then wait until the server (which
        only sees it by reading the file again) accepts PINs under the new one."""
        rotate_zpk(workdir)
        new_zpk = clear_keys(workdir)["zpk"]
        with trio.fail_after(10):
            while await self.pin_under(new_zpk) != "00":
                await trio.sleep(0.1)


async def test_sighup_switches_to_a_rotated_zone_pin_key(tmp_path):
    port = free_port()
    settings = {
        "AUTHHOST_SECURITY_WATCH_KEY_STORE": "false",
        "AUTHHOST_SECURITY_ZONE_KEY_OVERLAP_S": "0",  # the old key is refused at once
    }
    proc = start_server(tmp_path, port, settings=settings)
    try:
        await wait_for_port(port, proc)
        terminal = await Terminal.on_demo_host(tmp_path, port)
        old_zpk = clear_keys(tmp_path)["zpk"]
        assert await terminal.pin_under(old_zpk) == "00"
        rotate_zpk(tmp_path)
        new_zpk = clear_keys(tmp_path)["zpk"]
        assert new_zpk != old_zpk
        await trio.sleep(1.5)  # longer than the watcher's poll: it is off here
        assert await terminal.pin_under(new_zpk) != "00"  # the server still has the old key

        proc.send_signal(signal.SIGHUP)
        with trio.fail_after(10):  # the reload runs in the server's own time
            while await terminal.pin_under(new_zpk) != "00":
                await trio.sleep(0.1)
        assert await terminal.pin_under(old_zpk) != "00"  # on the same connection, never dropped
        await terminal.switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_a_rotated_key_is_picked_up_without_a_signal(tmp_path):
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        await wait_for_port(port, proc)
        terminal = await Terminal.on_demo_host(tmp_path, port)
        await terminal.takes_a_rotated_zpk(tmp_path)
        await terminal.switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_a_key_change_on_one_worker_is_used_by_every_worker(tmp_path):
    """Two workers share the port; the key change reaches one of them. Connections opened
    afterwards land on both (the kernel spreads them), and every one of them reads PIN blocks
    under the new key once the other worker has seen the key store change."""
    port = free_port()
    proc = start_server(tmp_path, port, workers=2)
    try:
        await wait_for_port(port, proc)
        card = json.loads((tmp_path / "demo-cards.json").read_text())["cards"][0]
        keys = clear_keys(tmp_path)
        new_zpk = generate_material(KeyAlgorithm.TDES, 16)
        switch = await Switch.connect(port)
        answer = await switch.send(key_change(keys["zmk"], new_zpk))
        assert (answer["t"], answer["39"], answer["70"]) == ("0810", "00", "161")
        assert "48" not in answer
        assert clear_keys(tmp_path)["zpk"] == new_zpk  # saved as the newest version
        terminal = Terminal(switch, card)
        assert await terminal.pin_under(new_zpk) == "00"  # at once, on the changing worker

        with trio.fail_after(20):
            while True:
                links = [Terminal(await Switch.connect(port), card) for _ in range(8)]
                codes = [await link.pin_under(new_zpk) for link in links]
                for link in links:
                    await link.switch.aclose()
                if codes == ["00"] * 8:
                    break
                await trio.sleep(0.2)
        await switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_a_broken_key_store_is_refused_by_a_reload_and_the_keys_in_use_stay(tmp_path):
    """An operator's half-edited key store and a SIGHUP: the reload is refused with the key
    store's own words on one line (it was a traceback), and PINs are read as before."""
    port = free_port()
    proc = serve_process(
        tmp_path, ["-m", "authhost", "serve", "--demo", "--port", str(port)],
        AUTHHOST_SECURITY_WATCH_KEY_STORE="false",
    )  # fmt: skip
    try:
        await wait_for_port(port, proc)
        terminal = await Terminal.on_demo_host(tmp_path, port)
        zpk = clear_keys(tmp_path)["zpk"]
        assert await terminal.pin_under(zpk) == "00"
        key_store = tmp_path / "authhost-keys.json"
        good = key_store.read_bytes()
        key_store.write_text('{"keys": ')
        proc.send_signal(signal.SIGHUP)
        assert proc.stderr is not None
        with trio.fail_after(30):
            while "reload" not in (line := await trio.to_thread.run_sync(proc.stderr.readline)):
                assert line, "the server exited"
            while "reload failed" not in line and "reload complete" not in line:
                line = await trio.to_thread.run_sync(proc.stderr.readline)
        refused = json.loads(line)
        assert refused["level"] == "ERROR", refused
        assert "cannot read the key store" in refused["msg"], refused
        assert "error" not in refused  # the key store's words, not a traceback
        assert await terminal.pin_under(zpk) == "00"  # the keys in use stay
        key_store.write_bytes(good)
        await terminal.switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
