"""Model features read amounts in each currency's own major units (ISO 4217 exponent), and an
artifact trained before that is still served with the two decimals it was trained on."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from authhost.cards.velocity import Velocity
from authhost.models.artifact import METADATA_FILE, ArtifactError, write_artifact
from authhost.models.context import TxContext, replay_contexts
from authhost.models.features import (
    FEATURE_NAMES,
    N_FEATURES,
    RECEIVED_FEATURE_SET,
    TWO_DECIMALS,
    feature_blocks,
    feature_names,
    feature_values,
)
from authhost.models.scorer import Scorer
from authhost.models.synthetic import generate_rows
from authhost.models.terminal_risk import TerminalRisk

JPY, USD, BHD = "392", "840", "048"  # exponents 0, 2, 3
# the same hundred major units in each: 100 yen, 100.00 dollars, 100.000 dinars
HUNDRED = {JPY: 100, USD: 10_000, BHD: 100_000}


@pytest.fixture(scope="module")
def base() -> TxContext:
    return next(ctx for _, ctx in replay_contexts(generate_rows(cards=2, days=1, seed=3)))


def _in(base: TxContext, currency: str) -> TxContext:
    """A purchase of a hundred units, on a card whose day spent and received ten times that
    and whose mean is a hundred units."""
    hundred = HUNDRED[currency]
    velocity = Velocity(
        amount_1h=hundred,
        amount_24h=10 * hundred,
        amount_7d=10 * hundred,
        amount_30d=10 * hundred,
        mean_amount_7d=float(hundred),
        mean_amount_30d=float(hundred),
        received_amount_24h=10 * hundred,
        received_amount_7d=10 * hundred,
        received_count_24h=1,
    )
    return replace(base, currency=currency, amount_minor=hundred, velocity=velocity)


AMOUNT_FEATURES = (
    "amount_log",
    "amount_ratio_mean_7d_log",
    "amount_ratio_mean_30d_log",
    "amount_1h_log",
    "amount_24h_log",
    "amount_7d_log",
    "amount_30d_log",
    "received_24h_log",
    "received_7d_log",
)


def test_a_hundred_units_read_alike_in_yen_dollars_and_dinars(base: TxContext) -> None:
    blocks = feature_blocks(RECEIVED_FEATURE_SET)
    names = feature_names(RECEIVED_FEATURE_SET)
    by_currency = {
        c: dict(zip(names, feature_values(_in(base, c), blocks=blocks), strict=True))
        for c in HUNDRED
    }
    for name in AMOUNT_FEATURES:
        assert by_currency[JPY][name] == by_currency[USD][name] == by_currency[BHD][name], name
    assert by_currency[JPY]["amount_log"] == pytest.approx(math.log1p(100))
    assert by_currency[JPY]["amount_24h_log"] == pytest.approx(math.log1p(1000))
    assert by_currency[JPY]["amount_ratio_mean_30d_log"] == 0.0
    # an artifact trained before reads every currency with two decimals: 100 yen as 1.00
    values = feature_values(_in(base, JPY), blocks=blocks, units=TWO_DECIMALS)
    old = dict(zip(names, values, strict=True))
    assert old["amount_log"] == pytest.approx(math.log1p(1.0))
    assert old["received_24h_log"] == pytest.approx(math.log1p(10.0))
    usd_old = feature_values(_in(base, USD), blocks=blocks, units=TWO_DECIMALS)
    assert usd_old == feature_values(_in(base, USD), blocks=blocks)  # two decimals: unchanged


def _amount_model(path: Path) -> Path:
    """A logistic model that reads the amount only: its score moves with ``amount_log``."""
    coef = np.zeros(N_FEATURES)
    coef[FEATURE_NAMES.index("amount_log")] = 1.0
    arrays = {"coef": coef, "intercept": np.array([-6.0])}
    meta = {"threshold": 500, "created": "test"}
    return write_artifact(path, "logistic", arrays, TerminalRisk(), meta)


def _score(amount_log: float) -> int:
    return int(1000.0 / (1.0 + math.exp(-(amount_log - 6.0))))


def test_an_artifact_trained_before_keeps_its_two_decimals(tmp_path: Path, base: TxContext) -> None:
    new = _amount_model(tmp_path / "logistic-new")
    assert json.loads((new / METADATA_FILE).read_text())["amount_units"] == "currency"
    old = _amount_model(tmp_path / "logistic-old")
    meta = json.loads((old / METADATA_FILE).read_text())
    del meta["amount_units"]  # as written before 2026-11-29
    (old / METADATA_FILE).write_text(json.dumps(meta))
    yen = replace(base, currency=JPY, amount_minor=50_000)  # 50,000 yen
    assert Scorer.load(new).score_one(yen) == _score(math.log1p(50_000))
    assert Scorer.load(old).score_one(yen) == _score(math.log1p(500))  # as it was trained
    assert Scorer.load(old).score([yen]).tolist() == [_score(math.log1p(500))]
    assert Scorer.load(old).amount_units is TWO_DECIMALS


def test_an_artifact_with_amount_units_it_does_not_know_is_refused(tmp_path: Path) -> None:
    path = _amount_model(tmp_path / "logistic-x")
    meta = json.loads((path / METADATA_FILE).read_text())
    meta["amount_units"] = "cents"
    (path / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="amount_units 'cents'"):
        Scorer.load(path)
