"""Is the model still seeing the traffic it was trained on? Reference distributions, binning
and the Population Stability Index (model risk management's ongoing monitoring, SR 11-7).

A ``Reference`` holds, for each feature of a model and for its score, how the rows it was
judged on fell into bins: the deciles of those rows (distinct edges; bin ``i`` holds
``edges[i-1] < x <= edges[i]``), or, for a quantity taking at most ``VALUE_BINS_MAX`` whole
values (a flag, a one-hot, the MCC risk group, a small count), one bin per value and a last
bin for any value never seen there; and, in a reference built since 2026-11-29, one more bin
for a missing value (NaN, or the value a feature takes when its input is unknown), its share
kept beside the others in JSON so that an older authhost still reads the artifact. Training
stores one in the artifact (``model.json`` ``reference``), with one of each segment of the
rows (``models.segments``: the channel, the product...); a period of the journal can be one
too (``build_reference``).

A ``DriftTally`` counts live rows into the reference's bins, chunk by chunk, so a period of
any length needs memory for the counts only; ``drift_report`` turns the counts into each
feature's and the score's PSI, ``sum((a - e) * ln(a / e))`` over the bins, with the live
(``a``) and reference (``e``) shares floored at ``PSI_FLOOR`` so that an empty bin counts as
rare, not as infinitely surprising.

Pure: numpy only, no store, no trio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REFERENCE_VERSION = 1
DECILES = tuple(q / 10 for q in range(1, 10))
VALUE_BINS_MAX = 10  # whole-number quantities with at most this many values: a bin each
PSI_FLOOR = 1e-4  # an empty bin's share, in the sum (0.01%)
TOP_BINS = 3  # the bins that moved most, shown per feature
WATCH = 0.10  # the usual industry thresholds: below stable, from here watch,
ACT = 0.25  # above this act
MISSING_LABEL = "missing"  # the bin of a missing value (NaN, or the feature's unknown value)
SEGMENT_ROWS_MIN = 100  # a segment with fewer reference rows keeps no reference of its own
SEGMENT_VALUES_MAX = 50  # the largest segments of a kind (products...) that keep one


class ReferenceError(ValueError):
    """A reference distribution that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class Binning:
    """How one quantity is cut into bins: by value (``by_value``: one bin per value of
    ``cuts`` and a last one for any other), or at the increasing edges ``cuts``; with
    ``missing``, one more bin after those for a missing value: NaN, or ``unknown`` (the value
    a feature takes when its input is not known, ``features.MISSING_VALUES``). Without it (a
    reference written before missing values had a bin) NaN falls in the top or ``other`` bin
    and ``unknown`` where its value does, as they always did."""

    by_value: bool
    cuts: np.ndarray  # float64, strictly increasing
    missing: bool = False
    unknown: float | None = None  # only with ``missing``

    @property
    def bins(self) -> int:
        return len(self.cuts) + 1 + self.missing

    def is_missing(self, x: np.ndarray) -> np.ndarray:
        """Which values of ``x`` are missing (none without a missing bin)."""
        if not self.missing:
            return np.zeros(len(x), dtype=bool)
        gone = np.isnan(x)
        return gone if self.unknown is None else gone | (x == self.unknown)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """The bin of each value of ``x``."""
        index = np.searchsorted(self.cuts, x, side="left")
        if self.by_value:
            found = index < len(self.cuts)
            found[found] = self.cuts[index[found]] == x[found]
            index = np.where(found, index, len(self.cuts))
        if self.missing:
            index = np.where(self.is_missing(x), self.bins - 1, index)
        return index

    def counts(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.assign(x), minlength=self.bins).astype(np.int64)

    def label(self, i: int) -> str:
        """A bin as an analyst reads it: ``= 1``, ``other``, ``<= 0.693``, ``(0.693, 1.39]``."""
        cuts = self.cuts
        if self.missing and i == self.bins - 1:
            return MISSING_LABEL
        if self.by_value:
            return f"= {cuts[i]:.6g}" if i < len(cuts) else "other"
        if not len(cuts):
            return "all"
        if i == 0:
            return f"<= {cuts[0]:.4g}"
        if i == len(cuts):
            return f"> {cuts[-1]:.4g}"
        return f"({cuts[i - 1]:.4g}, {cuts[i]:.4g}]"


