"""Redis specifics: the key design keeps each commit in one cluster slot; URLs and prefixes."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from coredis._utils import hash_slot

from authhost.store import codec, open_store
from authhost.store.interface import StoreError
from authhost.store.redis import RedisCardStore
from authhost.store.redis_keys import Keys


def slot(key: str) -> int:
    return hash_slot(key.encode())


def test_everything_a_commit_touches_shares_the_account_slot():
    ak = Keys("authhost").account("acc-42")
    commit_keys = [
        ak.account,
        ak.card("crd_1"),
        ak.card("crd_2"),
        ak.velocity("crd_1"),
        ak.velocity_log("crd_1"),
        ak.velocity_pruned("crd_1"),
        ak.dedupe,
        ak.holds,
        ak.journal,
        ak.journal_all,
        ak.journal_card("crd_1"),
        ak.cards,
    ]
    assert len({slot(k) for k in commit_keys}) == 1
    other = Keys("authhost").account("acc-43")
    assert slot(other.account) != slot(ak.account)  # accounts spread over the cluster


def test_prefix_does_not_move_keys_between_slots():
    assert slot(Keys("a").account("x").holds) == slot(Keys("b").account("x").holds)


@pytest.mark.parametrize("bad", ["acc{1", "acc}1"])
def test_braces_in_ids_are_refused(bad):
    with pytest.raises(StoreError, match="braces"):
        _ = Keys("p").account(bad).account


async def test_bad_prefix_is_refused(redis_url):
    with pytest.raises(StoreError, match="prefix"):
        await open_store(redis_url, prefix="a:b")


async def test_unreachable_redis_is_a_clear_error():
    with pytest.raises(StoreError, match=r"cannot reach Redis at redis://:\*\*\*@127.0.0.1:1/0"):
        await RedisCardStore.open("redis://:secret@127.0.0.1:1/0")


async def test_info_and_isolation_by_prefix(redis_url):
    a = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    b = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        await a.put_list("l", ["x"])
        assert await b.list_names() == []
        assert a.info().shared_between_processes and a.info().backend == "redis"
    finally:
        for store in (b, a):  # coredis pools are task groups: close in reverse order
            await store.drop_all()
            await store.close()


async def test_a_retransmission_is_found_by_the_snapshot(redis_url):
    """Redis reads the dedupe key with the card (one round trip), so a retransmission is
    replayed before the pipeline runs; SQLite finds it at commit (the contract's minimum)."""
    from test_store_contract import NOW, hold, seeded

    from authhost.store.interface import SnapshotQuery

    store = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        card, _ = await seeded(store)
        first = await store.commit(hold(card, 1, 1000))
        query = SnapshotQuery(card.pan_index, NOW + 5, dedupe_key=first.journal.dedupe_key)
        assert (await store.snapshot(query)).previous == first.journal
        other = SnapshotQuery(card.pan_index, NOW + 5, dedupe_key="another transmission")
        assert (await store.snapshot(other)).previous is None
    finally:
        await store.drop_all()
        await store.close()


async def test_every_accounts_journal_is_read_from_one_index_built_for_old_stores(redis_url):
    """A single Redis keeps every account's journal ids in one index, so a read across
    accounts in id order (the movements and alerts feeds, exports) costs a page; entries
    journalled before the index existed are put into it when the store is next opened, and
    pruned entries leave it."""
    from test_store_contract import hold, make_card, seeded

    from authhost.cards.model import Account, CardKind, CardState
    from authhost.store.interface import JournalQuery

    prefix = f"t{secrets.token_hex(6)}"
    store = await open_store(redis_url, prefix=prefix)
    try:
        card, _ = await seeded(store, balance=10**9)
        await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=10**9))
        other, _, blob = make_card(state=CardState.ACTIVE, account_id="acc-2")
        await store.create_card(other, blob)
        for n in range(6):
            await store.commit(hold(card if n % 2 else other, n + 1, 100 + n))
        every = await store.journal(JournalQuery(limit=100))
        assert [e.amount_minor for e in every] == [100, 101, 102, 103, 104, 105]
        keys = Keys(prefix)
        assert await store.client.zcard(keys.journal_global) == 6
        page = await store.journal(JournalQuery(after_id=every[1].journal_id, limit=2))
        assert page == every[2:4]
        # a store from before the index: it is built when the store is opened again
        await store.client.delete([keys.journal_global, f"{keys.journal_global}:complete"])
        assert await store.journal(JournalQuery(limit=100)) == []
    finally:
        await store.close()
    store = await open_store(redis_url, prefix=prefix)
    try:
        assert await store.journal(JournalQuery(limit=100)) == every
        pruned = await store.prune_journal(every[2].ts + 0.5)
        assert pruned.entries == 3
        assert await store.journal(JournalQuery(limit=100)) == every[3:]
        assert await store.client.zcard(Keys(prefix).journal_global) == 3
    finally:
        await store.drop_all()
        await store.close()


