"""Cardholder disputes: opened on a charge, with or without a provisional credit, and resolved."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, NamedTuple

from pydantic import BaseModel

from authhost.admin import disputes
from authhost.admin import requests as rq
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
    ServiceError,
    Unavailable,
)
from authhost.admin.service.base import (
    ServiceBase,
)
from authhost.admin.views import (
    dispute_view,
)
from authhost.iso.codes import APPROVED_CODES
from authhost.security.masking import mask_pans_in_text
from authhost.store import codec
from authhost.store.interface import (
    Conflict,
    JournalQuery,
    NotFound,
    StoreError,
)
from authhost.store.records import (
    DISPUTE_STATES,
    Dispute,
    FraudReport,
    JournalEntry,
)

DISPUTE_PAGE = 1000  # open disputes read at a time
# the intent (store.put_intent) an opening with a provisional credit writes before the credit
DISPUTE_OPEN_INTENT = "dispute.open"
# how far behind this process's clock another's may be: a dispute id carries the time of the
# process that opened it, so one opened elsewhere is looked for this far back
CLOCK_SKEW_S = 300.0
_RETRY = (
    "send the request again with the same Idempotency-Key: a credit written before the "
    "failure is found in the journal and given once"
)


def _disputed_already(journal_id: int, dispute: Dispute | None) -> ConflictError:
    which = f" ({dispute.dispute_id}, {dispute.state})" if dispute is not None else ""
    return ConflictError(f"journal entry {journal_id} is disputed already{which}")


class ReversalScan(NamedTuple):
    """How far a look for a charge's reversals got: the card's journal read up to
    ``through``, what the reversals found released, and the last one's journal id (0: none)."""

    through: int
    released: int = 0
    last: int = 0


class Reconciling(NamedTuple):
    """What a reconcile claims a dispute with (its ``resolving``, as text): take back
    ``take_back`` of the provisional credit, named after the journal entry of the reversal
    it answers, and leave ``still`` disputed; ``reversed_minor``: what the acquirer's
    reversals gave back, for the note."""

    reversal: int
    take_back: int
    still: int
    reversed_minor: int

    PREFIX = "reconciling:"

    def text(self) -> str:
        return f"{self.PREFIX}{self.reversal}:{self.take_back}:{self.still}:{self.reversed_minor}"

    @classmethod
    def claimed(cls, resolving: str) -> bool:
        return resolving.startswith(cls.PREFIX)

    @classmethod
    def parse(cls, resolving: str) -> Reconciling:
        reversal, take_back, still, reversed_minor = resolving.removeprefix(cls.PREFIX).split(":")
        return cls(int(reversal), int(take_back), int(still), int(reversed_minor))


class _Opening(BaseModel):
    """What an Idempotency-Key on opening a dispute remembers: the charge and the request."""

    card_id: str
    journal_id: int
    dispute: rq.DisputeOpen