def binning_of(
    values: np.ndarray, *, missing: bool = False, unknown: float | None = None
) -> Binning:
    """The bins of a reference sample: by value for at most ``VALUE_BINS_MAX`` whole values,
    else at its deciles (distinct edges), of the values not missing; and with ``missing`` a
    bin for those (NaN, and ``unknown``)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x) & ~Binning(False, np.zeros(0), missing, unknown).is_missing(x)]
    distinct = np.unique(x)
    if len(distinct) <= VALUE_BINS_MAX and np.all(distinct == np.round(distinct)):
        return Binning(True, distinct, missing, unknown)
    if not len(x):
        return Binning(False, np.zeros(0), missing, unknown)
    return Binning(False, np.unique(np.quantile(x, DECILES)), missing, unknown)


@dataclass(frozen=True)
class Distribution:
    """A quantity's reference bins and the share of the reference rows in each."""

    binning: Binning
    shares: np.ndarray  # float64, one per bin (the missing one last), summing to 1

    @property
    def missing_share(self) -> float | None:
        """The share of rows missing (None: no missing bin)."""
        return float(self.shares[-1]) if self.binning.missing else None

    def to_json(self) -> dict[str, Any]:
        """The bins and their shares as every reference has written them; the missing bin's
        share goes beside (``Reference.to_json``): the bins' shares are then of the rows not
        missing, and still add up to 1, so that an authhost from before missing bins reads
        the artifact (and ignores them)."""
        cuts = "values" if self.binning.by_value else "edges"
        shares = self.shares
        if self.binning.missing:
            present = float(shares[:-1].sum())
            shares = shares[:-1] / present if present > 0 else _uniform(len(shares) - 1)
        return {cuts: self.binning.cuts.tolist(), "shares": shares.tolist()}

    def with_missing(self, share: float, unknown: float | None) -> Distribution:
        """This distribution (of the rows not missing) with a missing bin of ``share``."""
        binning = Binning(self.binning.by_value, self.binning.cuts, True, unknown)
        return Distribution(binning, np.append(self.shares * (1.0 - share), share))

    @classmethod
    def from_json(cls, data: Any, what: str) -> Distribution:
        """A checked distribution (without a missing bin: ``with_missing`` adds it);
        ``ReferenceError`` naming ``what`` otherwise."""
        if not isinstance(data, dict) or set(data) not in ({"values", "shares"},
                                                           {"edges", "shares"}):  # fmt: skip
            raise ReferenceError(f"{what}: expected 'edges' or 'values', and 'shares'")
        by_value = "values" in data
        cuts = _numbers(data["values" if by_value else "edges"], what)
        shares = _numbers(data["shares"], what)
        if len(cuts) > 1 and not np.all(np.diff(cuts) > 0):
            raise ReferenceError(f"{what}: bin edges or values must be strictly increasing")
        if len(shares) != len(cuts) + 1:
            raise ReferenceError(f"{what}: {len(cuts) + 1} bins but {len(shares)} shares")
        if np.any(shares < 0) or abs(float(shares.sum()) - 1.0) > 1e-6:
            raise ReferenceError(f"{what}: shares must be 0 or more and add up to 1")
        return cls(Binning(by_value, cuts), shares)


def distribution_of(
    values: np.ndarray, *, missing: bool = False, unknown: float | None = None
) -> Distribution:
    """The reference distribution of a sample (at least one row), with a missing bin (NaN
    and ``unknown``) when ``missing``."""
    x = np.asarray(values, dtype=np.float64)
    binning = binning_of(x, missing=missing, unknown=unknown)
    counts = binning.counts(x)
    return Distribution(binning, counts / max(int(counts.sum()), 1))


def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def _numbers(value: Any, what: str) -> np.ndarray:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ReferenceError(f"{what}: expected a list of finite numbers")
    return np.array(value, dtype=np.float64)


