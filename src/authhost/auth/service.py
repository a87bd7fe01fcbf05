"""The authorisation service: one store read, the pure pipeline, one atomic store write.

This is the decision handler the server calls for every financial message (0100, 0200,
advices, reversals). It is async because the store is, but it uses no trio: the only
concurrency primitive is anyio's shielded cancel scope, so that a commit that has started is
never torn by the request deadline (an approved hold is written before the response leaves,
and a response always matches what was written).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import anyio.lowlevel

from authhost.auth.approval import ApprovalCodes
from authhost.auth.card_turns import CardTurns
from authhost.auth.decision import Decision, Decline
from authhost.auth.issuer_scripts import (
    NO_REPORT,
    PIN_CHANGE_CODE,
    PIN_UNBLOCK_CODE,
    SENT_REASONS,
    DueScripts,
    due_scripts,
    queueable,
    reports_script_results,
    resent_commands,
    script_report,
)
from authhost.auth.keys import looked_up_original, match_key, original_key, replacement_amount
from authhost.auth.late_reversals import (
    ORPHAN_INTENT,
    is_orphan,
    orphan_intent,
    reversal_release,
)
from authhost.auth.pipeline import Pipeline
from authhost.auth.steps.card_verification import checked_cryptogram
from authhost.auth.steps.funds import DECLINED_BY_NETWORK
from authhost.auth.transaction import Transaction
from authhost.cards.acceptor_velocity import terminal_key
from authhost.cards.model import Account, Card, CardKind, Product
from authhost.cards.pin import with_chip_unblock
from authhost.cards.tokens import token_age_hours
from authhost.cards.travel import covers
from authhost.iso.codec import MESSAGE_CLASSES
from authhost.iso.codes import ResponseCode as RC
from authhost.iso.messages import AuthRequest, Balance, MessageClass
from authhost.models.context import COMPLETION_REASON, PRESENTMENT
from authhost.security.emv import (
    ARQC,
    ATC,
    PSN,
    ChipDataError,
    Cryptogram,
    issuer_authentication_tlv,
    pan_sequence_number,
    parse_tlv,
)
from authhost.security.emv_scripts import ScriptCommand
from authhost.security.errors import SecurityError
from authhost.security.masking import mask_pan
from authhost.security.module import OfflinePin, PinCheck
from authhost.store.interface import (
    ATC_JUMP,
    ATC_REPLAY,
    BALANCE_BOUND_REASON,
    CAVV_REUSED,
    PIN_CHANGE_CONFLICT,
    PIN_CHANGE_REPLAY_WRONG,
    PIN_LOCKED_MEANWHILE,
    CardStore,
    Commit,
    CommitResult,
    Snapshot,
    SnapshotQuery,
    StoreUnavailable,
)
from authhost.store.money import balance_delta
from authhost.store.records import JournalEntry, copy_entry

log = logging.getLogger("authhost.auth")

REVERSALS = frozenset({MessageClass.REVERSAL, MessageClass.REVERSAL_ADVICE})
ADVICES = frozenset({MessageClass.AUTHORISATION_ADVICE, MessageClass.FINANCIAL_ADVICE})
# journal entries of requests answered off the pipeline that may wait for a failing store
PENDING_LIMIT = 100_000
# how many of them one store round trip writes
PENDING_BATCH = 500


def _anyio_shield() -> AbstractContextManager[Any]:
    return anyio.CancelScope(shield=True)


class AuthService:
    """Decides financial requests. Call it as ``await service(request, received_at)``."""

    def __init__(
        self,
        store: CardStore,
        security,  # authhost.security.module.SecurityModule
        pipeline: Pipeline,
        advice_pipeline: Pipeline,
        approvals: ApprovalCodes | None = None,
        timeout_code: str = "91",
        shield: Callable[[], AbstractContextManager[Any]] | None = None,
        atc_jump_limit: int = 0,
        acceptor_counters: Callable[[], bool] = lambda: True,
        pin_try_limit: int = 3,
    ) -> None:
        self._store = store
        # whether the snapshots read the merchant and terminal counters: the runtime asks the
        # rules (only a rule reads them), so a host without such a rule does not pay for them
        self._acceptor_counters = acceptor_counters
        # a cancel scope that shields the commit from the deadline: anyio's by default; the
        # server passes trio's own, a third of the cost per request (measured 7 vs 23 µs)
        self._shield = shield or _anyio_shield
        self._security = security
        self._pipeline = pipeline
        self._advice_pipeline = advice_pipeline
        self._approvals = approvals or ApprovalCodes()
        self._timeout_code = RC(timeout_code)
        self._atc_jump_limit = atc_jump_limit
        self._pin_try_limit = pin_try_limit
        # journal entries of requests answered off the pipeline (deadline, rejected frames,
        # MAC failures...), written by flush_pending so no answer waits for the store; bounded
        # so a store down for long cannot exhaust memory, and what the bound drops is counted
        self._pending: deque[JournalEntry] = deque()
        self._flushing = 0  # taken off the queue by a flush still waiting for the store
        self.pending_limit = PENDING_LIMIT
        self.pending_dropped = 0
        # since when (time.monotonic) the store has refused to write them (StoreUnavailable:
        # a full disk, Redis out of memory), and its words; None and "" once all are written
        self.pending_refused_since: float | None = None
        self.pending_error = ""
        # one card's requests in this process are decided one after another (``CardTurns``)
        self._turns = CardTurns()
        # accounts this process approved a reversal on since the runtime last took them: an
        # open dispute of the charge is set against it at once (runtime.reconcile_disputes)
        self._reversed_accounts: set[str] = set()

    async def __call__(self, request: AuthRequest, received_at: float) -> Decision:
        (outcome,) = await self.decide_many((request,), received_at)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def decide_many(
        self, requests: Sequence[AuthRequest], received_at: float
    ) -> list[Decision | Exception]:
        """Requests that arrived together (one read from a switch connection): their snapshots
        are read one after another, each is decided on its own, and their commits share one
        store write and one wait. One decision per request, in order, or the exception that
        deciding it raised: a failure never affects the others.

        A card's later request in the batch is decided after its earlier one is written (a
        second round) when that one can change its answer (``_needs_the_first``): on one
        snapshot both would pass a daily limit that only one fits, and a reversal would miss
        the hold its original is about to write. Requests of other cards
        share a snapshot moment, as concurrent requests always do: the commit re-checks funds
        and duplicates, so two requests on one account cannot overspend. When the deadline
        cuts a later round short, the earlier rounds' decisions are returned (they are
        written) and the later slots are None: the caller answers those as timed out.

        Requests of one card on other connections of this process wait for each other
        (``CardTurns``): a round holding a card another round holds waits until that one is
        written. A request whose write found the card's velocity history moved on since its snapshot
        (a request of the card on another connection or in another process was written
        meanwhile: ``CommitResult.stale``) wrote nothing and is decided again in the next
        round, on a new snapshot, until it is written or the deadline comes. After
        ``STALE_ROUNDS`` rounds that found some stale, the commits go without the check: a
        safety valve, never reached by a card used from a few places at once (each round
        writes at least one of the card's contenders). So does a reversal whose card change
        (a PIN change undone, scripts queued again) found the card changed since its snapshot
        (``Commit.card_required``), with no valve: dropped, the change would be lost. Its
        deadline ends it as any request's: answered with the timeout code, journalled as
        such ("deadline"), nothing of it written, so the switch's repeat is decided afresh.
        """
        started = time.perf_counter_ns()
        pan_indexes = [self._pan_index(request.pan) for request in requests]
        outcomes: list[Decision | Exception | None] = [None] * len(requests)
        left = list(range(len(requests)))  # positions not decided yet
        stale_rounds = 0
        later = False  # a round after the first (one whose requests were all stale is one too)
        turns = self._turns
        while left:
            cards = [pan_indexes[i] for i in left]
            taken: list[str] = []
            waiting = True
            try:
                if later:
                    # a later round: a store that reads without yielding (SQLite on the
                    # loop's thread) would otherwise decide and write it past the deadline,
                    # and a request stale round after round would never stop
                    await anyio.lowlevel.checkpoint_if_cancelled()
                while busy := turns.busy(cards):  # another round of this process has it
                    await turns.wait_for(busy)
                waiting = False
                taken = turns.take(cards)
                decided, deferred, stale = await self._decide_together(
                    [requests[i] for i in left], received_at, cards, stale_rounds < STALE_ROUNDS
                )
            except anyio.get_cancelled_exc_class():
                if waiting:  # the deadline came while waiting for a card's turn
                    for i in left:
                        self._journal_timeout(requests[i], received_at, started)
                if len(left) == len(requests):
                    # the first round, or later ones that found them all stale: nothing of
                    # them is written, every request timed out
                    raise
                # the deadline came during a later round: the earlier rounds are written and
                # their answers must go out as written; the rest (journalled as timeouts by
                # their round) are the caller's to answer as it answers a deadline. The
                # cancellation is not lost: the caller's next checkpoint in the cancelled
                # scope raises it again
                return outcomes  # type: ignore[return-value]
            except Exception as error:  # the store failed: this round's requests get 96
                for i in left:
                    outcomes[i] = error
                break  # earlier rounds are written: their answers go out as written
            finally:
                turns.give_back(taken)
            for position, outcome in zip(left, decided, strict=True):
                outcomes[position] = outcome
            if stale:
                stale_rounds += 1
                if stale_rounds == STALE_ROUNDS:
                    log.warning("a card's requests were stale %d rounds running", stale_rounds)
            left = [left[i] for i in deferred]
            later = True
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, Exception):
                self._journal_failed(request, received_at, started)
        return outcomes  # type: ignore[return-value]  # every slot is filled

    async def _decide_together(
        self,
        requests: Sequence[AuthRequest],
        received_at: float,
        pan_indexes: list[str],
        check_marks: bool,
    ) -> tuple[list[Decision | Exception | None], list[int], bool]:
        """One round of ``decide_many``: one snapshot read, one write. Also the positions
        of the requests left for the next round (``_needs_the_first``, or their write found
        them stale), whose slots stay None, and whether any was stale. ``check_marks``: the
        commits whose decision a concurrent request of the card could change carry the
        snapshot's velocity mark (``_reads_the_cards_history``)."""
        started = time.perf_counter_ns()
        deferred: list[int] = []
        stale = False
        # the cards decided in this round: whether one of their requests carried a PIN
        decided: dict[str, bool] = {}
        outcomes: list[Decision | Exception | None] = [None] * len(requests)
        committing = False
        try:
            acceptors = self._acceptor_counters()
            read_started = time.perf_counter_ns()
            snapshots = await self._store.snapshot_many(
                [
                    SnapshotQuery(
                        pan_index,
                        received_at,
                        dedupe_key=request.dedupe_key,
                        original_key=looked_up_original(request),
                        merchant=(request.merchant_id or "") if acceptors else "",
                        terminal=terminal_key(request.merchant_id or "", request.terminal_id or "")
                        if acceptors
                        else "",
                    )
                    for request, pan_index in zip(requests, pan_indexes, strict=True)
                ]
            )
            # the store's share of each decision's time (the batch's, when decided together)
            read_us = (time.perf_counter_ns() - read_started) // 1000
            pending: list[tuple[int, Decision, Commit, Snapshot]] = []
            # the wrong new PINs of retransmitted PIN changes: counted as guesses (one check
            # per card per batch: the count of the first is written before the next batch)
            guesses = PinGuesses()
            for index, snapshot in enumerate(snapshots):
                request = requests[index]
                try:
                    if isinstance(snapshot, Exception):
                        raise snapshot
                    pan_index = pan_indexes[index]
                    if pan_index in decided and _needs_the_first(
                        request, snapshot, decided[pan_index]
                    ):
                        deferred.append(index)
                        continue
                    if pan_index:
                        had_pin = decided.get(pan_index, False)
                        decided[pan_index] = had_pin or request.pin_block is not None
                    if snapshot.previous is not None:
                        outcomes[index] = self._replayed(
                            snapshot.previous, request, snapshot, pan_index, guesses,
                            snapshot.account,
                        )  # fmt: skip
                        continue
                    if request.message_class in REVERSALS:
                        decision, commit = self._reverse(request, snapshot, received_at)
                    else:
                        decision, commit = self._decide(
                            request, snapshot, received_at, pan_indexes[index]
                        )
                except Exception as exc:
                    outcomes[index] = exc
                    continue
                if check_marks and _reads_the_cards_history(request, snapshot, decision, commit):
                    commit.velocity_mark = snapshot.velocity_mark
                commit.journal.latency_us = (time.perf_counter_ns() - started) // 1000
                decision.timings_us = {"store_read": read_us, **decision.timings_us}
                pending.append((index, decision, commit, snapshot))
            if pending or guesses.wrong:
                committing = True
                with self._shield():
                    write_started = time.perf_counter_ns()
                    commits = [p[2] for p in pending] + guesses.wrong
                    results = await self._store.commit_many(commits)
                write_us = (time.perf_counter_ns() - write_started) // 1000
                if guesses.wrong:
                    _log_uncounted(results[len(pending) :])
                    results = results[: len(pending)]
                late_guesses = PinGuesses(checked=guesses.checked)
                orphans: list[tuple[JournalEntry, int]] = []
                for (index, decision, _, snapshot), result in zip(pending, results, strict=True):
                    decision.timings_us["store_write"] = write_us
                    request, pan_index = requests[index], pan_indexes[index]
                    if isinstance(result, Exception):
                        outcomes[index] = result
                    elif result.stale:  # nothing written: decided again on a new snapshot
                        deferred.append(index)
                        stale = True
                    elif result.duplicate_of is not None:  # an earlier copy was written first
                        # (one written by this very batch: its snapshot is from before it, so
                        # a PIN change's new PIN is not checked against it)
                        writer = _written_by(results, result.duplicate_of.journal_id)
                        outcomes[index] = self._replayed(
                            result.duplicate_of, request, snapshot, pan_index,
                            None if writer else late_guesses,
                            writer.account if writer else result.account,
                        )  # fmt: skip
                    else:
                        outcomes[index] = settled(decision, result, request, snapshot, pan_index)
                        if request.message_class in REVERSALS and snapshot.account is not None:
                            self._reversed_accounts.add(snapshot.account.account_id)
                        if request.message_class in REVERSALS and is_orphan(result.journal):
                            orphans.append((result.journal, replacement_amount(request) or 0))
                if orphans:  # their originals may still come (auth.late_reversals)
                    with self._shield():
                        await self._remember_orphans(orphans)
                if late_guesses.wrong:  # counted before the answers leave, as any PIN try
                    with self._shield():
                        await self._count_guesses(late_guesses.wrong)
        except anyio.get_cancelled_exc_class():
            if not committing:
                for request in requests:
                    self._journal_timeout(request, received_at, started)
            raise
        deferred.sort()  # a card's requests stay in the order they came
        return outcomes, deferred, stale

    # --- decisions -------------------------------------------------------------------------

    def _decide(
        self, request: AuthRequest, snapshot: Snapshot, now: float, pan_index: str
    ) -> tuple[Decision, Commit]:
        tx = Transaction(request=request, snapshot=snapshot, now=now)
        advice = request.message_class in ADVICES
        pipeline = self._advice_pipeline if advice else self._pipeline
        outcome = pipeline.run(tx)
        decline = outcome.decline
        if decline is None and request.is_account_verification:
            # every check passed, nothing is authorised: 85 and no approval code
            code, approval, reasons = RC.NO_REASON_TO_DECLINE, None, ["verification", *tx.reasons]
        elif decline is None:
            code = RC.APPROVED if tx.partial_amount_minor is None else RC.PARTIAL_APPROVAL
            reasons = [*tx.reasons]
            if advice and DECLINED_BY_NETWORK in reasons:
                # acknowledged (00) and journalled, but nothing was approved: no approval code
                # in the answer (field 38 is an approval's) nor in the journal
                approval = None
            elif advice:
                if request.presentment:  # a clearing row: not the network's approval
                    reasons.append(PRESENTMENT)
                elif not any(r.startswith(COMPLETION_REASON) for r in reasons):
                    reasons.append("advice.stand_in")  # a completion is no stand-in approval
                # the network's approval code (field 38), which the merchant got and its
                # clearing presents: the clearing finds the advice's hold or posting by it
                reported = (request.reported_approval_code or "").strip()
                approval = reported or self._approvals.next(now)
            else:
                approval = self._approvals.next(now)
        else:
            code, approval, reasons = decline.response_code, None, [decline.reason, *tx.reasons]
        decision = Decision(
            response_code=code,
            approval_code=approval,
            reason_codes=reasons,
            fraud_score=tx.fraud_score,
            model_score=tx.model_score,
            challenger_score=tx.challenger_score,
            model_skipped=tx.model_skipped,
            model_reasons=tx.model_reasons,
            rule_matches=tx.rule_matches,
            review=tx.review,
            timings_us=outcome.timings_us,
            cryptogram=tx.cryptogram,
            cavv_result=tx.cavv_result,
            avs_result=tx.avs_result,
            cvv2_result=tx.cvv2_result,
            token=tx.token,
        )
        card = snapshot.card
        scripts = self._chip_scripts(tx, decline, decision)
        entry = journal_entry(request, snapshot, decision, now, pan_index)
        if code is RC.PARTIAL_APPROVAL:
            # the journal's amount is what the card was charged (the velocity counters and
            # limits add it up); transaction_amount_minor keeps what the merchant asked for
            decision.approved_amount_minor = entry.amount_minor = tx.partial_amount_minor
        entry.pin_present = request.pin_block is not None
        entry.pin_failed = tx.pin_failed
        if tx.cryptogram is not None:
            entry.atc = tx.cryptogram.atc
        entry.cvv_failed = tx.cvv_failed
        entry.match_key = match_key(request)
        movement = tx.movement if decline is None else None
        if movement is not None:
            entry.hold_amount, entry.movement = movement.amount_minor, movement.kind.value
            entry.completes = movement.completes  # the hold a completion posts: clearing's link
            if snapshot.account is not None:  # as the store will find it (it corrects it)
                entry.balance_delta = balance_delta(
                    snapshot.account.kind, movement.kind, movement.amount_minor
                )
        commit = Commit(
            journal=entry,
            movement=movement,
            card_id=card.card_id if card else "",
            pin_wrong=tx.pin_failed,
            pin_limit=tx.pin_limit,
            atc=tx.cryptogram.atc if tx.cryptogram is not None else None,
            cavv_atn=tx.cavv_atn if decision.approved else "",
            atc_jump_limit=self._atc_jump_limit
            if snapshot.product is None or snapshot.product.atc_jump_limit is None
            else snapshot.product.atc_jump_limit,
        )
        if card is not None:
            _change_card(commit, card, tx, decline is None, scripts)
        return decision, commit

    def _replayed(
        self,
        previous: JournalEntry,
        request: AuthRequest,
        snapshot: Snapshot,
        pan_index: str,
        guesses: PinGuesses | None,
        account: Account | None,
    ) -> Decision:
        """The original answer again (``replayed``) with the balances of ``account`` (the
        account as it is, after the original's write; None when that is not known: no field
        54 rather than one without the original's hold), and the ARPC a chip needs when the
        first answer was lost: made again from the retransmission's cryptogram when it is
        genuine and of the counter the original verified (a chip never uses a counter twice,
        so it is the same cryptogram and the same ARPC), and the issuer script commands the
        original carried (``issuer_scripts.resent_commands``)."""
        decision = replayed(previous, request, pan_index)
        if decision.response_code is not RC.DUPLICATE_TRANSMISSION:
            with_balances(decision, request, account)
        product = snapshot.product
        if (
            request.icc_data is None
            or product is None
            or decision.response_code is RC.DUPLICATE_TRANSMISSION
        ):
            return decision
        verified = False
        if previous.atc >= 0 and product.imk_ac_name:
            try:
                found = checked_cryptogram(
                    self._security, request, request.icc_data, product.imk_ac_name,
                    product.chip_cvn,
                )  # fmt: skip
            except (ChipDataError, SecurityError):
                found = None
            if found is not None and found[0].valid and found[0].atc == previous.atc:
                with_arpc(decision, found[0], previous.atc)
                verified = True
        reasons = previous.reason_codes.split(";")
        same_pin = False
        if verified and SENT_REASONS[ScriptCommand.PIN_CHANGE] in reasons and guesses is not None:
            same_pin = self._new_pin_checked(previous, request, snapshot, guesses)
        commands = resent_commands(reasons, verified, same_pin)
        if commands and product.imk_smi_name:
            script = self._issuer_script(request, snapshot, DueScripts(commands))
            if script is not None:  # the same commands, MACed over the same cryptogram
                decision.icc_response = (decision.icc_response or b"") + script
        return decision

    async def _count_guesses(self, commits: list[Commit]) -> None:
        _log_uncounted(await self._store.commit_many(commits))

    def _new_pin_checked(
        self,
        previous: JournalEntry,
        request: AuthRequest,
        snapshot: Snapshot,
        guesses: PinGuesses,
    ) -> bool:
        """The new PIN of a retransmitted PIN change (field 125) is the one the card has now
        (the original changed it): only then may its answer carry the PIN CHANGE again. The
        check is a PIN try like any other: whoever can resend a captured PIN change with
        another field 125 would otherwise test PINs without limit. A wrong one is counted
        (and journalled) as a wrong PIN, a locked card is not checked, and only one check per
        card is made in a batch (the next batch sees the count)."""
        card = snapshot.card
        if card is None or card.pin_tries >= self._pin_try_limit:
            return False
        if card.card_id in guesses.checked:
            return False
        guesses.checked.add(card.card_id)
        same = self._new_pin_is_the_cards(request, snapshot)
        if not same:
            guess = copy_entry(previous)
            guess.ts, guess.journal_id = time.time(), 0
            guess.response_code, guess.approval_code = RC.INCORRECT_PIN.value, ""
            guess.reason_codes = PIN_CHANGE_REPLAY_WRONG
            guess.dedupe_key = guess.match_key = guess.movement = ""
            guess.hold_amount = guess.balance_delta = 0
            guess.pin_failed, guess.review = True, False
            guesses.wrong.append(Commit(journal=guess, card_id=card.card_id, pin_wrong=True))
        return same

    def _new_pin_is_the_cards(self, request: AuthRequest, snapshot: Snapshot) -> bool:
        card, product = snapshot.card, snapshot.product
        if request.new_pin_block is None or card is None or product is None or not request.pan:
            return False
        if card.pin_reference is None:
            return False
        try:
            source = self._security.pin_source(request.security_control, request.acquirer_id)
            check = self._security.verify_pin(
                request.new_pin_block, request.pan, source, card.pin_method,
                product.pvk_name, product.pvki, card.pin_reference,
            )  # fmt: skip
        except SecurityError:
            return False
        return check is PinCheck.OK

    def _chip_scripts(
        self, tx: Transaction, decline: Decline | None, decision: Decision
    ) -> DueScripts:
        """The issuer scripts of this answer (``auth.issuer_scripts``), made into the
        decision's tag 72, and the chip's report on earlier ones, both into its reasons."""
        request, reasons = tx.request, decision.reason_codes
        report = NO_REPORT
        if request.icc_data is not None and reports_script_results(request):
            report = script_report(request.icc_data)
            reasons.extend(report.reasons)
        checked = tx.cryptogram is not None
        snapshot = tx.snapshot
        scripts = due_scripts(
            request, snapshot.card, snapshot.product, decline, checked, report.failed
        )
        if scripts.commands:
            decision.issuer_script = self._issuer_script(request, snapshot, scripts)
            if decision.issuer_script is None:  # not sent: kept (or queued) for the next
                return DueScripts((), requeue=queueable(scripts.commands))
            reasons.extend(scripts.reasons)
        return scripts

    def _issuer_script(
        self, request: AuthRequest, snapshot: Snapshot, scripts: DueScripts
    ) -> bytes | None:
        """Tag 72 of the answer, MACed for the chip that sent field 55; None when field 55
        lacks what the MAC covers or the product's IMK-SMI is missing (logged: the answer
        goes without it)."""
        product = snapshot.product
        assert product is not None and request.icc_data is not None and request.pan
        try:
            tags = parse_tlv(request.icc_data)
            atc, arqc = tags.get(ATC), tags.get(ARQC)
            if atc is None or arqc is None:
                return None
            psn = pan_sequence_number(tags.get(PSN), request.card_sequence)
            new_pin = None
            if ScriptCommand.PIN_CHANGE in scripts.commands and request.new_pin_block:
                source = self._security.pin_source(request.security_control, request.acquirer_id)
                new_pin = OfflinePin(
                    request.new_pin_block, source, product.imk_ac_name, product.imk_smc_name
                )
            return self._security.issuer_script(
                request.pan, psn, product.chip_cvn, atc, arqc, scripts.commands,
                product.imk_smi_name, new_pin,
            )  # fmt: skip
        except ChipDataError:
            return None
        except SecurityError as exc:
            log.warning("issuer script not sent (product %s): %s", product.product_id, exc)
            return None

    def _reverse(
        self, request: AuthRequest, snapshot: Snapshot, now: float
    ) -> tuple[Decision, Commit]:
        """Reversals are always acknowledged; they release what the original still holds, a
        reversed PIN change puts the card's PIN before it back, and the queued chip scripts
        the original answer carried are queued again. Such a card change is required
        (``Commit.card_required``): when another writer changed the card since the snapshot,
        the commit writes nothing and ``decide_many`` decides the reversal again on a new
        snapshot, until it is written or the deadline comes (then it is answered and
        journalled as timed out, and nothing of it is written)."""
        hold = snapshot.original
        reasons: list[str] = []
        movement = None
        undone = pin_change_undone(request, snapshot.card)
        requeued = pin_unblock_requeued(request, snapshot.card, snapshot.product)
        changed = chip_scripts_requeued(request, undone or requeued or snapshot.card)
        if changed is not None:  # the answer's scripts, and with them whatever is undone
            reasons.append("reversal.chip_scripts_requeued")
        if undone is not None:
            reasons.append("reversal.pin_change_undone")
        elif requeued is not None:
            reasons.append("reversal.pin_unblock_requeued")
        elif hold is None:
            if changed is None:  # (a declined answer that carried scripts held no money)
                reasons.append("reversal.unknown_original")
        else:
            remaining = replacement_amount(request)  # in the cardholder's currency
            movement = reversal_release(hold, remaining or 0)
            if movement is not None:
                reasons.append("reversal.partial" if remaining else "reversal.full")
            else:
                reasons.append("reversal.nothing_to_release")
        decision = Decision(response_code=RC.APPROVED, reason_codes=reasons)
        entry = journal_entry(request, snapshot, decision, now, self._pan_index(request.pan))
        entry.match_key = original_key(request)
        if movement is not None:
            entry.hold_amount, entry.movement = -movement.amount_minor, movement.kind.value
        card = changed or undone or requeued
        commit = Commit(
            journal=entry,
            movement=movement,
            card_id=snapshot.card.card_id if snapshot.card else "",
            # written with the rest only if the card is as read; else nothing is written (the
            # result is stale) and the reversal is decided again on the card as it is now: a
            # change lost would leave the PIN the cardholder uses wrong, or the chip blocked
            delivered_card=card,
            card_required=card is not None,
        )
        return decision, commit

    def _journal_timeout(self, request: AuthRequest, now: float, started: int) -> None:
        """A request the deadline cut short before its commit (answered 91)."""
        self._journal_undecided(request, self._timeout_code, "deadline", now, started)

    def _journal_failed(self, request: AuthRequest, now: float, started: int) -> None:
        """A request whose decision failed (the store down or refusing writes: answered 96)."""
        self._journal_undecided(request, RC.SYSTEM_MALFUNCTION, "error", now, started)

    def _journal_undecided(
        self, request: AuthRequest, code: str, reason: str, now: float, started: int
    ) -> None:
        """A request answered without a decision still gets its one journal entry, queued and
        written by ``flush_pending`` (the answer never waits for a slow or failed store), so
        the journal holds every answer the switch had. The entry does not take the
        transmission's dedupe key: nothing was written for it, so a retransmission (the
        switch's repeat, a clearing file or dispute step run again with its fixed STAN and
        RRN) is decided then rather than answered 91 or 96 again; a commit that did go
        through holds the key with its own entry, and a retransmission gets that answer."""
        decision = Decision(response_code=RC(code), reason_codes=[reason])
        entry = journal_entry(request, Snapshot(), decision, now, self._pan_index(request.pan))
        entry.dedupe_key = ""
        entry.latency_us = (time.perf_counter_ns() - started) // 1000
        self._queue(entry)

    def journal_answered_here(
        self, request: AuthRequest, decision: Decision, received_at: float
    ) -> None:
        """A request the server answered itself (MAC failure 63, unknown message class 12):
        its journal entry, without a card (the pipeline never looked it up)."""
        entry = journal_entry(
            request, Snapshot(), decision, received_at, self._pan_index(request.pan)
        )
        self._queue(entry)

    def journal_rejected_frame(
        self, mti: str, fields: Mapping[str, str], received_at: float
    ) -> None:
        """A frame that did not decode, answered 30: journalled with the fields that could be
        read and that the answer echoed (never the PAN: it is not among them)."""
        amount = fields.get("4", "")
        self._queue(
            JournalEntry(
                ts=received_at,
                mti=mti,
                message_class=str(MESSAGE_CLASSES.get(mti, MessageClass.UNKNOWN)),
                response_code=str(RC.FORMAT_ERROR),
                processing_code=fields.get("3", ""),
                amount_minor=int(amount) if amount.isascii() and amount.isdigit() else 0,
                currency=fields.get("49", ""),
                terminal_id=fields.get("41", ""),
                merchant_id=fields.get("42", ""),
                acquirer_id=fields.get("32", ""),
                stan=fields.get("11", ""),
                rrn=fields.get("37", ""),
                transmission_time=fields.get("7", ""),
                reason_codes="format",
            )
        )

    def _queue(self, entry: JournalEntry) -> None:
        """Queue an entry for ``flush_pending``; past ``pending_limit`` (the store has been
        failing for long) the entry is dropped, counted and logged, never silently."""
        if len(self._pending) >= self.pending_limit:
            self.pending_dropped += 1
            if self.pending_dropped == 1 or self.pending_dropped % PENDING_LIMIT == 0:
                log.error(
                    "%d journal entries of requests answered off the pipeline dropped: "
                    "%d are waiting for the store",
                    self.pending_dropped,
                    len(self._pending),
                )
            return
        self._pending.append(entry)

    @property
    def pending(self) -> int:
        """How many journal entries wait for ``flush_pending``, with those a flush is writing
        at this moment (off the queue, not yet in the store)."""
        return len(self._pending) + self._flushing

    async def _remember_orphans(self, orphans: list[tuple[JournalEntry, int]]) -> None:
        """An intent per reversal that found no original, for the sweep that reverses the
        original if it comes after all (``auth.late_reversals``): one write on that rare path
        only. The reversal is written and acknowledged whatever becomes of it: a store that
        refuses it is logged (that original, if it comes, is held until it expires)."""
        for entry, keep in orphans:
            subject, data = orphan_intent(entry, keep)
            try:
                await self._store.put_intent(ORPHAN_INTENT, subject, data)
            except Exception:
                log.exception(
                    "reversal %d found no original and could not be remembered: its original, "
                    "if it comes, stays held until it expires", entry.journal_id,
                )  # fmt: skip

    def take_reversed_accounts(self) -> set[str]:
        """The accounts with a reversal approved since the last call (then forgotten)."""
        taken, self._reversed_accounts = self._reversed_accounts, set()
        return taken

    def journal_backlog(self) -> tuple[int, float | None, str]:
        """(entries waiting, seconds the store has refused to write them or None, its words):
        what ``/readyz`` reads. A store can answer reads while it refuses every write (a full
        disk, Redis at its maxmemory), and then every request that needs a write is answered
        96: the read probe alone would call such a host ready."""
        since = self.pending_refused_since
        refused_for = None if since is None else max(0.0, time.monotonic() - since)
        return self.pending, refused_for, self.pending_error

    async def flush_pending(self) -> int:
        """Write the queued journal entries (see ``_pending``) in batches of
        ``PENDING_BATCH``, one store round trip each; returns how many were written. A batch
        the store refuses goes back to the front of the queue, in order, for the next call."""
        written = 0
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(PENDING_BATCH, len(self._pending)))]
            self._flushing = len(batch)
            try:
                outcomes = await self._store.commit_many([Commit(journal=e) for e in batch])
            except Exception as error:  # the store is down: the whole batch waits
                outcomes = [error] * len(batch)
            finally:
                self._flushing = 0
            failed = [
                e
                for e, outcome in zip(batch, outcomes, strict=True)
                if isinstance(outcome, Exception)
            ]
            written += len(batch) - len(failed)
            if failed:
                self._pending.extendleft(reversed(failed))
                why = next(o for o in outcomes if isinstance(o, Exception))
                if isinstance(why, StoreUnavailable):
                    if self.pending_refused_since is None:
                        self.pending_refused_since = time.monotonic()
                    self.pending_error = str(why)
                log.warning(
                    "journal write of %d requests answered off the pipeline failed (%s); "
                    "will retry",
                    len(failed),
                    f"{why}"[:300] or type(why).__name__,
                )
                break
        else:  # every entry is written: the store takes writes again (a full disk writes a
            # few now and then, so one success alone does not say so)
            self.pending_refused_since, self.pending_error = None, ""
        return written

    def _pan_index(self, pan: str | None) -> str:
        if not pan or not pan.isdigit():
            return ""
        return self._security.pan_index(pan)


