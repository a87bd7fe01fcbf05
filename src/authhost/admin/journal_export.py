"""Journal export for analysts: CSV or Parquet with exactly ``JOURNAL_COLUMNS``.

Rows stream from the store in journal order and are written in batches, so exporting months of
traffic needs memory for one batch only. The rules backtest and model training read this
format, so what production journalled is exactly what analysts replay.
"""

from __future__ import annotations

import csv
import dataclasses
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JOURNAL_COLUMNS, JournalEntry

FORMATS = ("csv", "parquet")
BATCH_ROWS = 10_000

_ARROW_TYPES = {float: pa.float64(), int: pa.int64(), str: pa.string(), bool: pa.bool_()}


def journal_schema() -> pa.Schema:
    hints = typing.get_type_hints(JournalEntry)
    return pa.schema(
        [(f.name, _ARROW_TYPES[hints[f.name]]) for f in dataclasses.fields(JournalEntry)]
    )


async def export_journal(store: CardStore, query: JournalQuery, fmt: str, out: Path) -> int:
    """Write every journal entry matching ``query`` to ``out``; return how many."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return await _export_csv(store, query, out)
    return await _export_parquet(store, query, out)


async def _export_csv(store: CardStore, query: JournalQuery, out: Path) -> int:
    count = 0
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=JOURNAL_COLUMNS)
        writer.writeheader()
        async for entry in store.export_journal(query):
            writer.writerow(entry.as_row())
            count += 1
    return count


async def _export_parquet(store: CardStore, query: JournalQuery, out: Path) -> int:
    schema = journal_schema()
    count = 0
    batch: list[dict[str, object]] = []
    with pq.ParquetWriter(out, schema) as writer:
        async for entry in store.export_journal(query):
            batch.append(entry.as_row())
            if len(batch) >= BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch.clear()
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count
