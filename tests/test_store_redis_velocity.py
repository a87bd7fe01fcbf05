"""Redis velocity log: a snapshot reads only the events committed since this process counted
the card, and the counters still equal cards.velocity.compute_velocity: across processes,
with overlapping snapshots, after pruning, over history written before the log existed, and
when a renewal makes the PAN mean another card."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import trio
from test_store_contract import NOW, as_entry, seeded

from authhost.cards import lifecycle
from authhost.cards.velocity import RETENTION_S, VelocityEvent, compute_velocity
from authhost.store import open_store
from authhost.store.interface import Commit, SnapshotQuery
from authhost.store.redis_keys import Keys
from authhost.store.retention import PRUNE_MARGIN_S


@pytest.fixture
def store(redis_store):
    return redis_store


def event(ts: float, amount: int, merchant: str = "M1") -> VelocityEvent:
    return VelocityEvent(ts, amount, True, merchant, "276")


def committing(card, n: int, ev: VelocityEvent) -> Commit:
    return Commit(journal=as_entry(card, n, ev), card_id=card.card_id)


async def velocity(store, card, now: float):
    return (await store.snapshot(SnapshotQuery(card.pan_index, now))).velocity


async def test_processes_see_each_others_events_and_overlaps_count_once(store, redis_url):
    ours = store
    theirs = await open_store(redis_url, prefix=store.prefix)
    try:
        card, _ = await seeded(ours)
        history = [event(NOW - 50, 1000)]
        await ours.commit(committing(card, 1, history[0]))
        assert await velocity(ours, card, NOW) == compute_velocity(history, NOW)
        for n in range(2, 6):  # another process commits; we count only what is new
            history.append(event(NOW - 40 + n, 100 * n, f"M{n}"))
            await theirs.commit(committing(card, n, history[-1]))
        results = []

        async def snap() -> None:
            results.append(await velocity(ours, card, NOW))

        async with trio.open_nursery() as nursery:  # overlapping snapshots of one card
            for _ in range(8):
                nursery.start_soon(snap)
        assert results == [compute_velocity(history, NOW)] * 8
        assert await velocity(theirs, card, NOW) == compute_velocity(history, NOW)
    finally:
        await theirs.close()


async def test_pruned_events_leave_the_log_and_the_counts_stay_exact(store, redis_url):
    card, _ = await seeded(store)
    old = event(NOW - RETENTION_S - PRUNE_MARGIN_S - 100, 700)
    await store.commit(committing(card, 1, old))
    assert (await velocity(store, card, NOW)).count_30d == 0  # too old to count
    recent = [event(NOW - 10, 300)]
    await store.commit(committing(card, 2, recent[0]))  # every commit prunes its card's log
    ak = Keys(store.prefix).account(card.account_id)
    assert await store._client.llen(ak.velocity_log(card.card_id)) == 1
    assert int(await store._client.get(ak.velocity_pruned(card.card_id))) == 1
    assert await velocity(store, card, NOW) == compute_velocity(recent, NOW)
    fresh = await open_store(redis_url, prefix=store.prefix)  # a process counting from zero
    try:
        assert await velocity(fresh, card, NOW) == compute_velocity(recent, NOW)
    finally:
        await fresh.close()


async def test_history_from_before_the_log_still_counts(store):
    """Events written to the sorted set by an earlier version are read once, with the log."""
    card, _ = await seeded(store)
    legacy = event(NOW - 3600 * 5, 4200, "M-OLD")
    member = "1|" + json.dumps([legacy.ts, legacy.amount_minor, legacy.merchant_id,
                                legacy.country, False, False, False, 99])  # fmt: skip
    key = Keys(store.prefix).account(card.account_id).velocity(card.card_id)
    await store._client.zadd(key, {member: legacy.ts})
    new = event(NOW - 60, 100)
    await store.commit(committing(card, 1, new))
    assert await velocity(store, card, NOW) == compute_velocity([legacy, new], NOW)


async def test_a_renewal_counts_the_new_card_once_it_is_activated(store):
    card, pan = await seeded(store)
    await store.commit(committing(card, 1, event(NOW - 30, 900)))
    assert (await velocity(store, card, NOW)).amount_1h == 900
    old, new = lifecycle.renew(card, now=NOW, validity_months=36, new_card_id="crd_renewed")
    await store.replace_card(old, new, b"x" * 40)
    for action in ("ship", "activate"):
        new = await store.update_card(
            lifecycle.transition(await store.get_card(new.card_id), action, now=NOW)
        )
    renewed = replace(new, pan_index=card.pan_index)
    await store.commit(committing(renewed, 2, event(NOW - 5, 250)))
    assert (await velocity(store, card, NOW)).amount_1h == 250  # the new card's own
