"""Admin writes of money, accounts and products with their audit entry (PCI DSS 10: no change
without its record): a funds change, a credit limit, a ledger sync, a product and a new
account are one write with their entry on SQLite (one transaction) and on a single Redis (one script), both or neither;
on Redis Cluster the entry follows the write (the audit log is in another hash slot).

Real components only: SQLite files, a real redis-server and a real one-node Redis Cluster.
Another writer is another store opened on the same data, as another process would be; a crash
is a real process killed inside its write (SQLite), or a method of the real store wrapped to
raise in its place (Redis: the process dying before its one script), as
test_store_card_audit does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from audited_writes import (
    CLOSED,
    DISPUTED,
    ENTRIES,
    LIST,
    NEW_ACCOUNT,
    NEW_CARD,
    NEW_PAN,
    OPENED,
    OPS,
    REPORTED,
    list_made_from,
    made_from,
    seeded_dispute,
)
from test_admin_support import demo_security
from test_store_card_audit import SEAL, BrokenSeal, Crash, chain_ok
from test_store_contract import (  # noqa: F401 - fixtures
    NOW,
    PRODUCT,
    redis_cluster_url,
    store,
)
from test_store_contract import seeded as seeded_card

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError, NotFoundError
from authhost.admin.service import CardService
from authhost.cards.model import Account, CardKind
from authhost.store import redis as redis_store
from authhost.store.interface import (
    BeyondBound,
    Conflict,
    InsufficientFunds,
    LedgerRefused,
    NotFound,
    StoreUnavailable,
)
from authhost.store.money import BALANCE_BOUND
from authhost.store.records import AuditEntry, FraudReport

STORES = pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
SINGLE = pytest.mark.parametrize("store", ["redis"], indirect=True)
REDIS = pytest.mark.parametrize("store", ["redis", "redis-cluster"], indirect=True)
EACH_OP = pytest.mark.parametrize("op", list(OPS))


async def seeded(db, balance: int = 100_000) -> None:
    """test_store_contract's account, card and product, and a dispute on the card (unaudited:
    the seeding's) for "dispute_step" to step."""
    await seeded_card(db, balance=balance)
    await seeded_dispute(db)


async def state(db) -> tuple:
    """What the audited writes change: the account, its last ledger sync, the product, the
    funds key's record, the new account and every account's list, the cards (the new one,
    every one, what the new PAN finds), the closed-account marker, the named list and the
    lists' names, the fraud reports, the disputes, and (last) the audit log."""
    return (
        await db.get_account("acc-1"),
        await db.ledger_state("acc-1"),
        await db.get_product(PRODUCT.product_id),
        await db.funds_change_of("acc-1", "k1"),
        await db.get_account(NEW_ACCOUNT),
        await db.list_accounts(),
        await db.get_card(NEW_CARD),
        await db.list_cards(limit=1000),
        await db.find_card(NEW_PAN),
        await db.idempotent_result(CLOSED),
        await db.get_list(LIST),
        await db.list_names(),
        await db.fraud_reports(),
        await db.disputes(limit=1000),
        await db.audit(limit=1000),
    )


async def subjects_actions(db) -> list[tuple[str, str]]:
    return [(e.subject, e.action) for e in await db.audit(limit=1000)]


# --- both stores: both or neither ------------------------------------------------------------


