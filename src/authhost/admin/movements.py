"""The money movements feed: what the core banking system posts to its ledger, in order.

The host moves money in its own store as it answers (holds, postings, credits, releases); the
bank's ledger learns of them by polling this feed with the last ``journal_id`` it posted and
getting the next movements in journal order, each once.

Each movement names the account, which way the money went (``totals.movement_of``: hold,
post, credit, release, take_back) and how much the store really moved, ``hold_ref``, the
key a release or a completion shares with the hold or posting it undoes, and what it added to
the account's balance (``balance_delta_minor``): the ledger books that, and need not work out
whether a release gave back a posting or only freed a hold. The paging and the
settling wait are ``admin.journal_feed``'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from authhost.admin.journal_feed import next_in_feed
from authhost.admin.totals import iso_time, movement_of
from authhost.store.interface import JournalQuery
from authhost.store.records import JournalEntry


def movement_view(entry: JournalEntry, movement: str) -> dict[str, Any]:
    return {
        "journal_id": entry.journal_id,
        "time": iso_time(entry.ts),
        "account_id": entry.account_id,
        "movement": movement,
        "amount_minor": abs(entry.hold_amount),
        "currency": entry.currency,
        "card_id": entry.card_id,
        "pan": entry.pan_masked,
        "mti": entry.mti,
        "processing_code": entry.processing_code,
        "approval_code": entry.approval_code,
        "rrn": entry.rrn,
        "merchant_id": entry.merchant_id,
        "mcc": entry.mcc,
        "hold_ref": entry.match_key,
        "balance_delta_minor": entry.balance_delta,
    }


async def next_movements(
    read: Callable[[JournalQuery], Awaitable[list[JournalEntry]]],
    after_id: int,
    limit: int,
    now: float,
) -> dict[str, Any]:
    """Up to ``limit`` movements after ``after_id``, in journal order, and ``next_after_id``:
    the id to ask after next time (past entries that moved nothing, never past a young one)."""

    def pick(entry: JournalEntry) -> dict[str, Any] | None:
        movement = movement_of(entry)
        return movement_view(entry, movement) if movement else None

    movements, cursor = await next_in_feed(read, pick, after_id, limit, now)
    return {"movements": movements, "next_after_id": cursor}
