"""A card change and its audit entry on Redis: one script on a single Redis (both or neither, as
in SQLite's one transaction), the entry right after the card on a cluster (another hash slot).

Real components only: a real redis-server and a real one-node Redis Cluster; another writer
is another store opened on the same keys, as another process would be. Failures are injected
by the sealer (the test's own) or by wrapping one method of the real store.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from test_admin_support import demo_security
from test_store_contract import (  # noqa: F401 - fixtures
    NOW,
    make_card,
    redis_cluster_url,
    seeded,
    store,
)
from test_store_contract import (
    entry as journal_entry,
)

from authhost.admin import requests as rq
from authhost.admin.audit_verify import verify_audit_chain
from authhost.admin.service import CardService
from authhost.cards import lifecycle
from authhost.cards.model import Account, CardKind, CardState
from authhost.cards.tokens import PaymentToken
from authhost.security.audit_chain import AuditSeal
from authhost.store.interface import Commit, Conflict, StoreError
from authhost.store.records import AuditEntry

SEAL = AuditSeal(os.urandom(32))
SINGLE = pytest.mark.parametrize("store", ["redis"], indirect=True)
BOTH = pytest.mark.parametrize("store", ["redis", "redis-cluster"], indirect=True)


class BrokenSeal:
    """A sealer that fails (the security module gone), after the head is read and before
    anything is written."""

    def seal(self, previous: str, fields: object) -> str:
        raise OSError("the security module is gone")


def suspended(card):
    return lifecycle.transition(card, "suspend", now=NOW)


def entry_for(card, action: str = "card.suspend", n: int = 0) -> AuditEntry:
    return AuditEntry(NOW + n, "ops1", action, card.card_id, '{"state":"active"}', "{}")


async def actions_on(db, card_id: str) -> list[str]:
    return [e.action for e in await db.audit(subject=card_id, limit=1000)]


async def chain_ok(db) -> dict:
    result = await verify_audit_chain(db, SEAL, "")
    assert result["ok"], result
    return result


class WatchingSeal:
    """The real seal, noting the card's version in Redis at the moment the entry is sealed."""

    def __init__(self, db, card) -> None:
        self.db, self.card, self.versions_seen = db, card, []

    def seal(self, previous: str, fields) -> str:
        self.versions_seen.append(stored_version(self.db, self.card))
        return SEAL.seal(previous, fields)


def stored_version(db, card) -> str:
    """The card's version as Redis holds it now, read over a plain socket: a sealer runs
    synchronously, inside the store's own call."""
    where = urlsplit(db.reopen.args[0])
    key = db._keys.account(card.account_id).card(card.card_id)
    commands = [("SELECT", where.path.strip("/") or "0"), ("HGET", key, "version")]
    payload = "".join(
        f"*{len(c)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in c) for c in commands
    )
    with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
        sock.sendall(payload.encode())
        reply = b""
        while reply.count(b"\r\n") < 3:  # +OK, then the bulk string's length and value
            reply += sock.recv(65536)
    return reply.decode().split("\r\n")[2]


@SINGLE
async def test_the_card_and_its_entry_are_written_together(store):  # noqa: F811
    """Nothing of the change is written until its entry is sealed; then one script writes
    both (before, the card was written first and the entry sealed after it)."""
    card, _ = await seeded(store)
    await store.append_audit(AuditEntry(NOW, "ops1", "card.note", "elsewhere"), SEAL)
    watching = WatchingSeal(store, card)
    stored = await store.update_card(suspended(card), entry_for(card), watching)
    assert watching.versions_seen == [str(card.version)]  # the card as it was, still
    assert stored.version == card.version + 1 and stored.state is CardState.SUSPENDED
    assert await store.get_card(card.card_id) == stored
    [written] = await store.audit(subject=card.card_id)
    assert written.action == "card.suspend" and written.chain
    assert (await chain_ok(store))["verified"] == 2
    head = await store._client.get(store._keys.audit_head)
    unsealed = await store.update_card(
        lifecycle.transition(stored, "resume", now=NOW), entry_for(card, "card.resume", 1)
    )  # written by something without the audit key: no chain value, the head kept
    assert unsealed.version == stored.version + 1
    last = (await store.audit(subject=card.card_id))[-1]
    assert last.action == "card.resume" and last.chain == ""
    assert await store._client.get(store._keys.audit_head) == head