@STORES
@EACH_OP
async def test_the_write_and_its_entry_are_both_there(store, op):  # noqa: F811
    await seeded(store, balance=10_000)
    write, _ = OPS[op]
    await write(store, SEAL)
    found = await state(store)
    account, ledger, product, record, created, listed, card, cards, by_pan, marker = found[:10]
    values, names, reports, disputes, audit = found[10:]
    assert len(audit) == ENTRIES.get(op, 1)
    entry = audit[0]
    assert entry.action == {
        "funds": "account.funds",
        "product": "product.update",
        "issue": "card.issue",
        "renew": "card.renew",
        "reissue": "card.reissue",
        "list": "list.put",
        "wallet": "card.suspend",
        "fraud": "journal.fraud_report",
        "dispute_open": "dispute.open",
        "dispute_step": "dispute.chargeback",
    }.get(op, f"account.{op}")
    assert all(e.chain for e in audit)  # sealed, chained to the newest entry
    if op in ("funds", "credit_limit", "ledger_sync"):  # the account as the write found it
        assert json.loads(entry.before) == {"balance": 10_000}
    old = [c for c in cards if c.card_id != NEW_CARD][0]
    successor = card is not None and card.replaces == old.card_id == card.replaces
    successor = successor and old.replaced_by == NEW_CARD and len(cards) == 2
    assert {
        "funds": account.balance == 10_250 and record is not None,
        "credit_limit": account.credit_limit == 5_000,
        "ledger_sync": account.balance == 7_000 and ledger is not None,
        "product": product.name == "Debit EUR 2" and product.version == 1,
        "create": created is not None
        and created.credit_limit == 4_000
        and [a.account_id for a in listed] == ["acc-1", NEW_ACCOUNT],
        "issue": card is not None and by_pan == card and len(cards) == 2,
        "renew": successor and card.pan_index == old.pan_index and by_pan is None,
        "reissue": successor and by_pan == card,
        "close": marker == '{"closed_at":1}',
        "list": values == {"411111", "476173"} and names == [LIST],
        "wallet": cards[0].state.value == "suspended",
        "fraud": [(r.journal_id, r.report_id) for r in reports] == [(REPORTED, 1)],
        "dispute_open": [d.dispute_id for d in disputes] == [DISPUTED, OPENED],
        "dispute_step": [(d.stage, d.version) for d in disputes] == [("chargeback", 1)],
    }[op]
    if op == "wallet":  # the card's own entry, then its tokens' on the same card
        assert [e.action for e in audit[1:]] == ["card.token_suspended"] * 2
        assert {e.subject for e in audit} == {cards[0].card_id}
    else:  # a successor's second entry: the new card's issue
        assert [e.subject for e in audit[1:]] == [NEW_CARD] * (len(audit) - 1)
    assert (await chain_ok(store))["verified"] == len(audit)


@STORES
@EACH_OP
async def test_a_seal_that_fails_leaves_neither(store, op):  # noqa: F811
    """The security module gone after the entry was made: nothing of the write either."""
    await seeded(store, balance=10_000)
    before = await state(store)
    with pytest.raises(OSError):
        await OPS[op][0](store, BrokenSeal())
    assert await state(store) == before


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
@EACH_OP
async def test_a_process_killed_inside_its_write_leaves_neither_on_sqlite(
    store,  # noqa: F811
    op,
    tmp_path,
):
    """A real process, on the same file, dies inside the write's transaction (its seal ends
    the process, after the account or product row was changed): the file keeps neither."""
    await seeded(store, balance=10_000)
    before = await state(store)
    child = f"""
import os, sys, trio
sys.path.insert(0, {str(Path(__file__).parent)!r})
from audited_writes import OPS
from authhost.store import open_store

class Dying:
    def seal(self, previous, fields):
        os._exit(7)

async def main():
    db = await open_store({f"sqlite:///{tmp_path / 'cards.db'}"!r})
    await OPS[{op!r}][0](db, Dying())

trio.run(main)
"""
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60)
    )
    assert done.returncode == 7, done.stderr.decode()[-2000:]
    assert await state(store) == before
    reopened = await store.reopen()  # as the next process finds the file
    try:
        assert await state(reopened) == before
        await OPS[op][0](reopened, SEAL)  # made again: once
        assert len(await reopened.audit()) == ENTRIES.get(op, 1)
        await chain_ok(reopened)
    finally:
        await reopened.close()


@SINGLE
@EACH_OP
async def test_a_process_dying_before_its_one_script_leaves_neither_on_redis(
    store,  # noqa: F811
    op,
    monkeypatch,
):
    """Sealed, then the process dies before its one script: neither the write nor the entry
    (before, the write was made first and its entry appended after it)."""
    await seeded(store, balance=10_000)
    before = await state(store)
    write, script = OPS[op]

    async def dying(keys, args):  # noqa: ANN001, ANN202
        raise Crash("before the script")

    monkeypatch.setattr(store, script, dying)
    with pytest.raises(Crash):
        await write(store, SEAL)
    assert await state(store) == before
    monkeypatch.undo()
    await write(store, SEAL)  # made again: once
    assert len(await store.audit()) == ENTRIES.get(op, 1)
    await chain_ok(store)