# rounds of ``decide_many`` that may find a card's requests stale before the check is dropped
STALE_ROUNDS = 32
# limits a request's decision counts earlier requests toward (per-request ones do not)
_CUMULATIVE_LIMITS = ("daily_amount", "daily_count", "monthly_amount", "monthly_count",
                      "atm_daily_amount", "atm_daily_count", "max_balance")  # fmt: skip


def _needs_the_first(request: AuthRequest, snapshot: Snapshot, first_had_pin: bool) -> bool:
    """Whether a card's later request in a round must be decided after the round's earlier
    one of the card is written, rather than on the same snapshot: when the earlier one can
    change its answer. A reversal or a completion may name it; limits that add requests up
    must count it; a PIN after a PIN must see the try counter it left (the store counts
    tries atomically either way, but the third wrong one answers 75, not 55)."""
    if request.message_class in REVERSALS or looked_up_original(request):
        return True
    if first_had_pin and request.pin_block is not None:
        return True
    return _has_cumulative_limits(snapshot)


def _has_cumulative_limits(snapshot: Snapshot) -> bool:
    card, product = snapshot.card, snapshot.product
    if card is None or product is None:
        return False
    limits = product.limits.overridden_by(card.limits)
    return any(getattr(limits, name) is not None for name in _CUMULATIVE_LIMITS)


