"""The serving scorer: an exported model evaluated with numpy only, fast enough for the auth path.

Scores are integers 0-999 (``floor(1000 * probability)``, capped at 999).

Gradient-boosted trees are evaluated for all trees at once: at load time every tree is laid
out so that a node's right child sits right after its left child and leaves point to
themselves. One step of the descent, for every tree together, is then

    node = child[node] + (x[feature[node]] > threshold[node])

and ``depth`` steps (the deepest tree) reach every leaf. For one row, every split is decided
at once (split nodes sorted by feature, so their inputs are ``np.repeat(x, counts)``) and the
descent is ``depth`` gathers of one index per tree. A few numpy calls replace
scikit-learn's per-call validation and threading overhead; ``score`` does the same for a
micro-batch of contexts in one go. Feature vectors never hold NaN (``features``), so the
fast path needs no missing-value branch; matrices that do contain NaN take the general path,
which sends NaN where the trained tree says.

A single request (``score_one``) goes faster still without numpy: at load time the trees are
turned into one plain Python function of nested ``if x3 > 0.5:`` tests (``_row_function``),
generated from the arrays' numbers and indices only (no string from the artifact reaches the
source), that adds the leaves in exactly the order of numpy's pairwise ``sum``, so its result
is bit-identical to ``raw_one``. A few float comparisons per tree beat a dozen numpy calls and
the list-to-array conversion for models of the size we train (``MAX_SOURCE_TREE_LEVELS``);
larger ones keep numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from authhost.models.artifact import Artifact, read_artifact
from authhost.models.context import TxContext
from authhost.models.features import feature_names, feature_values
from authhost.models.terminal_risk import TerminalRisk

MAX_SCORE = 999
# Generated single-row function against numpy's raw_one, measured (us per row, trees x depth):
# 150 x 4: 5 vs 13; 150 x 6: 8 vs 17; 500 x 6: 25 vs 23; 1000 x 8: 41 vs 35. Above about
# 2,000 tree levels numpy wins; such models (and very deep ones, which the Python parser
# refuses) score single rows with numpy (``raw_one``).
MAX_SOURCE_TREE_LEVELS = 2_000  # trees x depth
MAX_SOURCE_SPLITS = 20_000
MAX_SOURCE_DEPTH = 40

RowFunction = Callable[[Sequence[float]], float]


def scores_from_probabilities(p: np.ndarray) -> np.ndarray:
    """Probabilities as 0-999 integer scores."""
    return np.minimum(np.floor(p * 1000.0), MAX_SCORE).astype(np.int64)


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(raw, -700.0, 700.0)))


def _number(value: float) -> str:
    """A finite float as a Python literal that reads back as exactly the same float."""
    value = float(value)
    text = repr(value)
    if not math.isfinite(value) or float(text) != value:
        raise ValueError(f"not an exact finite literal: {text}")
    return text


def _pairwise_sum_source(names: Sequence[str]) -> str:
    """An expression adding ``names`` in the order of numpy's pairwise summation of a
    contiguous float64 array (``np.add.reduce``: 8 running sums per block of up to 128,
    halves above that), so that the result is bit-identical to ``array.sum()``."""
    n = len(names)
    if n < 8:
        total = "0.0"
        for name in names:
            total = f"({total} + {name})"
        return total
    if n <= 128:
        r = list(names[:8])
        end = n - n % 8
        for i in range(8, end, 8):
            r = [f"({r[j]} + {names[i + j]})" for j in range(8)]
        total = (
            f"((({r[0]} + {r[1]}) + ({r[2]} + {r[3]})) + (({r[4]} + {r[5]}) + ({r[6]} + {r[7]})))"
        )
        for name in names[end:]:
            total = f"({total} + {name})"
        return total
    half = n // 2
    half -= half % 8
    return f"({_pairwise_sum_source(names[:half])} + {_pairwise_sum_source(names[half:])})"


def _row_function(arrays: dict[str, np.ndarray], depth: int, n_features: int) -> RowFunction | None:
    """The trees as one Python function of a NaN-free feature sequence, returning the same
    float as ``_Trees.raw_one`` (None when numpy is faster for a model this large, or a number
    cannot be written as an exact literal).

    The source is built from numbers and indices only: ``int`` feature indices and float
    literals checked to read back exactly; it runs with empty builtins.
    """
    starts, leaf = arrays["tree_start"], arrays["is_leaf"]
    trees = len(starts) - 1
    if (
        trees * depth > MAX_SOURCE_TREE_LEVELS
        or int((~leaf).sum()) > MAX_SOURCE_SPLITS
        or depth > MAX_SOURCE_DEPTH
    ):
        return None
    feature = [int(f) for f in arrays["feature"]]
    threshold, value = arrays["threshold"], arrays["value"]
    left = [int(i) for i in arrays["left"]]
    right = [int(i) for i in arrays["right"]]
    is_leaf = [bool(b) for b in leaf]
    lines = ["def raw_row(x):"]
    lines.append(f"    ({''.join(f'x{i}, ' for i in range(n_features))}) = x")

    def emit(node: int, tree: int, indent: str) -> None:
        if is_leaf[node]:
            lines.append(f"{indent}t{tree} = {_number(value[node])}")
            return
        split = float(threshold[node])
        if not split < math.inf:  # +inf (scikit-learn's "only NaN goes right") or NaN:
            emit(left[node], tree, indent)  # no NaN-free x is greater, always left
            return
        # as raw_one: go right when x > threshold (NaN never reaches this function)
        lines.append(f"{indent}if x{feature[node]} > {_number(split)}:")
        emit(right[node], tree, indent + " ")
        lines.append(f"{indent}else:")
        emit(left[node], tree, indent + " ")

    try:
        for t in range(trees):
            emit(int(starts[t]), t, "    ")
        baseline = _number(arrays["baseline"][0])
    except ValueError:
        return None
    # raw_one: baseline + float(leaf_values.sum()); add.reduce starts from its identity 0.0
    total = _pairwise_sum_source([f"t{t}" for t in range(trees)])
    lines.append(f"    return {baseline} + (0.0 + {total})")
    namespace: dict[str, object] = {"__builtins__": {}}
    exec(compile("\n".join(lines) + "\n", "<trees>", "exec"), namespace)  # noqa: S102 - numbers only
    return namespace["raw_row"]  # type: ignore[return-value]


class _Logistic:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.coef = np.ascontiguousarray(arrays["coef"], dtype=np.float64)
        self.intercept = float(arrays["intercept"][0])
        mean = arrays.get("mean")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.explains = self.mean is not None

    def contributions(self, x: np.ndarray) -> np.ndarray | None:
        """What each feature adds to the raw score against an average training row; with
        the average row's raw score they sum to ``raw_one(x)``."""
        return None if self.mean is None else self.coef * (x - self.mean)

    def raw(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef + self.intercept

    def raw_one(self, x: np.ndarray) -> float:
        return float(x @ self.coef) + self.intercept


def _expected_values(arrays: Mapping[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
    """Each node's expected output: a leaf's value, a split's the count-weighted mean of its
    children's (children come after their parent, so one backward pass)."""
    value = np.asarray(arrays["value"], dtype=np.float64).copy()
    weight = np.asarray(counts, dtype=np.float64).copy()
    leaf, left, right = arrays["is_leaf"], arrays["left"], arrays["right"]
    for node in range(len(value) - 1, -1, -1):
        if leaf[node]:
            continue
        a, b = int(left[node]), int(right[node])
        total = weight[a] + weight[b]
        value[node] = (
            (weight[a] * value[a] + weight[b] * value[b]) / total
            if total > 0
            else (value[a] + value[b]) / 2.0
        )
    return value


class _Trees:
    """All trees, laid out for level-by-level descent (see the module docstring)."""

    def __init__(self, arrays: dict[str, np.ndarray], n_features: int) -> None:
        starts = arrays["tree_start"]
        left, right, leaf = arrays["left"], arrays["right"], arrays["is_leaf"]
        n = len(leaf)
        order = np.empty(n, dtype=np.int64)  # new position -> old node
        new_of = np.empty(n, dtype=np.int64)  # old node -> new position
        depth_max = 0
        position = 0
        for t in range(len(starts) - 1):
            level = [int(starts[t])]
            order[position] = level[0]
            new_of[level[0]] = position
            position += 1
            depth = 0
            while True:
                children = []
                for node in level:
                    if not leaf[node]:
                        for child in (int(left[node]), int(right[node])):
                            order[position] = child
                            new_of[child] = position
                            position += 1
                            children.append(child)
                if not children:
                    break
                depth += 1
                level = children
            depth_max = max(depth_max, depth)
        old_leaf = leaf[order]
        self.child = np.where(old_leaf, np.arange(n), new_of[np.where(old_leaf, 0, left[order])])
        self.feature = np.where(old_leaf, 0, arrays["feature"][order]).astype(np.intp)
        self.threshold = np.where(old_leaf, np.inf, arrays["threshold"][order])
        self.missing_right = np.where(old_leaf, False, ~arrays["missing_left"][order])
        self.value = np.where(old_leaf, arrays["value"][order], 0.0)
        self.roots = new_of[starts[:-1]]
        self.depth = depth_max
        self.baseline = float(arrays["baseline"][0])
        self._single_row_layout(arrays, n_features)
        self.row_function = _row_function(arrays, depth_max, n_features)
        self._n_features = n_features
        counts = arrays.get("count")
        self.expected = None if counts is None else _expected_values(arrays, counts)[order]
        self.explains = self.expected is not None

    def _single_row_layout(self, arrays: dict[str, np.ndarray], n_features: int) -> None:
        """Split nodes sorted by feature, so one row's split inputs are ``np.repeat(x, counts)``
        (a contiguous copy) instead of a gather over every node; leaves follow, pointing to
        themselves."""
        leaf, feature = arrays["is_leaf"], arrays["feature"]
        inner = np.flatnonzero(~leaf)
        inner = inner[np.argsort(feature[inner], kind="stable")]
        leaves = np.flatnonzero(leaf)
        k = len(inner)
        position = np.empty(len(leaf), dtype=np.intp)
        position[inner] = np.arange(k)
        position[leaves] = k + np.arange(len(leaves))
        self._counts = np.bincount(feature[inner], minlength=n_features)
        self._split = arrays["threshold"][inner]
        # int32 and "left + go_right * (right - left)": measured several times faster than
        # np.where on intp for a few thousand nodes
        self._left = position[arrays["left"][inner]].astype(np.int32)
        self._step = (position[arrays["right"][inner]] - position[arrays["left"][inner]]).astype(
            np.int32
        )
        self._leaf_self = (k + np.arange(len(leaves))).astype(np.int32)
        self._leaf_value = np.concatenate((np.zeros(k), arrays["value"][leaves]))
        self._root_position = position[arrays["tree_start"][:-1]]

    def raw_one(self, x: np.ndarray) -> float:
        """One NaN-free row: every split decided at once, then ``depth`` cheap hops."""
        go_right = np.repeat(x, self._counts) > self._split
        nxt = np.concatenate((self._left + go_right * self._step, self._leaf_self))
        node = self._root_position
        for _ in range(self.depth):
            node = nxt[node]
        return self.baseline + float(self._leaf_value[node].sum())

    def contributions(self, x: np.ndarray) -> np.ndarray | None:
        """Per feature, what its splits on the row's path added (Saabas: the expected output
        below a split minus above it, summed over the trees); with the trees' expected
        outputs at the roots they sum to ``raw_one(x)``. None without node counts."""
        expected = self.expected
        if expected is None:
            return None
        out = np.zeros(self._n_features)
        node = self.roots
        for _ in range(self.depth):  # a leaf points to itself and adds nothing
            feature = self.feature[node]
            below = self.child[node] + (x[feature] > self.threshold[node])
            np.add.at(out, feature, expected[below] - expected[node])
            node = below
        return out

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Many rows; NaN goes where each split's ``missing_left`` says."""
        rows = X.shape[0]
        flat = np.ascontiguousarray(X, dtype=np.float64).ravel()
        base = (np.arange(rows, dtype=np.intp) * X.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (rows, len(self.roots)))
        has_nan = bool(np.isnan(flat).any())
        for _ in range(self.depth):
            x = flat[base + self.feature[node]]
            go_right = x > self.threshold[node]
            if has_nan:
                go_right = np.where(np.isnan(x), self.missing_right[node], go_right)
            node = self.child[node] + go_right
        return self.baseline + self.value[node].sum(axis=1)


class Scorer:
    """A loaded model: features from contexts, numpy evaluation, 0-999 scores."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.name = artifact.name
        self.kind = artifact.kind
        self.threshold = artifact.threshold
        self.terminal_risk: TerminalRisk = artifact.terminal_risk
        self.feature_set = artifact.feature_set
        self.n_features = len(feature_names(self.feature_set))
        # a model of the second feature set reads the merchant and terminal counters, of the
        # third the money the card received too
        self.reads_acceptors = artifact.reads_acceptors
        self.feature_blocks = artifact.feature_blocks  # and the money received, the wallet
        self.amount_units = artifact.amount_units  # per currency, or two decimals (older)
        arrays = dict(artifact.arrays)
        if self.kind == "logistic":
            self._model: _Logistic | _Trees = _Logistic(arrays)
        else:
            self._model = _Trees(arrays, self.n_features)
        row = getattr(self._model, "row_function", None)
        self._raw_row: RowFunction = row if row is not None else self._raw_row_numpy

    @classmethod
    def load(cls, path: str | Path) -> Scorer:
        """Load and check an artifact directory (raises ``ArtifactError``); runs no code."""
        return cls(read_artifact(path))

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.artifact.metadata)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability per row of a feature matrix (same as sklearn's predict_proba)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} feature columns")
        return _sigmoid(self._model.raw(X))

    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        return scores_from_probabilities(self.probabilities(X))

    def score(self, contexts: Sequence[TxContext]) -> np.ndarray:
        """Scores 0-999 of a micro-batch of contexts (one numpy pass for all of them)."""
        if not contexts:
            return np.zeros(0, dtype=np.int64)
        risk, blocks, units = self.terminal_risk, self.feature_blocks, self.amount_units
        X = np.array(
            [feature_values(ctx, risk, blocks, units) for ctx in contexts], dtype=np.float64
        )
        return self.score_matrix(X)

    def _raw_row_numpy(self, values: Sequence[float]) -> float:
        return self._model.raw_one(np.array(values, dtype=np.float64))

    @property
    def explains(self) -> bool:
        """The artifact carries what explaining a score needs (written since 2026-11-27)."""
        return self._model.explains

    def explain(self, ctx: TxContext, top: int = 3) -> list[tuple[str, float]]:
        """The features that pushed this context's score up most, with what each added to the
        log-odds (largest first, positive only); [] for an artifact without what it needs."""
        values = feature_values(ctx, self.terminal_risk, self.feature_blocks, self.amount_units)
        added = self._model.contributions(np.array(values, dtype=np.float64))
        if added is None:
            return []
        names = feature_names(self.feature_set)
        order = np.argsort(-added, kind="stable")[:top]
        return [(names[i], float(added[i])) for i in order if added[i] > 0]

    def score_one(self, ctx: TxContext) -> int:
        """Score of one context: the low-latency path for a single request."""
        values = feature_values(ctx, self.terminal_risk, self.feature_blocks, self.amount_units)
        total = sum(values)  # NaN anywhere makes the sum NaN; cheaper than np.isnan(x).any()
        if total != total:  # cannot happen with our features; stay exact if it ever does
            return int(self.score_matrix(np.array(values, dtype=np.float64)[None, :])[0])
        raw = self._raw_row(values)  # generated trees (or numpy): same float as raw_one
        p = 1.0 / (1.0 + math.exp(-min(max(raw, -700.0), 700.0)))
        return min(int(p * 1000.0), MAX_SCORE)