@STORES
async def test_a_refused_write_appends_no_entry(store):  # noqa: F811
    """Short of funds, beyond the bound, a missing account, a key used before, a stale
    product, a ledger cursor older than one applied: nothing written, no entry."""
    await seeded(store, balance=10_000)
    funds = made_from("account.funds")
    with pytest.raises(InsufficientFunds):
        await store.change_funds("acc-1", -10_001, audit=funds, seal=SEAL)
    with pytest.raises(BeyondBound):
        await store.change_funds("acc-1", BALANCE_BOUND, audit=funds, seal=SEAL)
    for missing in (
        lambda: store.change_funds("nope", 1, audit=funds, seal=SEAL),
        lambda: store.set_credit_limit("nope", 1, made_from("account.credit_limit"), SEAL),
        lambda: store.sync_ledger("nope", 1, 0, NOW, made_from("account.ledger_sync"), SEAL),
    ):
        with pytest.raises(NotFound):
            await missing()
    with pytest.raises(BeyondBound):
        await store.sync_ledger("acc-1", BALANCE_BOUND + 1, 0, NOW, funds, SEAL)
    with pytest.raises(Conflict):
        await OPS["product"][0](store, SEAL)  # made on version 0 ...
        await OPS["product"][0](store, SEAL)  # ... and again: stale
    assert await subjects_actions(store) == [(PRODUCT.product_id, "product.update")]

    first = await store.change_funds("acc-1", 300, key="load", fingerprint="f", audit=funds,
                                     seal=SEAL)  # fmt: skip
    again = await store.change_funds("acc-1", 300, key="load", fingerprint="f", audit=funds,
                                     seal=SEAL)  # fmt: skip
    assert again.repeated and again.account == first.account  # the money moved once ...
    assert (await subjects_actions(store)).count(("acc-1", "account.funds")) == 1  # ... one entry
    await store.sync_ledger("acc-1", 5_000, 2, NOW, made_from("account.ledger_sync"), SEAL)
    with pytest.raises(LedgerRefused):
        await store.sync_ledger("acc-1", 5_000, 1, NOW, made_from("account.ledger_sync"), SEAL)
    assert (await subjects_actions(store))[-1] == ("acc-1", "account.ledger_sync")
    assert len(await store.audit()) == 3
    await chain_ok(store)


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_a_refused_dispute_write_appends_no_entry(store):  # noqa: F811
    """A dispute's step over a version another step moved, a step of a dispute that is not
    there (over a version or none), a dispute opened on a charge that has one: nothing written, no entry (on every
    store); the step made over the version it read lands once, with its entry."""
    await seeded(store, balance=10_000)
    await OPS["dispute_step"][0](store, SEAL)
    stepped = await state(store)
    read = await store.get_dispute(DISPUTED)
    assert read is not None and read.version == 1
    stale = AuditEntry(NOW, "ops2", "dispute.represented", DISPUTED, "{}", "{}")
    with pytest.raises(Conflict):  # made from version 0, stored at 1
        await store.update_dispute(replace(read, stage="represented"), 0, stale, SEAL)
    with pytest.raises(NotFound):
        await store.update_dispute(replace(read, dispute_id="dsp-none"), 1, stale, SEAL)
    with pytest.raises(NotFound):  # with its entry, even over no version: on a cluster too
        await store.update_dispute(replace(read, dispute_id="dsp-none"), None, stale, SEAL)
    assert await store.get_dispute("dsp-none") is None
    again = AuditEntry(NOW, "ops2", "dispute.open", "dsp-again", "", "{}")
    with pytest.raises(Conflict, match="disputed already"):  # its charge has DISPUTED
        await store.open_dispute(replace(read, dispute_id="dsp-again", version=0), again, SEAL)
    assert await state(store) == stepped
    assert await subjects_actions(store) == [(DISPUTED, "dispute.chargeback")]
    assert (await chain_ok(store))["verified"] == 1


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_a_create_of_a_taken_id_writes_nothing_and_no_entry(store):  # noqa: F811
    """An account whose id is taken: the account as it was, no entry (on every store); the
    create of a free id lands with its entry, and one at once with it on the same id is
    refused (the store's own check, not a read before it)."""
    await seeded(store, balance=10_000)
    before = await state(store)
    entry = AuditEntry(NOW, "ops1", "account.create", "acc-1", "", "{}")
    with pytest.raises(Conflict, match="acc-1 already exists"):
        await store.create_account(Account("acc-1", "978", CardKind.CREDIT), entry, SEAL)
    assert await state(store) == before
    outcomes: list[str] = []

    async def create() -> None:
        try:
            await OPS["create"][0](store, SEAL)
            outcomes.append("created")
        except Conflict:
            outcomes.append("refused")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create)
        nursery.start_soon(create)
    assert sorted(outcomes) == ["created", "refused"]
    assert await subjects_actions(store) == [(NEW_ACCOUNT, "account.create")]
    assert (await chain_ok(store))["verified"] == 1


