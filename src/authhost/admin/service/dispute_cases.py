"""Cardholder disputes: opened on a charge, with or without a provisional credit, and resolved."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from authhost.admin import disputes
from authhost.admin import requests as rq
from authhost.admin.errors import (
    ConflictError,
    InvalidRequest,
    NotFoundError,
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
from authhost.store.interface import (
    Conflict,
)
from authhost.store.records import (
    DISPUTE_STATES,
    Dispute,
    FraudReport,
)


class DisputeCases(ServiceBase):
    """Cardholder disputes."""

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
