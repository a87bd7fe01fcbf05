"""Model features: numbers computed from a TxContext only, the one definition for training and
serving.

Training replays the journal export into contexts (``context.replay_contexts``) and the server
builds the context from the request and its snapshot (``context.context_from_request``); both
then call ``feature_values`` here, so a model can never see at training time something the
server would not know at authorisation time. Every value is finite (no NaN), which lets the
scorer take its fast path.

Counts and amounts are log-scaled (``log1p``): trees do not care, and the logistic model sees
a roughly linear signal. The terminal risk comes from the artifact's lookup table
(``TerminalRisk``), computed from labelled history with a delay.

Five feature sets exist, each extending the one before by a block of features, and each
artifact names the one it was trained on (``feature_blocks``: how many blocks it reads). The
first reads the card's own history. The second adds what every card did
at this merchant and terminal in the last 10 minutes and hour (``cards.acceptor_velocity``):
card testing shows there long before any one card looks odd. It costs the server the
merchant and terminal counters on every request, so it is chosen at training time
(``features`` in the training config, ``authhost train --features``), not imposed on every
model. The third adds the money the card received and how much of it a cash-out takes: a
money mule's card is paid and emptied within hours. The fourth adds the phone wallet token that
paid and how old it is: a stolen number put in a fraudster's wallet spends within hours. The
fifth adds the web shop's address verification: a card number bought in bulk comes without
the cardholder's billing address.

Amounts (the request's, the card's sums and means, the money received) are read in major units
of the card's currency, by its ISO 4217 exponent (``CURRENCY_UNITS``): a yen has no cents and
a dinar of Bahrain has 1,000 fils, so 10,000 yen and 100.00 euros are both about a hundred
units' worth of log. Artifacts trained before 2026-11-29 read every currency as having two
decimals (``TWO_DECIMALS``); the artifact says which (``artifact.AMOUNT_UNITS``), and the
server serves each with its own, so an older model scores as it was trained. The card's
counters hold only amounts of its account's currency (an approval in another currency needs
the network's conversion, fields 6 and 51), so one exponent scales them all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np

from authhost.auth.currencies import MINOR_PER_MAJOR
from authhost.cards.acceptor_velocity import AcceptorVelocity
from authhost.models.context import CASH_TYPES, TxContext
from authhost.models.geography import distance_km
from authhost.models.merchant_groups import mcc_risk_group
from authhost.models.terminal_risk import TerminalRisk

FEATURE_SET = "authhost-features-1"  # bump when any definition below changes
ACCEPTOR_FEATURE_SET = "authhost-features-2"  # FEATURE_SET + ACCEPTOR_FEATURE_NAMES
RECEIVED_FEATURE_SET = "authhost-features-3"  # ACCEPTOR_FEATURE_SET + RECEIVED_FEATURE_NAMES
WALLET_FEATURE_SET = "authhost-features-4"  # RECEIVED_FEATURE_SET + WALLET_FEATURE_NAMES
ADDRESS_FEATURE_SET = "authhost-features-5"  # WALLET_FEATURE_SET + ADDRESS_FEATURE_NAMES

CHANNELS = ("pos", "atm", "ecommerce", "contactless", "moto")
# POS entry mode (field 22, positions 1-2) grouped by how the card data was read
ENTRY_GROUPS: dict[str, str] = {
    "01": "manual",
    "02": "magstripe",
    "90": "magstripe",
    "80": "magstripe",  # chip fallback to magstripe
    "05": "chip",
    "95": "chip",
    "07": "contactless",
    "91": "contactless",
    "10": "credential_on_file",
    "81": "ecommerce",
}
ENTRY_MODES = ("manual", "magstripe", "chip", "contactless", "credential_on_file", "ecommerce")

SINCE_CAP_S = 30 * 86400.0  # "time since last" is capped at the 30-day history
NO_TERMINAL_RISK = TerminalRisk()

FEATURE_NAMES: tuple[str, ...] = (
    "amount_log",
    "amount_ratio_mean_7d_log",
    "amount_ratio_mean_30d_log",
    "count_1h_log",
    "count_24h_log",
    "count_7d_log",
    "count_30d_log",
    "amount_1h_log",
    "amount_24h_log",
    "amount_7d_log",
    "amount_30d_log",
    "declined_24h_log",
    "distinct_merchants_24h",
    "distinct_countries_24h",
    "distinct_countries_7d",
    "cash_count_24h",
    "since_last_log",
    "first_in_30d",
    "hour",
    "hour_sin",
    "hour_cos",
    "night",
    "weekend",
    *(f"channel_{c}" for c in CHANNELS),
    "channel_other",
    *(f"entry_{e}" for e in ENTRY_MODES),
    "entry_other",
    "mcc_risk_group",
    "cash",
    "cross_border",
    "country_known",
    "distance_home_1000km",
    "terminal_risk",
    "failed_pin_24h",
    "failed_cvv_24h",
    "pin_present",
    "card_age_days_log",
    "amount_over_available",
)
N_FEATURES = len(FEATURE_NAMES)
# the value a feature takes when its input is not known, which the drift report counts as
# missing (a bin of its own, ``models.drift``): the card's age without an issue date
MISSING_VALUES: dict[str, float] = {"card_age_days_log": -1.0}
TERMINAL_RISK_INDEX = FEATURE_NAMES.index("terminal_risk")  # the same in every feature set
# Every card's requests at the merchant (field 42) and the terminal (41 at that merchant)
# before this one, committed when its snapshot was read.
ACCEPTOR_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{where}_{name}"
    for where in ("merchant", "terminal")
    for name in (
        "count_10m_log",
        "distinct_cards_10m_log",
        "declined_share_1h",
        "failed_cvv_1h_log",
        "unknown_cards_1h_log",
    )
)
# The money the card received (approved credits: transfers, deposits, refunds) and what a
# cash-out takes of it: a mule's card is paid and emptied within hours (``cards.velocity``).
RECEIVED_FEATURE_NAMES: tuple[str, ...] = (
    "received_24h_log",
    "received_count_24h",
    "received_7d_log",
    "since_received_log",
    "none_received_30d",
    "cash_out_of_received_24h",
)
# The phone wallet token that paid (``cards.tokens``): none, an old one (the cardholder's own
# phone), or one registered hours ago (a stolen number in a fraudster's wallet)
WALLET_FEATURE_NAMES: tuple[str, ...] = ("tokenised", "token_age_log", "token_under_24h")
TOKEN_AGE_CAP_H = 24 * 365.0
# The billing address a web shop asked the issuer to verify (``cards.avs``): asked at all, and
# how much of it was the cardholder's (a bought card number comes without its address)
ADDRESS_FEATURE_NAMES: tuple[str, ...] = ("avs_asked", "avs_no_match", "avs_partial")
_BLOCKS = (ACCEPTOR_FEATURE_NAMES, RECEIVED_FEATURE_NAMES, WALLET_FEATURE_NAMES,
           ADDRESS_FEATURE_NAMES)  # fmt: skip
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    FEATURE_SET: FEATURE_NAMES,
    ACCEPTOR_FEATURE_SET: FEATURE_NAMES + ACCEPTOR_FEATURE_NAMES,
    RECEIVED_FEATURE_SET: FEATURE_NAMES + ACCEPTOR_FEATURE_NAMES + RECEIVED_FEATURE_NAMES,
    WALLET_FEATURE_SET: FEATURE_NAMES
    + ACCEPTOR_FEATURE_NAMES
    + RECEIVED_FEATURE_NAMES
    + WALLET_FEATURE_NAMES,
    ADDRESS_FEATURE_SET: FEATURE_NAMES
    + ACCEPTOR_FEATURE_NAMES
    + RECEIVED_FEATURE_NAMES
    + WALLET_FEATURE_NAMES
    + ADDRESS_FEATURE_NAMES,
}
# minor units per major unit by currency (what ``feature_values`` divides amounts by; 100 for
# a code not in it): each currency's own, or, for artifacts trained before, two decimals for all
CURRENCY_UNITS: Mapping[str, int] = MINOR_PER_MAJOR
TWO_DECIMALS: Mapping[str, int] = {}
CASH_OUT_TYPES = CASH_TYPES | {"10"}  # cash, or the card paying into a transfer (AFT)
CASH_OUT_CAP = 5.0  # cash out over money received: as far over as we count


def feature_names(feature_set: str) -> tuple[str, ...]:
    """The names of a feature set, in order; ValueError naming the known sets otherwise."""
    try:
        return FEATURE_SETS[feature_set]
    except KeyError:
        known = ", ".join(FEATURE_SETS)
        raise ValueError(f"unknown feature set {feature_set!r}; known: {known}") from None


def _log_ratio(amount_minor: int, mean_minor: float, per: int) -> float:
    """log of amount / card mean, damped by one major unit (``per`` minor units) so that tiny
    means do not explode."""
    return math.log((amount_minor + per) / (mean_minor + per))


def _one_hot(value: str, names: tuple[str, ...]) -> tuple[float, ...]:
    """One-hot of ``value`` over ``names`` plus a last "other" slot."""
    return (*(1.0 if value == n else 0.0 for n in names), 0.0 if value in names else 1.0)


# Precomputed per value: the scorer's single-request path runs this code for every auth.
_CHANNEL_HOT = {c: _one_hot(c, CHANNELS) for c in CHANNELS}
_CHANNEL_OTHER = _one_hot("", CHANNELS)
_ENTRY_HOT = {code: _one_hot(group, ENTRY_MODES) for code, group in ENTRY_GROUPS.items()}
_ENTRY_OTHER = _one_hot("", ENTRY_MODES)
_HOUR = [
    (
        float(h),
        math.sin(h * 2.0 * math.pi / 24.0),
        math.cos(h * 2.0 * math.pi / 24.0),
        1.0 if h < 6 else 0.0,
    )
    for h in range(24)
]
_LOG1P_CAP = math.log1p(SINCE_CAP_S)


@lru_cache(maxsize=4096)
def _distance(country: str, home: str) -> tuple[float, float]:
    """(country known, distance in 1000 km) between the acquirer country and home."""
    distance = distance_km(country, home)
    return (0.0, 0.0) if distance is None else (1.0, distance / 1000.0)


_mcc_group = lru_cache(maxsize=4096)(mcc_risk_group)


def feature_values(
    ctx: TxContext,
    terminal_risk: TerminalRisk = NO_TERMINAL_RISK,
    blocks: int = 0,
    units: Mapping[str, int] = CURRENCY_UNITS,
) -> list[float]:
    """The feature values of one context, in ``FEATURE_NAMES`` order (all finite), followed
    by the first ``blocks`` extension blocks: ``ACCEPTOR_FEATURE_NAMES`` (the second feature
    set), ``RECEIVED_FEATURE_NAMES`` (the third), ``WALLET_FEATURE_NAMES`` (the fourth),
    ``ADDRESS_FEATURE_NAMES`` (the fifth). Amounts are divided by ``units`` of the card's
    currency (``CURRENCY_UNITS``, or ``TWO_DECIMALS`` for an artifact trained before)."""
    v = ctx.velocity
    log1p = math.log1p
    amount = ctx.amount_minor
    per = units.get(ctx.currency, 100)
    since = v.seconds_since_last
    since_log = log1p(min(since, SINCE_CAP_S)) if since is not None else _LOG1P_CAP
    available = ctx.available
    over_available = 10.0 if amount > 0 else 0.0  # nothing available: as far over as we count
    if available > 0:
        over_available = min(amount / available, 10.0)
    country, home = ctx.country, ctx.home_country
    values = [
        log1p(amount / per),
        _log_ratio(amount, v.mean_amount_7d, per),
        _log_ratio(amount, v.mean_amount_30d, per),
        log1p(v.count_1h),
        log1p(v.count_24h),
        log1p(v.count_7d),
        log1p(v.count_30d),
        log1p(v.amount_1h / per),
        log1p(v.amount_24h / per),
        log1p(v.amount_7d / per),
        log1p(v.amount_30d / per),
        log1p(v.declined_count_24h),
        float(v.distinct_merchants_24h),
        float(v.distinct_countries_24h),
        float(v.distinct_countries_7d),
        float(v.cash_count_24h),
        since_log,
        1.0 if since is None else 0.0,
        *_HOUR[ctx.hour],
        1.0 if ctx.weekday >= 5 else 0.0,
        *_CHANNEL_HOT.get(ctx.channel, _CHANNEL_OTHER),
        *_ENTRY_HOT.get(ctx.entry_mode, _ENTRY_OTHER),
        float(_mcc_group(ctx.mcc)),
        1.0 if ctx.tx_type in CASH_TYPES else 0.0,
        1.0 if country and home and country != home else 0.0,
        *_distance(country, home),
        terminal_risk.rates.get(ctx.terminal, terminal_risk.default),
        float(v.failed_pin_24h),
        float(v.failed_cvv_24h),
        1.0 if ctx.pin_present else 0.0,
        log1p(ctx.card_age_days) if ctx.card_age_days >= 0 else -1.0,
        over_available,
    ]
    if blocks:
        values += _acceptor_values(ctx.merchant_velocity)
        values += _acceptor_values(ctx.terminal_velocity)
        if blocks > 1:
            values += _received_values(ctx, per)
            if blocks > 2:
                values += _wallet_values(ctx)
                if blocks > 3:
                    values += _ADDRESS_VALUES.get(ctx.avs_result, _NOT_ASKED)
    return values


_NOT_ASKED = (0.0, 0.0, 0.0)
# by AVS result (cards.avs.AvsResult): asked, nothing matched, half matched; U (no address on
# the card) is asked and unknown
_ADDRESS_VALUES = {
    "Y": (1.0, 0.0, 0.0),
    "A": (1.0, 0.0, 1.0),
    "Z": (1.0, 0.0, 1.0),
    "N": (1.0, 1.0, 0.0),
    "U": (1.0, 0.0, 0.0),
}


def _wallet_values(ctx: TxContext) -> tuple[float, float, float]:
    age = ctx.token_age_hours
    if not ctx.wallet or age < 0:
        return (0.0, -1.0, 0.0)
    return (1.0, math.log1p(min(age, TOKEN_AGE_CAP_H)), 1.0 if age < 24.0 else 0.0)


def _received_values(ctx: TxContext, per: int) -> tuple[float, ...]:
    v, log1p = ctx.velocity, math.log1p
    since = v.seconds_since_received
    got = v.received_amount_24h
    taken = 0.0
    if got and ctx.tx_type in CASH_OUT_TYPES:
        taken = min((v.cash_amount_24h + ctx.amount_minor) / got, CASH_OUT_CAP)
    return (
        log1p(got / per),
        float(v.received_count_24h),
        log1p(v.received_amount_7d / per),
        log1p(min(since, SINCE_CAP_S)) if since is not None else _LOG1P_CAP,
        1.0 if since is None else 0.0,
        taken,
    )


def _acceptor_values(a: AcceptorVelocity) -> tuple[float, float, float, float, float]:
    log1p = math.log1p
    return (
        log1p(a.count_10m),
        log1p(a.distinct_cards_10m),
        a.declined_count_1h / a.count_1h if a.count_1h else 0.0,
        log1p(a.failed_cvv_1h),
        log1p(a.unknown_card_count_1h),
    )


def feature_vector(
    ctx: TxContext,
    terminal_risk: TerminalRisk = NO_TERMINAL_RISK,
    blocks: int = 0,
    units: Mapping[str, int] = CURRENCY_UNITS,
) -> np.ndarray:
    """One context as a float64 vector (``N_FEATURES`` long, more with ``blocks``)."""
    return np.array(feature_values(ctx, terminal_risk, blocks, units), dtype=np.float64)


def feature_matrix(
    contexts: Iterable[TxContext] | Sequence[TxContext],
    terminal_risk: TerminalRisk = NO_TERMINAL_RISK,
    blocks: int = 0,
    units: Mapping[str, int] = CURRENCY_UNITS,
) -> np.ndarray:
    """Contexts as a float64 matrix (rows x the feature set's columns)."""
    rows = [feature_values(ctx, terminal_risk, blocks, units) for ctx in contexts]
    if not rows:
        return np.zeros((0, N_FEATURES + sum(len(b) for b in _BLOCKS[:blocks])))
    return np.array(rows, dtype=np.float64)


def feature_blocks(feature_set: str) -> int:
    """How many extension blocks ``feature_values`` adds for ``feature_set`` (0 to 4); the
    first (merchant and terminal counters) costs the server counting on every request."""
    width = len(feature_names(feature_set)) - N_FEATURES
    blocks = 0
    while width > 0:
        width -= len(_BLOCKS[blocks])
        blocks += 1
    return blocks
