"""Incremental velocity (cards.sliding) equals cards.velocity.compute_velocity."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.cards.sliding import SlidingVelocity
from authhost.cards.velocity import HOUR, RETENTION_S, VelocityEvent, compute_velocity
from authhost.models.context import replay_contexts

# steps that hit the window edges exactly (1 h, 24 h, 7 d, 30 d) as well as arbitrary gaps
EDGE_STEPS = [0.0, 1.0, HOUR, 24 * HOUR, 7 * 24 * HOUR, RETENTION_S, RETENTION_S + 1]
steps = st.one_of(
    st.sampled_from(EDGE_STEPS),
    st.floats(min_value=0, max_value=3 * 24 * HOUR, allow_nan=False),
)
events = st.builds(
    VelocityEvent,
    ts=st.just(0.0),
    amount_minor=st.integers(0, 100_000),
    approved=st.booleans(),
    merchant_id=st.sampled_from(["", "m1", "m2", "m3"]),
    country=st.sampled_from(["", "276", "250"]),
    cash=st.booleans(),
    pin_failed=st.booleans(),
    cvv_failed=st.booleans(),
    credit=st.booleans(),  # money to the card: received, never spending
)
# an operation: advance the clock by a step, then either query or add an event at that time
operations = st.lists(st.tuples(steps, st.one_of(st.none(), events)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_sliding_window_equals_compute_velocity(
    ops: list[tuple[float, VelocityEvent | None]],
) -> None:
    sliding = SlidingVelocity()
    history: list[VelocityEvent] = []
    now = 1_700_000_000.0
    for step, event in ops:
        now += step
        assert sliding.at(now) == compute_velocity(history, now)
        if event is not None:
            placed = VelocityEvent(**{**_fields(event), "ts": now})
            sliding.add(placed)
            history.append(placed)
    assert sliding.at(now + HOUR) == compute_velocity(history, now + HOUR)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 40 * 24 * HOUR, allow_nan=False), min_size=1, max_size=30),
    st.floats(0, 45 * 24 * HOUR),
)
def test_out_of_order_events_and_queries_are_still_exact(times: list[float], query: float) -> None:
    """Late events or an earlier query fall back to the exact computation."""
    sliding = SlidingVelocity()
    history = []
    for t in times:  # unsorted on purpose
        event = VelocityEvent(ts=t, amount_minor=100, approved=True, merchant_id="m",
                              credit=int(t) % 3 == 0)  # fmt: skip
        sliding.add(event)
        history.append(event)
    assert sliding.at(query) == compute_velocity(history, query)


def _fields(event: VelocityEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in event.__slots__}


def test_replay_gives_each_row_the_velocity_of_its_earlier_rows() -> None:
    rows = []
    ts = 1_700_000_000.0
    for i in range(200):
        ts += [30.0, HOUR, 5 * HOUR, 2 * 24 * HOUR][i % 4]
        rows.append(
            {
                "ts": ts,
                "card_id": f"c{i % 3}",
                "message_class": "reversal" if i % 17 == 0 else "authorisation",
                "response_code": "05" if i % 5 == 0 else "00",
                "amount_minor": 100 * i,
                "merchant_id": f"m{i % 7}",
                "country": "276",
                "processing_code": ("010000", "000000", "260000", "000000", "200000")[i % 5],
            }
        )
    from authhost.models.context import event_from_row

    for row, ctx in replay_contexts(rows):
        earlier = [
            event_from_row(r)
            for r in rows
            if r["ts"] < row["ts"]
            and r["card_id"] == row["card_id"]
            and r["message_class"] != "reversal"
        ]
        assert ctx.velocity == compute_velocity(earlier, float(row["ts"]))  # type: ignore[arg-type]


late_operations = st.lists(
    st.tuples(
        st.sampled_from([0.0, 1.0, 600.0, HOUR, 24 * HOUR]),
        st.floats(min_value=-3 * HOUR, max_value=0, allow_nan=False),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(late_operations)
def test_late_events_between_queries_are_counted_exactly(ops) -> None:
    """Queries move the window starts; an event that arrives late (before events already
    counted, inside or outside the 1-hour window) must still give the exact counters."""
    sliding = SlidingVelocity()
    history: list[VelocityEvent] = []
    now = 1_700_000_000.0
    for i, (step, lateness, query) in enumerate(ops):
        now += step
        event = VelocityEvent(ts=now + lateness, amount_minor=i + 1, approved=i % 3 != 0,
                              merchant_id=f"m{i % 4}", country=("276", "")[i % 2],
                              credit=i % 5 == 1)  # fmt: skip
        sliding.add(event)
        history.append(event)
        if query:
            assert sliding.at(now) == compute_velocity(history, now)
    assert sliding.at(now + 1) == compute_velocity(history, now + 1)


rewind_operations = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.25, 30.0, HOUR, 24 * HOUR, RETENTION_S]),
        st.one_of(st.none(), st.floats(min_value=-2 * HOUR, max_value=10.0)),
        st.sampled_from([0.0, 0.001, 5.0, 600.0, HOUR - 1, HOUR, HOUR + 1, 3 * HOUR]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(rewind_operations)
def test_queries_before_the_latest_one_or_the_newest_event_are_exact(ops) -> None:
    """A server answers requests of one card a little out of order: a query may come before
    the latest query, or before events already recorded. The answer must not change."""
    sliding = SlidingVelocity()
    history: list[VelocityEvent] = []
    clock = 1_700_000_000.0
    for i, (step, offset, back) in enumerate(ops):
        clock += step
        if offset is not None:
            event = VelocityEvent(ts=clock + offset, amount_minor=10 * i + 1,
                                  approved=i % 4 != 0, merchant_id=f"m{i % 3}",
                                  country=("276", "250", "")[i % 3], cash=i % 5 == 0,
                                  pin_failed=i % 7 == 0, cvv_failed=i % 6 == 0,
                                  credit=i % 4 == 1)  # fmt: skip
            sliding.add(event)
            history.append(event)
        query = clock - back
        assert sliding.at(query) == compute_velocity(history, query)
    assert sliding.at(clock) == compute_velocity(history, clock)


def test_busy_card_with_every_counter_different_is_exact() -> None:
    """A history where (almost) every counter has its own value, so that a field given in the
    wrong place by the positional Velocity constructor cannot go unnoticed."""
    import random
    from dataclasses import astuple

    from authhost.cards.velocity import Velocity, new_velocity

    assert new_velocity(*range(31)) == Velocity(*range(31))
    rng = random.Random(3)
    sliding = SlidingVelocity()
    history: list[VelocityEvent] = []
    now = 1_700_000_000.0
    received_24h = 0  # the most credits seen in a 24 h window
    for i in range(600):
        now += rng.expovariate(150 / RETENTION_S) if i % 50 else 0.0
        event = VelocityEvent(
            ts=now,
            amount_minor=rng.randint(100, 90_000),
            approved=rng.random() < 0.8,
            merchant_id=f"m{rng.randint(1, 60)}",
            country=rng.choice(["276", "250", "840", "826", "380", ""]),
            cash=rng.random() < 0.2,
            pin_failed=rng.random() < 0.15,
            cvv_failed=rng.random() < 0.1,
            credit=rng.random() < 0.15,
        )
        sliding.add(event)
        history.append(event)
        query = now + rng.choice([0.0, 0.25, 30.0])
        expected = compute_velocity(history, query)
        assert sliding.at(query) == expected
        received_24h = max(received_24h, expected.received_count_24h)
        assert sliding.at(query - 0.5) == compute_velocity(history, query - 0.5)  # earlier
    assert len(set(astuple(expected))) >= 20
    assert expected.received_count_7d > 0 and received_24h > 1
