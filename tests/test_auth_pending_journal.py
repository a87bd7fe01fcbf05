"""Journal entries of requests answered off the pipeline (rejected frames, deadline 91s): the
server queues them and ``flush_pending`` writes them in batches. Nothing is lost while the
store fails, and past the queue's bound what is dropped is counted and logged."""

from __future__ import annotations

import logging

import pytest
import trio
from conftest import redis_server
from prometheus_client import CollectorRegistry, generate_latest

from authhost.auth.service import PENDING_BATCH, AuthService
from authhost.store import open_store
from authhost.store.interface import JournalQuery
from authhost.store.metrics import PendingJournalCollector


def _service(store) -> AuthService:
    # the queue never touches the security module or the pipeline: rejected frames carry no PAN
    return AuthService(store, None, None, None)


def _scrape(service: AuthService) -> str:
    registry = CollectorRegistry()
    registry.register(PendingJournalCollector(service))
    return generate_latest(registry).decode()


def _reject(service: AuthService, count: int, first_stan: int = 1) -> None:
    for number in range(first_stan, first_stan + count):
        fields = {"3": "000000", "4": "000000001000", "11": f"{number:06d}", "41": "TERM0001"}
        service.journal_rejected_frame("0200", fields, 1_700_000_000.0 + number)


async def test_flush_writes_every_queued_entry_across_batches(tmp_path) -> None:
    store = await open_store(str(tmp_path / "cards.db"))
    try:
        service = _service(store)
        count = 2 * PENDING_BATCH + 7
        _reject(service, count)
        assert service.pending == count
        assert await service.flush_pending() == count
        assert service.pending == 0
        entries = await store.journal(JournalQuery(limit=10 * count))
        assert sorted(e.stan for e in entries) == [f"{n:06d}" for n in range(1, count + 1)]
        assert {e.response_code for e in entries} == {"30"}
    finally:
        await store.close()


async def test_a_failing_store_loses_nothing_and_keeps_the_order(tmp_path) -> None:
    with redis_server(tmp_path) as url:  # a Redis of its own, stopped under the store
        store = await open_store(url, prefix="pending")
        service = _service(store)
        _reject(service, 3)
    try:
        with trio.fail_after(30):
            assert await service.flush_pending() == 0
        assert service.pending == 3
        assert [e.stan for e in service._pending] == ["000001", "000002", "000003"]
    finally:
        await store.close()


async def test_past_the_bound_entries_are_counted_and_logged(tmp_path, caplog) -> None:
    store = await open_store(str(tmp_path / "cards.db"))
    try:
        service = _service(store)
        service.pending_limit = 4
        with caplog.at_level(logging.ERROR, logger="authhost.auth"):
            _reject(service, 6)
        assert service.pending == 4
        assert service.pending_dropped == 2
        assert "1 journal entries of requests answered off the pipeline dropped" in caplog.text
        scraped = _scrape(service)
        assert "authhost_journal_pending 4.0" in scraped
        assert "authhost_journal_pending_dropped_total 2.0" in scraped
        assert await service.flush_pending() == 4
        kept = await store.journal(JournalQuery(limit=100))
        assert sorted(e.stan for e in kept) == ["000001", "000002", "000003", "000004"]
    finally:
        await store.close()


@pytest.mark.parametrize("count", [1, PENDING_BATCH])
async def test_redis_store_takes_the_batches_too(redis_store, count: int) -> None:
    service = _service(redis_store)
    _reject(service, count)
    assert await service.flush_pending() == count
    entries = await redis_store.journal(JournalQuery(limit=10 * count))
    assert len(entries) == count


async def test_a_batch_being_written_still_counts_as_waiting(tmp_path, monkeypatch) -> None:
    """``/readyz`` reads the backlog while a flush waits for the store: the batch it took off
    the queue is not written yet, so the host must not report nothing waiting (it did, and
    then said "writes refused" with 0 entries waiting)."""
    store = await open_store(str(tmp_path / "cards.db"))
    try:
        service = _service(store)
        _reject(service, 3)
        in_store, release = trio.Event(), trio.Event()
        commit_many = store.commit_many

        async def slow_commit_many(commits):
            in_store.set()
            await release.wait()
            return await commit_many(commits)

        monkeypatch.setattr(store, "commit_many", slow_commit_many)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.flush_pending)
            await in_store.wait()
            assert service.pending == 3
            assert service.journal_backlog()[0] == 3
            assert "authhost_journal_pending 3.0" in _scrape(service)
            release.set()
        assert service.pending == 0
        assert service.journal_backlog()[0] == 0
    finally:
        await store.close()
