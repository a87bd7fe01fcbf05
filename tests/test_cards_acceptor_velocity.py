"""Merchant and terminal counters: the running sums against counting every event from scratch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.cards.acceptor_velocity import (
    NO_ACCEPTOR,
    WINDOW_LONG_S,
    WINDOW_SHORT_S,
    AcceptorCounters,
    AcceptorEvent,
    AcceptorVelocity,
    acceptor_event,
    terminal_key,
)
from authhost.models.context import acceptor_event_from_row, replay_contexts

T0 = 1_780_000_000.0


def counted_from_scratch(events: list[AcceptorEvent], now: float, key: str) -> AcceptorVelocity:
    """The definition: events at ``key`` no older than each window (age = now - ts)."""
    values: dict[str, int] = {}
    for suffix, span in (("10m", WINDOW_SHORT_S), ("1h", WINDOW_LONG_S)):
        inside = [e for e in events if key in (e.merchant, e.terminal) and now - e.ts <= span]
        values[f"count_{suffix}"] = len(inside)
        values[f"distinct_cards_{suffix}"] = len({e.card for e in inside})
        values[f"declined_count_{suffix}"] = sum(e.declined for e in inside)
        values[f"failed_cvv_{suffix}"] = sum(e.cvv_failed for e in inside)
        values[f"unknown_card_count_{suffix}"] = sum(e.unknown_card for e in inside)
    return AcceptorVelocity(**values)


def event(ts: float, merchant: str = "M1", terminal: str = "T1", card: str = "c1", **flags):
    return AcceptorEvent(
        ts,
        merchant,
        terminal_key(merchant, terminal),
        card,
        flags.get("declined", False),
        flags.get("cvv_failed", False),
        flags.get("unknown_card", False),
    )


steps = st.lists(
    st.tuples(
        st.floats(0, 1500),  # seconds after the previous step
        st.sampled_from(["M1", "M2", ""]),
        st.sampled_from(["T1", "T2", ""]),
        st.sampled_from(["c1", "c2", "c3", "u9"]),
        st.booleans(),
        st.booleans(),
        st.sampled_from(["M1", "M2"]),  # the merchant asked about at this step
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_running_counts_equal_counting_from_scratch(plan):
    """Requests in time order, each asking for its merchant's and terminal's counts before
    it is counted, as the server and a replay do."""
    counters = AcceptorCounters()
    seen: list[AcceptorEvent] = []
    now = T0
    for gap, merchant, terminal, card, declined, cvv, asked in plan:
        now += gap
        terminal_at = terminal_key(asked, "T1")
        at_merchant, at_terminal = counters.at(now, asked, terminal_at)
        assert at_merchant == counted_from_scratch(seen, now, asked)
        assert at_terminal == counted_from_scratch(seen, now, terminal_at)
        new = acceptor_event(
            now, merchant, terminal, card if card != "u9" else "", card, not declined, cvv
        )
        if new is not None:
            counters.add(new)
            seen.append(new)


def test_windows_end_at_their_span_and_an_empty_acceptor_is_forgotten():
    counters = AcceptorCounters()
    counters.add(event(T0, card="c1", declined=True, cvv_failed=True))
    counters.add(event(T0 + 1, card="c2"))
    counters.add(event(T0 + 2, card="c1"))
    merchant, terminal = counters.at(T0 + 2 + WINDOW_SHORT_S, "M1", terminal_key("M1", "T1"))
    assert merchant == terminal  # one terminal: the same requests
    assert (merchant.count_10m, merchant.count_1h) == (1, 3)  # T0+2 is exactly 10 minutes old
    assert (merchant.distinct_cards_10m, merchant.distinct_cards_1h) == (1, 2)
    assert (merchant.declined_count_10m, merchant.declined_count_1h) == (0, 1)
    assert merchant.failed_cvv_1h == 1
    merchant, _ = counters.at(T0 + 1 + WINDOW_LONG_S, "M1", "")
    assert (merchant.count_1h, merchant.distinct_cards_1h) == (2, 2)  # T0 left the hour
    assert counters.at(T0 + 3 + WINDOW_LONG_S, "M1", "") == (NO_ACCEPTOR, NO_ACCEPTOR)
    assert len(counters) == 0


def test_the_event_cap_drops_the_oldest_first():
    counters = AcceptorCounters(max_events=3)
    for n in range(5):
        counters.add(event(T0 + n, card=f"c{n}"))
    merchant, _ = counters.at(T0 + 5, "M1", "")
    assert len(counters) == 3
    assert (merchant.count_1h, merchant.distinct_cards_1h) == (3, 3)


def test_an_event_older_than_the_hour_is_not_counted():
    counters = AcceptorCounters()
    counters.at(T0 + 2 * WINDOW_LONG_S, "M1", "")
    counters.add(event(T0))
    assert counters.at(T0 + 2 * WINDOW_LONG_S, "M1", "") == (NO_ACCEPTOR, NO_ACCEPTOR)


def test_terminal_ids_are_told_apart_by_merchant():
    counters = AcceptorCounters()
    counters.add(event(T0, merchant="M1", terminal="T1"))
    counters.add(event(T0, merchant="M2", terminal="T1"))
    _, terminal = counters.at(T0 + 1, "M1", terminal_key("M1", "T1"))
    assert terminal.count_1h == 1
    assert terminal_key("M1", "") == ""


def test_an_unknown_card_counts_under_its_pan_index_and_a_journal_row_gives_the_same_event():
    row = {
        "ts": T0,
        "message_class": "authorisation",
        "response_code": "14",
        "card_id": "",
        "pan_index": "idx-1",
        "merchant_id": "M1",
        "terminal_id": "T7",
        "cvv_failed": False,
    }
    assert acceptor_event_from_row(row) == AcceptorEvent(
        T0, "M1", terminal_key("M1", "T7"), "idx-1", True, False, True
    )
    assert acceptor_event_from_row({**row, "message_class": "reversal"}) is None
    assert acceptor_event_from_row({**row, "merchant_id": "", "terminal_id": ""}) is None


def test_a_replay_gives_each_row_the_counts_of_the_rows_before_it():
    rows = [
        {
            "ts": T0 + n,
            "message_class": "authorisation",
            "response_code": "05" if n % 2 else "00",
            "card_id": f"card-{n}",
            "merchant_id": "SHOP",
            "terminal_id": "T1",
            "cvv_failed": n % 2 == 1,
            "processing_code": "000000",
        }
        for n in range(6)
    ]
    contexts = [ctx for _, ctx in replay_contexts(rows)]
    assert [c.merchant_velocity.distinct_cards_10m for c in contexts] == [0, 1, 2, 3, 4, 5]
    assert [c.terminal_velocity.failed_cvv_10m for c in contexts] == [0, 0, 1, 1, 2, 2]
    assert contexts[-1].merchant_velocity.declined_count_1h == 2
