"""A demo card's PIN changed over the wire outlives a restart of ``authhost serve --demo``.

Each start rewrites ``demo-cards.json``; it used to write the demo's original PINs back, so the
PIN a user had changed with ``authhost-sim send pin-change`` was lost from the file and the next
``--pin card`` purchase was declined 55. The file now keeps a card's PIN when the security module
verifies it against the card's PVV or offset. Real server processes in one directory, the real
simulator over TCP.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import free_port, serve_process
from typer.testing import CliRunner

from simulator.cli import app


def sim(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def start_demo(work: Path, port: int) -> subprocess.Popen[str]:
    proc = serve_process(work, ["-m", "authhost", "serve", "--demo", "--port", str(port)],
                         AUTHHOST_SERVER_LOG_LEVEL="WARNING")  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"authhost did not start: {proc.communicate()[1][-2000:]}")
            time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def pins(cards: Path) -> list[str | None]:
    return [card.get("pin") for card in json.loads(cards.read_text())["cards"]]


def test_a_pin_changed_over_the_wire_stays_in_the_demo_file_after_a_restart(tmp_path):
    cards = tmp_path / "demo-cards.json"
    port = free_port()
    proc = start_demo(tmp_path, port)
    try:
        original = pins(cards)
        new_pin = "9" * 4 if original[0] != "9999" else "8" * 4  # test PINs of demo cards
        changed = sim("send", "pin-change", "--cards", str(cards), "--card", "1", "--pin", "card",
                      "--new-pin", new_pin, "--port", str(port))  # fmt: skip
        assert "APPROVED: 00" in changed.output, changed.output
        assert pins(cards)[0] == new_pin
    finally:
        stop(proc)
    # a PIN in the file that is not the card's (edited by hand): the original comes back
    doc = json.loads(cards.read_text())
    doc["cards"][1]["pin"] = "0000" if original[1] != "0000" else "1111"
    cards.write_text(json.dumps(doc))

    port = free_port()
    proc = start_demo(tmp_path, port)  # the same directory: the file is written anew
    try:
        bought = sim("send", "purchase", "--cards", str(cards), "--card", "1", "--pin", "card",
                     "--amount", "1.00", "--port", str(port))  # fmt: skip
        assert "APPROVED: 00" in bought.output, bought.output  # it was 55: the old PIN
        assert pins(cards) == [new_pin, *original[1:]]
    finally:
        stop(proc)
