"""An operator's CSV file, row by row: bulk card issuance, the bank's nightly ledger balances,
the acquirers' representments of disputes.

A file that cannot be used as a whole (unreadable, empty, a missing or unknown column) is
refused before anything is done; a bad row (not CSV, the wrong number of cells, a value the
request refuses) is reported with its line number and the other rows go on. Rows run a few
at a time so the store can write them together (SQLite group commit, Redis pipelining), and
results come back in line order.
"""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import anyio


class CsvFileError(ValueError):
    """The file as a whole cannot be read (missing, not CSV, wrong header): nothing done."""


@dataclass(frozen=True, slots=True)
class CsvColumns:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # line number in the file where the row starts (header is line 1)
    values: dict[str, str]  # the non-empty cells by column, stripped
    error: str = ""  # why the row cannot be read ("" when it can)


class LineResult(Protocol):
    line: int


Result = TypeVar("Result", bound=LineResult)


# what a spreadsheet opening a CSV file takes for a formula at a cell's start (OWASP, "CSV
# injection"): a value from outside (an acquirer's RRN) must not run as one
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell of a CSV file written for people to open, with a ``'`` before a leading
    formula character so that a spreadsheet shows it as text; numbers and other text as
    they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def whole_cell(text: str) -> int | str:
    """A money or cursor cell as the integer it writes (an optional sign, ASCII digits, at
    most 30 of them); any other text as it is, which the request model refuses naming it
    ("100.00" was once read as 100 minor units, a hundredth of what was meant)."""
    digits = text.strip().removeprefix("-").removeprefix("+")
    if digits.isascii() and digits.isdigit() and len(digits) <= 30:
        return int(text)
    return text


def read_rows(path: Path, columns: CsvColumns) -> list[Row]:
    """All data rows with their line numbers; CsvFileError if the file is unusable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvFileError(f"{path}: cannot read the file ({exc})") from None
    return parse_rows(text, columns, str(path))


def parse_rows(text: str, columns: CsvColumns, where: str) -> list[Row]:
    """``read_rows`` for a file's text already read (an admin API body); ``where`` names it
    in the errors."""
    reader = csv.reader(text.removeprefix("\ufeff").splitlines(keepends=True))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CsvFileError(f"{where}: the file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise CsvFileError(f"{where}: line 1: {exc}") from None
    unknown = sorted(set(header) - set(columns.required) - set(columns.optional))
    missing = [c for c in columns.required if c not in header]
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        raise CsvFileError(f"{where}: line 1: {'; '.join(problems)}")
    return list(_rows(reader, header))


def _rows(reader: Iterator[list[str]], header: list[str]) -> Iterator[Row]:
    line = reader.line_num + 1  # type: ignore[attr-defined]
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(line, {}, f"not valid CSV ({exc})")
            line = reader.line_num + 1  # type: ignore[attr-defined]
            continue
        start, line = line, reader.line_num + 1  # type: ignore[attr-defined]
        if not any(c.strip() for c in cells):
            continue  # blank line
        if len(cells) != len(header):
            yield Row(start, {}, f"expected {len(header)} cells, found {len(cells)}")
            continue
        yield Row(start, {h: c.strip() for h, c in zip(header, cells, strict=True) if c.strip()})


async def run_rows(
    rows: list[Row],
    handle: Callable[[Row], Awaitable[Result]],
    on_row: Callable[[Result], None] = lambda result: None,
    *,
    concurrency: int = 8,
) -> list[Result]:
    """``handle`` each row, a few at once; every row's result, in line order (``handle``
    turns a refused row into a result, so one bad row stops no other)."""
    results: list[Result] = []
    limiter = anyio.CapacityLimiter(max(1, concurrency))

    async def one(row: Row) -> None:
        async with limiter:
            result = await handle(row)
        results.append(result)
        on_row(result)

    async with anyio.create_task_group() as group:
        for row in rows:
            group.start_soon(one, row)
    results.sort(key=lambda result: result.line)
    return results
