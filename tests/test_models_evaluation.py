"""The figures `authhost train` reports, checked against scikit-learn and by hand, and what
they are when the test days give them no meaning (no fraud, no alert)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from authhost.models.evaluation import evaluate, write_plots

DAY = 86400.0


def _set(labels: list[int], probabilities: list[float]) -> tuple[np.ndarray, ...]:
    n = len(labels)
    ts = np.array([i * DAY / n for i in range(n)])  # one day
    cards = np.array([f"c{i % 4}" for i in range(n)])
    p = np.array(probabilities)
    return ts, cards, np.array(labels), p, np.minimum(np.floor(p * 1000), 999).astype(np.int64)


def test_the_figures_are_scikit_learns() -> None:
    ts, cards, labels, p, scores = _set(
        [0, 1, 0, 0, 1, 0, 1, 0], [0.10, 0.90, 0.75, 0.20, 0.60, 0.05, 0.30, 0.80]
    )
    m = evaluate("m", ts, cards, labels, p, scores, threshold=500, k=2)
    alerts = scores >= 500
    assert m.auc_roc == roc_auc_score(labels, p)
    assert m.average_precision == average_precision_score(labels, p)
    assert m.precision_at_threshold == precision_score(labels, alerts) == 2 / 4
    assert m.recall_at_threshold == recall_score(labels, alerts) == 2 / 3
    assert (m.alerts, m.frauds, m.transactions) == (4, 3, 8)
    # cards c0..c3, best probability: c0 0.60, c1 0.90, c2 0.75, c3 0.80; fraud: c1, c0, c2
    assert m.card_precision_per_day == [0.5]  # top 2: c1 (fraud), c3 (not)


def test_recall_without_frauds_and_precision_without_alerts_are_undefined() -> None:
    """Test days without fraud reported recall 0.0000 (a model that misses every fraud), and a
    threshold nothing reached reported precision 0.0000: neither figure exists there."""
    ts, cards, labels, p, scores = _set([0, 0, 0, 0], [0.1, 0.2, 0.9, 0.3])
    m = evaluate("m", ts, cards, labels, p, scores, threshold=500)
    assert math.isnan(m.recall_at_threshold) and m.precision_at_threshold == 0.0
    assert m.as_dict()["recall_at_threshold"] is None

    ts, cards, labels, p, scores = _set([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4])
    m = evaluate("m", ts, cards, labels, p, scores, threshold=900)
    assert m.alerts == 0 and math.isnan(m.precision_at_threshold)
    assert m.recall_at_threshold == 0.0  # two frauds, none caught: that one is a figure
    assert m.as_dict()["precision_at_threshold"] is None


def test_the_score_plot_of_test_days_without_fraud_warns_nothing(tmp_path: Path) -> None:
    """The histogram of an empty fraud class printed numpy's 'invalid value encountered in
    divide' in the middle of `authhost train`'s report."""
    labels = np.zeros(50, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = write_plots(tmp_path, labels, {"m": np.linspace(0, 0.5, 50)})
    assert [p.name for p in written] == ["scores.png"]
