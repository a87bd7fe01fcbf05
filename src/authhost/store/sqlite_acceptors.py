"""Merchant and terminal counters in the SQLite snapshot, read from the tail of the journal.

Every velocity request leaves its event at its acceptor (``cards.acceptor_velocity``), and the
journal already holds each one. So a process keeps one ``AcceptorCounters`` and, once per
snapshot batch, reads the journal entries committed since it last looked: ``journal_id`` above
its mark, a range of the table's own key (usually the batch before's few entries, this
process's and any other's sharing the file). Nothing more is written per authorisation, and
the counts are exact across processes for the same reason the card counters are
(``store.sqlite_velocity``: ids are handed out inside the write transaction, so an entry above
the mark is always new).

The store follows the tail only while snapshots ask for the counters, which the server does
only while a rule reads them (``AuthService``'s ``acceptor_counters``). A process's first read
covers the last hour (up to ``max_events``); the server makes it before it listens when its
rules read the counters (``prepare_acceptor_counters``). Otherwise the first snapshot that asks
starts it, as it does when nobody asked for ``ACCEPTOR_STALE_S``, on a thread of its own; the
snapshots carry no acceptor counts until it is done rather than wait for it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from authhost.cards.acceptor_velocity import (
    NO_ACCEPTOR,
    WINDOW_LONG_S,
    AcceptorCounters,
    AcceptorVelocity,
    acceptor_event,
)
from authhost.iso.codes import APPROVED_CODES
from authhost.models.context import VELOCITY_CLASSES
from authhost.store.interface import ACCEPTOR_STALE_S

log = logging.getLogger("authhost.store")

_MARGIN_S = 3600.0
# how long a snapshot waits for a catch-up another thread is making (it takes tens of µs)
_CATCH_UP_WAIT_S = (
    0.05  # entries are committed within their deadline of their ts (see sqlite_velocity)
)
_TAIL_SQL = f"""
SELECT journal_id, ts, merchant_id, terminal_id, card_id, pan_index,
  response_code IN ({", ".join(repr(c) for c in sorted(APPROVED_CODES))}), cvv_failed,
  message_class IN ({", ".join(repr(c) for c in sorted(VELOCITY_CLASSES))})
FROM journal
WHERE journal_id > CASE WHEN :mark > 0 THEN :mark ELSE coalesce((
  SELECT journal_id FROM journal WHERE ts < :now - {WINDOW_LONG_S + _MARGIN_S!r}
  ORDER BY ts DESC LIMIT 1), 0) END
ORDER BY journal_id
"""


class AcceptorTail:
    """The process's acceptor counters and the highest journal id they have counted."""

    def __init__(self) -> None:
        self.counters = AcceptorCounters()
        self.mark = 0
        self.primed = False  # the last hour has been read, and kept up since
        self.priming = False  # a thread is reading it
        self.read_at = float("-inf")  # time.monotonic() of the last read
        # the hour is read on a thread of its own while the event loop goes on: whoever
        # cannot take the lock at once goes without (never blocks the event loop)
        self.lock = threading.Lock()

    def catch_up(self, conn: sqlite3.Connection, now: float) -> int:
        """Count the entries committed since the last call; returns how many events they were."""
        if not self.lock.acquire(blocking=False):
            return 0
        try:
            return self._read(conn, now)
        finally:
            self.lock.release()

    def catch_up_or_prime(
        self, conn: sqlite3.Connection, now: float, connect: Callable[[], sqlite3.Connection]
    ) -> None:
        """Once per snapshot batch that asks: the entries since the last read, or, when the
        counters were never read or not for ``ACCEPTOR_STALE_S`` (the rules did not ask
        meanwhile), the whole last hour again, on a thread of its own."""
        if self.following:
            self.catch_up(conn, now)
        elif not self.priming:
            self.priming = True
            threading.Thread(target=self.prime, args=(connect, now), daemon=True).start()

    def _read(self, conn: sqlite3.Connection, now: float) -> int:
        rows = conn.execute(_TAIL_SQL, {"mark": self.mark, "now": now}).fetchall()
        add = self.counters.add
        counted = 0
        for _, ts, merchant, terminal, card, pan_index, approved, cvv, velocity in rows:
            if velocity:
                event = acceptor_event(ts, merchant, terminal, card, pan_index, approved, cvv)
                if event is not None:
                    add(event)
                    counted += 1
        if rows:
            self.mark = rows[-1][0]
        self.read_at = time.monotonic()
        return counted

    def prime(self, connect: Callable[[], sqlite3.Connection], now: float) -> int:
        """Read the last hour afresh on a connection of the calling thread's own. Returns the
        requests counted (0 when the file could not be read: the next batch tries again)."""
        try:
            with self.lock:  # nobody reads or counts until the hour is in
                self.primed = False
                self.counters, self.mark = AcceptorCounters(), 0
                conn = connect()
                try:
                    counted = self._read(conn, now)
                finally:
                    conn.close()
                self.primed = True
                return counted
        except sqlite3.Error as exc:
            log.warning("cannot read the last hour of the journal for acceptor counters: %s", exc)
            return 0
        finally:
            self.priming = False

    @property
    def following(self) -> bool:
        """Kept up to date: asked for within ``ACCEPTOR_STALE_S``."""
        return self.primed and time.monotonic() - self.read_at <= ACCEPTOR_STALE_S

    def at(
        self, now: float, merchant: str, terminal: str
    ) -> tuple[AcceptorVelocity, AcceptorVelocity]:
        """The counts of ``merchant`` and ``terminal`` (none while the hour is being read).
        A catch-up on the reader thread holds the lock for tens of µs: waited for, briefly, so
        that no request goes without counts because of it; the hour's read is not."""
        if not (merchant or terminal) or not self.primed:
            return NO_ACCEPTOR, NO_ACCEPTOR
        if self.priming:
            acquired = self.lock.acquire(blocking=False)
        else:
            acquired = self.lock.acquire(timeout=_CATCH_UP_WAIT_S)
        if not acquired:
            return NO_ACCEPTOR, NO_ACCEPTOR
        try:
            return self.counters.at(now, merchant, terminal)
        finally:
            self.lock.release()
