"""Redis stopped under a running store: every read and write it fails is the store's
``StoreUnavailable``, whichever path it took. A lone request's snapshot and a commit that
could not get its journal id raised coredis's own ConnectionError, which the server logs as a
bug ("decision failed", with a traceback) instead of "the store failed" in one line."""

from __future__ import annotations

import contextlib

from conftest import redis_command
from test_store_contract import NOW, hold, seeded

from authhost.store import opened_store
from authhost.store.interface import SnapshotQuery, StoreUnavailable


async def test_a_stopped_redis_fails_reads_and_writes_as_store_unavailable(private_redis):
    async with opened_store(private_redis) as store:
        card, _ = await seeded(store)
        with contextlib.suppress(OSError):  # the server closes the link as it stops
            redis_command(private_redis, "SHUTDOWN", "NOSAVE")
        query = SnapshotQuery(card.pan_index, NOW)
        alone = await store.snapshot_many([query])
        together = await store.snapshot_many([query, query])
        commits = await store.commit_many([hold(card, 1, 100)])
        for outcome in [*alone, *together, *commits]:
            assert isinstance(outcome, StoreUnavailable), repr(outcome)
            assert "ConnectionError" in str(outcome)
