"""Merchant and terminal counters on Redis: a stream of the committed requests' events.

On SQLite every process reads the acceptor events from the journal's tail; a Redis journal is
kept per account (one hash slot each), so there is no tail to read. Each process therefore
appends the events of its commits to one stream (``{acc}:events``: one XADD per commit batch,
trimmed to a little over an hour by ``MINID``) and reads what every process appended since it
last looked (one XREAD per snapshot batch) into its own ``AcceptorCounters``, the same counters
SQLite and the replays keep. Both happen only while the process's rules read the counters, so
a host without such a rule pays nothing; the stream, unlike SQLite's journal, then holds only
what was appended while some process followed it, and a rule added at run time counts from
the moment its processes start following.

The XADD follows the commit: it is not atomic with it (on a cluster it cannot be, the stream
has its own slot). A process that dies between the two loses those events from the counters,
never money or journal entries.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from sys import intern
from typing import Any

import anyio
from coredis.tokens import PureToken

from authhost.cards.acceptor_velocity import (
    NO_ACCEPTOR,
    WINDOW_LONG_S,
    AcceptorCounters,
    AcceptorEvent,
    AcceptorVelocity,
)
from authhost.models.context import acceptor_event_from_entry
from authhost.store.interface import ACCEPTOR_STALE_S
from authhost.store.records import JournalEntry

_KEEP_S = WINDOW_LONG_S + 300.0  # the stream keeps a little more than the longest window
_READ_COUNT = 1000  # stream entries (commit batches) per XREAD or XRANGE
_FIELD = b"e"


def _encode(events: Sequence[AcceptorEvent]) -> str:
    return json.dumps([list(event) for event in events], separators=(",", ":"))


def _decode(raw: Any) -> list[AcceptorEvent]:
    return [
        AcceptorEvent(ts, intern(merchant), intern(terminal), intern(card), *flags)
        for ts, merchant, terminal, card, *flags in json.loads(raw)
    ]


class RedisAcceptorStream:
    """This process's acceptor counters and how far into the shared stream it has read."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.counters = AcceptorCounters()
        self.last_id: bytes = b"0-0"
        self.primed = False  # the last hour has been read, and kept up since
        self.read_at = float("-inf")  # time.monotonic() of the last read
        self._cursor: bytes | int | None = None  # where the hour being read goes on
        self._reading = anyio.Lock()

    @property
    def following(self) -> bool:
        """This process reads the counters (its rules did in the last ``ACCEPTOR_STALE_S``)."""
        return self._cursor is not None or time.monotonic() - self.read_at <= ACCEPTOR_STALE_S

    async def record(self, client: Any, entries: Sequence[JournalEntry]) -> None:
        """Append the events of these committed entries, while this process follows the
        counters (none: no command). A process whose rules do not read them does not pay
        for them: one XADD costs the client about what a PING does."""
        if not self.following:
            return
        events = [e for e in map(acceptor_event_from_entry, entries) if e is not None]
        if not events:
            return
        await client.xadd(
            self.key,
            {_FIELD: _encode(events)},
            trim_strategy=PureToken.MINID,
            threshold=int((time.time() - _KEEP_S) * 1000),
            trim_operator=PureToken.APPROXIMATELY,
        )

    async def prime(self, client: Any, now: float) -> int:
        """Read the last hour of the stream afresh, all of it (before serving); returns the
        requests counted."""
        async with self._reading:
            self._restart(now)
            read = 0
            while not self.primed:
                read += await self._next_page(client, now)
            return read

    async def catch_up(self, client: Any, now: float) -> None:
        """Once per snapshot batch that asks: what every process appended since the last read.
        Counters never read, or not for ``ACCEPTOR_STALE_S`` (the rules did not ask
        meanwhile), read the last hour afresh, one page per batch, so that no batch waits for
        the whole hour; they answer no acceptor counts until the hour is in. A read under way
        (another batch's) is not waited for."""
        if self._reading.locked():
            return
        async with self._reading:
            if self._cursor is None and (
                not self.primed or time.monotonic() - self.read_at > ACCEPTOR_STALE_S
            ):
                self._restart(now)
            if self._cursor is not None:
                await self._next_page(client, now)
                return
            while True:
                reply = await client.xread({self.key: self.last_id}, count=_READ_COUNT)
                entries = next(iter(reply.values())) if reply else ()
                self._count(entries)
                if len(entries) < _READ_COUNT:
                    break
            self.read_at = time.monotonic()

    def _restart(self, now: float) -> None:
        self.primed = False
        self.counters, self.last_id = AcceptorCounters(), b"0-0"
        self._cursor = int((now - _KEEP_S) * 1000)

    async def _next_page(self, client: Any, now: float) -> int:
        """One page of the hour being read; the last one makes the counters primed."""
        assert self._cursor is not None
        entries = await client.xrange(self.key, self._cursor, b"+", count=_READ_COUNT)
        read = self._count(entries)
        if len(entries) < _READ_COUNT:
            self._cursor = None
            self.primed = True
            self.read_at = time.monotonic()
        else:
            self._cursor = b"(" + self.last_id
        return read

    def _count(self, entries: Sequence[Any]) -> int:
        add = self.counters.add
        read = 0
        for entry in entries:
            events = _decode(entry.field_values[_FIELD])
            for event in events:
                add(event)
            read += len(events)
            self.last_id = entry.identifier
        return read

    def at(
        self, now: float, merchant: str, terminal: str
    ) -> tuple[AcceptorVelocity, AcceptorVelocity]:
        if not (merchant or terminal) or not self.primed:
            return NO_ACCEPTOR, NO_ACCEPTOR
        return self.counters.at(now, merchant, terminal)
