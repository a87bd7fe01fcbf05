"""Labelled training data: a journal export (CSV or Parquet) plus ``label``, replayed into features.

Rows are read with pyarrow using the column types of ``store.records.JournalEntry`` (so codes
like ``mcc`` ``0742`` stay text), sorted by ``ts``, and replayed through
``context.replay_contexts``: every row's features are exactly what the server would have
computed when it arrived. Only requests the fraud step scores (authorisations and financial
requests) become training rows; advices and reversals still feed the velocity counters.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from authhost.models.context import replay_contexts
from authhost.models.features import N_FEATURES, feature_values
from authhost.store.records import JournalEntry

SCORED_CLASSES = frozenset({"authorisation", "financial", ""})
_ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}
COLUMN_TYPES: dict[str, pa.DataType] = {
    f.name: _ARROW_TYPES.get(str(f.type), pa.string()) for f in dataclasses.fields(JournalEntry)
} | {"label": pa.int64(), "scenario": pa.string()}


class DatasetError(ValueError):
    """A data file that cannot be used for training; the message says what is wrong."""


@dataclass
class LabelledSet:
    """Training rows as arrays: features plus what splitting and evaluation need."""

    features: np.ndarray  # (n, N_FEATURES) float64; terminal_risk column is filled later
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
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"{file}: data file not found")
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            table = pq.read_table(file)
        else:
            convert = pacsv.ConvertOptions(
                column_types=COLUMN_TYPES,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            )
            table = pacsv.read_csv(file, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(f"{file}: cannot read: {exc}") from None
    missing = [c for c in ("ts", "label", "card_id") if c not in table.column_names]
    if missing:
        raise DatasetError(
            f"{file}: missing column(s) {', '.join(missing)}: expected a journal export plus label"
        )
    try:
        table = table.cast(
            pa.schema([pa.field(n, COLUMN_TYPES.get(n, pa.string())) for n in table.column_names])
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DatasetError(f"{file}: a column has the wrong type: {exc}") from None
    if table.column("ts").null_count:
        raise DatasetError(f"{file}: some rows have no ts")
    return table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))


def iter_rows(table: pa.Table, batch_rows: int = 20_000) -> Iterator[dict[str, object]]:
    """Rows as dicts, one batch converted at a time (a million rows never live as dicts)."""
    for batch in table.to_batches(max_chunksize=batch_rows):
        yield from batch.to_pylist()


def labelled_set(rows: Iterable[Mapping[str, object]], size_hint: int = 0) -> LabelledSet:
    """Replay rows (in ``ts`` order) and keep the scored ones with their features."""
    capacity = max(size_hint, 1024)
    features = np.empty((capacity, N_FEATURES), dtype=np.float64)
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
            features = np.resize(features, (capacity, N_FEATURES))
        features[n] = feature_values(ctx)
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


def load_labelled(path: str | Path) -> LabelledSet:
    """Read a labelled export and replay it into a ``LabelledSet``."""
    table = read_table(path)
    return labelled_set(iter_rows(table), size_hint=table.num_rows)
