"""Fitted scikit-learn models as plain arrays: what an artifact stores instead of a pickle.

Loading a pickle runs code chosen by whoever wrote the file; these arrays are only numbers,
checked by ``artifact.validate_arrays`` and evaluated by ``scorer`` with numpy. The layouts:

- logistic: ``coef`` (n_features,) and ``intercept`` (1,), with the standard scaler folded in
  (``coef / scale`` and ``intercept - sum(coef * mean / scale)``), so scoring is one dot
  product on raw features; ``mean``, the training mean of each feature, explains a score
  (feature i adds ``coef[i] * (x[i] - mean[i])``).
- hgb: every tree's nodes, concatenated: ``feature``, ``threshold`` (go left when
  ``x <= threshold``), ``left``/``right`` (global node indices), ``is_leaf``,
  ``missing_left`` (where NaN goes), ``value`` (leaf values), ``tree_start`` (offsets, one
  more than the number of trees) and ``baseline`` (the init score added to the tree sum);
  ``count``, the training rows that reached each node, explains a score (``scorer``).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def export_logistic(model: Pipeline) -> dict[str, np.ndarray]:
    """A fitted ``StandardScaler -> LogisticRegression`` pipeline as coefficients."""
    scaler: StandardScaler = model.named_steps["scale"]
    logistic: LogisticRegression = model.named_steps["model"]
    if logistic.coef_.shape[0] != 1:
        raise ValueError("only binary logistic regression can be exported")
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_)
    coef = logistic.coef_[0] / scale
    intercept = logistic.intercept_[0] - float(np.sum(logistic.coef_[0] * scaler.mean_ / scale))
    return {
        "coef": coef.astype(np.float64),
        "intercept": np.array([intercept], np.float64),
        "mean": np.asarray(scaler.mean_, dtype=np.float64),
    }


def export_hgb(model: HistGradientBoostingClassifier) -> dict[str, np.ndarray]:
    """A fitted binary ``HistGradientBoostingClassifier`` as concatenated node arrays."""
    if len(model.classes_) != 2:
        raise ValueError("only binary gradient boosting can be exported")
    trees = [iteration[0].nodes for iteration in model._predictors]
    if any(t["is_categorical"].any() for t in trees):
        raise ValueError("categorical splits cannot be exported (features are all numeric)")
    sizes = np.array([len(t) for t in trees], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)))
    nodes = np.concatenate(trees)
    offsets = np.repeat(starts[:-1], sizes)
    is_leaf = nodes["is_leaf"].astype(bool)
    left = np.where(is_leaf, -1, nodes["left"].astype(np.int64) + offsets)
    right = np.where(is_leaf, -1, nodes["right"].astype(np.int64) + offsets)
    return {
        "tree_start": starts,
        "feature": np.where(is_leaf, 0, nodes["feature_idx"]).astype(np.int64),
        "threshold": np.where(is_leaf, 0.0, nodes["num_threshold"]).astype(np.float64),
        "left": left,
        "right": right,
        "is_leaf": is_leaf,
        "missing_left": nodes["missing_go_to_left"].astype(bool),
        "value": np.where(is_leaf, nodes["value"], 0.0).astype(np.float64),
        "baseline": np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1),
        "count": nodes["count"].astype(np.int64),
    }
