"""The rule language: every operator, membership, named lists, missing values, precedence, and
the constructs it refuses. Each case compiles a one-rule set and evaluates it on a context."""

from __future__ import annotations

import dataclasses

import pytest

from authhost.cards.acceptor_velocity import AcceptorVelocity
from authhost.cards.velocity import Velocity
from authhost.models.context import TxContext
from authhost.rules.engine import RuleSet
from authhost.rules.language import ExpressionError, compile_expression
from authhost.rules.rule import Action, Rule

BASE = TxContext(
    ts=1_764_000_000.0,  # 2025-11-24 16:00:00 UTC, a Monday
    amount_minor=60_050,
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
    card_age_days=12.5,
    available=250_000,
    pin_present=False,
    velocity=Velocity(
        count_1h=3,
        count_24h=7,
        amount_24h=123_400,
        distinct_countries_24h=2,
        failed_pin_24h=1,
        seconds_since_last=45.0,
        mean_amount_30d=5_000.0,
    ),
)
LISTS = {"merchant_block": frozenset({"M-42", "M-43"}), "country_block": frozenset({"408"})}


def matches(expression: str, ctx: TxContext = BASE, score: int | None = 750) -> bool:
    compiled = compile_expression(expression)
    rule = Rule(
        name="r",
        expression=expression,
        action=Action.REVIEW,
        reason="r",
        code=compiled.source,
        variables=frozenset(compiled.variables),
        lists=frozenset(compiled.lists),
    )
    return RuleSet([rule]).evaluate(ctx, score, LISTS).review


