"""A card's life after issuance.

The lifecycle actions and the cards that succeed a replaced, renewed or reissued one, the
monthly renewal run, and the cards expiring, dormant or exposed in a breach.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from authhost.admin import requests as rq
from authhost.admin import totals as totals_module
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    ServiceError,
)
from authhost.admin.service.base import (
    LIFECYCLE_ACTIONS,
    LIST_TRIES,
    RENEWAL_LISTED,
    RETIRE_TRIES,
    ListMoved,
    ServiceBase,
    _with_reason,
)
from authhost.admin.views import (
    card_view,
    token_view,
)
from authhost.cards import lifecycle, production
from authhost.cards.model import (
    Card,
    CardState,
)
from authhost.cards.tokens import HandedOver, PaymentToken
from authhost.store.interface import (
    Conflict,
)
from authhost.store.records import AuditEntry

# the actions that make a card: with an Idempotency-Key, once
SUCCESSOR_ACTIONS = ("replace", "renew", "reissue")
# a PIN given to a card itself (not carried from the card before it)
OWN_PIN_ACTIONS = frozenset({"pin.set", "pin.reset", "pin.generate"})


# the intent (store.put_intent) an activation that hands over from a predecessor writes first
ACTIVATION_INTENT = "activation"


class HandOver(BaseModel):
    """What an activation that hands over from its predecessors is about to do, kept until
    it is done: its own audit entry (``before``, ``reason``, ``details``), the token
    service's PAN update for each token ``moved`` (its reference, and the card it came from)
    and the predecessors' retirement without the tokens (``refs``) they give up. Masked
    views and token references only."""

    before: dict[str, Any]
    reason: str = ""
    details: dict[str, Any] = {}
    moved: list[tuple[str, str]] = []
    refs: list[str] = []

    @classmethod
    def of(
        cls,
        card: Card,
        reason: str,
        details: dict[str, Any],
        handed: tuple[list[Card], HandedOver] | None,
    ) -> HandOver:
        if handed is None:
            return cls(before=card_view(card), reason=reason, details=details)
        chain, tokens = handed
        return cls(
            before=card_view(card),
            reason=reason,
            details=details,
            moved=[(token.token_ref, chain[index].card_id) for token, index in tokens.moved],
            refs=sorted(tokens.refs),
        )


class _SuccessorRequest(BaseModel):
    """What an idempotency key remembers of a replace, renew or reissue."""

    card_id: str
    action: str
    reason: str


class CardLifecycle(ServiceBase):
    """A card's life after issuance."""

    async def apply(
        self, card_id: str, action: str, *, reason: str = "", idempotency_key: str = ""
    ) -> dict[str, Any]:
        """Run one lifecycle action; replace/renew/reissue answer with the new card, and with
        an idempotency key make it once (a client retrying a "replace" that timed out gets
        the card the first one made, not a 409)."""
        if action not in LIFECYCLE_ACTIONS:
            raise InvalidRequest(
                f"unknown action {action!r}; known: {', '.join(LIFECYCLE_ACTIONS)}"
            )
        if action in SUCCESSOR_ACTIONS:
            request = _SuccessorRequest(card_id=card_id, action=action, reason=reason)

            async def create() -> dict[str, Any]:
                return await self._successor(await self._card(card_id), action, reason)

            return await self._once("card.successor", idempotency_key, request, create)
        if idempotency_key:
            raise InvalidRequest(f"'{action}' takes no Idempotency-Key (it creates nothing)")
        card = await self._card(card_id)
        held = ""
        if card.state is CardState.SUSPENDED and action in lifecycle.KEEPS_SUSPENSION_EVENTS:
            held = await self._suspension_reason(card.card_id)
        try:
            after = lifecycle.transition(card, action, now=self.clock(), suspension_reason=held)
        except lifecycle.IllegalTransition as exc:
            raise ConflictError(str(exc)) from None
        details: dict[str, Any] = {}
        handed: tuple[list[Card], HandedOver] | None = None
        hands_over = action == lifecycle.Event.ACTIVATE and bool(card.replaces)
        if hands_over:
            after, details = await self._predecessor_pin(after)
            after, held = await self._predecessor_suspension(after)
            details.update(held)
            after, handed = await self._predecessor_tokens(after, details)
            # the activation, its wallet events and the predecessors' retirement are several
            # writes: a crash between them is finished later (finish_activations)
            intent = HandOver.of(card, reason, details, handed)
            await self.store.put_intent(ACTIVATION_INTENT, card.card_id, intent.model_dump_json())
        # the card in use: its tokens are the wallet's, their events in the card's own write
        wallet = (
            self._token_states(card, after, action) if lifecycle.has_been_activated(card) else []
        )
        if handed is not None:  # the tokens it takes over: their PAN updates in its write
            chain, moved = handed
            wallet += self._pan_updates(
                after, [(token, chain[index]) for token, index in moved.moved]
            )
        action_name = f"card.{action.replace('-', '_')}"
        view = await self._update(card, after, action_name, reason, details, wallet)
        if hands_over:
            await self._retire_predecessor(card, handed[1].refs if handed else frozenset())
            await self.store.drop_intent(ACTIVATION_INTENT, card.card_id)
        elif card.replaces and after.state in lifecycle.WITHDRAWN_STATES:
            await self._unlink_predecessor(after)
        if after.replaced_by and after.state in lifecycle.EXPOSES_NUMBER:
            await self._withdraw_renewal(after, f"reported {after.state.value}")
        elif after.replaced_by and action == lifecycle.Event.CANCEL:
            # a cancelled card's number is closed: its renewal must not bring it back with a
            # new expiry (a replacement under a new PAN is a card of its own, and stays)
            await self._withdraw_renewal(after, "cancelled", "its number is closed")
        return view

    async def _predecessor_pin(self, successor: Card) -> tuple[Card, dict[str, Any]]:
        """A same-PAN successor being activated with the PIN its predecessor has now: a PIN
        changed at an ATM with the old card after the renewal is the cardholder's PIN (the
        bank's changes were carried when made). A PIN set on the successor itself stays."""
        old = await self.store.get_card(successor.replaces or "")
        if (
            old is None
            or old.pan_index != successor.pan_index
            or old.pin_reference is None
            or old.pin_reference == successor.pin_reference
            or await self._pin_set_on(successor.card_id)
        ):
            return successor, {}
        return replace(successor, pin_reference=old.pin_reference), {"pin_from": old.card_id}

    async def _predecessor_suspension(self, successor: Card) -> tuple[Card, dict[str, Any]]:
        """A same-PAN successor activated while the card in use (the first activated one up
        its chain: the one its activation retires) is suspended: activated suspended, so
        that the cardholder's activation never lifts the bank's block."""
        seen = {successor.card_id}
        old = await self.store.get_card(successor.replaces or "")
        while old is not None and not lifecycle.has_been_activated(old):
            if not old.replaces or old.replaces in seen:
                return successor, {}
            seen.add(old.card_id)
            old = await self.store.get_card(old.replaces)
        if old is None or not lifecycle.keeps_suspension(old, successor):
            return successor, {}
        details: dict[str, Any] = {"suspended_from": old.card_id}
        if old.suspension_at_report is not None:  # suspended, then reported lost or stolen
            details["suspended_when_reported"] = old.state.value
            details["suspension_reason"] = old.suspension_at_report
        else:
            details["suspension_reason"] = await self._suspension_reason(old.card_id)
        return replace(successor, state=CardState.SUSPENDED), details

    async def _suspension_reason(self, card_id: str) -> str:
        """The reason of the card's suspension in force (its newest audited change into
        ``suspended``: a suspend, "it was not me", a compromise alert, or an activation that
        kept its predecessor's), "" when it gave none: what a successor activated suspended
        says, and what a card reported lost or stolen keeps for its replacement."""
        before_id = 0
        while page := await self.store.audit(
            subject=card_id, limit=100, newest_first=True, before_id=before_id
        ):
            for entry in page:
                before = json.loads(entry.before) if entry.before else {}
                after = json.loads(entry.after) if entry.after else {}
                suspended = CardState.SUSPENDED.value
                if after.get("state") == suspended and before.get("state") != suspended:
                    # an activation that kept the suspension names the original's reason
                    return str(after.get("suspension_reason", after.get("reason", "")))
            before_id = min(e.audit_id for e in page)
        return ""

    async def _handing_over(self, successor: Card) -> list[Card]:
        """The cards ``successor``'s activation hands over from, nearest first: the card it
        succeeds and, while that one was never activated, the one before it (the chain
        ``_retire_predecessor`` retires)."""
        chain: list[Card] = []
        seen = {successor.card_id}
        card_id = successor.replaces
        while card_id and card_id not in seen:
            old = await self.store.get_card(card_id)
            if old is None:
                break
            chain.append(old)
            seen.add(card_id)
            if lifecycle.has_been_activated(old):
                break
            card_id = old.replaces
        return chain

    async def _predecessor_tokens(
        self, successor: Card, details: dict[str, Any]
    ) -> tuple[Card, tuple[list[Card], HandedOver] | None]:
        """A successor under a new PAN being activated with the live wallet and card-on-file
        tokens of the cards it takes over from (``lifecycle.take_tokens``): the wallet pays
        on with the new card. ``details`` (of the activation's audit entry) gets how many
        and from which cards; None when no card gives up a token."""
        chain = await self._handing_over(successor)
        after, handed = lifecycle.take_tokens(successor, chain)
        if not handed.refs:
            return successor, None
        if handed.moved:
            details["tokens_from"] = sorted({chain[i].card_id for _, i in handed.moved})
            details["tokens_moved"] = len(handed.moved)
        return after, (chain, handed)

    async def _announce_pan_updates(
        self, successor: Card, moved: Sequence[tuple[PaymentToken, Card]]
    ) -> None:
        """The PAN updates (``_pan_updates``) an activation cut short did not write, appended
        by the finisher after the card's write (``finish_activations``)."""
        for entry in self._pan_updates(successor, moved):
            await self.store.append_audit(entry, self.security.audit_seal)

    def _pan_updates(
        self, successor: Card, moved: Sequence[tuple[PaymentToken, Card]]
    ) -> list[AuditEntry]:
        """One audit entry per token moved to ``successor`` (with the card it came from): the
        token service's PAN update (a wallet event, ``token_pan_updated``), naming both cards
        by id and masked PAN and the token by reference and last four digits; never a
        number. An activation writes them with the card, after its own entry."""
        return [
            self._audit_entry(
                "card.token_pan_update",
                successor.card_id,
                {"card_id": old.card_id, "pan": old.masked_pan},
                {
                    "card_id": successor.card_id,
                    "pan": successor.masked_pan,
                    "expiry": successor.expiry,
                    "from_card_id": old.card_id,
                    "from_pan": old.masked_pan,
                    "tokens": [token_view(token)],
                },
            )
            for token, old in moved
        ]

    def _token_states(self, before: Card, after: Card, action: str) -> list[AuditEntry]:
        """One audit entry per token the lifecycle action changed (suspended for a stolen
        card, deleted for a closed one...), as if changed one by one: a wallet event
        (``card.token_suspended``...) for the token service, which would otherwise show a
        card the issuer declines as usable. Not for a successor never activated: its tokens
        are copies of the card in use's, which stay as they are."""
        had = {t.token_ref: t for t in before.tokens}
        entries = []
        for token in after.tokens:
            old = had.get(token.token_ref)
            if old is None or old.state is token.state:
                continue
            entry = self._audit_entry(
                f"card.token_{token.state.value}",
                after.card_id,
                {"pan": before.masked_pan, "tokens": [token_view(old)]},
                {
                    "pan": after.masked_pan,
                    "tokens": [token_view(token)],
                    "reason": f"card {action}",
                },
            )
            entries.append(entry)
        return entries

    async def _pin_set_on(self, card_id: str) -> bool:
        """Whether a PIN was set, reset or generated on this card itself (audit log)."""
        after_id = 0
        while page := await self.store.audit(subject=card_id, limit=1000, after_id=after_id):
            if any(e.action in OWN_PIN_ACTIONS for e in page):
                return True
            after_id = max(e.audit_id for e in page)
        return False

    async def _withdraw_renewal(
        self, old: Card, why: str, because: str = "its number is exposed"
    ) -> None:
        """Cancel the renewal (the same PAN) a card whose number was exposed (lost, stolen,
        breached: ``why``) still waits to hand over to: the finder or thief knows its number,
        so it must never be activated; the card is replaced or reissued under a new PAN
        instead (the renewal is unlinked, so that is allowed). A cancelled card's renewal
        goes too (``because``: its number is closed)."""
        for _ in range(RETIRE_TRIES):  # re-read a renewal changed meanwhile (shipped...)
            successor = await self.store.get_card(old.replaced_by or "")
            if successor is None or not lifecycle.carries_its_number(old, successor):
                return
            closed = lifecycle.transition(successor, lifecycle.Event.CANCEL, now=self.clock())
            try:
                await self._update(
                    successor, closed, "card.cancel",
                    f"predecessor {old.card_id} {why}: {because}",
                )  # fmt: skip
            except ConflictError:
                continue
            await self._unlink_predecessor(closed)
            # a renewal of that renewal (shipped, then renewed again) has the number too
            await self._withdraw_renewal(closed, why, because)
            return
        raise ConflictError(
            f"card {old.card_id} is {old.state.value}, but its renewal {old.replaced_by} kept "
            "changing and is still pending with the same number: cancel it"
        )

    async def _unlink_predecessor(self, successor: Card) -> None:
        """A successor cancelled or expired before its activation was never handed over to:
        its predecessor stays the card in use and may be renewed or reissued again (it would
        be refused as "already replaced" otherwise)."""
        for _ in range(RETIRE_TRIES):
            old = await self.store.get_card(successor.replaces or "")
            unlinked = None if old is None else lifecycle.withdrawn_successor(old, successor)
            if old is None or unlinked is None:
                return
            try:
                await self._update(
                    old, unlinked, "card.successor_withdrawn",
                    f"successor {successor.card_id} {successor.state.value} before activation",
                )  # fmt: skip
                return
            except ConflictError:
                continue
        raise ConflictError(
            f"card {successor.card_id} is {successor.state.value}, but its predecessor "
            f"{successor.replaces} kept changing and still names it as its successor: retry"
        )

    async def _retire_predecessor(
        self, successor: Card, token_refs: frozenset[str] = frozenset()
    ) -> None:
        """A renewed or reissued card's predecessor stops once its successor is activated:
        until then it kept working, so the cardholder was never without a card (a lost,
        stolen or damaged predecessor is final already and stays as it is). A predecessor
        that was never activated itself (a renewal lost in the post, replaced by this card)
        never took over from the card before it, which the cardholder kept using: that one
        stops now too, and so on up the chain. Each gives up the live tokens (``token_refs``)
        the successor under a new PAN took over: a lost or stolen one too."""
        seen = {successor.card_id}
        activated = successor
        while successor.replaces and successor.replaces not in seen:
            old = await self._retire_one(successor, activated, token_refs)
            if old is None or lifecycle.has_been_activated(old):
                return
            seen.add(old.card_id)
            successor = old

    async def _retire_one(
        self, successor: Card, activated: Card, token_refs: frozenset[str]
    ) -> Card | None:
        """Retire ``successor``'s predecessor (re-reading it on a concurrent change), without
        the live tokens ``activated`` took over; the predecessor as it was read, or None when
        it is not stored."""
        for _ in range(RETIRE_TRIES):  # the successor is active already: retire, re-reading
            old = await self.store.get_card(successor.replaces or "")  # on a concurrent change
            if old is None:
                return None
            retired = lifecycle.retire(old)
            if token_refs and lifecycle.takes_tokens_from(activated, old):
                retired = lifecycle.without_tokens(retired, token_refs)
            if retired is old:
                return old
            # a lost or stolen card keeps its state: only its tokens went
            action = "card.retire" if retired.state is not old.state else "card.tokens_moved"
            try:
                await self._update(old, retired, action, f"successor {successor.card_id}")
                return old
            except ConflictError:
                continue
        raise ConflictError(
            f"card {successor.card_id} is active, but its predecessor {successor.replaces} kept "
            "changing and is still live: cancel it if it should stop working"
        )

    async def _successor(self, card: Card, action: str, reason: str) -> dict[str, Any]:
        product = await self._product(card.product_id)
        await self._check_account_open(card.account_id, f"{action.rstrip('e')}ed")
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

        def replacing(successor: Card) -> AuditEntry:  # the old card as replace_card stores it
            after = {
                "old": card_view(replace(old, version=old.version + 1)),
                "new": card_view(successor),
            }
            before = card_view(card)
            return self._audit_entry(
                f"card.{action}", card.card_id, before, _with_reason(after, reason)
            )

        def issued(successor: Card) -> AuditEntry:
            # the new card's history starts with its issue, naming the card it succeeds (by id)
            view = _with_reason({**card_view(successor), "issued_by": action}, reason)
            return self._audit_entry("card.issue", successor.card_id, None, view)

        if new.pan_index:  # same PAN (renewal, damaged card): re-encrypt it for the new card
            pan = await self._clear_pan(card.card_id)
            ciphertext = self.security.encrypt_pan(pan, new.card_id)
            del pan
            entries = (replacing(new), issued(new))  # written with the cards: all or none
            try:
                await self.store.replace_card(
                    old, new, ciphertext, entries, self.security.audit_seal
                )
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
                issued,
                replaced=old,
                replacing=replacing,
            )
        return card_view(new)

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

    async def compromised_cards(
        self,
        pans: Sequence[str],
        action: str,
        list_name: str = "compromised_cards",
        card_ids: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A network's compromise alert (PANs exposed at a breached merchant or processor):
        the issuer's live cards among them are put on the rules list ``list_name``
        (``watch``: rules such as ``card.id in list("compromised_cards")`` hold them to
        stricter checks), suspended (``suspend``, reason ``compromised``: 62 until resumed
        or replaced) or reissued under new PANs (``reissue``: the new cards wait at created
        for the bureau and a PIN; each old one works until its successor is activated). PANs
        of other issuers, unknown or no longer live, are counted and left. ``card_ids`` names
        cards by id instead (what a common point of purchase report lists): unknown ids are
        counted too.
        The PANs are read, never kept or shown: cards come back masked. Audited."""
        if action not in ("watch", "suspend", "reissue"):
            raise InvalidRequest("action is watch, suspend or reissue")
        found: dict[str, Card] = {}
        counts = {"pans": 0, "not_ours": 0, "card_ids": 0, "unknown_ids": 0, "not_live": 0}
        named: list[tuple[str, Card | None]] = []
        for pan in pans:  # 12-19 digits each (rq.CompromiseAlert)
            counts["pans"] += 1
            named.append(("not_ours", await self.store.find_card(self.security.pan_index(pan))))
        for card_id in card_ids:
            counts["card_ids"] += 1
            named.append(("unknown_ids", await self.store.get_card(card_id)))
        for missing, card in named:
            if card is None:
                counts[missing] += 1
            elif card.state in lifecycle.FINAL_STATES or card.state is CardState.CREATED:
                counts["not_live"] += 1
            else:
                found[card.card_id] = card
        if action == "watch":
            if found:
                await self._watch(list_name, frozenset(found))
            views = [card_view(card) for card in found.values()]
            counts["not_allowed"] = 0
        else:
            views, counts["not_allowed"] = await self._act_on_compromised(found, action)
        result = {**counts, "action": action, "cards": views}
        await self.record_audit(
            "card.compromise_alert", list_name if action == "watch" else "cards", None,
            {**counts, "action": action, "cards": len(views)},
        )  # fmt: skip
        return result

    async def _watch(self, list_name: str, card_ids: frozenset[str]) -> None:
        """The cards added to the list, written only over the list as read (another write
        between, such as another alert's, is read again rather than written over)."""
        for _ in range(LIST_TRIES):
            listed = await self.store.get_list(list_name)
            values = rq.ListValues(values=sorted(listed | card_ids))
            try:
                await self.put_list(list_name, values, made_from=listed)
                return
            except ListMoved:
                continue
        raise ConflictError(
            f"list {list_name} changed at each of {LIST_TRIES} tries to add the cards to it: "
            "nothing was written; send the alert again"
        )

    async def _act_on_compromised(
        self, found: dict[str, Card], action: str
    ) -> tuple[list[dict[str, Any]], int]:
        """Suspend or reissue the alert's live cards: the views of the cards acted on (or
        suspended already) and how many the action was not allowed on (an issued card is not
        suspended: it is not in use yet; a card reissued already is left to its successor,
        and so is one renewed and activated). A renewal still waiting for its activation has
        the exposed number: it is cancelled (its activation would lift a suspension too) and
        the card suspended or reissued. Every card is checked before any changes, and a card
        changed meanwhile is counted rather than failing the alert half-way."""
        views: list[dict[str, Any]] = []
        due: list[str] = []
        for card_id, card in found.items():
            if action == "suspend" and card.state is CardState.SUSPENDED:
                await self._withdraw_renewal(card, "compromised")
                views.append(card_view(card))
            elif _compromise_applies(card, action) or (
                action == "reissue" and await self._renewal_exposed(card)
            ):
                due.append(card_id)
        for card_id in due:
            try:
                await self._withdraw_renewal(await self._card(card_id), "compromised")
                views.append(await self.apply(card_id, action, reason="compromised"))
            except ConflictError:
                continue
        return views, len(found) - len(views)

    async def _renewal_exposed(self, card: Card) -> bool:
        """Whether ``card`` waits to hand over to a renewal with its (exposed) number."""
        successor = await self.store.get_card(card.replaced_by) if card.replaced_by else None
        return successor is not None and lifecycle.carries_its_number(card, successor)

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


def _compromise_applies(card: Card, action: str) -> bool:
    """Whether a compromise alert's ``action`` can be taken on this live card now."""
    if action == "suspend":
        return card.state is CardState.ACTIVE
    return not card.replaced_by  # reissue: a card with a successor is left to it
