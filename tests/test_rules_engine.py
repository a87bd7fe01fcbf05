"""Rule set semantics: priority order, first enforced decline wins, allow stops later rules,
every match recorded, shadow rules never change the decision, per-rule counters."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.cards.velocity import Velocity
from authhost.models.context import TxContext
from authhost.rules.engine import RuleSet, variable_values
from authhost.rules.rulefile import parse_rules

CTX = TxContext(
    ts=1_764_000_000.0,
    amount_minor=80_000,
    currency="978",
    mcc="7995",
    country="840",
    channel="ecommerce",
    entry_mode="81",
    terminal="T-1",
    merchant="M-42",
    acquirer="123456",
    tx_type="00",
    card_id="card-1",
    bin="400000",
    product="classic",
    home_country="276",
    card_age_days=3.0,
    available=250_000,
    pin_present=False,
    velocity=Velocity(count_1h=4),
)


def rule(name: str, expression: str, action: str, **extra: object) -> str:
    lines = [f'[[rule]]\nname = "{name}"\nexpression = "{expression}"\naction = "{action}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def ruleset(*rules: str, promote_shadow: bool = False) -> RuleSet:
    parsed = parse_rules("\n".join(rules))
    return RuleSet(parsed.rules, version="t", promote_shadow=promote_shadow)


def test_priority_order_first_decline_wins_and_all_matches_recorded() -> None:
    rules = ruleset(
        rule("low", "amount > 1", "decline", response_code="05", priority=90, reason="R-low"),
        rule("high", "amount > 100", "decline", response_code="61", priority=10, reason="R-high"),
        rule("flag", "channel == 'ecommerce'", "review", priority=50, reason="R-flag"),
        rule("pts", "card.count_1h > 3", "score", points=120, priority=60, reason="R-pts"),
        rule("neg", "mcc == 7995", "score", points=-20, priority=70, reason="R-neg"),
        rule("miss", "amount > 100000", "decline", priority=5),
    )
    out = rules.evaluate(CTX, None, {})
    assert out.decline_code == "61"
    assert out.matched == ["high", "flag", "pts", "neg", "low"]
    assert out.reason_codes == ["R-high", "R-flag", "R-pts", "R-neg", "R-low"]  # decider first
    assert out.review is True
    assert out.score_delta == 100
    assert out.shadow_matches == []
    assert out.version == "t"


def test_equal_priorities_keep_file_order() -> None:
    rules = ruleset(
        rule("b", "amount > 1", "decline", response_code="05"),
        rule("a", "amount > 1", "decline", response_code="61"),
    )
    out = rules.evaluate(CTX, None, {})
    assert (out.decline_code, out.matched) == ("05", ["b", "a"])


def test_allow_stops_later_rules_but_not_earlier_ones() -> None:
    rules = ruleset(
        rule("early-review", "amount > 1", "review", priority=1),
        rule("trusted", "merchant in list('allow')", "allow", priority=2, reason="allow.m"),
        rule("later-decline", "amount > 1", "decline", priority=3),
        rule("later-shadow", "amount > 1", "decline", priority=4, mode="shadow"),
    )
    out = rules.evaluate(CTX, None, {"allow": frozenset({"M-42"})})
    assert out.allowed and out.decline_code is None
    assert out.matched == ["early-review", "trusted"]
    assert out.reason_codes == ["rule:early-review", "allow.m"]
    not_allowed = rules.evaluate(CTX, None, {"allow": frozenset()})
    assert not_allowed.decline_code == "59"
    assert not_allowed.matched == ["early-review", "later-decline", "later-shadow"]
    stats = rules.stats()
    assert stats["later-decline"].evaluated == 1  # the allowed transaction skipped it
    assert stats["early-review"].evaluated == 2
    assert stats["trusted"].matched == 1


def test_shadow_rules_are_recorded_apart_and_counted() -> None:
    rules = ruleset(
        rule("s-decline", "amount > 1", "decline", mode="shadow", priority=1),
        rule("s-allow", "amount > 1", "allow", mode="shadow", priority=2),
        rule("enforced", "amount > 100", "review", priority=3),
    )
    out = rules.evaluate(CTX, None, {})
    assert out.decline_code is None and not out.allowed
    assert out.review is True  # a shadow allow does not stop later rules
    assert out.matched == ["s-decline", "s-allow", "enforced"]
    assert out.shadow_matches == ["s-decline", "s-allow"]
    assert out.reason_codes == ["rule:enforced"]
    stats = rules.stats()
    assert (stats["s-decline"].shadow_matches, stats["s-decline"].matched) == (1, 0)
    assert stats["s-decline"].declined == 0
    promoted = ruleset(
        rule("s-decline", "amount > 1", "decline", mode="shadow"), promote_shadow=True
    )
    assert promoted.evaluate(CTX, None, {}).decline_code == "59"


def test_counters() -> None:
    rules = ruleset(
        rule("big", "amount > 500", "decline", priority=1),
        rule("any", "amount > 0", "decline", priority=2),
    )
    for amount in (100, 60_000, 70_000, 200):
        rules.evaluate(dataclasses.replace(CTX, amount_minor=amount), None, {})
    stats = rules.stats()
    assert (stats["big"].evaluated, stats["big"].matched, stats["big"].declined) == (4, 2, 2)
    assert (stats["any"].evaluated, stats["any"].matched, stats["any"].declined) == (4, 4, 2)


# -- shadow rules never change a decision: a property over random rules and contexts ----------

EXPRESSIONS = [
    "amount > {n}",
    "card.count_1h >= {k}",
    "score >= {s}",
    "mcc in (7995, 5967)",
    "channel == 'ecommerce' and amount < {n}",
    "country != card.home_country",
    "merchant in list('block')",
    "missing(score)",
]
ACTIONS = ["decline", "review", "score", "allow"]


@st.composite
def rule_files(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """The same enforced rules, and the same plus shadow rules interleaved at any priority."""
    enforced, shadowed = [], []
    for i in range(draw(st.integers(1, 6))):
        for mode, bucket in (("enforce", enforced), ("shadow", shadowed)):
            if mode == "shadow" and not draw(st.booleans()):
                continue
            template = draw(st.sampled_from(EXPRESSIONS))
            expression = template.format(
                n=draw(st.integers(1, 2000)), k=draw(st.integers(0, 5)), s=draw(st.integers(0, 999))
            )
            action = draw(st.sampled_from(ACTIONS))
            extra: dict[str, object] = {"priority": draw(st.integers(0, 5)), "mode": mode}
            if action == "score":
                extra["points"] = draw(st.integers(1, 100))
            bucket.append(rule(f"{mode}-{i}", expression, action, **extra))
    return enforced, shadowed


@settings(max_examples=60, deadline=None)
@given(files=rule_files(), seed=st.integers(0, 10_000))
def test_shadow_rules_never_change_the_decision(
    files: tuple[list[str], list[str]], seed: int
) -> None:
    enforced, shadowed = files
    without = ruleset(*enforced)
    with_shadow = ruleset(*enforced, *shadowed)
    rng = random.Random(seed)
    for _ in range(20):
        ctx = dataclasses.replace(
            CTX,
            amount_minor=rng.randint(0, 300_000),
            mcc=rng.choice(["7995", "5411"]),
            channel=rng.choice(["ecommerce", "pos"]),
            merchant=rng.choice(["M-42", "M-1"]),
            home_country=rng.choice(["840", "276", ""]),
            velocity=Velocity(count_1h=rng.randint(0, 6)),
        )
        score = rng.choice([None, rng.randint(0, 999)])
        lists = {"block": frozenset({"M-42"})}
        a = without.evaluate(ctx, score, lists)
        b = with_shadow.evaluate(ctx, score, lists)
        decided = ("decline_code", "reason_codes", "review", "score_delta", "allowed")
        assert [getattr(a, f) for f in decided] == [getattr(b, f) for f in decided]
        assert [m for m in b.matched if m not in b.shadow_matches] == a.matched
        assert all(name.startswith("shadow-") for name in b.shadow_matches)


def test_empty_rule_set() -> None:
    out = RuleSet([]).evaluate(CTX, 500, {})
    assert out.decline_code is None and out.matched == [] and not out.review


def test_a_set_reads_acceptor_counters_only_when_an_enabled_rule_does():
    """The store keeps merchant and terminal counters only for a set that reads them."""
    by_id = rule("by-id", "merchant == 'M-1' and terminal == 'T-1'", "decline")
    counting = rule("counting", "merchant.failed_cvv_10m >= 3", "decline")
    at_terminal = rule("at-terminal", "terminal.count_1h > 100", "review", mode="shadow")
    switched_off = rule("off", "merchant.count_1h > 1", "decline") + "enabled = false\n"
    assert not ruleset(by_id).reads_acceptors
    assert not ruleset(by_id, switched_off).reads_acceptors
    assert ruleset(by_id, counting).reads_acceptors
    assert ruleset(at_terminal).reads_acceptors  # shadow rules are evaluated too


def test_amounts_are_in_the_major_units_of_the_cards_currency() -> None:
    """`amount`, `card.available` and the velocity sums divided every currency's minor units
    by 100: 1,500 yen (no minor unit) read as 15.00, so `amount >= 1000` let it through, and
    1.500 dinars of Bahrain (1,000 fils) read as 15.00, so `amount > 10` declined it."""
    rules = ruleset(
        rule("big", "amount >= 1000", "decline", reason="R-big"),
        rule("over", "amount > 10", "review", reason="R-over"),
        rule("rich", "card.available > 2000 and card.amount_24h >= 100", "score", points=5),
    )
    velocity = Velocity(count_1h=4, amount_24h=100_000)
    yen = dataclasses.replace(CTX, amount_minor=1_500, currency="392", available=250_000,
                              velocity=velocity)  # fmt: skip
    assert rules.evaluate(yen, 100, {}).matched == ["big", "over", "rich"]
    dinar = dataclasses.replace(CTX, amount_minor=1_500, currency="048", available=250_000,
                                velocity=velocity)  # fmt: skip
    assert rules.evaluate(dinar, 100, {}).matched == []  # 1.5 BHD, 250 available, 100 in 24 h
    euro = dataclasses.replace(CTX, amount_minor=1_500, velocity=velocity)
    assert rules.evaluate(euro, 100, {}).matched == ["over", "rich"]  # 15.00 as before
    assert variable_values(yen, None, ["amount", "card.available"]) == {
        "amount": 1_500.0,
        "card.available": 250_000.0,
    }
