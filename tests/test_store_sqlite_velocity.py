"""The SQLite store keeps each card's velocity counters between snapshots and reads only the
journal entries committed since; the counters must equal the one definition
(cards.velocity.compute_velocity) for any history, late entries, other writers and eviction
included, and read the journal as the offline replay does (models.context.event_from_row)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.cards.velocity import (
    DAY,
    HOUR,
    RETENTION_S,
    Velocity,
    VelocityEvent,
    compute_velocity,
)
from authhost.models.context import event_from_row
from authhost.store.records import JournalEntry
from authhost.store.sqlite import _JOURNAL_INSERT, _journal_values
from authhost.store.sqlite_schema import migrate
from authhost.store.sqlite_velocity import ROW_COLUMNS, VelocityCounters, uncounted_entries

NOW = 1_795_000_000.25
EDGES = [0.0, HOUR, HOUR + 1e-6, DAY, DAY - 1e-6, 7 * DAY, 7 * DAY + 0.5, RETENTION_S,
         RETENTION_S + 1e-6, RETENTION_S + 0.9, -0.5, -HOUR]  # fmt: skip

ages = st.one_of(st.sampled_from(EDGES), st.floats(min_value=-DAY, max_value=RETENTION_S + DAY))
event_parts = st.tuples(
    st.integers(min_value=0, max_value=10**9),
    st.booleans(),
    st.sampled_from(["", "M1", "M2", "M3"]),
    st.sampled_from(["", "276", "840"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


def insert(
    conn: sqlite3.Connection, card_id: str, event: VelocityEvent, message_class: str = "financial"
) -> None:
    """The journal entry a request with this velocity event leaves behind."""
    entry = JournalEntry(
        ts=event.ts,
        mti="0200",
        message_class=message_class,
        response_code="00" if event.approved else "05",
        card_id=card_id,
        processing_code="010000" if event.cash else "000000",
        amount_minor=event.amount_minor,
        merchant_id=event.merchant_id,
        country=event.country,
        pin_failed=event.pin_failed,
        cvv_failed=event.cvv_failed,
        movement="post" if event.approved else "",
    )
    assert event_from_row(entry.as_row()) == event  # what the offline replay reads back
    conn.execute(_JOURNAL_INSERT, _journal_values(entry))


_UNCOUNTED_SQL = (
    f"SELECT {', '.join(ROW_COLUMNS)} FROM journal AS j WHERE j.card_id = :card "
    f"AND {uncounted_entries('1')}"
)


def counters_at(counters: VelocityCounters, conn: sqlite3.Connection, card_id: str, now: float):
    """One card's counters brought up to date as the store's snapshot does it: its uncounted
    entries (the snapshot's SQL condition), handed to ``advance``."""
    with counters.lock:
        params = {"card": card_id, "mark": counters.mark_of(card_id), "now": now}
        rows = conn.execute(_UNCOUNTED_SQL, params).fetchall()
        return counters.advance(card_id, rows, 0, now)


def fresh(path: Path | str = ":memory:") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn)
    return conn


def counted(history: list[VelocityEvent], now: float) -> Velocity:
    """What a snapshot at ``now`` counts: every event written, one stamped after ``now`` too
    (a request received later on another connection, written first): the counters as at the
    newest event when it is later than ``now``."""
    newest = max((event.ts for event in history), default=now)
    return compute_velocity(history, max(now, newest))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ages, event_parts), max_size=25))
def test_counters_equal_compute_velocity_at_the_window_edges(history_parts):
    conn = fresh()
    history = [VelocityEvent(NOW - age, *parts) for age, parts in history_parts]
    for event in sorted(history, key=lambda e: e.ts):  # journal ids follow arrival (see the
        insert(conn, "card", event)  # next test for entries committed out of order)
    assert counters_at(VelocityCounters(), conn, "card", NOW) == counted(history, NOW)


# a step: advance the clock, then add rows (their ts a little off "now", as concurrent requests
# commit out of order) and/or read the counters
steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 30.0, HOUR, DAY, 7 * DAY, RETENTION_S]),
        st.lists(st.tuples(st.floats(min_value=-120, max_value=5), event_parts), max_size=3),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_kept_counters_follow_new_and_late_rows(history_steps):
    conn = fresh()
    counters = VelocityCounters()
    history: list[VelocityEvent] = []
    now = NOW
    for advance, new_events, read in history_steps:
        now += advance
        for offset, parts in new_events:
            event = VelocityEvent(now + offset, *parts)
            insert(conn, "card", event)
            history.append(event)
        if read:
            assert counters_at(counters, conn, "card", now) == counted(history, now)
    assert counters_at(counters, conn, "card", now + HOUR) == counted(history, now + HOUR)


def test_two_processes_see_each_others_rows(tmp_path):
    """Two servers on one file: counters kept by one follow the rows the other commits."""
    first = fresh(tmp_path / "a.db")
    second = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    ours, theirs = VelocityCounters(), VelocityCounters()
    insert(first, "card", VelocityEvent(NOW - 60, 1000, True, "M1", "276"))
    assert counters_at(ours, first, "card", NOW).count_1h == 1
    assert counters_at(theirs, second, "card", NOW).count_1h == 1
    insert(second, "card", VelocityEvent(NOW - 30, 2500, True, "M2", "840"))
    seen = counters_at(ours, first, "card", NOW + 1)
    assert (seen.count_1h, seen.amount_1h, seen.distinct_countries_1h) == (2, 3500, 2)


