"""The cardholder's pass (cards.cardholder_pass) and what the fraud step lets through with it:
suspected fraud (59) at the confirmed merchant, up to the amount, until the pass ends; never a
rule's other response codes, never another merchant or a larger amount."""

from __future__ import annotations

import dataclasses

import pytest
from test_auth_steps import CARD, NOW, request, tx_for

from authhost.auth.steps.fraud import Fraud
from authhost.cards.cardholder_pass import PASS_REASON, CardholderPass, pass_covers
from authhost.rules.engine import RuleSet
from authhost.rules.rulefile import parse_rules
from authhost.store.codec import card_from_json, card_to_json

SHOP = "MERCHANT0000001"
PASS = CardholderPass(journal_id=7, merchant_id=SHOP, max_amount_minor=15_000, until=NOW + 3600)

COVERS = [
    ("the confirmed payment again", PASS, SHOP, 15_000, NOW, True),
    ("less at the same merchant", PASS, SHOP, 9_000, NOW + 3599, True),
    ("a cent more", PASS, SHOP, 15_001, NOW, False),
    ("another merchant", PASS, "MERCHANT0000002", 15_000, NOW, False),
    ("the pass ended", PASS, SHOP, 15_000, NOW + 3600, False),
    ("any merchant's pass", dataclasses.replace(PASS, merchant_id=""), "ELSEWHERE", 100, NOW, True),
    ("no pass", None, SHOP, 100, NOW, False),
]


@pytest.mark.parametrize(("case", "given", "merchant", "amount", "now", "covered"), COVERS,
                         ids=[c[0] for c in COVERS])  # fmt: skip
def test_what_a_pass_covers(case, given, merchant, amount, now, covered):
    assert pass_covers(given, merchant, amount, now) is covered


def test_a_pass_is_kept_with_the_card():
    card = dataclasses.replace(CARD, cardholder_pass=PASS)
    assert card_from_json(card_to_json(card)) == card
    assert card_from_json(card_to_json(CARD)).cardholder_pass is None


RULES = """
[[rule]]
name = "web-policy"
expression = "amount >= 900.00"
action = "decline"
response_code = "57"
reason = "POLICY"

[[rule]]
name = "large"
expression = "amount >= 100.00"
action = "decline"
reason = "FR-LARGE"

[[rule]]
name = "watch"
expression = "amount >= 50.00"
action = "review"
reason = "FR-WATCH"
"""


class _Rules:
    """The rule set with no named lists, as the server binds it."""

    def __init__(self) -> None:
        self.rule_set = RuleSet(parse_rules(RULES).rules)

    def evaluate(self, ctx, score):
        return self.rule_set.evaluate(ctx, score, {})


FRAUD_CASES = [
    ("no pass: suspected fraud declined", None, 15_000, SHOP, "59", []),
    ("the pass: approved, the rule's reason kept", PASS, 15_000, SHOP, None,
     [PASS_REASON, "FR-LARGE"]),
    ("the pass, a larger amount: declined", PASS, 15_001, SHOP, "59", []),
    ("the pass, another merchant: declined", PASS, 15_000, "MERCHANT0000002", "59", []),
    ("a policy decline (57) is not lifted", dataclasses.replace(PASS, max_amount_minor=10**6),
     95_000, SHOP, "57", []),
    ("under the decline rules: the review stands, pass or not", PASS, 6_000, SHOP, None,
     ["FR-WATCH"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "given", "amount", "merchant", "code", "reasons"), FRAUD_CASES,
                         ids=[c[0] for c in FRAUD_CASES])  # fmt: skip
def test_the_fraud_step_with_a_pass(case, given, amount, merchant, code, reasons):
    tx = tx_for(
        request(amount_minor=amount, merchant_id=merchant),
        dataclasses.replace(CARD, cardholder_pass=given),
    )
    decline = Fraud(rules=_Rules())(tx)
    assert (decline.response_code if decline else None) == code
    assert tx.reasons == reasons
    assert tx.review is (reasons == ["FR-WATCH"])


def test_a_policy_decline_stands_under_a_pass_even_when_a_suspicion_ranks_first():
    """The 59 rule runs first (priority), the 57 policy matches too: the pass lifts only
    suspicions, so the policy declines."""
    first = RULES.replace('name = "large"', 'name = "large"\npriority = 10')

    class Ranked(_Rules):
        def __init__(self) -> None:
            self.rule_set = RuleSet(parse_rules(first).rules)

    wide = dataclasses.replace(PASS, max_amount_minor=10**6)
    tx = tx_for(request(amount_minor=95_000, merchant_id=SHOP),
                dataclasses.replace(CARD, cardholder_pass=wide))  # fmt: skip
    decline = Fraud(rules=Ranked())(tx)
    assert decline is not None and (decline.response_code, decline.reason) == ("57", "POLICY")
    bare = tx_for(request(amount_minor=95_000, merchant_id=SHOP))  # no pass: the first ranked
    assert Fraud(rules=Ranked())(bare).response_code == "59"


class _Scores:
    """A champion model that gives one score (the step's side of a model: its score and its
    explanation), so the threshold's paths can be walked exactly."""

    active = True

    def __init__(self, score: int) -> None:
        self.score = score

    def champion_score(self, ctx) -> int:
        return self.score

    def challenger_score(self, ctx) -> None:
        return None

    def explain(self, ctx, score: int) -> str:
        return ""


THRESHOLD_CASES = [
    ("under the threshold: nothing", "decline", 699, None, None, [], False),
    ("flag: reviewed, approved", "flag", 700, None, None, ["model.threshold"], True),
    ("decline: 59", "decline", 700, None, "59", [], False),
    ("decline under a pass: let through, why kept", "decline", 700, PASS, None,
     [PASS_REASON, "model.threshold"], False),
    ("flag under a pass: reviewed all the same", "flag", 700, PASS, None,
     ["model.threshold"], True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "action", "score", "given", "code", "reasons", "review"),
    THRESHOLD_CASES,
    ids=[c[0] for c in THRESHOLD_CASES],
)
def test_the_model_threshold_flags_declines_or_lets_a_pass_through(
    case, action, score, given, code, reasons, review
):
    tx = tx_for(
        request(amount_minor=1_000, merchant_id=SHOP),
        dataclasses.replace(CARD, cardholder_pass=given),
    )
    decline = Fraud(scorer=_Scores(score), threshold=700, action=action, budget_ms=1_000)(tx)
    assert (decline.response_code if decline else None) == code
    assert (tx.reasons, tx.review, tx.fraud_score) == (reasons, review, score)


def test_a_suspicion_the_pass_lifted_is_not_flagged_again_by_the_model():
    """A rule's 59 lifted by the pass, and the model over its threshold too: approved, the
    journal says both, and it is not queued for review (the cardholder said it was them)."""
    tx = tx_for(
        request(amount_minor=15_000, merchant_id=SHOP),
        dataclasses.replace(CARD, cardholder_pass=PASS),
    )
    decline = Fraud(scorer=_Scores(900), rules=_Rules(), threshold=700, action="flag")(tx)
    assert decline is None
    assert tx.reasons == [PASS_REASON, "FR-LARGE", "model.threshold"]
    assert tx.review is False
