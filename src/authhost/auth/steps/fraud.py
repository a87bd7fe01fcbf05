"""Step 6: fraud scoring: the ML model first (under its own time budget), then the analysts' rules.

Rules may use the model's score; when the model cannot score within its budget, the rules see
no score (``score`` is missing) and the journal records ``model_skipped``. A high score is
journalled with the model's top reasons (``model_reasons``): what an analyst asks first.
"""

from __future__ import annotations

import time
from typing import Protocol

from authhost.auth.decision import Decline
from authhost.auth.transaction import Transaction
from authhost.cards.cardholder_pass import PASS_REASON, pass_covers
from authhost.iso.codes import ResponseCode as RC
from authhost.models.context import TxContext, context_from_request


class ModelScorer(Protocol):
    @property
    def active(self) -> bool:
        """A model is loaded and will score."""
        ...

    def champion_score(self, ctx: TxContext) -> int | None:
        """The champion's score, 0-999 (None: no champion)."""
        ...

    def challenger_score(self, ctx: TxContext) -> int | None:
        """The challenger's score in shadow, 0-999 (None: no challenger)."""
        ...

    def explain(self, ctx: TxContext, score: int) -> str:
        """Why the champion scored ``score`` (its top reasons), or "" when not worth saying."""
        ...


class RuleEvaluator(Protocol):
    def evaluate(self, ctx: TxContext, score: int | None) -> RuleVerdict: ...


class RuleVerdict(Protocol):
    decline_code: str | None
    reason_codes: list[str]
    review: bool
    score_delta: int
    matched: list[str]
    policy_decline: tuple[str, str] | None  # the first enforced decline that is not a 59


class Fraud:
    def __init__(
        self,
        scorer: ModelScorer | None = None,
        rules: RuleEvaluator | None = None,
        budget_ms: float = 5.0,
        threshold: int = 0,
        action: str = "flag",
    ) -> None:
        self._scorer = scorer
        self._rules = rules
        self._budget_ns = int(budget_ms * 1e6)
        self._threshold = threshold
        self._decline_at_threshold = action == "decline"

    def __call__(self, tx: Transaction) -> Decline | None:
        scorer = self._scorer if self._scorer is not None and self._scorer.active else None
        if scorer is None and self._rules is None:
            return None  # nothing to score with: no features to build
        ctx = context_from_request(
            tx.request,
            tx.snapshot,
            tx.now,
            tx.cavv_result,
            tx.token,
            tx.avs_result,
            tx.cvv2_result,
        )
        score: int | None = None
        if scorer is not None:
            started = time.perf_counter_ns()
            champion = scorer.champion_score(ctx)
            elapsed = time.perf_counter_ns() - started
            if elapsed > self._budget_ns:
                tx.model_skipped = True
            else:
                score = tx.model_score = champion
                # the challenger in shadow, while the champion left half the budget: its time
                # never costs the champion's score (the budget is the champion's)
                if elapsed <= self._budget_ns // 2:
                    tx.challenger_score = scorer.challenger_score(ctx)
                if champion is not None:
                    tx.model_reasons = scorer.explain(ctx, champion)
        verdict = self._rules.evaluate(ctx, score) if self._rules is not None else None
        if verdict is not None:
            tx.rule_matches = list(verdict.matched)
            if score is not None and verdict.score_delta:
                score = max(0, min(999, score + verdict.score_delta))
        tx.fraud_score = score
        passed = False  # the cardholder's pass let a suspicion through: no more flags
        if verdict is not None:
            if verdict.decline_code is not None:
                reason = verdict.reason_codes[0] if verdict.reason_codes else "rules.decline"
                if verdict.decline_code != RC.SUSPECTED_FRAUD or not _covered(tx):
                    return Decline(RC(verdict.decline_code), reason)
                if verdict.policy_decline is not None:  # a policy matched too: it stands
                    code, why = verdict.policy_decline
                    return Decline(RC(code), why)
                _let_through(tx, reason)
                passed = True
            elif verdict.review:
                tx.review = True
                tx.reasons.extend(verdict.reason_codes)
        if self._threshold and score is not None and score >= self._threshold:
            if passed:
                tx.reasons.append("model.threshold")  # known, not flagged again
            elif not self._decline_at_threshold:
                tx.review = True
                tx.reasons.append("model.threshold")
            elif _covered(tx):
                _let_through(tx, "model.threshold")
            else:
                return Decline(RC.SUSPECTED_FRAUD, "model.threshold")
        return None


def _covered(tx: Transaction) -> bool:
    """The cardholder's pass (cards.cardholder_pass) covers this request."""
    card, request = tx.snapshot.card, tx.request
    return card is not None and pass_covers(
        card.cardholder_pass,
        request.merchant_id or "",
        request.cardholder_amount_minor or 0,
        tx.now,
    )


def _let_through(tx: Transaction, reason: str) -> None:
    """Approve a suspicion the pass covers; the journal keeps why it would have been
    declined."""
    if PASS_REASON not in tx.reasons:
        tx.reasons.append(PASS_REASON)
    tx.reasons.append(reason)
