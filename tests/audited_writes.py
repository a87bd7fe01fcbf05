"""The admin writes a store makes with their audit entry, as ``test_store_account_audit`` makes
them, in a module that imports only authhost's store: the process that test kills inside a
write imports it too, and starts in half a second rather than seconds."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from authhost.cards import lifecycle
from authhost.cards.model import Account, CardKind
from authhost.cards.production import PanFacts, new_card
from authhost.store.interface import (
    AccountAudit,
    AuditSealer,
    CardStore,
    FraudReportAudit,
    ListAudit,
)
from authhost.store.records import AuditEntry, Dispute, FraudReport

NOW = 1_780_000_000.0  # test_store_contract's
PRODUCT_ID = "debit-eur"  # test_store_contract.PRODUCT's
NEW_ACCOUNT = "acc-2"  # the account "create" makes (test_store_contract seeds "acc-1")
NEW_CARD = "crd-new"  # the card "issue", "renew" and "reissue" make on "acc-1"
CLOSED = "account.closed:acc-1"  # the marker "close" keeps (admin.service.base's key)
LIST = "blocked-bins"  # the named list "list" writes
REPORTED = 7  # the journal id "fraud" reports on (the store does not check it exists)
NEW_PAN = "idx-new"  # its PAN's index when it has a PAN of its own (a stand-in for the HMAC)
DISPUTED = "dsp-20260527-000000-000000-001"  # the dispute seeded_dispute opens, "charge_back" steps
OPENED = "dsp-20260527-000000-000000-002"  # the dispute "dispute_open" opens


def made_from(action: str) -> AccountAudit:
    """The entry an account's write makes: the balance the write found."""
    return lambda account: AuditEntry(
        NOW, "ops1", action, account.account_id, json.dumps({"balance": account.balance}), "{}"
    )


async def _renamed_product(db: CardStore, seal: AuditSealer | None) -> None:
    product = await db.get_product(PRODUCT_ID)
    assert product is not None
    entry = AuditEntry(NOW, "ops1", "product.update", PRODUCT_ID, "{}", "{}")
    await db.put_product(replace(product, name="Debit EUR 2", version=1), 0, entry, seal)


async def _new_account(db: CardStore, seal: AuditSealer | None) -> None:
    account = Account(NEW_ACCOUNT, "978", CardKind.CREDIT, balance=0, credit_limit=4_000)
    entry = AuditEntry(NOW, "ops1", "account.create", NEW_ACCOUNT, "", '{"credit_limit":4000}')
    await db.create_account(account, entry, seal)


async def _issued_card(db: CardStore, seal: AuditSealer | None) -> None:
    product = await db.get_product(PRODUCT_ID)
    assert product is not None
    pan = PanFacts(NEW_PAN, product.bin, "0001", product.pan_length)
    card = new_card(product, pan, card_id=NEW_CARD, account_id="acc-1", now=NOW)
    entry = AuditEntry(NOW, "ops1", "card.issue", NEW_CARD, "", "{}")
    await db.create_card(card, b"sealed PAN", entry, seal)


def _successor(action: str) -> Write:
    """The seeded card renewed (the same PAN) or reissued (a new one), with the old card's
    entry and the new card's issue entry."""

    async def write(db: CardStore, seal: AuditSealer | None) -> None:
        [card] = await db.list_cards("acc-1")
        make = getattr(lifecycle, action)
        old, new = make(card, now=NOW, validity_months=36, new_card_id=NEW_CARD)
        if not new.pan_index:
            new = replace(new, pan_index=NEW_PAN, last4="0001")
        entries = (
            AuditEntry(NOW, "ops1", f"card.{action}", card.card_id, "{}", "{}"),
            AuditEntry(NOW, "ops1", "card.issue", NEW_CARD, "", "{}"),
        )
        await db.replace_card(old, new, b"sealed PAN", entries, seal)

    return write


async def _closed_account(db: CardStore, seal: AuditSealer | None) -> None:
    entry = AuditEntry(NOW, "ops1", "account.close", "acc-1", '{"balance":0}', "{}")
    await db.put_marker(CLOSED, '{"closed_at":1}', entry, seal)


def list_made_from() -> ListAudit:
    """The entry a list's write makes: how many values the write found."""
    return lambda found: AuditEntry(
        NOW, "ops1", "list.put", LIST, json.dumps({"size": len(found)}), "{}"
    )