async def test_an_id_reserved_long_ago_never_lands_behind_another_processs_entries(redis_url):
    """Two processes reserve journal ids a block at a time. One that has not committed for a
    while drops its old block, so its next entry gets an id above everything committed
    meanwhile: a feed that read up to those never skips it (the ledger would lose a movement)."""
    import trio
    from test_store_contract import hold, seeded

    from authhost.store.interface import JournalQuery

    prefix = f"t{secrets.token_hex(6)}"
    quiet = await open_store(redis_url, prefix=prefix)
    busy = await open_store(redis_url, prefix=prefix)
    try:
        card, _ = await seeded(quiet, balance=10**9)
        quiet.id_block_life_s = 0.05
        first = await quiet.commit(hold(card, 1, 100))  # reserves a block of ids
        for n in range(2, 6):  # the other process reserves the next block and commits
            await busy.commit(hold(card, n, 100 + n))
        cursor = max(e.journal_id for e in await busy.journal(JournalQuery(limit=100)))
        await trio.sleep(0.1)  # the quiet process's block is older than its life
        late = await quiet.commit(hold(card, 6, 999))
        assert late.journal.journal_id > cursor > first.journal.journal_id
        after = await quiet.journal(JournalQuery(after_id=cursor, limit=100))
        assert [e.amount_minor for e in after] == [999]
    finally:
        await busy.close()
        await quiet.drop_all()
        await quiet.close()


async def test_fraud_reports_written_before_report_ids_keep_their_place(redis_url):
    """Reports written before report ids were given are scored by their journal id (the
    cursor consumers paged on until then) and have none in their JSON: they are listed with
    it as their report id, and a report written now comes after all of them, whatever its
    entry."""
    from authhost.store.records import FraudReport

    prefix = f"t{secrets.token_hex(6)}"
    store = await open_store(redis_url, prefix=prefix)
    keys = Keys(prefix)
    try:
        for journal_id in (7, 9):  # as the store wrote them before
            text = (
                f'{{"journal_id":{journal_id},"card_id":"crd_1","fraud":true,'
                '"source":"chargeback","reported_at":1.0,"note":""}'
            )
            await store.client.hset(keys.fraud_reports, {str(journal_id): text})
            await store.client.zadd(keys.fraud_report_ids, {str(journal_id): journal_id})
        assert [(r.journal_id, r.report_id) for r in await store.fraud_reports()] == [
            (7, 7), (9, 9)
        ]  # fmt: skip
        await store.put_fraud_report(FraudReport(3, "crd_1", True, "analyst", 2.0))
        [late] = await store.fraud_reports(9)
        assert (late.journal_id, late.report_id) == (3, 10)
        assert (await store.fraud_reports_of([3]))[3] == late
    finally:
        await store.drop_all()
        await store.close()


