"""A suspected duplicate presentment's dispute, once the file's money is posted: whatever goes
wrong opening it is said in the row, never raised, since raising would answer the import with
an error (and leave it unaudited) after every presentment was posted."""

from __future__ import annotations

from types import SimpleNamespace

from authhost.admin.errors import ConflictError
from authhost.admin.service.clearing_imports import ClearingImports
from authhost.store.interface import StoreError


def _row() -> dict:
    return {"line": 3, "arn": "74000000000000000000052", "card_id": "c-1",
            "presentment_journal_id": 42,
            "suspected_duplicate": {"of": {"journal_id": 41, "rrn": "000000000051"}}}  # fmt: skip


def _service(refusal: Exception, *reads: object) -> SimpleNamespace:
    """A service whose store reads the entry's dispute as ``reads`` say (an exception is
    raised) and whose dispute opening is refused with ``refusal``."""
    answers = list(reads)

    async def dispute_of_entry(journal_id: int) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def open_dispute(*args: object) -> dict:
        raise refusal

    store = SimpleNamespace(dispute_of_entry=dispute_of_entry, backend_errors=())
    return SimpleNamespace(store=store, _open_dispute=open_dispute)


async def test_a_store_failure_after_a_refused_opening_is_said_in_the_row():
    row = _row()
    service = _service(ConflictError("opened meanwhile"), None, StoreError("store down"))
    assert await ClearingImports._dispute_duplicate(service, row) == 0
    assert row["dispute"] == {"error": "the dispute was not opened: StoreError"}


async def test_an_opening_refused_for_another_reason_is_said_in_the_row():
    row = _row()
    service = _service(ConflictError("account acc-1 is busy"), None, None)
    assert await ClearingImports._dispute_duplicate(service, row) == 0
    assert row["dispute"] == {"error": "the dispute was not opened: account acc-1 is busy"}


async def test_a_dispute_opened_meanwhile_is_named():
    row = _row()
    service = _service(ConflictError("disputed already"), None, SimpleNamespace(dispute_id="d-9"))
    assert await ClearingImports._dispute_duplicate(service, row) == 0
    assert row["dispute"] == {"dispute_id": "d-9", "opened": False}
