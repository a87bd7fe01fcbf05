"""Champion against challenger on live traffic: what promoting the challenger would change.

A challenger scores in shadow beside the champion (both scores are journalled), so the
question an analyst must answer before ``authhost models activate`` is answered by the
journal itself: over the same requests, how many would each have alerted on at its operating
threshold, which frauds (the fraud reports) would each have caught and for how much, how often
they agree, and which frauds only one of them catches (the journal ids, to look at). Requests
only the champion scored (the challenger is scored only while the champion left it time) are
left out, so both are judged on the same requests, and so are the requests declined before
the fraud step (``models.scored``: no model scored them), counted as
``declined_before_fraud_step``. Amounts are minor units per currency (the card's): two
currencies' minor units are never added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

EXAMPLES = 20  # journal ids listed where only one model catches a fraud


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """One request both models scored, with what became known about it."""

    journal_id: int
    champion: int  # 0-999
    challenger: int
    amount_minor: int
    verdict: bool | None  # True: reported fraud; False: reported genuine; None: no report
    currency: str = ""  # of amount_minor: the card's (ISO 4217 numeric)


def compare(
    pairs: Iterable[ScoredPair],
    champion_threshold: int,
    challenger_threshold: int,
    *,
    declined_before_fraud_step: int = 0,
) -> dict[str, Any]:
    """The comparison report (plain JSON types) of ``pairs`` at the two thresholds;
    ``declined_before_fraud_step`` is the count of the period's requests left out because a
    step before the fraud step declined them."""
    rows = list(pairs)
    champion = np.array([p.champion for p in rows], dtype=np.int64)
    challenger = np.array([p.challenger for p in rows], dtype=np.int64)
    fraud = np.array([p.verdict is True for p in rows], dtype=bool)
    genuine = np.array([p.verdict is False for p in rows], dtype=bool)
    amount = np.array([p.amount_minor for p in rows], dtype=np.int64)
    currency = np.array([p.currency for p in rows], dtype=object)

    def by_currency(chosen: np.ndarray) -> dict[str, int]:
        """Minor units per currency of the chosen rows, codes in order."""
        totals: dict[str, int] = {}
        for code, minor in zip(currency[chosen], amount[chosen], strict=True):
            totals[code] = totals.get(code, 0) + int(minor)
        return dict(sorted(totals.items()))

    ids = np.array([p.journal_id for p in rows], dtype=np.int64)
    champion_alerts = champion >= champion_threshold
    challenger_alerts = challenger >= challenger_threshold

    def side(alerts: np.ndarray, threshold: int) -> dict[str, Any]:
        caught = alerts & fraud
        return {
            "threshold": threshold,
            "alerts": int(alerts.sum()),
            "alert_rate": float(alerts.mean()) if len(rows) else 0.0,
            "frauds_caught": int(caught.sum()),
            "fraud_amount_caught_minor": by_currency(caught),
            "alerts_reported_genuine": int((alerts & genuine).sum()),
        }

    return {
        "scored_by_both": len(rows),
        "declined_before_fraud_step": declined_before_fraud_step,
        "reported_frauds": int(fraud.sum()),
        "reported_fraud_amount_minor": by_currency(fraud),
        "reported_genuine": int(genuine.sum()),
        "champion": side(champion_alerts, champion_threshold),
        "challenger": side(challenger_alerts, challenger_threshold),
        "agreement": {
            "both_alert": int((champion_alerts & challenger_alerts).sum()),
            "champion_only": int((champion_alerts & ~challenger_alerts).sum()),
            "challenger_only": int((~champion_alerts & challenger_alerts).sum()),
            "neither": int((~champion_alerts & ~challenger_alerts).sum()),
        },
        "score_correlation": _correlation(champion, challenger),
        "frauds_only_challenger_catches": _first(ids[fraud & challenger_alerts & ~champion_alerts]),
        "frauds_only_champion_catches": _first(ids[fraud & champion_alerts & ~challenger_alerts]),
    }


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's r of the two scores; None when it is undefined (fewer than two requests, or
    a model that gave every request the same score)."""
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def _first(ids: np.ndarray) -> list[int]:
    return [int(i) for i in ids[:EXAMPLES]]
