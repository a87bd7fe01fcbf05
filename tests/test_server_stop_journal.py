"""A graceful stop journals every answered request, also those journalled off the response path.

Requests the server answers itself (an unknown message class: 12; a frame that does not
decode: 30) and the deadline's 91s are journalled by a background writer, so that no answer
waits for the store. A SIGTERM used to cancel that writer with its queue unwritten: the
switch had its answers, the journal lost them. Here the writer's period is set beyond the
test's length, so only the stop can write the queue: the test fails if the stop does not.
"""

from __future__ import annotations

import copy
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import iso8583
import pytest
import trio
from conftest import serve_process
from test_server_support import (
    BINARY_BITMAP_SPEC,
    SwitchClient,
    financial_fields,
    frame,
    free_port_number,
)

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

SCRIPT = """
import sys
import authhost.runtime
authhost.runtime.PENDING_FLUSH_S = 3600  # the background writer never runs in this test
port = sys.argv[1]
sys.argv = ["authhost", "serve", "--demo", "--port", port]
from authhost.cli.app import main
main()
"""


def _undecodable(stan: str) -> bytes:
    """A 0100 whose MTI and STAN read but whose field 41 is cut short: answered 30."""
    body, _ = iso8583.encode(copy.deepcopy(financial_fields("0100", stan)), BINARY_BITMAP_SPEC)
    body = bytes(body)
    return body[: body.index(b"TERM0001") + 4]


def _wait_for_port(proc: subprocess.Popen[str], port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
    raise AssertionError("authhost serve did not start")


async def _send_traffic(port: int, count: int) -> list[str]:
    """``count`` unknown-class requests (12) and ``count`` undecodable ones (30), all
    answered; the STANs of the answers."""
    answered = []
    async with SwitchClient.connect(("127.0.0.1", port)) as client:
        for i in range(count):
            await client.send(financial_fields("0300", f"{100 + i:06d}"))
            await client.send_raw(frame(_undecodable(f"{200 + i:06d}")))
        for _ in range(2 * count):
            response = await client.receive()
            assert response["39"] in ("12", "30"), response
            answered.append(response["11"])
    return answered


async def _journalled_stans(url: str) -> list[str]:
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=10_000))
    return [e.stan for e in entries]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'authhost.db'}"
    redis_url = request.getfixturevalue("redis_url")
    return f"{redis_url}?prefix=stop-{uuid.uuid4().hex[:8]}"


def test_sigterm_journals_what_the_background_writer_had_queued(
    tmp_path: Path, store_url: str
) -> None:
    port = free_port_number()
    proc = serve_process(tmp_path, ["-c", SCRIPT, str(port)], AUTHHOST_STORE_URL=store_url)
    try:
        _wait_for_port(proc, port)
        answered = trio.run(_send_traffic, port, 20)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    journalled = trio.run(_journalled_stans, store_url)
    assert sorted(journalled) == sorted(answered)  # one entry per answered request
    assert len(answered) == 40
