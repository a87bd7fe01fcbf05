"""A server keeps approving while an operator rotates the master key under it (it cannot read
the rotated key store, keeps the keys it has and logs once that it must be restarted with the
new key), and after the restart on the new key the demo card's PIN is approved and its stored
PAN decrypts from the SQLite store."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import trio
from conftest import free_port
from test_e2e_crash import wait_for_port
from test_e2e_key_changes import Terminal

from authhost.config import SecurityConfig
from authhost.security.module import SecurityModule
from authhost.store import opened_store

SAID = "the key store is now under another master key"


def serve(workdir: Path, port: int, master: str, log: Path) -> subprocess.Popen[bytes]:
    """``authhost serve --demo`` on the SQLite default, its master key in the environment,
    its log (stderr) in ``log``; the key store watched as by default."""
    env = {
        **os.environ,
        "AUTHHOST_MASTER_KEY": master,
        "AUTHHOST_ADMIN_PORT": "0",
        "AUTHHOST_SERVER_METRICS_PORT": "0",
        "AUTHHOST_SERVER_LOG_LEVEL": "WARNING",
    }
    env.pop("AUTHHOST_CONFIG", None)
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "authhost", "serve", "--demo", "--port", str(port)],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip


def module(workdir: Path, master: str) -> SecurityModule:
    config = SecurityConfig(key_store=str(workdir / "authhost-keys.json"), demo=True)
    return SecurityModule.open(config, env={"AUTHHOST_MASTER_KEY": master})


async def said_in(log: Path, text: str) -> None:
    with trio.fail_after(20):
        while text not in log.read_text():
            await trio.sleep(0.1)


async def test_a_server_serves_through_a_rotation_and_restarts_on_the_new_key(tmp_path):
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    new_file = tmp_path / "new-master.key"
    new_file.write_text(new + "\n")
    new_file.chmod(0o600)
    log = tmp_path / "server.log"
    port = free_port()
    proc = serve(tmp_path, port, old, log)
    try:
        await wait_for_port(port, proc)
        terminal = await Terminal.on_demo_host(tmp_path, port)
        zpk = bytes.fromhex(module(tmp_path, old).demo_test_keys()["zpk"])
        assert await terminal.pin_under(zpk) == "00"

        rotated = subprocess.run(
            [sys.executable, "-m", "authhost", "keys", "rotate-master-key",
             "--new-master-key-file", str(new_file)],
            cwd=tmp_path, capture_output=True, text=True, check=False,
            env={**os.environ, "AUTHHOST_MASTER_KEY": old},
        )  # fmt: skip
        assert rotated.returncode == 0, rotated.stderr
        assert "KCVs unchanged" in rotated.stdout

        await said_in(log, SAID)  # the watch met the file it cannot read
        for _ in range(3):
            assert await terminal.pin_under(zpk) == "00"  # on the keys it has
        proc.send_signal(1)  # SIGHUP: refused the same way, still serving
        await said_in(log, "reload failed")
        assert await terminal.pin_under(zpk) == "00"
        await terminal.switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    lines = [line for line in log.read_text().splitlines() if SAID in line]
    assert len(lines) == 2 and "restart it with the new master key" in lines[0], lines

    port = free_port()
    proc = serve(tmp_path, port, new, log)
    try:
        await wait_for_port(port, proc)
        terminal = await Terminal.on_demo_host(tmp_path, port)
        assert await terminal.pin_under(zpk) == "00"  # the same zone PIN key, the same PVV
        await terminal.switch.aclose()
        card = terminal.card
        hsm = module(tmp_path, new)
        async with opened_store(f"sqlite:///{tmp_path / 'authhost.db'}") as store:
            found = await store.find_card(hsm.pan_index(card["pan"]))
            assert found is not None
            blob = await store.pan_ciphertext(found.card_id)
        assert hsm.decrypt_pan(blob, found.card_id) == card["pan"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)

    text = log.read_text()
    for secret in (old, new, zpk.hex(), card["pan"]):
        assert secret.lower() not in text.lower()
