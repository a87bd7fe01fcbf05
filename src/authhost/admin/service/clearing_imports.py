"""Clearing imports: a file's presentments posted through the server's pipeline, and a dispute
opened on each suspected duplicate presentment so that its chargeback follows.

One import posts at a time per installation, under the store's lease ``CLEARING_LEASE``: an
import judges a presentment a duplicate by the presentments posted before it (the journal's
and its own file's), and two running at once (two API calls, the CLI beside the server, two
``--workers``) would each miss the other's and post a duplicate unflagged and undisputed. A
second import is refused (409) while one runs; the lease is renewed as the import goes and
dropped when it ends, and a crashed import's lease expires after ``LEASE_TTL_S``.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError, InvalidRequest, ServiceError, Unavailable
from authhost.admin.service.dispute_cases import DisputeCases
from authhost.admin.service.leases import HeldLease, LeaseLost, owner_name
from authhost.store.interface import StoreError

if TYPE_CHECKING:
    from authhost.admin.clearing import Presentment


CLEARING_LEASE = "clearing.import"  # the store lease one posting import holds
LEASE_TTL_S = 120.0  # how long a crashed import blocks the next one, at most


async def _take_clearing_lease(lease: HeldLease) -> None:
    """The import's lease taken, or a 409 naming since when and by whom the running one runs."""
    holder = await lease.take()
    if holder is not None:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(holder.since))
        raise ConflictError(
            f"a clearing import is running (since {since}, by {owner_name(holder.owner)}); "
            f"retry when it ends (a crashed one's hold lapses {LEASE_TTL_S:.0f} s after its "
            "last renewal)"
        )


def _kept(lease: HeldLease) -> Callable[[], Awaitable[None]]:
    """The import's lease renewed between presentments, batches and disputes; a 409 when it
    lapsed: going on would post beside another import, unseen by its duplicate check."""

    async def keep() -> None:
        try:
            await lease.keep()
        except LeaseLost:
            raise ConflictError(
                f"the clearing import stopped: it was not renewed for {LEASE_TTL_S:.0f} s and "
                "another import may have run meanwhile; what it posted stays, and importing the "
                "file again posts the rest (the rows posted are replayed, not posted twice)"
            ) from None

    return keep