class Crash(BaseException):
    """The process dying: nothing after it runs."""


@SINGLE
async def test_a_failure_before_the_one_script_leaves_the_card_as_it_was(
    store,  # noqa: F811
    monkeypatch,
):
    """Both or neither on a single Redis: the seal fails, or the process dies right before
    the script, so the card keeps its state and version and no entry is appended (before,
    the card was written first and the entry lost)."""
    card, _ = await seeded(store)
    with pytest.raises(OSError):
        await store.update_card(suspended(card), entry_for(card), BrokenSeal())
    assert await store.get_card(card.card_id) == card
    assert await actions_on(store, card.card_id) == []

    async def dying(keys, args):  # noqa: ANN001, ANN202
        raise Crash("before the script")

    monkeypatch.setattr(store, "_update_audited", dying)
    with pytest.raises(Crash):
        await store.update_card(suspended(card), entry_for(card), SEAL)
    assert await store.get_card(card.card_id) == card
    assert await store.audit() == []
    monkeypatch.undo()
    stored = await store.update_card(suspended(card), entry_for(card), SEAL)  # made again
    assert stored.version == card.version + 1
    assert await actions_on(store, card.card_id) == ["card.suspend"]
    await chain_ok(store)


@SINGLE
async def test_a_card_changed_while_its_entry_was_sealed_is_stale_and_nothing_is_written(
    store,  # noqa: F811
    monkeypatch,
):
    """Another writer changes the card after this one read the chain's head: the script
    checks the card's version with the head, refuses, and appends no entry."""
    card, _ = await seeded(store)
    with pytest.raises(Conflict):  # stale from the start: no entry either
        await store.update_card(replace(card, version=card.version - 1), entry_for(card), SEAL)
    read_head = store._audit_head

    async def head_then_a_racing_change() -> str:
        head = await read_head()
        current = await other.get_card(card.card_id)
        await other.update_card(replace(current, pin_tries=2))
        return head

    monkeypatch.setattr(store, "_audit_head", head_then_a_racing_change)
    other = await store.reopen()
    try:
        with pytest.raises(Conflict):
            await store.update_card(suspended(card), entry_for(card), SEAL)
        kept = await store.get_card(card.card_id)
        assert kept.pin_tries == 2 and kept.state is CardState.ACTIVE  # the other's change
        assert kept.version == card.version + 1
        assert await actions_on(store, card.card_id) == []
        assert await store.audit() == []  # not one entry, and no head moved
        assert await store._client.get(store._keys.audit_head) is None
    finally:
        await other.close()


def another_entry_after_the_first_head(store, other, monkeypatch) -> list[str]:  # noqa: ANN001, F811
    """Make ``other`` (another process) append an entry right after ``store`` first reads the
    chain's head; the heads ``store`` read, as it reads them."""
    read_head = store._audit_head
    heads: list[str] = []

    async def head_then_another_entry() -> str:
        head = await read_head()
        heads.append(head)
        if len(heads) == 1:  # another process appends after this one read the head
            await other.append_audit(AuditEntry(NOW, "ops2", "card.note", "x"), SEAL)
        return head

    monkeypatch.setattr(store, "_audit_head", head_then_another_entry)
    return heads