def _reads_the_cards_history(
    request: AuthRequest, snapshot: Snapshot, decision: Decision, commit: Commit
) -> bool:
    """Whether a request of the card committed since the snapshot (in another process: this
    one's take turns) could change this decision where the store's write does not settle it
    itself (funds, duplicates, PIN tries, chip counters and 3-D Secure values it does): an
    approval that moves money under limits that add requests up, and a reversal that found
    no original (the original may be that request). Every approval checked (the fraud
    counters too) cost 1.33 times the CPU per answer on the benchmark's mix, whose cards'
    two purchases often reach both processes at once: the fraud step's counters are not."""
    if snapshot.velocity_mark is None or request.message_class in ADVICES:
        return False  # an advice reports what the network approved: it posts either way
    if request.message_class in REVERSALS:
        return snapshot.original is None
    return decision.approved and commit.movement is not None and _has_cumulative_limits(snapshot)


def _written_by(
    results: Sequence[CommitResult | Exception], journal_id: int
) -> CommitResult | None:
    """The one of these commits that wrote the entry ``journal_id``, if any."""
    for r in results:
        if (
            not isinstance(r, Exception)
            and r.duplicate_of is None
            and r.journal.journal_id == journal_id
        ):
            return r
    return None


def _log_uncounted(results: Sequence[CommitResult | Exception]) -> None:
    for failed in results:
        if isinstance(failed, Exception):  # the answer is the original's anyway
            log.error("a PIN guess was not counted: %s", type(failed).__name__)


