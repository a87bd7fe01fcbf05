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
)

_SPANS: tuple[float, ...] = tuple(WINDOWS.values())  # 1h, 24h, 7d, 30d
_H1, _H24, _D7, _D30 = range(4)
assert _SPANS[_H24] == DAY and _SPANS[_D30] == RETENTION_S
_COMPACT_AT = 256
# A query up to this long before the latest one is answered from the running sums (requests of
# one card answered out of arrival order are milliseconds apart); further back, from scratch.
REWIND_LIMIT_S = 3600.0
assert _SPANS[_H1] >= REWIND_LIMIT_S  # an event that left the 1 h window is never in the future


def _ts(event: VelocityEvent) -> float:
    return event.ts


def _bump(counter: dict[str, int], key: str, sign: int) -> None:
    """Count ``key`` once more (``sign`` 1) or once less (-1); a key at zero disappears, so
    ``len(counter)`` is the number of distinct keys."""
    left = counter.get(key, 0) + sign
    if left:
        counter[key] = left
    else:
        del counter[key]


class _Sums:
    """Running sums of the events inside each window (1 h, 24 h, 7 d, 30 d), and the counters
    that exist for 24 h only."""

    __slots__ = ("count", "amount", "approved", "merchants", "countries", "day", "cash")

    def __init__(self) -> None:
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
        other.merchants = [counter.copy() for counter in self.merchants]
        other.countries = [counter.copy() for counter in self.countries]
        return other

    def enter(self, event: VelocityEvent) -> None:
        """A new event enters every window at once (inlined: this runs once per event)."""
        count, approved_count, amount = self.count, self.approved, self.amount
        for w in range(4):
            count[w] += 1
        if event.merchant_id:
            for counter in self.merchants:
                _bump(counter, event.merchant_id, 1)
        if event.country:
            for counter in self.countries:
                _bump(counter, event.country, 1)
        if event.approved:
            for w in range(4):
                amount[w] += event.amount_minor
                approved_count[w] += 1
        else:
            self.day[0] += 1
        self.day[1] += event.pin_failed
        self.day[2] += event.cvv_failed
        if event.cash and event.approved:
            self.cash[0] += 1
            self.cash[1] += event.amount_minor

    def change(self, w: int, event: VelocityEvent, sign: int) -> None:
        """``event`` comes into (``sign`` 1) or goes out of (-1) window ``w``."""
        self.count[w] += sign
        if event.merchant_id:
            _bump(self.merchants[w], event.merchant_id, sign)
        if event.country:
            _bump(self.countries[w], event.country, sign)
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

    def velocity(self, now: float, last: float) -> Velocity:
        """The counters at ``now``; ``last`` is the time of the newest event counted."""
        count, amount, approved = self.count, self.amount, self.approved
        if count[_D30] <= 0:
            return EMPTY
        merchants, countries, day, cash = self.merchants, self.countries, self.day, self.cash
        return Velocity(
            count_1h=count[_H1],
            count_24h=count[_H24],
            count_7d=count[_D7],
            count_30d=count[_D30],
            approved_count_24h=approved[_H24],
            approved_count_30d=approved[_D30],
            amount_1h=amount[_H1],
            amount_24h=amount[_H24],
            amount_7d=amount[_D7],
            amount_30d=amount[_D30],
            distinct_merchants_1h=len(merchants[_H1]),
            distinct_merchants_24h=len(merchants[_H24]),
            distinct_merchants_7d=len(merchants[_D7]),
            distinct_merchants_30d=len(merchants[_D30]),
            distinct_countries_1h=len(countries[_H1]),
            distinct_countries_24h=len(countries[_H24]),
            distinct_countries_7d=len(countries[_D7]),
            distinct_countries_30d=len(countries[_D30]),
            declined_count_24h=day[0],
            cash_count_24h=cash[0],
            cash_amount_24h=cash[1],
            failed_pin_24h=day[1],
            failed_cvv_24h=day[2],
            seconds_since_last=now - last,
            mean_amount_7d=amount[_D7] / approved[_D7] if approved[_D7] else 0.0,
            mean_amount_30d=amount[_D30] / approved[_D30] if approved[_D30] else 0.0,
        )


class SlidingVelocity:
    """One card's velocity counters, kept up to date as its events arrive in time order."""

    __slots__ = ("_events", "_start", "_sums", "_now")

    def __init__(self) -> None:
        self._events: list[VelocityEvent] = []
        self._reset()

    def _reset(self) -> None:
        self._start = [0, 0, 0, 0]  # index of the oldest event still inside each window
        self._sums = _Sums()
        self._now = float("-inf")  # latest query time

    def add(self, event: VelocityEvent) -> None:
        """Record an event (normally the request just answered)."""
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

    def at(self, now: float) -> Velocity:
        """The counters at ``now`` (same result as ``compute_velocity(events, now)``)."""
        events = self._events
        if not events:
            return EMPTY
        if now < self._now - REWIND_LIMIT_S:  # the clock went far back: count from scratch
            return compute_velocity(events, now)
        self._advance(max(now, self._now))
        if now == self._now and now >= events[-1].ts:  # the common case: sums as they stand
            return self._sums.velocity(now, events[-1].ts)
        return self._earlier(now)

    def _advance(self, now: float) -> None:
        """Move every window's start to ``now`` (not backwards), taking leavers off the sums."""
        events, sums = self._events, self._sums
        self._now = now
        for w, span in enumerate(_SPANS):
            start = self._start[w]
            while start < len(events) and now - events[start].ts > span:
                sums.change(w, events[start], -1)
                start += 1
            self._start[w] = start
        if self._start[_D30] >= _COMPACT_AT:
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
        return sums.velocity(now, events[newest - 1].ts)

    def _compact(self) -> None:
        """Forget events that no query can count again: older than 30 days by more than the
        furthest an earlier query is answered from the sums (``REWIND_LIMIT_S``)."""
        keep_after = self._now - RETENTION_S - REWIND_LIMIT_S
        drop = bisect.bisect_left(self._events, keep_after, hi=self._start[_D30], key=_ts)
        if drop:
            del self._events[:drop]
            self._start = [s - drop for s in self._start]
