"""Incremental velocity counters: the same numbers as ``compute_velocity``, at O(1) per event.

``compute_velocity`` looks at every retained event of a card on every call: for a busy card
(hundreds of events in 30 days) that is the most expensive part of an authorisation, and a
replay of a million journal rows would be quadratic. ``SlidingVelocity`` keeps running sums per
window and only touches an event when it enters (``add``) or leaves a window (``at``). The SQLite
store keeps one per recently seen card between snapshots; journal replays (training, backtests)
keep one per card. A hypothesis test proves it equal to ``compute_velocity`` on random
histories, in and out of order.

Events normally arrive in time order and queries at non-decreasing times. A late event (requests
of one card committed out of order) is slotted in and counted at once when it is no older than
the oldest event of the 1-hour window, else the retained events are recounted; a query
earlier than the last one, or before the newest event, is answered by ``compute_velocity``.
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


def _ts(event: VelocityEvent) -> float:
    return event.ts


def _inc(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _dec(counter: dict[str, int], key: str) -> None:
    left = counter[key] - 1
    if left:
        counter[key] = left
    else:
        del counter[key]


class SlidingVelocity:
    """One card's velocity counters, kept up to date as its events arrive in time order."""

    __slots__ = (
        "_events",
        "_start",
        "_count",
        "_amount",
        "_approved",
        "_merchants",
        "_countries",
        "_declined",
        "_failed_pin",
        "_failed_cvv",
        "_cash_count",
        "_cash_amount",
        "_now",
    )

    def __init__(self) -> None:
        self._events: list[VelocityEvent] = []
        self._reset()

    def _reset(self) -> None:
        self._start = [0, 0, 0, 0]  # index of the oldest event still inside each window
        self._count = [0, 0, 0, 0]
        self._amount = [0, 0, 0, 0]  # approved amounts
        self._approved = [0, 0, 0, 0]
        self._merchants: list[dict[str, int]] = [{}, {}, {}, {}]
        self._countries: list[dict[str, int]] = [{}, {}, {}, {}]
        self._declined = self._failed_pin = self._failed_cvv = 0  # 24 h only
        self._cash_count = self._cash_amount = 0
        self._now = float("-inf")  # latest query time

    def add(self, event: VelocityEvent) -> None:
        """Record an event (normally the request just answered)."""
        events = self._events
        if events and event.ts < events[-1].ts:
            place = bisect.bisect_right(events, event.ts, key=_ts)
            events.insert(place, event)
            if place >= self._start[_H1]:  # inside every window: count it as if in order
                self._enter(event)
            else:
                self._recount()
            return
        events.append(event)
        self._enter(event)

    def _recount(self) -> None:
        """Running sums from scratch over the (sorted) retained events: after a late event."""
        events = self._events
        self._events = []
        self._reset()
        for event in events:
            self._events.append(event)
            self._enter(event)

    def _enter(self, event: VelocityEvent) -> None:
        # the event enters every window at once (inlined: this runs once per event)
        count, approved_count, amount = self._count, self._approved, self._amount
        for w in range(4):
            count[w] += 1
        if event.merchant_id:
            for counter in self._merchants:
                _inc(counter, event.merchant_id)
        if event.country:
            for counter in self._countries:
                _inc(counter, event.country)
        if event.approved:
            for w in range(4):
                amount[w] += event.amount_minor
                approved_count[w] += 1
        else:
            self._declined += 1
        self._failed_pin += event.pin_failed
        self._failed_cvv += event.cvv_failed
        if event.cash and event.approved:
            self._cash_count += 1
            self._cash_amount += event.amount_minor

    def at(self, now: float) -> Velocity:
        """The counters at ``now`` (same result as ``compute_velocity(events, now)``)."""
        events = self._events
        if not events:
            return EMPTY
        if now < self._now or now < events[-1].ts:
            return compute_velocity(events, now)
        self._now = now
        for w, span in enumerate(_SPANS):
            start = self._start[w]
            while start < len(events) and now - events[start].ts > span:
                self._leave(w, events[start])
                start += 1
            self._start[w] = start
        if self._start[_D30] >= _COMPACT_AT:
            self._compact()
        if self._count[_D30] == 0:
            return EMPTY
        count, amount, approved = self._count, self._amount, self._approved
        merchants, countries = self._merchants, self._countries
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
            declined_count_24h=self._declined,
            cash_count_24h=self._cash_count,
            cash_amount_24h=self._cash_amount,
            failed_pin_24h=self._failed_pin,
            failed_cvv_24h=self._failed_cvv,
            seconds_since_last=now - events[-1].ts,
            mean_amount_7d=amount[_D7] / approved[_D7] if approved[_D7] else 0.0,
            mean_amount_30d=amount[_D30] / approved[_D30] if approved[_D30] else 0.0,
        )

    def _leave(self, w: int, event: VelocityEvent) -> None:
        self._count[w] -= 1
        if event.merchant_id:
            _dec(self._merchants[w], event.merchant_id)
        if event.country:
            _dec(self._countries[w], event.country)
        if event.approved:
            self._amount[w] -= event.amount_minor
            self._approved[w] -= 1
        if w == _H24:
            self._declined -= not event.approved
            self._failed_pin -= event.pin_failed
            self._failed_cvv -= event.cvv_failed
            if event.cash and event.approved:
                self._cash_count -= 1
                self._cash_amount -= event.amount_minor

    def _compact(self) -> None:
        """Forget events older than every window (they can never count again)."""
        drop = self._start[_D30]
        del self._events[:drop]
        self._start = [s - drop for s in self._start]