@dataclass(slots=True)
class PinGuesses:
    """The new PINs of retransmitted PIN changes checked in one batch: the cards checked, and
    the commits that count the wrong ones."""

    checked: set[str] = field(default_factory=set)
    wrong: list[Commit] = field(default_factory=list)


def _change_card(
    commit: Commit, card: Card, tx: Transaction, approved: bool, scripts: DueScripts
) -> None:
    """What the commit writes to the card besides its PIN tries: a changed PIN (with the
    queue emptied when its commands go with this answer), else the queue as this answer
    leaves it (delivered: emptied; reported failed and not carried: added to)."""
    sent = _queue_sent(card, commit.journal.match_key) if scripts.queued_sent else card
    if tx.new_pin_reference is not None and approved:
        commit.changed_card = replace(
            sent,
            pin_reference=tx.new_pin_reference,
            pin_tries=0,
            pin_change_key=commit.journal.match_key,
            previous_pin_reference=card.pin_reference,
        )
    elif scripts.queued_sent:
        commit.delivered_card = sent
    elif scripts.requeue:
        queued = tuple(dict.fromkeys((*card.chip_scripts, *(c.value for c in scripts.requeue))))
        if queued != card.chip_scripts:  # only what is not waiting already
            commit.delivered_card = replace(card, chip_scripts=queued)