@STORES
async def test_concurrent_writers_in_two_processes_make_one_chain(store):  # noqa: F811
    """Loads from two store connections (as two processes) and plain appends, all at once:
    every load moved its money once with its entry, and the entries make one chain."""
    await seeded(store, balance=0)
    other = await store.reopen()
    try:
        async with trio.open_nursery() as nursery:
            for n in range(12):
                db = store if n % 2 else other
                nursery.start_soon(
                    lambda db=db, n=n: db.change_funds(
                        "acc-1",
                        10 + n,
                        key=f"k{n}",
                        fingerprint="f",
                        audit=made_from("account.funds"),
                        seal=SEAL,
                    )  # fmt: skip
                )
                nursery.start_soon(
                    other.append_audit, AuditEntry(NOW, "ops2", "list.put", f"L{n}"), SEAL
                )
        assert (await store.get_account("acc-1")).balance == sum(10 + n for n in range(12))
        actions = [a for _, a in await subjects_actions(store)]
        assert actions.count("account.funds") == 12 and actions.count("list.put") == 12
        assert (await chain_ok(store))["verified"] == 24
    finally:
        await other.close()


# --- Redis: the compare-and-set on the account and on the chain's head -------------------


@REDIS
@EACH_OP
async def test_a_head_moved_by_another_writer_is_sealed_again(
    store,  # noqa: F811
    op,
    monkeypatch,
):
    """Another process appends after this one read the chain's head: the script writes
    nothing, the entry is sealed after the new head and sent again (a cluster's append after
    the write does the same); the chain verifies."""
    await seeded(store, balance=10_000)
    read_head = store._audit_head
    heads: list[str] = []

    async def head_then_another_entry() -> str:
        head = await read_head()
        heads.append(head)
        if len(heads) == 1:
            await other.append_audit(AuditEntry(NOW, "ops2", "card.note", "x"), SEAL)
        return head

    monkeypatch.setattr(store, "_audit_head", head_then_another_entry)
    other = await store.reopen()
    try:
        await OPS[op][0](store, SEAL)
        assert heads[0] != heads[1]  # (a cluster reads it again for a second entry)
        assert [a for _, a in await subjects_actions(store)][0] == "card.note"
        assert len(await store.audit()) == 1 + ENTRIES.get(op, 1)
        assert (await chain_ok(store))["verified"] == 1 + ENTRIES.get(op, 1)
    finally:
        await other.close()


@REDIS
async def test_an_entry_made_from_a_balance_that_moved_is_made_again(
    store,  # noqa: F811
    monkeypatch,
):
    """Another write moves the balance between the store's read and its script: nothing is
    written, and the entry is made again from the balance as it is, so the balance an entry
    records is the one its write found, never one read before another write."""
    await seeded(store, balance=10_000)
    read = store.get_account
    reads = 0

    async def read_then_a_racing_load(account_id: str) -> Account | None:
        nonlocal reads
        account = await read(account_id)
        reads += 1
        if reads == 1:
            await other.change_funds("acc-1", 1)  # an advice, a load elsewhere
        return account

    monkeypatch.setattr(store, "get_account", read_then_a_racing_load)
    other = await store.reopen()
    try:
        changed = await store.change_funds(
            "acc-1", 250, audit=made_from("account.funds"), seal=SEAL
        )
        assert reads == 2 and changed.account.balance == 10_251
        [entry] = await store.audit()
        assert json.loads(entry.before) == {"balance": 10_001}  # found by the write
        await chain_ok(store)
    finally:
        await other.close()


@SINGLE
async def test_an_account_that_moves_at_every_try_is_left_alone(
    store,  # noqa: F811
    monkeypatch,
):
    """A balance that moves between every read and every script: after the tries, the
    change is refused as the store being busy (503, try again), with nothing written."""
    await seeded(store, balance=10_000)
    monkeypatch.setattr(redis_store, "ACCOUNT_AUDIT_TRIES", 3)
    read = store.get_account

    async def read_then_a_racing_load(account_id: str) -> Account | None:
        account = await read(account_id)
        await other.change_funds("acc-1", 1)
        return account

    monkeypatch.setattr(store, "get_account", read_then_a_racing_load)
    other = await store.reopen()
    try:
        with pytest.raises(StoreUnavailable, match="3 tries"):
            await store.set_credit_limit("acc-1", 500, made_from("account.credit_limit"), SEAL)
        account = await other.get_account("acc-1")
        assert account.credit_limit == 0 and account.balance == 10_003  # the others' only
        assert await store.audit() == []
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["redis-cluster"], indirect=True)
@EACH_OP
async def test_on_a_cluster_the_entry_follows_the_write(store, op):  # noqa: F811
    """A cluster refuses one script over the account's (or products') and the audit log's
    slots: the write is made first, and an entry that fails after it is missing (README,
    Known limitations); made without failure, it verifies."""
    await seeded(store, balance=10_000)
    before = await state(store)
    with pytest.raises(OSError):
        await OPS[op][0](store, BrokenSeal())
    assert (await state(store))[:-1] != before[:-1]  # written ...
    assert await store.audit() == []  # ... without its entry


