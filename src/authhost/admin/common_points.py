"""The common point of purchase report over a store (``models.common_points`` ranks).

Which cards are fraud cards comes from the fraud reports, read as the labelled journal export
reads them (``journal_export.fraud_entries``: an analyst's report, the cardholder's "not me",
a fraud dispute's chargeback label). A card's first fraud is the time of its earliest entry
so labelled (each labelled entry is read once); the period [since, until) chooses the cards
whose first fraud falls in it, and the journal of [since - lookback, until) is streamed once
for their visits and everyone else's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authhost.admin.errors import InvalidRequest, NotFoundError
from authhost.admin.explain import card_journal_entry
from authhost.admin.journal_export import fraud_entries
from authhost.admin.totals import iso_time
from authhost.models.common_points import (
    BY,
    AtRiskCard,
    CommonPoint,
    CommonPoints,
    first_frauds,
)
from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JournalEntry

DAY_S = 86_400.0
LOOKBACK_MAX_DAYS = 365
AT_RISK_POINTS = 3  # the top rows whose cards at risk are listed (those above the base rate)
AT_RISK_LIMIT = 1_000  # cards at risk listed per row at most
OFFSET_MAX = 10**9  # rows a page skips at most (as every listing's offset)
ACT_HINT = (
    "to act on the cards at risk: put their card ids (one per line) in a file and run "
    "`authhost cards compromised FILE --card-ids --action watch` (or suspend, reissue). "
    "Nothing was changed"
)


async def common_points(
    store: CardStore,
    since: float,
    until: float,
    *,
    lookback_days: int,
    min_cards: int,
    by: str,
    limit: int,
    offset: int = 0,
) -> dict[str, Any]:
    """The report (module docstring): ranked acceptors, ``limit`` from row ``offset`` on, and
    the cards at risk at the top ones of the whole ranking whose lift is above 1 (a merchant
    no likelier than any other to have fraud cards is no lead, and its thousands of customers
    would bury the ones that matter), on the first page only: a later page is more rows, not
    the same cards again. Each page reads the journal afresh."""
    check_options(lookback_days, min_cards, by, limit, offset)
    lookback_s = lookback_days * DAY_S
    first = await _first_frauds(store, await fraud_entries(store))
    in_period = {card: ts for card, ts in first.items() if since <= ts < until}
    points = CommonPoints(
        in_period, lookback_s, (since - lookback_s, until), by, ignore=first.keys() - in_period
    )
    async for entry in store.export_journal(JournalQuery(since=since - lookback_s, until=until)):
        points.add(entry)
    ranking = points.ranking(min_cards, limit, offset)
    top = points.ranking(min_cards, AT_RISK_POINTS) if offset == 0 else []
    total = points.ranked(min_cards)
    base = points.base_rate
    return {
        "since": iso_time(since),
        "until": iso_time(until),
        "lookback_days": lookback_days,
        "by": by,
        "min_cards": min_cards,
        "entries_read": points.entries,
        "fraud_cards": len(in_period),
        "fraud_cards_with_visits": points.fraud_cards_seen,
        "cards_with_visits": points.cards_seen,
        "base_rate": None if base is None else round(base, 6),
        "points_total": total,
        "points": [_point_view(p) for p in ranking],
        "next_offset": offset + len(ranking) if offset + len(ranking) < total else None,
        "at_risk": [
            _at_risk_view(card)
            for point in top
            if (point.lift or 0.0) > 1.0  # a supermarket everyone visits: no common point
            for card in points.at_risk(point, AT_RISK_LIMIT)
        ],
        "hint": ACT_HINT if top else "",
    }


def check_options(lookback_days: int, min_cards: int, by: str, limit: int, offset: int = 0) -> None:
    """The bounds the API and the CLI hold the report to (422 with what is allowed)."""
    if not 1 <= lookback_days <= LOOKBACK_MAX_DAYS:
        raise InvalidRequest(f"lookback_days must be 1 to {LOOKBACK_MAX_DAYS}")
    if not 1 <= min_cards <= 1000:
        raise InvalidRequest("min_cards must be 1 to 1,000")
    if by not in BY:
        raise InvalidRequest(f"by must be one of {', '.join(BY)}")
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit must be 1 to 1,000")
    if not 0 <= offset <= OFFSET_MAX:
        raise InvalidRequest(f"offset must be 0 to {OFFSET_MAX:,}")


async def _first_frauds(store: CardStore, fraud: Mapping[int, str]) -> dict[str, float]:
    """Each fraud card's first fraud time (``models.common_points.first_frauds``), one read
    per labelled entry: not the card's lowest journal id, since on Redis each server process
    takes ids a block at a time, so a later entry can have a lower id than an earlier one."""
    entries: list[JournalEntry] = []
    for journal_id, card_id in fraud.items():
        try:
            entries.append(await card_journal_entry(store, card_id, journal_id))
        except NotFoundError:  # pruned since it was reported: nothing left to look back from
            continue
    return first_frauds(entries, set(fraud))


def _point_view(point: CommonPoint) -> dict[str, Any]:
    return {
        "merchant_id": point.merchant_id,
        "terminal_id": point.terminal_id or None,
        "merchant_name": point.merchant_name,
        "mcc": point.mcc,
        "country": point.country,
        "fraud_cards": point.fraud_cards,
        "cards": point.cards,
        "share": round(point.share, 6),
        "lift": None if point.lift is None else round(point.lift, 4),
        "first_visit": iso_time(point.first_visit),
        "last_visit": iso_time(point.last_visit),
    }


def _at_risk_view(card: AtRiskCard) -> dict[str, Any]:
    return {
        "merchant_id": card.merchant_id,
        "terminal_id": card.terminal_id or None,
        "card_id": card.card_id,
        "pan": card.pan_masked,
        "first_visit": iso_time(card.first_visit),
        "last_visit": iso_time(card.last_visit),
        "visits": card.visits,
        "in_fraud_span": card.in_fraud_span,
    }