class DisputeCases(ServiceBase):
    """Cardholder disputes."""

    async def open_dispute(
        self, card_id: str, journal_id: int, spec: rq.DisputeOpen, *, idempotency_key: str = ""
    ) -> dict[str, Any]:
        """Open the cardholder's dispute of a posted transaction (``admin.disputes``), with a
        provisional credit unless told not to; a fraud dispute also labels the entry fraud
        (source chargeback). Audited.

        The dispute and its credit are recorded together or not at all: the credit is posted
        first, and a credit the host refused (409) or the store failed on (503) leaves no
        dispute. The credit is named after the charge, so a retry after a failure that came
        after its write finds it in the journal and credits nothing more; with an
        ``idempotency_key`` a repeat gets the first answer."""
        request = _Opening(card_id=card_id, journal_id=journal_id, dispute=spec)
        return await self._once(
            "dispute.open", idempotency_key, request,
            lambda: self._open_dispute(card_id, journal_id, spec),
        )  # fmt: skip

    async def _open_dispute(
        self, card_id: str, journal_id: int, spec: rq.DisputeOpen
    ) -> dict[str, Any]:
        await self._card(card_id)
        entry = await self._journal_entry(card_id, journal_id)
        if entry.response_code not in APPROVED_CODES or entry.movement != "post":
            # a cleared authorisation is the charge a cardholder names: say where its posting is
            where = (
                "; a hold is charged by its completion (0220) or clearing presentment: dispute "
                "that entry (journal show)"
                if entry.movement == "hold"
                else ""
            )
            raise InvalidRequest(
                f"journal entry {journal_id} is not a posted charge (movement "
                f"{entry.movement or 'none'}, response {entry.response_code}): only what was "
                f"posted to the account can be disputed{where}"
            )
        if entry.terminal_id == disputes.TERMINAL:
            raise InvalidRequest(
                f"journal entry {journal_id} is a dispute's own movement: resolve that "
                "dispute instead"
            )
        now = self.clock()
        if now - entry.ts > disputes.WINDOW_DAYS * 86_400:
            raise InvalidRequest(
                f"journal entry {journal_id} is more than {disputes.WINDOW_DAYS} days old: "
                "too late to charge back"
            )
        charged = entry.hold_amount - await self._reversed(entry)
        if charged <= 0:
            raise InvalidRequest(
                f"journal entry {journal_id} was reversed by the acquirer: the money is back "
                "on the account already"
            )
        amount = spec.amount_minor or charged
        if amount > charged:
            raise InvalidRequest(
                f"amount_minor is more than the {charged} charged (posted {entry.hold_amount}, "
                f"reversed {entry.hold_amount - charged})"
                if charged < entry.hold_amount
                else f"amount_minor is more than the {entry.hold_amount} posted"
            )
        if spec.provisional_credit and self.decide_many is None:
            raise Unavailable("a provisional credit posts through a running server's pipeline")
        earlier = await self._dispute_of(entry)
        if earlier is not None:
            raise _disputed_already(journal_id, earlier)
        dispute = Dispute(
            disputes.new_dispute_id(now), journal_id, card_id, entry.account_id, spec.reason,
            amount, entry.currency, now, note=mask_pans_in_text(spec.note),
        )  # fmt: skip
        key = str(journal_id)
        if spec.provisional_credit:  # two writes: a crash between them is finished later
            await self.store.put_intent(DISPUTE_OPEN_INTENT, key, codec.dispute_to_json(dispute))
            credited, _ = await self._provisional_credit(dispute, entry)
        else:  # an earlier try's credit, whose answer was lost: the dispute records it
            credited = await self._credit_given(entry)
        dispute = replace(dispute, credited_minor=credited)
        try:
            await self.store.open_dispute(dispute)
        except Conflict:  # another operator's dispute of the charge was recorded meanwhile
            rival = await self._dispute_of(entry)
            if dispute.credited_minor and (rival is None or not rival.credited_minor):
                await self._take_back_credit(dispute, entry)  # (this try's, or an earlier's)
            await self.store.drop_intent(DISPUTE_OPEN_INTENT, key)
            raise _disputed_already(journal_id, rival) from None
        except StoreError as exc:
            raise Unavailable(
                f"the store failed while the dispute was recorded ({exc}); "
                f"{_RETRY if dispute.credited_minor else 'send the request again'}"
            ) from None
        view = await self._dispute_recorded(dispute, {})
        if spec.provisional_credit:
            await self.store.drop_intent(DISPUTE_OPEN_INTENT, key)
        return view

    async def _dispute_recorded(self, dispute: Dispute, details: dict[str, Any]) -> dict[str, Any]:
        """What follows a dispute's recording: a fraud dispute labels its charge fraud
        (source chargeback), the reconcile runs learn of it, the audit log has it (with
        ``details``)."""
        if dispute.reason == "fraud":
            await self.store.put_fraud_report(
                FraudReport(
                    dispute.journal_id, dispute.card_id, True, "chargeback",
                    dispute.opened_at, dispute.note,
                )
            )  # fmt: skip
        self._open_disputes.add(dispute.account_id, dispute.dispute_id)
        view = dispute_view(dispute)
        await self.record_audit("dispute.open", dispute.dispute_id, None, {**view, **details})
        return view

    async def _reversed(self, entry: JournalEntry) -> int:
        """What the acquirer's reversals (0400/0420) of the charge gave back."""
        return (await self._reversals(entry)).released

    async def _reversals(
        self, entry: JournalEntry, scan: ReversalScan | None = None
    ) -> ReversalScan:
        """What the acquirer's reversals (0400/0420) of the charge gave back, and the journal
        id of the last of them: each is journalled under the charge's ``match_key``, with what
        it released. ``scan``: where an earlier look got to (the card's entries up to
        ``through``), so only what the card journalled since is read; journal ids are handed
        out in commit order in both stores, so no entry below it can appear later."""
        scan = scan or ReversalScan(through=entry.journal_id)
        if not entry.match_key:
            return scan
        through, released, last = scan
        query = JournalQuery(card_id=entry.card_id, since=entry.ts, after_id=through)
        async for later in self.store.export_journal(query):
            through = max(through, later.journal_id)
            if (
                later.match_key == entry.match_key
                and later.movement == "release"
                and later.response_code in APPROVED_CODES
            ):
                released += abs(later.hold_amount)
                last = max(last, later.journal_id)
        return ReversalScan(through, released, last)

    async def _provisional_credit(self, dispute: Dispute, entry: JournalEntry) -> tuple[int, bool]:
        """Give the disputed amount back before the dispute is recorded: what was credited,
        and whether this try's 0220 moved it (else an earlier try's had: its amount)."""
        try:
            row = await self._dispute_move(
                dispute, entry.merchant_id, disputes.CREDIT, dispute.amount_minor,
                charge=(entry.journal_id, entry.ts),
            )  # fmt: skip
        except ConflictError as exc:
            raise ConflictError(
                f"{exc.message}: the provisional credit was refused, so the dispute is not "
                "opened and nothing was credited"
            ) from None
        except (disputes.NotPosted, StoreError) as exc:
            raise Unavailable(
                f"the provisional credit of journal entry {entry.journal_id} failed in the "
                f"store ({exc}): the dispute is not opened; {_RETRY}"
            ) from None
        if row["outcome"] != "duplicate":
            return dispute.amount_minor, True
        # an earlier try's credit, answered from the journal: what that one credited
        return (await self._credit_given(entry)) or dispute.amount_minor, False

    async def _credit_given(self, entry: JournalEntry) -> int:
        """What the provisional credit named after this charge moved (an earlier try's, whose
        answer was lost), 0 when none is journalled. A dispute of the charge recorded without
        asking for a credit still records it: resolving it then takes it back (lost) or keeps
        it (won), and never leaves it behind or pays it twice."""
        rrn = disputes.charge_reference(entry.journal_id, disputes.CREDIT)[-12:]  # (its 0220)
        query = JournalQuery(account_id=entry.account_id, rrn=rrn, since=entry.ts)
        async for earlier in self.store.export_journal(query):
            if earlier.terminal_id == disputes.TERMINAL and earlier.movement == "credit":
                return earlier.hold_amount
        return 0

    async def _take_back_credit(self, dispute: Dispute, entry: JournalEntry) -> None:
        """Take back the provisional credit this try gave when the charge's dispute recorded
        first has none (named after the charge too: it is done once)."""
        try:
            await self._dispute_move(
                dispute, entry.merchant_id, disputes.TAKE_BACK, dispute.credited_minor,
                charge=(entry.journal_id, entry.ts),
            )  # fmt: skip
        except (ServiceError, disputes.NotPosted, StoreError) as exc:
            raise Unavailable(
                f"journal entry {entry.journal_id} was disputed by another request meanwhile, "
                f"and the provisional credit of {dispute.credited_minor} this one gave could "
                f"not be taken back ({exc}): take it back with a funds change"
            ) from None

    async def _dispute_of(self, entry: JournalEntry) -> Dispute | None:
        """The dispute of this charge, if it has one."""
        return await self.store.dispute_of_entry(entry.journal_id)

    async def resolve_dispute(self, dispute_id: str, spec: rq.DisputeResolution) -> dict[str, Any]:
        """Close an open dispute: won gives what was not yet credited, lost or withdrawn takes
        the provisional credit back. Audited once.

        The dispute is claimed before any money moves: its outcome is written to
        ``resolving`` over the version read (a compare-and-set in the store), so of several
        resolutions sent at once one claims it and the others are refused (409) having moved
        nothing; the claim's holder moves the money and closes the dispute over the claim's
        version. A resolution the store failed under after its claim leaves the dispute open
        with ``resolving`` set: resolving it the same way again finishes it (each movement is
        named after the dispute, so nothing moves twice); another outcome is refused."""
        before = await self.store.get_dispute(dispute_id)
        if before is not None and Reconciling.claimed(before.resolving):
            # a reconcile is moving the money (or failed half way): its plan first (another
            # worker finishing it at the same moment wins the write: the same plan, done)
            with contextlib.suppress(ConflictError):
                await self._finish_reconciling(before)
            before = await self.store.get_dispute(dispute_id)
        if before is None:
            raise NotFoundError(f"dispute {dispute_id} not found")
        if before.state != "open":
            raise ConflictError(f"dispute {dispute_id} is {before.state} already")
        if before.resolving and before.resolving != spec.outcome:
            raise ConflictError(
                f"dispute {dispute_id} is being resolved as {before.resolving} (its money may "
                f"have moved): resolve it {before.resolving} again to finish"
            )
        if self.decide_many is None:
            raise Unavailable("resolving a dispute posts through a running server's pipeline")
        entry = await self._journal_entry(before.card_id, before.journal_id)
        claimed = replace(before, resolving=spec.outcome, version=before.version + 1)
        await self._write_dispute(claimed, before)
        credited = before.credited_minor
        # won: the cardholder ends with the disputed amount back, but no more of it than the
        # charge still takes after the acquirer's reversals (a reversal that came while the
        # dispute was open gave that part back already)
        owed = min(before.amount_minor, max(0, entry.hold_amount - await self._reversed(entry)))
        try:
            if spec.outcome == "won" and credited < owed:
                missing = owed - credited
                await self._dispute_move(before, entry.merchant_id, disputes.FINAL_CREDIT, missing)
                credited = owed
            elif spec.outcome == "won" and credited > owed:
                excess = credited - owed
                await self._dispute_move(before, entry.merchant_id, disputes.TAKE_BACK, excess)
                credited = owed
            elif spec.outcome != "won" and credited:
                await self._dispute_move(before, entry.merchant_id, disputes.TAKE_BACK, credited)
                credited = 0
        except (disputes.NotPosted, StoreError) as exc:
            raise Unavailable(
                f"the store failed while dispute {dispute_id} was resolved ({exc}): it is "
                "still open; resolve it again, the same way (a retry moves nothing twice)"
            ) from None
        after = replace(
            claimed, state=spec.outcome, credited_minor=credited, closed_at=self.clock(),
            note=mask_pans_in_text(spec.note) or before.note, resolving="",
            version=claimed.version + 1,
        )  # fmt: skip
        await self._write_dispute(after, claimed)
        view = dispute_view(after)
        await self.record_audit("dispute.resolve", dispute_id, dispute_view(before), view)
        return view

    async def reconcile_disputes(self) -> list[dict[str, Any]]:
        """Set the acquirer's reversals against the open disputes of the charges they
        reversed; the disputes changed (``reconcile_dispute``). The server does this every
        ``[auth] dispute_reconcile_every_s``; ``authhost disputes reconcile`` does it now."""
        changed: list[dict[str, Any]] = []
        known = self._open_disputes
        read_at = self.clock()
        scans: dict[str, ReversalScan | None] = {}  # the open disputes': closed ones drop out
        by_account: dict[str, set[str]] = {}
        after = ""
        while page := await self.store.disputes("open", DISPUTE_PAGE, after):
            for dispute in page:
                by_account.setdefault(dispute.account_id, set()).add(dispute.dispute_id)
                try:
                    view, scans[dispute.dispute_id] = await self._reconcile(
                        dispute, known.scans.get(dispute.dispute_id)
                    )
                except ServiceError:  # changed meanwhile, or the store failed: next time
                    continue
                if view is not None:
                    changed.append(view)
            after = page[-1].dispute_id
        known.scans, known.by_account, known.read_at = scans, by_account, read_at
        return changed

    async def _learn_new_disputes(self) -> None:
        """Add to what the process knows the open disputes opened since it last read them
        (and ``CLOCK_SKEW_S`` before, for other processes' clocks): one opened with the CLI
        or through another worker is then known when a reversal of its charge comes, not
        only after the next full run. Only recent ids are read (they sort by age)."""
        known = self._open_disputes
        read_at = self.clock()
        after = disputes.opened_since(known.read_at - CLOCK_SKEW_S) if known.read_at else ""
        while page := await self.store.disputes("open", DISPUTE_PAGE, after):
            for dispute in page:
                known.add(dispute.account_id, dispute.dispute_id)
            after = page[-1].dispute_id
        known.read_at = read_at

    async def reconcile_accounts_disputes(self, account_ids: Iterable[str]) -> list[dict[str, Any]]:
        """``reconcile_disputes`` for the open disputes of these accounts alone: the server
        calls it within a second of approving a reversal on one of them, so the cardholder
        does not keep the credit and the reversal's money until the next full run. The
        disputes opened since the process last read them are read first."""
        await self._learn_new_disputes()
        known = self._open_disputes
        changed: list[dict[str, Any]] = []
        for account_id in sorted(account_ids):
            for dispute_id in sorted(known.by_account.get(account_id, ())):
                dispute = await self.store.get_dispute(dispute_id)
                if dispute is None or dispute.state != "open":
                    known.drop(account_id, dispute_id)
                    continue
                try:
                    view, scan = await self._reconcile(dispute, known.scans.get(dispute_id))
                except ServiceError:  # changed meanwhile, or the store failed: next full run
                    continue
                known.scans[dispute_id] = scan
                if view is not None:
                    changed.append(view)
                    if view["state"] != "open":
                        known.drop(account_id, dispute_id)
        return changed

    async def reconcile_dispute(self, dispute_id: str) -> dict[str, Any]:
        """One open dispute set against the acquirer's reversals of its charge: a reversal
        that came while it was open gave (part of) the money back already, so the disputed
        amount shrinks to what the charge still takes, the part of a provisional credit above
        that is taken back, and a charge reversed whole closes the dispute ``reversed``.
        Without this the cardholder kept both the credit and the reversal's money. Audited
        when it changes anything."""
        dispute = await self.store.get_dispute(dispute_id)
        if dispute is None:
            raise NotFoundError(f"dispute {dispute_id} not found")
        if dispute.state != "open" or (
            dispute.resolving and not Reconciling.claimed(dispute.resolving)
        ):
            raise ConflictError(
                f"dispute {dispute_id} is {dispute.resolving or dispute.state}: only an open "
                "dispute is set against reversals (a resolution counts them itself)"
            )
        view, _ = await self._reconcile(dispute)
        return view or dispute_view(dispute)

    async def _reconcile(
        self, before: Dispute, scan: ReversalScan | None = None
    ) -> tuple[dict[str, Any] | None, ReversalScan | None]:
        """The dispute changed (None: nothing to change), and where the look for reversals
        got to (``scan``: where the last one did).

        Money moves only under a claim, as in a resolution: the plan (what to take back,
        named after which reversal, and what is left disputed) is written to ``resolving``
        over the version read before any money moves, so a resolution or another worker's
        run at the same moment is refused, or finds the claim and finishes that same plan
        (the movement is one transmission: done twice, it moves once)."""
        if Reconciling.claimed(before.resolving):  # a run that failed half way: finish it
            return await self._finish_reconciling(before), scan
        if before.resolving:  # a resolution has it: that one counts the reversals
            return None, scan
        entry = await self._journal_entry(before.card_id, before.journal_id)
        scan = await self._reversals(entry, scan)
        still = min(before.amount_minor, max(0, entry.hold_amount - scan.released))
        if still == before.amount_minor:
            return None, scan
        plan = Reconciling(scan.last, max(0, before.credited_minor - still), still, scan.released)
        if plan.take_back and self.decide_many is None:
            raise Unavailable("taking a credit back posts through a running server's pipeline")
        claimed = replace(before, resolving=plan.text(), version=before.version + 1)
        await self._write_dispute(claimed, before)
        return await self._finish_reconciling(claimed, entry), scan

    async def _finish_reconciling(
        self, claimed: Dispute, entry: JournalEntry | None = None
    ) -> dict[str, Any]:
        """Carry out the plan a reconcile claimed the dispute with; the dispute's view."""
        try:
            plan = Reconciling.parse(claimed.resolving)
        except ValueError:  # written by hand, not by a reconcile: never a 500
            raise ConflictError(
                f"dispute {claimed.dispute_id} has a reconcile claim that cannot be read "
                f"({claimed.resolving[:60]!r}): nothing was moved"
            ) from None
        entry = entry or await self._journal_entry(claimed.card_id, claimed.journal_id)
        if plan.take_back:
            if self.decide_many is None:
                raise Unavailable("taking a credit back posts through a running server's pipeline")
            try:
                await self._dispute_move(
                    claimed, entry.merchant_id, disputes.REVERSED, plan.take_back,
                    charge=(plan.reversal, entry.ts),
                )  # fmt: skip
            except (disputes.NotPosted, StoreError) as exc:
                raise Unavailable(
                    f"the store failed while dispute {claimed.dispute_id} was set against the "
                    f"charge's reversal ({exc}); it is finished at the next run, once"
                ) from None
        why = (
            f"the acquirer reversed {plan.reversed_minor} of the {entry.hold_amount} charged "
            f"while the dispute was open: {plan.still} is left disputed"
        )
        after = replace(
            claimed, amount_minor=plan.still, resolving="", version=claimed.version + 1,
            credited_minor=claimed.credited_minor - plan.take_back,
            note=f"{claimed.note}; {why}" if claimed.note else why,
        )  # fmt: skip
        if plan.still == 0:
            after = replace(after, state="reversed", closed_at=self.clock())
        await self._write_dispute(after, claimed)
        view = dispute_view(after)
        before = replace(claimed, resolving="")
        await self.record_audit("dispute.reconcile", claimed.dispute_id, dispute_view(before), view)
        return view

    async def _write_dispute(self, dispute: Dispute, read: Dispute) -> None:
        """Write ``dispute`` over ``read``, the version it was made from, or refuse (409):
        another request changed it since (claimed it, or resolved it)."""
        try:
            await self.store.update_dispute(dispute, expected_version=read.version)
        except Conflict:
            raise ConflictError(
                f"dispute {dispute.dispute_id} was changed by another request meanwhile (it is "
                "resolved, or being resolved): read it again"
            ) from None
        except NotFound:
            raise NotFoundError(f"dispute {dispute.dispute_id} not found") from None
        except StoreError as exc:
            raise Unavailable(
                f"the store failed while dispute {dispute.dispute_id} was written ({exc}); "
                f"resolve it again, {dispute.resolving or dispute.state}"
            ) from None

    async def get_dispute(self, dispute_id: str) -> dict[str, Any]:
        dispute = await self.store.get_dispute(dispute_id)
        if dispute is None:
            raise NotFoundError(f"dispute {dispute_id} not found")
        return dispute_view(dispute)

    async def list_disputes(
        self, *, state: str = "", limit: int = 100, after: str = ""
    ) -> list[dict[str, Any]]:
        if state and state not in DISPUTE_STATES:
            raise InvalidRequest(f"state must be one of {', '.join(DISPUTE_STATES)}")
        return [dispute_view(d) for d in await self.store.disputes(state, limit, after)]

    async def _dispute_move(
        self,
        dispute: Dispute,
        merchant: str,
        step: str,
        amount: int,
        *,
        charge: tuple[int, float] | None = None,
    ) -> dict[str, Any]:
        card_id = dispute.card_id
        pan = await self._clear_pan(card_id)
        try:
            return await disputes.move(
                self.store, self.security.pan_index, self.decide_many, dispute, pan, merchant,
                step, amount, charge=charge,
            )  # fmt: skip
        finally:
            del pan