# --- the service: what the entries record ----------------------------------------------------


@STORES
async def test_the_service_writes_each_change_with_its_entry(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """Through the card service: the entries record the balance and limit as the write found
    them and set them, what the operator asked (a PAN in it masked), no holds; a resent load
    writes no second entry; the chain verifies. No entry is appended after its write (an
    append fails the test: on SQLite and a single Redis the entry is in the write)."""
    service = CardService(store, demo_security(tmp_path), "ops1")

    async def no_append_after(*args):  # noqa: ANN002, ANN202
        raise Crash("an entry appended after its write")

    monkeypatch.setattr(store, "append_audit", no_append_after)
    await service.create_account(rq.NewAccount(account_id="a1", balance=10_000))
    with pytest.raises(ConflictError, match="a1 already exists"):  # refused: no entry
        await service.create_account(rq.NewAccount(account_id="a1", balance=5))
    await service.create_product(rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit",
                                               bin="476173"))  # fmt: skip

    load = rq.FundsChange(amount_minor=2_500, reason="salary, card 4111111111111111")
    first = await service.change_funds("a1", load, idempotency_key="core-1")
    assert await service.change_funds("a1", load, idempotency_key="core-1") == first
    assert first["balance"] == 12_500
    with pytest.raises(ConflictError):
        await service.change_funds("a1", rq.FundsChange(amount_minor=-99_999))
    with pytest.raises(NotFoundError):
        await service.change_funds("a9", load)
    await service.set_credit_limit("a1", rq.CreditLimitChange(credit_limit=3_000))
    await service.sync_ledger("a1", rq.LedgerBalance(ledger_balance_minor=8_000,
                                                     through_journal_id=0, reason="close"))  # fmt: skip
    await service.update_product("p1", rq.ProductChange(name="Debit 2"))
    with pytest.raises(ConflictError):
        await service.update_product("p1", rq.ProductChange(name="Debit 3", version=0))

    entries = {
        e["action"]: {"before": json.loads(e["before"] or "{}"), "after": json.loads(e["after"])}
        for e in await service.audit(limit=100)
    }
    assert list(entries) == [
        "account.create", "product.create", "account.funds", "account.credit_limit",
        "account.ledger_sync", "product.update",
    ]  # fmt: skip
    money = {"account_id": "a1", "currency": "978", "kind": "debit", "credit_limit": 0}
    assert entries["account.create"]["after"]["balance"] == 10_000
    funds = entries["account.funds"]
    assert funds["before"] == {**money, "balance": 10_000}
    assert funds["after"] == {**money, "balance": 12_500, "amount_minor": 2_500,
                              "reason": "salary, card 411111******1111"}  # fmt: skip
    limit = entries["account.credit_limit"]
    assert limit["before"] == {**money, "balance": 12_500}
    assert limit["after"] == {**money, "balance": 12_500, "credit_limit": 3_000}
    ledger = entries["account.ledger_sync"]
    assert ledger["before"] == {**money, "balance": 12_500, "credit_limit": 3_000}
    assert ledger["after"] == {"ledger_balance_minor": 8_000, "through_journal_id": 0,
                               "reason": "close"}  # fmt: skip
    assert entries["product.update"]["after"]["name"] == "Debit 2"
    assert entries["product.update"]["before"]["name"] == "Debit"
    verified = await service.verify_audit()
    assert verified["ok"] and verified["verified"] == 6, verified


