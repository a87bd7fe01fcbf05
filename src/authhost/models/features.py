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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from authhost.models.context import TxContext
from authhost.models.geography import distance_km
from authhost.models.merchant_groups import mcc_risk_group
from authhost.models.terminal_risk import TerminalRisk

FEATURE_SET = "authhost-features-1"  # bump when any definition below changes

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
TERMINAL_RISK_INDEX = FEATURE_NAMES.index("terminal_risk")


def _log_ratio(amount_minor: int, mean_minor: float) -> float:
    """log of amount / card mean, damped by one major unit so that tiny means do not explode."""
    return math.log((amount_minor + 100.0) / (mean_minor + 100.0))


def feature_values(ctx: TxContext, terminal_risk: TerminalRisk = NO_TERMINAL_RISK) -> list[float]:
    """The feature values of one context, in ``FEATURE_NAMES`` order (all finite)."""
    v = ctx.velocity
    log1p = math.log1p
    amount = ctx.amount_minor
    since = v.seconds_since_last
    since_log = log1p(min(since, SINCE_CAP_S)) if since is not None else log1p(SINCE_CAP_S)
    hour = ctx.hour
    angle = hour * (2.0 * math.pi / 24.0)
    channel = ctx.channel
    entry = ENTRY_GROUPS.get(ctx.entry_mode, "")
    distance = distance_km(ctx.country, ctx.home_country)
    available = ctx.available
    over_available = 10.0 if amount > 0 else 0.0  # nothing available: as far over as we count
    if available > 0:
        over_available = min(amount / available, 10.0)
    return [
        log1p(amount / 100.0),
        _log_ratio(amount, v.mean_amount_7d),
        _log_ratio(amount, v.mean_amount_30d),
        log1p(v.count_1h),
        log1p(v.count_24h),
        log1p(v.count_7d),
        log1p(v.count_30d),
        log1p(v.amount_1h / 100.0),
        log1p(v.amount_24h / 100.0),
        log1p(v.amount_7d / 100.0),
        log1p(v.amount_30d / 100.0),
        log1p(v.declined_count_24h),
        float(v.distinct_merchants_24h),
        float(v.distinct_countries_24h),
        float(v.distinct_countries_7d),
        float(v.cash_count_24h),
        since_log,
        1.0 if since is None else 0.0,
        float(hour),
        math.sin(angle),
        math.cos(angle),
        1.0 if hour < 6 else 0.0,
        1.0 if ctx.weekday >= 5 else 0.0,
        *(1.0 if channel == c else 0.0 for c in CHANNELS),
        0.0 if channel in CHANNELS else 1.0,
        *(1.0 if entry == e else 0.0 for e in ENTRY_MODES),
        0.0 if entry else 1.0,
        float(mcc_risk_group(ctx.mcc)),
        1.0 if ctx.cash else 0.0,
        1.0 if ctx.cross_border else 0.0,
        0.0 if distance is None else 1.0,
        0.0 if distance is None else distance / 1000.0,
        terminal_risk.rate(ctx.terminal),
        float(v.failed_pin_24h),
        float(v.failed_cvv_24h),
        1.0 if ctx.pin_present else 0.0,
        log1p(ctx.card_age_days) if ctx.card_age_days >= 0 else -1.0,
        over_available,
    ]


def feature_vector(ctx: TxContext, terminal_risk: TerminalRisk = NO_TERMINAL_RISK) -> np.ndarray:
    """One context as a float64 vector of length ``N_FEATURES``."""
    return np.array(feature_values(ctx, terminal_risk), dtype=np.float64)


def feature_matrix(
    contexts: Iterable[TxContext] | Sequence[TxContext],
    terminal_risk: TerminalRisk = NO_TERMINAL_RISK,
) -> np.ndarray:
    """Contexts as a float64 matrix (rows x ``N_FEATURES``)."""
    rows = [feature_values(ctx, terminal_risk) for ctx in contexts]
    if not rows:
        return np.zeros((0, N_FEATURES))
    return np.array(rows, dtype=np.float64)