@dataclass(frozen=True)
class Reference:
    """Each feature's and the score's reference distribution, and where they come from; and
    the same of each segment of the rows (``models.segments``: a channel, a product...),
    those with ``SEGMENT_ROWS_MIN`` rows or more, by kind and segment."""

    features: Mapping[str, Distribution]  # in the model's feature order
    score: Distribution | None  # None: no scored rows in the reference
    rows: int
    source: str  # "held-out days 2026-03-18..2026-03-31", "journal 2026-...Z..2026-...Z"
    segments: Mapping[str, Mapping[str, Reference]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON. The missing bins' shares (``missing``, and the value that reads as
        missing, ``missing_values``) and the segments (``segments``) are keys of their own,
        which an authhost from before them ignores."""
        data: dict[str, Any] = {
            "version": REFERENCE_VERSION,
            "rows": self.rows,
            "source": self.source,
            "features": {name: d.to_json() for name, d in self.features.items()},
            "score": None if self.score is None else self.score.to_json(),
        }
        missing = {n: d.missing_share for n, d in self.features.items() if d.binning.missing}
        if missing:
            data["missing"] = missing
            unknown = {
                n: d.binning.unknown
                for n, d in self.features.items()
                if d.binning.unknown is not None
            }
            if unknown:
                data["missing_values"] = unknown
        if self.segments:
            data["segments"] = {
                kind: {name: r.to_json() for name, r in refs.items()}
                for kind, refs in self.segments.items()
            }
        return data

    @classmethod
    def from_json(cls, data: Any, names: Sequence[str], *, nested: bool = True) -> Reference:
        """A checked reference of the features ``names`` (``ReferenceError`` otherwise)."""
        if not isinstance(data, dict) or data.get("version") != REFERENCE_VERSION:
            raise ReferenceError(f"reference: expected version {REFERENCE_VERSION}")
        rows, source = data.get("rows"), data.get("source", "")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise ReferenceError("reference: 'rows' must be a count of 1 or more")
        if not isinstance(source, str):
            raise ReferenceError("reference: 'source' must be a text")
        features = data.get("features")
        if not isinstance(features, dict) or set(features) != set(names):
            raise ReferenceError("reference: 'features' must name each of the model's features")
        missing = _by_feature(data.get("missing", {}), names, "missing", share=True)
        unknown = _by_feature(data.get("missing_values", {}), missing, "missing_values")
        distributions = {}
        for n in names:
            d = Distribution.from_json(features[n], f"reference of {n}")
            distributions[n] = d if n not in missing else d.with_missing(missing[n], unknown.get(n))
        score = data.get("score")
        return cls(
            distributions,
            None if score is None else Distribution.from_json(score, "reference of the score"),
            rows,
            source,
            _segments_from_json(data.get("segments", {}), names) if nested else {},
        )


def _by_feature(
    value: Any, names: Iterable[str], what: str, *, share: bool = False
) -> dict[str, float]:
    known = set(names)
    if not isinstance(value, dict) or not set(value) <= known:
        raise ReferenceError(f"reference: {what!r} must map features of the model to numbers")
    numbers = _numbers(list(value.values()), f"reference: {what!r}")
    if share and (np.any(numbers < 0) or np.any(numbers > 1)):
        raise ReferenceError(f"reference: {what!r} shares must be from 0 to 1")
    return dict(zip(value, numbers.tolist(), strict=True))


def _segments_from_json(value: Any, names: Sequence[str]) -> dict[str, dict[str, Reference]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ReferenceError("reference: 'segments' must map each kind to its segments")
    out: dict[str, dict[str, Reference]] = {}
    for kind, refs in value.items():
        out[kind] = {}
        for name, data in refs.items():
            try:
                out[kind][name] = Reference.from_json(data, names, nested=False)
            except ReferenceError as exc:
                raise ReferenceError(f"segment {kind} {name!r}: {exc}") from None
    return out


def build_reference(
    matrix: np.ndarray,
    names: Sequence[str],
    scores: np.ndarray,
    source: str,
    *,
    unknown: Mapping[str, float] | None = None,
    segments: Mapping[str, np.ndarray] | None = None,
) -> Reference:
    """The reference of a feature matrix (rows x ``names``) and the rows' scores (0-999, one
    a row, negative for a row without; or none at all). Each feature gets a missing bin (NaN,
    and its value in ``unknown``). ``segments`` gives each kind's segment of each row: those
    of ``SEGMENT_ROWS_MIN`` rows or more, the ``SEGMENT_VALUES_MAX`` largest, get their own
    reference (their own deciles)."""
    if matrix.ndim != 2 or matrix.shape[1] != len(names) or not len(matrix):
        raise ReferenceError("a reference needs a matrix of one or more rows, a column a feature")
    scores = np.asarray(scores, dtype=np.int64)
    if len(scores) not in (0, len(matrix)):
        raise ReferenceError("a reference needs a score for each row (negative: none), or none")
    unknown = unknown or {}
    features = {
        name: distribution_of(matrix[:, j], missing=True, unknown=unknown.get(name))
        for j, name in enumerate(names)
    }
    scored = scores[scores >= 0]
    score = distribution_of(scored) if len(scored) else None
    by_kind: dict[str, dict[str, Reference]] = {}
    for kind, keys in (segments or {}).items():
        keys = np.asarray(keys, dtype=object)
        values, counts = np.unique(keys, return_counts=True)
        kept = [
            str(values[i])
            for i in np.argsort(-counts, kind="stable")[:SEGMENT_VALUES_MAX]
            if counts[i] >= SEGMENT_ROWS_MIN
        ]
        by_kind[kind] = {
            value: build_reference(
                matrix[keys == value],
                names,
                scores[keys == value] if len(scores) else scores,
                f"{source}, {kind} {value}",
                unknown=unknown,
            )
            for value in sorted(kept)
        }
    return Reference(features, score, len(matrix), source, by_kind)


def psi(actual: np.ndarray, expected: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population Stability Index of live shares ``actual`` against reference ``expected``
    (same bins): ``sum((a - e) * ln(a / e))``, each share floored at ``floor``."""
    return float(psi_terms(actual, expected, floor).sum())