def _queue_sent(card: Card, answer_key: str) -> Card:
    """The card with its queued commands taken off, remembered with the answer that carried
    them (``chip_scripts_requeued``)."""
    return replace(
        card, chip_scripts=(), chip_scripts_sent=card.chip_scripts, chip_scripts_sent_key=answer_key
    )


def chip_scripts_requeued(reversal: AuthRequest, card: Card | None) -> Card | None:
    """The card with the queued commands (an operator's application or PIN unblock) that
    the reversed answer carried queued again, or None when it carried none. A terminal
    reverses an answer it did not get or could not complete, so its scripts may never have
    reached the chip: sent again with the next verified answer, an unblock the chip already
    ran changes nothing."""
    if card is None or not card.chip_scripts_sent_key:
        return None
    if original_key(reversal) != card.chip_scripts_sent_key:
        return None
    queued = tuple(dict.fromkeys((*card.chip_scripts, *card.chip_scripts_sent)))
    return replace(card, chip_scripts=queued, chip_scripts_sent=(), chip_scripts_sent_key="")


def pin_change_undone(reversal: AuthRequest, card: Card | None) -> Card | None:
    """The card with its PIN before the PIN change this reversal names, or None when it names
    none (another processing code, another PIN change than the card's last, one undone
    already). An ATM reverses a PIN change it could not complete (the chip never got the new
    PIN, the cardholder was told it failed): left changed, the PIN the cardholder goes on
    using would be wrong from then on."""
    if card is None or not card.pin_change_key or card.previous_pin_reference is None:
        return None
    if not (reversal.processing_code or "").startswith(PIN_CHANGE_CODE):
        return None
    if original_key(reversal) != card.pin_change_key:
        return None
    return replace(
        card,
        pin_reference=card.previous_pin_reference,
        previous_pin_reference=None,
        pin_change_key="",
    )


