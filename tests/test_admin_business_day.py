"""The business day every report's ``day`` means: a time zone and a cut-over."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authhost.admin.business_day import UTC_DAY, BusinessDay


def utc(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_the_default_is_the_utc_calendar_day_and_anything_else_is_refused():
    since, until = UTC_DAY.bounds("2026-11-27")
    assert (since, until - since) == (1_795_737_600.0, 86_400.0)  # 2026-11-27T00:00Z
    with pytest.raises(ValueError, match="not a date"):
        UTC_DAY.bounds("27/11/2026")
    with pytest.raises(ValueError, match="2000-2099"):
        UTC_DAY.bounds("9999-12-31")


@pytest.mark.parametrize(
    "zone, cutover, day, starts, hours",
    [
        ("Asia/Singapore", "00:00", "2026-11-29", "2026-11-28T16:00", 24),
        # an evening settlement run: what comes after 21:00 is the next day's
        ("Europe/Paris", "21:00", "2026-11-29", "2026-11-28T20:00", 24),
        ("Europe/Paris", "21:00", "2026-03-29", "2026-03-28T20:00", 23),  # clocks forward
        ("Europe/Paris", "21:00", "2026-10-25", "2026-10-24T19:00", 25),  # clocks back
        # an early-morning run closes the day before it
        ("America/New_York", "02:00", "2026-11-29", "2026-11-29T07:00", 24),
        ("UTC", "12:00", "2026-11-29", "2026-11-29T12:00", 24),
    ],
)
def test_a_day_runs_between_the_cutovers_around_its_noon(zone, cutover, day, starts, hours):
    since, until = BusinessDay(zone, cutover).bounds(day)
    assert since == utc(starts)
    assert until - since == hours * 3600


@pytest.mark.parametrize(
    "zone, cutover, message",
    [
        ("Mars/Olympus", "00:00", "not a time zone"),
        ("../etc/passwd", "00:00", "not a time zone"),
        ("Europe", "00:00", "not a time zone"),  # a directory of the zone database
        ("A" * 300, "00:00", "not a time zone"),  # a file name too long
        ("Europe/Pärïs", "00:00", "not a time zone"),
        ("UTC", "24:00", "not a time of day"),
        ("UTC", "9:00", "not a time of day"),
        ("UTC", "21:60", "not a time of day"),
        ("UTC", "２１:00", "not a time of day"),
    ],
)
def test_a_zone_or_cutover_not_understood_is_refused(zone, cutover, message):
    with pytest.raises(ValueError, match=message):
        BusinessDay(zone, cutover)


@given(
    st.floats(min_value=utc("2000-01-03T00:00"), max_value=utc("2099-12-29T00:00")),
    st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
    st.sampled_from(["00:00", "02:00", "02:30", "12:00", "21:00", "23:59"]),
)
def test_every_moment_counts_to_the_one_day_whose_bounds_hold_it(moment, zone, cutover):
    """The day a moment is reported under (``of``) and the period a report of that day reads
    (``bounds``) agree, across daylight-saving changes, so no entry is in two days or none."""
    days = BusinessDay(zone, cutover)
    day = days.of(moment)
    since, until = days.bounds(day)
    assert since <= moment < until
    before, after = (
        dt.date.fromisoformat(day) - dt.timedelta(1),
        dt.date.fromisoformat(day) + dt.timedelta(1),
    )
    assert days.bounds(before.isoformat())[1] == since  # the days meet: no gap, no overlap
    assert days.bounds(after.isoformat())[0] == until
