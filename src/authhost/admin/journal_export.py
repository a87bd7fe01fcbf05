"""Journal export for analysts: CSV or Parquet with exactly ``JOURNAL_COLUMNS``.

Rows stream from the store in journal order and are written in batches, so exporting months of
traffic needs memory for one batch only. The rules backtest and model training read this
format, so what production journalled is exactly what analysts replay.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JOURNAL_COLUMNS, JournalEntry

FORMATS = ("csv", "parquet")
BATCH_ROWS = 10_000
REPORT_PAGE = 10_000
LABEL = "label"  # the column training and backtests read: 1 = fraud

_ARROW_TYPES = {float: pa.float64(), int: pa.int64(), str: pa.string(), bool: pa.bool_()}


def journal_schema() -> pa.Schema:
    hints = typing.get_type_hints(JournalEntry)
    return pa.schema(
        [(f.name, _arrow_type(hints[f.name])) for f in dataclasses.fields(JournalEntry)]
    )


def _arrow_type(hint: object) -> pa.DataType:
    """The Arrow type of a field: ``int | None`` is a nullable int64 (Arrow columns are)."""
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return _ARROW_TYPES[kinds[0]]


async def export_journal(
    store: CardStore, query: JournalQuery, fmt: str, out: Path, *, labels: bool = False
) -> int:
    """Write every journal entry matching ``query`` to ``out``; return how many. With
    ``labels``, a ``label`` column: 1 for an entry the fraud reports say was fraud, else 0
    (what training and backtests read)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    fraud = await fraud_ids(store) if labels else None
    if fmt == "csv":
        return await _export_csv(store, query, out, fraud)
    return await _export_parquet(store, query, out, fraud)


async def fraud_ids(store: CardStore) -> set[int]:
    """The journal ids the fraud reports say were fraud (their latest report: an entry has one,
    listed once)."""
    return set(await fraud_entries(store))


async def fraud_entries(store: CardStore) -> dict[int, str]:
    """The journal ids the fraud reports say were fraud, each with its card: the one definition
    of a fraud label (an analyst's, the cardholder's, a fraud dispute's chargeback) that the
    labelled export, and so training and backtests, and the common point report read."""
    fraud: dict[int, str] = {}
    after = 0
    while page := await store.fraud_reports(after, REPORT_PAGE):
        fraud.update((r.journal_id, r.card_id) for r in page if r.fraud)
        after = page[-1].report_id
    return fraud


def _row(entry: JournalEntry, fraud: set[int] | None) -> dict[str, object]:
    row = entry.as_row()
    if fraud is not None:
        row[LABEL] = int(entry.journal_id in fraud)
    return row


def plain_os_error(exc: OSError, path: Path) -> OSError:
    """``exc`` as the OS says it (``path: Is a directory``), not in pyarrow's longer words."""
    if not exc.errno:
        return exc
    return type(exc)(exc.errno, os.strerror(exc.errno), str(path))


async def _export_csv(
    store: CardStore, query: JournalQuery, out: Path, fraud: set[int] | None
) -> int:
    count = 0
    columns = JOURNAL_COLUMNS if fraud is None else [*JOURNAL_COLUMNS, LABEL]
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        async for entry in store.export_journal(query):
            writer.writerow(_row(entry, fraud))
            count += 1
    return count


async def _export_parquet(
    store: CardStore, query: JournalQuery, out: Path, fraud: set[int] | None
) -> int:
    schema = journal_schema()
    if fraud is not None:
        schema = schema.append(pa.field(LABEL, pa.int8()))
    count = 0
    batch: list[dict[str, object]] = []
    try:
        parquet = pq.ParquetWriter(out, schema)
    except OSError as exc:  # pyarrow's words: "Failed to open local file 'x'. Detail: ..."
        raise plain_os_error(exc, out) from None
    with parquet as writer:
        async for entry in store.export_journal(query):
            batch.append(_row(entry, fraud))
            if len(batch) >= BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch.clear()
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count
