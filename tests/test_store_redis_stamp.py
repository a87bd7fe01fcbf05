"""The Redis store's stamp (``redis_keys.Keys.stamp``) after Redis lost the data, on a single
Redis and a Redis Cluster: a card not found is answered 96 ("the store lost its data"), not
14 ("no such card": with merchant advice, do not try again), by every process, until the
data is back. Before, any process opened on the emptied Redis (a restarted server, a worker
the supervisor restarted, a CLI command such as ``cards list``) wrote a new stamp, and every
process then answered each card 14 again, the new one saying ready."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from functools import partial

import pytest
from test_store_contract import NOW, redis_cluster_url, seeded  # noqa: F401 - a fixture

from authhost.store import open_store
from authhost.store.interface import CardStore, SnapshotQuery, StoreError

UNKNOWN = SnapshotQuery("0" * 64, NOW)


@pytest.fixture(params=["redis", "redis_cluster"])
async def store(request) -> AsyncIterator[CardStore]:
    url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    reopen = partial(open_store, url, prefix=f"stamp{secrets.token_hex(6)}")
    opened = await reopen()
    opened.reopen = reopen  # another process's store on the same data
    try:
        yield opened
    finally:
        await opened.drop_all()
        await opened.close()


async def lose(store: CardStore) -> None:
    """Redis loses the data (restarted without persistence, flushed, failed over)."""
    wipe = await store.reopen()
    try:
        await wipe.drop_all()
    finally:
        await wipe.close()


async def lost(store: CardStore, query: SnapshotQuery = UNKNOWN) -> None:
    """The store says it lost its data, to a snapshot and to /readyz's read."""
    [outcome] = await store.snapshot_many([query])
    assert isinstance(outcome, StoreError) and "lost" in str(outcome), outcome
    with pytest.raises(StoreError, match="lost"):
        await store.health_read()


async def test_a_process_opened_on_the_emptied_redis_answers_no_card_14(store):
    card, _ = await seeded(store)
    assert (await store.snapshot(UNKNOWN)).card is None  # a card that does not exist: 14
    await store.health_read()
    await lose(store)
    later = await store.reopen()  # a restarted server, a worker, `authhost cards list`
    try:
        for process in (store, later):
            await lost(process)
            await lost(process, SnapshotQuery(card.pan_index, NOW))
    finally:
        await later.close()


async def test_the_data_set_up_again_is_told_to_the_process_that_knew_the_old(store):
    await seeded(store)
    await lose(store)
    later = await store.reopen()
    try:
        await seeded(later)  # the operator sets the store up anew: the new data's stamp
        await later.health_read()
        assert (await later.snapshot(UNKNOWN)).card is None
        with pytest.raises(StoreError, match="restart this process"):
            await store.health_read()
    finally:
        await later.close()


async def test_a_new_store_is_ready_once_set_up_in_every_process(store):
    """A new installation whose servers start before its first product: not ready and 96
    until it is set up (by the admin API of one of them, or the CLI), then ready in all."""
    other = await store.reopen()
    try:
        await lost(store)
        card, _ = await seeded(other)
        for process in (store, other):
            await process.health_read()
            assert (await process.snapshot(UNKNOWN)).card is None
            assert (await process.snapshot(SnapshotQuery(card.pan_index, NOW))).card == card
    finally:
        await other.close()


async def test_a_store_set_up_before_stamps_gets_one_and_knows_its_cards(store):
    """An upgrade: a store an older authhost set up has no stamp. Opened, it gets one, and a
    card it does not hold is still 14, not 96."""
    await seeded(store)
    await store._client.delete([store._keys.stamp])  # as an older authhost left it
    upgraded = await store.reopen()
    try:
        await upgraded.health_read()
        assert (await upgraded.snapshot(UNKNOWN)).card is None
    finally:
        await upgraded.close()


async def test_a_store_emptied_and_set_up_again_by_its_process_is_stamped_anew(store):
    """``drop_all`` (tests, ``benchmarks/bench_store.py``) deletes every key, the stamp too,
    and the process sets the store up again: stamped anew, ready in it and in another."""
    await seeded(store)
    await store.drop_all()
    await seeded(store)
    other = await store.reopen()
    try:
        for process in (store, other):
            await process.health_read()
            assert (await process.snapshot(UNKNOWN)).card is None
    finally:
        await other.close()


async def test_a_store_set_up_before_stamps_opens_on_a_redis_at_its_maxmemory(private_redis):
    """The upgrade on a Redis at its maxmemory: the stamp cannot be written. The open failed
    (the server could not start); it opens now, not ready (96 for a card not found) until
    the stamp is written, which its /readyz read does once Redis takes writes again."""
    from conftest import redis_command

    reopen = partial(open_store, private_redis, prefix="upgrade")
    store = await reopen()
    await seeded(store)
    await store._client.delete([store._keys.stamp])  # as an older authhost left it
    await store.close()
    assert redis_command(private_redis, "CONFIG", "SET", "maxmemory-policy", "noeviction") == "+OK"
    assert redis_command(private_redis, "CONFIG", "SET", "maxmemory", "1") == "+OK"
    try:
        full = await reopen()
    finally:
        assert redis_command(private_redis, "CONFIG", "SET", "maxmemory", "0") == "+OK"
    try:
        [outcome] = await full.snapshot_many([UNKNOWN])  # (Redis takes writes again now)
        assert isinstance(outcome, StoreError), outcome
        await full.health_read()  # stamps it
        assert (await full.snapshot(UNKNOWN)).card is None
    finally:
        await full.close()
