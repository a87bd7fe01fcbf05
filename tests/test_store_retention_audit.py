"""A retention run's deletions with their audit entries (PCI DSS 10: no change without its
record): each batch of a journal or idempotency retention is one write with its entry on
SQLite (one transaction) and on a single Redis (one script), so a run cut short leaves the
entries of what it deleted and nothing more; on Redis Cluster the run's entry follows its
writes (the audit log is in another hash slot).

Real components only: SQLite files, a real redis-server and a real one-node Redis Cluster.
Another run is another store opened on the same data, as another process would be; a crash
is a real process killed inside its transaction (SQLite), or a seal that fails (the security
module gone) at a chosen batch, as test_store_account_audit does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from test_admin_support import demo_security
from test_idempotency_retention import DAY, _real_time, placeholder, written_days_ago
from test_store_card_audit import SEAL, another_entry_after_the_first_head, chain_ok
from test_store_contract import (  # noqa: F401 - fixtures
    NOW,
    entry,
    hold,
    journal_to_prune,
    key,
    make_card,
    redis_cluster_url,
    seeded,
    store,
)

import authhost.store.redis
import authhost.store.sqlite
from authhost.admin.audit_verify import verify_audit_chain
from authhost.admin.service import CardService
from authhost.cards.model import Account, CardKind
from authhost.security.audit_chain import AuditSeal
from authhost.store.interface import (
    Commit,
    JournalQuery,
    Pruned,
    SnapshotQuery,
    StoreUnavailable,
)
from authhost.store.records import AuditEntry, FraudReport

STORES = pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
SINGLE = pytest.mark.parametrize("store", ["redis"], indirect=True)
CUT = NOW + 50  # journal_to_prune's: six entries and three closed holds older
KEY = os.urandom(32)  # a chain key a child process seals with too
KEYED = AuditSeal(KEY)


def batch_entry(action: str = "journal.prune"):  # noqa: ANN201
    """A retention batch's entry (store.BatchAudit), as the service makes it."""

    def made(deleted: dict[str, int]) -> AuditEntry:
        return AuditEntry(NOW, "ops1", action, action.split(".")[0], "", json.dumps(deleted))

    return made


class FailsAt:
    """The real seal, failing at its ``nth`` use (the security module gone mid-run)."""

    def __init__(self, nth: int) -> None:
        self.nth, self.used = nth, 0

    def seal(self, previous: str, fields: object) -> str:
        self.used += 1
        if self.used == self.nth:
            raise OSError("the security module is gone")
        return SEAL.seal(previous, fields)


@pytest.fixture
def small_batches(monkeypatch) -> None:
    """Batches of two rows (SQLite) and of two deletions or so (Redis): several per run."""
    monkeypatch.setattr(authhost.store.sqlite, "PRUNE_BATCH", 2)
    monkeypatch.setattr(authhost.store.redis, "PRUNE_PAGE", 2)


async def counted(db, action: str = "journal.prune") -> dict[str, int]:  # noqa: ANN001
    """What the run's entries say was deleted, added up, and how many entries."""
    total: dict[str, int] = {"batches": 0}
    for e in await db.audit(limit=1000):
        if e.action == action:
            total["batches"] += 1
            for kind, n in json.loads(e.after).items():
                total[kind] = total.get(kind, 0) + n
    return total


async def journal_left(db) -> int:  # noqa: ANN001
    return len(await db.journal(JournalQuery(limit=100)))


# --- both stores: each batch with its entry ------------------------------------------------


@STORES
async def test_each_batch_of_a_journal_run_is_written_with_its_entry(store, small_batches):  # noqa: F811
    """Several batches, each with its entry in its write: the entries add up to what the run
    deleted, and the chain verifies."""
    await journal_to_prune(store)
    pruned = await store.prune_journal(CUT, batch_entry(), SEAL)
    assert (pruned.entries, pruned.holds) == (6, 3)
    total = await counted(store)
    assert (total["entries"], total["holds"]) == (6, 3) and total["batches"] >= 3
    assert (await chain_ok(store))["verified"] == total["batches"]
    assert await store.prune_journal(CUT, batch_entry(), SEAL) == Pruned()  # nothing: no entry
    assert (await counted(store))["batches"] == total["batches"]


