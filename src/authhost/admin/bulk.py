"""Bulk card issuance from a CSV file: each row is one ``IssueCard`` request.

A bad row is reported with its line number and skipped; the other rows are issued. Every row
carries an idempotency key (its ``idempotency_key`` column, or one derived from the row's
content and how often that same content appeared before), so running a file again, for
instance after fixing the bad rows, issues nothing twice.

Columns: ``product_id``, ``account_id`` (required), ``cardholder_name``, ``address_ref``,
``home_country``, ``idempotency_key`` (optional). Empty cells mean "not given".
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from authhost.admin import csv_rows
from authhost.admin.csv_rows import CsvColumns, Row, run_rows
from authhost.admin.errors import ServiceError, invalid_request
from authhost.admin.requests import IssueCard
from authhost.admin.service import CardService

COLUMNS = ("product_id", "account_id", "cardholder_name", "address_ref", "home_country")
ISSUE_COLUMNS = CsvColumns(
    required=("product_id", "account_id"),
    optional=("cardholder_name", "address_ref", "home_country", "idempotency_key"),
)


@dataclass(frozen=True, slots=True)
class RowResult:
    line: int
    card_id: str = ""
    pan: str = ""  # masked
    error: str = ""
    # issued before this run (its key's first use was earlier: a re-run, or another file
    # with the same row content): an answer, not a new card
    issued_before: float | None = None

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
class IssueRow:
    row: Row
    key: str  # the row's idempotency key: its own, or derived from its content

    @property
    def line(self) -> int:
        return self.row.line


def read_rows(path: Path) -> list[IssueRow]:
    """All data rows with their line numbers and idempotency keys; CsvFileError if unusable."""
    seen: Counter[str] = Counter()
    keyed = []
    for row in csv_rows.read_rows(path, ISSUE_COLUMNS):
        key = row.values.get("idempotency_key", "")
        if not key and not row.error:
            content = "|".join(f"{c}={row.values.get(c, '')}" for c in COLUMNS)
            seen[content] += 1
            digest = hashlib.sha256(content.encode()).hexdigest()[:24]
            key = f"bulk:{digest}:{seen[content]}"
        keyed.append(IssueRow(row, key))
    return keyed


async def bulk_issue(
    service: CardService,
    rows: list[IssueRow],
    on_row: Callable[[RowResult], None] = lambda result: None,
    *,
    concurrency: int = 8,
) -> BulkSummary:
    """Issue a card for each row; a failing row is recorded and the others go on."""
    keys = {row.line: row.key for row in rows}
    started = service.clock()

    async def issue(row: Row) -> RowResult:
        if row.error:
            return RowResult(row.line, error=row.error)
        try:
            spec = IssueCard.model_validate(
                {k: v for k, v in row.values.items() if k != "idempotency_key"}
            )
            card = await service.issue_card(spec, idempotency_key=keys[row.line])
        except ValidationError as exc:
            return RowResult(row.line, error=invalid_request(exc).message)
        except ServiceError as exc:
            return RowResult(row.line, error=exc.message)
        earlier = card["created_at"] if card["created_at"] < started else None
        return RowResult(row.line, card_id=card["card_id"], pan=card["pan"], issued_before=earlier)

    results = await run_rows([r.row for r in rows], issue, on_row, concurrency=concurrency)
    return BulkSummary(rows=len(rows), results=results)
