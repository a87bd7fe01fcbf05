"""Travel notices: the cardholder tells the bank where they will be, so that a purchase there
is not taken for fraud.

A notice names countries (ISO 3166 numeric, as field 19 carries them) and a span of UTC days,
both ends included. Rules read ``card.travel_notice``: true when one of the card's notices
covers the request's country on the request's day. Nothing else changes: the notice informs
the fraud rules, it lifts no block and no limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

MAX_NOTICES = 10  # per card: a notice is a trip, not a standing exemption
MAX_DAYS = 366  # the longest one trip may be


@dataclass(frozen=True, slots=True)
class TravelNotice:
    countries: frozenset[str]  # ISO 3166 numeric, 3 digits
    start: str  # YYYY-MM-DD, UTC, included
    end: str  # YYYY-MM-DD, UTC, included


def day_of(ts: float) -> str:
    """The UTC day (YYYY-MM-DD) of epoch seconds ``ts``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def covers(notices: Iterable[TravelNotice], country: str, ts: float) -> bool:
    """Whether a notice covers ``country`` on the UTC day of ``ts`` (ISO dates compare as
    text)."""
    if not country:
        return False
    day = ""
    for notice in notices:
        if country in notice.countries:
            day = day or day_of(ts)
            if notice.start <= day <= notice.end:
                return True
    return False