@STORES
async def test_each_batch_of_an_idempotency_run_is_written_with_its_entry(store, small_batches):  # noqa: F811
    await store.create_account(Account("acc-r", "978", CardKind.DEBIT, balance=10_000))
    with written_days_ago(100):
        for n in range(3):
            await store.reserve_result(f"card.issue:old{n}", placeholder(0))
        await store.change_funds("acc-r", 100, key="load-old", fingerprint="f1")
        await store.change_funds("acc-r", 100, key="load-old2", fingerprint="f2")
    await store.reserve_result("card.issue:at-work", placeholder(_real_time()))
    action = "idempotency.prune"
    assert await store.prune_idempotency(_real_time() - 35 * DAY, batch_entry(action), SEAL) == 5
    total = await counted(store, action)
    assert total["results"] == 5 and total["batches"] >= 2
    assert (await chain_ok(store))["verified"] == total["batches"]
    assert await store.idempotent_result("card.issue:at-work") is not None


@STORES
async def test_a_run_cut_short_leaves_the_entries_of_what_it_deleted(store, small_batches):  # noqa: F811
    """The seal fails at the second batch: the first batch is deleted with its entry, the
    second neither deleted nor audited; the run made again deletes the rest, each batch with
    its entry, and the entries add up to all of it."""
    await journal_to_prune(store)
    with pytest.raises(OSError):
        await store.prune_journal(CUT, batch_entry(), FailsAt(2))
    first = await counted(store)
    assert first["batches"] == 1
    assert 8 - await journal_left(store) == first.get("entries", 0)  # as many as it says
    assert (await chain_ok(store))["verified"] == 1
    rest = await store.prune_journal(CUT, batch_entry(), SEAL)
    assert rest.entries == 6 - first.get("entries", 0)
    total = await counted(store)
    assert (total["entries"], total["holds"]) == (6, 3)
    assert await journal_left(store) == 2
    await chain_ok(store)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_a_process_killed_inside_a_batch_leaves_neither_on_sqlite(
    store,  # noqa: F811
    small_batches,
    tmp_path,
):
    """A real process, on the same file, dies inside its second batch's transaction (its
    seal ends the process, after the batch's rows were deleted): the file keeps the first
    batch and its entry, nothing of the second."""
    await journal_to_prune(store)
    child = f"""
import os, sys, trio
sys.path.insert(0, {str(Path(__file__).parent)!r})
import authhost.store.sqlite
from test_store_retention_audit import CUT, batch_entry
from authhost.security.audit_chain import AuditSeal
from authhost.store import open_store

SEAL = AuditSeal(bytes.fromhex(os.environ["TEST_AUDIT_KEY"]))

authhost.store.sqlite.PRUNE_BATCH = 2

class DyingAtTheSecond:
    used = 0
    def seal(self, previous, fields):
        self.used += 1
        if self.used == 2:
            os._exit(7)
        return SEAL.seal(previous, fields)

async def main():
    db = await open_store({f"sqlite:///{tmp_path / 'cards.db'}"!r})
    await db.prune_journal(CUT, batch_entry(), DyingAtTheSecond())

trio.run(main)
"""
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-c", child],
            capture_output=True,
            timeout=60,
            env={**os.environ, "TEST_AUDIT_KEY": KEY.hex()},  # the parent's chain key
        )
    )
    assert done.returncode == 7, done.stderr.decode()[-2000:]
    reopened = await store.reopen()  # as the next process finds the file
    try:
        first = await counted(reopened)
        assert first == {"batches": 1, "entries": 2, "holds": 2}  # one batch of each
        assert await journal_left(reopened) == 6
        verified = await verify_audit_chain(reopened, KEYED, "")
        assert verified["ok"] and verified["verified"] == 1, verified
    finally:
        await reopened.close()


# --- Redis: the checks and the chain's head ------------------------------------------------


