"""A card's velocity counters in the SQLite snapshot, kept between snapshots, from the journal.

The journal is the history: a card's velocity events are its journal entries of the velocity
message classes, read the way ``models.context.event_from_row`` reads an exported journal
(approved = response 00, cash = processing code 01...). Online counters and the features an
analyst replays offline therefore come from the same rows by the same rule, and a commit writes
no second copy of the event (a table and two indexes less per authorisation).

Fetching and counting a card's 30 days of events on every request costs O(events), the largest
part of an authorisation for a busy card (``benchmarks/bench_velocity.py``: counting alone is
79 µs at 140 events, 304 µs at 1,000). Instead the store keeps a ``SlidingVelocity`` per
recently seen card together with the highest ``journal_id`` it has counted, and a snapshot
reads only the card's entries above that mark (index ``journal_by_card``): usually none or one.

This is exact across processes sharing the file: journal ids are handed out inside the write
transaction (AUTOINCREMENT: never reused) and SQLite serialises writers, so a read transaction
sees every entry below the highest one it sees, and an entry above the mark is always new. A
card seen for the first time is read from just before its window (``WINDOW_FLOOR_SQL``): its
older history cannot count and is not fetched.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import NamedTuple

from authhost.cards.sliding import SlidingVelocity
from authhost.cards.velocity import RETENTION_S, Velocity
from authhost.models.context import CASH_TYPES, VELOCITY_CLASSES

# A journal entry as a velocity row (id first, then StoredEvent's fields), as event_from_row
# reads it; over the journal aliased ``j``.
ROW_COLUMNS = (
    "j.journal_id", "j.ts", "j.amount_minor", "j.response_code = '00'", "j.merchant_id",
    "j.country",
    f"substr(j.processing_code, 1, 2) IN ({', '.join(repr(t) for t in sorted(CASH_TYPES))})",
    "j.pin_failed", "j.cvv_failed",
)  # fmt: skip
IS_VELOCITY_ENTRY = f"j.message_class IN ({', '.join(repr(c) for c in sorted(VELOCITY_CLASSES))})"
# Entries older than the window never count. An entry is committed within its deadline of its
# ts (milliseconds), so every entry inside the window has a higher id than the newest entry
# that arrived an hour before the window began: a first read starts above that id.
_FLOOR_MARGIN_S = 3600.0
WINDOW_FLOOR_SQL = (
    "coalesce((SELECT journal_id FROM journal WHERE ts < :now - "
    f"{RETENTION_S + _FLOOR_MARGIN_S!r} ORDER BY ts DESC LIMIT 1), 0)"
)
_NEW_ROWS_SQL = (
    f"SELECT {', '.join(ROW_COLUMNS)} FROM journal AS j WHERE j.card_id = :card "
    f"AND j.journal_id > max(:mark, {WINDOW_FLOOR_SQL}) AND {IS_VELOCITY_ENTRY}"
)

DEFAULT_CARDS = 50_000  # cards whose counters are kept; the oldest-seen is dropped first


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


class _Counted:
    __slots__ = ("mark", "sliding")

    def __init__(self) -> None:
        self.mark = 0  # highest journal_id counted
        self.sliding = SlidingVelocity()


class VelocityCounters:
    """Per-card running counters, brought up to date from the rows committed since.

    Two ways in: ``read`` runs its own query for one card; the store's snapshot instead folds
    the query into its one statement (``SNAPSHOT_ROWS_SQL``): it asks ``since`` for the card
    it expects behind a PAN and its mark, then hands the rows to ``advance``. Callers hold
    ``lock`` from ``since`` to ``advance`` so that the mark cannot move in between.
    """

    def __init__(self, max_cards: int = DEFAULT_CARDS) -> None:
        self._cards: dict[str, _Counted] = {}
        self._card_of_pan: dict[str, str] = {}  # the card a PAN index meant last time
        self._max_cards = max_cards
        # snapshots normally run on the event loop's one thread; the lock only matters when
        # a busy file sends one to the reader thread
        self.lock = threading.Lock()

    def read(self, conn: sqlite3.Connection, card_id: str, now: float) -> Velocity:
        """The card's counters at ``now``, inside the caller's read transaction on ``conn``."""
        with self.lock:
            counted = self._counted(card_id)
            rows = conn.execute(
                _NEW_ROWS_SQL, {"card": card_id, "mark": counted.mark, "now": now}
            ).fetchall()
            return self._advance(counted, rows, 0, now)

    def since(self, pan_index: str) -> tuple[str, int]:
        """(card id, mark) to ask new rows for: the card this PAN meant last time and the
        highest journal_id counted for it; ("", 0) for a PAN not seen yet."""
        card_id = self._card_of_pan.get(pan_index)
        if card_id is None:
            return "", 0
        counted = self._cards.get(card_id)
        return card_id, counted.mark if counted is not None else 0

    def advance(
        self, pan_index: str, card_id: str, rows: list[tuple], offset: int, now: float
    ) -> Velocity:
        """Count the rows (velocity columns from ``row[offset]`` on, journal_id first) and answer
        at ``now``. Rows at or below the card's mark are skipped: when the PAN now means
        another card than ``since`` said, the statement asked for all of that card's rows."""
        if self._card_of_pan.get(pan_index) != card_id:
            if len(self._card_of_pan) >= self._max_cards:
                del self._card_of_pan[next(iter(self._card_of_pan))]
            self._card_of_pan[pan_index] = card_id
        return self._advance(self._counted(card_id), rows, offset, now)

    def forget(self) -> None:
        with self.lock:
            self._cards.clear()
            self._card_of_pan.clear()

    def _counted(self, card_id: str) -> _Counted:
        counted = self._cards.get(card_id)
        if counted is None:
            if len(self._cards) >= self._max_cards:
                del self._cards[next(iter(self._cards))]
            counted = self._cards[card_id] = _Counted()
        return counted

    @staticmethod
    def _advance(counted: _Counted, rows: list[tuple], offset: int, now: float) -> Velocity:
        if rows:
            mark = counted.mark
            rows = [row for row in rows if row[offset] > mark]
        if rows:
            if len(rows) > 1:  # id order is commit order, not quite time order
                rows.sort(key=lambda row: row[offset + 1])
            sliding = counted.sliding
            make = StoredEvent._make
            for row in rows:
                sliding.add(make(row[offset + 1 : offset + 9]))
            counted.mark = max(row[offset] for row in rows)
        return counted.sliding.at(now)