@STORES
async def test_the_service_closes_an_account_with_its_entry_in_the_marker_write(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """Through the card service: a closure refused (a balance) writes neither its marker nor
    its entry; one made writes account.close with the closed-account marker (none appended
    after a write: an append fails the test) and card.cancel with each card; run again, it
    finds the marker and writes no second account.close. The chain verifies."""
    service = CardService(store, demo_security(tmp_path), "ops1")

    async def no_append_after(*args):  # noqa: ANN002, ANN202
        raise Crash("an entry appended after its write")

    monkeypatch.setattr(store, "append_audit", no_append_after)
    await service.create_account(rq.NewAccount(account_id="a1", balance=500))
    await service.create_product(rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit",
                                               bin="476173"))  # fmt: skip
    card = await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1"))
    with pytest.raises(ConflictError, match="balance of 500"):
        await service.close_account("a1", "moved abroad")
    assert await store.idempotent_result("account.closed:a1") is None
    assert [e["action"] for e in await service.audit(subject="a1")] == ["account.create"]

    await service.change_funds("a1", rq.FundsChange(amount_minor=-500, reason="paid out"))
    closed = await service.close_account("a1", "moved abroad")
    assert closed["cancelled_cards"] == [card["card_id"]]
    again = await service.close_account("a1", "moved abroad")
    assert again["cancelled_cards"] == []
    [*_, close] = await service.audit(subject="a1")
    assert [e["action"] for e in await service.audit(subject="a1")].count("account.close") == 1
    assert json.loads(close["after"])["reason"] == "moved abroad"
    assert json.loads(close["before"])["balance"] == 0
    marker = json.loads(await store.idempotent_result("account.closed:a1"))
    assert json.loads(close["after"])["closed_at"] == marker["closed_at"]
    cancels = await service.audit(subject=card["card_id"])
    assert [e["action"] for e in cancels] == ["card.issue", "card.cancel"]
    verified = await service.verify_audit()
    assert verified["ok"] and verified["verified"] == 6, verified


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_a_marker_already_there_appends_no_entry(store):  # noqa: F811
    """A marker kept before (an account closed once): the marker as it was, no entry."""
    await seeded(store)
    assert await store.put_marker(CLOSED, '{"closed_at":0}') is None
    before = await state(store)
    assert await OPS["close"][0](store, SEAL) is None  # (the op answers nothing)
    assert await store.put_marker(CLOSED, "{}", AuditEntry(NOW, "o", "account.close", "acc-1"),
                                  SEAL) == '{"closed_at":0}'  # fmt: skip
    assert await state(store) == before


@STORES
async def test_the_service_writes_a_list_with_its_entry(store, tmp_path, monkeypatch):  # noqa: F811
    """Through the card service: a named list's entry says what the write added and removed
    from the values it replaced, in the list's own write (an append fails the test)."""
    service = CardService(store, demo_security(tmp_path), "ops1")

    async def no_append_after(*args):  # noqa: ANN002, ANN202
        raise Crash("an entry appended after its write")

    monkeypatch.setattr(store, "append_audit", no_append_after)
    await service.put_list("bins", rq.ListValues(values=["411111", "476173"]))
    await store.put_list("bins", ["411111", "476173", "520000"])  # another writer, unaudited
    assert await service.put_list("bins", rq.ListValues(values=["476173", "999999"])) == {
        "name": "bins", "values": ["476173", "999999"]
    }  # fmt: skip
    first, second = await service.audit(subject="bins")
    assert json.loads(first["after"]) == {"added": ["411111", "476173"], "removed": [], "size": 2}
    assert json.loads(second["before"]) == {"size": 3}  # as the write found it
    assert json.loads(second["after"]) == {
        "added": ["999999"], "removed": ["411111", "520000"], "size": 2
    }  # fmt: skip
    assert (await service.verify_audit())["ok"]


@STORES
async def test_a_long_list_is_written_whole_with_its_entry(store):  # noqa: F811
    """More values than a script passes to one command (written 500 at a time)."""
    await store.put_list(LIST, [f"a{n}" for n in range(1_200)], list_made_from(), SEAL)
    await store.put_list(LIST, [f"b{n}" for n in range(1_301)], list_made_from(), SEAL)
    assert await store.get_list(LIST) == {f"b{n}" for n in range(1_301)}
    assert [json.loads(e.before) for e in await store.audit()] == [{"size": 0}, {"size": 1_200}]
    await chain_ok(store)


@STORES
async def test_a_fraud_report_entry_is_made_from_the_report_it_replaces(store):  # noqa: F811
    """A report replacing another: its entry names the one replaced, as the write found it."""
    await seeded(store)
    await store.put_fraud_report(FraudReport(REPORTED, "card", False, "cardholder", NOW, ""))
    await OPS["fraud"][0](store, SEAL)
    [entry] = await store.audit()
    assert json.loads(entry.before) == "cardholder"
    [report] = await store.fraud_reports()
    assert report.source == "chargeback" and report.report_id == 2
    await chain_ok(store)