@SINGLE
async def test_a_batch_another_run_deleted_meanwhile_is_not_counted(store, monkeypatch):  # noqa: F811
    """Another process's run deletes the entries this run read, before its script: the
    script refuses (nothing written, no entry), this run reads again and finds nothing."""
    await journal_to_prune(store)
    other = await store.reopen()
    script = store._audited_batch
    calls = []

    async def another_run_first(keys, args):  # noqa: ANN001, ANN202
        calls.append(keys)
        if len(calls) == 1:
            await other.prune_journal(CUT)  # unaudited: the other run's own
        return await script(keys, args)

    monkeypatch.setattr(store, "_audited_batch", another_run_first)
    try:
        assert await store.prune_journal(CUT, batch_entry(), SEAL) == Pruned()
        assert len(calls) == 1 and await counted(store) == {"batches": 0}
        assert await journal_left(store) == 2
    finally:
        await other.close()


@SINGLE
async def test_a_head_moved_by_another_writer_is_sealed_again(store, monkeypatch):  # noqa: F811
    await journal_to_prune(store)
    other = await store.reopen()
    heads = another_entry_after_the_first_head(store, other, monkeypatch)
    try:
        assert await store.prune_journal(CUT, batch_entry(), SEAL) == Pruned(6, 3)
        assert len(heads) == 2 and heads[0] != heads[1]
        assert [e.action for e in await store.audit()] == ["card.note", "journal.prune"]
        assert (await chain_ok(store))["verified"] == 2
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["redis-cluster"], indirect=True)
async def test_on_a_cluster_the_entries_follow_their_writes(store, monkeypatch):  # noqa: F811
    """A cluster refuses one script over the accounts' slots and the audit log's: the run
    deletes an account's pages, then appends the entry of what it deleted since the last
    one once that reaches a page (and the rest at the end); a seal that fails then leaves
    those deletions without their entry (README, Known limitations)."""
    await journal_to_prune(store)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=0))
    second, _, blob = make_card(account_id="acc-2")
    await store.create_card(second, blob)
    await store.commit(Commit(entry(second, 7, 0, response_code="05")))
    monkeypatch.setattr(authhost.store.redis, "PRUNE_PAGE", 2)
    assert await store.prune_journal(CUT, batch_entry(), SEAL) == Pruned(7, 3)
    assert await counted(store) == {"batches": 2, "entries": 7, "holds": 3}  # one per account
    monkeypatch.undo()
    with pytest.raises(OSError):  # the two newer entries too, then the seal fails
        await store.prune_journal(NOW + 100, batch_entry(), FailsAt(1))
    assert await journal_left(store) == 0
    assert (await counted(store))["batches"] == 2  # none for the newer two


# --- the service -----------------------------------------------------------------------------


@STORES
async def test_the_service_audits_each_batch_and_a_run_with_nothing_to_delete(
    store,  # noqa: F811
    small_batches,
    tmp_path,
):
    """``journal prune`` through the card service: each batch's ``journal.prune`` entry
    says the run's ``keep_days`` and cut and what it deleted; a run with nothing to delete
    has one entry of its own."""
    service = CardService(store, demo_security(tmp_path), "ops1")
    card, _ = await seeded(store, balance=50_000)
    old = service.clock() - 40 * DAY
    for n in range(3):
        await store.commit(Commit(entry(card, n, 0, ts=old + n, response_code="05")))
    result = await service.prune_journal(35)
    assert (result["entries"], result["holds"]) == (3, 0)
    entries = [e for e in await store.audit(limit=100) if e.action == "journal.prune"]
    assert len(entries) == 2  # a batch of two, then one
    afters = [json.loads(e.after) for e in entries]
    assert {(a["keep_days"], a["before"]) for a in afters} == {(35, result["before"])}
    assert sum(a["entries"] for a in afters) == 3
    again = await service.prune_journal(35)
    [*_, last] = await store.audit(limit=100)
    assert last.action == "journal.prune" and json.loads(last.after)["entries"] == 0
    assert again["entries"] == 0
    verified = await service.verify_audit()
    assert verified["ok"], verified


