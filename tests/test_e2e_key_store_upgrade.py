"""A server on a format-1 key store (the master key used directly) keeps serving while an
operator runs `authhost keys upgrade`, reads the upgraded file when it changes, and starts
again on it: the same demo card's PIN is approved throughout."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

from conftest import free_port
from test_e2e_crash import start_server, wait_for_port
from test_e2e_key_changes import Terminal, clear_keys
from test_security_keystore_format import write_format1

from authhost.security.keys import WorkingKey, generate_material
from authhost.security.keystore import DEMO_MARK, KeyStore, demo_master_path
from authhost.security.module import DEMO_KEYS


def format1_demo_store(workdir) -> None:
    """The demo key store and its demo master key, as the format-1 code left them."""
    master = secrets.token_bytes(32)
    path = workdir / "authhost-keys.json"
    keys = [WorkingKey(name, key_type, algorithm, generate_material(algorithm, length))
            for name, key_type, algorithm, length in DEMO_KEYS]  # fmt: skip
    write_format1(path, master, keys, demo=True)
    demo_key = demo_master_path(path)
    demo_key.write_text(f"{DEMO_MARK}\n{master.hex().upper()}\n")
    demo_key.chmod(0o600)


async def test_a_server_serves_across_the_upgrade_and_starts_on_the_upgraded_store(tmp_path):
    format1_demo_store(tmp_path)
    key_store = tmp_path / "authhost-keys.json"
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        await wait_for_port(port, proc)
        assert json.loads(key_store.read_text())["format"] == "authhost-keystore/1"  # as read
        terminal = await Terminal.on_demo_host(tmp_path, port)
        zpk = clear_keys(tmp_path)["zpk"]
        assert await terminal.pin_under(zpk) == "00"

        upgraded = subprocess.run(
            [sys.executable, "-m", "authhost", "keys", "upgrade"],
            cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert upgraded.returncode == 0, upgraded.stderr
        assert "from format 1 to format 2" in upgraded.stdout
        assert KeyStore.load(key_store, _demo_master(tmp_path)).file_format == 2
        assert clear_keys(tmp_path)["zpk"] == zpk  # the same keys
        assert await terminal.pin_under(zpk) == "00"

        await terminal.takes_a_rotated_zpk(tmp_path)  # seen only by reading format 2
        await terminal.switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)

    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        await wait_for_port(port, proc)
        terminal = await Terminal.on_demo_host(tmp_path, port)
        assert await terminal.pin_under(clear_keys(tmp_path)["zpk"]) == "00"  # the rotated one
        await terminal.switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _demo_master(workdir) -> bytes:
    text = demo_master_path(workdir / "authhost-keys.json").read_text()
    return bytes.fromhex(text.splitlines()[-1])
