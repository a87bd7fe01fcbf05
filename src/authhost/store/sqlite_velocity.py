"""A card's velocity counters in the SQLite snapshot, kept between snapshots.

Fetching and counting a card's 30 days of events on every request costs O(events), the largest
part of an authorisation for a busy card (``benchmarks/bench_velocity.py``: counting alone is
79 µs at 140 events, 304 µs at 1,000). Instead the store keeps a ``SlidingVelocity`` per
recently seen card together with the highest velocity ``rowid`` it has counted, and a snapshot
reads only the card's rows above that mark: usually none or one.

This is exact across processes sharing the file. Rowids are handed out inside the write
transaction and SQLite serialises writers, so a read transaction sees every row below the
highest one it sees, and a row above the mark is always new. (Pruning never deletes the
newest row, so a rowid is never handed out twice; see ``PRUNE_SQL``.)
"""

from __future__ import annotations

import sqlite3
import threading
from typing import NamedTuple

from authhost.cards.sliding import SlidingVelocity
from authhost.cards.velocity import Velocity

# velocity_by_card is on (card_id) alone: its entries are ordered by (card_id, rowid), so
# "rows of this card above the mark" is one index range seek.
_NEW_ROWS_SQL = (
    "SELECT rowid, ts, amount, approved, merchant_id, country, cash, pin_failed, cvv_failed "
    "FROM velocity WHERE card_id = ? AND rowid > ?"
)
# the newest row stays: the next rowid is max(rowid) + 1, so it must never go back
PRUNE_SQL = "DELETE FROM velocity WHERE ts < ? AND rowid < (SELECT max(rowid) FROM velocity)"
INSERT_SQL = (
    "INSERT INTO velocity (card_id, ts, amount, approved, merchant_id, country, cash, "
    "pin_failed, cvv_failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        self.mark = 0  # highest velocity rowid counted
        self.sliding = SlidingVelocity()


class VelocityCounters:
    """Per-card running counters, brought up to date from the rows committed since."""

    def __init__(self, max_cards: int = DEFAULT_CARDS) -> None:
        self._cards: dict[str, _Counted] = {}
        self._max_cards = max_cards
        # snapshots normally run on the event loop's one thread; the lock only matters when
        # a busy file sends one to the reader thread
        self._lock = threading.Lock()

    def read(self, conn: sqlite3.Connection, card_id: str, now: float) -> Velocity:
        """The card's counters at ``now``, inside the caller's read transaction on ``conn``."""
        with self._lock:
            counted = self._cards.get(card_id)
            if counted is None:
                if len(self._cards) >= self._max_cards:
                    del self._cards[next(iter(self._cards))]
                counted = self._cards[card_id] = _Counted()
            rows = conn.execute(_NEW_ROWS_SQL, (card_id, counted.mark)).fetchall()
            if rows:
                if len(rows) > 1:
                    rows.sort(key=_row_ts)  # rowid order is commit order, not quite time order
                sliding = counted.sliding
                for row in rows:
                    sliding.add(StoredEvent._make(row[1:]))
                counted.mark = max(counted.mark, max(row[0] for row in rows))
            return counted.sliding.at(now)

    def forget(self) -> None:
        with self._lock:
            self._cards.clear()


def _row_ts(row: tuple) -> float:
    return row[1]
