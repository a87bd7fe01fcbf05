"""The model step's time budget is the champion's: a challenger scored in shadow never costs
the champion's score (it is scored only while the champion left half the budget)."""

from __future__ import annotations

import time

from test_auth_steps import request, tx_for

from authhost.auth.steps.fraud import Fraud


class TimedModels:
    """Two models that take the given times to score (what the step measures)."""

    active = True

    def __init__(self, champion_s: float, challenger_s: float) -> None:
        self.champion_s, self.challenger_s = champion_s, challenger_s

    def champion_score(self, ctx) -> int:
        time.sleep(self.champion_s)
        return 249

    def challenger_score(self, ctx) -> int:
        time.sleep(self.challenger_s)
        return 600

    def explain(self, ctx, score: int) -> str:
        return ""


def test_a_slow_challenger_does_not_cost_the_champions_score():
    tx = tx_for(request())
    Fraud(scorer=TimedModels(0.001, 0.300), budget_ms=200)(tx)
    assert (tx.fraud_score, tx.challenger_score, tx.model_skipped) == (249, 600, False)


def test_a_champion_past_the_budget_is_skipped_and_past_half_has_no_challenger():
    late = tx_for(request())
    Fraud(scorer=TimedModels(0.300, 0.0), budget_ms=200)(late)
    assert (late.fraud_score, late.model_skipped) == (None, True)
    half = tx_for(request())
    Fraud(scorer=TimedModels(0.150, 0.0), budget_ms=200)(half)
    assert (half.fraud_score, half.challenger_score, half.model_skipped) == (249, None, False)