async def _put_list(db: CardStore, seal: AuditSealer | None) -> None:
    await db.put_list(LIST, ["411111", "476173"], list_made_from(), seal)


async def _suspended_with_wallet_events(db: CardStore, seal: AuditSealer | None) -> None:
    """The seeded card suspended, with the wallet events of two of its tokens after its own
    entry (a lifecycle change's, ``update_card``'s ``more``)."""
    [card] = await db.list_cards("acc-1")
    entries = [
        AuditEntry(NOW, "ops1", action, card.card_id, "{}", "{}")
        for action in ("card.suspend", "card.token_suspended", "card.token_suspended")
    ]
    suspended = lifecycle.transition(card, "suspend", now=NOW)
    await db.update_card(suspended, entries[0], seal, entries[1:])


def report_made_from() -> FraudReportAudit:
    """The entry a fraud report's write makes: the source of the report it replaces."""
    return lambda found: AuditEntry(
        NOW, "ops1", "journal.fraud_report", "card", json.dumps(found and found.source), "{}"
    )


async def _fraud_report(db: CardStore, seal: AuditSealer | None) -> None:
    report = FraudReport(REPORTED, "card", True, "chargeback", NOW, "4837")
    await db.put_fraud_report(report, report_made_from(), seal)


def _dispute(dispute_id: str, journal_id: int, card_id: str) -> Dispute:
    return Dispute(dispute_id, journal_id, card_id, "acc-1", "fraud", 1_000, "978", NOW)


async def seeded_dispute(db: CardStore) -> None:
    """A dispute on the seeded card (no entry: the seeding's), for "charge_back" to step."""
    [card] = await db.list_cards("acc-1")
    await db.open_dispute(_dispute(DISPUTED, REPORTED, card.card_id))


async def _opened_dispute(db: CardStore, seal: AuditSealer | None) -> None:
    [card] = await db.list_cards("acc-1")
    entry = AuditEntry(NOW, "ops1", "dispute.open", OPENED, "", "{}")
    await db.open_dispute(_dispute(OPENED, REPORTED + 1, card.card_id), entry, seal)


async def _charged_back(db: CardStore, seal: AuditSealer | None) -> None:
    """The seeded dispute's chargeback, a step over the version it was read at."""
    read = await db.get_dispute(DISPUTED)
    assert read is not None
    stepped = replace(read, stage="chargeback", chargeback_minor=1_000, version=read.version + 1)
    entry = AuditEntry(NOW, "ops1", "dispute.chargeback", DISPUTED, "{}", "{}")
    await db.update_dispute(stepped, read.version, entry, seal)


Write = Callable[[CardStore, AuditSealer | None], Awaitable[Any]]
# Each audited write on test_store_contract's seeded data ("acc-1", its card, its product), with the
# Redis script that makes it with its entry
OPS: dict[str, tuple[Write, str]] = {
    "funds": (
        lambda db, seal: db.change_funds(
            "acc-1", 250, key="k1", fingerprint="f", audit=made_from("account.funds"), seal=seal
        ),
        "_change_funds_audited",
    ),
    "credit_limit": (
        lambda db, seal: db.set_credit_limit(
            "acc-1", 5_000, made_from("account.credit_limit"), seal
        ),
        "_set_credit_limit_audited",
    ),
    "ledger_sync": (
        lambda db, seal: db.sync_ledger(
            "acc-1", 7_000, 0, NOW, made_from("account.ledger_sync"), seal
        ),
        "_sync_ledger_audited",
    ),
    "product": (_renamed_product, "_put_product_audited"),
    "create": (_new_account, "_create_account_audited"),
    "issue": (_issued_card, "_create_card_audited"),
    "renew": (_successor("renew"), "_replace_audited"),
    "reissue": (_successor("reissue"), "_replace_audited"),
    "close": (_closed_account, "_put_marker_audited"),
    "list": (_put_list, "_put_list_audited"),
    "wallet": (_suspended_with_wallet_events, "_update_audited"),
    "fraud": (_fraud_report, "_put_fraud_report_audited"),
    "dispute_open": (_opened_dispute, "_open_dispute_audited"),
    "dispute_step": (_charged_back, "_update_dispute_audited"),
}
# the entries each write makes (one, but for a successor's two: the old card's, the new one's)
ENTRIES = {"renew": 2, "reissue": 2, "wallet": 3}
