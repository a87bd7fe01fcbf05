"""SQLite group commit: authorisation commits ready together share one transaction on the event
loop's own connection; a failing one is undone alone; a write lock held elsewhere is waited
for without blocking the loop, and handed to the writer thread when it stays held."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace

import trio
from test_store_contract import hold, seeded

from authhost.store import open_store, sqlite_group
from authhost.store.gathering import (
    GATHER_PASSES,
    Gathering,
    Waiter,
    let_others_join,
)
from authhost.store.interface import Movement, NotFound
from authhost.store.metrics import GroupCommitCollector
from authhost.store.sqlite_group import LOCK_RETRY_S, LOCK_TRIES


async def test_commits_ready_together_share_one_transaction(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    try:
        card, _ = await seeded(store, balance=100_000)
        results = {}

        async def one(n: int) -> None:
            results[n] = await store.commit(hold(card, n, 100))

        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(one, n)
        stats = store.group_commit_stats()
        assert stats.commits == 40 and stats.handed_over == 0
        assert stats.batches < 40  # they did share transactions
        assert all(r.funds_ok for r in results.values())
        assert len({r.journal.journal_id for r in results.values()}) == 40
        assert (await store.get_account("acc-1")).holds == 40 * 100
    finally:
        await store.close()


async def test_commits_that_arrive_while_a_batch_gathers_join_it(tmp_path, monkeypatch):
    """Under load the leader keeps gathering while each pass of the event loop brings more
    commits (requests read in the meantime): commits a pass behind the first still share its
    transaction (with one pass only, each would miss it unless trio happened to run it before
    the leader), and one that comes long after the gathering stopped leads its own."""
    # passes, not time, are under test: a slow machine's pass must not end the gathering
    monkeypatch.setattr(sqlite_group, "GATHER_MAX_S", math.inf)
    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    try:
        card, _ = await seeded(store, balance=100_000)

        async def one(n: int, passes_behind: int) -> None:
            for _ in range(passes_behind):
                await trio.lowlevel.checkpoint()
            await store.commit(hold(card, n, 100))

        async with trio.open_nursery() as nursery:
            for n, behind in enumerate([0, 0] + [1] * 10):
                nursery.start_soon(one, n, behind)
        stats = store.group_commit_stats()
        assert (stats.commits, stats.batches) == (12, 1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, 20, 0)
            nursery.start_soon(one, 21, 2 + GATHER_PASSES)  # long after: a batch of its own
        stats = store.group_commit_stats()
        assert (stats.commits, stats.batches) == (14, 3)
    finally:
        await store.close()


async def gathered(max_s: float) -> int:
    """How many a leader gathers while another task adds one commit every event-loop pass."""
    gathering: Gathering[Waiter] = Gathering()
    gathering.join(Waiter())  # the leader

    async def busy_requests() -> None:
        while True:
            gathering.join(Waiter())
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy_requests)
        await let_others_join(gathering, max_s=max_s)
        nursery.cancel_scope.cancel()
    return len(gathering)


async def test_a_gathering_stops_once_its_time_is_up():
    """A pass of a busy event loop can take long (every request read meanwhile decides before
    the leader runs again): once ``max_s`` has gone by, the leader stops gathering after the
    pass it is in, however many more keep coming; with time to spare it goes on for up to
    GATHER_PASSES passes while each brings more. Trio runs the two tasks of a pass in either
    order, so one pass gathers at most three (the leader and two), and the longer gathering
    is shown over many tries."""
    assert GATHER_PASSES == 4
    timed_out = [await gathered(max_s=0.0) for _ in range(30)]
    unhurried = [await gathered(max_s=math.inf) for _ in range(30)]
    assert max(timed_out) <= 3
    assert max(unhurried) >= 4


async def test_a_failing_commit_in_a_batch_is_undone_alone(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    try:
        card, _ = await seeded(store, balance=100_000)
        outcomes: dict[int, str] = {}

        async def one(n: int) -> None:
            commit = hold(card, n, 100)
            if n == 7:  # money from an account that does not exist
                commit = replace(commit, movement=Movement("acc-missing", commit.movement.kind, 5))
            try:
                await store.commit(commit)
                outcomes[n] = "ok"
            except NotFound:
                outcomes[n] = "not found"

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(one, n)
        assert outcomes.pop(7) == "not found"
        assert set(outcomes.values()) == {"ok"} and len(outcomes) == 19
        assert (await store.get_account("acc-1")).holds == 19 * 100
    finally:
        await store.close()


async def _commit_while_locked(tmp_path, held_s: float, until_handed_over: bool = False):
    """Commit while another connection holds the write lock for ``held_s``, or (with
    ``until_handed_over``) until the store has handed the commit to its writer thread: how
    long the leader's retries take depends on how busy the machine is."""
    path = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{path}")
    card, _ = await seeded(store, balance=100_000)
    other = sqlite3.connect(path, isolation_level=None)  # another process, as far as SQLite knows
    other.execute("BEGIN IMMEDIATE")
    result = None
    loop_ran = 0

    async def commit() -> None:
        nonlocal result
        result = await store.commit(hold(card, 1, 300))

    async def ticker() -> None:  # the event loop keeps running while the commit waits
        nonlocal loop_ran
        while result is None:
            loop_ran += 1
            await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(commit)
        nursery.start_soon(ticker)
        await trio.sleep(held_s)
        if until_handed_over:
            with trio.fail_after(30):
                while not store.group_commit_stats().handed_over:
                    await trio.sleep(0.001)
        assert result is None  # it cannot have committed while the lock was held
        other.execute("COMMIT")
    other.close()
    return store, result, loop_ran


async def test_a_briefly_held_lock_is_waited_for_on_the_loop(tmp_path):
    store, result, loop_ran = await _commit_while_locked(tmp_path, held_s=LOCK_RETRY_S * 3)
    try:
        assert result is not None and result.funds_ok
        assert loop_ran >= 1
        stats = store.group_commit_stats()
        assert (stats.commits, stats.handed_over) == (1, 0)
        assert stats.lock_waits >= 1  # it found the lock taken, waited, then wrote
        assert (await store.get_account("acc-1")).holds == 300
    finally:
        await store.close()


async def test_a_lock_held_long_sends_the_commit_to_the_writer_thread(tmp_path):
    held = LOCK_RETRY_S * LOCK_TRIES * 5
    store, result, loop_ran = await _commit_while_locked(tmp_path, held, until_handed_over=True)
    try:
        assert result is not None and result.funds_ok
        assert loop_ran >= 10  # the loop was never blocked by the wait
        stats = store.group_commit_stats()
        assert (stats.commits, stats.handed_over) == (0, 1)
        assert (await store.get_account("acc-1")).holds == 300
        families = {f.name: f.samples[0].value for f in GroupCommitCollector(store).collect()}
        assert families["authhost_sqlite_group_commit_handed_over"] == 1
        assert families["authhost_sqlite_group_commit_lock_waits"] == LOCK_TRIES
    finally:
        await store.close()
