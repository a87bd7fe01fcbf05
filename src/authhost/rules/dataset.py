"""Reading labelled journal exports (CSV or Parquet) for backtests, with pyarrow, in time order.

Column types come from ``store.records.JournalEntry``, so codes such as ``processing_code``
``000000`` or ``mcc`` ``0742`` stay text instead of being guessed as numbers. Only the
columns the replay and the report read are loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from authhost.store.records import JournalEntry

_ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}
COLUMN_TYPES: dict[str, pa.DataType] = {
    f.name: _ARROW_TYPES.get(str(f.type), pa.string()) for f in dataclasses.fields(JournalEntry)
} | {"label": pa.int64(), "scenario": pa.string()}

# what replay_contexts, the velocity events and the report read
USED_COLUMNS = (
    "ts",
    "message_class",
    "response_code",
    "card_id",
    "pan_masked",
    "pan_index",
    "product_id",
    "processing_code",
    "amount_minor",
    "currency",
    "mcc",
    "country",
    "channel",
    "pos_entry_mode",
    "terminal_id",
    "merchant_id",
    "acquirer_id",
    "fraud_score",
    "pin_present",
    "pin_failed",
    "cvv_failed",
    "home_country",
    "card_age_days",
    "available_before",
    "label",
    "scenario",
)


class DatasetError(ValueError):
    """A data file that cannot be backtested; the message says what is wrong."""


def read_labelled(path: str | Path) -> pa.Table:
    """The labelled rows of a CSV or Parquet file, typed, sorted by ``ts`` (stable)."""
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
    missing = [c for c in ("ts", "label") if c not in table.column_names]
    if missing:
        raise DatasetError(
            f"{file}: missing column(s) {', '.join(missing)} (journal export + label)"
        )
    table = table.select([c for c in USED_COLUMNS if c in table.column_names])
    try:
        table = table.cast(
            pa.schema([pa.field(n, COLUMN_TYPES.get(n, pa.string())) for n in table.column_names])
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DatasetError(f"{file}: a column has the wrong type: {exc}") from None
    if table.column("ts").null_count:
        raise DatasetError(f"{file}: some rows have no ts")
    label = pc.fill_null(table.column("label"), 0)
    table = table.set_column(table.column_names.index("label"), "label", label)
    return table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))


def iter_rows(table: pa.Table, batch_rows: int = 50_000) -> Iterator[dict[str, object]]:
    """Rows as dicts, one batch converted at a time (column-wise: faster than to_pylist)."""
    names = table.column_names
    for batch in table.to_batches(max_chunksize=batch_rows):
        columns = [column.to_pylist() for column in batch.columns]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))
