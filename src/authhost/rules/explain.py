"""Why the rules did what they did to one transaction: each rule, whether it matched, and the
values of the variables it reads.

An analyst asking "why was this declined?" or "why did my rule not fire?" gets, for the
transaction's context, every enabled rule evaluated on its own (so a rule after an ``allow``
is shown too), the outcome of the whole set in its priority order, and each variable a rule
reads with the value it had. Missing values show as None: a comparison with one is false.
A temporary rule (``active_from``/``active_until``) is judged at the transaction's time: one
whose test holds but whose window did not cover it shows ``outside_window``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authhost.models.context import TxContext
from authhost.rules.engine import RuleSet, variable_values


def explain_rules(
    rule_set: RuleSet,
    ctx: TxContext,
    score: int | None,
    lists: Mapping[str, frozenset[str]],
) -> dict[str, Any]:
    """The set's outcome on ``ctx`` and each enabled rule's verdict with its variables."""
    outcome = RuleSet(rule_set.rules, rule_set.version).evaluate(ctx, score, lists)
    values = variable_values(
        ctx, score, sorted(set().union(*(r.variables for r in rule_set.rules)))
    )
    rules = []
    for rule in rule_set.rules:
        alone = RuleSet([rule], rule_set.version, ignore_windows=True).evaluate(ctx, score, lists)
        in_window = rule.active_at(ctx.ts)
        verdict = {
            "name": rule.name,
            "action": rule.action.value,
            "mode": rule.mode.value,
            "priority": rule.priority,
            "matched": bool(alone.matched) and in_window,
            "error": bool(alone.errors) and in_window,
            "expression": rule.expression,
            "variables": {name: values.get(name) for name in sorted(rule.variables)},
            "lists": sorted(rule.lists),
        }
        if rule.windowed:
            verdict["window"] = rule.window_text()
            verdict["outside_window"] = not in_window
        rules.append(verdict)
    return {
        "rules_version": rule_set.version,
        "outcome": {
            "matched": outcome.matched,
            "decline_code": outcome.decline_code,
            "review": outcome.review,
            "score_delta": outcome.score_delta,
            "allowed": outcome.allowed,
            "reason_codes": outcome.reason_codes,
        },
        "rules": rules,
    }