@SINGLE
async def test_a_hold_made_again_under_its_key_meanwhile_is_not_deleted(store, monkeypatch):  # noqa: F811
    """Another run deletes the closed hold this run read; a new authorisation then holds
    money under the same match key (open). This run's script must not delete it: the hold
    is not the one it read (nothing written, read again, the open hold left)."""
    card = await journal_to_prune(store)
    holding = (await store.get_account(card.account_id)).holds
    monkeypatch.setattr(authhost.store.redis, "PRUNE_PAGE", 1)  # a batch of one hold
    other = await store.reopen()
    script = store._audited_batch
    keys = store._keys.account(card.account_id)
    moved = []

    async def made_again_first(batch_keys, args):  # noqa: ANN001, ANN202
        if not moved and keys.holds in batch_keys and "2|1125120000|123456|T1" in args:
            moved.append(await other.prune_journal(CUT))  # the other run's own
            await other.commit(hold(card, 2, 200, ts=NOW + 80))  # open, the same match key
        return await script(batch_keys, args)

    monkeypatch.setattr(store, "_audited_batch", made_again_first)
    try:
        await store.prune_journal(CUT, batch_entry(), SEAL)
        assert moved
        held = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 90, original_key=key(2)))
        assert held.original is not None and held.original.amount_minor == 200
        assert (await store.get_account(card.account_id)).holds == holding + 200
        total = await counted(store)  # this run's entries, and the other run's deletions
        assert total.get("entries", 0) + moved[0].entries == 6
        assert total.get("holds", 0) + moved[0].holds == 3
        await chain_ok(store)
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["redis", "redis-cluster"], indirect=True)
async def test_two_runs_at_once_count_each_deletion_once(store, monkeypatch):  # noqa: F811
    """Where a run's writes are not one script with its entry (a cluster, or unaudited):
    another run deletes the entries this one read before its transaction; this one counts
    what its own transaction deleted (none), so the two runs add up to what went."""
    await journal_to_prune(store)
    other = await store.reopen()
    read = store._old_entries
    others: list[Pruned] = []

    async def another_run_after_the_read(*args):  # noqa: ANN002, ANN202
        old = await read(*args)
        if not others:
            others.append(await other.prune_journal(CUT))
        return old

    monkeypatch.setattr(store, "_old_entries", another_run_after_the_read)
    audited = store._cluster  # a single Redis audits in one script, not this path
    try:
        mine = await store.prune_journal(CUT, batch_entry() if audited else None, SEAL)
        assert others == [Pruned(6, 3)] and mine == Pruned(0, 0)
        assert await counted(store) == {"batches": 0}
        assert await journal_left(store) == 2
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_reports_of_entries_gone_before_go_with_the_next_run(store):  # noqa: F811
    """The batches delete their own entries' reports; a report left of an entry gone before
    (an older authhost's run cut short between its batches and its reports, or written for
    an entry the run deleted meanwhile, as here) goes with the next run, even one with
    nothing else to delete, as it did before; a kept entry's report stays. (Redis never
    swept these: a report names its entry by id only, and the entry's account is not the
    card's own once the card moved.)"""
    card = await journal_to_prune(store)
    ids = {e.stan: e.journal_id for e in await store.journal(JournalQuery(limit=100))}
    assert await store.prune_journal(CUT, batch_entry(), SEAL) == Pruned(6, 3)
    gone = FraudReport(ids["000002"], card.card_id, True, "chargeback", NOW + 90)
    kept = FraudReport(ids["000060"], card.card_id, True, "cardholder", NOW + 90)
    await store.put_fraud_report(gone)
    await store.put_fraud_report(kept)
    assert await store.prune_journal(CUT, batch_entry(), SEAL) == Pruned()
    assert [r.journal_id for r in await store.fraud_reports()] == [ids["000060"]]


