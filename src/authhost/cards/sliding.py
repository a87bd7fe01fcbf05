"""Incremental velocity counters: the same numbers as ``compute_velocity``, at O(1) per event.

``compute_velocity`` looks at every retained event of a card on every call: for a busy card
(hundreds of events in 30 days) that is the most expensive part of an authorisation, and a
replay of a million journal rows would be quadratic. ``SlidingVelocity`` keeps running sums per
window and only touches an event when it enters (``add``) or leaves a window (``at``). Both
stores keep one per recently seen card between snapshots; journal replays (training, backtests)
keep one per card. A hypothesis test proves it equal to ``compute_velocity`` on random
histories, in and out of order.

Events normally arrive in time order and queries at non-decreasing times. A late event (requests
of one card committed out of order) is slotted in and counted at once when it is no older than
the oldest event of the 1-hour window, else the retained events are recounted. A query earlier
than the latest one, or before the newest event (a request answered after a later one of the
same card), is answered from the sums corrected for the few events in between, without
changing them; only a query more than an hour back counts the retained events from scratch.
"""

from __future__ import annotations

import bisect

from authhost.cards.velocity import (
    DAY,
    EMPTY,
    RETENTION_S,
    WINDOWS,
    Velocity,
    VelocityEvent,
    compute_velocity,
    new_velocity,
)

_SPANS: tuple[float, ...] = tuple(WINDOWS.values())  # 1h, 24h, 7d, 30d
_H1, _H24, _D7, _D30 = range(4)
_WINDOWS: tuple[tuple[int, float], ...] = tuple(enumerate(_SPANS))
assert _SPANS[_H24] == DAY and _SPANS[_D30] == RETENTION_S
_COMPACT_AT = 256
# A query up to this long before the latest one is answered from the running sums (requests of
# one card answered out of arrival order are milliseconds apart); further back, from scratch.
REWIND_LIMIT_S = 3600.0
assert _SPANS[_H1] >= REWIND_LIMIT_S  # an event that left the 1 h window is never in the future


def _ts(event: VelocityEvent) -> float:
    return event.ts


