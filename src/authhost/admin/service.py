"""The card service: every card-management operation, once, for the API, the CLI and the demo.

It sits on a ``CardStore`` and a ``SecurityModule`` and acts for a named actor (the API token's
name, the CLI user), so each change is written to the audit log with who, when, what and the
state before and after. Answers are JSON-ready views (``admin.views``): a card leaves the
service with its masked PAN only. The clear PAN exists here only in a local variable while a
card is produced, a PIN block is checked, or a record is written to a file an operator names
(``export_personalisation`` for the card bureau, ``generate_pins`` for the PIN mailer
printer, ``export_exception_file`` for the networks: the sanctioned ways out, each audited).

Creates take an optional idempotency key: the same key with the same request returns the
first result; with a different request it is refused (409).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import anyio
from pydantic import BaseModel

from authhost.admin import disputes
from authhost.admin import requests as rq
from authhost.admin import totals as totals_module
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
    ServiceError,
    Unavailable,
)
from authhost.admin.views import (
    account_view,
    audit_view,
    card_view,
    dispute_view,
    fraud_report_view,
    journal_view,
    product_view,
)
from authhost.cards import lifecycle, production
from authhost.cards import pin as pin_rules
from authhost.cards.acceptor_velocity import ACCEPTOR_COUNTERS
from authhost.cards.luhn import is_luhn_valid
from authhost.cards.model import (
    Account,
    Card,
    CardControls,
    CardKind,
    CardState,
    Limits,
    Product,
    StopPayment,
)
from authhost.cards.provisioning import TokenRequestFacts, decide_token_request
from authhost.cards.tokens import (
    PaymentToken,
    TokenError,
    TokenState,
    add_token,
    change_state,
    wallet_of,
)
from authhost.cards.travel import TravelNotice
from authhost.iso.codes import APPROVED_CODES
from authhost.security.errors import KeyNotFound, SecurityError
from authhost.security.keys import KeyType
from authhost.security.masking import mask_pans_in_text
from authhost.store.interface import (
    JOURNAL_MIN_KEEP_DAYS,
    CardStore,
    Conflict,
    InsufficientFunds,
    JournalQuery,
    LedgerRefused,
    NotFound,
)
from authhost.store.records import (
    DISPUTE_STATES,
    AuditEntry,
    Dispute,
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
}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _json(value: Any) -> str:
    return mask_pans_in_text(json.dumps(value, sort_keys=True, separators=(",", ":")))


RENEWAL_PAGE = 1000  # cards read at a time by the renewal run
RENEWAL_LISTED = 1000  # cards the renewal run's answer lists (the counts cover them all)
RETIRE_TRIES = 3  # re-reads of a renewed card changed by someone else while it is retired


class CardService:
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
        hold_days: float | None = None,
        _key_locks: tuple[anyio.Lock, ...] | None = None,
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
        self.hold_days = hold_days  # [auth] hold_days: when a listed hold expires (None: unknown)
        # Striped locks so that two concurrent requests with one idempotency key run once.
        self._key_locks = _key_locks or tuple(anyio.Lock() for _ in range(KEY_LOCK_STRIPES))

    def acting_as(self, actor: str) -> CardService:
        """The same service (same store, keys and locks) recording ``actor`` in the audit log."""
        return CardService(
            self.store,
            self.security,
            actor,
            clock=self.clock,
            models_dir=self.models_dir,
            rules_file=self.rules_file,
            lists_dir=self.lists_dir,
            decide_many=self.decide_many,
            hold_days=self.hold_days,
            _key_locks=self._key_locks,
        )

    # --- audit and idempotency ---------------------------------------------------------------

    async def record_audit(self, action: str, subject: str, before: Any, after: Any) -> None:
        """Append an audit entry as this actor; before/after are views (masked again here)."""
        await self.store.append_audit(
            AuditEntry(
                ts=self.clock(),
                actor=self.actor,
                action=action,
                subject=subject,
                before=_json(before) if before is not None else "",
                after=_json(after) if after is not None else "",
            )
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
        fingerprint = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        stored = await self.store.idempotent_result(store_key)
        if stored is not None:
            earlier = json.loads(stored)
            if earlier.get("request") != fingerprint:
                raise ConflictError(
                    "this Idempotency-Key was already used with a different request"
                )
            return earlier["result"]
        result = await create()
        # Conflict: a concurrent twin stored its result first; ours is equally valid.
        with contextlib.suppress(Conflict):
            await self.store.remember_result(
                store_key, json.dumps({"request": fingerprint, "result": result})
            )
        return result

    # --- products --------------------------------------------------------------------------

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
            await self.store.put_product(product)
            view = product_view(product)
            await self.record_audit("product.create", product_id, None, view)
            return view

        return await self._once("product.create", idempotency_key, spec, create)

    async def update_product(self, product_id: str, change: rq.ProductChange) -> dict[str, Any]:
        """Change what may change on a live product (``rq.ProductChange``); audited with the
        product before and after. A running server reads the product with every snapshot, so
        the next authorisation on its cards sees the change."""
        before = await self._product(product_id)
        given = change.model_fields_set
        changed: dict[str, Any] = {}
        if "name" in given:
            changed["name"] = change.name
        if "limits" in given:
            changed["limits"] = Limits(**(change.limits or rq.LimitsSpec()).model_dump())
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
        if change.version is not None and change.version != before.version:
            raise ConflictError(
                f"product {product_id} is at version {before.version}, not {change.version}: "
                "read it again and make the change on what it is now"
            )
        after = replace(before, **changed, version=before.version + 1)
        try:
            await self.store.put_product(after, expected_version=before.version)
        except Conflict:
            raise ConflictError(
                f"product {product_id} changed while this change was made: read it again"
            ) from None
        view = product_view(after)
        await self.record_audit("product.update", product_id, product_view(before), view)
        return view

    def _require_keys(self, named: Iterable[tuple[str, KeyType]]) -> None:
        """Refuse a product whose keys are not in the key store: every authorisation on it
        would answer 96."""
        for name, key_type in named:
            if not self.security.has_key(name, key_type):
                raise InvalidRequest(
                    f"no {key_type} key named {name!r} in the key store: generate or "
                    "import it first (authhost keys)"
                )

    async def _product(self, product_id: str) -> Product:
        product = await self.store.get_product(product_id)
        if product is None:
            raise NotFoundError(f"product {product_id} not found")
        return product

    async def get_product(self, product_id: str) -> dict[str, Any]:
        return product_view(await self._product(product_id))

    async def list_products(self) -> list[dict[str, Any]]:
        return [product_view(p) for p in await self.store.list_products()]

    # --- accounts --------------------------------------------------------------------------

    async def create_account(
        self, spec: rq.NewAccount, *, idempotency_key: str = ""
    ) -> dict[str, Any]:
        async def create() -> dict[str, Any]:
            if spec.kind is not CardKind.CREDIT and spec.credit_limit:
                raise InvalidRequest("credit_limit applies to credit accounts only")
            account = Account(
                account_id=spec.account_id or _new_id("acc"),
                currency=spec.currency,
                kind=spec.kind,
                balance=spec.balance,
                credit_limit=spec.credit_limit,
            )
            try:
                await self.store.create_account(account)
            except Conflict:
                raise ConflictError(f"account {account.account_id} already exists") from None
            view = account_view(account)
            await self.record_audit("account.create", account.account_id, None, view)
            return view

        return await self._once("account.create", idempotency_key, spec, create)

    async def _account(self, account_id: str) -> Account:
        account = await self.store.get_account(account_id)
        if account is None:
            raise NotFoundError(f"account {account_id} not found")
        return account

    async def get_account(self, account_id: str) -> dict[str, Any]:
        return account_view(await self._account(account_id))

    async def list_accounts(self, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return [account_view(a) for a in await self.store.list_accounts(limit, offset)]

    async def account_statement(
        self, account_id: str, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """Every journal entry of the period that moved the account's money, with their sums
        and the account as it stands now (``admin.statement``)."""
        from authhost.admin.statement import statement

        account = await self._account(account_id)
        since, until = _period(day, since, until)
        query = JournalQuery(account_id=account_id, since=since, until=until)
        entries = [entry async for entry in self.store.export_journal(query)]
        return statement(account_view(account), entries, since, until)

    async def account_holds(self, account_id: str) -> dict[str, Any]:
        """The holds that keep the account's money from being spent (``admin.holds``), each
        with the authorisation behind it, adding up to the account's holds."""
        from authhost.admin.holds import open_holds_view

        account = await self._account(account_id)
        return await open_holds_view(self.store, account_view(account), self.hold_days)

    async def close_account(self, account_id: str, reason: str = "") -> dict[str, Any]:
        """Closing an account: every card still live on it is cancelled (closed: 62 from the
        next request), once nothing is left to settle. Refused while the account holds money
        for pending authorisations or has a balance (debit: funds to pay out; credit: debt to
        collect), or while a dispute on it is open. Audited per card and for the account."""
        account = await self._account(account_id)
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
        cancelled = []
        for state in sorted(lifecycle.LIVE_STATES, key=lambda s: s.value):
            # each cancelled card leaves the state: the first page again, until none is left
            while page := await self.store.list_cards(account_id, state.value, 1000, 0):
                for card in page:
                    await self.apply(card.card_id, "cancel", reason=reason or "account closed")
                    cancelled.append(card.card_id)
        result = {"account_id": account_id, "cancelled_cards": sorted(cancelled)}
        await self.record_audit("account.close", account_id, account_view(account), result)
        return result

    async def change_funds(
        self, account_id: str, change: rq.FundsChange, *, idempotency_key: str = ""
    ) -> dict[str, Any]:
        """Positive amounts add open-to-buy: a load (debit, prepaid) or a payment (credit).
        With an idempotency key the change is made once: the store writes the money and the
        key together, so a core banking system may resend a load it got no answer for."""
        before = await self._account(account_id)
        delta = -change.amount_minor if before.kind is CardKind.CREDIT else change.amount_minor
        # the request is the account and the body: a key reused on another account or amount
        # is refused, not taken for a repeat
        fingerprint = hashlib.sha256(
            f"{account_id}|{change.model_dump_json()}".encode()
        ).hexdigest()
        try:
            changed = await self.store.change_funds(
                account_id, delta, key=idempotency_key, fingerprint=fingerprint
            )
        except NotFound:
            raise NotFoundError(f"account {account_id} not found") from None
        except InsufficientFunds as exc:
            raise ConflictError(
                f"account {account_id} has {exc.account.open_to_buy} available; "
                f"cannot take {-change.amount_minor}"
            ) from None
        if changed.fingerprint != fingerprint:
            raise ConflictError("this Idempotency-Key was already used with a different request")
        view = account_view(changed.account)
        if not changed.repeated:
            detail = {**view, "amount_minor": change.amount_minor, "reason": change.reason}
            await self.record_audit("account.funds", account_id, account_view(before), detail)
        return view

    async def sync_ledger(self, account_id: str, spec: rq.LedgerBalance) -> dict[str, Any]:
        """Bring the account's balance to the bank's ledger: its ledger balance through a
        journal id plus what the host journalled after that id (``store.sync_ledger``), so
        that the bank's own bookings (salary, direct debits, fees) reach the open-to-buy and
        the two balances cannot drift."""
        before = await self._account(account_id)
        try:
            synced = await self.store.sync_ledger(
                account_id, spec.ledger_balance_minor, spec.through_journal_id, self.clock()
            )
        except NotFound:
            raise NotFoundError(f"account {account_id} not found") from None
        except LedgerRefused as exc:
            raise ConflictError(str(exc)) from None
        view = {
            **account_view(synced.account),
            "ledger_balance_minor": synced.ledger_balance,
            "through_journal_id": synced.through_id,
            "after_minor": synced.after_minor,
            "entries_after": synced.entries_after,
        }
        detail = {**view, "reason": spec.reason}
        await self.record_audit("account.ledger_sync", account_id, account_view(before), detail)
        return view

    async def set_credit_limit(
        self, account_id: str, change: rq.CreditLimitChange
    ) -> dict[str, Any]:
        before = await self._account(account_id)
        if before.kind is not CardKind.CREDIT:
            raise InvalidRequest(f"account {account_id} is {before.kind.value}, not credit")
        after = await self.store.set_credit_limit(account_id, change.credit_limit)
        view = account_view(after)
        await self.record_audit("account.credit_limit", account_id, account_view(before), view)
        return view

    # --- cards: production -----------------------------------------------------------------

    async def issue_card(self, spec: rq.IssueCard, *, idempotency_key: str = "") -> dict[str, Any]:
        """Produce a card (state created) with a fresh random PAN from the product's BIN."""

        async def create() -> dict[str, Any]:
            product = await self._product(spec.product_id)
            account = await self._account(spec.account_id)
            _check_account_fits(product, account)
            now = self.clock()
            card_id = production.new_card_id()

            def build(facts: production.PanFacts) -> Card:
                card = production.new_card(
                    product,
                    facts,
                    card_id=card_id,
                    account_id=account.account_id,
                    now=now,
                    cardholder_name=spec.cardholder_name,
                    address_ref=spec.address_ref,
                )
                return replace(
                    card,
                    limits=Limits(**spec.limits.model_dump()) if spec.limits else None,
                    home_country=spec.home_country or "",
                )

            card = await self._store_with_new_pan(build, product)
            view = card_view(card)
            await self.record_audit("card.issue", card.card_id, None, view)
            return view

        return await self._once("card.issue", idempotency_key, spec, create)

    async def _store_with_new_pan(
        self,
        build: Callable[[production.PanFacts], Card],
        product: Product,
        *,
        replaced: Card | None = None,
    ) -> Card:
        """Store the card ``build`` makes under a new random PAN, drawing again on a clash."""
        for _ in range(PAN_ATTEMPTS):
            pan = production.new_pan(product.bin, product.pan_length)
            pan_index = self.security.pan_index(pan)
            if await self.store.find_card(pan_index) is not None:
                continue
            card = build(production.PanFacts.of(pan, pan_index))
            ciphertext = self.security.encrypt_pan(pan, card.card_id)
            try:
                if replaced is None:
                    await self.store.create_card(card, ciphertext)
                else:
                    await self.store.replace_card(replaced, card, ciphertext)
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

    async def get_card(self, card_id: str) -> dict[str, Any]:
        return card_view(await self._card(card_id))

    async def show_card(self, card_id: str) -> dict[str, Any]:
        """The card's view and ``last_used``: when its newest request was journalled (null:
        never, or pruned), the first thing a support desk asks."""
        card = await self._card(card_id)
        return {**card_view(card), "last_used": await self.store.last_used(card)}

    async def find_card(self, pan: str) -> dict[str, Any]:
        card = await self.store.find_card(self.security.pan_index(pan))
        if card is None:
            raise NotFoundError("no card with this PAN")
        return card_view(card)

    async def list_cards(
        self, *, account_id: str = "", state: str = "", limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        if state and state not in {s.value for s in CardState}:
            known = ", ".join(s.value for s in CardState)
            raise InvalidRequest(f"unknown card state {state!r}; known: {known}")
        cards = await self.store.list_cards(account_id, state, limit, offset)
        return [card_view(c) for c in cards]

    async def personalise(self, card_id: str, change: rq.Personalise) -> dict[str, Any]:
        card = await self._changeable_card(card_id)
        updates: dict[str, Any] = {}
        if change.cardholder_name is not None:
            updates["cardholder_name"] = change.cardholder_name
        if change.address_ref is not None:
            updates["address_ref"] = change.address_ref
        if change.account_id is not None and change.account_id != card.account_id:
            _check_account_fits(
                await self._product(card.product_id), await self._account(change.account_id)
            )
            updates["account_id"] = change.account_id
        if not updates:
            raise InvalidRequest(
                "nothing to change: give cardholder_name, account_id or address_ref"
            )
        return await self._update(card, replace(card, **updates), "card.personalise")

    async def set_card_limits(self, card_id: str, limits: rq.LimitsSpec) -> dict[str, Any]:
        """Card-level limit overrides (each given value beats the product's); all empty
        removes the overrides."""
        card = await self._changeable_card(card_id)
        values = limits.model_dump()
        overrides = Limits(**values) if any(v is not None for v in values.values()) else None
        return await self._update(card, replace(card, limits=overrides), "card.limits")

    async def set_card_controls(self, card_id: str, spec: rq.CardControlsSpec) -> dict[str, Any]:
        """What the cardholder switched off on this card (channels, merchant categories,
        countries), on top of its product's controls: declined 57 from the next request.
        All lists empty removes the card's controls. Audited."""
        card = await self._changeable_card(card_id)
        controls = CardControls(
            frozenset(spec.blocked_channels),
            frozenset(spec.blocked_mccs),
            frozenset(spec.blocked_countries),
        )
        changed = controls if controls != CardControls() else None
        return await self._update(card, replace(card, controls=changed), "card.controls")

    async def set_chip_scripts(self, card_id: str, spec: rq.ChipScriptsSpec) -> dict[str, Any]:
        """The issuer script commands the card's chip gets with its next online request whose
        cryptogram the host accepts (``auth.issuer_scripts``): an application unblock after a
        block, a PIN unblock. Replaces what was waiting; an empty list withdraws it. Audited."""
        card = await self._changeable_card(card_id)
        commands = tuple(dict.fromkeys(spec.commands))
        if commands and not (await self._product(card.product_id)).imk_smi_name:
            raise ConflictError(
                f"product {card.product_id} sends no issuer scripts: it has no imk_smi_name"
            )
        return await self._update(card, replace(card, chip_scripts=commands), "card.chip_scripts")

    async def set_stop_payments(self, card_id: str, spec: rq.StopPayments) -> dict[str, Any]:
        """Replace the card's stop payments: merchant-initiated charges from a stopped merchant
        are declined R1 (every merchant: R3) from the next request (``auth.steps.controls``).
        Audited."""
        card = await self._changeable_card(card_id)
        stops = tuple(
            dict.fromkeys(StopPayment(x.merchant_id, x.until) for x in spec.stops)
        )  # the same stop twice is one
        return await self._update(card, replace(card, stop_payments=stops), "card.stop_payments")

    async def add_token(self, card_id: str, spec: rq.NewToken) -> dict[str, Any]:
        """Register a payment token the network issued for the card: wallet payments with it
        (field 48 SE 33) are approved as the card's while it is active. Refused for a card that
        cannot pay (final states, lost) and for a number that is not Luhn-valid. Audited."""
        card = await self._changeable_card(card_id)
        _, tokens = self._with_new_token(card, spec, TokenState.ACTIVE)
        return await self._update(card, replace(card, tokens=tokens), "card.token_add")

    def _with_new_token(
        self, card: Card, spec: rq.NewToken, state: TokenState
    ) -> tuple[PaymentToken, tuple[PaymentToken, ...]]:
        """The token a request describes and the card's tokens with it: refused for a number
        that fails its check digit or is the card's own (422), or one the card has (409)."""
        if not is_luhn_valid(spec.token_pan):
            raise InvalidRequest("the token number fails its check digit")
        token_ref = self.security.pan_index(spec.token_pan)
        if token_ref == card.pan_index:
            raise InvalidRequest("a token is another number than the card's own")
        now = self.clock()
        try:
            token = PaymentToken(
                token_ref=token_ref,
                last4=spec.token_pan[-4:],
                requestor_id=spec.requestor_id,
                wallet=wallet_of(spec.requestor_id, spec.wallet),
                expiry=spec.expiry,
                device=spec.device,
                state=state,
                created_at=now,
                changed_at=now,
            )
            return token, add_token(card.tokens, token)
        except TokenError as error:
            raise ConflictError(str(error)) from None

    async def token_request(self, spec: rq.TokenRequest) -> dict[str, Any]:
        """The issuer's answer to a wallet's token request (``cards.provisioning``): approved
        (the token is registered active), authentication_required (registered suspended,
        until the cardholder's one-time code is verified: then set it active) or declined (no
        token), with the reasons. Audited either way; the numbers are never kept or shown."""
        card = await self.store.find_card(self.security.pan_index(spec.pan))
        if card is None:
            raise NotFoundError("no card with this PAN")
        product = await self.store.get_product(card.product_id)
        cvv2_matches = None
        if spec.cvv2 and product is not None:
            cvv2_matches = self.security.verify_card_value(
                spec.pan, card.expiry, "000", spec.cvv2, product.cvk_name
            )
        now = self.clock()
        answer = decide_token_request(
            TokenRequestFacts(
                card=card,
                expiry_matches=spec.card_expiry == card.expiry,
                cvv2_matches=cvv2_matches,
                device_score=spec.device_score,
                account_score=spec.account_score,
                now=now,
            )
        )
        result: dict[str, Any] = {
            "decision": answer.decision.value,
            "reasons": list(answer.reasons),
            "card_id": card.card_id,
            "token_ref": "",
        }
        state = answer.token_state
        if state is None:  # the masked PAN too, for the cardholder's notification
            audited = {**result, "pan": card.masked_pan}
            await self.record_audit("card.token_request", card.card_id, None, audited)
            return result
        token, tokens = self._with_new_token(card, spec, state)
        decided = {"decision": result["decision"], "reasons": result["reasons"]}
        await self._update(
            card, replace(card, tokens=tokens), "card.token_request", details=decided
        )
        return {**result, "token_ref": token.token_ref}

    async def set_token_state(
        self, card_id: str, token_ref: str, spec: rq.TokenChange
    ) -> dict[str, Any]:
        """Suspend, resume or delete one of the card's tokens (a lost phone, a wallet removed):
        the next payment with it is decided by its new state. Allowed on a card in any state
        (a closed card's tokens are deleted too). Audited, with the reason."""
        card = await self._card(card_id)
        try:
            tokens = change_state(card.tokens, token_ref, TokenState(spec.state), self.clock())
        except LookupError:
            raise NotFoundError(f"card {card_id} has no token {token_ref}") from None
        except TokenError as error:
            raise ConflictError(str(error)) from None
        if tokens is card.tokens:
            return card_view(card)  # already in that state
        action = f"card.token_{spec.state}"
        return await self._update(card, replace(card, tokens=tokens), action, spec.reason)

    async def set_travel_notices(self, card_id: str, spec: rq.TravelNotices) -> dict[str, Any]:
        """Replace the card's travel notices (``cards.travel``): rules read whether one covers
        a request's country that day as card.travel_notice. Audited."""
        card = await self._changeable_card(card_id)
        notices = tuple(TravelNotice(frozenset(n.countries), n.start, n.end) for n in spec.notices)
        return await self._update(
            card, replace(card, travel_notices=notices), "card.travel_notices"
        )

    async def _changeable_card(self, card_id: str) -> Card:
        """The card, unless it is in a final state (then nothing on it changes: 409)."""
        card = await self._card(card_id)
        if card.state in lifecycle.FINAL_STATES:
            raise ConflictError(f"card {card_id} is {card.state.value}; it cannot be changed")
        return card

    async def _update(
        self,
        before: Card,
        after: Card,
        action: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> dict:
        """Write ``after`` over ``before`` and audit both views (with ``reason``, and
        ``details`` of the change beside the card's view)."""
        try:
            stored = await self.store.update_card(after)
        except Conflict:
            raise ConflictError(
                f"card {before.card_id} was changed by someone else; read it and retry"
            ) from None
        view = card_view(stored)
        audited = {**_with_reason(view, reason), **(details or {})}
        await self.record_audit(action, before.card_id, card_view(before), audited)
        return view

    # --- cards: lifecycle ------------------------------------------------------------------

    async def apply(self, card_id: str, action: str, *, reason: str = "") -> dict[str, Any]:
        """Run one lifecycle action; replace/renew answer with the new card."""
        if action not in LIFECYCLE_ACTIONS:
            raise InvalidRequest(
                f"unknown action {action!r}; known: {', '.join(LIFECYCLE_ACTIONS)}"
            )
        card = await self._card(card_id)
        if action in ("replace", "renew", "reissue"):
            return await self._successor(card, action, reason)
        try:
            after = lifecycle.transition(card, action, now=self.clock())
        except lifecycle.IllegalTransition as exc:
            raise ConflictError(str(exc)) from None
        view = await self._update(card, after, f"card.{action.replace('-', '_')}", reason)
        if action == lifecycle.Event.ACTIVATE and card.replaces:
            await self._retire_predecessor(card)
        return view

    async def _retire_predecessor(self, successor: Card) -> None:
        """A renewed or reissued card's predecessor stops once its successor is activated:
        until then it kept working, so the cardholder was never without a card (a lost,
        stolen or damaged predecessor is final already and stays as it is)."""
        for _ in range(RETIRE_TRIES):  # the successor is active already: retire, re-reading
            old = await self.store.get_card(successor.replaces or "")  # on a concurrent change
            if old is None:
                return
            retired = lifecycle.retire(old)
            if retired is old:
                return
            try:
                await self._update(old, retired, "card.retire", f"successor {successor.card_id}")
                return
            except ConflictError:
                continue
        raise ConflictError(
            f"card {successor.card_id} is active, but its predecessor {successor.replaces} kept "
            "changing and is still live: cancel it if it should stop working"
        )

    async def _successor(self, card: Card, action: str, reason: str) -> dict[str, Any]:
        product = await self._product(card.product_id)
        make = {"renew": lifecycle.renew, "reissue": lifecycle.reissue}.get(
            action, lifecycle.replace
        )
        try:
            old, new = make(
                card,
                now=self.clock(),
                validity_months=product.validity_months,
                new_card_id=production.new_card_id(),
            )
        except lifecycle.IllegalTransition as exc:
            raise ConflictError(str(exc)) from None
        if new.pan_index:  # same PAN (renewal, damaged card): re-encrypt it for the new card
            pan = await self._clear_pan(card.card_id)
            ciphertext = self.security.encrypt_pan(pan, new.card_id)
            del pan
            try:
                await self.store.replace_card(old, new, ciphertext)
            except Conflict:
                raise ConflictError(
                    f"card {card.card_id} was changed by someone else; read it and retry"
                ) from None
        else:  # lost, stolen or exposed: the successor gets a new PAN
            new = await self._store_with_new_pan(
                lambda facts: replace(
                    new,
                    pan_index=facts.pan_index,
                    bin=facts.bin,
                    last4=facts.last4,
                    pan_length=facts.pan_length,
                ),
                product,
                replaced=old,
            )
        view = card_view(new)
        after = {"old": card_view(await self._card(card.card_id)), "new": view}
        await self.record_audit(
            f"card.{action}", card.card_id, card_view(card), _with_reason(after, reason)
        )
        return view

    async def expiring_cards(self, months: int = 12) -> dict[str, Any]:
        """How many live cards expire in each of the next ``months`` months (this one
        first) without a successor yet: the renewal runs and bureau volumes to plan."""
        if not 1 <= months <= 60:
            raise InvalidRequest("months must be 1 to 60")
        now = time.gmtime(self.clock())
        first = f"{now.tm_year % 100:02d}{now.tm_mon:02d}"
        wanted = [production.months_after(first, k) for k in range(months)]
        due = dict.fromkeys(wanted, 0)
        async for card in self._live_cards():
            if card.expiry in due and not card.replaced_by:
                due[card.expiry] += 1
        return {"months": [{"expiry": e, "due": n} for e, n in due.items()]}

    async def _live_cards(self) -> AsyncIterator[Card]:
        """Every issued, active or suspended card, page by page."""
        for state in sorted(lifecycle.RENEWABLE, key=lambda s: s.value):
            offset = 0
            while page := await self.store.list_cards("", state.value, RENEWAL_PAGE, offset):
                offset += len(page)
                for card in page:
                    yield card

    async def renew_expiring(self, run: rq.RenewalRun) -> dict[str, Any]:
        """The monthly renewal run: every issued, active or suspended card expiring in
        ``run.expiry`` (YYMM) that has no successor yet is renewed (same PAN, new expiry and
        card values, at created: the bureau export picks the new plastics up). A card renewed
        already is skipped, so running the month again renews nothing twice; a card that
        cannot be renewed (changed meanwhile) is reported and the run goes on. Each renewal is
        audited (card.renew), and the run with its counts (card.renewal_run)."""
        due: list[Card] = []
        already = 0
        async for card in self._live_cards():
            if card.expiry != run.expiry:
                continue
            if card.replaced_by:
                already += 1
            else:
                due.append(card)
        renewed: list[dict[str, Any]] = []
        failed: list[dict[str, str]] = []
        if not run.dry_run:
            reason = f"renewal run {run.expiry}"
            for card in due:
                try:
                    new = await self._successor(card, "renew", reason)
                except ServiceError as error:
                    failed.append({"card_id": card.card_id, "error": error.message})
                    continue
                renewed.append(
                    {"card_id": card.card_id, "masked_pan": card.masked_pan,
                     "new_card_id": new["card_id"], "new_expiry": new["expiry"]}
                )  # fmt: skip
        counts = {
            "due": len(due),
            "renewed": len(renewed),
            "already_renewed": already,
            "failed": len(failed),
        }
        if not run.dry_run:
            await self.record_audit(
                "card.renewal_run", f"expiry-{run.expiry}", None, {"expiry": run.expiry, **counts}
            )
        listed = renewed if not run.dry_run else [
            {"card_id": c.card_id, "masked_pan": c.masked_pan, "state": c.state.value} for c in due
        ]  # fmt: skip
        return {
            "expiry": run.expiry,
            "dry_run": run.dry_run,
            **counts,
            "cards": listed[:RENEWAL_LISTED],
            "cards_listed_in_part": len(listed) > RENEWAL_LISTED,
            "failures": failed[:RENEWAL_LISTED],
        }

    # --- PIN -------------------------------------------------------------------------------

    async def set_pin(self, card_id: str, change: rq.PinChange) -> dict[str, Any]:
        """Set or reset the PIN from an encrypted PIN block; only its PVV/offset is stored."""
        card = await self._card(card_id)
        if card.state in lifecycle.FINAL_STATES:
            raise ConflictError(f"card {card_id} is {card.state.value}; no PIN can be set")
        product = await self._product(card.product_id)
        pan = await self._clear_pan(card_id)
        try:
            source = self.security.pin_source(change.ksn, change.acquirer_id)
            reference = self.security.pin_reference(
                bytes.fromhex(change.pin_block),
                pan,
                source,
                card.pin_method,
                product.pvk_name,
                product.pvki,
            )
        except KeyNotFound as exc:  # the product names a key the key store lacks
            raise Unavailable(str(exc)) from None
        except SecurityError as exc:  # wrong key, tampered block, PIN unfit for the method
            raise InvalidRequest(str(exc)) from None
        finally:
            del pan
        action = "pin.reset" if card.pin_reference is not None else "pin.set"
        return await self._update(card, pin_rules.with_pin_reference(card, reference), action)

    async def generate_pins(self, card_ids: Sequence[str], out: Path, length: int = 4) -> int:
        """New random PINs for cards (first PINs, or a PIN the cardholder forgot): each card
        keeps only its PVV or offset, and ``out`` (a new file, owner-only) gets one line per
        card for the PIN mailer printer: PAN, cardholder, the PIN block under the printer's key
        (``security.pin_mailer_key``), that key's name and check value. A card's line is
        written after its reference is stored; the PIN exists nowhere else. Audited per card
        (``pin.generate``, never the block). Returns how many were written."""
        cards = [await self._card(card_id) for card_id in dict.fromkeys(card_ids)]  # each once
        for card in cards:
            if card.state in lifecycle.FINAL_STATES:
                raise ConflictError(f"card {card.card_id} is {card.state.value}; no PIN is made")
        products = {c.product_id: await self._product(c.product_id) for c in cards}
        written = 0
        with _new_private_file(out) as file:
            for card in cards:
                product = products[card.product_id]
                pan = await self._clear_pan(card.card_id)
                try:
                    issued = self.security.generate_pin(
                        pan, card.pin_method, product.pvk_name, product.pvki, length
                    )
                except KeyNotFound as exc:
                    raise Unavailable(str(exc)) from None
                await self._update(
                    card, pin_rules.with_pin_reference(card, issued.reference), "pin.generate"
                )
                record = {
                    "card_id": card.card_id,
                    "pan": pan,
                    "cardholder_name": card.cardholder_name,
                    "address_ref": card.address_ref,
                    "pin_block": issued.pin_block.hex().upper(),
                    "pin_block_format": f"ISO-{int(issued.block_format)}",
                    "key": issued.key_name,
                    "kcv": issued.key_kcv,
                }
                file.write(json.dumps(record) + "\n")
                file.flush()
                written += 1
                del pan
        return written

    async def unlock_pin(self, card_id: str) -> dict[str, Any]:
        card = await self._card(card_id)
        if card.pin_tries == 0:
            return card_view(card)
        unlocked = pin_rules.unlock(card)
        product = await self._product(card.product_id)
        if product.imk_smi_name and "pin_unblock" not in card.chip_scripts:
            # the chip counts wrong offline PINs too: its counter is reset at its next online
            # request, or the card still refuses offline PIN at the till
            unlocked = replace(unlocked, chip_scripts=(*card.chip_scripts, "pin_unblock"))
        return await self._update(card, unlocked, "pin.unlock")

    # --- journal, audit, lists -------------------------------------------------------------

    async def card_journal(
        self, card_id: str, *, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        await self._card(card_id)
        entries = await self.store.journal(
            JournalQuery(card_id=card_id, limit=limit, after_id=after_id)
        )
        verdicts = await self._verdicts([e.journal_id for e in entries])
        return [{**journal_view(e), "verdict": verdicts.get(e.journal_id)} for e in entries]

    async def explain_entry(self, card_id: str, journal_id: int, model: str = "") -> dict[str, Any]:
        """Why one of the card's journalled transactions scored what it did, by the champion
        of the models directory or the artifact ``model`` (``admin.explain``)."""
        from authhost.admin.explain import explain_journal_entry
        from authhost.models.registry import Registry, RegistryError

        await self._card(card_id)
        registry = Registry(self.models_dir or "models")
        try:
            if model:
                scorer = await anyio.to_thread.run_sync(registry.load, model)
            else:
                scorer = (await anyio.to_thread.run_sync(registry.load_active))[0]
        except RegistryError as exc:
            raise InvalidRequest(str(exc)) from None
        if scorer is None:
            raise InvalidRequest(f"no active model in {registry.root}; name one with model")
        return await explain_journal_entry(self.store, card_id, journal_id, scorer)

    async def explain_rules(
        self, card_id: str, journal_id: int, rules_file: str | Path = ""
    ) -> dict[str, Any]:
        """What each rule of the configured rules file (or ``rules_file``) makes of one of the
        card's journalled transactions, with the values of the variables it reads
        (``admin.explain``); the named lists are the lists directory's and the store's."""
        from authhost.admin.explain import explain_rules_for_entry
        from authhost.rules.lists import ListLoadError, load_lists, merge_lists
        from authhost.rules.loader import load_rule_set
        from authhost.rules.rulefile import RuleLoadError

        await self._card(card_id)
        path = rules_file or self.rules_file
        if not path:
            raise InvalidRequest("no rules file: set [rules] file, or name one")
        try:
            rule_set = await anyio.to_thread.run_sync(load_rule_set, path)
            from_files = load_lists(self.lists_dir) if self.lists_dir else {}
        except (RuleLoadError, ListLoadError) as exc:
            raise InvalidRequest(str(exc)) from None
        names = await self.store.list_names()
        stored = {name: await self.store.get_list(name) for name in names}
        lists = merge_lists(from_files, stored)
        return await explain_rules_for_entry(self.store, card_id, journal_id, rule_set, lists)

    async def import_clearing(self, spec: rq.ClearingImport) -> dict[str, Any]:
        """Post a clearing file's presentments (``admin.clearing``) through the server's own
        pipeline, or with ``dry_run`` only match them. Audited with its counts."""
        from authhost.admin.clearing import ClearingFileError, parse_presentments
        from authhost.admin.clearing import post_presentments as post

        rq.ClearingImport.model_validate(spec.model_dump())
        try:
            presentments = parse_presentments(spec.csv.splitlines(keepends=True), "the CSV")
        except ClearingFileError as exc:
            raise InvalidRequest(str(exc)) from None
        if not spec.dry_run and self.decide_many is None:
            raise Unavailable("clearing posts through a running server's pipeline")
        decide = None if spec.dry_run else self.decide_many
        result = await post(presentments, self.store, self.security.pan_index, decide)
        if not spec.dry_run:
            await self.audit_clearing(result)
        return {"dry_run": spec.dry_run, **result}

    async def audit_clearing(self, result: dict[str, Any]) -> None:
        """One audit entry per clearing import that posted: its counts, no presentment."""
        summary = {"dry_run": False, **{k: result[k] for k in ("presentments", "outcomes")}}
        await self.record_audit("clearing.import", "clearing", None, summary)

    async def report_fraud(
        self, card_id: str, journal_id: int, spec: rq.FraudReportSpec
    ) -> dict[str, Any]:
        """Record that one of the card's journalled transactions was fraud (or, after all,
        genuine): the label the journal export gives training and backtests. A later report
        on the same entry replaces the earlier. Audited."""
        rq.FraudReportSpec.model_validate(spec.model_dump())
        await self._card(card_id)
        await self._journal_entry(card_id, journal_id)
        report = FraudReport(
            journal_id,
            card_id,
            spec.fraud,
            spec.source,
            self.clock(),
            mask_pans_in_text(spec.note),
        )
        before = (await self.store.fraud_reports_of([journal_id])).get(journal_id)
        await self.store.put_fraud_report(report)
        view = fraud_report_view(report)
        await self.record_audit(
            "journal.fraud_report",
            card_id,
            fraud_report_view(before) if before is not None else None,
            view,
        )
        return view

    async def review_queue(
        self, *, limit: int = 100, after_id: int = 0, open_only: bool = True
    ) -> dict[str, Any]:
        """The transactions the rules flagged for review, in journal order, each with the
        verdict reported on it so far (none: still open). ``open_only`` leaves out the ones
        with a verdict; page on with ``next_after_id``."""
        entries = await self.store.journal(
            JournalQuery(review_only=True, limit=limit, after_id=after_id)
        )
        verdicts = await self._verdicts([e.journal_id for e in entries])
        rows = []
        for entry in entries:
            verdict = verdicts.get(entry.journal_id)
            if open_only and verdict is not None:
                continue
            rows.append({**journal_view(entry), "verdict": verdict})
        return {
            "reviews": rows,
            "next_after_id": entries[-1].journal_id if entries else after_id,
        }

    async def busiest_acceptors(
        self, *, by: str = "failed_cvv_10m", terminals: bool = False, limit: int = 20
    ) -> dict[str, Any]:
        """The merchants (or terminals) with the most ``by`` now: where card testing is going
        on. Counted from the last hour of the journal by the counters the rules read
        (``merchant.*``, ``terminal.*``), whether or not a rule reads them."""
        if by not in ACCEPTOR_COUNTERS:
            raise InvalidRequest(f"by must be one of {', '.join(ACCEPTOR_COUNTERS)}")
        now = time.time()
        reading = await self.store.read_acceptor_counters(now)
        busiest = reading.counters.busiest(now, by, terminals=terminals, limit=limit)
        return {
            "by": by,
            "at": now,
            "requests_counted": len(reading.counters),
            "acceptors": [
                {
                    "merchant_id": merchant,
                    "merchant_name": reading.names.get(merchant, ""),
                    "terminal_id": terminal,
                    **dataclasses.asdict(counts),
                }
                for merchant, terminal, counts in busiest
            ],
        }

    async def money_movements(self, after_id: int = 0, limit: int = 1000) -> dict[str, Any]:
        """The money movements after journal id ``after_id`` for the core banking ledger
        (``admin.movements``): poll with the ``next_after_id`` of the last answer."""
        from authhost.admin.movements import next_movements

        _check_feed_cursor(after_id, limit)
        return await next_movements(self.store.journal, after_id, limit, self.clock())

    async def cardholder_alerts(
        self,
        after_id: int = 0,
        limit: int = 1000,
        *,
        amount_minor: int = 0,
        card_not_present: bool = False,
        abroad: bool = False,
    ) -> dict[str, Any]:
        """The alerts after journal id ``after_id`` for the cardholder notification service
        (``admin.alerts``), with its policy for approvals: poll with ``next_after_id``."""
        from authhost.admin.alerts import AlertPolicy, alert_kinds, alert_view
        from authhost.admin.journal_feed import next_in_feed

        _check_feed_cursor(after_id, limit)
        if amount_minor < 0:
            raise InvalidRequest("amount_minor is 0 or more")
        policy = AlertPolicy(amount_minor, card_not_present, abroad)

        def pick(entry: JournalEntry) -> dict[str, Any] | None:
            kinds = alert_kinds(entry, policy)
            return alert_view(entry, kinds) if kinds else None

        alerts, cursor = await next_in_feed(self.store.journal, pick, after_id, limit, self.clock())
        return {"alerts": alerts, "next_after_id": cursor}

    async def wallet_events(self, after_id: int = 0, limit: int = 1000) -> dict[str, Any]:
        """Token events after audit id ``after_id`` for the cardholder notification service
        (``admin.wallet_events``): a card added to a wallet, asked for, suspended, resumed,
        deleted. Poll with ``next_after_id``."""
        from authhost.admin.wallet_events import wallet_events

        _check_feed_cursor(after_id, limit)
        return await wallet_events(self.store.audit, after_id, limit)

    async def find_entries(
        self, *, rrn: str, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> list[dict[str, Any]]:
        """The journal entries of a period with this retrieval reference number (field 37):
        what the host answered when a switch or an acquirer asks about a transaction."""
        if not (rrn and len(rrn) <= 12 and rrn.isascii() and rrn.isprintable()):
            raise InvalidRequest("rrn must be 1 to 12 characters (field 37)")
        since, until = _period(day, since, until)
        query = JournalQuery(rrn=rrn, since=since, until=until)
        entries = [entry async for entry in self.store.export_journal(query)]
        verdicts = await self._verdicts([e.journal_id for e in entries])
        return [{**journal_view(e), "verdict": verdicts.get(e.journal_id)} for e in entries]

    async def journal_totals(
        self, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """The period's totals for the back office's reconciliation (``admin.totals``): a UTC
        ``day`` (YYYY-MM-DD), or [since, until) in epoch seconds. Streams the period's journal
        entries, so a day of traffic needs memory for the totals only."""
        since, until = _period(day, since, until)
        totals = totals_module.Totals(since, until)
        async for entry in self.store.export_journal(JournalQuery(since=since, until=until)):
            totals.add(entry)
        return totals.view()

    async def compare_models(
        self,
        *,
        day: str = "",
        since: float = 0.0,
        until: float = 0.0,
        champion_threshold: int | None = None,
        challenger_threshold: int | None = None,
    ) -> dict[str, Any]:
        """Champion against challenger over the requests both scored in the period
        (``admin.model_comparison``), each at its operating threshold: the active artifacts'
        own, unless given. Fraud reports are the verdicts."""
        from authhost.admin.model_comparison import compare_models

        since, until = _period(day, since, until)
        return await compare_models(
            self.store, self.models_dir, since, until, champion_threshold, challenger_threshold
        )

    # --- disputes --------------------------------------------------------------------------

    async def open_dispute(
        self, card_id: str, journal_id: int, spec: rq.DisputeOpen
    ) -> dict[str, Any]:
        """Open the cardholder's dispute of a posted transaction (``admin.disputes``), with a
        provisional credit unless told not to; a fraud dispute also labels the entry fraud
        (source chargeback). Audited."""
        await self._card(card_id)
        entry = await self._journal_entry(card_id, journal_id)
        if entry.response_code not in APPROVED_CODES or entry.movement != "post":
            raise InvalidRequest(
                f"journal entry {journal_id} is not a posted charge (movement "
                f"{entry.movement or 'none'}, response {entry.response_code}): only what was "
                "posted to the account can be disputed"
            )
        now = self.clock()
        if now - entry.ts > disputes.WINDOW_DAYS * 86_400:
            raise InvalidRequest(
                f"journal entry {journal_id} is more than {disputes.WINDOW_DAYS} days old: "
                "too late to charge back"
            )
        amount = spec.amount_minor or entry.hold_amount
        if amount > entry.hold_amount:
            raise InvalidRequest(f"amount_minor is more than the {entry.hold_amount} posted")
        if spec.provisional_credit and self.decide_many is None:
            raise Unavailable("a provisional credit posts through a running server's pipeline")
        dispute = Dispute(
            disputes.new_dispute_id(now), journal_id, card_id, entry.account_id, spec.reason,
            amount, entry.currency, now, note=mask_pans_in_text(spec.note),
        )  # fmt: skip
        try:
            await self.store.open_dispute(dispute)
        except Conflict:
            raise ConflictError(f"journal entry {journal_id} is disputed already") from None
        if spec.provisional_credit:
            await self._dispute_move(dispute, entry.merchant_id, disputes.CREDIT, amount)
            dispute = replace(dispute, credited_minor=amount)
            await self.store.update_dispute(dispute)
        if spec.reason == "fraud":
            await self.store.put_fraud_report(
                FraudReport(journal_id, card_id, True, "chargeback", now, dispute.note)
            )
        view = dispute_view(dispute)
        await self.record_audit("dispute.open", dispute.dispute_id, None, view)
        return view

    async def resolve_dispute(self, dispute_id: str, spec: rq.DisputeResolution) -> dict[str, Any]:
        """Close an open dispute: won gives what was not yet credited, lost or withdrawn takes
        the provisional credit back. Audited."""
        before = await self.store.get_dispute(dispute_id)
        if before is None:
            raise NotFoundError(f"dispute {dispute_id} not found")
        if before.state != "open":
            raise ConflictError(f"dispute {dispute_id} is {before.state} already")
        if self.decide_many is None:
            raise Unavailable("resolving a dispute posts through a running server's pipeline")
        entry = await self._journal_entry(before.card_id, before.journal_id)
        credited = before.credited_minor
        if spec.outcome == "won" and credited < before.amount_minor:
            missing = before.amount_minor - credited
            await self._dispute_move(before, entry.merchant_id, disputes.FINAL_CREDIT, missing)
            credited = before.amount_minor
        elif spec.outcome != "won" and credited:
            await self._dispute_move(before, entry.merchant_id, disputes.TAKE_BACK, credited)
            credited = 0
        after = replace(
            before, state=spec.outcome, credited_minor=credited, closed_at=self.clock(),
            note=mask_pans_in_text(spec.note) or before.note,
        )  # fmt: skip
        await self.store.update_dispute(after)
        view = dispute_view(after)
        await self.record_audit("dispute.resolve", dispute_id, dispute_view(before), view)
        return view

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

    async def _dispute_move(self, dispute: Dispute, merchant: str, step: str, amount: int) -> None:
        card_id = dispute.card_id
        pan = await self._clear_pan(card_id)
        try:
            await disputes.move(
                self.store, self.security.pan_index, self.decide_many, dispute, pan, merchant,
                step, amount,
            )  # fmt: skip
        finally:
            del pan

    async def _journal_entry(self, card_id: str, journal_id: int) -> JournalEntry:
        from authhost.admin.explain import card_journal_entry

        return await card_journal_entry(self.store, card_id, journal_id)

    async def _verdicts(self, journal_ids: list[int]) -> dict[int, str]:
        """'fraud' or 'genuine' for each of these entries that has a fraud report."""
        reports = await self.store.fraud_reports_of(journal_ids)
        return {jid: "fraud" if r.fraud else "genuine" for jid, r in reports.items()}

    async def fraud_reports(self, *, limit: int = 100, after_id: int = 0) -> list[dict[str, Any]]:
        return [fraud_report_view(r) for r in await self.store.fraud_reports(after_id, limit)]

    async def prune_journal(self, keep_days: int) -> dict[str, Any]:
        """Delete journal entries (and closed holds) older than ``keep_days``: the retention an
        issuer's data policy sets. Refused under JOURNAL_MIN_KEEP_DAYS, which the velocity
        counters and the reversals of open holds still read. Audited."""
        if keep_days < JOURNAL_MIN_KEEP_DAYS:
            raise InvalidRequest(
                f"keep_days must be at least {JOURNAL_MIN_KEEP_DAYS}: velocity counters read "
                "30 days of the journal and reversals find their holds"
            )
        before = self.clock() - keep_days * 86400
        pruned = await self.store.prune_journal(before)
        result = {"before": before, "entries": pruned.entries, "holds": pruned.holds}
        await self.record_audit(
            "journal.prune", "journal", None, {"keep_days": keep_days, **result}
        )
        return result

    async def audit(
        self, *, subject: str = "", limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        entries = await self.store.audit(subject=subject, limit=limit, after_id=after_id)
        return [audit_view(e) for e in entries]

    async def list_names(self) -> list[str]:
        return sorted(await self.store.list_names())

    async def get_list(self, name: str) -> dict[str, Any]:
        if name not in await self.store.list_names():
            raise NotFoundError(f"list {name} not found")
        return {"name": name, "values": sorted(await self.store.get_list(name))}

    async def put_list(self, name: str, content: rq.ListValues) -> dict[str, Any]:
        rq.ListValues.model_validate({"values": content.values})
        if not _LIST_NAME.fullmatch(name):
            raise InvalidRequest("list names are letters, digits, '.', '_' and '-' (max 64)")
        before = await self.store.get_list(name)
        values = sorted(set(content.values))
        await self.store.put_list(name, values)
        change = {
            "added": sorted(set(values) - before),
            "removed": sorted(before - set(values)),
            "size": len(values),
        }
        await self.record_audit("list.put", name, {"size": len(before)}, change)
        return {"name": name, "values": values}

    async def compromised_cards(
        self, pans: Sequence[str], action: str, list_name: str = "compromised_cards"
    ) -> dict[str, Any]:
        """A network's compromise alert (PANs exposed at a breached merchant or processor):
        the issuer's live cards among them are put on the rules list ``list_name``
        (``watch``: rules such as ``card.id in list("compromised_cards")`` hold them to
        stricter checks), suspended (``suspend``, reason ``compromised``: 62 until resumed
        or replaced) or reissued under new PANs (``reissue``: the new cards wait at created
        for the bureau and a PIN; each old one works until its successor is activated). PANs
        of other issuers, unknown or no longer live, are counted and left.
        The PANs are read, never kept or shown: cards come back masked. Audited."""
        if action not in ("watch", "suspend", "reissue"):
            raise InvalidRequest("action is watch, suspend or reissue")
        found: dict[str, Card] = {}
        counts = {"pans": 0, "not_ours": 0, "not_live": 0}
        for pan in pans:  # 12-19 digits each (rq.CompromiseAlert)
            counts["pans"] += 1
            card = await self.store.find_card(self.security.pan_index(pan))
            if card is None:
                counts["not_ours"] += 1
            elif card.state in lifecycle.FINAL_STATES or card.state is CardState.CREATED:
                counts["not_live"] += 1
            else:
                found[card.card_id] = card
        if action == "watch":
            listed = await self.store.get_list(list_name) if found else set()
            if found:
                values = rq.ListValues(values=sorted(listed | set(found)))
                await self.put_list(list_name, values)
            views = [card_view(card) for card in found.values()]
        elif action == "suspend":
            views = [
                await self.apply(card_id, "suspend", reason="compromised")
                if card.state is not CardState.SUSPENDED
                else card_view(card)
                for card_id, card in found.items()
            ]
        else:  # the new cards (a card already reissued or renewed is left to its successor)
            views = [
                await self.apply(card_id, "reissue", reason="compromised")
                for card_id, card in found.items()
                if not card.replaced_by
            ]
        result = {**counts, "action": action, "cards": views}
        await self.record_audit(
            "card.compromise_alert", list_name if action == "watch" else "cards", None,
            {**counts, "action": action, "cards": len(views)},
        )  # fmt: skip
        return result

    # --- personalisation export ------------------------------------------------------------

    async def export_personalisation(self, card_ids: Sequence[str], out: Path) -> int:
        """Write the card bureau's records (clear PAN, expiry, CVVs) to ``out``; return count.

        The only place card values leave the system (clear PANs also leave in the PIN mailer
        and exception files, each for its recipient). The file is created new
        (never overwritten) with owner-only permissions; each card exported is audited.
        """
        records = []
        for card_id in card_ids:
            card = await self._card(card_id)
            if card.state not in EXPORT_STATES:
                raise ConflictError(
                    f"card {card_id} is {card.state.value}; only created or issued cards "
                    "are sent to the bureau"
                )
            product = await self._product(card.product_id)
            records.append((card, product))
        with _new_private_file(out) as file:
            for card, product in records:
                file.write(json.dumps(await self._bureau_record(card, product)) + "\n")
        for card, _ in records:
            await self.record_audit(
                "card.export_personalisation",
                card.card_id,
                None,
                {"file": str(Path(out).resolve()), "pan": card.masked_pan},
            )
        return len(records)

    async def dormant_cards(self, unused_since: float, *, suspend: bool = False) -> dict[str, Any]:
        """Active cards not used since ``unused_since`` (no journal entry after it; a card
        never used counts from its activation): a card nobody uses is a card nobody watches,
        and issuers suspend them (``suspend``: each with reason ``dormant``, audited) until the
        cardholder asks. Lists them with when each was last used (null: never)."""
        dormant: list[dict[str, Any]] = []
        offset = 0
        while page := await self.store.list_cards("", CardState.ACTIVE.value, 1000, offset):
            offset += len(page)
            for card in page:
                used = await self.store.last_used(card)
                since = used if used is not None else (card.activated_at or card.created_at)
                if since < unused_since:
                    dormant.append({**card_view(card), "last_used": used})
        if suspend:
            for view in dormant:
                view.update(await self.apply(view["card_id"], "suspend", reason="dormant"))
        since_text = totals_module.iso_time(unused_since)
        return {"unused_since": since_text, "suspended": suspend, "cards": dormant}

    async def export_exception_file(self, out: Path) -> int:
        """The networks' exception file (``EXCEPTION_CODES``): every PAN whose current card is
        lost, stolen, suspended, closed or damaged, with the answer the host gives it, for the
        network to give while it answers for the issuer (stand-in, when the host cannot be
        reached).
        A full file each time: a card resumed since the last one is simply not in it. The
        PANs are in clear (the network matches on them): the file is new, owner-only, and its
        writing audited. Returns how many PANs it lists."""
        records = []
        for state, code in EXCEPTION_CODES.items():
            offset = 0
            while page := await self.store.list_cards("", state.value, 1000, offset):
                offset += len(page)
                for card in page:
                    current = await self.store.find_card(card.pan_index)
                    if current is None or current.card_id != card.card_id:
                        continue  # a newer card carries the PAN now: it decides
                    records.append((card, code))
        with _new_private_file(out) as file:
            for card, code in records:
                pan = await self._clear_pan(card.card_id)
                record = {"pan": pan, "action_code": code, "purge_date": card.expiry,
                          "card_id": card.card_id, "state": card.state.value}  # fmt: skip
                file.write(json.dumps(record) + "\n")
                del pan
        await self.record_audit(
            "card.exception_file", "cards", None,
            {"file": str(Path(out).resolve()), "listed": len(records)},
        )  # fmt: skip
        return len(records)

    async def export_account_updates(
        self, out: Path, *, day: str = "", since: float = 0.0, until: float = 0.0
    ) -> dict[str, Any]:
        """The networks' account updater file for a day or period (``admin.account_updater``):
        each card kept on file that changed, as the merchants' updater needs it: A (new number
        and expiry), E (new expiry), C (closed). PANs in clear (merchants match on them): the
        file is new, owner-only, and its writing audited. Returns the counts per code."""
        from authhost.admin.account_updater import UpdateCode, account_updates

        since, until = _period(day, since, until)
        updates = await account_updates(self._every_card(), self.store.get_card, since, until)
        counts = {code.value: 0 for code in UpdateCode}
        with _new_private_file(out) as file:
            for update in updates:
                record = {
                    "update": update.code.value,
                    "effective": totals_module.iso_time(update.effective),
                    "old_pan": await self._clear_pan(update.old.card_id),
                    "old_expiry": update.old.expiry,
                    "new_pan": ""
                    if update.new is None
                    else await self._clear_pan(update.new.card_id),
                    "new_expiry": "" if update.new is None else update.new.expiry,
                    "old_card_id": update.old.card_id,
                    "new_card_id": "" if update.new is None else update.new.card_id,
                }
                file.write(json.dumps(record) + "\n")
                counts[update.code.value] += 1
        window = {"since": totals_module.iso_time(since), "until": totals_module.iso_time(until)}
        summary = {"file": str(Path(out).resolve()), **window, "updates": counts}
        await self.record_audit("card.account_updates", "cards", None, summary)
        return summary

    async def reseal_pans(self) -> dict[str, Any]:
        """Every stored PAN sealed under an older PAN data key sealed again under the newest
        (after ``authhost keys rotate-pan-key``), so that the old version can be retired at
        the end of its cryptoperiod. Each card is changed only if its ciphertext is still the
        one read (compare-and-set): a card replaced meanwhile is counted, and a second run
        finishes it. Audited with the counts, never a PAN."""
        current = self.security.pan_key_version()
        before: dict[int, int] = {}
        resealed = changed_meanwhile = 0
        async for card in self._every_card():
            blob = await self.store.pan_ciphertext(card.card_id)
            version = self.security.pan_blob_version(blob)
            before[version] = before.get(version, 0) + 1
            new = self.security.reseal_pan(blob, card.card_id)
            if new is None:
                continue
            if await self.store.reseal_pan(card.card_id, blob, new):
                resealed += 1
            else:
                changed_meanwhile += 1
        summary = {
            "pan_key_version": current,
            "cards_by_version_before": {str(v): n for v, n in sorted(before.items())},
            "resealed": resealed,
            "changed_meanwhile": changed_meanwhile,
        }
        await self.record_audit("pan_key.reseal", "pan-data", None, summary)
        return summary

    async def retire_pan_key(self, version: int) -> dict[str, Any]:
        """Destroy PAN data key ``version`` once no stored PAN is sealed under it (409 naming
        how many still are: reseal them first); the newest version cannot be retired.
        Audited."""
        if version == self.security.pan_key_version():
            raise ConflictError(
                f"PAN data key version {version} is the newest: rotate the key "
                "(authhost keys rotate-pan-key) and reseal first"
            )
        still = 0
        async for card in self._every_card():
            blob = await self.store.pan_ciphertext(card.card_id)
            still += self.security.pan_blob_version(blob) == version
        if still:
            raise ConflictError(
                f"{still} stored PAN(s) are still sealed under PAN data key version {version}: "
                "run authhost keys reseal-pans first"
            )
        try:
            self.security.retire_pan_key(version)
        except SecurityError as exc:
            raise ConflictError(str(exc)) from None
        result = {"retired_version": version, "pan_key_version": self.security.pan_key_version()}
        await self.record_audit("pan_key.retire", "pan-data", None, result)
        return result

    async def _every_card(self) -> AsyncIterator[Card]:
        offset = 0
        while page := await self.store.list_cards("", "", 1000, offset):
            offset += len(page)
            for card in page:
                yield card

    async def _clear_pan(self, card_id: str) -> str:
        """The card's PAN, decrypted for one of the sanctioned ways out (never kept)."""
        return self.security.decrypt_pan(await self.store.pan_ciphertext(card_id), card_id)

    async def _bureau_record(self, card: Card, product: Product) -> dict[str, str]:
        from authhost.cards.track2 import build_track2

        pan = await self._clear_pan(card.card_id)
        values = self.security.card_values(pan, card.expiry, card.service_code, product.cvk_name)
        return {
            "card_id": card.card_id,
            "pan": pan,
            "expiry": card.expiry,
            "service_code": card.service_code,
            "sequence": card.sequence,
            "cardholder_name": card.cardholder_name,
            "address_ref": card.address_ref,
            "cvv": values.cvv,
            "cvv2": values.cvv2,
            "icvv": values.icvv,
            "track2": build_track2(pan, card.expiry, card.service_code, values.cvv),
            "chip_track2": build_track2(pan, card.expiry, card.service_code, values.icvv),
        }


_LIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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
    if (account.kind is CardKind.CREDIT) != (product.kind is CardKind.CREDIT):
        raise InvalidRequest(
            f"a {product.kind.value} product needs a "
            f"{'credit' if product.kind is CardKind.CREDIT else 'debit or prepaid'} account"
        )


def _period(day: str, since: float, until: float) -> tuple[float, float]:
    """[since, until) from a UTC ``day`` (YYYY-MM-DD) or from the two times themselves."""
    if day:
        if since or until:
            raise InvalidRequest("give a day, or since and until, not both")
        try:
            return totals_module.day_bounds(day)
        except ValueError as error:
            raise InvalidRequest(str(error)) from None
    if not until or until <= since:
        raise InvalidRequest("give a day (YYYY-MM-DD), or until after since")
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