@BOTH
async def test_a_head_moved_by_another_writer_is_sealed_again_and_the_chain_verifies(
    store,  # noqa: F811
    monkeypatch,
):
    card, _ = await seeded(store)
    other = await store.reopen()
    heads = another_entry_after_the_first_head(store, other, monkeypatch)
    try:
        stored = await store.update_card(suspended(card), entry_for(card), SEAL)
        assert stored.version == card.version + 1
        assert len(heads) == 2 and heads[0] != heads[1]  # read again, sealed again
        assert [e.action for e in await store.audit()] == ["card.note", "card.suspend"]
        assert (await chain_ok(store))["verified"] == 2
        assert await store.get_card(card.card_id) == stored
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["redis-cluster"], indirect=True)
async def test_on_a_cluster_the_entry_follows_the_card(store):  # noqa: F811
    """A cluster refuses one script over the card's and the audit log's slots: the card is
    written first, and an entry that fails after it is missing (README, Known limitations);
    a card moved to another account likewise."""
    card, _ = await seeded(store)
    with pytest.raises(OSError):
        await store.update_card(suspended(card), entry_for(card), BrokenSeal())
    changed = await store.get_card(card.card_id)
    assert changed.state is CardState.SUSPENDED and changed.version == card.version + 1
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=0))
    with pytest.raises(OSError):
        await store.update_card(replace(changed, account_id="acc-2"), entry_for(card), BrokenSeal())
    assert (await store.get_card(card.card_id)).account_id == "acc-2"
    assert await actions_on(store, card.card_id) == []


@SINGLE
async def test_a_card_moved_to_another_account_and_its_entry_are_one_write(store):  # noqa: F811
    """The move (its hash to the new account's key, the card lists, its home, the PAN's
    pointer) and its entry are one script too: both or neither."""
    card, _ = await seeded(store)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=0))
    moving = replace(card, account_id="acc-2")
    with pytest.raises(OSError):
        await store.update_card(moving, entry_for(card, "card.update"), BrokenSeal())
    assert await store.get_card(card.card_id) == card
    assert [c.card_id for c in await store.list_cards("acc-2")] == []
    assert await actions_on(store, card.card_id) == []

    watching = WatchingSeal(store, card)
    moved = await store.update_card(moving, entry_for(card, "card.update"), watching)
    assert watching.versions_seen == [str(card.version)]  # still in the old account's key
    assert await store.get_card(card.card_id) == moved and moved.account_id == "acc-2"
    assert await store.find_card(card.pan_index) == moved  # the PAN's pointer followed
    assert [c.card_id for c in await store.list_cards("acc-2")] == [card.card_id]
    assert await store.list_cards("acc-1") == []
    assert await actions_on(store, card.card_id) == ["card.update"]
    await chain_ok(store)
    with pytest.raises(Conflict):  # stale: the move is refused whole, no entry
        await store.update_card(replace(card, account_id="acc-1"), entry_for(card), SEAL)
    assert await actions_on(store, card.card_id) == ["card.update"]


# --- a card's issue and a successor's new card: the card(s) and the entries, one write --------


async def service_writing_entries_in_the_write(db, tmp_path, monkeypatch) -> CardService:  # noqa: ANN001
    """The card service on ``db``, with account a1 and product p1 (BIN 476173), whose
    store fails the test when an entry is appended after its write (``append_audit``): on
    SQLite and a single Redis every entry here is in its write."""
    service = CardService(db, demo_security(tmp_path), "ops1")

    async def no_append_after(*args):  # noqa: ANN002, ANN202
        raise Crash("an entry appended after its write")

    monkeypatch.setattr(db, "append_audit", no_append_after)
    await service.create_account(rq.NewAccount(account_id="a1"))
    await service.create_product(
        rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit", bin="476173")
    )
    return service


@pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
async def test_the_service_issues_and_succeeds_cards_with_their_entries_in_the_write(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """Through the card service: an issue, a renewal (the same PAN) and a lost card's
    replacement (a new PAN) write each card with its entries, none appended after its write
    (an append fails the test); the old card's entry shows it as the write stored it, the new
    card's history starts with its issue, and the chain verifies."""
    service = await service_writing_entries_in_the_write(store, tmp_path, monkeypatch)
    spec = rq.IssueCard(product_id="p1", account_id="a1", cardholder_name="A TESTER")
    renewed = await service.issue_card(spec)
    await service.apply(renewed["card_id"], "ship")
    renewal = await service.apply(renewed["card_id"], "renew", reason="due")
    lost = await service.issue_card(spec)
    await service.apply(lost["card_id"], "ship")
    await service.apply(lost["card_id"], "report-lost")
    replacement = await service.apply(lost["card_id"], "replace")
    assert replacement["pan"] != lost["pan"] and renewal["pan"] == renewed["pan"]

    for old, new, action in ((renewed, renewal, "renew"), (lost, replacement, "replace")):
        [*_, entry] = await service.audit(subject=old["card_id"], limit=100)
        assert entry["action"] == f"card.{action}"
        after = json.loads(entry["after"])
        assert after["old"] == await service.get_card(old["card_id"])  # as stored
        assert after["new"] == await service.get_card(new["card_id"])
        [issue] = await service.audit(subject=new["card_id"], limit=100)
        assert issue["action"] == "card.issue"
        assert json.loads(issue["after"])["issued_by"] == action
    issues = [e for e in await service.audit(limit=100) if e["action"] == "card.issue"]
    assert len(issues) == 4
    verified = await service.verify_audit()
    assert verified["ok"] and verified["verified"] == 11, verified


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_a_refused_issue_or_successor_writes_no_card_and_no_entry(store):  # noqa: F811
    """A card id or PAN taken, a successor of a card changed meanwhile (stale) or gone: no
    card, no claim left behind (the same write made right goes through), no entry."""
    card, _ = await seeded(store)
    other, _, blob = make_card()  # another card of the account, issued without an entry
    await store.create_card(other, blob)
    issue = AuditEntry(NOW, "ops1", "card.issue", "crd-x", "", "{}")
    twin = replace(card, card_id="crd-x")  # the seeded card's PAN
    with pytest.raises(Conflict, match="PAN"):
        await store.create_card(twin, b"sealed", issue, SEAL)
    same_id = replace(card, pan_index="idx-x")
    with pytest.raises(Conflict, match="already exists"):
        await store.create_card(same_id, b"sealed", issue, SEAL)
    old, new = lifecycle.reissue(card, now=NOW, validity_months=36, new_card_id="crd-x")
    new = replace(new, pan_index="idx-x", last4="0001")
    entries = (entry_for(card, "card.reissue"), issue)
    with pytest.raises(Conflict):  # stale
        await store.replace_card(replace(old, version=old.version + 1), new, b"sealed", entries,
                                 SEAL)  # fmt: skip
    with pytest.raises(Conflict, match="PAN"):  # the new PAN taken
        await store.replace_card(old, replace(new, pan_index=other.pan_index, last4="9"),
                                 b"sealed", (entries[0], issue), SEAL)  # fmt: skip
    with pytest.raises(Conflict, match="already exists"):  # the new card's id taken
        await store.replace_card(old, replace(new, card_id=other.card_id), b"sealed", entries,
                                 SEAL)  # fmt: skip
    assert await store.list_cards(limit=10) == [card, other]
    assert await store.audit() == []
    await store.replace_card(old, new, b"sealed", entries, SEAL)  # made right: it lands
    assert [c.card_id for c in await store.list_cards(limit=10)] == [
        card.card_id, other.card_id, "crd-x"
    ]  # fmt: skip
    assert (await store.find_card("idx-x")).card_id == "crd-x"
    assert [e.action for e in await store.audit()] == ["card.reissue", "card.issue"]
    assert (await chain_ok(store))["verified"] == 2


@pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
async def test_a_lifecycle_change_writes_its_wallet_events_with_the_card(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """A card in use reported stolen: its tokens' wallet events (card.token_suspended, one
    per token) are written with the card's own entry in its one write, not appended after
    it (an append fails the test); the chain verifies."""
    service = await service_writing_entries_in_the_write(store, tmp_path, monkeypatch)
    card_id = (await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1")))["card_id"]
    await service.apply(card_id, "ship")
    await service.apply(card_id, "activate")
    card = await store.get_card(card_id)
    tokens = (
        PaymentToken("cd" * 32, "7721", "50120834693", "google_pay"),
        PaymentToken("ab" * 32, "7722", "40010030273", "apple_pay"),
    )
    await store.update_card(replace(card, tokens=tokens))  # registered (no entry here)
    await service.apply(card_id, "report-stolen")
    entries = await service.audit(subject=card_id)
    assert [e["action"] for e in entries][-3:] == [
        "card.report_stolen", "card.token_suspended", "card.token_suspended"
    ]  # fmt: skip
    assert {json.loads(e["after"])["reason"] for e in entries[-2:]} == {"card report-stolen"}
    verified = await service.verify_audit()
    assert verified["ok"], verified


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_further_entries_are_on_the_card_changed(store):  # noqa: F811
    """A card change's further entries on another subject, or without its own: refused
    before anything is written."""
    card, _ = await seeded(store)
    elsewhere = AuditEntry(NOW, "ops1", "card.token_suspended", "another-card", "{}", "{}")
    for own in (entry_for(card), None):
        with pytest.raises(StoreError, match="further entries"):
            await store.update_card(suspended(card), own, SEAL, [elsewhere])
    assert await store.get_card(card.card_id) == card
    assert await store.audit() == []


@pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
async def test_a_change_carried_to_a_waiting_successor_is_written_with_its_entry(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """New limits on a card whose renewal waits: the successor gets them with its
    card.carried entry in one write (an append fails the test), naming the fields."""
    service = await service_writing_entries_in_the_write(store, tmp_path, monkeypatch)
    card_id = (await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1")))["card_id"]
    await service.apply(card_id, "ship")
    successor = (await service.apply(card_id, "renew"))["card_id"]
    await service.set_card_limits(card_id, rq.LimitsSpec(per_transaction=5_000))
    [*_, carried] = await service.audit(subject=successor)
    assert carried["action"] == "card.carried"
    after = json.loads(carried["after"])
    assert after["from"] == card_id and after["fields"] == ["limits"]
    assert (await store.get_card(successor)).limits.per_transaction == 5_000
    assert (await service.verify_audit())["ok"]


@pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
async def test_a_fraud_report_is_written_with_its_entry(store, tmp_path, monkeypatch):  # noqa: F811
    """A transaction reported fraud, then genuine: each report with its entry in one write
    (an append fails the test), the second's before the first report as the write found it."""
    service = await service_writing_entries_in_the_write(store, tmp_path, monkeypatch)
    card_id = (await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1")))["card_id"]
    card = await store.get_card(card_id)
    stored = await store.commit(Commit(journal=journal_entry(card, 1), card_id=card_id))
    jid = stored.journal.journal_id
    first = await service.report_fraud(card_id, jid, rq.FraudReportSpec(source="chargeback"))
    await service.report_fraud(
        card_id,
        jid,
        rq.FraudReportSpec(fraud=False, source="cardholder", note="card 4111111111111111"),
    )
    *_, one, two = await service.audit(subject=card_id)
    assert [one["action"], two["action"]] == ["journal.fraud_report"] * 2
    # the entry is made before the write numbers the report; the answer reads it back
    assert first["report_id"] == 1
    assert one["before"] == "" and json.loads(one["after"]) == {**first, "report_id": None}
    before = json.loads(two["before"])
    assert before["source"] == "chargeback" and before["report_id"] == 1
    assert json.loads(two["after"])["note"] == "card 411111******1111"
    assert (await service.verify_audit())["ok"]
