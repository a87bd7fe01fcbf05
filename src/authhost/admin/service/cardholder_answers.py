"""The cardholder's answer to an alert: "it was me" or "it was not me".

The notification service asks the cardholder about a payment (a suspected fraud declined, a
large or foreign one: ``journal alerts``) and posts their answer here. Either way the payment
gets the cardholder's verdict as its fraud report, the label training and backtests read.
"It was me" also gives the card a pass (``cards.cardholder_pass``) so that the retry is not
declined as suspected fraud again; "it was not me" suspends the card (its details are out),
ends any pass, cancels a renewal waiting with the same number, and with ``reissue`` orders a
card under a new PAN.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError, InvalidRequest
from authhost.admin.service.lifecycle import CardLifecycle
from authhost.admin.views import card_view
from authhost.cards import lifecycle
from authhost.cards.cardholder_pass import CardholderPass
from authhost.cards.model import Card, CardState
from authhost.security.masking import mask_pans_in_note
from authhost.store.records import JournalEntry


class CardholderAnswers(CardLifecycle):
    """Alerts answered by the cardholder."""

    async def answer_alert(
        self, card_id: str, journal_id: int, spec: rq.CardholderAnswer
    ) -> dict[str, Any]:
        """Record the cardholder's answer about one of the card's journalled payments: the
        payment's fraud report, and a pass to retry (it was them) or the card suspended (it
        was not). Audited."""
        rq.CardholderAnswer.model_validate(spec.model_dump())
        card = await self._card(card_id)
        entry = await self._journal_entry(card_id, journal_id)
        # the card's details are out: a renewal waiting with its number is withdrawn below
        exposed = not spec.was_cardholder and await self._renewal_exposed(card)
        if spec.was_cardholder:
            after = replace(card, cardholder_pass=self._pass_for(card, entry, spec))
        else:
            if spec.reissue:  # refused before anything is written: no half-answered alert
                try:
                    lifecycle.check_successor_allowed(
                        replace(card, replaced_by=None) if exposed else card
                    )
                except lifecycle.IllegalTransition as exc:
                    raise ConflictError(str(exc)) from None
                await self._product(card.product_id)
            after = replace(card, cardholder_pass=None)
            if card.state is CardState.ACTIVE:
                after = lifecycle.transition(after, lifecycle.Event.SUSPEND, now=self.clock())
        answer = {"journal_id": journal_id, "was_cardholder": spec.was_cardholder}
        if after != card:
            view = await self._update(
                card, after, "card.cardholder_answer", mask_pans_in_note(spec.note), answer
            )
        else:
            view = card_view(card)
        report = await self._with_report_id(
            await self._record_fraud_report(
                card_id, journal_id, not spec.was_cardholder, "cardholder", spec.note
            )
        )
        if exposed:
            await self._withdraw_renewal(await self._card(card_id), "answered 'not me'")
        successor = None
        if spec.reissue:
            successor = await self._successor(
                await self._card(card_id), "reissue", "cardholder: not me"
            )
        return {**answer, "fraud_report": report, "card": view, "successor": successor}

    def _pass_for(
        self, card: Card, entry: JournalEntry, spec: rq.CardholderAnswer
    ) -> CardholderPass | None:
        """The pass an "it was me" gives: the payment's merchant (or any), up to its amount
        (or the one asked for), for ``pass_minutes``; none for a card that cannot pay."""
        if spec.pass_minutes == 0 or card.state in lifecycle.FINAL_STATES:
            return None
        if not spec.any_merchant and not entry.merchant_id:
            raise InvalidRequest(
                f"journal entry {entry.journal_id} names no merchant (field 42): answer with "
                "any_merchant, or with pass_minutes 0 for no pass"
            )
        return CardholderPass(
            journal_id=entry.journal_id,
            merchant_id="" if spec.any_merchant else entry.merchant_id,
            max_amount_minor=spec.max_amount_minor or entry.amount_minor,
            until=self.clock() + spec.pass_minutes * 60,
        )
