"""Issuing cards, and what an operator sets on them.

Personalisation, limits, controls, chip scripts, stop payments and travel notices: each a
change of the card written over the version it was read at, and audited.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from typing import Any

from authhost.admin import requests as rq
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
)
from authhost.admin.service.base import (
    NOT_READ,
    ServiceBase,
    _check_account_fits,
)
from authhost.admin.views import (
    card_view,
)
from authhost.cards import production
from authhost.cards.avs import address_refs
from authhost.cards.model import (
    Card,
    CardControls,
    CardState,
    Limits,
    StopPayment,
)
from authhost.cards.travel import TravelNotice
from authhost.security.masking import mask_pan
from authhost.store.records import AuditEntry

# a cardholder name is embossed in at most 26 characters
NAME_SEARCH_MAX = 26
# what a cardholder name is embossed in (requests.CardholderName): ASCII only
_EMBOSSED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .'/-")


def embossed(name: str) -> str:
    """A name searched for as the card carries it: accents dropped (an agent told "José
    Núñez" types it so; the card says JOSE NUNEZ). A letter with no ASCII form (ß, Ł, 李) is
    refused: no card's name holds it, and an empty answer would say there is no such card."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch)
    )
    odd = sorted({ch for ch in plain if ch not in _EMBOSSED})
    if odd:
        raise InvalidRequest(
            f"name: {' '.join(odd)} is not on any card: names are embossed in A-Z, 0-9, "
            "space and . ' / - (accents dropped); type the letters as the card shows them"
        )
    return plain


class CardData(ServiceBase):
    """Issuing cards and what an operator sets on them."""

    async def issue_card(self, spec: rq.IssueCard, *, idempotency_key: str = "") -> dict[str, Any]:
        """Produce a card (state created) with a fresh random PAN from the product's BIN."""

        async def create() -> dict[str, Any]:
            product = await self._product(spec.product_id)
            account = await self._account(spec.account_id)
            _check_account_fits(product, account)
            await self._check_account_open(account.account_id, "issued")
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

            def issued(card: Card) -> AuditEntry:  # written with the card: both or neither
                return self._audit_entry("card.issue", card.card_id, None, card_view(card))

            return card_view(await self._store_with_new_pan(build, product, issued))

        return await self._once("card.issue", idempotency_key, spec, create)

    async def get_card(self, card_id: str) -> dict[str, Any]:
        return card_view(await self._card(card_id))

    async def show_card(self, card_id: str) -> dict[str, Any]:
        """The card's view and ``last_used``: when its newest request was journalled (null:
        never, or pruned), the first thing a support desk asks."""
        card = await self._card(card_id)
        return {**card_view(card), "last_used": await self.store.last_used(card)}

    async def find_card(self, pan: str) -> dict[str, Any]:
        """The card in use with this PAN. Audited, found or not (PCI DSS 10.2.1.1: each
        access by a person to cardholder data): someone trying numbers to learn which are
        live cards shows in the log (the PAN masked)."""
        card = await self.store.find_card(self.security.pan_index(pan))
        searched = {"pan": mask_pan(pan), "found": card is not None}
        await self.record_audit("card.search", card.card_id if card else "", None, searched)
        if card is None:
            raise NotFoundError("no card with this PAN")
        return card_view(card)

    async def list_cards(
        self,
        *,
        account_id: str = "",
        state: str = "",
        limit: int = 100,
        offset: int = 0,
        last4: str = "",
        name: str = "",
    ) -> list[dict[str, Any]]:
        """Cards, masked. ``last4`` and ``name`` find a caller's card from what they can say
        on the phone (the last four digits printed on it, their name): no full PAN asked."""
        if state and state not in {s.value for s in CardState}:
            known = ", ".join(s.value for s in CardState)
            raise InvalidRequest(f"unknown card state {state!r}; known: {known}")
        if last4 and not (len(last4) == 4 and last4.isascii() and last4.isdigit()):
            raise InvalidRequest("last4 must be the card number's last 4 digits")
        if len(name) > NAME_SEARCH_MAX:
            raise InvalidRequest(f"name: at most {NAME_SEARCH_MAX} characters")
        cards = await self.store.list_cards(
            account_id, state, limit, offset, last4=last4, name=embossed(name.strip())
        )
        return [card_view(c) for c in cards]

    async def personalise(self, card_id: str, change: rq.Personalise) -> dict[str, Any]:
        card = await self._changeable_card(card_id)
        updates: dict[str, Any] = {}
        if change.cardholder_name is not None:
            updates["cardholder_name"] = change.cardholder_name
        if change.address_ref is not None:
            updates["address_ref"] = change.address_ref
        if change.billing_postcode is not None and change.billing_street is not None:
            updates.update(
                address_refs(
                    self.security.address_ref, change.billing_postcode, change.billing_street
                )
            )
        if change.account_id is not None and change.account_id != card.account_id:
            _check_account_fits(
                await self._product(card.product_id), await self._account(change.account_id)
            )
            await self._check_account_open(change.account_id, "moved")
            updates["account_id"] = change.account_id
        if not updates:
            raise InvalidRequest(
                "nothing to change: give cardholder_name, account_id, address_ref or the "
                "billing address"
            )
        return await self._update(card, replace(card, **updates), "card.personalise")

    async def set_card_limits(
        self, card_id: str, limits: rq.LimitsSpec, *, made_from: Any = NOT_READ
    ) -> dict[str, Any]:
        """Card-level limit overrides (each given value beats the product's); all empty
        removes the overrides. ``made_from``: the card's limits (their view) the change was
        made from, refused (``CardMoved``) when they changed since (``merged``)."""
        card = await self._changeable_card(card_id)
        self._unmoved(card, "limits", made_from)
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

    async def set_stop_payments(
        self, card_id: str, spec: rq.StopPayments, *, made_from: Any = NOT_READ
    ) -> dict[str, Any]:
        """Replace the card's stop payments: merchant-initiated charges from a stopped merchant
        are declined R1 (every merchant: R3) from the next request (``auth.steps.controls``).
        Audited."""
        card = await self._changeable_card(card_id)
        self._unmoved(card, "stop_payments", made_from)
        stops = tuple(
            dict.fromkeys(StopPayment(x.merchant_id, x.until) for x in spec.stops)
        )  # the same stop twice is one
        return await self._update(card, replace(card, stop_payments=stops), "card.stop_payments")

    async def set_travel_notices(
        self, card_id: str, spec: rq.TravelNotices, *, made_from: Any = NOT_READ
    ) -> dict[str, Any]:
        """Replace the card's travel notices (``cards.travel``): rules read whether one covers
        a request's country that day as card.travel_notice. Audited."""
        card = await self._changeable_card(card_id)
        self._unmoved(card, "travel_notices", made_from)
        notices = tuple(TravelNotice(frozenset(n.countries), n.start, n.end) for n in spec.notices)
        return await self._update(
            card, replace(card, travel_notices=notices), "card.travel_notices"
        )
