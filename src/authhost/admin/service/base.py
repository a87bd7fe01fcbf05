"""The card service's foundation: what every part of it shares.

The service sits on a ``CardStore`` and a ``SecurityModule`` and acts for a named actor (the
API token's name, the CLI user), so each change is written to the audit log with who, when,
what and the state before and after; creates take an optional idempotency key (the same key
with the same request returns the first result; with a different request it is refused,
409). This module keeps that, the reads and writes the parts share, and the module-level
helpers; each part of the service (``admin.service.*``) adds one family of operations.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TextIO

import anyio
from pydantic import BaseModel

from authhost.admin import totals as totals_module
from authhost.admin.business_day import UTC_DAY, BusinessDay
from authhost.admin.dispute_stages import DisputeLimits
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
    Unavailable,
)
from authhost.admin.requests import LIST_NAME_PATTERN
from authhost.admin.timeline import CHAIN_MAX
from authhost.admin.views import (
    card_view,
    fraud_report_view,
)
from authhost.cards import lifecycle, production
from authhost.cards.model import (
    Account,
    Card,
    CardKind,
    CardState,
    Product,
)
from authhost.security.keys import KeyType
from authhost.security.masking import mask_pans_in_note, mask_pans_in_text
from authhost.store.interface import (
    PENDING_PREFIX,
    CardStore,
    Conflict,
)
from authhost.store.records import (
    AuditEntry,
    FraudReport,
    JournalEntry,
)

# Operator-facing lifecycle actions (URL segment / CLI verb) and what each does.
LIFECYCLE_ACTIONS: dict[str, str] = {
    "ship": "Ship the card to the cardholder (created -> issued)",
    "activate": "Activate the card (issued -> active)",
    "suspend": "Temporary block (active -> suspended)",
    "resume": "Lift a temporary block (suspended -> active)",
    "report-lost": "Report the card lost (final; answers 41 from now on)",
    "report-stolen": "Report the card stolen (final; answers 43 from now on)",
    "report-damaged": "Report the card damaged (final; replace it with the same PAN)",
    "replace": "Replace a lost, stolen or damaged card: a new card on the same account",
    "renew": "Renew before expiry: same PAN, new expiry, new card values",
    "reissue": "Reissue under a new PAN (the number was exposed); the old card works until "
    "the new one is activated",
    "cancel": "Close the card (final)",
    "expire": "Mark the card expired (final)",
}

# a closed account's marker, written once (``CardStore.put_marker``) beside the idempotency
# results and kept for good: the idempotency retention never prunes it, and no card is
# issued or moved onto the account after
ACCOUNT_CLOSED_KEY = "account.closed:"
KEY_LOCK_STRIPES = 64
PAN_ATTEMPTS = 20  # fresh random PANs tried before giving up on a (nearly full) BIN range
EXPORT_STATES = frozenset({CardState.CREATED, CardState.ISSUED})
# a product's chip keys: application cryptograms, issuer scripts, new offline PINs
_CHIP_KEYS = (
    ("imk_ac_name", KeyType.IMK_AC),
    ("imk_smi_name", KeyType.IMK_SMI),
    ("imk_smc_name", KeyType.IMK_SMC),
)
# the states a network's stand-in must refuse, with the code the host answers them with
EXCEPTION_CODES = {
    CardState.LOST: "41",
    CardState.STOLEN: "43",
    CardState.SUSPENDED: "62",
    CardState.CLOSED: "62",
    CardState.DAMAGED: "62",  # until its replacement (the same PAN) is the current card
    # a number retired under a new PAN (a reissue: exposed; a renewal lost in the post): a
    # retired renewal leaves its PAN to the card that took over, and is not listed
    CardState.REPLACED: "62",
}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _json(value: Any) -> str:
    return mask_pans_in_text(json.dumps(value, sort_keys=True, separators=(",", ":")))


RENEWAL_PAGE = 1000  # cards read at a time by the renewal run
RENEWAL_LISTED = 1000  # cards the renewal run's answer lists (the counts cover them all)
RETIRE_TRIES = 3  # re-reads of a card changed by someone else while its successor is handled
LIST_TRIES = 20  # re-reads of a named list another write changed while values were added to it


MERGE_TRIES = 5  # reads of a card whose field another write changed while a change was merged
NOT_READ: Any = (
    object()
)  # a change's made_from when it was made from nothing read (None is a value)


class CardMoved(ConflictError):
    """The card changed between the read a change was made from and its write (its version,
    or the field ``made_from`` names): nothing written; read it again."""


class ListMoved(ConflictError):
    """A named list changed between the read its new values were made from and their write
    (``put_list``'s ``made_from``): nothing written; read it again."""


KEY_REUSED = "this Idempotency-Key was already used with a different request"
RESERVATION_WAIT_S = 10.0  # how long a second caller waits for the first caller's result


def request_fingerprint(request: BaseModel) -> str:
    """What an idempotency key remembers of its request: the same key with another one is
    refused (409), not taken for a repeat."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


@dataclass
class OpenDisputes:
    """What a process knows of the open disputes, for setting reversals against them:
    each one's reversal scan (``dispute_cases.ReversalScan``: a run reads only what the card
    journalled since the last), and the disputes of each account, so that a reversal the
    process approved has its charge's dispute reconciled at once instead of at the next
    minutely run. Both are rebuilt by every full run; a dispute opened here joins at once,
    one opened elsewhere (the CLI, another worker) when a reversal makes the process read the
    disputes opened since ``read_at``."""

    scans: dict[str, Any] = field(default_factory=dict)  # dispute id -> ReversalScan
    by_account: dict[str, set[str]] = field(default_factory=dict)  # account id -> dispute ids
    read_at: float = 0.0  # when the open disputes were last read from the store (0: never)

    def add(self, account_id: str, dispute_id: str) -> None:
        self.by_account.setdefault(account_id, set()).add(dispute_id)

    def drop(self, account_id: str, dispute_id: str) -> None:
        self.scans.pop(dispute_id, None)
        ids = self.by_account.get(account_id)
        if ids is not None:
            ids.discard(dispute_id)
            if not ids:
                del self.by_account[account_id]


@dataclass
class IdsSeen:
    """The highest journal id this process has seen exist: a ledger sync's cursor up to it
    needs no look-up (``_check_journal_reaches``). Shared by every ``acting_as`` copy, as a
    request's service is one. The feeds' cursor checks do not use it: kept across a Redis
    dump restore, it let a cursor the restore took back through unrefused."""

    journal: int = 0


class ServiceBase:
    """Card management over one store and one security module, acting as ``actor``."""

    def __init__(
        self,
        store: CardStore,
        security: Any,  # authhost.security.module.SecurityModule
        actor: str = "system",
        *,
        clock: Callable[[], float] = time.time,
        models_dir: str | Path = "",
        rules_file: str | Path = "",
        lists_dir: str | Path = "",
        decide_many: Any = None,
        rules_in_force: Any = None,
        hold_days: float | None = None,
        business_day: BusinessDay = UTC_DAY,
        dispute_limits: DisputeLimits = DisputeLimits(),
        _key_locks: tuple[anyio.Lock, ...] | None = None,
        _open_disputes: OpenDisputes | None = None,
        _ids_seen: IdsSeen | None = None,
    ) -> None:
        self.store = store
        self.security = security
        self.actor = actor
        self.clock = clock
        self.models_dir = models_dir  # [models] dir: what explain_entry scores with
        # [rules] file and lists_dir: what explain_rules evaluates
        self.rules_file, self.lists_dir = rules_file, lists_dir
        # the server's AuthService.decide_many: clearing posts through it (None: not a server)
        self.decide_many = decide_many
        # the server's rules: () -> (RuleSet, file lists) in force, which a broken file saved
        # over [rules] file does not replace (None: not a server, read the file)
        self.rules_in_force = rules_in_force
        self.hold_days = hold_days  # [auth] hold_days: when a listed hold expires (None: unknown)
        self.business_day = business_day  # [admin] business_day_*: what a report's day means
        # [admin] chargeback_days and the rest: the networks' time limits of a dispute
        self.dispute_limits = dispute_limits
        # the highest journal id seen to exist: ledger sync cursors up to it need no look-up
        # (before 2026-11-29 each request's copy started again from 0)
        self._ids_seen = _ids_seen or IdsSeen()
        # Striped locks so that two concurrent requests with one idempotency key run once.
        self._key_locks = _key_locks or tuple(anyio.Lock() for _ in range(KEY_LOCK_STRIPES))
        # what this process knows of the open disputes (shared by every acting_as copy)
        self._open_disputes = _open_disputes or OpenDisputes()

    def acting_as(self, actor: str) -> Self:
        """The same service (same store, keys and locks) recording ``actor`` in the audit log."""
        return type(self)(
            self.store,
            self.security,
            actor,
            clock=self.clock,
            models_dir=self.models_dir,
            rules_file=self.rules_file,
            lists_dir=self.lists_dir,
            decide_many=self.decide_many,
            rules_in_force=self.rules_in_force,
            hold_days=self.hold_days,
            business_day=self.business_day,
            dispute_limits=self.dispute_limits,
            _key_locks=self._key_locks,
            _open_disputes=self._open_disputes,
            _ids_seen=self._ids_seen,
        )

    async def record_audit(self, action: str, subject: str, before: Any, after: Any) -> None:
        """Append an audit entry as this actor; before/after are views (masked again here)."""
        await self.store.append_audit(
            self._audit_entry(action, subject, before, after),
            self.security.audit_seal,  # chained to the newest entry (security.audit_chain)
        )

    def _audit_entry(self, action: str, subject: str, before: Any, after: Any) -> AuditEntry:
        return AuditEntry(
            ts=self.clock(),
            actor=self.actor,
            action=action,
            subject=subject,
            before=_json(before) if before is not None else "",
            after=_json(after) if after is not None else "",
        )

    async def _once(
        self,
        operation: str,
        key: str,
        request: BaseModel,
        create: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Run ``create`` once per idempotency key; repeat calls get the stored result."""
        if not key:
            return await create()
        store_key = f"{operation}:{key}"
        stripe = int(hashlib.sha256(store_key.encode()).hexdigest()[:8], 16) % len(self._key_locks)
        async with self._key_locks[stripe]:
            return await self._once_locked(store_key, request, create)

    async def _once_locked(
        self,
        store_key: str,
        request: BaseModel,
        create: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        fingerprint = request_fingerprint(request)
        # the key is reserved in the store before the work, so that one caller in any process
        # (the API's workers, the CLI) does it; the others wait for its result
        placeholder = (
            PENDING_PREFIX
            + ","
            + json.dumps({"request": fingerprint, "at": self.clock()}, separators=(",", ":"))[1:]
        )
        stored = await self.store.reserve_result(store_key, placeholder)
        if stored is not None:
            return await self._earlier_result(store_key, stored, fingerprint)
        try:
            result = await create()
        except BaseException:
            with anyio.CancelScope(shield=True):  # asked again, it may be done then
                await self.store.forget_reservation(store_key)
            raise
        with anyio.CancelScope(shield=True):
            await self.store.remember_result(
                store_key, json.dumps({"request": fingerprint, "result": result})
            )
        return result

    async def _earlier_result(self, store_key: str, stored: str, fingerprint: str) -> Any:
        """What the key's first caller got, waiting (up to RESERVATION_WAIT_S) while it is
        still at work; 409 when the request differs, or the first caller never finished."""
        deadline = time.monotonic() + RESERVATION_WAIT_S
        while True:
            earlier = json.loads(stored)
            if earlier.get("request") != fingerprint:
                raise ConflictError(KEY_REUSED)
            if not earlier.get("pending"):
                return earlier["result"]
            if time.monotonic() >= deadline:
                raise ConflictError(
                    "a request with this Idempotency-Key is still being made, or was "
                    f"interrupted (reserved at {totals_module.iso_time(earlier['at'])}); look "
                    "for its result before making it again with a new key"
                )
            await anyio.sleep(0.05)
            stored = await self.store.idempotent_result(store_key) or ""
            if not stored:  # its work failed and the key was freed: nothing was made
                raise ConflictError(
                    "the first request with this Idempotency-Key failed; send it again"
                )

    async def _product(self, product_id: str) -> Product:
        product = await self.store.get_product(product_id)
        if product is None:
            raise NotFoundError(f"product {product_id} not found")
        return product

    async def _account(self, account_id: str) -> Account:
        account = await self.store.get_account(account_id)
        if account is None:
            raise NotFoundError(f"account {account_id} not found")
        return account

    async def _account_closed_at(self, account_id: str) -> float | None:
        """When the account was closed (``close_account``), or None while it is open."""
        marker = await self.store.idempotent_result(ACCOUNT_CLOSED_KEY + account_id)
        return None if marker is None else float(json.loads(marker)["closed_at"])

    async def _check_account_open(self, account_id: str, doing: str) -> None:
        """409 for a card about to be made or moved onto a closed account: its closure
        cancelled every live card on it, and a card put there afterwards would spend on an
        account the bank has settled (a credit one keeps its limit)."""
        closed_at = await self._account_closed_at(account_id)
        if closed_at is not None:
            raise ConflictError(
                f"account {account_id} was closed at {totals_module.iso_time(closed_at)}: "
                f"no card is {doing} on it (use an open account)"
            )

    async def _store_with_new_pan(
        self,
        build: Callable[[production.PanFacts], Card],
        product: Product,
        issued: Callable[[Card], AuditEntry],
        *,
        replaced: Card | None = None,
        replacing: Callable[[Card], AuditEntry] | None = None,
    ) -> Card:
        """Store the card ``build`` makes under a new random PAN, drawing again on a clash,
        with its entries in the same write: ``issued`` makes the new card's, ``replacing``
        the replaced card's (both from the card as built)."""
        for _ in range(PAN_ATTEMPTS):
            pan = production.new_pan(product.bin, product.pan_length)
            pan_index = self.security.pan_index(pan)
            if await self.store.find_card(pan_index) is not None:
                continue
            card = build(production.PanFacts.of(pan, pan_index))
            ciphertext = self.security.encrypt_pan(pan, card.card_id)
            try:
                seal = self.security.audit_seal
                if replaced is None:
                    await self.store.create_card(card, ciphertext, issued(card), seal)
                else:
                    assert replacing is not None
                    entries = (replacing(card), issued(card))
                    await self.store.replace_card(replaced, card, ciphertext, entries, seal)
            except Conflict:
                if await self.store.find_card(pan_index) is None:  # not the PAN: the old card
                    raise ConflictError(
                        f"card {replaced.card_id if replaced else card.card_id} was changed by "
                        "someone else; read it and retry"
                    ) from None
                continue  # another card took this PAN between our check and our insert
            return card
        raise Unavailable(f"no free PAN found in BIN {product.bin} after {PAN_ATTEMPTS} tries")

    async def _card(self, card_id: str) -> Card:
        card = await self.store.get_card(card_id)
        if card is None:
            raise NotFoundError(f"card {card_id} not found")
        return card

    async def _changeable_card(self, card_id: str) -> Card:
        """The card, unless it is in a final state (then nothing on it changes: 409)."""
        card = await self._card(card_id)
        if card.state in lifecycle.FINAL_STATES:
            raise ConflictError(f"card {card_id} is {card.state.value}; it cannot be changed")
        return card

    @staticmethod
    def _unmoved(card: Card, field: str, made_from: Any) -> None:
        """Refuse (``CardMoved``) a change made from the card's ``field`` as ``made_from``
        (its view) when the card has another value now: a whole list set over another
        writer's change would undo it. ``NOT_READ``: made from nothing read."""
        if made_from is not NOT_READ and card_view(card)[field] != made_from:
            raise CardMoved(f"card {card.card_id}'s {field} changed while the change was made")

    async def merged(
        self, card_id: str, field: str, write: Callable[[Any], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """``write`` of what is merged into the card's ``field`` (its view) as read, given as
        its ``made_from``; read and merged again when another write changed the card in
        between, so that change is kept (a CLI option sets one limit or one stop, while
        the service sets the whole field)."""
        for _ in range(MERGE_TRIES):
            try:
                return await write(card_view(await self._card(card_id))[field])
            except CardMoved:
                continue
        raise ConflictError(
            f"card {card_id}'s {field} changed at each of {MERGE_TRIES} tries to change it: "
            "run the command again"
        )

    async def _card_chain(self, card: Card) -> list[Card]:
        """The card and every card linked to it by ``replaces`` / ``replaced_by``, either way
        and through each other (a renewal withdrawn and a reissue of the same card are both
        found), oldest first; at most ``CHAIN_MAX``."""
        found = {card.card_id: card}
        waiting = [card]
        while waiting and len(found) < CHAIN_MAX:
            current = waiting.pop()
            for linked in (current.replaces, current.replaced_by):
                if not linked or linked in found or len(found) >= CHAIN_MAX:
                    continue
                other = await self.store.get_card(linked)
                if other is not None:
                    found[linked] = other
                    waiting.append(other)
        return sorted(found.values(), key=lambda c: (c.created_at, c.card_id))

    async def _update(
        self,
        before: Card,
        after: Card,
        action: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
        more: Sequence[AuditEntry] = (),
    ) -> dict:
        """Write ``after`` over ``before`` and audit both views (with ``reason``, and
        ``details`` of the change beside the card's view), in the card's own write (the view
        has no version, the one thing the write changes), with ``more`` entries on the card
        after its own."""
        view = card_view(after)
        audited = {**_with_reason(view, reason), **(details or {})}
        entry = self._audit_entry(action, before.card_id, card_view(before), audited)
        try:
            stored = await self.store.update_card(after, entry, self.security.audit_seal, more)
        except Conflict:
            raise CardMoved(
                f"card {before.card_id} was changed by someone else; read it and retry"
            ) from None
        if stored.replaced_by:
            await self._carry_to_successor(before, stored, action)
        return view

    async def _carry_to_successor(self, before: Card, after: Card, action: str) -> None:
        """What was just changed on a card whose successor (a renewal, a reissue) waits for
        its activation, changed on the successor too (``lifecycle.CARRIED_FIELDS``): the
        cardholder's new name, limits, controls or PIN would otherwise be lost with the old
        plastic. Audited on the successor as ``card.carried``, naming the fields and the
        card they came from; a successor changed meanwhile is read again."""
        for _ in range(RETIRE_TRIES):
            successor = await self.store.get_card(after.replaced_by or "")
            if successor is None:
                return
            carried, fields = lifecycle.carried_changes(before, after, successor)
            if not fields:
                return
            details = {"from": after.card_id, "change": action, "fields": fields}
            entry = self._audit_entry(  # the view has no version: as the write stores it
                "card.carried", successor.card_id, card_view(successor),
                {**card_view(carried), **details},
            )  # fmt: skip
            try:  # the successor and its entry: one write
                await self.store.update_card(carried, entry, self.security.audit_seal)
            except Conflict:
                continue
            return
        raise ConflictError(
            f"card {after.card_id} was changed, but its successor {after.replaced_by} kept "
            "changing and did not get the change: make it on the successor too"
        )

    async def _live_cards(self) -> AsyncIterator[Card]:
        """Every issued, active or suspended card, page by page."""
        for state in sorted(lifecycle.RENEWABLE, key=lambda s: s.value):
            offset = 0
            while page := await self.store.list_cards("", state.value, RENEWAL_PAGE, offset):
                offset += len(page)
                for card in page:
                    yield card

    async def _journal_entry(self, card_id: str, journal_id: int) -> JournalEntry:
        from authhost.admin.explain import card_journal_entry

        return await card_journal_entry(self.store, card_id, journal_id)

    async def _record_fraud_report(
        self, card_id: str, journal_id: int, fraud: bool, source: str, note: str
    ) -> dict[str, Any]:
        """Label one journal entry fraud or genuine (a later report replaces an earlier one);
        audited with the report it replaced. The note's PANs are masked."""
        report = FraudReport(journal_id, card_id, fraud, source, self.clock(),
                             mask_pans_in_note(note))  # fmt: skip
        view = fraud_report_view(report)

        def entry(before: FraudReport | None) -> AuditEntry:  # the report the write replaces
            previous = fraud_report_view(before) if before is not None else None
            return self._audit_entry("journal.fraud_report", card_id, previous, view)

        # the report and its entry: one write
        await self.store.put_fraud_report(report, entry, self.security.audit_seal)
        return view

    async def _with_report_id(self, view: dict[str, Any]) -> dict[str, Any]:
        """The report view just written with the id the store gave it (the write numbers it
        inside and answers none): read back, so the analyst's or the notification service's
        answer names it as GET /v1/fraud-reports will. None only when another report on the
        same entry replaced it meanwhile (that one's id is not this one's)."""
        journal_id = view["journal_id"]
        stored = (await self.store.fraud_reports_of([journal_id])).get(journal_id)
        same = stored is not None and (
            stored.reported_at,
            stored.source,
            stored.fraud,
            stored.note,
        ) == (view["reported_at"], view["source"], view["fraud"], view["note"])
        return {**view, "report_id": (stored.report_id or None) if same and stored else None}

    async def _verdicts(self, journal_ids: list[int]) -> dict[int, str]:
        """'fraud' or 'genuine' for each of these entries that has a fraud report."""
        reports = await self.store.fraud_reports_of(journal_ids)
        return {jid: "fraud" if r.fraud else "genuine" for jid, r in reports.items()}

    async def _every_card(self) -> AsyncIterator[Card]:
        offset = 0
        while page := await self.store.list_cards("", "", 1000, offset):
            offset += len(page)
            for card in page:
                yield card

    async def _clear_pan(self, card_id: str) -> str:
        """The card's PAN, decrypted for one of the sanctioned ways out (never kept)."""
        return self.security.decrypt_pan(await self.store.pan_ciphertext(card_id), card_id)


_LIST_NAME = re.compile(LIST_NAME_PATTERN)


def _check_feed_cursor(after_id: int, limit: int) -> None:
    """The cursor and page size every feed (movements, alerts, wallet events) is polled with."""
    if not 1 <= limit <= 10_000 or after_id < 0:
        raise InvalidRequest("limit is 1 to 10,000 and after_id 0 or more")


def _with_reason(view: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**view, "reason": reason} if reason else view


def _check_account_fits(product: Product, account: Account) -> None:
    if account.currency != product.currency:
        raise InvalidRequest(
            f"account {account.account_id} is in currency {account.currency}, "
            f"product {product.product_id} in {product.currency}"
        )
    # a prepaid card spends only what was loaded: on a debit account an overdraft (its credit
    # limit) let it spend beyond that; before 2026-11-29 it was issued there without a word.
    # Checked first: on a credit account the check below said "needs a debit or prepaid
    # account", and a debit one is refused here
    if product.kind is CardKind.PREPAID and account.kind is not CardKind.PREPAID:
        raise InvalidRequest(
            f"a prepaid product needs a prepaid account (accounts create --kind prepaid): "
            f"account {account.account_id} is {account.kind.value}, which an overdraft or a "
            "credit limit lets spend beyond what was loaded"
        )
    if (account.kind is CardKind.CREDIT) != (product.kind is CardKind.CREDIT):
        raise InvalidRequest(
            f"a {product.kind.value} product needs a "
            f"{'credit' if product.kind is CardKind.CREDIT else 'debit or prepaid'} account"
        )


PERIOD_END = 1e11  # epoch seconds (the year 5138): what the API's since and until accept


def _period(
    day: str, since: float, until: float, now: float, business_day: BusinessDay
) -> tuple[float, float]:
    """[since, until) from a business ``day`` (YYYY-MM-DD: ``business_day``'s) or from the
    two times themselves; a ``since`` alone runs up to ``now`` (an analyst asking about
    "since this morning")."""
    if day:
        if since or until:
            raise InvalidRequest("give a day, or since and until, not both")
        try:
            return business_day.bounds(day)
        except ValueError as error:
            raise InvalidRequest(str(error)) from None
    if since and not until:
        if since >= now:
            raise InvalidRequest(f"since {since:.0f} is in the future (now is {now:.0f})")
        until = now
    if not since and not until:  # it said "give a day (YYYY-MM-DD), since, or until after
        # since" to a reader who had given nothing, as if an until were missing
        raise InvalidRequest(
            "no period given: give a day (YYYY-MM-DD), or a since (epoch seconds; up to now, "
            "or to an until after it)"
        )
    if until <= since:
        raise InvalidRequest(
            f"until {until:.0f} is not after since {since:.0f}: give an until after since"
        )
    if since < 0 or until > PERIOD_END:  # beyond, a time has no ISO 8601 form to answer with
        raise InvalidRequest(f"since and until are epoch seconds from 0 to {PERIOD_END:,.0f}")
    return since, until


def _new_private_file(out: Path) -> TextIO:
    """A new file only its owner reads, for clear card data an operator sends on (never an
    existing one overwritten: 409; a path that cannot be created: 422)."""
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConflictError(f"{out} exists; name a new file") from None
    except OSError as exc:
        raise InvalidRequest(f"cannot create {out}: {exc.strerror}") from None
    return os.fdopen(fd, "w")


@contextmanager
def _removed_on_failure(out: Path, keep: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """A file export that fails (a key the store lacks, say) leaves no file behind, unless
    ``keep()``: an empty or half-written one made the next run, once the cause was fixed,
    refused with "exists; name a new file", and a half-written one holds clear PANs."""
    try:
        yield
    except BaseException:
        if not keep():
            out.unlink(missing_ok=True)
        raise
