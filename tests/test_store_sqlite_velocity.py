"""The SQLite store aggregates velocity counters in SQL; they must equal the one Python
definition (cards.velocity.compute_velocity) for any history, window boundaries included."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.cards.velocity import DAY, HOUR, RETENTION_S, VelocityEvent, compute_velocity
from authhost.store.sqlite import _velocity
from authhost.store.sqlite_schema import migrate

NOW = 1_795_000_000.25
EDGES = [0.0, HOUR, HOUR + 1e-6, DAY, DAY - 1e-6, 7 * DAY, 7 * DAY + 0.5, RETENTION_S,
         RETENTION_S + 1e-6, RETENTION_S + 0.9, -0.5, -HOUR]  # fmt: skip

ages = st.one_of(st.sampled_from(EDGES), st.floats(min_value=-DAY, max_value=RETENTION_S + DAY))
events = st.lists(
    st.builds(
        lambda age, amount, approved, merchant, country, cash, pin, cvv: VelocityEvent(
            NOW - age, amount, approved, merchant, country, cash, pin, cvv
        ),
        ages,
        st.integers(min_value=0, max_value=10**9),
        st.booleans(),
        st.sampled_from(["", "M1", "M2", "M3"]),
        st.sampled_from(["", "276", "840"]),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    max_size=25,
)


def store_with(history: list[VelocityEvent]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    conn.executemany(
        "INSERT INTO velocity (card_id, ts, amount, approved, merchant_id, country, cash, "
        "pin_failed, cvv_failed) VALUES ('card', ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (e.ts, e.amount_minor, e.approved, e.merchant_id, e.country, e.cash, e.pin_failed,
             e.cvv_failed)
            for e in history
        ],
    )  # fmt: skip
    return conn


@settings(max_examples=300, deadline=None)
@given(events)
def test_sql_velocity_equals_compute_velocity(history):
    conn = store_with(history)
    assert _velocity(conn, "card", NOW) == compute_velocity(history, NOW)


def test_other_cards_do_not_count():
    conn = store_with([VelocityEvent(NOW - 10, 500, True, "M1", "276")])
    assert _velocity(conn, "someone-else", NOW) == compute_velocity([], NOW)
    assert _velocity(conn, "card", NOW).amount_1h == 500
