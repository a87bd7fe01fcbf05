"""Redis commits that are ready together go in one pipeline: each lands exactly once, funds
are re-checked per commit inside its script, and scripts Redis lost are reloaded and only the
commits that did not run are sent again."""

from __future__ import annotations

import pytest
import trio
from test_store_contract import hold, seeded


@pytest.fixture
def store(redis_store):
    return redis_store


async def commit_many(store, card, count: int, amount: int, first: int = 0) -> list:
    results = [None] * count

    async def one(i: int) -> None:
        results[i] = await store.commit(hold(card, first + i, amount))

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    return results


async def test_concurrent_commits_share_pipelines_and_never_overspend(store):
    card, _ = await seeded(store, balance=10_000)
    results = await commit_many(store, card, 40, 700)
    assert store.pipelined_batches >= 1  # they did travel together
    approved = [r for r in results if r.funds_ok]
    assert len(approved) == 10_000 // 700  # each re-checked the funds in its own script
    assert len({r.journal.journal_id for r in results}) == 40
    assert (await store.get_account("acc-1")).holds == len(approved) * 700


async def test_lost_scripts_are_reloaded_and_each_commit_lands_once(store):
    card, _ = await seeded(store, balance=100_000)
    await store.client.script_flush()
    results = await commit_many(store, card, 12, 100)
    assert store.pipelined_batches >= 1  # the lost script was met inside a pipeline
    assert all(r.funds_ok for r in results)
    assert (await store.get_account("acc-1")).holds == 12 * 100
