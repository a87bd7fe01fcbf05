"""Cardholder disputes: opened on a charge, with or without a provisional credit, taken
through the networks' stages (chargeback, representment, pre-arbitration: the rules are
``admin.dispute_stages``), and resolved."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from authhost.admin import csv_rows, disputes
from authhost.admin import dispute_stages as stages
from authhost.admin import requests as rq
from authhost.admin.csv_rows import Row
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
    ServiceError,
    Unavailable,
    invalid_request,
)
from authhost.admin.service.base import ServiceBase, _period
from authhost.admin.views import dispute_view
from authhost.iso.codes import APPROVED_CODES
from authhost.security.masking import mask_pans_in_note, mask_pans_in_text
from authhost.store import codec
from authhost.store.interface import (
    Conflict,
    JournalQuery,
    NotFound,
    StoreError,
)
from authhost.store.records import (
    DISPUTE_STATES,
    AuditEntry,
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


def _reverses(charge: JournalEntry, later: JournalEntry) -> bool:
    """Whether ``later`` is an approved reversal (0400/0420) of ``charge``: journalled under
    its ``match_key``, releasing what it had taken."""
    return (
        bool(charge.match_key)
        and later.match_key == charge.match_key
        and later.movement == "release"
        and later.response_code in APPROVED_CODES
    )


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


# a representments file (``authhost disputes representments``, POST /v1/disputes/representments)
REPRESENTMENT_COLUMNS = csv_rows.CsvColumns(
    required=("reference", "amount_minor"),
    optional=("dispute_id", "arn", "date", "currency", "note"),
)


@dataclass(frozen=True, slots=True)
class RepresentmentLine:
    """What became of one line of a representments file."""

    line: int
    dispute_id: str = ""
    stage: str = ""  # the dispute's stage after the line (represented)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _named_dispute(row: Row, by_arn: dict[str, list[tuple[str, str]]]) -> str | RepresentmentLine:
    """The id of the dispute a representments line names (by ``dispute_id``, else by ``arn``
    among the open disputes charged back: ``by_arn``, their ids and ARNs by the last 12
    characters, the full ARN compared whole when both have it), or the line's refusal."""
    if row.error:
        return RepresentmentLine(row.line, error=row.error)
    if dispute_id := row.values.get("dispute_id", ""):
        return dispute_id
    arn = row.values.get("arn", "")
    if not arn:
        return RepresentmentLine(row.line, error="give the dispute_id or the arn")
    found = [i for i, of in by_arn.get(arn[-12:], []) if stages.same_reference(arn, of)]
    if len(found) != 1:
        why = "no open dispute was" if not found else f"{len(found)} open disputes were"
        return RepresentmentLine(
            row.line, error=f"{why} charged back under arn {arn}: give the dispute_id"
        )
    return found[0]


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

    async def _where_charged(self, hold: JournalEntry) -> str:
        """Where a hold's charge is, for the refusal of a dispute of the hold itself (a
        clearing import's line names the authorisation it matched, and a reader takes that id
        for the charge): the postings under its approval code since (a clearing
        presentment's), by journal id; else, while the hold still holds money, that it is not
        charged yet; else (a switch's completion answered under a code of its own, an expiry)
        what charges a hold."""
        generic = (
            "; a hold is charged by its completion (0220) or clearing presentment: dispute "
            "that entry (journal show: movement post)"
        )
        if not hold.approval_code:
            return generic
        query = JournalQuery(
            card_id=hold.card_id, since=hold.ts, approval_code=hold.approval_code, limit=20
        )
        posted = [
            e
            for e in await self.store.journal(query)
            if e.journal_id > hold.journal_id
            and e.movement == "post"
            and e.response_code in APPROVED_CODES
            and e.terminal_id != disputes.TERMINAL
        ]
        if posted:
            named = ", ".join(f"{e.journal_id} ({e.mti}, {e.hold_amount})" for e in posted)
            one = "that entry" if len(posted) == 1 else "one of those"
            return f"; it was charged by journal entry {named}: dispute {one}"
        if hold.match_key and hold.account_id:
            held = [h for h in await self.store.open_holds(hold.account_id)
                    if h.match_key == hold.match_key]  # fmt: skip
            if held:
                return (
                    f"; this hold still holds {held[0].amount_minor}, not charged yet: dispute "
                    "its completion (0220) or clearing presentment once it is posted"
                )
        return generic

    async def _open_dispute(
        self, card_id: str, journal_id: int, spec: rq.DisputeOpen
    ) -> dict[str, Any]:
        await self._card(card_id)
        entry = await self._journal_entry(card_id, journal_id)
        if entry.response_code not in APPROVED_CODES or entry.movement != "post":
            # a cleared authorisation is the charge a cardholder names: say where its posting is
            where = await self._where_charged(entry) if entry.movement == "hold" else ""
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
        window = self.dispute_limits.chargeback_days
        if now - entry.ts > window * stages.DAY:
            raise InvalidRequest(
                f"journal entry {journal_id} is more than {window} days old: too late to "
                "charge back ([admin] chargeback_days)"
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
            amount, entry.currency, now, note=mask_pans_in_note(spec.note), charged_at=entry.ts,
        )  # fmt: skip
        key = str(journal_id)
        if spec.provisional_credit:  # two writes: a crash between them is finished later
            await self.store.put_intent(DISPUTE_OPEN_INTENT, key, codec.dispute_to_json(dispute))
            credited, _ = await self._provisional_credit(dispute, entry)
        else:  # an earlier try's credit, whose answer was lost: the dispute records it
            credited = await self._credit_given(entry)
        dispute = replace(dispute, credited_minor=credited)
        view = self._view(dispute)
        try:  # recorded with its entry: both or neither
            await self.store.open_dispute(
                dispute, self._opening_entry(dispute, view), self.security.audit_seal
            )
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
        await self._dispute_recorded(dispute)
        if spec.provisional_credit:
            await self.store.drop_intent(DISPUTE_OPEN_INTENT, key)
        return view

    def _opening_entry(self, dispute: Dispute, view: dict[str, Any], **details: Any) -> AuditEntry:
        """The ``dispute.open`` entry the store appends with the dispute (with ``details``)."""
        return self._audit_entry("dispute.open", dispute.dispute_id, None, {**view, **details})

    async def _dispute_recorded(self, dispute: Dispute, *, unless_reported: bool = False) -> None:
        """What follows a dispute's recording (with its entry): a fraud dispute labels its
        charge fraud (source chargeback), and the reconcile runs learn of it.
        ``unless_reported``: not over a report the charge has (a finished opening's: its
        first try's label, or an analyst's since)."""
        if dispute.reason == "fraud" and not (
            unless_reported and await self.store.fraud_reports_of([dispute.journal_id])
        ):
            await self.store.put_fraud_report(
                FraudReport(
                    dispute.journal_id, dispute.card_id, True, "chargeback",
                    dispute.opened_at, dispute.note,
                )
            )  # fmt: skip
        self._open_disputes.add(dispute.account_id, dispute.dispute_id)

    async def _reversed(self, entry: JournalEntry) -> int:
        """What the acquirer's reversals (0400/0420) of the charge gave back."""
        return (await self._reversals(entry)).released

    async def _recalls_after_closing(self, dispute: Dispute) -> tuple[tuple[float, int], ...]:
        """The chargeback's recalls the acquirer's reversals of the charge owe after the
        dispute was resolved (``dispute_stages.recalls_after_closing``), from the charge's
        journal entry and its reversals (none when the entry was pruned)."""
        try:
            entry = await self._journal_entry(dispute.card_id, dispute.journal_id)
        except NotFoundError:
            return ()
        reversals = [(r.ts, abs(r.hold_amount)) for r in await self._reversal_entries(entry)]
        return stages.recalls_after_closing(dispute, entry.hold_amount, reversals)

    async def _reversal_entries(self, entry: JournalEntry) -> list[JournalEntry]:
        """The acquirer's approved reversals (0400/0420) of the charge, in journal order."""
        if not entry.match_key:
            return []
        query = JournalQuery(card_id=entry.card_id, since=entry.ts, after_id=entry.journal_id)
        return [
            later async for later in self.store.export_journal(query) if _reverses(entry, later)
        ]

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
            if _reverses(entry, later):
                released += abs(later.hold_amount)
                last = max(last, later.journal_id)
        return ReversalScan(through, released, last)

    async def _provisional_credit(self, dispute: Dispute, entry: JournalEntry) -> tuple[int, bool]:
        """Give the disputed amount back before the dispute is recorded: what was credited,
        and whether this try's 0220 moved it (else an earlier try's had: its amount)."""
        try:
            row = await self._dispute_move(
                dispute, entry.merchant_id, disputes.CREDIT, dispute.amount_minor,
                charge=(entry.journal_id, entry.ts), merchant_name=entry.merchant_name,
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
                charge=(entry.journal_id, entry.ts), merchant_name=entry.merchant_name,
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
        """Close an open dispute: the cardholder ends with what the outcome leaves it of the
        network stages' amounts (``dispute_stages.cardholder_keeps``): never charged back, won
        gives what was not yet credited and lost or withdrawn takes the provisional credit
        back; charged back, won keeps the chargeback, lost what the acquirer's representment
        accepted, withdrawn nothing (the chargebacks file then recalls it). One movement moves
        the difference from the credit given (a credit, or a forced post taking it back).
        Audited once.

        The dispute is claimed before any money moves: its outcome is written to
        ``resolving`` over the version read (a compare-and-set in the store), so of several
        resolutions sent at once one claims it and the others are refused (409) having moved
        nothing; the claim's holder moves the money and closes the dispute over the claim's
        version. A resolution the store failed under after its claim leaves the dispute open
        with ``resolving`` set: resolving it the same way again finishes it (each movement is
        named after the dispute, so nothing moves twice); another outcome is refused."""
        return await self._resolve(dispute_id, spec.outcome, spec.note)

    async def _resolve(
        self,
        dispute_id: str,
        outcome: str,
        note: str,
        *,
        ruling: rq.DisputeArbitrationRuling | None = None,
    ) -> dict[str, Any]:
        """``resolve_dispute`` for ``outcome``; ``ruling``: the network's arbitration ruling,
        recorded with the claim (``arbitration_ruling``, and the fee it charges), so a retry
        after a failure finishes it as a ruling whichever way it is sent again (with the fee
        its claim recorded)."""
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
            if before.state == outcome and not before.arbitration_ruling and ruling is None:
                # resolved so already: answered as it stands, and audited now when its final
                # write's entry is missing (on Redis Cluster the entry follows the write, so a
                # failed append leaves a resolution without one), as a ruling sent again is
                return await self._as_recorded(before, "dispute.resolve")
            if before.state == outcome and before.arbitration_ruling and ruling is None:
                raise ConflictError(
                    f"dispute {dispute_id} is {before.state} already, by the network's "
                    f"arbitration ruling: send the ruling again (disputes arbitration-ruling "
                    f"{dispute_id} --ruling {before.arbitration_ruling})"
                )
            raise ConflictError(f"dispute {dispute_id} is {before.state} already")
        if before.resolving and before.resolving != outcome:
            raise ConflictError(
                f"dispute {dispute_id} is being resolved as {before.resolving} (its money may "
                f"have moved): resolve it {before.resolving} again to finish"
            )
        if self.decide_many is None:
            raise Unavailable("resolving a dispute posts through a running server's pipeline")
        entry = await self._journal_entry(before.card_id, before.journal_id)
        credited = before.credited_minor
        # the cardholder ends with what the outcome leaves it of the stages' amounts, and no
        # more than the charge still takes after the acquirer's reversals (a reversal that
        # came while the dispute was open gave that part back already). A retry finishes the
        # plan its claim recorded: its movement is a retransmission of that amount
        planned = before.resolving_minor if before.resolving else -1
        if planned < 0:
            planned = await self._keeps(before, outcome, entry)
        claimed = replace(
            before, resolving=outcome, resolving_minor=planned, version=before.version + 1,
            arbitration_ruling=outcome if ruling is not None else before.arbitration_ruling,
        )  # fmt: skip
        if ruling is not None and not before.arbitration_ruling:
            # the ruling's fee, unless a ruling's claim recorded one (a retry keeps it); a
            # plain resolution's claim it finishes had none
            claimed = stages.with_arbitration_fee(
                claimed, outcome, ruling.fee_minor, ruling.fee_currency, self.dispute_limits
            )
        await self._write_dispute(claimed, before)
        try:
            if credited < planned:
                missing = planned - credited
                await self._dispute_move(
                    before,
                    entry.merchant_id,
                    disputes.FINAL_CREDIT,
                    missing,
                    merchant_name=entry.merchant_name,
                )
            elif credited > planned:
                excess = credited - planned
                await self._dispute_move(
                    before,
                    entry.merchant_id,
                    disputes.TAKE_BACK,
                    excess,
                    merchant_name=entry.merchant_name,
                )
            # a reversal approved since the plan was made (a reconcile leaves a claimed
            # dispute to its resolution) gave part back already: that part is taken back
            credited, released = await self._take_back_reversed(before, outcome, entry, planned)
            still = min(before.amount_minor, max(0, entry.hold_amount - released))
        except (disputes.NotPosted, StoreError) as exc:
            raise Unavailable(
                f"the store failed while dispute {dispute_id} was resolved ({exc}): it is "
                "still open; resolve it again, the same way (a retry moves nothing twice)"
            ) from None
        after = replace(
            claimed, state=outcome, credited_minor=credited, closed_at=self.clock(),
            note=mask_pans_in_note(note) or before.note, resolving="", resolving_minor=-1,
            version=claimed.version + 1,
        )  # fmt: skip
        # a reversal not reconciled, or one a won pre-arbitration leaves the issuer holding twice
        if lowered := stages.lowered_chargeback(claimed, still, outcome):
            after = stages.with_partial_recall(after, lowered, self.clock())
        # the entry is the final write's, not the claim's: it records the outcome as written
        # (what the cardholder kept, counted after the money moved); a claim left behind is
        # on the dispute (``resolving``) and finished only by this write
        view = self._view(after)
        action, again = "dispute.resolve", ""
        if claimed.arbitration_ruling:  # only the ruling sent again audits one written without
            # its entry (a cluster's, appended after the write): a resolution is refused then
            action, again = (
                "dispute.arbitration_ruling",
                (
                    f"send the ruling again (disputes arbitration-ruling {dispute_id} --ruling "
                    f"{claimed.arbitration_ruling}): a retry moves nothing twice"
                ),
            )
        entry = self._audit_entry(action, dispute_id, self._view(before), view)
        await self._write_dispute(after, claimed, again=again, audit=entry)
        return view

    async def _take_back_reversed(
        self, dispute: Dispute, outcome: str, entry: JournalEntry, planned: int
    ) -> tuple[int, int]:
        """Take back what the charge's reversals approved after a resolution's plan (of
        ``planned`` kept) gave the cardholder already: each reversal's own part, named after
        it as a reconcile names it, so that a retry after a failure sends each again (done
        once) and a reversal come between the tries adds only its part (one movement for all
        of them, named after the last, would take the earlier ones' back a second time).
        What the cardholder keeps then, and what the reversals released."""
        keeps, released = planned, 0
        for reversal in await self._reversal_entries(entry):
            released += abs(reversal.hold_amount)
            now = min(keeps, await self._keeps(dispute, outcome, entry, released))
            if now < keeps:
                await self._dispute_move(
                    dispute, entry.merchant_id, disputes.REVERSED, keeps - now,
                    charge=(reversal.journal_id, entry.ts), merchant_name=entry.merchant_name,
                )  # fmt: skip
                keeps = now
        return keeps, released

    async def _keeps(
        self, dispute: Dispute, outcome: str, entry: JournalEntry, released: int | None = None
    ) -> int:
        """What resolving ``dispute`` ``outcome`` leaves the cardholder, the charge's reversals
        (``released``: what they gave back, read now when None) counted."""
        if released is None:
            released = await self._reversed(entry)
        owed = min(dispute.amount_minor, max(0, entry.hold_amount - released))
        return stages.cardholder_keeps(dispute, outcome, owed)

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
        if dispute.state in stages.SETTLED:
            return await self._settle_late_reversals(dispute)
        if dispute.state != "open" or (
            dispute.resolving and not Reconciling.claimed(dispute.resolving)
        ):
            raise ConflictError(
                f"dispute {dispute_id} is {dispute.resolving or dispute.state}: only an open "
                "dispute, or one resolved won or lost, is set against reversals (a resolution "
                "counts them itself)"
            )
        view, _ = await self._reconcile(dispute)
        return view or self._view(dispute)

    async def _late_reversals(
        self, dispute: Dispute
    ) -> tuple[JournalEntry, list[tuple[JournalEntry, int]]] | None:
        """A dispute resolved won or lost: its charge, and each of the acquirer's reversals of
        it with what of its release the cardholder holds twice (None: not resolved so, or its
        charge is gone from the journal). From the credit kept, a reversal owes what it takes
        the dispute's outcome below it (``_keeps``), and never more than it released: one
        the resolution counted owes nothing, and a dispute an older authhost resolved under
        other rules is not re-judged by today's, only relieved of the reversal's money."""
        if dispute.state not in stages.SETTLED:
            return None
        try:
            entry = await self._journal_entry(dispute.card_id, dispute.journal_id)
        except NotFoundError:
            return None
        keeps, released, parts = dispute.credited_minor, 0, []
        for reversal in await self._reversal_entries(entry):
            gave = abs(reversal.hold_amount)
            released += gave
            now = min(keeps, await self._keeps(dispute, dispute.state, entry, released))
            if part := min(keeps - now, gave):
                parts.append((reversal, part))
                keeps -= part
        return entry, parts

    async def _late_view(self, dispute: Dispute, view: dict[str, Any]) -> dict[str, Any]:
        """The view of a dispute resolved won or lost with ``late_reversals`` when the
        acquirer reversed its charge after the resolution: the chargeback's recalls that
        owes (the chargebacks file's partial recall lines), and what the cardholder holds
        twice (the dispute's credit and the reversal's release), with the command that takes
        it back."""
        found = await self._late_reversals(dispute)
        if found is None:
            return view
        recalls = await self._recalls_after_closing(dispute)
        excess = sum(part for _, part in found[1])
        if not recalls and not excess:
            return view
        todo = (
            f"the cardholder holds {excess} twice (the dispute's credit and the reversal's "
            f"release): tell the cardholder, then take it back (disputes reconcile "
            f"{dispute.dispute_id})"
            if excess
            else "nothing to take back: the chargebacks file recalls it"
        )
        return {
            **view,
            "late_reversals": {
                "recalls": [{"at": at, "amount_minor": amount} for at, amount in recalls],
                "recalled_minor": sum(amount for _, amount in recalls),
                "cardholder_excess_minor": excess,
                "todo": todo,
            },
        }

    async def _settle_late_reversals(self, before: Dispute) -> dict[str, Any]:
        """Take back from the cardholder of a dispute resolved won or lost what the acquirer's
        reversals of the charge since its resolution gave it a second time: each reversal's
        own part (``_late_reversals``), named after it (as a resolution names those it
        counts), so a retry or two runs at once move it once. The dispute records it
        (``late_taken_back_minor``, its credit lowered), audited (``dispute.reconcile``);
        unchanged when nothing is owed, and audited then if its last take-back's entry is
        missing (on Redis Cluster the entry follows the write)."""
        found = await self._late_reversals(before)
        if found is None or not found[1]:
            if before.late_taken_back_minor and not await self._late_audited(before):
                await self.record_audit(
                    "dispute.reconcile", before.dispute_id, None, self._view(before)
                )
            return await self._late_view(before, self._view(before))
        entry, parts = found
        if self.decide_many is None:
            raise Unavailable("taking a credit back posts through a running server's pipeline")
        try:
            for reversal, part in parts:
                await self._dispute_move(
                    before, entry.merchant_id, disputes.REVERSED, part,
                    charge=(reversal.journal_id, entry.ts), merchant_name=entry.merchant_name,
                )  # fmt: skip
        except (disputes.NotPosted, StoreError) as exc:
            raise Unavailable(
                f"the store failed while dispute {before.dispute_id}'s late reversals were "
                f"taken back ({exc}): reconcile it again (a retry moves nothing twice)"
            ) from None
        taken = sum(part for _, part in parts)
        keeps = before.credited_minor - taken
        why = (
            f"the acquirer reversed the charge after the dispute was {before.state}: {taken} "
            "the cardholder held twice taken back"
        )
        after = replace(
            before, credited_minor=keeps, version=before.version + 1,
            late_taken_back_minor=before.late_taken_back_minor + taken,
            late_taken_back_at=self.clock(), note=f"{before.note}; {why}" if before.note else why,
        )  # fmt: skip
        view = self._view(after)
        audit = self._audit_entry("dispute.reconcile", before.dispute_id, self._view(before), view)
        await self._write_dispute(
            after, before, again=f"reconcile it again (disputes reconcile {before.dispute_id})",
            audit=audit,
        )  # fmt: skip
        return await self._late_view(after, view)

    async def _late_audited(self, dispute: Dispute) -> bool:
        """Whether the audit log has the ``dispute.reconcile`` entry of the dispute's last
        late take-back (its ``late_taken_back_minor``, which each take-back raises)."""
        entries = await self.store.audit(subject=dispute.dispute_id, limit=1000)
        for entry in entries:
            if entry.action != "dispute.reconcile" or not entry.after:
                continue
            with contextlib.suppress(ValueError, AttributeError):
                after = json.loads(entry.after)
                if after.get("late_taken_back_minor") == dispute.late_taken_back_minor:
                    return True
        return False

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
                    charge=(plan.reversal, entry.ts), merchant_name=entry.merchant_name,
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
        elif lowered := stages.lowered_chargeback(claimed, plan.still):
            # charged back for more than the charge still takes: the chargeback is lowered
            # with it, and the chargebacks file recalls that part (a partial recall line)
            after = stages.with_partial_recall(after, lowered, self.clock())
            after = replace(after, note=f"{after.note}; chargeback lowered by {lowered}")
        view = self._view(after)
        before = replace(claimed, resolving="")
        entry = self._audit_entry("dispute.reconcile", claimed.dispute_id, self._view(before), view)
        await self._write_dispute(after, claimed, audit=entry)
        return view

    async def _write_dispute(
        self, dispute: Dispute, read: Dispute, again: str = "", audit: AuditEntry | None = None
    ) -> None:
        """Write ``dispute`` over ``read``, the version it was made from, or refuse (409):
        another request changed it since (claimed it, resolved it, or took it to another
        stage). ``again``: what to do when the store failed (default: resolve it again).
        ``audit``: the change's entry, written with it (both or neither; on Redis Cluster
        right after it)."""
        try:
            await self.store.update_dispute(dispute, read.version, audit, self.security.audit_seal)
        except Conflict:
            raise ConflictError(
                f"dispute {dispute.dispute_id} was changed by another request meanwhile (it is "
                "resolved, being resolved, or at another stage): read it again"
            ) from None
        except NotFound:
            raise NotFoundError(f"dispute {dispute.dispute_id} not found") from None
        except StoreError as exc:
            raise Unavailable(
                f"the store failed while dispute {dispute.dispute_id} was written ({exc}); "
                f"{again or 'resolve it again, ' + (dispute.resolving or dispute.state)}"
            ) from None

    # --- the network side: chargeback, representment, pre-arbitration (admin.dispute_stages) --

    async def charge_back_dispute(
        self, dispute_id: str, spec: rq.DisputeChargeback
    ) -> dict[str, Any]:
        """File the open dispute's chargeback with the network: under a reason code that fits
        its reason and the card's network, for at most the disputed amount, within
        ``chargeback_days`` of the charge. Audited (``dispute.chargeback``); asked again with
        the same values, answered as it stands."""
        before = await self._stored_dispute(dispute_id)
        entry = await self._journal_entry(before.card_id, before.journal_id)
        # the full ARN a clearing import kept on the charge, else its RRN (as before it was)
        charge = stages.Charge(entry.ts, entry.pan_masked, entry.arn or entry.rrn, entry.channel)
        return await self._network_step(
            before, "chargeback", spec.note,
            lambda d: stages.charge_back(
                d, charge, code=spec.reason_code, amount_minor=spec.amount_minor,
                limits=self.dispute_limits, now=self.clock(),
            ),
        )  # fmt: skip

    async def record_representment(
        self, dispute_id: str, spec: rq.DisputeRepresentment
    ) -> dict[str, Any]:
        """Record the acquirer's representment of a charged-back dispute: its date, reference
        and amount (at most what was charged back), within ``representment_days`` of the
        chargeback. Audited (``dispute.represented``); idempotent as a chargeback is."""
        before = await self._stored_dispute(dispute_id)
        if spec.currency and spec.currency != before.currency:
            raise InvalidRequest(
                f"currency {spec.currency} is not the dispute's ({before.currency})"
            )
        received = None if spec.date is None else stages.day_start(spec.date)
        return await self._network_step(
            before, "represented", spec.note,
            lambda d: stages.represented(
                d, received_at=received, reference=spec.reference,
                amount_minor=spec.amount_minor, limits=self.dispute_limits, now=self.clock(),
            ),
        )  # fmt: skip

    async def pre_arbitrate_dispute(
        self, dispute_id: str, spec: rq.DisputePreArbitration
    ) -> dict[str, Any]:
        """File the issuer's pre-arbitration against a representment, for at most the amount
        represented (default: all of it), within ``pre_arbitration_days`` of it. Audited
        (``dispute.pre_arbitration``)."""
        before = await self._stored_dispute(dispute_id)
        return await self._network_step(
            before,
            "pre_arbitration",
            spec.note,
            lambda d: stages.pre_arbitrate(
                d, amount_minor=spec.amount_minor, limits=self.dispute_limits, now=self.clock()
            ),
        )

    async def answer_pre_arbitration(
        self, dispute_id: str, spec: rq.DisputePreArbitrationAnswer
    ) -> dict[str, Any]:
        """Record the acquirer's answer to the issuer's pre-arbitration: accepted in full or
        in part (the resolution then leaves the cardholder what it accepted) or declined (the
        issuer may file arbitration within ``arbitration_days``), within
        ``pre_arbitration_answer_days`` of the pre-arbitration. Audited
        (``dispute.pre_arbitration_answer``); idempotent as the other steps are."""
        before = await self._stored_dispute(dispute_id)
        received = None if spec.date is None else stages.day_start(spec.date)
        return await self._network_step(
            before, "pre_arbitration_answer", spec.note,
            lambda d: stages.answer_pre_arbitration(
                d, answer=spec.answer, amount_minor=spec.amount_minor,
                limits=self.dispute_limits, now=self.clock(), received_at=received,
            ),
        )  # fmt: skip

    async def arbitrate_dispute(
        self, dispute_id: str, spec: rq.DisputeArbitration
    ) -> dict[str, Any]:
        """File the issuer's arbitration after the acquirer declined the pre-arbitration,
        within ``arbitration_days`` of the decline. Audited (``dispute.arbitration``)."""
        before = await self._stored_dispute(dispute_id)
        return await self._network_step(
            before,
            "arbitration",
            spec.note,
            lambda d: stages.arbitrate(d, limits=self.dispute_limits, now=self.clock()),
        )

    async def rule_arbitration(
        self, dispute_id: str, spec: rq.DisputeArbitrationRuling
    ) -> dict[str, Any]:
        """Record the network's ruling on the arbitration, which resolves the dispute won or
        lost with a resolution's money movement (``resolve_dispute``: claimed first, one
        movement, audited once, as ``dispute.arbitration_ruling``). The same ruling again
        answers the dispute as it stands; a ruling with no arbitration filed, or another
        ruling, is refused (409)."""
        before = await self._stored_dispute(dispute_id)
        if before.arbitration_ruling and before.state != "open":
            if before.arbitration_ruling == spec.ruling:
                return await self._as_recorded(before, "dispute.arbitration_ruling")
            raise ConflictError(
                f"dispute {dispute_id}: the network ruled {before.arbitration_ruling} already "
                f"(it is {before.state})"
            )
        if (
            refused := stages.ruling_refused(before, self.dispute_limits, self.clock())
        ) is not None:
            raise refused
        return await self._resolve(dispute_id, spec.ruling, spec.note, ruling=spec)

    async def _network_step(
        self, before: Dispute, step: str, note: str, take: Callable[[Dispute], Dispute]
    ) -> dict[str, Any]:
        """Take one network step (``take``: the dispute after it, or the refusal) and write it
        over the version read (a compare-and-set: of two at once one is written, the other
        refused 409), audited as ``dispute.STEP``. A step recorded with these values already
        is answered as it stands, and audited then if its first try's audit entry failed."""
        action = f"dispute.{step}"
        after = take(before)
        if after is before:
            return await self._as_recorded(before, action)
        after = stages.with_note(after, mask_pans_in_note(note), step)
        view = self._view(after)
        entry = self._audit_entry(action, before.dispute_id, self._view(before), view)
        try:
            await self._write_dispute(
                after, before, again="send it again with the same values", audit=entry
            )
        except ConflictError:
            # changed meanwhile: by the same step with the same values (a retry, the same file
            # imported twice at once), it is answered as recorded, as a repeat is (the request
            # that wrote it audits it); else 409
            now = await self._stored_dispute(before.dispute_id)
            try:
                recorded = take(now) is now
            except ServiceError:
                recorded = False
            if recorded:
                return self._view(now)
            raise
        return view

    async def _as_recorded(self, dispute: Dispute, action: str) -> dict[str, Any]:
        """A step asked again with the values it was recorded with: the dispute as it stands,
        audited now when it has no entry of the step (recorded on Redis Cluster, whose entry
        follows the write, or by an older authhost that appended it after)."""
        view = self._view(await self._dated(dispute))
        if not await self._audited(dispute.dispute_id, action):
            await self.record_audit(action, dispute.dispute_id, None, view)
        return view

    async def _audited(self, dispute_id: str, action: str) -> bool:
        """Whether the audit log has the dispute's ``action`` (a dispute has a few entries)."""
        entries = await self.store.audit(subject=dispute_id, limit=1000)
        return any(entry.action == action for entry in entries)

    async def _stored_dispute(self, dispute_id: str) -> Dispute:
        dispute = await self.store.get_dispute(dispute_id)
        if dispute is None:
            raise NotFoundError(f"dispute {dispute_id} not found")
        return dispute

    async def _dated(self, dispute: Dispute) -> Dispute:
        """A dispute recorded before the charge's time was kept (``charged_at`` 0), with that
        time from the charge's journal entry, for its chargeback limit (not written: the
        chargeback records it); as it is when that entry is gone or no limit needs it."""
        if dispute.charged_at or dispute.state != "open" or dispute.stage != "opened":
            return dispute
        try:
            entry = await self._journal_entry(dispute.card_id, dispute.journal_id)
        except NotFoundError:
            return dispute
        return replace(dispute, charged_at=entry.ts)

    def _view(self, dispute: Dispute) -> dict[str, Any]:
        return dispute_view(dispute, self.dispute_limits, self.clock())

    async def _pages(self, state: str, after: str = "") -> AsyncIterator[Dispute]:
        """Every dispute (in ``state``, after the id ``after``), a page at a time."""
        while page := await self.store.disputes(state, DISPUTE_PAGE, after):
            for dispute in page:
                yield dispute
            after = page[-1].dispute_id

    async def chargebacks_filed(
        self, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """The chargebacks filed in a business day or period, the recalls of those
        withdrawn (or lost before any representment, or reversed whole) in it after they were
        filed, and the partial recalls of those a partial reversal lowered in it (open), or
        a reversal in it made claim twice once resolved (``_recalls_after_closing``), for the
        networks' dispute systems (an adapter sends them on): a line each
        (``CHARGEBACK_COLUMNS``, ``action`` chargeback or recall: its ARN as journalled and
        the masked PAN, never the full one), in id order, a dispute's chargeback before its
        recall. Only the disputes opened since the network's
        whole life of a dispute (``network_life_days``) before the period are read: one
        opened earlier was charged back before it (the charge came before its dispute), and
        its network case closed before it too, so there is nothing left to recall."""
        start, end = _period(day, since, until, self.clock(), self.business_day)
        # a day for clocks
        reach = (stages.network_life_days(self.dispute_limits) + 1) * stages.DAY
        rows = []
        async for dispute in self._pages("", disputes.opened_since(start - reach)):
            if dispute.charged_back_at and start <= dispute.charged_back_at < end:
                rows.append(stages.chargeback_row(dispute))
            rows += stages.partial_recall_rows(dispute, start, end)
            if stages.recalled(dispute) and start <= dispute.closed_at < end:
                rows.append(stages.recall_row(dispute))
            if stages.owes_recalls_after_closing(dispute) and dispute.closed_at < end:
                late = await self._recalls_after_closing(dispute)
                rows += stages.partial_recall_rows(dispute, start, end, late)
        return {"since": start, "until": end, "chargebacks": rows}

    async def record_representments(
        self,
        rows: list[Row],
        on_row: Callable[[RepresentmentLine], None] = lambda result: None,
    ) -> list[RepresentmentLine]:
        """A representments file's lines (``REPRESENTMENT_COLUMNS``), each recorded on the
        dispute its ``dispute_id`` or ``arn`` names (``record_representment``): a line refused
        (no such dispute, out of order, past the acquirer's limit, a value that does not fit)
        is reported with its line number and writes nothing, and the others go on. A dispute
        is named by one line of the file: a second line naming it is refused."""
        by_arn: dict[str, list[tuple[str, str]]] = {}
        if any("arn" in row.values and "dispute_id" not in row.values for row in rows):
            async for dispute in self._pages("open"):
                if dispute.arn:
                    found = (dispute.dispute_id, dispute.arn)
                    by_arn.setdefault(dispute.arn[-12:], []).append(found)
        first_line: dict[str, int] = {}
        named: dict[int, str | RepresentmentLine] = {}
        for row in rows:
            target = _named_dispute(row, by_arn)
            if isinstance(target, str):
                if target in first_line:
                    target = RepresentmentLine(
                        row.line, target,
                        error=f"dispute {target} is on line {first_line[target]} too: one "
                        "line per dispute",
                    )  # fmt: skip
                else:
                    first_line[target] = row.line
            named[row.line] = target

        async def record(row: Row) -> RepresentmentLine:
            line = await record_line(row)
            # a card number in a cell (a dispute_id or arn column holding a PAN) is echoed in
            # the answer, the CLI's output and its results file: never in clear
            return replace(
                line, dispute_id=mask_pans_in_text(line.dispute_id),
                error=mask_pans_in_text(line.error),
            )  # fmt: skip

        async def record_line(row: Row) -> RepresentmentLine:
            target = named[row.line]
            if not isinstance(target, str):
                return target
            values = {k: csv_rows.whole_cell(v) if k == "amount_minor" else v
                      for k, v in row.values.items() if k not in ("dispute_id", "arn")}  # fmt: skip
            try:
                if "dispute_id" in row.values and "arn" in row.values:
                    await self._same_arn(target, row.values["arn"])
                spec = rq.DisputeRepresentment.model_validate(values)
                view = await self.record_representment(target, spec)
            except ValidationError as exc:
                return RepresentmentLine(row.line, target, error=invalid_request(exc).message)
            except ServiceError as exc:
                return RepresentmentLine(row.line, target, error=exc.message)
            return RepresentmentLine(row.line, target, stage=view["stage"])

        return await csv_rows.run_rows(rows, record, on_row)

    async def _same_arn(self, dispute_id: str, arn: str) -> None:
        """Refuse (422) a representments line naming a dispute by id whose chargeback went
        under another ARN (``dispute_stages.same_reference``: the full ARN whole, else the last
        12 characters): the acquirer answered another charge, or the line was mistyped."""
        dispute = await self._stored_dispute(dispute_id)
        if dispute.arn and not stages.same_reference(arn, dispute.arn):
            raise InvalidRequest(
                f"arn {arn[:40]} is not the one dispute {dispute_id} was charged back under "
                f"({dispute.arn}): check the line (the dispute_id or the arn is another's)"
            )

    async def import_representments(self, spec: rq.RepresentmentsImport) -> dict[str, Any]:
        """``record_representments`` for a file's text (the admin API's body): a file that
        cannot be read as a whole (no header, a missing or unknown column) is refused (422),
        nothing recorded; else every line's result and the counts."""
        try:
            rows = csv_rows.parse_rows(spec.csv, REPRESENTMENT_COLUMNS, "csv")
        except csv_rows.CsvFileError as exc:
            raise InvalidRequest(str(exc)) from None
        lines = await self.record_representments(rows)
        failed = sum(not line.ok for line in lines)
        return {
            "lines": len(lines),
            "recorded": len(lines) - failed,
            "failed": failed,
            "rows": [dataclasses.asdict(line) for line in lines],
        }

    async def get_dispute(self, dispute_id: str) -> dict[str, Any]:
        """The dispute's view; resolved won or lost, with what the acquirer's reversals of
        the charge since then owe (``late_reversals``)."""
        dispute = await self._dated(await self._stored_dispute(dispute_id))
        return await self._late_view(dispute, self._view(dispute))

    async def list_disputes(
        self,
        *,
        state: str = "",
        limit: int = 100,
        after: str = "",
        due_within_days: int | None = None,
        card_id: str = "",
    ) -> list[dict[str, Any]]:
        """Disputes in id order (oldest first); with ``due_within_days``, the open ones whose
        next action is the issuer's with a time limit within that many days from now (those
        overdue too), soonest limit first: what a back office must act on. ``card_id``: the
        disputes of that card and of the cards it replaced or that replaced it (a cardholder
        asking about a dispute calls with the card they hold now, often the fraud's
        replacement), by the store's index of disputes by card."""
        if state and state not in DISPUTE_STATES:
            raise InvalidRequest(f"state must be one of {', '.join(DISPUTE_STATES)}")
        if card_id:
            if after or due_within_days is not None:
                raise InvalidRequest("card_id lists a card's disputes: not with after or due")
            chain = await self._card_chain(await self._card(card_id))
            found = [d for c in chain for d in await self.store.disputes_of_card(c.card_id)]
            found = [d for d in found if not state or d.state == state]
            found.sort(key=lambda d: d.dispute_id)
            return [self._view(await self._dated(d)) for d in found[:limit]]
        if due_within_days is None:
            page = await self.store.disputes(state, limit, after)
            return [self._view(await self._dated(d)) for d in page]
        if state not in ("", "open") or after:
            raise InvalidRequest(
                "due_within_days lists open disputes, soonest limit first: give no state (or "
                "open) and no after"
            )
        now = self.clock()
        until = now + due_within_days * stages.DAY
        due = []
        async for dispute in self._pages("open"):
            dated = await self._dated(dispute)
            if stages.issuer_due_by(dated, self.dispute_limits, now, until):
                due.append(dated)
        due.sort(key=lambda d: stages.due_order(d, self.dispute_limits))
        return [self._view(d) for d in due[:limit]]

    async def _dispute_move(
        self,
        dispute: Dispute,
        merchant: str,
        step: str,
        amount: int,
        *,
        charge: tuple[int, float] | None = None,
        merchant_name: str = "",
    ) -> dict[str, Any]:
        """``disputes.move`` with the card's clear PAN; ``merchant_name``: the disputed
        charge's field 43, which the movement carries so that it is read as that charge's."""
        card_id = dispute.card_id
        pan = await self._clear_pan(card_id)
        try:
            return await disputes.move(
                self.store, self.security.pan_index, self.decide_many, dispute, pan, merchant,
                step, amount, charge=charge, merchant_name=merchant_name,
            )  # fmt: skip
        finally:
            del pan
