"""Audited admin writes racing each other: many at once from one process and from several
processes, of different kinds, on SQLite and a single Redis; then the audit chain verifies and
every write has exactly one entry.

Real components only: SQLite files, a real redis-server, real processes
(``tests/audit_writers.py``). Nothing is timed: each writer does a fixed number of writes.
"""

from __future__ import annotations

import json

import pytest
import trio
from audited_writes import LIST, REPORTED, list_made_from, report_made_from
from test_store_card_audit import SEAL, chain_ok
from test_store_contract import (  # noqa: F401 - fixtures
    NOW,
    redis_cluster_url,
    seeded,
    store,
)

from authhost.store.records import FraudReport

STORES = pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
# more writers than ACCOUNT_AUDIT_TRIES (50): each loses at most one try to each of the others
AT_ONCE = 80


@STORES
async def test_many_writes_of_one_list_at_once_from_one_process_all_land(store):  # noqa: F811
    """An operator's tool putting one named list many times at once (each a different
    content): every put lands with its one entry, none refused as the store being busy
    because the process's own other puts changed the list first (the 503 after
    ACCOUNT_AUDIT_TRIES is for another process's writes, as with an account's)."""
    await seeded(store)
    async with trio.open_nursery() as nursery:
        for n in range(AT_ONCE):
            nursery.start_soon(lambda n=n: store.put_list(LIST, [f"v{n}"], list_made_from(), SEAL))
    assert len(await store.get_list(LIST)) == 1
    entries = await store.audit(limit=1000)
    assert [e.action for e in entries] == ["list.put"] * AT_ONCE
    # each entry was made from the list its write replaced: one value, but for the first
    assert sorted(json.loads(e.before)["size"] for e in entries) == [0] + [1] * (AT_ONCE - 1)
    assert (await chain_ok(store))["verified"] == AT_ONCE


@STORES
async def test_many_reports_on_one_entry_at_once_from_one_process_all_land(store):  # noqa: F811
    """Fraud reports on one journal entry, many at once from one process: each lands with
    its one entry, each entry made from the report its write replaced."""
    await seeded(store)
    async with trio.open_nursery() as nursery:
        for n in range(AT_ONCE):
            report = FraudReport(REPORTED, "card", bool(n % 2), f"s{n}", NOW, "")
            nursery.start_soon(store.put_fraud_report, report, report_made_from(), SEAL)
    entries = await store.audit(limit=1000)
    assert [e.action for e in entries] == ["journal.fraud_report"] * AT_ONCE
    replaced = [json.loads(e.before) for e in entries]
    assert replaced[0] is None and all(r is not None for r in replaced[1:])
    assert (await chain_ok(store))["verified"] == AT_ONCE
