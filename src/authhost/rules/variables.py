"""The variables a rule can read: one catalogue, each with its type and its TxContext source.

Every name here is derived from ``models.context.TxContext`` (and the ML score passed beside
it), so production, backtests and training read the same values. ``source`` is the Python
expression the compiler places into the generated rule function; it may read only ``ctx``
(the TxContext), ``vel`` (``ctx.velocity``) and ``score``. Amounts are in major units unless
the name ends in ``_minor``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from authhost.auth.currencies import EXPONENTS, per_major  # noqa: F401 - engine, backtest
from authhost.cards.acceptor_velocity import AcceptorVelocity
from authhost.cards.tokens import WALLETS
from authhost.cards.velocity import Velocity

# Major units are the card's currency's own (ISO 4217 exponent: a yen has no cents, a dinar
# of Bahrain has 1,000 fils): the rule function binds ``PER_MAJOR`` once from the context's
# currency when a rule reads an amount (``engine._generate``); two decimals for a code it
# does not know.
PER_MAJOR = "_per_major"


class Kind(StrEnum):
    """The value types of the rule language."""

    NUMBER = "number"
    TEXT = "text"
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class Variable:
    """One readable name: its type, whether it can be missing, and where its value comes from."""

    name: str
    kind: Kind
    source: str
    doc: str
    nullable: bool = False  # may be missing (None); comparisons with a missing value are false
    code_width: int = 0  # text made of digits of this width: number literals are zero-padded
    domain: Domain | None = None  # the values it can take, to refuse tests that never match


@dataclass(frozen=True, slots=True)
class Domain:
    """The values a variable can take when present: a comparison with a literal outside them
    can never match (``hour == 24``, ``channel == 'web'``), which the checker refuses."""

    minimum: float | None = None
    maximum: float | None = None
    whole: bool = False  # numbers: only whole values
    values: frozenset[str] = frozenset()  # text: exactly these ("" included when it can be)
    digits: int = 0  # text: '' or exactly this many digits (a code)
    pattern: str = ""  # text: a full-match regular expression
    describe: str = ""  # what the values are, for the error
    known: frozenset[str] = frozenset()  # text: codes authhost accepts (others are refused
    # before the rules run: an unknown currency is answered 13 in the validate step)


def _enum(*values: str) -> Domain:
    shown = ", ".join(repr(v) for v in values)
    return Domain(values=frozenset(values), describe=f"one of {shown}")


COUNT = Domain(minimum=0, whole=True, describe="a count, 0 or more")
MONEY = Domain(minimum=0, describe="an amount, 0 or more")
MINOR = Domain(minimum=0, whole=True, describe="a whole amount in minor units, 0 or more")
DURATION = Domain(minimum=0, describe="a duration, 0 or more")


def _request_variables() -> list[Variable]:
    n, t, b = Kind.NUMBER, Kind.TEXT, Kind.BOOL
    return [
        Variable(
            "amount",
            n,
            f"ctx.amount_minor / {PER_MAJOR}",
            "amount in major units (e.g. 12.50), in the card's currency (field 6 when converted)",
        ),
        Variable(
            "amount_minor",
            n,
            "ctx.amount_minor",
            "amount in minor units (e.g. 1250), in the card's currency",
        ),
        Variable(
            "currency",
            t,
            "ctx.currency",
            "ISO 4217 numeric currency of amount (the card's), e.g. '978'",
            False,
            3,
        ),
        Variable(
            "transaction_currency",
            t,
            "ctx.transaction_currency",
            "the merchant's currency (field 49), e.g. '840'",
            False,
            3,
        ),
        Variable(
            "foreign_currency",
            b,
            "ctx.transaction_currency != ctx.currency",
            "the merchant charged in another currency than the card's (fields 6/51 converted it)",
        ),
        Variable("mcc", t, "ctx.mcc", "merchant category code, e.g. '5967'", False, 4),
        Variable("country", t, "ctx.country", "acquirer country, ISO 3166 numeric", False, 3),
        Variable("channel", t, "ctx.channel", "pos, atm, ecommerce, contactless or moto"),
        Variable(
            "entry_mode", t, "ctx.entry_mode", "POS entry mode (field 22, 2 digits)", False, 2
        ),
        Variable(
            "tx_type", t, "ctx.tx_type", "processing code type: 00 purchase, 01 cash", False, 2
        ),
        Variable("terminal", t, "ctx.terminal", "terminal id (field 41)"),
        Variable("merchant", t, "ctx.merchant", "merchant id (field 42)"),
        Variable("acquirer", t, "ctx.acquirer", "acquiring institution id (field 32)"),
        Variable(
            "merchant_name",
            t,
            "ctx.merchant_name",
            "card acceptor name and location (field 43), e.g. 'ACME BET LTD  MALTA  MT'; "
            "search it with contains()",
        ),
        Variable("hour", n, "ctx.hour", "hour of day 0-23 (UTC, host clock)"),
        Variable("weekday", n, "ctx.weekday", "day of week, 0 Monday .. 6 Sunday"),
        Variable("pin_present", b, "ctx.pin_present", "the request carries a PIN block"),
        Variable("cash", b, "ctx.tx_type == '01'", "cash withdrawal (processing code 01)"),
        Variable(
            "cross_border",
            b,
            "bool(ctx.country and ctx.home_country and ctx.country != ctx.home_country)",
            "acquirer country differs from the card's home country (both known)",
        ),
        Variable(
            "authentication",
            t,
            "ctx.authentication",
            "e-commerce cardholder authentication (field 48 SE 42): 'authenticated' (3-D "
            "Secure), 'attempted', 'exempt' (an SCA exemption the merchant claims), 'none'; "
            "'' when the request does not say",
        ),
        Variable(
            "stored_credential",
            t,
            "ctx.stored_credential",
            "stored credential indicator (field 48 SE 22 SF 05): 'C101'..'C104' the cardholder "
            "uses a card kept on file, 'M101'..'M104' the merchant charges it alone "
            "(unscheduled, standing order, subscription, instalment), 'M205'..'M208' partial "
            "shipment, delayed charge, no-show, resubmission; '' when the request does not say",
        ),
        Variable(
            "cavv_result",
            t,
            "ctx.cavv_result",
            "the 3-D Secure authentication value (field 48 SE 43) as the host checked it under "
            "the product's CAVV key: '2' passed (authenticated), '3' passed (attempt), '0' not a "
            "CAVV; '' none checked (none sent, or the product checks none). A failed one ('1', "
            "'4') is declined 05 before the rules run",
        ),
        Variable(
            "avs_result",
            t,
            "ctx.avs_result",
            "the billing address a card-not-present merchant asked the issuer to verify (field "
            "48 SE 82, field 120) against the card's: 'Y' street and postcode match, 'A' the "
            "street only, 'Z' the postcode only, 'N' neither, 'U' no address on the card; '' "
            "none asked for. The host never declines on it: a rule may",
        ),
        Variable(
            "cvv2_result",
            t,
            "ctx.cvv2_result",
            "the card-not-present CVV2 (field 48 SE 92, or Visa's 126.10) as the host found it: "
            "'M' matched, 'S' the merchant said the card has none or it is illegible (Visa's "
            "presence indicator 9 or 2: every card authhost issues has one), 'P' sent with a "
            "card-present request (not checked); '' none sent. A wrong one ('N') is declined "
            "N7 before the rules run",
        ),
        Variable(
            "authentication_verified",
            b,
            "ctx.cavv_result in ('2', '3')",
            "the request's 3-D Secure claim is proven: its CAVV passed under the product's key",
        ),
        Variable(
            "wallet",
            t,
            "ctx.wallet",
            "the wallet whose payment token paid (field 48 SE 33, one of the card's tokens): "
            "'apple_pay', 'google_pay', 'samsung_pay', 'merchant' (a merchant's token of a card "
            "on file), 'other'; '' when the card itself paid",
        ),
        Variable(
            "tokenised",
            b,
            "ctx.wallet != ''",
            "paid with one of the card's payment tokens (a wallet or a merchant's token), not "
            "the card's own number",
        ),
        Variable(
            "token_age_hours",
            n,
            "(ctx.token_age_hours if ctx.token_age_hours >= 0 else None)",
            "hours since the payment token that paid was registered (a stolen card number put "
            "in a fraudster's wallet spends within hours); missing when not tokenised",
            True,
        ),
        Variable(
            "merchant_initiated",
            b,
            "ctx.stored_credential[:1] == 'M'",
            "the merchant charges a card it keeps on file without the cardholder (an MIT: "
            "stored_credential starting with M)",
        ),
        Variable("score", n, "score", "ML fraud score 0-999; missing when not scored", True),
    ]


def _card_variables() -> list[Variable]:
    n, t, b = Kind.NUMBER, Kind.TEXT, Kind.BOOL
    return [
        Variable("card.id", t, "ctx.card_id", "card id (empty when the card is unknown)"),
        Variable("card.known", b, "ctx.card_id != ''", "the card exists in the store"),
        Variable("card.bin", t, "ctx.bin", "first six digits of the PAN"),
        Variable("card.product", t, "ctx.product", "product id of the card"),
        Variable(
            "card.home_country",
            t,
            "(ctx.home_country or None)",
            "card's home country (ISO 3166 numeric); missing when unknown",
            True,
            3,
        ),
        Variable(
            "card.travel_notice",
            b,
            "ctx.travel_notice",
            "the cardholder said they travel to this country today: a travel notice of the card "
            "covers the request's country (field 19) on its UTC day",
        ),
        Variable(
            "card.age_days",
            n,
            "(ctx.card_age_days if ctx.card_age_days >= 0 else None)",
            "days since the card was created; missing when unknown",
            True,
        ),
        Variable(
            "card.available",
            n,
            f"ctx.available / {PER_MAJOR}",
            "open-to-buy before this request (major units)",
        ),
        Variable("card.available_minor", n, "ctx.available", "open-to-buy in minor units"),
    ]


_VELOCITY_DOCS = {
    "count": "requests (attempts) in the last {w}",
    "approved_count": "approved requests in the last {w}",
    "amount": "approved amount (major units) in the last {w}",
    "distinct_merchants": "distinct merchants in the last {w}",
    "distinct_countries": "distinct acquirer countries in the last {w}",
    "declined_count": "declined requests in the last {w}",
    "cash_count": "approved cash withdrawals in the last {w}",
    "cash_amount": "approved cash amount (major units) in the last {w}",
    "failed_pin": "wrong PIN attempts in the last {w}",
    "failed_cvv": "failed CVV/CVV2 checks in the last {w}",
    "mean_amount": "mean approved amount (major units) over the last {w}",
    "received_count": "approved credits to the card (refunds 20, deposits 21, transfers 26/28) "
    "in the last {w}",
    "received_amount": "money received by the card (approved credits, major units) in the last {w}",
}
# the velocity counters in money: each also readable in minor units as ``<name>_minor``
_VELOCITY_MONEY = ("amount", "cash_amount", "mean_amount", "received_amount")


_SECONDS_SINCE = {
    "seconds_since_last": "seconds since the card's previous request (credits to it aside); "
    "missing when none in 30 days",
    "seconds_since_received": "seconds since the card last received money (an approved "
    "credit); missing when none in 30 days",
}


def _velocity_variables() -> list[Variable]:
    found = []
    for f in dataclasses.fields(Velocity):
        name = f.name
        if name in _SECONDS_SINCE:
            found.append(
                Variable(f"card.{name}", Kind.NUMBER, f"vel.{name}", _SECONDS_SINCE[name], True)
            )
            continue
        stem, _, window = name.rpartition("_")
        doc = _VELOCITY_DOCS.get(stem, "{w}").format(w=window)
        in_money = stem in _VELOCITY_MONEY
        source = f"vel.{name} / {PER_MAJOR}" if in_money else f"vel.{name}"
        found.append(Variable(f"card.{name}", Kind.NUMBER, source, doc))
        if in_money:
            found.append(
                Variable(
                    f"card.{name}_minor",
                    Kind.NUMBER,
                    f"vel.{name}",
                    doc.replace("major units", "minor units"),
                )
            )
    return found


_ACCEPTOR_DOCS = {
    "count": "requests of any card at this {a} in the last {w}",
    "distinct_cards": "distinct cards (known or not) at this {a} in the last {w}",
    "declined_count": "declined requests at this {a} in the last {w}",
    "failed_cvv": "failed CVV/CVV2 checks at this {a} in the last {w}",
    "unknown_card_count": "requests with a card number the issuer does not know at this {a} "
    "in the last {w}",
}
# the acceptors with counters: the rule language's prefix, the TxContext field, the doc's name
ACCEPTORS = {
    "merchant": ("merchant_velocity", "merchant (field 42)"),
    "terminal": ("terminal_velocity", "terminal (field 41 at this merchant)"),
}


def _acceptor_variables() -> list[Variable]:
    found = []
    for prefix, (attribute, described) in ACCEPTORS.items():
        for f in dataclasses.fields(AcceptorVelocity):
            stem, _, window = f.name.rpartition("_")
            doc = _ACCEPTOR_DOCS[stem].format(a=described, w=window)
            found.append(
                Variable(f"{prefix}.{f.name}", Kind.NUMBER, f"ctx.{attribute}.{f.name}", doc)
            )
    return found


_CURRENCY = Domain(
    digits=3,
    known=frozenset(EXPONENTS),
    describe="an ISO 4217 numeric currency authhost knows, e.g. '978'",
)
_DOMAINS: dict[str, Domain] = {
    "amount": MONEY,
    "amount_minor": MINOR,
    "currency": _CURRENCY,
    "transaction_currency": _CURRENCY,
    "channel": _enum("pos", "atm", "ecommerce", "contactless", "moto"),
    "hour": Domain(0, 23, True, describe="an hour of the day, 0 to 23"),
    "weekday": Domain(0, 6, True, describe="a day of the week, 0 (Monday) to 6 (Sunday)"),
    "authentication": _enum("authenticated", "attempted", "exempt", "none", ""),
    "stored_credential": Domain(
        pattern=r"(?:[CM]\d{3})?", describe="C or M and three digits (e.g. 'M103'), or ''"
    ),
    # '1' and '4' (failed) are declined 05 before the rules run: a rule never sees them
    "cavv_result": Domain(
        values=frozenset({"2", "3", "0", ""}),
        describe="one of '2', '3', '0', '' (a failed CAVV, '1' or '4', is declined before "
        "the rules run)",
    ),
    "avs_result": _enum("Y", "A", "Z", "N", "U", ""),
    # 'N' (no match) is declined N7 before the rules run: a rule never sees it
    "cvv2_result": Domain(
        values=frozenset({"M", "S", "P", ""}),
        describe="one of 'M', 'S', 'P', '' (a wrong CVV2, 'N', is declined before the rules run)",
    ),
    "wallet": _enum(*WALLETS, ""),
    "token_age_hours": DURATION,
    "score": Domain(0, 999, True, describe="a score from 0 to 999"),
    "card.bin": Domain(digits=6, describe="the first six digits of the PAN"),
    "card.age_days": DURATION,
}


def _with_domain(var: Variable) -> Variable:
    """The variable with the values it can take: its own, a code's digits, or by its kind of
    counter (velocity and acceptor counters are counts, sums or durations)."""
    domain = _DOMAINS.get(var.name)
    if domain is None and var.code_width:
        width = var.code_width
        domain = Domain(digits=width, describe=f"a {width}-digit code (or '' when not sent)")
    # (card.available may be below zero: a credit card over its limit)
    if domain is None and var.kind == Kind.NUMBER and var.name.partition(".")[0] != var.name:
        field_name = var.name.partition(".")[2]
        if field_name.startswith("available"):
            domain = None
        elif field_name.startswith("seconds_since"):
            domain = DURATION
        elif field_name.endswith("_minor"):
            domain = Domain(minimum=0, describe="an amount in minor units, 0 or more")
        elif field_name.rpartition("_")[0] in _VELOCITY_MONEY:
            domain = MONEY
        elif (
            var.name.partition(".")[0] in ACCEPTORS
            or "count" in field_name
            or (field_name.rpartition("_")[0] in _VELOCITY_DOCS)
        ):
            domain = COUNT
    return dataclasses.replace(var, domain=domain) if domain else var


VARIABLES: dict[str, Variable] = {
    v.name: _with_domain(v)
    for v in (
        *_request_variables(),
        *_card_variables(),
        *_velocity_variables(),
        *_acceptor_variables(),
    )
}


def local_name(variable: str) -> str:
    """The identifier of a variable in generated code (``card.count_1h`` -> ``v_card_count_1h``)."""
    return "v_" + variable.replace(".", "_")