def pin_unblock_requeued(
    reversal: AuthRequest, card: Card | None, product: Product | None
) -> Card | None:
    """The card with PIN UNBLOCK queued for its chip again, for the reversal of a PIN unblock
    (processing code 91) on a product that sends issuer scripts: the answer that carried it
    may never have reached the chip, whose offline PIN would stay blocked; sent again, it
    only resets a counter that is reset already. None when nothing is to be queued."""
    if card is None or product is None:
        return None
    if not (reversal.processing_code or "").startswith(PIN_UNBLOCK_CODE):
        return None
    queued = with_chip_unblock(card, product)
    return None if queued is card else queued


def journal_entry(
    request: AuthRequest, snapshot: Snapshot, decision: Decision, now: float, pan_index: str
) -> JournalEntry:
    """The journal's record of one request: masked PAN, decision, and the card as it was seen."""
    card, account, product = snapshot.card, snapshot.account, snapshot.product
    home = (card.home_country if card else "") or (product.home_country if product else "")
    return JournalEntry(
        ts=now,
        mti=request.mti,
        message_class=str(request.message_class),
        response_code=str(decision.response_code),
        card_id=card.card_id if card else "",
        pan_masked=mask_pan(request.pan) or "",
        pan_index=pan_index,
        account_id=account.account_id if account else "",
        product_id=card.product_id if card else "",
        processing_code=request.processing_code or "",
        amount_minor=request.cardholder_amount_minor or 0,
        currency=request.cardholder_currency or "",
        transaction_amount_minor=request.amount_minor or 0,
        transaction_currency=request.currency or "",
        authentication=request.authentication,
        stored_credential=request.stored_credential,
        cavv_result=decision.cavv_result,
        avs_result=decision.avs_result,
        cvv2_result=decision.cvv2_result,
        wallet=decision.token.wallet if decision.token is not None else "",
        token_last4=decision.token.last4 if decision.token is not None else "",
        token_age_hours=token_age_hours(decision.token, now),
        merchant_name=request.merchant_name,
        mcc=request.mcc or "",
        country=request.country or "",
        channel=str(request.channel),
        pos_entry_mode=request.pos_entry_mode or "",
        terminal_id=request.terminal_id or "",
        merchant_id=request.merchant_id or "",
        acquirer_id=request.acquirer_id or "",
        stan=request.stan or "",
        rrn=request.rrn or "",
        transmission_time=request.transmission_time or "",
        approval_code=decision.approval_code or "",
        reason_codes=";".join(decision.reason_codes),
        rule_matches=";".join(decision.rule_matches),
        review=decision.review,
        fraud_score=-1 if decision.fraud_score is None else decision.fraud_score,
        model_score=-1 if decision.model_score is None else decision.model_score,
        challenger_score=-1 if decision.challenger_score is None else decision.challenger_score,
        model_skipped=decision.model_skipped,
        model_reasons=decision.model_reasons,
        home_country=home,
        card_age_days=(now - card.created_at) / 86400.0 if card and card.created_at else -1.0,
        available_before=account.open_to_buy if account else 0,
        dedupe_key=request.dedupe_key,
        travel_notice=covers(card.travel_notices, request.country or "", now) if card else False,
    )