def psi_terms(actual: np.ndarray, expected: np.ndarray, floor: float = PSI_FLOOR) -> np.ndarray:
    """Each bin's part of the PSI (never negative)."""
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    return (a - e) * np.log(a / e)


@dataclass(frozen=True)
class Thresholds:
    """PSI below ``watch`` is stable, from ``watch`` to ``act`` watch, above ``act`` act."""

    watch: float = WATCH
    act: float = ACT

    def __post_init__(self) -> None:
        if not (0 < self.watch < self.act and math.isfinite(self.act)):
            raise ReferenceError(
                f"the thresholds must be 0 < watch < act, got watch {self.watch} and act {self.act}"
            )

    def status(self, value: float) -> str:
        if value > self.act:
            return "act"
        return "watch" if value >= self.watch else "stable"


class DriftTally:
    """Live rows counted into a reference's bins, a chunk at a time."""

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self._features = list(reference.features.values())
        self.counts = [np.zeros(d.binning.bins, dtype=np.int64) for d in self._features]
        score = reference.score
        self.score_counts = np.zeros(score.binning.bins if score else 1, dtype=np.int64)
        self.rows = 0
        self.score_rows = 0

    def add_rows(self, matrix: np.ndarray) -> None:
        """Count a chunk of feature vectors (rows x the reference's features)."""
        if not len(matrix):
            return
        for j, distribution in enumerate(self._features):
            self.counts[j] += distribution.binning.counts(matrix[:, j])
        self.rows += len(matrix)

    def add_scores(self, scores: np.ndarray) -> None:
        score = self.reference.score
        if score is None or not len(scores):
            return
        self.score_counts += score.binning.counts(np.asarray(scores, dtype=np.float64))
        self.score_rows += len(scores)


def _moved(
    distribution: Distribution, counts: np.ndarray, thresholds: Thresholds
) -> dict[str, Any]:
    live = counts / max(int(counts.sum()), 1)
    terms = psi_terms(live, distribution.shares)
    value = float(terms.sum())
    top = np.argsort(-terms, kind="stable")[:TOP_BINS]
    return {
        "psi": round(value, 4),
        "status": thresholds.status(value),
        "bins": [
            {
                "bin": distribution.binning.label(int(i)),
                "live": round(float(live[i]), 4),
                "reference": round(float(distribution.shares[i]), 4),
            }
            for i in top
            if terms[i] > 0
        ],
    }


def drift_report(tally: DriftTally, thresholds: Thresholds) -> dict[str, Any]:
    """Each feature's PSI, status and the bins that moved most (most drifted first), and the
    score's (None without live or reference scores)."""
    reference = tally.reference
    features = [
        {"feature": name, **_moved(d, counts, thresholds)}
        for (name, d), counts in zip(reference.features.items(), tally.counts, strict=True)
    ]
    features.sort(key=lambda f: -f["psi"])
    score = None
    if reference.score is not None and tally.score_rows:
        score = _moved(reference.score, tally.score_counts, thresholds)
    statuses = [f["status"] for f in features]
    return {
        "thresholds": {"watch": thresholds.watch, "act": thresholds.act},
        "rows": tally.rows,
        "score_rows": tally.score_rows,
        "reference_rows": reference.rows,
        "reference_source": reference.source,
        "score": score,
        "summary": {s: statuses.count(s) for s in ("act", "watch", "stable")},
        "features": features,
    }