class ClearingImports(DisputeCases):
    """The clearing file's import (``admin.clearing``), its duplicates disputed."""

    async def import_clearing(self, spec: rq.ClearingImport) -> dict[str, Any]:
        """Post a clearing file's presentments (``admin.clearing``) through the server's own
        pipeline, or with ``dry_run`` only match them. Audited with its counts."""
        from authhost.admin.clearing import ClearingFileError, parse_presentments

        rq.ClearingImport.model_validate(spec.model_dump())
        try:
            presentments = parse_presentments(spec.csv.splitlines(keepends=True), "the CSV")
        except ClearingFileError as exc:
            raise InvalidRequest(str(exc)) from None
        if not spec.dry_run and self.decide_many is None:
            raise Unavailable("clearing posts through a running server's pipeline")
        result = await self.post_clearing(
            presentments, dry_run=spec.dry_run, dispute_duplicates=spec.dispute_duplicates
        )
        return {"dry_run": spec.dry_run, **result}

    async def post_clearing(
        self,
        presentments: Sequence[Presentment],
        *,
        dry_run: bool = False,
        dispute_duplicates: bool = True,
    ) -> dict[str, Any]:
        """Match and post the presentments (the API's import and the CLI's): each suspected
        duplicate presentment posted is disputed (reason ``duplicate``, no provisional
        credit) unless ``dispute_duplicates`` is false; audited unless ``dry_run``.

        A posting import holds the lease ``CLEARING_LEASE`` throughout (ConflictError, nothing
        posted, while another holds it). A dry run takes none: it posts, disputes and audits
        nothing, so it cannot make a duplicate go unflagged, and an operator may check the
        next file while an import runs (its report is as of its own reads)."""
        if dry_run:
            return await self._post_clearing(presentments, None, dry_run=True)
        lease = HeldLease(self.store, CLEARING_LEASE, self.actor, LEASE_TTL_S)
        await _take_clearing_lease(lease)
        try:
            return await self._post_clearing(
                presentments, _kept(lease), dispute_duplicates=dispute_duplicates
            )
        finally:
            await lease.drop()

    async def _post_clearing(
        self,
        presentments: Sequence[Presentment],
        keep: Callable[[], Awaitable[None]] | None,
        *,
        dry_run: bool = False,
        dispute_duplicates: bool = True,
    ) -> dict[str, Any]:
        from authhost.admin.clearing import post_presentments

        decide = None if dry_run else self.decide_many
        import_id = "" if dry_run else await self._begin_clearing(presentments)
        try:
            result = await post_presentments(
                presentments, self.store, self.security.pan_index, decide, keep=keep
            )
            opened = 0
            if not dry_run and dispute_duplicates:
                for row in result["rows"]:
                    if "presentment_journal_id" in row:  # a suspected duplicate that was posted
                        if keep is not None:
                            await keep()
                        opened += await self._dispute_duplicate(row)
        except ServiceError as refused:  # stopped (its lease lapsed, say): the store answers
            if not dry_run:
                await self._stopped_clearing(import_id, refused)
            raise
        result = {**result, "disputes_opened": opened}
        if not dry_run:
            await self.audit_clearing(result, import_id)
        return result

    async def _stopped_clearing(self, import_id: str, refused: ServiceError) -> None:
        """The end of an import the service stopped after it began (``clearing.import`` with
        ``stopped``: why; what it posted is in the journal, and importing the file again
        replays it), so that only a crash or a store that stopped answering leaves one begun
        and never ended. An entry that fails too leaves the refusal the answer."""
        stopped = {"dry_run": False, "import_id": import_id, "stopped": refused.message}
        with contextlib.suppress(StoreError, *self.store.backend_errors):
            await self.record_audit("clearing.import", "clearing", None, stopped)

    async def _begin_clearing(self, presentments: Sequence[Presentment]) -> str:
        """Audit a posting import before its first write (``clearing.import_begun``: its id,
        how many presentments and which lines); its id. Its writes are 0220 advices posted
        through the authorisation pipeline, journalled each with its outcome, which carries
        no audit entry (the authorisation path's cost): an import a crash cut short then
        shows as begun and never ended, rather than not at all."""
        import_id = secrets.token_hex(8)
        lines = [p.line for p in presentments]
        begun = {
            "import_id": import_id,
            "presentments": len(lines),
            "lines": [min(lines), max(lines)] if lines else [],
        }
        await self.record_audit("clearing.import_begun", "clearing", None, begun)
        return import_id

    async def _dispute_duplicate(self, row: dict[str, Any]) -> int:
        """Open the dispute of a suspected duplicate presentment's 0220 (or name the one it
        has: a file imported again opens no second); 1 when this opened one. Its outcome goes
        in the row (``dispute``): a failure is reported there, never raised, since the money
        of the whole file has been posted already."""
        card_id, journal_id = row["card_id"], row["presentment_journal_id"]
        of = row["suspected_duplicate"]["of"]
        earlier = (
            f"ARN {of['arn']} (line {of['line']} of this file)"
            if "line" in of
            else f"the presentment of journal entry {of['journal_id']} (ARN ending {of['rrn']})"
        )
        note = (
            f"suspected duplicate presentment: ARN {row['arn']} (line {row['line']}) repeats "
            f"{earlier}: same card, approval code, amount, merchant and day"
        )
        spec = rq.DisputeOpen(reason="duplicate", provisional_credit=False, note=note)
        failures = (ServiceError, StoreError, *self.store.backend_errors)
        try:
            try:
                existing = await self.store.dispute_of_entry(journal_id)
                if existing is None:
                    view = await self._open_dispute(card_id, journal_id, spec)
                    row["dispute"] = {"dispute_id": view["dispute_id"], "opened": True}
                    return 1
            except ConflictError:  # opened meanwhile (another import of the same file)
                existing = await self.store.dispute_of_entry(journal_id)
                if existing is None:  # refused for another reason: said as a failure
                    raise
        except failures as exc:  # the next import of the file opens it
            message = getattr(exc, "message", None) or type(exc).__name__
            row["dispute"] = {"error": f"the dispute was not opened: {message}"}
            return 0
        if existing is not None:
            row["dispute"] = {"dispute_id": existing.dispute_id, "opened": False}
        return 0

    async def audit_clearing(self, result: dict[str, Any], import_id: str) -> None:
        """The end of a clearing import that posted (``clearing.import``, with the id of its
        ``clearing.import_begun``): its counts, no presentment."""
        counts = ("presentments", "outcomes", "suspected_duplicates", "disputes_opened")
        summary = {
            "dry_run": False,
            "import_id": import_id,
            **{k: result[k] for k in counts if k in result},
        }
        await self.record_audit("clearing.import", "clearing", None, summary)