def replayed(previous: JournalEntry, request: AuthRequest, pan_index: str) -> Decision:
    """A retransmission gets the original answer again, and nothing is held twice.

    A message that reuses a transmission's identifiers with a different card or amount is not a
    retransmission: it is refused with 94 and changes nothing.
    """
    # compared by what the merchant asked (field 4): the journal's own amount is the
    # cardholder's, and for a partial approval only what was approved
    asked = previous.transaction_amount_minor
    if previous.pan_index != pan_index or asked != (request.amount_minor or 0):
        return Decision(
            response_code=RC.DUPLICATE_TRANSMISSION, reason_codes=["duplicate.mismatch"]
        )
    return Decision(
        response_code=RC(previous.response_code),
        approval_code=previous.approval_code or None,
        reason_codes=[r for r in previous.reason_codes.split(";") if r] + ["duplicate.replayed"],
        approved_amount_minor=previous.amount_minor
        if previous.response_code == RC.PARTIAL_APPROVAL
        else None,
        cavv_result=previous.cavv_result,
        avs_result=previous.avs_result,
        cvv2_result=previous.cvv2_result,
    )


def settled(
    decision: Decision,
    result: CommitResult,
    request: AuthRequest,
    snapshot: Snapshot,
    pan_index: str,
) -> Decision:
    """The decision as the commit left it (funds re-check, lost race) plus field 54
    balances; a retransmission the commit found is answered by ``AuthService._replayed``."""
    if result.pin_change_conflict:  # the card changed meanwhile: the PIN was not changed
        decision.response_code = RC.SYSTEM_MALFUNCTION
        decision.approval_code = None
        decision.reason_codes.append(PIN_CHANGE_CONFLICT)
    elif result.atc_replay or result.atc_jump:  # the store refused the cryptogram's counter
        decision.response_code = RC(result.journal.response_code)
        decision.approval_code = None
        decision.approved_amount_minor = None
        decision.reason_codes.append(ATC_REPLAY if result.atc_replay else ATC_JUMP)
    elif result.pin_locked:  # wrong PINs sent with this one locked the card first
        decision.response_code = RC.PIN_TRIES_EXCEEDED
        decision.approval_code = None
        decision.approved_amount_minor = None
        decision.reason_codes.append(PIN_LOCKED_MEANWHILE)
    elif result.cavv_reused:  # an earlier approval used the 3-D Secure authentication
        decision.response_code = RC(result.journal.response_code)
        decision.approval_code = None
        decision.approved_amount_minor = None
        decision.reason_codes.append(CAVV_REUSED)
    elif result.balance_bound:  # the account would hold (or owe) more than it may: nothing moved
        decision.response_code = RC.EXCEEDS_AMOUNT_LIMIT
        decision.approval_code = None
        decision.approved_amount_minor = None
        decision.reason_codes.append(BALANCE_BOUND_REASON)
    elif not result.funds_ok:
        decision.response_code = RC.INSUFFICIENT_FUNDS
        decision.approval_code = None
        decision.approved_amount_minor = None
        decision.reason_codes.append("funds.recheck")
    if decision.cryptogram is not None:  # the card checks this answer in turn: the ARPC
        with_arpc(decision, decision.cryptogram, decision.cryptogram.atc)
    refused = (
        result.atc_replay
        or result.atc_jump
        or result.pin_change_conflict
        or result.cavv_reused
        or result.pin_locked
    )
    if decision.issuer_script is not None and not refused:  # (a new PIN the host refused)
        decision.icc_response = (decision.icc_response or b"") + decision.issuer_script
    with_balances(decision, request, result.account or snapshot.account)
    return decision


