"""Velocity counters over sliding windows: one definition for the store, the rules and the models.

The store keeps each card's recent events (30 days) and hands them to ``compute_velocity`` in
the snapshot; training and backtests replay the journal export through the same function, so
online and offline features cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Velocity:
    """Counters of one card at one instant. Counts are attempts; amounts are approved sums."""

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


EMPTY = Velocity()


def compute_velocity(events: Iterable[VelocityEvent], now: float) -> Velocity:
    """Counters at ``now`` from events strictly before ``now`` and within 30 days."""
    counts = dict.fromkeys(WINDOWS, 0)
    amounts = dict.fromkeys(WINDOWS, 0)
    approved_counts = dict.fromkeys(WINDOWS, 0)
    merchants: dict[str, set[str]] = {w: set() for w in WINDOWS}
    countries: dict[str, set[str]] = {w: set() for w in WINDOWS}
    declined_24h = cash_count = cash_amount = failed_pin = failed_cvv = 0
    last: float | None = None
    for event in events:
        age = now - event.ts
        if age < 0 or age > RETENTION_S:
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
    )