class _Sums:
    """Running sums of the events inside each window (1 h, 24 h, 7 d, 30 d), and the counters
    that exist for 24 h only.

    ``merchants`` and ``countries`` map each key to its number of events in the window; a key
    whose count falls to zero is deleted, so ``len(counter)`` is the number of distinct keys.
    ``enter`` and ``change`` are written out by hand (no loops over the four windows where a
    few statements do): they run for every request.
    """

    __slots__ = (
        "count", "amount", "approved", "merchants", "countries", "day", "cash",
        "received", "received_amount",
    )  # fmt: skip

    def __init__(self) -> None:
        self.received = [0, 0, 0, 0]  # approved credits to the card (money in), their amount
        self.received_amount = [0, 0, 0, 0]
        self.count = [0, 0, 0, 0]
        self.amount = [0, 0, 0, 0]  # approved amounts
        self.approved = [0, 0, 0, 0]
        self.merchants: list[dict[str, int]] = [{}, {}, {}, {}]  # key -> events in the window
        self.countries: list[dict[str, int]] = [{}, {}, {}, {}]
        self.day = [0, 0, 0]  # 24 h: declined, failed PIN, failed CVV
        self.cash = [0, 0]  # 24 h: approved cash withdrawals, their amount

    def copy(self) -> _Sums:
        other = _Sums.__new__(_Sums)
        other.count, other.amount = self.count[:], self.amount[:]
        other.approved, other.day, other.cash = self.approved[:], self.day[:], self.cash[:]
        other.received, other.received_amount = self.received[:], self.received_amount[:]
        m1, m24, m7, m30 = self.merchants
        other.merchants = [m1.copy(), m24.copy(), m7.copy(), m30.copy()]
        c1, c24, c7, c30 = self.countries
        other.countries = [c1.copy(), c24.copy(), c7.copy(), c30.copy()]
        return other

    def enter(self, event: VelocityEvent) -> None:
        """A new event enters every window at once (a key's count only grows here)."""
        if event.credit:  # money in: received only, never spending
            if event.approved:
                received, minor = self.received, event.amount_minor
                received[0] += 1
                received[1] += 1
                received[2] += 1
                received[3] += 1
                received_amount = self.received_amount
                received_amount[0] += minor
                received_amount[1] += minor
                received_amount[2] += minor
                received_amount[3] += minor
            return
        count = self.count
        count[0] += 1
        count[1] += 1
        count[2] += 1
        count[3] += 1
        merchant = event.merchant_id
        if merchant:
            for counter in self.merchants:
                counter[merchant] = counter.get(merchant, 0) + 1
        country = event.country
        if country:
            for counter in self.countries:
                counter[country] = counter.get(country, 0) + 1
        day = self.day
        if event.approved:
            minor = event.amount_minor
            amount, approved = self.amount, self.approved
            amount[0] += minor
            amount[1] += minor
            amount[2] += minor
            amount[3] += minor
            approved[0] += 1
            approved[1] += 1
            approved[2] += 1
            approved[3] += 1
            if event.cash:
                cash = self.cash
                cash[0] += 1
                cash[1] += minor
        else:
            day[0] += 1
        day[1] += event.pin_failed
        day[2] += event.cvv_failed

    def change(self, w: int, event: VelocityEvent, sign: int) -> None:
        """``event`` comes into (``sign`` 1) or goes out of (-1) window ``w`` (every event
        leaves each window once: about four calls a request)."""
        if event.credit:
            if event.approved:
                self.received[w] += sign
                self.received_amount[w] += sign * event.amount_minor
            return
        self.count[w] += sign
        if event.merchant_id:
            _tally(self.merchants[w], event.merchant_id, sign)
        if event.country:
            _tally(self.countries[w], event.country, sign)
        if event.approved:
            self.amount[w] += sign * event.amount_minor
            self.approved[w] += sign
        if w == _H24:
            self.day[0] += sign * (not event.approved)
            self.day[1] += sign * event.pin_failed
            self.day[2] += sign * event.cvv_failed
            if event.cash and event.approved:
                self.cash[0] += sign
                self.cash[1] += sign * event.amount_minor

    def velocity(self, now: float, last: float, last_received: float) -> Velocity:
        """The counters at ``now``; ``last`` is the time of the newest spending event counted,
        ``last_received`` of the newest approved credit (each read only if one is counted)."""
        n1, n24, n7, n30 = self.count
        _, in24, in7, in30 = self.received
        if n30 <= 0 and in30 <= 0:
            return EMPTY
        a1, a24, a7, a30 = self.amount
        _, ok24, ok7, ok30 = self.approved
        m1, m24, m7, m30 = self.merchants
        c1, c24, c7, c30 = self.countries
        declined, failed_pin, failed_cvv = self.day
        cash_count, cash_amount = self.cash
        return new_velocity(  # positional, in Velocity's field order (see its definition)
            n1, n24, n7, n30,
            ok24, ok30,
            a1, a24, a7, a30,
            len(m1), len(m24), len(m7), len(m30),
            len(c1), len(c24), len(c7), len(c30),
            declined, cash_count, cash_amount, failed_pin, failed_cvv,
            now - last if n30 > 0 else None,
            a7 / ok7 if ok7 else 0.0,
            a30 / ok30 if ok30 else 0.0,
            in24, self.received_amount[1], in7, self.received_amount[2],
            now - last_received if in30 > 0 else None,
        )  # fmt: skip


def _newest_of_each(events: list[VelocityEvent], end: int, since: float) -> tuple[float, float]:
    """The times of the newest spending event and the newest approved credit among
    ``events[:end]`` (sorted) no older than ``since`` (``-inf`` for a kind with none)."""
    spent = received = float("-inf")
    i = end
    while i > 0 and (spent == float("-inf") or received == float("-inf")):
        i -= 1
        event = events[i]
        if event.ts < since:
            break
        if not event.credit:
            if spent == float("-inf"):
                spent = event.ts
        elif event.approved and received == float("-inf"):
            received = event.ts
    return spent, received


def _tally(counter: dict[str, int], key: str, sign: int) -> None:
    """Count ``key`` in or out of a window's distinct-values counter (gone at zero)."""
    left = counter.get(key, 0) + sign
    if left:
        counter[key] = left
    else:
        del counter[key]


