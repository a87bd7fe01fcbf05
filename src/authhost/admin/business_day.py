"""The bank's business day: which moments a report's ``day=YYYY-MM-DD`` covers.

A bank reconciles by its own business day, not by UTC's: in its own time zone, and often with
a cut-over (a settlement run at 21:00 books what comes after it to the next day). Every
report that takes a day (daily totals, statements, the account updater file, rule
performance, the model comparison, RRN look-ups) asks this for the day's bounds, so they all
cut the day at the same instant, and the day's totals add up to the ledger's day.

A day ends at the cut-over, and day D is the 24 hours between two cut-overs that hold D's
noon: with a cut-over of 21:00, from 21:00 the evening before D to 21:00 on D; with 02:00,
from 02:00 on D to 02:00 the morning after; with 00:00, D's calendar day. The start is in
the day, the end is not. Days around a daylight-saving change are 23 or 25 hours long; a
cut-over the change skips or repeats is read as the zone reads that wall time (fold 0).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FIRST_YEAR, LAST_YEAR = 2000, 2099  # the days a report may ask for (a clearing file's too)
# those days as the OpenAPI document states them (with format date: a day that exists)
DAY_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_ONE_DAY = dt.timedelta(days=1)
_NOON = dt.time(12)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # OSError: a name the zone database holds a directory under ("Europe"), or too long
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{name!r} is not a time zone (an IANA name such as UTC, Europe/Paris or "
            "Asia/Singapore)"
        ) from None


def _cutover(text: str) -> dt.time:
    hours, _, minutes = text.partition(":")
    if not (len(hours) == 2 and len(minutes) == 2 and (hours + minutes).isascii()):
        raise ValueError(f"{text!r} is not a time of day (HH:MM, 00:00 to 23:59)")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"{text!r} is not a time of day (HH:MM, 00:00 to 23:59)")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True)
class BusinessDay:
    """A time zone and a cut-over; ValueError at construction for either not understood."""

    timezone: str = "UTC"
    cutover: str = "00:00"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _cut: dt.time = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _zone(self.timezone))
        object.__setattr__(self, "_cut", _cutover(self.cutover))

    def bounds(self, day: str) -> tuple[float, float]:
        """Day ``YYYY-MM-DD`` as [since, until) epoch seconds; ValueError if it is not a date,
        or not one of 2000-2099 (9999-12-31 ends in a year ``datetime`` cannot show)."""
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{day!r} is not a date (YYYY-MM-DD)") from None
        if not FIRST_YEAR <= date.year <= LAST_YEAR:
            raise ValueError(f"{day!r} is not a day of {FIRST_YEAR}-{LAST_YEAR}")
        return self._end(date - _ONE_DAY), self._end(date)

    def of(self, moment: float) -> str:
        """The business day (YYYY-MM-DD) a moment (epoch seconds) counts to."""
        date = dt.datetime.fromtimestamp(moment, self._zone).date()
        if moment >= self._end(date):
            date += _ONE_DAY
        elif moment < self._end(date - _ONE_DAY):
            date -= _ONE_DAY
        return date.isoformat()

    def _end(self, date: dt.date) -> float:
        """When business day ``date`` ends: at the first cut-over after its noon."""
        if self._cut <= _NOON:
            date += _ONE_DAY
        return dt.datetime.combine(date, self._cut, tzinfo=self._zone).timestamp()


UTC_DAY = BusinessDay()
