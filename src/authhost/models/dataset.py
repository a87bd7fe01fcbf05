"""Labelled training data: a journal export (CSV or Parquet) plus ``label``, replayed into features.

Rows are read with pyarrow using the column types of ``store.records.JournalEntry`` (so codes
like ``mcc`` ``0742`` stay text), sorted by ``ts``, and replayed through
``context.replay_contexts``: every row's features are exactly what the server would have
computed when it arrived. Only requests the fraud step scores (authorisations and financial
requests) become training rows; advices and reversals still feed the velocity counters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from authhost.models.context import replay_contexts
from authhost.models.features import FEATURE_SET, feature_blocks, feature_names, feature_values
from authhost.store.labelled import DatasetError, iter_rows, read_labelled

__all__ = [
    "SCORED_CLASSES",
    "DatasetError",
    "LabelledSet",
    "file_sha256",
    "labelled_set",
    "load_labelled",
    "read_table",
]

SCORED_CLASSES = frozenset({"authorisation", "financial", ""})


@dataclass
class LabelledSet:
    """Training rows as arrays: features plus what splitting and evaluation need."""

    features: np.ndarray  # (n, features of the set) float64; terminal_risk is filled later
    ts: np.ndarray  # float64 epoch seconds
    card_ids: np.ndarray  # str
    terminals: np.ndarray  # str
    labels: np.ndarray  # int8, 1 = fraud
    scenarios: np.ndarray  # str

    def __len__(self) -> int:
        return len(self.ts)

    def subset(self, mask: np.ndarray) -> LabelledSet:
        return LabelledSet(
            self.features[mask],
            self.ts[mask],
            self.card_ids[mask],
            self.terminals[mask],
            self.labels[mask],
            self.scenarios[mask],
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
    """Replay rows (in ``ts`` order) and keep the scored ones with their features."""
    capacity = max(size_hint, 1024)
    width = len(feature_names(feature_set))
    blocks = feature_blocks(feature_set)
    features = np.empty((capacity, width), dtype=np.float64)
    ts: list[float] = []
    cards: list[str] = []
    terminals: list[str] = []
    labels: list[int] = []
    scenarios: list[str] = []
    n = 0
    for row, ctx in replay_contexts(rows):
        if str(row.get("message_class") or "") not in SCORED_CLASSES:
            continue
        if n == capacity:
            capacity *= 2
            features = np.resize(features, (capacity, width))
        features[n] = feature_values(ctx, blocks=blocks)
        ts.append(ctx.ts)
        cards.append(ctx.card_id)
        terminals.append(ctx.terminal)
        label = row.get("label") or 0
        labels.append(1 if int(label) else 0)  # type: ignore[call-overload]
        scenarios.append(str(row.get("scenario") or ""))
        n += 1
    return LabelledSet(
        features=features[:n].copy(),
        ts=np.array(ts, dtype=np.float64),
        card_ids=np.array(cards, dtype=str),
        terminals=np.array(terminals, dtype=str),
        labels=np.array(labels, dtype=np.int8),
        scenarios=np.array(scenarios, dtype=str),
    )


def load_labelled(path: str | Path, feature_set: str = FEATURE_SET) -> LabelledSet:
    """Read a labelled export and replay it into a ``LabelledSet`` of ``feature_set``."""
    table = read_table(path)
    return labelled_set(iter_rows(table), size_hint=table.num_rows, feature_set=feature_set)
