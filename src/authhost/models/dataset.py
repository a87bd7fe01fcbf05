"""Labelled training data: a journal export (CSV or Parquet) plus ``label``, replayed into features.

Rows are read with pyarrow using the column types of ``store.records.JournalEntry`` (so codes
like ``mcc`` ``0742`` stay text), sorted by ``ts``, and replayed through
``context.replay_contexts``: every row's features are exactly what the server would have
computed when it arrived. Only requests the server's fraud step scores become training rows
(``models.scored``: authorisations and financial requests not declined before the fraud
step); advices, reversals and the requests declined earlier still feed the velocity counters,
as they do online, and the declined ones are counted in ``LabelledSet.excluded`` so that a
report can say what was left out.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from authhost.models.context import replay_contexts
from authhost.models.features import FEATURE_SET, feature_blocks, feature_names, feature_values
from authhost.models.scored import SCORED_CLASSES, row_declined_before_fraud
from authhost.models.segments import SEGMENTS
from authhost.store.labelled import DatasetError, iter_rows, read_labelled

__all__ = [
    "SCORED_CLASSES",
    "DatasetError",
    "Excluded",
    "LabelledSet",
    "file_sha256",
    "labelled_set",
    "load_labelled",
    "read_table",
]


@dataclass
class Excluded:
    """The rows of scored message classes left out because a step before the fraud step
    declined them (``models.scored``): never scored online, so neither trained nor evaluated
    on, only counted."""

    ts: np.ndarray  # float64 epoch seconds
    labels: np.ndarray  # int8, 1 = fraud
    scenarios: np.ndarray  # str
    steps: np.ndarray  # str: the step that declined (scored.STEP_PREFIXES, or "server")

    @classmethod
    def empty(cls) -> Excluded:
        return cls(
            np.empty(0, dtype=np.float64),
            np.empty(0, dtype=np.int8),
            np.empty(0, dtype=str),
            np.empty(0, dtype=str),
        )

    def __len__(self) -> int:
        return len(self.ts)

    def subset(self, mask: np.ndarray) -> Excluded:
        return Excluded(self.ts[mask], self.labels[mask], self.scenarios[mask], self.steps[mask])

    def summary(self) -> dict[str, object]:
        """Plain JSON: how many rows and frauds were left out, by step and fraud scenario."""
        fraud = self.labels == 1
        return {
            "excluded_before_fraud_step": len(self),
            "excluded_frauds": int(fraud.sum()),
            "excluded_by_step": dict(sorted(Counter(self.steps.tolist()).items())),
            "excluded_frauds_by_scenario": frauds_by_scenario(self.labels, self.scenarios),
        }


def frauds_by_scenario(labels: np.ndarray, scenarios: np.ndarray) -> dict[str, int]:
    """Fraud rows per scenario name ("unnamed" for none), sorted by name."""
    names = scenarios[labels == 1].tolist()
    return {str(name) or "unnamed": n for name, n in sorted(Counter(names).items())}


@dataclass
class LabelledSet:
    """Training rows as arrays: features plus what splitting and evaluation need."""

    features: np.ndarray  # (n, features of the set) float64; terminal_risk is filled later
    ts: np.ndarray  # float64 epoch seconds
    card_ids: np.ndarray  # str
    terminals: np.ndarray  # str
    labels: np.ndarray  # int8, 1 = fraud
    scenarios: np.ndarray  # str
    # the rows declined before the fraud step, left out (counted, not trained or evaluated on)
    excluded: Excluded = field(default_factory=Excluded.empty)
    # each row's segment of each kind (models.segments; object arrays of shared strings),
    # what the artifact's drift reference is kept by
    segments: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts)

    def subset(self, mask: np.ndarray, excluded: np.ndarray | None = None) -> LabelledSet:
        """The rows of ``mask``, with the left-out rows of ``excluded`` (none when not given)."""
        return LabelledSet(
            self.features[mask],
            self.ts[mask],
            self.card_ids[mask],
            self.terminals[mask],
            self.labels[mask],
            self.scenarios[mask],
            self.excluded.subset(excluded) if excluded is not None else Excluded.empty(),
            {kind: keys[mask] for kind, keys in self.segments.items()},
        )


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: str | Path) -> pa.Table:
    """The rows of a labelled CSV or Parquet file, typed and sorted by ``ts`` (stable)."""
    return read_labelled(path, required=("ts", "label", "card_id"))


def labelled_set(
    rows: Iterable[Mapping[str, object]], size_hint: int = 0, feature_set: str = FEATURE_SET
) -> LabelledSet:
    """Replay rows (in ``ts`` order) and keep the ones the fraud step scores
    (``models.scored``) with their features; count the ones declined before it."""
    capacity = max(size_hint, 1024)
    width = len(feature_names(feature_set))
    blocks = feature_blocks(feature_set)
    features = np.empty((capacity, width), dtype=np.float64)
    ts: list[float] = []
    cards: list[str] = []
    terminals: list[str] = []
    labels: list[int] = []
    scenarios: list[str] = []
    left_out: list[tuple[float, int, str, str]] = []  # ts, label, scenario, step
    segments: dict[str, list[str]] = {kind: [] for kind in SEGMENTS}
    segment_of = tuple((SEGMENTS[kind], keys) for kind, keys in segments.items())
    n = 0
    for row, ctx in replay_contexts(rows):
        if str(row.get("message_class") or "") not in SCORED_CLASSES:
            continue
        step = row_declined_before_fraud(row)
        if step is not None:
            left_out.append((ctx.ts, _label(row), str(row.get("scenario") or ""), step))
            continue
        if n == capacity:
            capacity *= 2
            features = np.resize(features, (capacity, width))
        features[n] = feature_values(ctx, blocks=blocks)
        ts.append(ctx.ts)
        cards.append(ctx.card_id)
        terminals.append(ctx.terminal)
        labels.append(_label(row))
        scenarios.append(str(row.get("scenario") or ""))
        for segment, keys in segment_of:
            keys.append(segment(ctx))
        n += 1
    return LabelledSet(
        features=features[:n].copy(),
        ts=np.array(ts, dtype=np.float64),
        card_ids=np.array(cards, dtype=str),
        terminals=np.array(terminals, dtype=str),
        labels=np.array(labels, dtype=np.int8),
        scenarios=np.array(scenarios, dtype=str),
        excluded=_excluded(left_out),
        segments={kind: _objects(keys) for kind, keys in segments.items()},
    )


def _objects(values: list[str]) -> np.ndarray:
    """A list as an object array (its strings shared, not copied into fixed-width ones)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _label(row: Mapping[str, object]) -> int:
    label = row.get("label") or 0
    return 1 if int(label) else 0  # type: ignore[call-overload]


def _excluded(rows: list[tuple[float, int, str, str]]) -> Excluded:
    if not rows:
        return Excluded.empty()
    ts, labels, scenarios, steps = zip(*rows, strict=True)
    return Excluded(
        np.array(ts, dtype=np.float64),
        np.array(labels, dtype=np.int8),
        np.array(scenarios, dtype=str),
        np.array(steps, dtype=str),
    )


def load_labelled(path: str | Path, feature_set: str = FEATURE_SET) -> LabelledSet:
    """Read a labelled export and replay it into a ``LabelledSet`` of ``feature_set``."""
    table = read_table(path)
    return labelled_set(iter_rows(table), size_hint=table.num_rows, feature_set=feature_set)