async def _opened_disputes(store: RedisCardStore, count: int) -> list[Any]:
    """``count`` open disputes, of journal entries 0, 1, ..., their ids in that order."""
    from dataclasses import replace

    from authhost.store.records import Dispute

    base = Dispute("dsp0000000000000000000", 0, "crd-1", "acc-1", "fraud", 5_000, "978", 1.0)
    opened = [replace(base, dispute_id=f"dsp0000000{i:03d}000000001", journal_id=i)
              for i in range(count)]  # fmt: skip
    for dispute in opened:
        await store.open_dispute(dispute)
    return opened


async def test_disputes_stored_before_the_ids_index_are_listed(redis_url):
    """A Redis written by a version without the index of every dispute's id: the first
    admin's listing builds it from the hash (once), pages follow id order, a state filter
    reads past pages of other states, and a dispute opened after the build is in it."""
    from dataclasses import replace

    store = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        assert isinstance(store, RedisCardStore)
        old = await _opened_disputes(store, 250)
        old[240] = replace(old[240], state="won", version=1)
        await store.update_dispute(old[240])
        keys = store._keys  # noqa: SLF001 - the index is what this test is about
        await store.client.delete([keys.dispute_ids, keys.dispute_ids_indexed])  # as before
        assert await store.disputes(limit=3) == old[:3]
        assert await store.client.exists([keys.dispute_ids_indexed]) == 1
        assert await store.disputes(limit=2, after=old[2].dispute_id) == old[3:5]
        assert await store.disputes(state="won") == [old[240]]  # past a page of open ones
        assert await store.disputes(limit=1000) == old
        late = replace(old[0], dispute_id="dsp0000000999000000001", journal_id=999)
        await store.open_dispute(late)
        assert (await store.disputes(after=old[-1].dispute_id)) == [late]
    finally:
        await store.drop_all()
        await store.close()


async def test_disputes_stored_before_the_card_index_are_found_by_card(redis_url):
    """A Redis written by a version without the index of disputes by card: the first look
    for a card's disputes builds it from the hash (once), and a dispute opened after the
    build is in it."""
    from dataclasses import replace

    store = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        assert isinstance(store, RedisCardStore)
        old = await _opened_disputes(store, 3)
        moved = replace(old[1], card_id="crd-2")
        keys = store._keys  # noqa: SLF001 - the index is what this test is about
        await store.client.hset(keys.disputes, {moved.dispute_id: codec.dispute_to_json(moved)})
        await store.client.delete([keys.disputes_by_card, keys.disputes_by_card_indexed])
        assert await store.disputes_of_card("crd-1") == [old[0], old[2]]
        assert await store.client.exists([keys.disputes_by_card_indexed]) == 1
        assert await store.disputes_of_card("crd-2") == [moved]
        late = replace(old[0], dispute_id="dsp0000000999000000001", journal_id=999)
        await store.open_dispute(late)
        assert await store.disputes_of_card("crd-1") == [old[0], old[2], late]
    finally:
        await store.drop_all()
        await store.close()


async def test_open_disputes_stored_before_their_index_are_found(redis_url):
    """A Redis written by a version without the open disputes' index: the first listing of
    open disputes builds it from the hash (once), and an id the index holds for a dispute
    that is closed by now is skipped and dropped from it."""
    from dataclasses import replace

    store = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        assert isinstance(store, RedisCardStore)
        old = await _opened_disputes(store, 3)
        await store.update_dispute(replace(old[1], state="won", version=1))
        keys = store._keys  # noqa: SLF001 - the index is what this test is about
        await store.client.delete([keys.open_disputes, keys.open_disputes_indexed])  # as before
        assert await store.disputes("open") == [old[0], old[2]]
        assert await store.client.exists([keys.open_disputes_indexed]) == 1
        await store.client.zadd(keys.open_disputes, {old[1].dispute_id: 0})  # a stale id
        assert await store.disputes("open") == [old[0], old[2]]
        assert await store.client.zscore(keys.open_disputes, old[1].dispute_id) is None
    finally:
        await store.drop_all()
        await store.close()
