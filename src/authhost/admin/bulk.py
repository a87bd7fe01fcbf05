"""Bulk card issuance from a CSV file: each row is one ``IssueCard`` request.

A bad row is reported with its line number and skipped; the other rows are issued. Every row
carries an idempotency key (its ``idempotency_key`` column, or one derived from the row's
content and how often that same content appeared before), so running a file again, for
instance after fixing the bad rows, issues nothing twice.

Columns: ``product_id``, ``account_id`` (required), ``cardholder_name``, ``address_ref``,
``home_country``, ``idempotency_key`` (optional). Empty cells mean "not given".
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from pydantic import ValidationError

from authhost.admin.errors import ServiceError, invalid_request
from authhost.admin.requests import IssueCard
from authhost.admin.service import CardService

COLUMNS = ("product_id", "account_id", "cardholder_name", "address_ref", "home_country")
OPTIONAL_COLUMNS = ("idempotency_key",)
REQUIRED_COLUMNS = ("product_id", "account_id")


class BulkFileError(ValueError):
    """The file as a whole cannot be read (missing, not CSV, wrong header): nothing issued."""


@dataclass(frozen=True, slots=True)
class RowResult:
    line: int
    card_id: str = ""
    pan: str = ""  # masked
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class BulkSummary:
    rows: int = 0
    results: list[RowResult] = field(default_factory=list)

    @property
    def issued(self) -> int:
        return sum(1 for r in self.results if r.ok)

    @property
    def failed(self) -> list[RowResult]:
        return [r for r in self.results if not r.ok]


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # line number in the file where the row starts (header is line 1)
    values: dict[str, str]
    key: str


def read_rows(path: Path) -> list[Row]:
    """All data rows with their line numbers and idempotency keys; BulkFileError if unusable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BulkFileError(f"{path}: cannot read the file ({exc})") from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise BulkFileError(f"{path}: the file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise BulkFileError(f"{path}: line 1: {exc}") from None
    unknown = sorted(set(header) - set(COLUMNS) - set(OPTIONAL_COLUMNS))
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        raise BulkFileError(f"{path}: line 1: {'; '.join(problems)}")
    return list(_rows(reader, header))


def _rows(reader: Iterator[list[str]], header: list[str]) -> Iterator[Row]:
    seen: Counter[str] = Counter()
    line = reader.line_num + 1  # type: ignore[attr-defined]
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(line, {"__error__": f"not valid CSV ({exc})"}, "")
            line = reader.line_num + 1  # type: ignore[attr-defined]
            continue
        start, line = line, reader.line_num + 1  # type: ignore[attr-defined]
        if not any(c.strip() for c in cells):
            continue  # blank line
        if len(cells) != len(header):
            message = f"expected {len(header)} cells, found {len(cells)}"
            yield Row(start, {"__error__": message}, "")
            continue
        values = {h: c.strip() for h, c in zip(header, cells, strict=True) if c.strip()}
        key = values.pop("idempotency_key", "")
        if not key:
            content = "|".join(f"{c}={values.get(c, '')}" for c in COLUMNS)
            seen[content] += 1
            digest = hashlib.sha256(content.encode()).hexdigest()[:24]
            key = f"bulk:{digest}:{seen[content]}"
        yield Row(start, values, key)


async def bulk_issue(
    service: CardService,
    rows: list[Row],
    on_row: Callable[[RowResult], None] = lambda result: None,
    *,
    concurrency: int = 8,
) -> BulkSummary:
    """Issue a card for each row; a failing row is recorded and the others go on.

    A few rows run at once so the store can commit them together (SQLite group commit, Redis
    pipelining); results are reported in line order.
    """
    summary = BulkSummary(rows=len(rows))
    limiter = anyio.CapacityLimiter(max(1, concurrency))

    async def one(row: Row) -> None:
        async with limiter:
            result = await _issue_row(service, row)
        summary.results.append(result)
        on_row(result)

    async with anyio.create_task_group() as group:
        for row in rows:
            group.start_soon(one, row)
    summary.results.sort(key=lambda result: result.line)
    return summary


async def _issue_row(service: CardService, row: Row) -> RowResult:
    if "__error__" in row.values:
        return RowResult(row.line, error=row.values["__error__"])
    try:
        spec = IssueCard.model_validate(row.values)
        card = await service.issue_card(spec, idempotency_key=row.key)
    except ValidationError as exc:
        return RowResult(row.line, error=invalid_request(exc).message)
    except ServiceError as exc:
        return RowResult(row.line, error=exc.message)
    return RowResult(row.line, card_id=card["card_id"], pan=card["pan"])
