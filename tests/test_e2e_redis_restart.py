"""Redis stopped under a serving host and started again, end to end.

A payment switch expects every request answered (91 or 96 within the deadline, never a hang or a
dropped connection) while Redis is down, ``/readyz`` to say so, and authorisations to approve
again once Redis is back without restarting the host. The restarted Redis loads the data it
saved on shutdown, as a persisted production Redis would.
"""

from __future__ import annotations

import subprocess
import uuid
from contextlib import suppress

import trio
from conftest import free_port, redis_command, redis_process
from iso_client import Switch
from test_e2e_auth import purchase, start_host
from test_server_health import until

from authhost.store import opened_store
from authhost.store.interface import JournalQuery


def stop(url: str, proc: subprocess.Popen[bytes]) -> None:
    """SHUTDOWN SAVE: Redis writes its dump and exits (the reply never comes: it closes)."""
    with suppress(OSError):
        redis_command(url, "SHUTDOWN", "SAVE")
    proc.wait(timeout=10)


async def test_redis_stopped_and_restarted_under_traffic(nursery, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    redis_port, metrics_port = free_port(), free_port()
    base = f"redis://127.0.0.1:{redis_port}/0"
    url = f"{base}?prefix=restart-{uuid.uuid4().hex[:8]}"
    with redis_process(redis_port, tmp_path) as first:
        host = await start_host(nursery, tmp_path, url, deadline_ms=500, metrics_port=metrics_port)
        switch = await Switch.connect(host.port)
        card = host.cards["active-visa"]
        assert (await switch.send(purchase(card)))["39"] == "00"
        await until(metrics_port, "/readyz", 200)
        stop(base, first)

    answered_down = []
    for _ in range(3):  # every request answered on the same connection, Redis down
        request = purchase(card)
        with trio.fail_after(5):
            response = await switch.send(request)
        assert response["39"] in ("91", "96"), response
        assert "38" not in response
        answered_down.append(request["11"])
    down = await until(metrics_port, "/readyz", 503)
    assert not down["store"]["ok"]

    with redis_process(redis_port, tmp_path):
        await until(metrics_port, "/readyz", 200)
        with trio.fail_after(5):
            approved = await switch.send(purchase(card))
        assert approved["39"] == "00", approved  # no restart of the host needed
        fresh = await Switch.connect(host.port)
        assert (await fresh.send(purchase(card)))["39"] == "00"

        # the requests answered while Redis was down reach the journal once it is back
        with trio.fail_after(15):
            while True:
                async with opened_store(url) as store:
                    entries = await store.journal(JournalQuery(limit=1000))
                stans = [e.stan for e in entries]
                if all(stan in stans for stan in answered_down):
                    break
                await trio.sleep(0.2)
        for stan in answered_down:
            assert stans.count(stan) == 1, stan


async def test_redis_restarted_empty_is_not_ready_and_declines_no_card_as_unknown(
    nursery, tmp_path, monkeypatch
):
    """A Redis that comes back without its data (no persistence, a failover to an empty
    replica, FLUSHALL) knows no card: before, every purchase was answered 14 (invalid card:
    with merchant advice, "do not try again") and ``/readyz`` said ready. Now the host knows
    its store's stamp is gone: it answers 96 and is not ready until the data is back."""
    monkeypatch.chdir(tmp_path)
    redis_port, metrics_port = free_port(), free_port()
    base = f"redis://127.0.0.1:{redis_port}/0"
    url = f"{base}?prefix=empty-{uuid.uuid4().hex[:8]}"
    saved = tmp_path / "saved"
    saved.mkdir()
    with redis_process(redis_port, saved) as first:
        host = await start_host(nursery, tmp_path, url, deadline_ms=500, metrics_port=metrics_port)
        switch = await Switch.connect(host.port)
        card = host.cards["active-visa"]
        assert (await switch.send(purchase(card)))["39"] == "00"
        await until(metrics_port, "/readyz", 200)
        stop(base, first)  # its data saved in `saved`, to bring back below

    empty = tmp_path / "empty"
    empty.mkdir()
    with redis_process(redis_port, empty) as second:
        with trio.fail_after(5):
            answered = await switch.send(purchase(card))
        assert answered["39"] == "96", answered  # never 14: the card is not known to be gone
        lost = await until(metrics_port, "/readyz", 503)
        assert "lost" in lost["store"]["error"], lost
        second.terminate()
        second.wait(timeout=10)

    with redis_process(redis_port, saved):  # the data restored: ready and approving again
        await until(metrics_port, "/readyz", 200)
        with trio.fail_after(5):
            assert (await switch.send(purchase(card)))["39"] == "00"
