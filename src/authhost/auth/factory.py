"""Builds the pipeline from config: step names map to step objects, in the configured order."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from authhost.auth.pipeline import Pipeline, Step
from authhost.auth.steps.card_status import card_status
from authhost.auth.steps.card_verification import CardVerification
from authhost.auth.steps.controls import controls
from authhost.auth.steps.fraud import Fraud, ModelScorer, RuleEvaluator
from authhost.auth.steps.funds import Funds, post_advice
from authhost.auth.steps.pin import PinVerification
from authhost.auth.steps.validate import validate
from authhost.config import AuthConfig, ModelsConfig


class UnknownStep(ValueError):
    pass


def build_pipeline(
    auth: AuthConfig,
    security,
    models: ModelsConfig | None = None,
    scorer: ModelScorer | None = None,
    rules: RuleEvaluator | None = None,
) -> Pipeline:
    models = models or ModelsConfig()
    factories: dict[str, Callable[[], Step]] = {
        "validate": lambda: validate,
        "card": lambda: card_status,
        "card_verification": lambda: CardVerification(security),
        "pin": lambda: PinVerification(security, auth.pin_try_limit),
        "controls": lambda: controls,
        "fraud": lambda: Fraud(scorer, rules, models.budget_ms, models.threshold, models.action),
        "funds": lambda: Funds(frozenset(auth.post_processing_codes), auth.hold_lives),
    }
    steps = []
    for name in auth.steps:
        if name not in factories:
            known = ", ".join(factories)
            raise UnknownStep(f"auth.steps: unknown step {name!r} (known: {known})")
        steps.append((name, factories[name]()))
    return Pipeline(steps)


def build_advice_pipeline(auth: AuthConfig | None = None) -> Pipeline:
    """Advices post what the network already approved; a stand-in pre-authorisation (0120)
    holds for as long as the merchant's category allows, as an 0100 would."""
    if auth is None:
        return Pipeline([("advice", post_advice)])
    return Pipeline([("advice", partial(post_advice, hold_lives=auth.hold_lives))])
