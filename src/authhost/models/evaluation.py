"""Model evaluation on held-out days: the numbers and plots a fraud analyst compares models by.

- AUC ROC and average precision over transactions.
- Card precision@k per day: each day, rank cards by their highest score that day and take
  the top k (what an investigation team can call); the share of those cards that really had
  fraud that day. Averaged over the test days.
- Precision and recall at the operating threshold (the score at or above which the model
  declines or flags), with the number of alerts, and the recall of each fraud scenario the
  data names (``scenario`` column): which patterns a model catches, not only how many.

The rows evaluated are the requests the server's fraud step scores (``models.scored``): a
request declined before it (an unknown card number 14, a failed CVV2 N7) is never scored
online, so it is neither counted as caught nor as missed. How many test rows were left out,
and their frauds per scenario, are reported beside the metrics
(``excluded_before_fraud_step``, ``excluded_frauds_by_scenario``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

DAY_S = 86400.0


@dataclass
class ModelMetrics:
    model: str
    auc_roc: float
    average_precision: float
    card_precision_at_k: float  # mean over test days
    k: int
    threshold: int  # operating threshold, score 0-999
    precision_at_threshold: float
    recall_at_threshold: float
    alerts: int
    transactions: int
    frauds: int
    card_precision_per_day: list[float] = field(default_factory=list)
    # fraud scenario -> (frauds at or above the threshold, frauds): labelled data only
    recall_by_scenario: dict[str, tuple[int, int]] = field(default_factory=dict)
    # test rows left out: declined before the fraud step (models.scored), never scored online
    excluded_before_fraud_step: int = 0
    excluded_frauds_by_scenario: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON values (NaN, e.g. AUC of a test set without fraud, becomes None)."""
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in asdict(self).items()
        }


def card_precision_per_day(
    ts: np.ndarray, cards: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int
) -> list[float]:
    """Per day: share of really compromised cards among the k cards with the highest score."""
    days = np.floor(ts / DAY_S).astype(np.int64)
    out = []
    for day in np.unique(days):
        on_day = days == day
        card_names, inverse = np.unique(cards[on_day], return_inverse=True)
        best = np.full(len(card_names), -np.inf)
        np.maximum.at(best, inverse, scores[on_day])
        fraud = np.zeros(len(card_names), dtype=bool)
        np.logical_or.at(fraud, inverse, labels[on_day] == 1)
        top = np.argsort(-best, kind="stable")[: min(k, len(card_names))]
        out.append(float(fraud[top].mean()) if len(top) else 0.0)
    return out


def evaluate(
    model: str,
    ts: np.ndarray,
    cards: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    scores: np.ndarray,
    threshold: int,
    k: int = 100,
    scenarios: np.ndarray | None = None,
    *,
    excluded_rows: int = 0,
    excluded_frauds_by_scenario: Mapping[str, int] | None = None,
) -> ModelMetrics:
    """All metrics of one model on one test set (rankings use the unrounded probabilities).

    The test set holds the rows the fraud step scores; ``excluded_rows`` and
    ``excluded_frauds_by_scenario`` count the test days' rows declined before it (reported,
    never scored).
    """
    both_classes = 0 < labels.sum() < len(labels)
    alerts = scores >= threshold
    true_alerts = int((alerts & (labels == 1)).sum())
    per_day = card_precision_per_day(ts, cards, labels, probabilities, k)
    return ModelMetrics(
        model=model,
        auc_roc=float(roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        average_precision=(
            float(average_precision_score(labels, probabilities)) if both_classes else float("nan")
        ),
        card_precision_at_k=float(np.mean(per_day)) if per_day else 0.0,
        k=k,
        threshold=int(threshold),
        # undefined (NaN, "n/a", null in JSON) without alerts or without frauds: a 0.0000
        # recall on test days without fraud read as a model that misses every fraud
        precision_at_threshold=true_alerts / int(alerts.sum()) if alerts.any() else math.nan,
        recall_at_threshold=true_alerts / int(labels.sum()) if labels.any() else math.nan,
        alerts=int(alerts.sum()),
        transactions=len(labels),
        frauds=int(labels.sum()),
        card_precision_per_day=per_day,
        recall_by_scenario=_recall_by_scenario(labels, alerts, scenarios),
        excluded_before_fraud_step=excluded_rows,
        excluded_frauds_by_scenario=dict(excluded_frauds_by_scenario or {}),
    )


def _recall_by_scenario(
    labels: np.ndarray, alerts: np.ndarray, scenarios: np.ndarray | None
) -> dict[str, tuple[int, int]]:
    if scenarios is None:
        return {}
    fraud = labels == 1
    out = {}
    for name in sorted(set(scenarios[fraud].tolist())):
        of = fraud & (scenarios == name)
        out[str(name) or "unnamed"] = (int((alerts & of).sum()), int(of.sum()))
    return out


def operating_threshold(train_scores: np.ndarray, alert_rate: float) -> int:
    """The score at or above which about ``alert_rate`` of the training transactions fall."""
    if len(train_scores) == 0:
        return 999
    cut = float(np.quantile(train_scores, 1.0 - alert_rate, method="higher"))
    return int(min(999, max(1, cut)))


def write_plots(
    directory: Path, labels: np.ndarray, probabilities: Mapping[str, np.ndarray]
) -> list[Path]:
    """ROC, precision-recall and score histogram PNGs for every model on the test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if 0 < labels.sum() < len(labels):
        fig, ax = plt.subplots(figsize=(6, 5))
        for name, p in probabilities.items():
            fpr, tpr, _ = roc_curve(labels, p)
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, p):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test days")
        ax.legend(loc="lower right")
        fig.savefig(directory / "roc.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(directory / "roc.png")

        fig, ax = plt.subplots(figsize=(6, 5))
        for name, p in probabilities.items():
            precision, recall, _ = precision_recall_curve(labels, p)
            ap = average_precision_score(labels, p)
            ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test days")
        ax.legend(loc="upper right")
        fig.savefig(directory / "pr.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(directory / "pr.png")

    fig, axes = plt.subplots(1, len(probabilities), figsize=(6 * len(probabilities), 4))
    for ax, (name, p) in zip(np.atleast_1d(axes), probabilities.items(), strict=True):
        scores = np.minimum(np.floor(p * 1000), 999)
        bins = np.linspace(0, 1000, 51)
        for label, name in ((0, "genuine"), (1, "fraud")):
            if (labels == label).any():  # a density of nothing warned "invalid value"
                ax.hist(scores[labels == label], bins=bins, alpha=0.6, label=name, density=True)
        ax.set(xlabel="score 0-999", ylabel="density (log)", yscale="log", title=name)
        ax.legend()
    fig.savefig(directory / "scores.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    written.append(directory / "scores.png")
    return written
