"""One process of ``test_store_audit_contention``'s writers: ``python audit_writers.py URL
PREFIX WRITER ROUNDS SEAL_KEY_HEX`` makes ROUNDS rounds of audited writes of every kind on
``test_store_contract``'s seeded data, all rounds at once, then exits 0. Imports only the store
(``audited_writes``' helpers), so that it starts quickly.

Each round: a card issued, reissued (two entries) and its predecessor suspended with one
wallet event (two), a put of the shared list, an account created, a load on ``acc-1``, a fraud
report on the shared journal entry, a dispute of its own opened, charged back and resolved
(three), a step of the shared dispute over the version it read (read again and sent again
while another writer's step lands first: one entry per step written), and a try to open the
shared charge's dispute (one try of them all is recorded, with the one entry):
``ENTRIES_PER_ROUND`` entries, and ``SHARED_OPENINGS`` in all.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace

import trio
from audited_writes import (
    LIST,
    PRODUCT_ID,
    REPORTED,
    list_made_from,
    made_from,
    report_made_from,
)

from authhost.cards import lifecycle
from authhost.cards.model import Account, CardKind, CardState
from authhost.cards.production import PanFacts, new_card
from authhost.security.audit_chain import AuditSeal
from authhost.store import open_store
from authhost.store.interface import CardStore, Conflict
from authhost.store.records import AuditEntry, Dispute, FraudReport

NOW = 1_780_000_000.0
ENTRIES_PER_ROUND = 13
SHARED_OPENINGS = 1  # of every writer's tries to open the shared charge's dispute, one lands
SHARED_DISPUTE = "dsp-shared"  # the dispute the test opens (no entry) and every round steps
SHARED_CHARGE = 99  # the journal id every round tries to open a dispute on


def _entry(action: str, subject: str) -> AuditEntry:
    return AuditEntry(NOW, "ops1", action, subject, "{}", "{}")


async def _cards(db: CardStore, seal: AuditSeal, tag: str) -> None:
    """Issue, reissue, then suspend the predecessor with a wallet event: 5 entries."""
    product = await db.get_product(PRODUCT_ID)
    assert product is not None
    card_id = f"c-{tag}"
    pan = PanFacts(f"idx-{tag}", product.bin, "0001", product.pan_length)
    card = new_card(product, pan, card_id=card_id, account_id="acc-1", now=NOW)
    card = replace(card, state=CardState.ACTIVE)
    await db.create_card(card, b"sealed PAN", _entry("card.issue", card_id), seal)
    old, new = lifecycle.reissue(card, now=NOW, validity_months=36, new_card_id=f"r-{tag}")
    new = replace(new, pan_index=f"idx-r-{tag}", last4="0002")
    pair = (_entry("card.reissue", card_id), _entry("card.issue", new.card_id))
    await db.replace_card(old, new, b"sealed PAN", pair, seal)
    stored = await db.get_card(card_id)
    assert stored is not None
    suspended = lifecycle.transition(stored, "suspend", now=NOW)
    wallet = [_entry("card.token_suspended", card_id)]
    await db.update_card(suspended, _entry("card.suspend", card_id), seal, wallet)


def dispute(dispute_id: str, journal_id: int) -> Dispute:
    return Dispute(dispute_id, journal_id, "crd-1", "acc-1", "fraud", 1_000, "978", NOW)


async def _own_dispute(db: CardStore, seal: AuditSeal, tag: str, journal_id: int) -> None:
    """Opened, charged back, resolved, each step over the version read: 3 entries."""
    ident = f"dsp-{tag}"
    opened = dispute(ident, journal_id)
    await db.open_dispute(opened, _entry("dispute.open", ident), seal)
    stepped = replace(opened, stage="chargeback", chargeback_minor=1_000, version=1)
    await db.update_dispute(stepped, 0, _entry("dispute.chargeback", ident), seal)
    closed = replace(stepped, state="won", closed_at=NOW, version=2)
    await db.update_dispute(closed, 1, _entry("dispute.resolve", ident), seal)


async def _shared_step(db: CardStore, seal: AuditSeal, tag: str) -> None:
    """One step of the shared dispute over the version read (its note names the round), read
    again while another's step lands first: 1 entry."""
    while True:
        read = await db.get_dispute(SHARED_DISPUTE)
        assert read is not None
        stepped = replace(read, note=f"{read.note};{tag}", version=read.version + 1)
        try:
            await db.update_dispute(stepped, read.version, _entry("dispute.note", tag), seal)
            return
        except Conflict:
            continue


async def _shared_opening(db: CardStore, seal: AuditSeal, tag: str) -> None:
    """A try to open the shared charge's dispute: refused once another try's is recorded."""
    ident = f"dsp-open-{tag}"
    with contextlib.suppress(Conflict):
        await db.open_dispute(dispute(ident, SHARED_CHARGE), _entry("dispute.open", ident), seal)


async def _round(db: CardStore, seal: AuditSeal, writer: str, n: int) -> None:
    tag = f"{writer}-{n}"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cards, db, seal, tag)
        nursery.start_soon(_own_dispute, db, seal, tag, 1_000 + int(writer[1:]) * 10_000 + n)
        nursery.start_soon(_shared_step, db, seal, tag)
        nursery.start_soon(_shared_opening, db, seal, tag)
        nursery.start_soon(lambda: db.put_list(LIST, [tag], list_made_from(), seal))
        account = Account(f"a-{tag}", "978", CardKind.DEBIT, balance=0)
        nursery.start_soon(
            db.create_account, account, _entry("account.create", account.account_id), seal
        )
        nursery.start_soon(
            lambda: db.change_funds(
                "acc-1",
                1,
                key=f"f-{tag}",
                fingerprint="f",
                audit=made_from("account.funds"),
                seal=seal,
            )
        )
        report = FraudReport(REPORTED, "card", n % 2 == 0, f"s-{tag}", NOW, "")
        nursery.start_soon(db.put_fraud_report, report, report_made_from(), seal)


async def main(url: str, prefix: str, writer: str, rounds: int, key_hex: str) -> None:
    seal = AuditSeal(bytes.fromhex(key_hex))
    db = await open_store(url, prefix=prefix)
    try:
        async with trio.open_nursery() as nursery:
            for n in range(rounds):
                nursery.start_soon(_round, db, seal, writer, n)
    finally:
        await db.close()


if __name__ == "__main__":
    url, prefix, writer, rounds, key_hex = sys.argv[1:]
    trio.run(main, url, prefix, writer, int(rounds), key_hex)
