"""Velocity counters over sliding windows: one definition for the store, the rules and the models.

The store keeps each card's recent events (30 days) and hands them to ``compute_velocity`` in
the snapshot; training and backtests replay the journal export through the same function, so
online and offline features cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from authhost.frozen import quick_constructor

HOUR = 3600.0
DAY = 24 * HOUR
WINDOWS: dict[str, float] = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
RETENTION_S = WINDOWS["30d"]


@dataclass(frozen=True, slots=True)
class VelocityEvent:
    """One past request of a card, as the counters need it (no PAN, no SAD)."""

    ts: float  # epoch seconds, host clock
    amount_minor: int
    approved: bool
    merchant_id: str = ""
    country: str = ""
    cash: bool = False  # ATM / cash withdrawal
    pin_failed: bool = False
    cvv_failed: bool = False
    # money to the card (refund, deposit, transfer: ``iso.messages.CREDIT_TYPES``): counted
    # only as money received, never as spending (no count_*, amount_*, seconds_since_last)
    credit: bool = False


@dataclass(frozen=True, slots=True)
class Velocity:
    """Counters of one card at one instant. Counts are attempts; amounts are approved sums.
    The ``received_*`` counters are the approved credits to the card (money in): a mule's
    card is paid in and emptied within hours, which spending counters alone cannot show."""

    count_1h: int = 0
    count_24h: int = 0
    count_7d: int = 0
    count_30d: int = 0
    approved_count_24h: int = 0
    approved_count_30d: int = 0
    amount_1h: int = 0
    amount_24h: int = 0
    amount_7d: int = 0
    amount_30d: int = 0
    distinct_merchants_1h: int = 0
    distinct_merchants_24h: int = 0
    distinct_merchants_7d: int = 0
    distinct_merchants_30d: int = 0
    distinct_countries_1h: int = 0
    distinct_countries_24h: int = 0
    distinct_countries_7d: int = 0
    distinct_countries_30d: int = 0
    declined_count_24h: int = 0
    cash_count_24h: int = 0
    cash_amount_24h: int = 0
    failed_pin_24h: int = 0
    failed_cvv_24h: int = 0
    seconds_since_last: float | None = None  # None: no earlier event within 30 days
    mean_amount_7d: float = 0.0  # mean approved amount (minor units)
    mean_amount_30d: float = 0.0
    received_count_24h: int = 0
    received_amount_24h: int = 0
    received_count_7d: int = 0
    received_amount_7d: int = 0
    seconds_since_received: float | None = None  # None: no approved credit within 30 days


EMPTY = Velocity()


# Velocity(*the 31 fields in declaration order): for the hot paths (``cards.sliding``)
new_velocity: Callable[..., Velocity] = quick_constructor(Velocity)


def compute_velocity(events: Iterable[VelocityEvent], now: float) -> Velocity:
    """Counters at ``now`` from events strictly before ``now`` and within 30 days.

    An event is inside a window when its age (``now - ts``) is at most the window's span. The
    windows are nested (1 h within 24 h within 7 d within 30 d = the retention), so one pass
    with nested tests counts them all; this runs on every authorisation's snapshot, hence the
    plain locals instead of per-window dicts.
    """
    week = WINDOWS["7d"]
    n1 = n24 = n7 = n30 = 0
    amount1 = amount24 = amount7 = amount30 = 0
    approved24 = approved7 = approved30 = 0
    merchants1: set[str] = set()
    merchants24: set[str] = set()
    merchants7: set[str] = set()
    merchants30: set[str] = set()
    countries1: set[str] = set()
    countries24: set[str] = set()
    countries7: set[str] = set()
    countries30: set[str] = set()
    declined_24h = cash_count = cash_amount = failed_pin = failed_cvv = 0
    received24 = received_amount24 = received7 = received_amount7 = 0
    last: float | None = None
    last_received: float | None = None
    for event in events:
        ts = event.ts
        age = now - ts
        if age < 0 or age > RETENTION_S:
            continue
        if event.credit:
            if event.approved:
                if last_received is None or ts > last_received:
                    last_received = ts
                if age <= week:
                    received7 += 1
                    received_amount7 += event.amount_minor
                    if age <= DAY:
                        received24 += 1
                        received_amount24 += event.amount_minor
            continue
        if last is None or ts > last:
            last = ts
        approved = event.approved
        amount = event.amount_minor
        merchant = event.merchant_id
        country = event.country
        n30 += 1
        if merchant:
            merchants30.add(merchant)
        if country:
            countries30.add(country)
        if approved:
            amount30 += amount
            approved30 += 1
        if age > week:
            continue
        n7 += 1
        if merchant:
            merchants7.add(merchant)
        if country:
            countries7.add(country)
        if approved:
            amount7 += amount
            approved7 += 1
        if age > DAY:
            continue
        n24 += 1
        if merchant:
            merchants24.add(merchant)
        if country:
            countries24.add(country)
        if approved:
            amount24 += amount
            approved24 += 1
        else:
            declined_24h += 1
        failed_pin += event.pin_failed
        failed_cvv += event.cvv_failed
        if event.cash and approved:
            cash_count += 1
            cash_amount += amount
        if age > HOUR:
            continue
        n1 += 1
        if merchant:
            merchants1.add(merchant)
        if country:
            countries1.add(country)
        if approved:
            amount1 += amount
    return Velocity(
        count_1h=n1,
        count_24h=n24,
        count_7d=n7,
        count_30d=n30,
        approved_count_24h=approved24,
        approved_count_30d=approved30,
        amount_1h=amount1,
        amount_24h=amount24,
        amount_7d=amount7,
        amount_30d=amount30,
        distinct_merchants_1h=len(merchants1),
        distinct_merchants_24h=len(merchants24),
        distinct_merchants_7d=len(merchants7),
        distinct_merchants_30d=len(merchants30),
        distinct_countries_1h=len(countries1),
        distinct_countries_24h=len(countries24),
        distinct_countries_7d=len(countries7),
        distinct_countries_30d=len(countries30),
        declined_count_24h=declined_24h,
        cash_count_24h=cash_count,
        cash_amount_24h=cash_amount,
        failed_pin_24h=failed_pin,
        failed_cvv_24h=failed_cvv,
        seconds_since_last=None if last is None else now - last,
        mean_amount_7d=amount7 / approved7 if approved7 else 0.0,
        mean_amount_30d=amount30 / approved30 if approved30 else 0.0,
        received_count_24h=received24,
        received_amount_24h=received_amount24,
        received_count_7d=received7,
        received_amount_7d=received_amount7,
        seconds_since_received=None if last_received is None else now - last_received,
    )
