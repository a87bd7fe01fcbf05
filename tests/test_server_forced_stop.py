"""A second SIGTERM stops the server even when a decision waits for a store write that cannot
be cancelled (found by a review).

The write lock of the SQLite file is held by another connection, as another program or a
stuck process would; a request comes in and its commit waits for the lock (SQLite's busy
timeout is 30 s, and the commit is shielded from cancellation so a decided request is
written). The first SIGTERM starts the graceful stop, the second, more than a second later,
must stop the process at once with exit 1 and remove its pid file: it used to wait for the
busy timeout. Real server process, real SQLite file, real TCP."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3

import trio
from conftest import free_port
from iso_client import Switch, next_stan
from test_e2e_auth import purchase
from test_e2e_crash import start_server, wait_for_port


async def test_a_second_sigterm_stops_a_server_whose_commit_waits_for_a_lock(tmp_path) -> None:
    port = free_port()
    settings = {"AUTHHOST_SERVER_DEADLINE_MS": "120000", "AUTHHOST_SERVER_SHUTDOWN_GRACE_S": "60"}
    proc = start_server(tmp_path, port, settings=settings)
    lock = None
    try:
        await wait_for_port(port, proc)
        pid_file = tmp_path / "authhost.pid"  # written once every listener is open: just after
        with trio.fail_after(10):
            while not pid_file.exists():
                await trio.sleep(0.05)
        assert pid_file.read_text().strip() == str(proc.pid)
        card = json.loads((tmp_path / "demo-cards.json").read_text())["cards"][0]
        lock = sqlite3.connect(tmp_path / "authhost.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # held until the test ends
        switch = await Switch.connect(port)
        async with trio.open_nursery() as nursery:

            async def ask() -> None:
                # no answer: the server was stopped
                with contextlib.suppress(EOFError, trio.BrokenResourceError, OSError):
                    await switch.send(purchase(card, **{"11": next_stan()}))

            nursery.start_soon(ask)
            await trio.sleep(1.0)  # the request reaches its commit, which waits for the lock
            proc.send_signal(signal.SIGTERM)
            await trio.sleep(1.5)  # a second signal counts after FORCE_AFTER_S
            proc.send_signal(signal.SIGTERM)
            # the bound is below SQLite's 30 s busy timeout, which the stop used to wait for
            code = await trio.to_thread.run_sync(lambda: proc.wait(timeout=20))
            nursery.cancel_scope.cancel()
        assert code == 1
        assert not (tmp_path / "authhost.pid").exists()
    finally:
        if lock is not None:
            lock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
