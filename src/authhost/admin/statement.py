"""An account's statement: every journal entry of a period that moved the account's money.

The support desk's question is "why is my balance (or what I can spend) what it is": the
holds placed, the amounts posted and refunded, the reversals, with the card, merchant and
approval code of each, and their sums. It comes from the journal alone (``movement`` and
``hold_amount``, as the daily totals read them), next to the account as it stands now.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from authhost.admin.totals import MovementSums, iso_time
from authhost.store.records import JournalEntry

LINES_LISTED = 1000


def statement(
    account: dict[str, Any], entries: Iterable[JournalEntry], since: float, until: float
) -> dict[str, Any]:
    """The statement of ``account`` (its view now) from its journal ``entries`` of the
    period, oldest first; at most ``LINES_LISTED`` lines, the sums cover every entry."""
    sums = MovementSums()
    lines: list[dict[str, Any]] = []
    moved = 0
    for entry in entries:
        movement = sums.add(entry)
        if not movement:
            continue
        moved += 1
        if len(lines) < LINES_LISTED:
            lines.append(_line(entry, movement))
    return {
        "account": account,
        "since": iso_time(since),
        "until": iso_time(until),
        **sums.view(),
        "lines": lines,
        "lines_listed_in_part": moved > len(lines),
    }


def _line(entry: JournalEntry, movement: str) -> dict[str, Any]:
    return {
        "journal_id": entry.journal_id,
        "at": iso_time(entry.ts),
        "movement": movement,
        "amount_minor": abs(entry.hold_amount),
        "currency": entry.currency,
        # what the merchant charged, in its own currency, when the network converted it
        "transaction_amount_minor": entry.transaction_amount_minor,
        "transaction_currency": entry.transaction_currency,
        "mti": entry.mti,
        "response_code": entry.response_code,
        "approval_code": entry.approval_code,
        "card_id": entry.card_id,
        "pan": entry.pan_masked,
        "merchant_id": entry.merchant_id,
        "merchant_name": entry.merchant_name,
        "mcc": entry.mcc,
    }