@SINGLE
async def test_a_fraud_report_that_moved_since_it_was_read_is_read_again(
    store,  # noqa: F811
    monkeypatch,
):
    """Another writer reports on the entry between the store's read and its script: nothing
    is written, and the entry is made again from the report the write replaces."""
    await seeded(store)
    read = store._client.hget
    reads = 0

    async def read_then_another_report(key, field):  # noqa: ANN001, ANN202
        nonlocal reads
        found = await read(key, field)
        reads += 1
        if reads == 1:
            report = FraudReport(REPORTED, "card", False, "analyst", NOW, "")
            await other.put_fraud_report(report)
        return found

    other = await store.reopen()
    monkeypatch.setattr(store._client, "hget", read_then_another_report)
    try:
        await OPS["fraud"][0](store, SEAL)
        assert reads == 2
        [entry] = await store.audit()
        assert json.loads(entry.before) == "analyst"  # found by the write
        assert [r.source for r in await store.fraud_reports()] == ["chargeback"]
        await chain_ok(store)
    finally:
        await other.close()


@SINGLE
async def test_a_list_that_moved_since_it_was_read_is_read_again(store, monkeypatch):  # noqa: F811
    """Another writer changes the list between the store's read and its script: nothing is
    written, the entry is made again from the list as it is; a list that moves at every
    try is refused as the store being busy, nothing written."""
    read = store.get_list
    reads = 0

    async def read_then_another_write(name: str) -> frozenset[str]:
        nonlocal reads
        found = await read(name)
        reads += 1
        if reads == 1 or always:
            await other.put_list(name, [f"v{reads}"])
        return found

    always = False
    monkeypatch.setattr(store, "get_list", read_then_another_write)
    other = await store.reopen()
    try:
        await OPS["list"][0](store, SEAL)
        assert reads == 2
        [entry] = await store.audit()
        assert json.loads(entry.before) == {"size": 1}  # v1, found by the write
        assert await read(LIST) == {"411111", "476173"}
        monkeypatch.setattr(redis_store, "ACCOUNT_AUDIT_TRIES", 3)
        always = True
        with pytest.raises(StoreUnavailable, match="3 tries"):
            await store.put_list(LIST, ["x"], list_made_from(), SEAL)
        assert await read(LIST) == {"v5"}  # the other writer's only
        assert len(await store.audit()) == 1
        await chain_ok(store)
    finally:
        await other.close()


# --- contention: many writers at once ------------------------------------------------------


@STORES
async def test_many_loads_at_once_on_one_account_all_land(store):  # noqa: F811
    """A core banking system's burst of loads on one account, all at once from one process,
    more of them than ACCOUNT_AUDIT_TRIES: each moves its money once with its entry (none
    refused as the store being busy because the others' loads moved the balance first)."""
    await seeded(store, balance=0)
    loads = 200
    async with trio.open_nursery() as nursery:
        for n in range(loads):
            nursery.start_soon(
                lambda n=n: store.change_funds(
                    "acc-1",
                    1 + n,
                    key=f"b{n}",
                    fingerprint="f",
                    audit=made_from("account.funds"),
                    seal=SEAL,
                )  # fmt: skip
            )
    assert (await store.get_account("acc-1")).balance == sum(1 + n for n in range(loads))
    assert [a for _, a in await subjects_actions(store)].count("account.funds") == loads
    assert (await chain_ok(store))["verified"] == loads


@SINGLE
async def test_a_head_other_writers_keep_moving_does_not_refuse_the_write(
    store,  # noqa: F811
    monkeypatch,
):
    """Other writers' entries (card changes, lists: other subjects) land between each read
    of the chain's head and the script, more times than ACCOUNT_AUDIT_TRIES: the account
    did not move, the others made progress, so the entry is sealed again until it lands, as
    a card's change or a plain append does; never a 503 for it."""
    await seeded(store, balance=10_000)
    read_head = store._audit_head
    others = 60

    async def head_then_another_entry() -> str:
        head = await read_head()
        if len(await store.audit(limit=1000)) < others:
            await other.append_audit(AuditEntry(NOW, "ops2", "list.put", "L"), SEAL)
        return head

    monkeypatch.setattr(store, "_audit_head", head_then_another_entry)
    other = await store.reopen()
    try:
        changed = await store.change_funds(
            "acc-1", 250, key="k", fingerprint="f", audit=made_from("account.funds"), seal=SEAL
        )
        assert changed.account.balance == 10_250
        actions = [a for _, a in await subjects_actions(store)]
        assert actions == ["list.put"] * others + ["account.funds"]
        assert (await chain_ok(store))["verified"] == others + 1
    finally:
        await other.close()


