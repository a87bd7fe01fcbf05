"""compute_velocity against the plain per-window definition it replaced (an oracle), including
events exactly on the window edges, in the future, and beyond the retention."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.cards.velocity import (
    DAY,
    HOUR,
    RETENTION_S,
    WINDOWS,
    Velocity,
    VelocityEvent,
    compute_velocity,
)

NOW = 1_780_000_000.0


def reference_velocity(events: Iterable[VelocityEvent], now: float) -> Velocity:
    """The original, obviously-correct definition: every window tested on its own."""
    counts = dict.fromkeys(WINDOWS, 0)
    amounts = dict.fromkeys(WINDOWS, 0)
    approved_counts = dict.fromkeys(WINDOWS, 0)
    merchants: dict[str, set[str]] = {w: set() for w in WINDOWS}
    countries: dict[str, set[str]] = {w: set() for w in WINDOWS}
    declined_24h = cash_count = cash_amount = failed_pin = failed_cvv = 0
    received = {"24h": [0, 0], "7d": [0, 0]}  # count, amount of approved credits
    last: float | None = None
    last_received: float | None = None
    for event in events:
        age = now - event.ts
        if age < 0 or age > RETENTION_S:
            continue
        if event.credit:  # money in: received only
            if event.approved:
                last_received = max(event.ts, last_received or event.ts)
                for window, sums in received.items():
                    if age <= WINDOWS[window]:
                        sums[0] += 1
                        sums[1] += event.amount_minor
            continue
        last = event.ts if last is None or event.ts > last else last
        for window, span in WINDOWS.items():
            if age > span:
                continue
            counts[window] += 1
            if event.merchant_id:
                merchants[window].add(event.merchant_id)
            if event.country:
                countries[window].add(event.country)
            if event.approved:
                amounts[window] += event.amount_minor
                approved_counts[window] += 1
        if age <= DAY:
            declined_24h += not event.approved
            failed_pin += event.pin_failed
            failed_cvv += event.cvv_failed
            if event.cash and event.approved:
                cash_count += 1
                cash_amount += event.amount_minor
    return Velocity(
        count_1h=counts["1h"],
        count_24h=counts["24h"],
        count_7d=counts["7d"],
        count_30d=counts["30d"],
        approved_count_24h=approved_counts["24h"],
        approved_count_30d=approved_counts["30d"],
        amount_1h=amounts["1h"],
        amount_24h=amounts["24h"],
        amount_7d=amounts["7d"],
        amount_30d=amounts["30d"],
        distinct_merchants_1h=len(merchants["1h"]),
        distinct_merchants_24h=len(merchants["24h"]),
        distinct_merchants_7d=len(merchants["7d"]),
        distinct_merchants_30d=len(merchants["30d"]),
        distinct_countries_1h=len(countries["1h"]),
        distinct_countries_24h=len(countries["24h"]),
        distinct_countries_7d=len(countries["7d"]),
        distinct_countries_30d=len(countries["30d"]),
        declined_count_24h=declined_24h,
        cash_count_24h=cash_count,
        cash_amount_24h=cash_amount,
        failed_pin_24h=failed_pin,
        failed_cvv_24h=failed_cvv,
        seconds_since_last=None if last is None else now - last,
        mean_amount_7d=amounts["7d"] / approved_counts["7d"] if approved_counts["7d"] else 0.0,
        mean_amount_30d=amounts["30d"] / approved_counts["30d"] if approved_counts["30d"] else 0.0,
        received_count_24h=received["24h"][0],
        received_amount_24h=received["24h"][1],
        received_count_7d=received["7d"][0],
        received_amount_7d=received["7d"][1],
        seconds_since_received=None if last_received is None else now - last_received,
    )


AGES = [-1.0, 0.0, 1.0, HOUR - 1, HOUR, HOUR + 0.5, DAY, DAY + 1, 7 * DAY, 7 * DAY + 1]
AGES += [RETENTION_S - 1, RETENTION_S, RETENTION_S + 0.001]
events = st.builds(
    VelocityEvent,
    ts=st.one_of(
        st.sampled_from(AGES).map(lambda age: NOW - age),
        st.floats(NOW - 40 * DAY, NOW + HOUR, allow_nan=False),
    ),
    amount_minor=st.integers(0, 10**9),
    approved=st.booleans(),
    merchant_id=st.sampled_from(["", "m1", "m2", "m3"]),
    country=st.sampled_from(["", "276", "250", "840"]),
    cash=st.booleans(),
    pin_failed=st.booleans(),
    cvv_failed=st.booleans(),
    credit=st.booleans(),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(events, max_size=40))
def test_compute_velocity_equals_the_per_window_definition(batch):
    assert compute_velocity(batch, NOW) == reference_velocity(batch, NOW)


def test_window_edges_are_inclusive():
    edge = [VelocityEvent(NOW - span, 100, True, "m", "276") for span in WINDOWS.values()]
    velocity = compute_velocity(edge, NOW)
    assert (velocity.count_1h, velocity.count_24h, velocity.count_7d, velocity.count_30d) == (
        1,
        2,
        3,
        4,
    )
    assert velocity.seconds_since_last == HOUR


def test_nothing_counts_from_the_future_or_beyond_retention():
    velocity = compute_velocity(
        [VelocityEvent(NOW + 1, 5, True), VelocityEvent(NOW - RETENTION_S - 1, 5, True)], NOW
    )
    assert velocity == compute_velocity([], NOW) and velocity.seconds_since_last is None


def test_money_received_is_counted_apart_from_spending():
    """A mule's day: paid in by transfers, then emptied at the ATM. The credits are money
    received (approved only), and change none of the spending counters or seconds_since_last."""
    history = [
        VelocityEvent(NOW - 8 * DAY, 9_000, True, credit=True),  # beyond 7 d: 30 d only
        VelocityEvent(NOW - 3 * DAY, 40_000, True, credit=True),
        VelocityEvent(NOW - 5 * HOUR, 1_500, True, "m1", "276"),  # a purchase
        VelocityEvent(NOW - 2 * HOUR, 50_000, True, credit=True),  # a transfer in
        VelocityEvent(NOW - HOUR / 2, 70_000, False, credit=True),  # refused (max balance)
        VelocityEvent(NOW - 600, 25_000, True, credit=True),
    ]
    velocity = compute_velocity(history, NOW)
    spending = compute_velocity([e for e in history if not e.credit], NOW)
    assert (velocity.received_count_24h, velocity.received_amount_24h) == (2, 75_000)
    assert (velocity.received_count_7d, velocity.received_amount_7d) == (3, 115_000)
    assert velocity.seconds_since_received == 600
    assert velocity.seconds_since_last == 5 * HOUR
    assert (velocity.count_24h, velocity.amount_24h, velocity.declined_count_24h) == (1, 1_500, 0)
    money_in = ("received_count_24h", "received_amount_24h", "received_count_7d")
    for name in Velocity.__slots__:
        if not name.startswith("received") and name != "seconds_since_received":
            assert getattr(velocity, name) == getattr(spending, name), name
    assert all(getattr(spending, name) == 0 for name in money_in)