class SlidingVelocity:
    """One card's velocity counters, kept up to date as its events arrive in time order."""

    __slots__ = ("_events", "_start", "_sums", "_now", "_last_spent", "_last_received")

    def __init__(self) -> None:
        self._events: list[VelocityEvent] = []
        # the newest spending event's and approved credit's times ever added: in the common
        # case (a query after every event) the newest of each kind still counted
        self._last_spent = self._last_received = float("-inf")
        self._reset()

    def _reset(self) -> None:
        self._start = [0, 0, 0, 0]  # index of the oldest event still inside each window
        self._sums = _Sums()
        self._now = float("-inf")  # latest query time

    def add(self, event: VelocityEvent) -> None:
        """Record an event (normally the request just answered)."""
        if not event.credit:
            if event.ts > self._last_spent:
                self._last_spent = event.ts
        elif event.approved and event.ts > self._last_received:
            self._last_received = event.ts
        events = self._events
        if events and event.ts < events[-1].ts:
            place = bisect.bisect_right(events, event.ts, key=_ts)
            events.insert(place, event)
            if place >= self._start[_H1]:  # inside every window: count it as if in order
                self._sums.enter(event)
            else:
                self._recount()
            return
        events.append(event)
        self._sums.enter(event)

    def _recount(self) -> None:
        """Running sums from scratch over the (sorted) retained events: after a late event."""
        events = self._events
        self._reset()
        for event in events:
            self._sums.enter(event)

    def counted_at(self, now: float) -> Velocity:
        """The counters for a request received at ``now``, counting every event recorded:
        one stamped later is a request of the card received after this one on another
        connection or in another process but written first, and a limit must count it
        (``at`` leaves it out, as a replay of the journal at ``now`` does)."""
        events = self._events
        if events and events[-1].ts > now:
            return self.at(events[-1].ts)
        return self.at(now)

    def at(self, now: float) -> Velocity:
        """The counters at ``now`` (same result as ``compute_velocity(events, now)``)."""
        events = self._events
        if not events:
            return EMPTY
        latest = self._now
        if now < latest - REWIND_LIMIT_S:  # the clock went far back: count from scratch
            return compute_velocity(events, now)
        self._advance(latest if latest > now else now)  # max(now, latest) without the call
        newest = events[-1].ts
        if now == self._now and now >= newest:  # the common case: sums as they stand
            return self._sums.velocity(now, self._last_spent, self._last_received)
        return self._earlier(now)

    def _advance(self, now: float) -> None:
        """Move every window's start to ``now`` (not backwards), taking leavers off the sums."""
        events, starts = self._events, self._start
        self._now = now
        end = len(events)
        for w, span in _WINDOWS:
            start = starts[w]
            if start < end and now - events[start].ts > span:  # some left this window
                change = self._sums.change
                while start < end and now - events[start].ts > span:
                    change(w, events[start], -1)
                    start += 1
                starts[w] = start
        if starts[_D30] >= _COMPACT_AT:
            self._compact()

    def _earlier(self, now: float) -> Velocity:
        """The counters at a ``now`` before the latest query or the newest event (requests are
        answered a little out of order): a copy of the sums at the latest query, without the
        events after ``now`` and with those that had left a window since ``now``."""
        events = self._events
        sums = self._sums.copy()
        for w, span in enumerate(_SPANS):  # back in: left a window between now and _now
            i = self._start[w]
            while i > 0 and now - events[i - 1].ts <= span:
                i -= 1
                sums.change(w, events[i], +1)
        newest = len(events)  # out: events after now
        while newest > 0 and events[newest - 1].ts > now:
            newest -= 1
            for w in range(4):
                if newest >= self._start[w]:
                    sums.change(w, events[newest], -1)
        if newest == 0:
            return EMPTY
        return sums.velocity(now, *_newest_of_each(events, newest, now - RETENTION_S))

    def _compact(self) -> None:
        """Forget events that no query can count again: older than 30 days by more than the
        furthest an earlier query is answered from the sums (``REWIND_LIMIT_S``)."""
        keep_after = self._now - RETENTION_S - REWIND_LIMIT_S
        drop = bisect.bisect_left(self._events, keep_after, hi=self._start[_D30], key=_ts)
        if drop:
            del self._events[:drop]
            self._start = [s - drop for s in self._start]
