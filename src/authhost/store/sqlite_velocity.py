"""A card's velocity counters in the SQLite snapshot, kept between snapshots, from the journal.

The journal is the history: a card's velocity events are its journal entries of the velocity
message classes, read the way ``models.context.event_from_row`` reads an exported journal
(approved = an approval that spent, cash = processing code 01...). Online counters and the
features an analyst replays offline therefore come from the same rows by the same rule, and a
commit writes no second copy of the event (a table and two indexes less per authorisation).

Fetching and counting a card's 30 days of events on every request costs O(events), the largest
part of an authorisation for a busy card (``benchmarks/bench_velocity.py``: counting alone is
79 µs at 140 events, 304 µs at 1,000). Instead the store keeps a ``SlidingVelocity`` per
recently seen card together with the highest ``journal_id`` it has counted, and a snapshot
reads only the card's entries above that mark (index ``journal_by_card``): usually none or one.

This is exact across processes sharing the file: journal ids are handed out inside the write
transaction (AUTOINCREMENT: never reused) and SQLite serialises writers, so a read transaction
sees every entry below the highest one it sees, and an entry above the mark is always new. A
card seen for the first time is read from just before its window (``uncounted_entries``): its
older history cannot count and is not fetched.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from authhost.cards.sliding import SlidingVelocity
from authhost.cards.velocity import RETENTION_S, Velocity
from authhost.iso.codes import APPROVED_CODES
from authhost.iso.messages import CREDIT_TYPES
from authhost.models.context import (
    ADVICE_CLASSES,
    BALANCE_INQUIRY,
    CASH_TYPES,
    COMPLETION_REASON,
    VELOCITY_CLASSES,
)

# A journal entry as a velocity row (id first, then StoredEvent's fields), as event_from_row
# reads it; over the journal aliased ``j``.
ROW_COLUMNS = (
    "j.journal_id", "j.ts", "j.amount_minor",
    # models.context.is_approved_spending, in SQL
    f"(j.response_code IN ({', '.join(repr(c) for c in sorted(APPROVED_CODES))})"
    f" AND substr(j.processing_code, 1, 2) <> '{BALANCE_INQUIRY}'"
    f" AND (j.message_class NOT IN ({', '.join(repr(c) for c in sorted(ADVICE_CLASSES))})"
    f" OR (j.movement <> '' AND instr(j.reason_codes, '{COMPLETION_REASON}') = 0)))",
    "j.merchant_id", "j.country",
    f"substr(j.processing_code, 1, 2) IN ({', '.join(repr(t) for t in sorted(CASH_TYPES))})",
    "j.pin_failed", "j.cvv_failed",
    f"substr(j.processing_code, 1, 2) IN ({', '.join(repr(t) for t in sorted(CREDIT_TYPES))})",
)  # fmt: skip
IS_VELOCITY_ENTRY = f"j.message_class IN ({', '.join(repr(c) for c in sorted(VELOCITY_CLASSES))})"
# Entries older than the window never count. An entry is committed within its deadline of its
# ts (milliseconds), so every entry inside the window has a higher id than the newest entry
# that arrived an hour before the window began: a first read starts above that id.
_FLOOR_MARGIN_S = 3600.0
_WINDOW_FLOOR_SQL = (
    "coalesce((SELECT journal_id FROM journal WHERE ts < :now - "
    f"{RETENTION_S + _FLOOR_MARGIN_S!r} ORDER BY ts DESC LIMIT 1), 0)"
)


def uncounted_entries(mark_applies: str) -> str:
    """The SQL condition, over a card's journal entries ``j``, for the velocity entries not
    counted yet: above ``:mark`` when the SQL condition ``mark_applies`` holds (the mark is
    this card's) and something has been counted, else from just before the window."""
    return (
        f"j.journal_id > CASE WHEN {mark_applies} AND :mark > 0 THEN :mark "
        f"ELSE {_WINDOW_FLOOR_SQL} END AND {IS_VELOCITY_ENTRY}"
    )


DEFAULT_CARDS = 50_000  # cards whose counters are kept; the oldest-seen is dropped first
_EVENT_WIDTH = len(ROW_COLUMNS) - 1  # a row's event fields after its journal_id


class StoredEvent(NamedTuple):
    """A velocity row as the counters read it: the fields of ``VelocityEvent`` (flags as 0/1),
    built straight from the row; a frozen dataclass per row would cost as much as counting."""

    ts: float
    amount_minor: int
    approved: int
    merchant_id: str
    country: str
    cash: int
    pin_failed: int
    cvv_failed: int
    credit: int


class _Counted:
    __slots__ = ("mark", "sliding")

    def __init__(self) -> None:
        self.mark = 0  # highest journal_id counted
        self.sliding = SlidingVelocity()


class VelocityCounters:
    """Per-card running counters, brought up to date from the entries committed since.

    The store's snapshot asks ``mark_of`` the card it expects behind a PAN, selects that card's
    ``uncounted_entries`` in its one statement and hands them to ``advance``. Callers hold
    ``lock`` from ``mark_of`` to ``advance`` so that the mark cannot move in between.
    """

    def __init__(self, max_cards: int = DEFAULT_CARDS) -> None:
        self._cards: dict[str, _Counted] = {}
        self._max_cards = max_cards
        # snapshots normally run on the event loop's one thread; the lock only matters when
        # a busy file sends one to the reader thread
        self.lock = threading.Lock()

    def mark_of(self, card_id: str) -> int:
        """The highest journal_id counted for the card (0: none, or a card not kept)."""
        counted = self._cards.get(card_id)
        return counted.mark if counted is not None else 0

    def advance(self, card_id: str, rows: list[tuple], offset: int, now: float) -> Velocity:
        """Count the rows (velocity columns from ``row[offset]`` on, journal_id first) and answer
        for a request at ``now`` (``SlidingVelocity.counted_at``). Rows at or below the card's
        mark are skipped: a statement that did not know the card (a PAN now meaning another
        one) asked for all of its window."""
        counted = self._cards.get(card_id)
        if counted is None:
            if len(self._cards) >= self._max_cards:
                del self._cards[next(iter(self._cards))]
            counted = self._cards[card_id] = _Counted()
        if rows:
            mark = counted.mark
            rows = [row for row in rows if row[offset] > mark]
        if rows:
            if len(rows) > 1:  # id order is commit order, not quite time order
                rows.sort(key=lambda row: row[offset + 1])
            sliding = counted.sliding
            make = StoredEvent._make
            for row in rows:
                sliding.add(make(row[offset + 1 : offset + 1 + _EVENT_WIDTH]))
            counted.mark = max(row[offset] for row in rows)
        return counted.sliding.counted_at(now)