def with_(**changes: object) -> TxContext:
    return dataclasses.replace(BASE, **changes)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("amount == 600.50", True),
        ("amount_minor == 60050", True),
        ("amount != 600.50", False),
        ("amount > 600", True),
        ("amount > 600.50", False),
        ("amount >= 600.50", True),
        ("amount < 600.51", True),
        ("amount <= 600.49", False),
        ("100 < amount < 1000", True),
        ("100 < amount < 500", False),
        ("amount + 100 > 700", True),
        ("amount - 600 < 1", True),
        ("amount * 2 == 1201", True),
        ("amount / 2 > 300", True),
        ("amount_minor // 100 == 600", True),
        ("amount_minor % 100 == 50", True),
        ("-amount < 0", True),
        ("abs(-amount) == amount", True),
        ("min(amount, 10) == 10", True),
        ("max(amount, 10, 20) == 600.50", True),
        ("card.amount_24h == 1234", True),
        ("card.amount_24h_minor == 123400", True),
        ("card.mean_amount_30d == 50", True),
        ("amount > card.mean_amount_30d * 10", True),
        ("card.available == 2500 and card.available_minor == 250000", True),
        ("channel == 'ecommerce'", True),
        ('channel == "pos"', False),
        ("merchant != 'M-1'", True),
        ("terminal < 'T-2'", True),
        ("pin_present == false", True),
        ("pin_present", False),
        ("not pin_present", True),
        ("cash", False),
        ("cross_border", True),
        ("card.known", True),
        ("hour == 16 and weekday == 0", True),
        ("tx_type == 0 and tx_type == '00'", True),
        ("card.count_1h >= 3 and card.count_24h == 7", True),
        ("card.failed_pin_24h == 1 and card.failed_cvv_24h == 0", True),
        ("card.distinct_countries_24h == 2", True),
        ("card.seconds_since_last < 60", True),
        ("card.age_days > 12 and card.age_days < 13", True),
        ("card.bin == '400000' and card.product == 'classic'", True),
        ("card.id == 'card-1'", True),
    ],
)
def test_operators_and_variables(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("mcc in (7995, 5967)", True),  # number literals become 4-digit codes
        ("mcc in ('7995', '5967')", True),
        ("mcc not in (7995, 5967)", False),
        ("mcc in (5411,)", False),
        ("mcc >= 7000 and mcc < 8000", True),  # ranges on fixed-width codes
        ("country == 840", True),
        ("currency in (978, 840)", True),
        ("entry_mode == 81", True),
        ("channel in ('ecommerce', 'moto')", True),
        ("channel not in ['pos', 'atm']", True),
        ("amount in (600.5, 1)", True),
        ('merchant in list("merchant_block")', True),
        ('merchant not in list("merchant_block")', False),
        ('country in list("country_block")', False),
        ('merchant in list("never_defined")', False),  # an unknown list is empty
        ('merchant not in list("never_defined")', True),
        ('starts_with(card.bin, "4000")', True),
        ('starts_with(card.bin, ("5413", "4761"))', False),
        ("starts_with(merchant, 'M-')", True),
    ],
)
def test_membership_lists_and_prefixes(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_mcc_with_leading_zero_is_padded() -> None:
    assert matches("mcc == 742", with_(mcc="0742"))
    assert matches("mcc in (742, 5411)", with_(mcc="0742"))


def test_a_padded_number_is_a_code_for_the_rest_of_a_chain() -> None:
    """`mcc <= 3999 < amount` was accepted and raised at run time (text against a number);
    `card.home_country == 826 == country` was refused though both sides are codes."""
    with pytest.raises(ExpressionError, match="cannot compare text with a number"):
        compile_expression("mcc <= 3999 < amount")
    assert matches("card.home_country == 826 == country", with_(home_country="826",
                                                                   country="826"))  # fmt: skip
    assert not matches("card.home_country == 826 == country", with_(home_country="826",
                                                                       country="250"))  # fmt: skip


@pytest.mark.parametrize(
    ("expression", "score", "expected"),
    [
        ("score >= 700", 750, True),
        ("score >= 700", None, False),
        ("score < 700", None, False),  # every comparison with a missing value is false
        ("score != 5", None, False),
        ("score == 5", None, False),
        ("score in (1, 2)", None, False),
        ("score not in (1, 2)", None, False),
        ("score + 100 > 0", None, False),
        ("min(score, 999) >= 0", None, False),
        ("not score >= 700", None, True),  # 'not' inverts the false comparison
        ("missing(score)", None, True),
        ("missing(score)", 10, False),
        ("present(score)", 10, True),
        ("present(score) and score > 5 or amount > 1", None, True),
        ("missing(score) == true", None, True),
        ("score > 900 or amount > 600", None, True),
    ],
)
def test_missing_score(expression: str, score: int | None, expected: bool) -> None:
    assert matches(expression, score=score) is expected


@pytest.mark.parametrize(
    ("expression", "ctx", "expected"),
    [
        ("country != card.home_country", with_(home_country=""), False),
        ("country == card.home_country", with_(home_country=""), False),
        ("missing(card.home_country)", with_(home_country=""), True),
        ("country != card.home_country", BASE, True),
        ("card.age_days < 30", with_(card_age_days=-1.0), False),
        ("missing(card.age_days)", with_(card_age_days=-1.0), True),
        ("card.seconds_since_last < 60", with_(velocity=Velocity()), False),
        ("card.seconds_since_last >= 60", with_(velocity=Velocity()), False),
        ("missing(card.seconds_since_last)", with_(velocity=Velocity()), True),
        ("cross_border", with_(home_country=""), False),
        ("missing(card.seconds_since_received)", BASE, True),
        ("card.seconds_since_received < 4000", BASE, False),
        (
            "card.seconds_since_received < 4000",
            with_(
                velocity=Velocity(
                    received_count_24h=1, received_amount_24h=50_000, seconds_since_received=3_600.0
                )
            ),
            True,
        ),  # fmt: skip
    ],
)
def test_missing_card_values(expression: str, ctx: TxContext, expected: bool) -> None:
    assert matches(expression, ctx) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("true or false and false", True),  # and binds tighter than or
        ("(true or false) and false", False),
        ("not false and false", False),  # not binds tighter than and
        ("not (false and false)", True),
        ("amount > 100 and not channel == 'pos'", True),  # comparison binds tighter than not
        ("amount > 1000 or amount > 100 and channel == 'ecommerce'", True),
        ("(amount > 1000 or amount > 100) and channel == 'pos'", False),
        ("amount - 100 * 2 == 400.5", True),  # * before -
        ("(amount - 100) * 2 == 1001", True),
        ("True and not False", True),
    ],
)
def test_precedence(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_expression_may_span_lines() -> None:
    assert matches("amount > 500\n  and mcc in (7995, 5967)\n  and card.count_1h >= 3\n")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("amount", "must be true or false"),
        ("amont > 5", "did you mean 'amount'"),
        ("card.cout_1h > 1", "unknown variable 'card.cout_1h'"),
        ("card > 1", "'card' needs an attribute"),
        ("merchant == 5", "quote the value"),
        ("mcc == 12345", "12345 can never be a 4-digit code"),  # wider: quoting it is no help
        ("amount == 'x'", "cannot compare text with a number"),  # quoted already
        ("channel > 1.5", "quote the value"),
        ("amount and true", "'and' needs true/false"),
        ("not amount", "'not' needs true/false"),
        ("-channel == 1", "needs a number"),
        ("channel + 'x' == 'y'", "arithmetic needs numbers"),
        ("pin_present < true", "cannot be ordered"),
        ("amount.real > 1", "attribute access is allowed only as card.<name>"),
        ("card.count_1h.__class__ == 1", "attribute access"),
        ("merchant.distinct_card_10m > 1", "did you mean 'merchant.distinct_cards_10m'"),
        ("acquirer.count_10m > 1", "only as card.<name>, merchant.<name> or terminal.<name>"),
        ("__import__('os') == 1", "not allowed"),
        ("open('x') == 1", "not allowed"),
        ("len(merchant) > 1", "not allowed"),
        ("merchant[0] == 'M'", "indexing"),
        ("(lambda: 1)() == 1", "only the functions"),
        ("[x for x in (1,)] == 1", "comprehension"),
        ("f'{amount}' == 'x'", "f-string"),
        ("amount if true else 1", "not allowed"),
        ("amount is 1", "'is'"),
        ("amount ** 2 > 1", "only + - * / // %"),
        ("amount & 1 == 1", "only + - * / // %"),
        ("mcc in ()", "empty"),
        ("mcc in (amount, 1)", "literals"),
        ("amount in list('x')", "only text values"),
        ("merchant in list(channel)", "quoted literal"),
        ("merchant in list('bad name!')", "bad list name"),
        ("list('x') == 1", "after in / not in"),
        ("missing(amount)", "never missing"),
        ("missing(1)", "takes one variable"),
        ("abs(1, 2) == 1", "one number"),
        ("max(1) == 1", "two or more"),
        ("max(amount, key=1) == 1", "keyword"),
        ("starts_with(amount, '1')", "needs text"),
        ("starts_with(merchant, 1)", "quoted text"),
        ("(1, 2) == 1", "can only follow in"),
        ("amount > ", "syntax error"),
        ("amount = 5", "syntax error"),
        ("", "empty"),
        ("x" * 5000, "longer than"),
    ],
)
def test_refused_expressions(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(expression)
    assert message in str(caught.value)


def test_error_position_points_at_the_offending_name() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("amount > 5 and\n   amont < 3")
    assert (caught.value.line, caught.value.column) == (2, 4)
    with pytest.raises(ExpressionError) as caught:
        compile_expression("amount > 5 and amont < 3")
    assert (caught.value.line, caught.value.column) == (1, 16)


def test_generated_code_runs_without_builtins() -> None:
    """Even a rule that got past the checker could not reach builtins: the namespace is empty."""
    rules = RuleSet([])
    namespace = rules._run.__globals__  # noqa: SLF001 - inspecting the sandbox on purpose
    assert namespace["__builtins__"] == {}
    assert set(namespace) <= {
        "__builtins__",
        "EMPTY_LIST",
        "abs",
        "min",
        "max",
        "bool",
        "Exception",
        "_contains",  # contains(): a function of ours, called with a text and texts only
        "_minor_per_major",  # ours: the card's currency's minor units in a major unit
        "run",
    }


def test_division_by_zero_is_no_match_and_an_error(caplog: pytest.LogCaptureFixture) -> None:
    compiled = compile_expression("amount / card.count_30d > 1")
    rule = Rule(
        name="div",
        expression="",
        action=Action.DECLINE,
        reason="div",
        response_code="59",
        code=compiled.source,
        variables=frozenset(compiled.variables),
    )
    rules = RuleSet([rule])
    outcome = rules.evaluate(BASE, None, {})
    assert outcome.decline_code is None
    assert outcome.errors == ["div"]
    rules.evaluate(BASE, None, {})
    assert rules.stats()["div"].errors == 2
    assert caplog.text.count("treated as no match") == 1  # logged once, counted every time


def test_merchant_and_terminal_counters_sit_beside_their_ids():
    """``merchant`` is field 42 and ``merchant.<counter>`` its counters; one rule reads both."""
    at_shop = dataclasses.replace(
        BASE,
        merchant_velocity=AcceptorVelocity(distinct_cards_10m=9, failed_cvv_10m=4),
        terminal_velocity=AcceptorVelocity(unknown_card_count_1h=2),
    )
    rule = "merchant == 'M-42' and merchant.distinct_cards_10m >= 9 and merchant.failed_cvv_10m > 3"
    assert matches(rule, at_shop)
    assert not matches(rule, BASE)
    assert matches("terminal.unknown_card_count_1h == 2 and terminal == 'T-1'", at_shop)
    assert not matches("terminal.unknown_card_count_1h == 2", BASE)


def test_contains_searches_a_text_for_any_part_ignoring_case():
    """contains(merchant_name, ...) is how a rule finds gambling or crypto in field 43."""
    betting = dataclasses.replace(BASE, merchant_name="Acme Bet Ltd          VALLETTA     MT")
    assert matches("contains(merchant_name, 'BET')", betting)
    assert matches("contains(merchant_name, ('casino', 'bet')) and amount > 100", betting)
    assert not matches("contains(merchant_name, ('CASINO', 'CRYPTO'))", betting)
    assert not matches("contains(merchant_name, 'BET')", BASE)  # no field 43: an empty text
    assert matches("not contains(merchant_name, 'BET')", BASE)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("contains(amount, 'x')", "contains() needs text"),
        ("contains(merchant_name, '')", "the part must be a quoted text"),
        ("contains(merchant_name, mcc)", "the part must be a quoted text"),
        ("contains(merchant_name)", "contains() takes a text and a part"),
        ("_contains(merchant_name, 'x')", "not allowed"),
    ],
)
def test_contains_refuses_what_it_cannot_search(expression, message):
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_expression(expression)