@SINGLE
async def test_a_result_whose_key_is_gone_is_not_counted(store):  # noqa: F811
    """An age index's member can outlive its key (an older authhost's forgotten placeholder,
    deleted without the index the first run gave it): the batch removes the member and
    counts only the results it deleted, as the unaudited run (``PRUNE_WRITTEN``) does."""
    with written_days_ago(100):
        for n in range(3):
            await store.reserve_result(f"card.issue:old{n}", placeholder(0))
    await store._client.delete([store._keys.idempotency("card.issue:old1")])  # the older one's
    action = "idempotency.prune"
    assert await store.prune_idempotency(_real_time() - 35 * DAY, batch_entry(action), SEAL) == 2
    assert await counted(store, action) == {"batches": 1, "results": 2}
    assert await store._client.zcard(store._keys.idempotency_written) == 0
    await chain_ok(store)


@STORES
async def test_every_batch_entry_of_a_journal_run_says_both_kinds(store, small_batches):  # noqa: F811
    """A batch of holds only (or of entries only) says 0 of the other kind: the entries read
    the same on every store."""
    await journal_to_prune(store)
    await store.prune_journal(CUT, batch_entry(), SEAL)
    afters = [json.loads(e.after) for e in await store.audit(limit=100)]
    assert afters and all(set(a) == {"entries", "holds"} for a in afters), afters
    assert any(0 in a.values() for a in afters)  # a batch of one kind only


@pytest.mark.parametrize("store", ["redis-cluster"], indirect=True)
async def test_on_a_cluster_a_run_that_fails_midway_audits_what_it_deleted(
    store,  # noqa: F811
    monkeypatch,
):
    """The second account's write fails (Redis refusing it): the run raises, after the
    entry of what the accounts before it deleted (fewer than a page: no entry was due yet),
    rather than leaving those deletions without one while the audit log takes writes."""
    await journal_to_prune(store)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=0))
    second, _, blob = make_card(account_id="acc-2")
    await store.create_card(second, blob)
    await store.commit(Commit(entry(second, 7, 0, response_code="05")))
    prune = store._prune_entries

    async def the_second_fails(ak, before):  # noqa: ANN001, ANN202
        if ak.account_id == "acc-2":  # (after acc-1: the accounts in order)
            raise StoreUnavailable("the node refused the write")
        return await prune(ak, before)

    monkeypatch.setattr(store, "_prune_entries", the_second_fails)
    with pytest.raises(StoreUnavailable):
        await store.prune_journal(CUT, batch_entry(), SEAL)
    left = await journal_left(store)
    total = await counted(store)
    assert total == {"batches": 1, "entries": 6, "holds": 3} and left == 3
    assert (await chain_ok(store))["verified"] == 1


@SINGLE
async def test_a_run_that_another_run_keeps_ahead_of_ends(store, monkeypatch):  # noqa: F811
    """Two server processes prune at once, one a batch ahead of the other: each batch the
    one behind gathers the other has just deleted. More such races than
    ``ACCOUNT_AUDIT_TRIES`` are no failure (each is the other run's progress); the one
    behind deletes and counts nothing twice, and ends once nothing is left."""
    card, _ = await seeded(store, balance=50_000)
    for n in range(60):  # sixty old declines: sixty batches of one
        await store.commit(Commit(entry(card, n, 0, ts=NOW - 100 + n, response_code="05")))
    monkeypatch.setattr(authhost.store.redis, "PRUNE_PAGE", 1)
    script, taken = store._audited_batch, set()

    async def the_other_run_first(keys, args):  # noqa: ANN001, ANN202
        steps = tuple(args[3:])  # the batch, whatever entry it is sent with
        if steps not in taken:  # the other run, ahead, deletes it with its own entry
            taken.add(steps)
            assert await script(keys, args) == 1
        return await script(keys, args)

    monkeypatch.setattr(store, "_audited_batch", the_other_run_first)
    assert await store.prune_journal(CUT, batch_entry(), SEAL) == Pruned()
    assert len(taken) == 60 and await journal_left(store) == 0
    assert await counted(store) == {"batches": 60, "entries": 60, "holds": 0}  # the other's
    await chain_ok(store)
