"""Products, accounts and their money.

The bank's loads and ledger balance, credit limits, statements, open holds, closing an
account.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from authhost.admin import requests as rq
from authhost.admin import totals as totals_module
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
    ServiceError,
)
from authhost.admin.service.base import (
    _CHIP_KEYS,
    ACCOUNT_CLOSED_KEY,
    KEY_REUSED,
    MERGE_TRIES,
    ServiceBase,
    _new_id,
    _period,
    request_fingerprint,
)
from authhost.admin.views import (
    account_view,
    audited_account_view,
    product_view,
)
from authhost.cards import lifecycle
from authhost.cards.model import (
    Account,
    CardKind,
    Limits,
    Product,
)
from authhost.security.keys import KeyType
from authhost.store.interface import (
    JOURNAL_MIN_KEEP_DAYS,
    NEW_PRODUCT,
    AccountAudit,
    BeyondBound,
    Conflict,
    InsufficientFunds,
    JournalQuery,
    LedgerRefused,
    LedgerState,
    NotFound,
)
from authhost.store.records import AuditEntry

# a statement's reads of the journal and the audit log, again while the balance moves
STATEMENT_READS = 3
AUDIT_PAGE = 500


class ProductsAndAccounts(ServiceBase):
    """Products, accounts and their money."""

    async def create_product(
        self, spec: rq.NewProduct, *, idempotency_key: str = ""
    ) -> dict[str, Any]:
        async def create() -> dict[str, Any]:
            product_id = spec.product_id or _new_id("prd")
            if await self.store.get_product(product_id) is not None:
                raise ConflictError(f"product {product_id} already exists")
            named = ((spec.pvk_name, KeyType.PVK), (spec.cvk_name, KeyType.CVK))
            for field_name, key_type in _CHIP_KEYS:  # each needs the one before it (rq)
                if getattr(spec, field_name):
                    named += ((getattr(spec, field_name), key_type),)
            if spec.cavv_key_name:
                named += ((spec.cavv_key_name, KeyType.CVK),)
            self._require_keys(named)
            product = Product(
                product_id=product_id,
                issuer_id=spec.issuer_id,
                name=spec.name,
                bin=spec.bin,
                pan_length=spec.pan_length,
                kind=spec.kind,
                currency=spec.currency,
                home_country=spec.home_country,
                validity_months=spec.validity_months,
                service_code=spec.service_code,
                limits=Limits(**spec.limits.model_dump()),
                channels=frozenset(spec.channels),
                blocked_mccs=frozenset(spec.blocked_mccs),
                blocked_countries=frozenset(spec.blocked_countries),
                pin_method=spec.pin_method,
                pvk_name=spec.pvk_name,
                cvk_name=spec.cvk_name,
                pvki=spec.pvki,
                imk_ac_name=spec.imk_ac_name,
                chip_cvn=spec.chip_cvn,
                imk_smi_name=spec.imk_smi_name,
                imk_smc_name=spec.imk_smc_name,
                atc_jump_limit=spec.atc_jump_limit,
                cavv_key_name=spec.cavv_key_name,
            )
            view = product_view(product)
            entry = self._audit_entry("product.create", product_id, None, view)
            try:  # only if no product has the id: another create at once cannot overwrite it
                await self.store.put_product(
                    product, NEW_PRODUCT, audit=entry, seal=self.security.audit_seal
                )
            except Conflict:
                raise ConflictError(f"product {product_id} already exists") from None
            return view

        return await self._once("product.create", idempotency_key, spec, create)

    async def update_product(self, product_id: str, change: rq.ProductChange) -> dict[str, Any]:
        """Change what may change on a live product (``rq.ProductChange``); audited with the
        product before and after. A running server reads the product with every snapshot, so
        the next authorisation on its cards sees the change. The limits ``change`` names are
        merged into the product's as read: an operator tuning one limit used to drop every
        other (a prepaid product's ``max_balance``)."""
        return await self._change_product(
            product_id, lambda before: self._product_changes(before, change)
        )

    async def set_product_limits(self, product_id: str, limits: rq.LimitsSpec) -> dict[str, Any]:
        """The product's whole set of limits: those not given are no limit (all null or none
        given removes them all), whatever the product had."""
        whole = Limits(**limits.model_dump())
        return await self._change_product(product_id, lambda _: {"limits": whole})

    async def _change_product(
        self, product_id: str, changes: Callable[[Product], dict[str, Any]]
    ) -> dict[str, Any]:
        """Write the fields ``changes`` makes of the product as read, only if it is still at
        the version read, else read and made again (``MERGE_TRIES``): two operators changing
        it at once each keep the other's change. Audited (``product.update``) in the same
        write."""
        for _ in range(MERGE_TRIES):
            before = await self._product(product_id)
            after = replace(before, **changes(before), version=before.version + 1)
            view = product_view(after)
            entry = self._audit_entry("product.update", product_id, product_view(before), view)
            try:  # the product and its entry: one write, only over the version read
                await self.store.put_product(
                    after, before.version, audit=entry, seal=self.security.audit_seal
                )
            except Conflict:
                continue  # a change given a version is refused at the next read
            return view
        raise ConflictError(
            f"product {product_id} changed at each of {MERGE_TRIES} tries to change it: "
            "run the command again"
        )

    def _product_changes(self, before: Product, change: rq.ProductChange) -> dict[str, Any]:
        """The fields ``change`` sets on ``before``; refused when made on another version."""
        if change.version is not None and change.version != before.version:
            raise ConflictError(
                f"product {before.product_id} is at version {before.version}, not "
                f"{change.version}: read it again and make the change on what it is now"
            )
        given = change.model_fields_set
        changed: dict[str, Any] = {}
        if "name" in given:
            changed["name"] = change.name
        if "limits" in given:
            changed["limits"] = _limits_changed(before.limits, change.limits)
        for name in ("channels", "blocked_mccs", "blocked_countries"):
            if name in given:
                changed[name] = frozenset(getattr(change, name) or ())
        if "validity_months" in given and change.validity_months is not None:
            changed["validity_months"] = change.validity_months
        if "atc_jump_limit" in given:
            changed["atc_jump_limit"] = change.atc_jump_limit
        if "cavv_key_name" in given:
            name = change.cavv_key_name or ""
            if name:
                self._require_keys(((name, KeyType.CVK),))
            changed["cavv_key_name"] = name
        return changed

    def _require_keys(self, named: Iterable[tuple[str, KeyType]]) -> None:
        """Refuse a product whose keys are not in the key store: every authorisation on it
        would answer 96."""
        for name, key_type in named:
            if not self.security.has_key(name, key_type):
                raise InvalidRequest(
                    f"no {key_type} key named {name!r} in the key store: generate or "
                    "import it first (authhost keys)"
                )

    async def get_product(self, product_id: str) -> dict[str, Any]:
        return product_view(await self._product(product_id))

    async def list_products(self) -> list[dict[str, Any]]:
        return [product_view(p) for p in await self.store.list_products()]

    async def create_account(
        self, spec: rq.NewAccount, *, idempotency_key: str = ""
    ) -> dict[str, Any]:
        async def create() -> dict[str, Any]:
            account = Account(
                account_id=spec.account_id or _new_id("acc"),
                currency=spec.currency,
                kind=spec.kind,
                balance=spec.balance,
                credit_limit=spec.credit_limit,
            )
            view = account_view(account)
            entry = self._audit_entry("account.create", account.account_id, None, view)
            try:  # the account and its entry: one write (none when the id is taken)
                await self.store.create_account(account, entry, self.security.audit_seal)
            except Conflict:
                raise ConflictError(f"account {account.account_id} already exists") from None
            return view

        return await self._once("account.create", idempotency_key, spec, create)

    async def get_account(self, account_id: str) -> dict[str, Any]:
        """The account, with its last ledger balance sync (null: never synchronised): when
        the bank's ledger and the host last agreed, and through which journal id."""
        view = account_view(await self._account(account_id))
        view["ledger_sync"] = _ledger_sync_view(await self.store.ledger_state(account_id))
        closed_at = await self._account_closed_at(account_id)
        view["closed_at"] = None if closed_at is None else totals_module.iso_time(closed_at)
        return view

    async def list_accounts(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return [account_view(a) for a in await self.store.list_accounts(limit, offset)]

    async def account_statement(
        self, account_id: str, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """Every change of the account's balance in the period, card transactions and the
        bank's bookings (funds changes, ledger syncs), with their sums, the balance it opened
        and closed at, and the account as it stands now (``admin.statement``). The balances
        are walked back from the balance now through every change since the period's start:
        read again until the balance stays put while the changes are read."""
        from authhost.admin.statement import statement

        now = self.clock()
        since, until = _period(day, since, until, now, self.business_day)
        if since > now:  # its balances are not known yet: the walk back would state today's
            raise InvalidRequest(
                f"the period starts at {totals_module.iso_time(since)}, still to come: a "
                "statement states balances that were"
            )
        query = JournalQuery(account_id=account_id, since=since)  # up to now: the walk back
        account = await self.get_account(account_id)  # as one account's view shows it
        settled = False
        for _ in range(STATEMENT_READS):
            entries = [entry async for entry in self.store.export_journal(query)]
            bookings = await self._bookings_since(account_id, since)
            again = await self.get_account(account_id)
            if again["balance"] == account["balance"]:
                settled = True
                break
            account = again  # a change landed meanwhile: read them again
        await self._refuse_pruned(account_id, since, bookings)
        # moved during every read: the balances may be off by what landed, and say so
        return {**statement(account, entries, bookings, since, until), "balances_settled": settled}

    async def _refuse_pruned(
        self, account_id: str, since: float, bookings: list[AuditEntry]
    ) -> None:
        """Refuse a period the journal's retention cut into (``journal prune``): its card
        lines are deleted, so the balances walked back through them would be off by what they
        moved, with nothing to tell. An account opened after the cut lost nothing."""
        if any(b.action == "account.create" for b in bookings):
            opened = min(b.ts for b in bookings if b.action == "account.create")
        else:
            opened = -math.inf
        cut = await self._journal_cut_after(max(since, opened))
        if cut is not None:
            raise InvalidRequest(
                f"the journal was pruned before {totals_module.iso_time(cut)} (retention): "
                f"account {account_id}'s statement can start there at the earliest (its "
                f"bookings before it: authhost audit list --subject {account_id})"
            )

    async def _journal_cut_after(self, moment: float) -> float | None:
        """The journal's retention cut (``journal.prune``'s audited ``before``, the latest)
        when it is after ``moment``, else None. Newest run first, and no further back than
        a run that could have cut after it: a run deletes ``JOURNAL_MIN_KEEP_DAYS`` before
        it at the most, so a statement of the last weeks reads no entry of the log of
        every pruned batch."""
        from authhost.admin.model_drift import PRUNE_ACTION

        cut: float | None = None
        before_id = 0
        while page := await self.store.audit(
            "journal", AUDIT_PAGE, newest_first=True, before_id=before_id
        ):
            for entry in page:
                floor = moment if cut is None else cut  # what a cut must be after
                if entry.ts - JOURNAL_MIN_KEEP_DAYS * 86400.0 <= floor:
                    return cut
                if entry.action != PRUNE_ACTION:
                    continue
                try:
                    before = float(json.loads(entry.after)["before"])
                except (ValueError, KeyError, TypeError):  # not the shape prune_journal writes
                    continue
                if before > floor:
                    cut = before
            before_id = page[-1].audit_id
        return cut

    async def _bookings_since(self, account_id: str, since: float) -> list[AuditEntry]:
        """The account's audit entries from ``since`` on (newest first, a page at a time:
        the audit log of an account is short, its cards' entries are theirs)."""
        found: list[AuditEntry] = []
        before_id = 0
        while True:
            page = await self.store.audit(
                account_id, AUDIT_PAGE, newest_first=True, before_id=before_id
            )
            found.extend(e for e in page if e.ts >= since)
            if len(page) < AUDIT_PAGE or page[-1].ts < since:
                return found
            before_id = page[-1].audit_id

    async def account_holds(self, account_id: str) -> dict[str, Any]:
        """The holds that keep the account's money from being spent (``admin.holds``), each
        with the authorisation behind it, adding up to the account's holds."""
        from authhost.admin.holds import open_holds_view

        account = await self.get_account(account_id)  # as one account's view shows it
        return await open_holds_view(self.store, account, self.hold_days)

    async def close_account(self, account_id: str, reason: str = "") -> dict[str, Any]:
        """Closing an account: every card still live on it is cancelled (closed: 62 from the
        next request), once nothing is left to settle. Refused while the account holds money
        for pending authorisations or has a balance (debit: funds to pay out; credit: debt to
        collect), or while a dispute on it is open. Audited per card (``card.cancel``) and for
        the account (``account.close``, written with the closed-account marker: both or
        neither). A closure cut short after that (a cancel refused) says so; run again once
        the marker is there (after a crash too), it only cancels the cards left live
        (whatever money reached the account since: a live card could spend on it) and writes
        no second account.close."""
        account = await self._account(account_id)
        if await self._account_closed_at(account_id) is None:
            await self._close_once(account, reason)
        # else closed before (its entry written then) and cut short: its cards left live are
        # cancelled whatever reached the account since (a live card could spend on it)
        cancelled: list[str] = []
        for state in sorted(lifecycle.LIVE_STATES, key=lambda s: s.value):
            # each cancelled card leaves the state: the first page again, until none is left
            while page := await self.store.list_cards(account_id, state.value, 1000, 0):
                for card in page:
                    try:
                        await self.apply(card.card_id, "cancel", reason=reason or "account closed")
                    except ServiceError as exc:
                        raise type(exc)(
                            f"account {account_id} is closed (account.close written), but "
                            f"cancelling its cards stopped at card {card.card_id}: "
                            f"{exc.message}. {len(cancelled)} cancelled so far: close it again "
                            "to cancel the rest"
                        ) from None
                    cancelled.append(card.card_id)
        return {"account_id": account_id, "cancelled_cards": sorted(cancelled)}

    async def _close_once(self, account: Account, reason: str) -> None:
        """The closure's checks, then its marker with ``account.close`` (one write): refused
        while anything on the account is left to settle."""
        account_id = account.account_id
        if account.holds:
            raise ConflictError(
                f"account {account_id} still holds {account.holds} for pending "
                "authorisations: let them complete, reverse or expire first"
            )
        if account.balance:
            raise ConflictError(
                f"account {account_id} has a balance of {account.balance}: pay it out or "
                "collect it first (accounts fund)"
            )
        open_disputes: list[str] = []
        after = ""
        while page := await self.store.disputes("open", 1000, after):
            open_disputes += [d.dispute_id for d in page if d.account_id == account_id]
            after = page[-1].dispute_id
        if open_disputes:
            raise ConflictError(f"account {account_id} has open disputes: {open_disputes}")
        # first the marker, so that no card is issued or replaced onto it while its cards go;
        # a marker, not a result: the idempotency retention keeps it for good
        closed_at = self.clock()
        closed = json.dumps({"closed_at": closed_at}, separators=(",", ":"))
        marked = {"account_id": account_id, "closed_at": closed_at, "reason": reason}
        entry = self._audit_entry("account.close", account_id, account_view(account), marked)
        await self.store.put_marker(
            ACCOUNT_CLOSED_KEY + account_id, closed, entry, self.security.audit_seal
        )

    async def change_funds(
        self, account_id: str, change: rq.FundsChange, *, idempotency_key: str = ""
    ) -> dict[str, Any]:
        """Positive amounts add open-to-buy: a load (debit, prepaid) or a payment (credit).
        With an idempotency key the change is made once: the store writes the money and the
        key together, so a core banking system may resend a load it got no answer for."""
        before = await self._account(account_id)
        delta = -change.amount_minor if before.kind is CardKind.CREDIT else change.amount_minor
        fingerprint = request_fingerprint(change)  # the store keeps keys per account
        closed_at = await self._account_closed_at(account_id)
        if closed_at is not None and not _towards_zero(before.balance, delta):
            if idempotency_key:  # a load made before the closure, sent again: its answer
                earlier = await self.store.funds_change_of(account_id, idempotency_key)
                if earlier is not None:
                    if earlier.fingerprint != fingerprint:
                        raise ConflictError(KEY_REUSED)
                    return account_view(earlier.account)
            # paid out when it closed: money put there has no card. Only a balance a load
            # racing the closure left may still be paid out (or collected), back to zero.
            raise ConflictError(
                f"account {account_id} was closed at {totals_module.iso_time(closed_at)}: "
                "no funds move on it but a balance paid out (load an open account)"
            )

        def after(account: Account) -> dict[str, Any]:  # the balance the write sets
            moved = replace(account, balance=account.balance + delta)
            return {
                **audited_account_view(moved),
                "amount_minor": change.amount_minor,
                "reason": change.reason,
            }

        audit = self._account_audit("account.funds", account_id, after)
        try:  # the money, the key's record and the entry: one write (none for a repeat)
            changed = await self.store.change_funds(
                account_id,
                delta,
                key=idempotency_key,
                fingerprint=fingerprint,
                audit=audit,
                seal=self.security.audit_seal,
            )
        except NotFound:
            raise NotFoundError(f"account {account_id} not found") from None
        except InsufficientFunds as exc:
            raise ConflictError(
                f"account {account_id} has {exc.account.open_to_buy} available; "
                f"cannot take {-change.amount_minor}"
            ) from None
        except BeyondBound as exc:  # (its message: thousands separated, never taken for a PAN)
            raise ConflictError(f"{exc}: nothing changed") from None
        if changed.fingerprint != fingerprint:
            raise ConflictError(KEY_REUSED)
        return account_view(changed.account)

    async def sync_ledger(self, account_id: str, spec: rq.LedgerBalance) -> dict[str, Any]:
        """Bring the account's balance to the bank's ledger: its ledger balance through a
        journal id plus what the host journalled after that id (``store.sync_ledger``), so
        that the bank's own bookings (salary, direct debits, fees) reach the open-to-buy and
        the two balances cannot drift."""
        await self._account(account_id)  # 404 before a cursor's 422
        applied = await self.store.ledger_state(account_id)
        if applied is None or spec.through_journal_id > applied.through_id:
            await self._check_journal_reaches(spec.through_journal_id)
        # the entry says what was asked; the balance it sets follows from the journal
        # entries after the cursor, which the store adds up as it writes
        asked = {
            "ledger_balance_minor": spec.ledger_balance_minor,
            "through_journal_id": spec.through_journal_id,
            "reason": spec.reason,
        }
        audit = self._account_audit("account.ledger_sync", account_id, lambda _: asked)
        try:  # the balance and its entry: one write
            synced = await self.store.sync_ledger(
                account_id,
                spec.ledger_balance_minor,
                spec.through_journal_id,
                self.clock(),
                audit,
                self.security.audit_seal,
            )
        except NotFound:
            raise NotFoundError(f"account {account_id} not found") from None
        except (LedgerRefused, BeyondBound) as exc:
            raise ConflictError(str(exc)) from None
        return {
            **account_view(synced.account),
            "ledger_sync": _ledger_sync_view(synced.state),
            "after_minor": synced.after_minor,
            "entries_after": synced.entries_after,
        }

    async def _check_journal_reaches(self, through_id: int) -> None:
        """Refuse a ledger cursor beyond the journal's newest entry (422): the store would
        keep it as the account's sync point and refuse every real sync after it as older.
        A cursor is a journal id the movements feed gave, so an entry at or after it exists
        (the newest entries are never pruned); one found once vouches for every lower one."""
        if through_id <= self._ids_seen.journal:
            return
        found = await self.store.journal(JournalQuery(after_id=through_id - 1, limit=1))
        if not found:
            raise InvalidRequest(
                f"through_journal_id {through_id:,} is beyond the journal (no entry has that "
                "id or a later one): give the last journal id of the movements the ledger "
                "has booked (journal movements' next_after_id)"
            )
        self._ids_seen.journal = max(self._ids_seen.journal, found[0].journal_id)

    async def set_credit_limit(
        self, account_id: str, change: rq.CreditLimitChange
    ) -> dict[str, Any]:
        """A credit account's limit, or a debit account's arranged overdraft (how far below
        zero its balance may go); a prepaid account spends only what was loaded."""
        before = await self._account(account_id)
        if before.kind is CardKind.PREPAID:
            raise InvalidRequest(f"account {account_id} is prepaid: no credit limit or overdraft")
        if before.kind is CardKind.DEBIT and change.credit_limit > before.credit_limit:
            await self._refuse_overdraft_for_prepaid_cards(account_id)
        audit = self._account_audit(
            "account.credit_limit",
            account_id,
            lambda found: audited_account_view(replace(found, credit_limit=change.credit_limit)),
        )
        try:  # the limit and its entry: one write
            after = await self.store.set_credit_limit(
                account_id, change.credit_limit, audit, self.security.audit_seal
            )
        except NotFound:
            raise NotFoundError(f"account {account_id} not found") from None
        return account_view(after)

    async def _refuse_overdraft_for_prepaid_cards(self, account_id: str) -> None:
        """A debit account carrying a live prepaid product's card (issued before prepaid
        products needed prepaid accounts, 2026-11-29) gets no more overdraft: it would let
        the card spend beyond what was loaded, the very thing that rule stops. A lost, stolen
        or damaged one not yet replaced counts too: its replacement is issued on the same
        account (with no fit check), live."""
        kinds: dict[str, CardKind] = {}
        states = lifecycle.LIVE_STATES | lifecycle.REPLACEABLE
        for state in sorted(states, key=lambda s: s.value):
            offset = 0
            while page := await self.store.list_cards(account_id, state.value, 1000, offset):
                offset += len(page)
                for card in page:
                    if card.state in lifecycle.REPLACEABLE and card.replaced_by:
                        continue  # its successor is listed itself while it is live
                    if card.product_id not in kinds:
                        kinds[card.product_id] = (await self._product(card.product_id)).kind
                    if kinds[card.product_id] is CardKind.PREPAID:
                        move = (
                            f"the card is {card.state.value} and its replacement would be "
                            "issued on this account: replace it and move the replacement"
                            if card.state in lifecycle.REPLACEABLE
                            else "move the card"
                        )
                        raise InvalidRequest(
                            f"account {account_id} carries card {card.card_id} of prepaid "
                            f"product {card.product_id}: an overdraft would let it spend beyond "
                            f"what was loaded; {move} to a prepaid account first "
                            "(cards personalise --account-id), or lower the overdraft only"
                        )

    def _account_audit(
        self, action: str, account_id: str, after: Callable[[Account], dict[str, Any]]
    ) -> AccountAudit:
        """An account write's audit entry, which the store makes from the account as its
        write finds it (``store.interface.AccountAudit``): the account's audited view before,
        and what ``after`` makes of that account."""
        return lambda account: self._audit_entry(
            action, account_id, audited_account_view(account), after(account)
        )


def _limits_changed(before: Limits, spec: rq.LimitsSpec | None) -> Limits:
    """``before`` with the limits ``spec`` names (null: that limit removed), the others kept;
    no ``spec`` (``"limits": null``) removes them all."""
    if spec is None:
        return Limits()
    return replace(before, **{name: getattr(spec, name) for name in spec.model_fields_set})


def _ledger_sync_view(state: LedgerState | None) -> dict[str, Any] | None:
    """An account's last ledger balance sync as its view shows it (None: never)."""
    if state is None:
        return None
    return {
        "through_journal_id": state.through_id,
        "ledger_balance_minor": state.ledger_balance,
        "synced_at": state.synced_at,
    }


def _towards_zero(balance: int, delta: int) -> bool:
    """Whether ``delta`` brings ``balance`` closer to zero without passing it."""
    after = balance + delta
    return abs(after) < abs(balance) and (after == 0 or (after > 0) == (balance > 0))
