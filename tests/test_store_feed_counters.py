"""What the feeds check a cursor against, on every backend (SQLite, a single Redis, a Redis
Cluster): the newest journal id retention deleted (on Redis a global key a feed reads with
one GET, raised before the entries go, on the audited and the per-account paths alike, and
found again from the accounts for a store pruned before it was kept), the newest journal id
and fraud report id, and the counters raised (never lowered) after a dump restore."""

from __future__ import annotations

import pytest
from test_store_contract import (  # noqa: F401 - fixtures
    NOW,
    hold,
    redis_cluster_url,
    seeded,
    store,
)
from test_store_retention_audit import SEAL, batch_entry

from authhost.store.records import FraudReport


@pytest.mark.parametrize("audited", [False, True])
async def test_the_cut_the_newest_ids_and_the_counters(store, audited):  # noqa: F811
    card, _ = await seeded(store)
    assert (await store.journal_pruned_through(), await store.newest_journal_id()) == (0, 0)
    ids = [(await store.commit(hold(card, n, 100))).journal.journal_id for n in (1, 2, 3)]
    assert await store.newest_journal_id() == max(ids)

    audit = (batch_entry(), SEAL) if audited else ()
    assert (await store.prune_journal(NOW + 2.5, *audit)).entries == 2
    assert await store.journal_pruned_through() == ids[1]  # before: no such reading
    if hasattr(store, "_keys"):  # pruned by a version that kept only the accounts' own
        await store._client.delete([store._keys.journal_cut])
        assert await store.journal_pruned_through() == ids[1]
    assert await store.newest_journal_id() == ids[2]

    raised = await store.raise_counters(ids[2] + 500, 40)
    assert raised.journal >= ids[2] + 500 and raised.fraud_reports == 40
    assert await store.raise_counters(1, 1) == raised  # never lowered
    assert await store.last_journal_id() == raised.journal  # what the feeds check
    started = await store.reopen()  # a server started after the raise (on Redis this
    try:  # process keeps the block of ids it reserved: the command says servers stopped)
        after = (await started.commit(hold(card, 4, 100))).journal.journal_id
    finally:
        await started.close()
    assert after > ids[2] + 500  # a cursor up to the raise is never handed out again
    assert await store.newest_fraud_report_id() == 40
    await store.put_fraud_report(FraudReport(after, card.card_id, True, "chargeback", NOW + 9))
    assert await store.newest_fraud_report_id() == 41
