"""Faults in the store, end to end: a stalled store gives 91 at the deadline, a failing store
gives 96, and the host answers normally again as soon as the store recovers.

Each test has a redis-server of its own, since pausing or starving a shared one would disturb
the other tests.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from conftest import redis_command
from iso_client import Switch, next_stan
from test_e2e_auth import balances_of, field_90, purchase, start_host

from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def test_stalled_store_answers_91_at_the_deadline_then_recovers(
    nursery, tmp_path, monkeypatch, private_redis
):
    monkeypatch.chdir(tmp_path)
    url = f"{private_redis}?prefix=faults-{uuid.uuid4().hex[:8]}"
    host = await start_host(nursery, tmp_path, url, deadline_ms=300)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    assert (await switch.send(purchase(card)))["39"] == "00"

    assert redis_command(private_redis, "CLIENT", "PAUSE", "1500", "ALL") == "+OK"
    started = trio.current_time()
    stalled = purchase(card)
    response = await switch.send(stalled)
    assert response["39"] == "91"
    assert "38" not in response
    assert trio.current_time() - started < 1.2  # answered at the deadline, not after the pause

    await trio.sleep(1.5)
    assert (await switch.send(purchase(card)))["39"] == "00"
    await trio.sleep(1.0)  # the timed-out request's journal entry is written off the hot path
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    timed_out = [e for e in entries if e.stan == stalled["11"]]
    assert [(e.response_code, e.reason_codes) for e in timed_out] == [("91", "deadline")]
    # cut short before its commit, it held nothing: the switch's repeat is decided now
    assert (await switch.send(stalled))["39"] == "00"


async def test_failing_store_answers_96_and_the_host_lives_on(
    nursery, tmp_path, monkeypatch, private_redis
):
    monkeypatch.chdir(tmp_path)
    url = f"{private_redis}?prefix=faults-{uuid.uuid4().hex[:8]}"
    host = await start_host(nursery, tmp_path, url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]

    redis_command(private_redis, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    assert redis_command(private_redis, "CONFIG", "SET", "maxmemory", "1") == "+OK"
    refused = purchase(card)
    try:
        response = await switch.send(refused)
        assert response["39"] == "96"
        assert "38" not in response
    finally:
        redis_command(private_redis, "CONFIG", "SET", "maxmemory", "0")
    assert (await switch.send(purchase(card)))["39"] == "00"  # same connection, store back
    # the 96 the switch had is journalled once the store takes writes again
    with trio.fail_after(10):
        while True:
            async with opened_store(url) as store:
                entries = await store.journal(JournalQuery(limit=1000))
            answered = [
                (e.response_code, e.reason_codes) for e in entries if e.stan == refused["11"]
            ]
            if answered:
                break
            await trio.sleep(0.2)
    assert answered == [("96", "error")]
    # nothing was decided: the switch's repeat of that request is decided now, not answered
    # the journalled 96 again (a clearing file or dispute step run again is such a repeat)
    assert (await switch.send(refused))["39"] == "00"
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    assert sorted(e.response_code for e in entries if e.stan == refused["11"]) == ["00", "96"]


async def test_a_deadline_during_the_commit_answers_what_was_written_redis(
    nursery, tmp_path, monkeypatch, private_redis
):
    """Redis takes reads but holds writes (CLIENT PAUSE WRITE) past the deadline."""
    monkeypatch.chdir(tmp_path)
    url = f"{private_redis}?prefix=faults-{uuid.uuid4().hex[:8]}"

    async def hold_writes() -> None:
        assert redis_command(private_redis, "CLIENT", "PAUSE", "1200", "WRITE") == "+OK"

    await _late_commit_story(nursery, tmp_path, url, hold_writes)


async def test_a_deadline_during_the_commit_answers_what_was_written_sqlite(
    nursery, tmp_path, monkeypatch
):
    """Another connection holds the SQLite file's write lock past the deadline (WAL readers
    go on)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "authhost.db"

    async def hold_writes() -> None:
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")

        async def release() -> None:
            await trio.sleep(1.2)
            lock.execute("ROLLBACK")
            lock.close()

        nursery.start_soon(release)

    await _late_commit_story(nursery, tmp_path, f"sqlite:///{path}", hold_writes)


async def _late_commit_story(
    nursery: trio.Nursery,
    tmp_path: Path,
    url: str,
    hold_writes: Callable[[], Awaitable[None]],
) -> None:
    """The snapshot is read, the commit waits past the deadline. A commit that has started is
    never torn, so the answer is the approval it wrote, late, never a 91 beside a written
    hold; the journal has that one entry; the switch's repeat gets the same approval; the
    reversal a switch sends for an answer that came too late releases the hold."""
    host = await start_host(nursery, tmp_path, url, deadline_ms=300)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    assert (await switch.send(purchase(card)))["39"] == "00"  # scripts loaded, link warm

    await hold_writes()
    started = trio.current_time()
    late = purchase(card, amount=7_000)
    response = await switch.send(late)
    waited = trio.current_time() - started
    assert response["39"] == "00", response
    assert waited > 0.3  # it did wait for the write, past the deadline

    await trio.sleep(0.5)  # any entry queued off the hot path is written by now
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    answered = [(e.response_code, e.amount_minor) for e in entries if e.stan == late["11"]]
    assert answered == [("00", 7_000)]
    repeat = await switch.send(late)
    assert (repeat["39"], repeat["38"]) == ("00", response["38"])

    _, before = await balances_of(switch, card)
    reversal = {**late, "t": "0420", "11": next_stan(), "90": field_90(late)}
    assert (await switch.send(reversal))["39"] == "00"
    assert (await balances_of(switch, card))[1] == before + 7_000
