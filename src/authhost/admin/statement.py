"""An account's statement: every change of the account's balance in a period, with the
balance it opened and closed at.

The support desk's question is "why is my balance (or what I can spend) what it is": the
holds placed, the amounts posted and refunded, the reversals, with the card, merchant and
approval code of each, and their sums (from the journal: ``movement`` and ``hold_amount``, as
the daily totals read them); and the bank's own bookings, which are not journal entries but
audited account writes (``BOOKINGS``): funds loaded or taken off (``accounts fund``), the
ledger balance syncs and the balance an account was opened with.

The balances come from the account's balance now, walked back through every change after
the period's start: a journal entry by its ``balance_delta``, a funds change by its audited
balance before and after. A ledger sync sets the balance rather than adding to it; its
line is what it moved the balance by in that walk (the balance after it, less the balance
its audit entry found before it), so that ``opening + the lines' balance changes = closing``
always, each line's ``balance_after_minor`` the running balance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from authhost.admin.disputes import step_name as dispute_step_name
from authhost.admin.totals import MovementSums, iso_time
from authhost.store.records import AuditEntry, JournalEntry

LINES_LISTED = 1000
# the audited account writes that move its balance, and the movement their line shows
BOOKINGS = {
    "account.create": "opened",
    "account.funds": "funds",
    "account.ledger_sync": "ledger_sync",
}


@dataclass(frozen=True, slots=True)
class _Change:
    """One change of the balance after the period's start, oldest first."""

    ts: float
    entry: JournalEntry | None = None
    booking: AuditEntry | None = None


def is_booking(entry: AuditEntry) -> bool:
    """An audited write that moved the account's balance (``BOOKINGS``)."""
    return entry.action in BOOKINGS


def statement(
    account: dict[str, Any],
    entries: Iterable[JournalEntry],
    bookings: Sequence[AuditEntry],
    since: float,
    until: float,
) -> dict[str, Any]:
    """The statement of ``account`` (its view now, whose ``balance`` the walk starts from)
    from its journal ``entries`` and audited ``bookings`` from ``since`` up to now (those
    after ``until`` only for the walk back); at most ``LINES_LISTED`` lines, the sums cover
    every entry of the period."""
    changes = sorted(
        [_Change(e.ts, entry=e) for e in entries if e.ts >= since]
        + [_Change(b.ts, booking=b) for b in bookings if b.ts >= since and is_booking(b)],
        key=lambda c: (c.ts, c.booking is not None),
    )
    deltas = _walked_back(int(account["balance"]), changes)
    in_period = [(c, d) for c, d in zip(changes, deltas, strict=True) if c.ts < until]
    after = sum(d for c, d in zip(changes, deltas, strict=True) if c.ts >= until)
    closing = int(account["balance"]) - after
    opening = closing - sum(d for _, d in in_period)
    sums = MovementSums()
    booked = {movement: [0, 0] for movement in BOOKINGS.values()}
    lines: list[dict[str, Any]] = []
    listed = 0
    balance = opening
    for change, delta in in_period:
        balance += delta
        if change.entry is not None:
            movement = sums.add(change.entry)
            if not movement and not delta:
                continue
            line = _line(change.entry, movement or "none")
        else:
            assert change.booking is not None
            line = _booking_line(change.booking, account.get("currency", ""), delta)
            booked[line["movement"]][0] += 1
            booked[line["movement"]][1] += delta
        listed += 1
        if len(lines) < LINES_LISTED:
            lines.append({**line, "balance_delta_minor": delta, "balance_after_minor": balance})
    return {
        "account": account,
        "since": iso_time(since),
        "until": iso_time(until),
        "opening_balance_minor": opening,
        "closing_balance_minor": closing,
        **sums.view(),
        # the bank's own bookings: count, and what they added to the balance
        "bookings": {m: {"count": n, "balance_delta_minor": d} for m, (n, d) in booked.items()},
        "lines": lines,
        "lines_listed_in_part": listed > len(lines),
    }


def _walked_back(balance_now: int, changes: Sequence[_Change]) -> list[int]:
    """What each change added to the balance, found by walking back from ``balance_now``."""
    deltas = [0] * len(changes)
    balance = balance_now  # just after the change being looked at
    for i in range(len(changes) - 1, -1, -1):
        change = changes[i]
        if change.entry is not None:
            deltas[i] = change.entry.balance_delta or 0  # None: journalled before it was kept
        else:
            assert change.booking is not None
            before = _balance(change.booking.before)
            if change.booking.action == "account.funds":
                after = _balance(change.booking.after)
                deltas[i] = after - before if after is not None and before is not None else 0
            elif change.booking.action == "account.create":
                deltas[i] = balance  # from nothing
            elif before is not None:  # a ledger sync: it set the balance
                deltas[i] = balance - before
        balance -= deltas[i]
    return deltas


def _balance(text: str) -> int | None:
    """The ``balance`` of an audited account view (JSON), None when it has none."""
    try:
        value = json.loads(text).get("balance") if text else None
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _booking_line(entry: AuditEntry, currency: str, delta: int) -> dict[str, Any]:
    asked: dict[str, Any] = {}
    try:
        loaded = json.loads(entry.after) if entry.after else {}
        asked = loaded if isinstance(loaded, dict) else {}
    except ValueError:
        pass
    return {
        **_NO_CARD,
        "journal_id": None,
        "audit_id": entry.audit_id,
        "at": iso_time(entry.ts),
        "movement": BOOKINGS[entry.action],
        "amount_minor": abs(delta),
        "currency": currency,
        "reason": asked.get("reason", ""),
        "by": entry.actor,
        # a ledger sync's: the bank's balance and the journal id it was through
        **{k: asked[k] for k in ("ledger_balance_minor", "through_journal_id") if k in asked},
    }


# a booking's line has a card transaction's keys too, empty: one shape for every line
_NO_CARD: dict[str, Any] = {
    "transaction_amount_minor": 0, "transaction_currency": "", "mti": "", "response_code": "",
    "approval_code": "", "card_id": "", "pan": "", "merchant_id": "", "merchant_name": "",
    "mcc": "", "dispute_movement": "",
}  # fmt: skip


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
        # the bank's movement on a dispute of a charge at that merchant ("" otherwise): a
        # provisional credit is not the merchant's refund, and goes if the dispute is lost
        "dispute_movement": dispute_step_name(entry),
    }
