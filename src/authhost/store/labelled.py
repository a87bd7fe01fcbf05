"""Reading labelled journal exports (CSV or Parquet): the one reader for backtests and training.

A labelled file is ``authhost journal export`` (columns of ``store.records.JournalEntry``) plus
``label`` (1 = fraud) and optionally ``scenario``. Column types come from ``JournalEntry``, so
codes such as ``processing_code`` ``000000`` or ``mcc`` ``0742`` stay text instead of being
guessed as numbers. Rows come back sorted by ``ts`` (stable), ready to replay in time order.
"""

from __future__ import annotations

import csv
import dataclasses
import re
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


TS_END = 1e11  # epoch seconds (the year 5138), as the admin API's periods: beyond, milliseconds
LABELS = {"0": 0, "1": 1, "": None}  # 1 fraud, 0 or empty genuine (a CSV's text)
_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_CHECKED_AS_TEXT = ("ts", "label")  # a CSV's: read as text, each value checked with its line


def read_labelled(
    path: str | Path,
    *,
    required: Sequence[str] = ("ts", "label"),
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The rows of a labelled CSV or Parquet file, typed and sorted by ``ts``.

    ``columns`` keeps only those (when present); a missing ``label`` value counts as genuine.
    A ``ts`` that is not epoch seconds or a ``label`` that is not 0, 1 or empty is refused
    with the file, its line (a CSV's; a Parquet file's row) and the value: a timestamp read as
    something else would replay the rows out of order, a label 2 was taken for fraud.
    """
    file = Path(path)
    if not file.is_file():  # a folder given was "not found" too, though it was there
        what = "a folder, not a data file" if file.is_dir() else "data file not found"
        raise DatasetError(
            f"{file}: {what} (labelled data: authhost-sim traffic --out FILE, "
            "or authhost journal export --labels --format parquet --out FILE)"
        )
    csv_file = file.suffix.lower() not in (".parquet", ".pq")
    try:
        if not csv_file:
            table = pq.read_table(file)
        else:
            types = COLUMN_TYPES | {name: pa.string() for name in _CHECKED_AS_TEXT}
            convert = pacsv.ConvertOptions(
                column_types=types,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            )
            table = pacsv.read_csv(file, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        where = _csv_error_line(file, str(exc)) if csv_file else ""
        raise DatasetError(f"{file}{where}: cannot read: {exc}") from None
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DatasetError(
            f"{file}: missing column(s) {', '.join(missing)}: expected a journal export plus label"
        )
    if columns is not None:
        table = table.select([c for c in columns if c in table.column_names])
    checked = _Checked(file, csv_file)
    table = checked.ts(table)
    if "label" in table.column_names:
        table = checked.label(table)
    if "scenario" in table.column_names:
        checked.scenario(table)
    try:
        table = table.cast(
            pa.schema([pa.field(n, COLUMN_TYPES.get(n, pa.string())) for n in table.column_names])
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DatasetError(f"{file}: a column has the wrong type: {exc}") from None
    return table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))


class _Checked:
    """The checks of ``ts`` and ``label``, each refusing the first bad value with its line."""

    def __init__(self, file: Path, csv_file: bool) -> None:
        self.file = file
        self.csv_file = csv_file

    def fail(self, row: int, message: str) -> DatasetError:
        where = f":{_csv_line(self.file, row)}" if self.csv_file else f": row {row + 1}"
        return DatasetError(f"{self.file}{where}: {message}")

    def ts(self, table: pa.Table) -> pa.Table:
        column = table.column("ts")
        if pa.types.is_string(column.type):  # a CSV's: numbers only
            bad = pc.invert(pc.fill_null(pc.match_substring_regex(column, _NUMBER), False))
            first = _first(bad)
            if first is not None:
                value = column[first].as_py()
                what = "no ts" if not (value or "").strip() else f"ts {value!r} is not a number"
                raise self.fail(
                    first,
                    f"{what}: ts is epoch seconds as journal export writes them, e.g. 1764000000.5",
                )
            column = pc.cast(pc.utf8_trim_whitespace(column), pa.float64())
        elif not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise DatasetError(
                f"{self.file}: ts is a {column.type} column: it must hold epoch seconds (numbers)"
            )
        column = pc.cast(column, pa.float64())
        first = _first(pc.is_null(column, nan_is_null=True))
        if first is not None:
            raise self.fail(
                first, "no ts: ts is epoch seconds as journal export writes them, e.g. 1764000000.5"
            )
        outside = pc.or_(pc.less(column, 0.0), pc.greater_equal(column, TS_END))
        first = _first(outside)
        if first is not None:
            value = column[first].as_py()
            hint = " (milliseconds? give seconds)" if value >= TS_END else ""
            raise self.fail(
                first, f"ts {value!r} is not epoch seconds from 0 to {TS_END:,.0f}{hint}"
            )
        return table.set_column(table.column_names.index("ts"), "ts", column)

    def label(self, table: pa.Table) -> pa.Table:
        column = table.column("label")
        if pa.types.is_string(column.type):
            text = pc.utf8_trim_whitespace(column)
            first = _first(pc.invert(pc.is_in(text, pa.array(list(LABELS)))))
            if first is not None:
                raise self.fail(first, _label_error(column[first].as_py()))
            numbers = pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa.int64())
        elif (
            pa.types.is_boolean(column.type)
            or pa.types.is_integer(column.type)
            or (pa.types.is_floating(column.type))
        ):
            values = pc.cast(column, pa.float64())
            valid = pc.or_(pc.is_in(values, pa.array([0.0, 1.0])), pc.is_null(values))
            first = _first(pc.invert(valid))
            if first is not None:
                raise self.fail(first, _label_error(column[first].as_py()))
            numbers = pc.cast(values, pa.int64())
        else:
            raise DatasetError(f"{self.file}: label is a {column.type} column: it must be 0 or 1")
        return table.set_column(
            table.column_names.index("label"), "label", pc.fill_null(numbers, 0)
        )

    def scenario(self, table: pa.Table) -> None:
        """A scenario name is printed in reports and on analysts' terminals: a control
        character (an escape sequence, a new line) in it would act there."""
        column = table.column("scenario")
        if not pa.types.is_string(column.type):
            return
        first = _first(pc.fill_null(pc.match_substring_regex(column, _CONTROL), False))
        if first is not None:
            raise self.fail(first, f"scenario {column[first].as_py()!r} holds a control character")


# C0 and C1 control characters and DEL
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"


def _label_error(value: object) -> str:
    return f"label {value!r} is not 0 or 1 (1 = fraud; 0 or empty = genuine)"


def _first(mask: pa.ChunkedArray) -> int | None:
    """The index of the first true value, or None."""
    found = pc.index(pc.fill_null(mask, True), True).as_py()
    return None if found < 0 else found


def _csv_line(file: Path, row: int) -> int:
    """The line a CSV's data row (0-based) starts on: a quoted value may span lines."""
    with file.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        line = 0
        for index, _record in enumerate(reader):
            if index == row + 1:  # (the header is record 0)
                return line + 1
            line = reader.line_num
    return line + 1


def _csv_error_line(file: Path, message: str) -> str:
    """``:N`` (the line) for pyarrow's 'In CSV column #C: ... invalid value 'V'', or ''."""
    found = re.search(r"column #(\d+):.*invalid value '(.*)'", message)
    if found is None:
        return ""
    column, value = int(found.group(1)), found.group(2)
    with file.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        line = 0
        for index, record in enumerate(reader):
            if index and len(record) > column and record[column] == value:
                return f":{line + 1}"
            line = reader.line_num
    return ""


def iter_rows(table: pa.Table, batch_rows: int = 50_000) -> Iterator[dict[str, object]]:
    """Rows as dicts, one batch converted at a time (column-wise: faster than to_pylist), so
    a million rows never live as dicts at once."""
    names = table.column_names
    for batch in table.to_batches(max_chunksize=batch_rows):
        columns = [column.to_pylist() for column in batch.columns]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))