@STORES
async def test_two_creates_of_one_product_at_once_make_one_product(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """Both creates read "no product p2" before either writes (the store's read is held until
    both have made it): the second used to write over the first, each with its own
    product.create entry. The store writes a new product only where none has its id."""
    service = CardService(store, demo_security(tmp_path), "ops1")
    read = store.get_product
    readers: list[str] = []
    both_read = trio.Event()

    async def read_together(product_id: str):  # noqa: ANN202 - the real read, held
        found = await read(product_id)
        readers.append(product_id)
        if len(readers) == 2:
            both_read.set()
        await both_read.wait()
        return found

    monkeypatch.setattr(store, "get_product", read_together)
    outcomes: list[str] = []

    async def create(name: str) -> None:
        spec = rq.NewProduct(product_id="p2", issuer_id="bank", name=name, bin="476173")
        try:
            await service.create_product(spec)
            outcomes.append(name)
        except ConflictError as exc:
            assert "p2 already exists" in str(exc)
            outcomes.append("refused")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create, "Debit A")
        nursery.start_soon(create, "Debit B")
    monkeypatch.setattr(store, "get_product", read)
    assert sorted(outcomes)[-1] == "refused" and len(set(outcomes)) == 2, outcomes
    [made] = [name for name in outcomes if name != "refused"]
    assert (await store.get_product("p2")).name == made
    actions = [e["action"] for e in await service.audit(limit=10)]
    assert actions.count("product.create") == 1
    assert (await service.verify_audit())["ok"]


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_store_finish_records_an_interrupted_opening_with_one_entry(
    store,  # noqa: F811
    tmp_path,
):
    """An opening whose provisional credit was posted and whose dispute was never recorded
    (the process stopped between them): ``store finish`` records it with the one
    ``dispute.open`` entry, in the dispute's write (on a cluster right after it), and again
    records nothing; one recorded whose entry a cluster's failure cut off gets it, once."""
    from test_store_contract import entry as journal_entry

    from authhost.admin import disputes
    from authhost.admin.audit_verify import verify_audit_chain
    from authhost.admin.service.dispute_cases import DISPUTE_OPEN_INTENT
    from authhost.store import codec
    from authhost.store.interface import Commit, MoneyMove, Movement
    from authhost.store.records import Dispute

    card, _ = await seeded_card(store)
    service = CardService(store, demo_security(tmp_path), "ops1")
    opened = []
    for n, amount in ((1, 4_000), (2, 3_000)):
        charge = journal_entry(card, n, amount, mti="0200", message_class="financial")
        posted = await store.commit(
            Commit(charge, Movement("acc-1", MoneyMove.POST, amount), card_id=card.card_id)
        )
        jid = posted.journal.journal_id
        ref = disputes.charge_reference(jid, disputes.CREDIT)[-12:]
        credit = journal_entry(
            card, 10 + n, amount, mti="0220", terminal_id=disputes.TERMINAL, rrn=ref,
            dedupe_key=f"credit-{n}", match_key="", movement="credit", hold_amount=amount,
        )  # fmt: skip
        await store.commit(
            Commit(credit, Movement("acc-1", MoneyMove.CREDIT, amount), card_id=card.card_id)
        )
        dispute = Dispute(
            f"dsp-20260527-000000-000000-00{n}", jid, card.card_id, "acc-1", "amount", amount,
            "978", NOW + n, charged_at=NOW + n,
        )  # fmt: skip
        await store.put_intent(DISPUTE_OPEN_INTENT, str(jid), codec.dispute_to_json(dispute))
        opened.append(dispute)
    # the second's dispute was written, its entry not (a cluster's write, the append cut off)
    await store.open_dispute(replace(opened[1], credited_minor=3_000))
    await trio.sleep(0.01)

    done = await service.finish_dispute_openings(older_than_s=0)
    assert sorted(v["dispute_id"] for v in done["recorded"]) == [d.dispute_id for d in opened]
    assert done["dropped"] == 0
    for dispute in opened:
        stored = await store.get_dispute(dispute.dispute_id)
        assert stored is not None and stored.credited_minor == dispute.amount_minor
        entries = await store.audit(subject=dispute.dispute_id)
        assert [e.action for e in entries] == ["dispute.open"]
        assert json.loads(entries[0].after)["finished_after_a_failure"] is True
    assert await service.finish_dispute_openings(older_than_s=0) == {"recorded": [], "dropped": 0}
    assert len(await store.audit()) == 2
    verified = await verify_audit_chain(store, service.security.audit_seal, "")
    assert verified["ok"] and verified["verified"] == 2, verified