def with_balances(decision: Decision, request: AuthRequest, account: Account | None) -> None:
    """Field 54 of an approval or a 51 (not of a reversal's answer): the account's ledger and
    available balances, and in a partial approval the amount asked. A retransmission's answer
    gets them too, as they are now: the ATM whose first answer was lost prints them."""
    shows_balance = decision.approved or decision.response_code == RC.INSUFFICIENT_FUNDS
    if account is None or not shows_balance or request.message_class in REVERSALS:
        return
    account_type = (request.processing_code or "000000")[2:4]
    decision.balances = [
        Balance(account_type, "01", account.currency, ledger_balance(account)),
        Balance(account_type, "02", account.currency, account.open_to_buy),
    ]
    if decision.approved_amount_minor is not None:  # a partial approval: what was asked
        original = Balance(account_type, "57", request.currency or "", request.amount_minor or 0)
        decision.balances.append(original)


def with_arpc(decision: Decision, cryptogram: Cryptogram, verified_atc: int) -> None:
    """Field 55 of the answer: the ARPC over ``cryptogram`` and the answer's code, when the
    cryptogram is the one of counter ``verified_atc`` (the one whose decision this is)."""
    if cryptogram.atc != verified_atc:
        return
    code = str(decision.response_code)
    data = cryptogram.issuer_authentication_data(decision.approved, code)
    decision.icc_response = issuer_authentication_tlv(data)


def ledger_balance(account: Account) -> int:
    """Ledger balance as field 54 shows it: credit accounts show what is owed as negative."""
    return -account.balance if account.kind is CardKind.CREDIT else account.balance
