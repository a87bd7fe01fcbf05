"""The bank's ledger balances from a CSV file: each row is one account's ledger balance sync.

A core banking system that closes its day writes every card account's ledger balance with the
movements feed's cursor it has posted through; each row goes through
``CardService.sync_ledger`` (the balance becomes the ledger's plus what the host journalled
after the cursor). A refused row (an unknown account, a stale cursor, a value that is not a
number) is reported with its line number and the other rows go on. Running a file again sets
the same balances: a sync is a statement of the ledger, not a movement.

Columns: ``account_id``, ``ledger_balance_minor``, ``through_journal_id`` (required),
``reason`` (optional, for the audit log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from authhost.admin.csv_rows import CsvColumns, Row, run_rows, whole_cell
from authhost.admin.errors import ServiceError, invalid_request
from authhost.admin.requests import LedgerBalance
from authhost.admin.service import CardService

LEDGER_COLUMNS = CsvColumns(
    required=("account_id", "ledger_balance_minor", "through_journal_id"),
    optional=("reason",),
)


@dataclass(frozen=True, slots=True)
class LedgerRowResult:
    line: int
    account_id: str = ""
    balance: int | None = None  # the account's balance after the sync
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


_NUMBERS = ("ledger_balance_minor", "through_journal_id")


async def sync_ledger_rows(
    service: CardService,
    rows: list[Row],
    on_row: Callable[[LedgerRowResult], None] = lambda result: None,
) -> list[LedgerRowResult]:
    """Synchronise each row's account; every row's result, in line order."""

    async def sync(row: Row) -> LedgerRowResult:
        account_id = row.values.get("account_id", "")
        if row.error or not account_id:
            return LedgerRowResult(row.line, account_id, error=row.error or "no account_id")
        try:
            spec = LedgerBalance.model_validate(
                {
                    k: whole_cell(v) if k in _NUMBERS else v
                    for k, v in row.values.items()
                    if k != "account_id"
                }
            )
            synced = await service.sync_ledger(account_id, spec)
        except ValidationError as exc:
            return LedgerRowResult(row.line, account_id, error=invalid_request(exc).message)
        except ServiceError as exc:
            return LedgerRowResult(row.line, account_id, error=exc.message)
        return LedgerRowResult(row.line, account_id, balance=synced["balance"])

    return await run_rows(rows, sync, on_row)