@pytest.mark.parametrize(
    ("indicator", "initiated", "subscription"),
    [("M103", True, True), ("M101", True, False), ("C103", False, False), ("", False, False)],
)
def test_rules_tell_a_merchant_initiated_charge_from_the_cardholder(
    indicator: str, initiated: bool, subscription: bool
) -> None:
    ctx = with_(stored_credential=indicator)
    assert matches("merchant_initiated", ctx) is initiated
    assert matches("stored_credential in ('M102', 'M103')", ctx) is subscription
    assert matches("not merchant_initiated and amount > 500", ctx) is not initiated


def test_money_received_is_read_in_major_and_minor_units() -> None:
    ctx = with_(velocity=Velocity(received_count_7d=2, received_amount_7d=80_000))
    assert matches("card.received_amount_7d == 800 and card.received_amount_7d_minor == 80000", ctx)
    assert matches("amount >= card.received_amount_7d * 0.5", ctx)  # 600.50 of 800.00
    assert not matches("card.received_count_24h > 0", ctx)


# -- tests that can never match: refused with the reason, not loaded to match nothing --------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("channel == 'web'", "channel == 'web' can never be true: channel is one of 'pos'"),
        ("channel != 'web'", "channel != 'web' is always true"),
        ("channel in ('pos', 'online')", "channel is never 'online' (in its 'in' list)"),
        ("country == '12'", "country is a 3-digit code"),
        ("card.home_country == '2760'", "card.home_country is a 3-digit code"),
        ("mcc not in ('5411', '541')", "mcc is never '541'"),
        ("mcc >= '50'", "compare whole codes"),
        ("entry_mode == '1'", "entry_mode is a 2-digit code"),
        ("tx_type == '001'", "tx_type is a 2-digit code"),
        ("currency == 'EUR'", "currency == 'EUR' can never be true"),
        ("currency in (978, 999)", "'999' is not an ISO 4217 numeric currency authhost knows"),
        ("transaction_currency == '000'", "not an ISO 4217 numeric currency"),
        ("card.bin == '4000'", "card.bin is the first six digits of the PAN"),
        ("cavv_result == '1'", "is declined before the rules run"),
        ("stored_credential == 'X101'", "C or M and three digits"),
        ("authentication == 'yes'", "authentication == 'yes' can never be true"),
        ("avs_result == 'X'", "avs_result == 'X' can never be true"),
        ("wallet == 'paypal'", "wallet == 'paypal' can never be true"),
        ("hour == 24", "hour == 24 can never be true: hour is an hour of the day, 0 to 23"),
        ("24 == hour", "hour == 24 can never be true"),
        ("hour > 23", "hour > 23 can never be true"),
        ("weekday == 2.5", "weekday == 2.5 can never be true"),
        ("score >= 1000", "score >= 1000 can never be true"),
        ("missing(score) or score > 999", "score > 999 can never be true"),
        ("amount < 0", "amount < 0 can never be true: amount is an amount, 0 or more"),
        ("-1 > amount", "amount < -1 can never be true"),
        ("amount_minor == 10.5", "amount_minor == 10.5 can never be true"),
        ("card.count_1h < 0", "card.count_1h < 0 can never be true: card.count_1h is a count"),
        ("merchant.distinct_cards_10m == -1", "is a count"),
        ("card.seconds_since_last < 0", "is a duration"),
        ("starts_with(mcc, '59671')", "starts_with(mcc, '59671') can never be true"),
        ("starts_with(card.bin, '40000000')", "first six digits"),
        ("starts_with(channel, 'web')", "channel is one of"),
        ("amount / 0 > 1", "division by zero"),
        ("amount // 0.0 > 1", "division by zero"),
        ("amount % -0 > 1", "division by zero"),
        ("card.amount_24h / (0) > 1", "division by zero"),
        ("amount > 1e999", "reads as infinity"),  # loaded, and matched nothing
        ("card.count_1h < -1e400", "reads as infinity"),
    ],
)
def test_tests_that_can_never_match_are_refused(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(expression)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("mcc >= '7000' and mcc < '8000'", True),
        ("5411 == mcc or mcc == 7995", True),
        ("country == '' or country == '840'", True),
        ("currency in (978, 840)", True),
        ("0 <= hour <= 23", True),
        ("score > 998 or score <= 999", True),
        ("card.available_minor > -500", True),  # over the limit: below zero
        ("starts_with(mcc, ('79', '')) and starts_with(card.bin, '4000')", True),
        ("starts_with(channel, 'e')", True),
        ("stored_credential == '' and authentication == '' and wallet == ''", True),
        ("cavv_result in ('2', '3', '0', '')", True),
        ("card.mean_amount_30d_minor > 10.5", True),
        ("amount / 2 > 100 and amount / card.count_30d > 0", False),  # 0 counted: an error
        ("amount >= 0 and card.count_1h >= 0", True),
    ],
)
def test_tests_that_can_match_stay_allowed(expression: str, expected: bool) -> None:
    assert matches(expression) is expected