def test_other_cards_do_not_count():
    conn = fresh()
    insert(conn, "card", VelocityEvent(NOW - 10, 500, True, "M1", "276"))
    counters = VelocityCounters()
    assert counters_at(counters, conn, "someone-else", NOW) == compute_velocity([], NOW)
    assert counters_at(counters, conn, "card", NOW).amount_1h == 500


def test_only_authorisations_financials_and_advices_count():
    conn = fresh()
    insert(conn, "card", VelocityEvent(NOW - 10, 500, True, "M1", "276"))
    for message_class in ("reversal", "reversal_advice", "unknown"):
        insert(conn, "card", VelocityEvent(NOW - 5, 900, True, "M2", "840"), message_class)
    insert(conn, "card", VelocityEvent(NOW - 1, 200, True, "M1", "276"), "authorisation_advice")
    velocity = counters_at(VelocityCounters(), conn, "card", NOW)
    assert (velocity.count_1h, velocity.amount_1h, velocity.distinct_countries_1h) == (2, 700, 1)


SPENDING_CASES = [
    # (message class, processing code, movement, reasons, counts as approved spending)
    ("authorisation", "000000", "hold", "", True),
    ("financial_advice", "000000", "post", "advice.stand_in", True),
    ("financial_advice", "000000", "post", "advice.completion;advice.stand_in", False),
    ("financial_advice", "000000", "post", "advice.completion_partial", False),
    ("financial_advice", "000000", "", "advice.declined_by_network", False),
    ("authorisation_advice", "000000", "", "advice.currency_mismatch", False),
    ("authorisation", "310000", "", "", False),  # a balance inquiry
]


def test_what_counts_as_approved_spending_in_sql_and_in_a_replay():
    """The SQL of the snapshot and the replay of an exported journal read the same rule
    (models.context.is_approved_spending)."""
    for i, (message_class, code, movement, reasons, spends) in enumerate(SPENDING_CASES):
        conn = fresh()
        entry = JournalEntry(
            ts=NOW - 10, mti="0220", message_class=message_class, response_code="00",
            card_id="card", processing_code=code, amount_minor=1_000 + i, movement=movement,
            reason_codes=reasons,
        )  # fmt: skip
        assert event_from_row(entry.as_row()).approved is spends, SPENDING_CASES[i]
        conn.execute(_JOURNAL_INSERT, _journal_values(entry))
        velocity = counters_at(VelocityCounters(), conn, "card", NOW)
        assert (velocity.count_1h, velocity.approved_count_24h, velocity.amount_1h) == (
            1, int(spends), (1_000 + i) * spends), SPENDING_CASES[i]  # fmt: skip


def test_a_first_read_skips_history_older_than_the_window():
    """Old entries are not fetched, and the first entry inside the window still counts."""
    conn = fresh()
    for age in (5 * RETENTION_S, 2 * RETENTION_S, RETENTION_S + 2 * HOUR):
        insert(conn, "card", VelocityEvent(NOW - age, 100, True))
    insert(conn, "card", VelocityEvent(NOW - RETENTION_S + 1, 700, True))
    insert(conn, "other", VelocityEvent(NOW - 1, 50, True))
    assert counters_at(VelocityCounters(), conn, "card", NOW).amount_30d == 700


def test_evicted_cards_are_counted_again_from_their_rows():
    conn = fresh()
    counters = VelocityCounters(max_cards=2)
    for i in range(5):
        insert(conn, f"card{i}", VelocityEvent(NOW - i, 100 * (i + 1), True))
    for _ in range(2):
        for i in range(5):
            assert counters_at(counters, conn, f"card{i}", NOW).amount_1h == 100 * (i + 1)
    insert(conn, "card0", VelocityEvent(NOW, 50, True))
    assert counters_at(counters, conn, "card0", NOW + 1).amount_1h == 150


def test_each_card_counts_its_own_entries_above_its_own_mark():
    """A statement that did not know the card (a PAN that now means its renewal) hands over all
    of the card's window: entries below another card's mark still count for this one."""
    conn = fresh()
    insert(conn, "new-card", VelocityEvent(NOW - 20, 300, True))  # journal_id 1
    insert(conn, "old-card", VelocityEvent(NOW - 10, 500, True))  # journal_id 2
    counters = VelocityCounters()
    columns = ", ".join(ROW_COLUMNS)
    rows = conn.execute(f"SELECT 'x', {columns} FROM journal AS j WHERE card_id = 'old-card'")
    assert counters.advance("old-card", rows.fetchall(), 1, NOW).amount_1h == 500
    assert counters.mark_of("old-card") == 2
    rows = conn.execute(f"SELECT 'x', {columns} FROM journal AS j WHERE card_id = 'new-card'")
    assert counters.advance("new-card", rows.fetchall(), 1, NOW).amount_1h == 300
    assert counters.mark_of("new-card") == 1
    again = conn.execute(f"SELECT 'x', {columns} FROM journal AS j").fetchall()  # both cards'
    assert counters.advance("old-card", [r for r in again if r[1] == 2], 1, NOW).count_1h == 1
