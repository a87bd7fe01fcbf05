"""Reading labelled journal exports (CSV or Parquet): the one reader for backtests and training.

A labelled file is ``authhost journal export`` (columns of ``store.records.JournalEntry``) plus
``label`` (1 = fraud) and optionally ``scenario``. Column types come from ``JournalEntry``, so
codes such as ``processing_code`` ``000000`` or ``mcc`` ``0742`` stay text instead of being
guessed as numbers. Rows come back sorted by ``ts`` (stable), ready to replay in time order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
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


class DatasetError(ValueError):
    """A labelled file that cannot be used; the message names the file and what is wrong."""


def read_labelled(
    path: str | Path,
    *,
    required: Sequence[str] = ("ts", "label"),
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The rows of a labelled CSV or Parquet file, typed and sorted by ``ts``.

    ``columns`` keeps only those (when present); a missing ``label`` value counts as genuine.
    """
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
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DatasetError(
            f"{file}: missing column(s) {', '.join(missing)}: expected a journal export plus label"
        )
    if columns is not None:
        table = table.select([c for c in columns if c in table.column_names])
    try:
        table = table.cast(
            pa.schema([pa.field(n, COLUMN_TYPES.get(n, pa.string())) for n in table.column_names])
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DatasetError(f"{file}: a column has the wrong type: {exc}") from None
    if table.column("ts").null_count:
        raise DatasetError(f"{file}: some rows have no ts")
    if "label" in table.column_names:
        label = pc.fill_null(table.column("label"), 0)
        table = table.set_column(table.column_names.index("label"), "label", label)
    return table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))


def iter_rows(table: pa.Table, batch_rows: int = 50_000) -> Iterator[dict[str, object]]:
    """Rows as dicts, one batch converted at a time (column-wise: faster than to_pylist), so
    a million rows never live as dicts at once."""
    names = table.column_names
    for batch in table.to_batches(max_chunksize=batch_rows):
        columns = [column.to_pylist() for column in batch.columns]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))
