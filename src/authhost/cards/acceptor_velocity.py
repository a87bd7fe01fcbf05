"""Velocity of the places the cards are used at: every merchant and terminal, over all cards.

A card's own counters (``cards.velocity``) cannot see card testing: a fraudster runs many
stolen card numbers through one merchant, each card only once or twice, most of them failing
CVV2 or unknown to the issuer. What stands out is the merchant (field 42) or the terminal
(field 41 at that merchant): many distinct cards, many declines, many failed CVV checks and
unknown card numbers within minutes. ``AcceptorCounters`` keeps those counts for every acceptor
with a request in the last hour, at O(1) per request, from the same journal rows in the server
(each store feeds it what was committed) and in backtests and training (``replay_contexts``),
so a rule reads the same numbers online and offline.

The counts cover the issuer's own traffic only (what its journal holds), and the requests
committed before the snapshot: in a replay exactly the earlier rows; online, a request that
arrived moments earlier but is still being decided is not in them yet.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from sys import intern
from typing import NamedTuple

from authhost.frozen import quick_constructor

WINDOW_SHORT_S = 600.0  # 10 minutes: a testing burst
WINDOW_LONG_S = 3600.0  # 1 hour: a slower wave
# Events kept at most (a process keeps the last hour of its issuer's traffic); past this the
# oldest are dropped early and the 1 h counts come out low. About 140 bytes each (measured
# with tracemalloc on a benchmark journal: one merchant, 200 cards).
DEFAULT_MAX_EVENTS = 1_000_000
TERMINAL_SEPARATOR = "\x1f"  # terminal key = merchant id + this + terminal id


@dataclass(frozen=True, slots=True)
class AcceptorVelocity:
    """Counters of one merchant or terminal at one instant, over every card of the issuer."""

    count_10m: int = 0
    count_1h: int = 0
    distinct_cards_10m: int = 0
    distinct_cards_1h: int = 0
    declined_count_10m: int = 0
    declined_count_1h: int = 0
    failed_cvv_10m: int = 0
    failed_cvv_1h: int = 0
    unknown_card_count_10m: int = 0  # requests with a card number the issuer does not know
    unknown_card_count_1h: int = 0


NO_ACCEPTOR = AcceptorVelocity()
ACCEPTOR_COUNTERS: tuple[str, ...] = tuple(f.name for f in fields(AcceptorVelocity))
# AcceptorVelocity(*the 10 counts in order) without the frozen __init__'s cost (authhost.frozen)
_new_velocity = quick_constructor(AcceptorVelocity)


class AcceptorEvent(NamedTuple):
    """One request at an acceptor, as the counters need it (no PAN: a card id or PAN index)."""

    ts: float
    merchant: str  # merchant key ("" counts for no merchant)
    terminal: str  # terminal key ("" counts for no terminal), see ``terminal_key``
    card: str  # card id, or the PAN index of an unknown card number
    declined: bool
    cvv_failed: bool
    unknown_card: bool


def terminal_key(merchant_id: str, terminal_id: str) -> str:
    """A terminal id is unique at its merchant only: the key is both ("" without a terminal)."""
    return f"{merchant_id}{TERMINAL_SEPARATOR}{terminal_id}" if terminal_id else ""


# A card's events at an acceptor, packed in one int: those in the 10 minutes in the low bits,
# those in the hour above them (one dict entry per card, not one per card and window)
_SHORT = 1
_LONG = 1 << 24
_SHORT_MASK = _LONG - 1


class _Sums:
    """Running counts of one acceptor over the 10 minutes and the hour. Plain int slots and one
    dict (about 400 bytes an acceptor where lists and a dict per window took 930): a host keeps
    one per merchant and terminal of the last hour. Written out by hand, no loops over the two
    windows: it runs for every request, in every process."""

    __slots__ = (
        "count_10m",
        "count_1h",
        "declined_10m",
        "declined_1h",
        "cvv_10m",
        "cvv_1h",
        "unknown_10m",
        "unknown_1h",
        "cards_10m",
        "cards",
    )

    def __init__(self) -> None:
        self.count_10m = self.count_1h = 0
        self.declined_10m = self.declined_1h = 0
        self.cvv_10m = self.cvv_1h = 0
        self.unknown_10m = self.unknown_1h = 0
        self.cards_10m = 0  # cards with an event in the 10 minutes
        self.cards: dict[str, int] = {}  # card -> its events, packed (_SHORT, _LONG)

    def enter(self, event: AcceptorEvent, short: bool) -> None:
        """A new event enters the hour, and the 10 minutes when ``short``."""
        card = event.card
        packed = self.cards.get(card, 0) + _LONG
        self.count_1h += 1
        if event.declined:
            self.declined_1h += 1
        if event.cvv_failed:
            self.cvv_1h += 1
        if event.unknown_card:
            self.unknown_1h += 1
        if short:
            if not packed & _SHORT_MASK:
                self.cards_10m += 1
            packed += _SHORT
            self.count_10m += 1
            if event.declined:
                self.declined_10m += 1
            if event.cvv_failed:
                self.cvv_10m += 1
            if event.unknown_card:
                self.unknown_10m += 1
        self.cards[card] = packed

    def leave_short(self, event: AcceptorEvent) -> None:
        """``event`` goes out of the 10 minutes (it stays in the hour)."""
        self.count_10m -= 1
        if event.declined:
            self.declined_10m -= 1
        if event.cvv_failed:
            self.cvv_10m -= 1
        if event.unknown_card:
            self.unknown_10m -= 1
        packed = self.cards[event.card] - _SHORT
        if not packed & _SHORT_MASK:
            self.cards_10m -= 1
        self.cards[event.card] = packed

    def leave_long(self, event: AcceptorEvent) -> None:
        """``event`` goes out of the hour (it left the 10 minutes before)."""
        self.count_1h -= 1
        if event.declined:
            self.declined_1h -= 1
        if event.cvv_failed:
            self.cvv_1h -= 1
        if event.unknown_card:
            self.unknown_1h -= 1
        packed = self.cards[event.card] - _LONG
        if packed:
            self.cards[event.card] = packed
        else:
            del self.cards[event.card]

    def velocity(self) -> AcceptorVelocity:
        return _new_velocity(
            self.count_10m,
            self.count_1h,
            self.cards_10m,
            len(self.cards),
            self.declined_10m,
            self.declined_1h,
            self.cvv_10m,
            self.cvv_1h,
            self.unknown_10m,
            self.unknown_1h,
        )


class AcceptorCounters:
    """Every acceptor's counts over the last 10 minutes and hour, kept as events come and go.

    Events are added in about time order (a store's commit order; a replay's row order). Two
    queues hold them: the last 10 minutes, and 10 minutes to an hour. ``at(now)`` first moves
    the events that aged out of a window (comparing with the newest ``now`` seen, so a query a
    moment earlier than another is answered at the later one's edges), then reads two sums.
    An acceptor whose hour is empty is forgotten.
    """

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self._short: deque[AcceptorEvent] = deque()
        self._long: deque[AcceptorEvent] = deque()
        self._sums: dict[str, _Sums] = {}
        self._now = float("-inf")
        self._max_events = max_events

    def __len__(self) -> int:
        """Events kept (inside the hour)."""
        return len(self._short) + len(self._long)

    @property
    def acceptors(self) -> int:
        """Merchants and terminals with a request kept."""
        return len(self._sums)

    def add(self, event: AcceptorEvent) -> None:
        """Count one request (at most the hour before the newest query: older cannot count)."""
        age = self._now - event.ts
        if age > WINDOW_LONG_S:
            return
        short = age <= WINDOW_SHORT_S
        sums = self._sums
        merchant, terminal = event.merchant, event.terminal
        if merchant:
            acceptor = sums.get(merchant)
            if acceptor is None:
                acceptor = sums[merchant] = _Sums()
            acceptor.enter(event, short)
        if terminal:
            acceptor = sums.get(terminal)
            if acceptor is None:
                acceptor = sums[terminal] = _Sums()
            acceptor.enter(event, short)
        elif not merchant:
            return
        (self._short if short else self._long).append(event)
        if len(self._short) + len(self._long) > self._max_events:  # the oldest goes early
            if self._long:
                self._drop(self._long.popleft(), in_short=False)
            else:
                self._drop(self._short.popleft(), in_short=True)

    def at(
        self, now: float, merchant: str, terminal: str
    ) -> tuple[AcceptorVelocity, AcceptorVelocity]:
        """The counts of ``merchant`` and of ``terminal`` (a ``terminal_key``) at ``now``."""
        self._expire(now)
        sums = self._sums
        found = sums.get(merchant) if merchant else None
        at_terminal = sums.get(terminal) if terminal else None
        return (
            found.velocity() if found is not None else NO_ACCEPTOR,
            at_terminal.velocity() if at_terminal is not None else NO_ACCEPTOR,
        )

    def busiest(
        self, now: float, by: str, terminals: bool = False, limit: int = 20
    ) -> list[tuple[str, str, AcceptorVelocity]]:
        """The acceptors with the highest ``by`` counter at ``now`` (an ``AcceptorVelocity``
        field), as (merchant id, terminal id or "", counters): where card testing is going on
        right now. Merchants, or with ``terminals`` the terminals; ties by key."""
        if by not in ACCEPTOR_COUNTERS:
            raise ValueError(f"unknown counter {by!r}: one of {', '.join(ACCEPTOR_COUNTERS)}")
        self._expire(now)
        found = []
        for key, sums in self._sums.items():
            merchant, separator, terminal = key.partition(TERMINAL_SEPARATOR)
            if bool(separator) == terminals:
                velocity = sums.velocity()
                found.append((-getattr(velocity, by), merchant, terminal, velocity))
        found.sort(key=lambda row: row[:3])
        return [(merchant, terminal, velocity) for _, merchant, terminal, velocity in found[:limit]]

    def _expire(self, now: float) -> None:
        if now <= self._now:
            return
        self._now = now
        short, long, sums = self._short, self._long, self._sums
        edge = now - WINDOW_SHORT_S
        while short and short[0].ts < edge:
            event = short.popleft()
            if event.merchant:
                sums[event.merchant].leave_short(event)
            if event.terminal:
                sums[event.terminal].leave_short(event)
            long.append(event)
        edge = now - WINDOW_LONG_S
        while long and long[0].ts < edge:
            self._drop(long.popleft(), in_short=False)

    def _drop(self, event: AcceptorEvent, in_short: bool) -> None:
        """Take an event out of the hour (and out of the 10 minutes if it was still there)."""
        sums = self._sums
        for key in (event.merchant, event.terminal):
            if not key:
                continue
            acceptor = sums[key]
            if in_short:
                acceptor.leave_short(event)
            acceptor.leave_long(event)
            if not acceptor.count_1h:
                del sums[key]


def acceptor_event(
    ts: float,
    merchant_id: str,
    terminal_id: str,
    card_id: str,
    pan_index: str,
    approved: bool,
    cvv_failed: bool,
) -> AcceptorEvent | None:
    """The event a velocity request leaves at its acceptor (None: it names neither a merchant
    nor a terminal). A request for a card number the issuer does not know counts too, under
    its PAN index: those are what a card-testing run mostly sends."""
    terminal = terminal_key(merchant_id, terminal_id)
    if not merchant_id and not terminal:
        return None
    # an hour of events is kept: interned, each merchant, terminal and card is one string
    return AcceptorEvent(
        ts,
        intern(merchant_id),
        intern(terminal),
        intern(card_id or pan_index),
        not approved,
        bool(cvv_failed),
        not card_id,
    )
