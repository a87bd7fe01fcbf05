"""Crash and restart: kill -9 the server process under load, start it again, and check that the
journal and the balance agree with every response the switch received, on both stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import trio
from conftest import free_port
from iso_client import Switch, next_stan
from test_e2e_auth import purchase

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

AMOUNT = 100


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'authhost.db'}"
    redis_url = request.getfixturevalue("redis_url")
    return f"{redis_url}?prefix=crash-{uuid.uuid4().hex[:8]}"  # shared Redis: own key space


def start_server(
    workdir: Path,
    port: int,
    store_url: str | None = None,
    *,
    workers: int = 1,
    settings: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``authhost serve --demo`` in ``workdir``: on its SQLite default, or on ``store_url``,
    with ``settings`` as AUTHHOST_* environment variables."""
    env = {
        **os.environ,
        **({"AUTHHOST_STORE_URL": store_url} if store_url else {}),
        **(settings or {}),
        "AUTHHOST_ADMIN_PORT": "0",
        "AUTHHOST_SERVER_METRICS_PORT": "0",
        "AUTHHOST_SERVER_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "authhost", "serve", "--demo", "--port", str(port)]
        + (["--workers", str(workers)] if workers > 1 else []),
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    with trio.fail_after(60):
        while True:
            assert proc.poll() is None, "authhost serve exited during start-up"
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.1)
                continue
            await stream.aclose()
            return


async def test_kill_during_load_then_restart_keeps_journal_and_balance_consistent(
    tmp_path, store_url
):
    port = free_port()
    proc = start_server(tmp_path, port, store_url)
    try:
        await wait_for_port(port, proc)
        card = json.loads((tmp_path / "demo-cards.json").read_text())["cards"][0]
        opening = int(card["available"])
        received: dict[str, tuple[str, str]] = {}  # stan -> (response code, approval code)

        async def client(stop: trio.Event) -> None:
            switch = await Switch.connect(port)
            try:
                while not stop.is_set():
                    fields = purchase(card, amount=AMOUNT, **{"11": next_stan()})
                    response = await switch.send(fields)
                    received[fields["11"]] = (response["39"], response.get("38", ""))
            except (EOFError, trio.BrokenResourceError, OSError):
                return  # the server died under us: what we received so far is what counts

        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(client, stop)
            while len(received) < 200:
                await trio.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            stop.set()
        assert len(received) >= 200

        proc = start_server(tmp_path, port, store_url)
        await wait_for_port(port, proc)
        switch = await Switch.connect(port)
        inquiry = await switch.send(purchase(card, **{"3": "310000", "4": None, "11": next_stan()}))
        at = inquiry["54"].index("02978")
        available_now = int(inquiry["54"][at + 6 : at + 18])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=1_000_000))
    journal = {
        e.stan: e for e in entries if e.terminal_id == "TERM0001" and e.processing_code == "000000"
    }

    for stan, (code, approval) in received.items():
        if code == "91" and stan not in journal:
            continue  # a deadline's 91 goes out first and is journalled after: kill -9 between
        assert stan in journal, (
            f"a response the switch received is missing from the journal ({stan}: {code})"
        )
        assert journal[stan].response_code == code
        assert journal[stan].approval_code == approval
    approved_total = sum(e.amount_minor for e in journal.values() if e.response_code == "00")
    assert available_now == opening - approved_total
