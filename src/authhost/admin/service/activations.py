"""Activations a crash cut short, finished.

Activating a renewal, replacement or reissue is several writes: the card itself, its audit
entry, the token service's PAN update for each wallet token it takes over, and the
retirement of the card it succeeds (which gives those tokens up). A process that dies
between them leaves the old card working beside the new one, tokens on both, the token
service not told and the activation perhaps not audited. The activation writes an intent
first (``lifecycle.HandOver``) and drops it after its last write; what is left of one is
finished here, by the server now and then or by ``authhost cards finish-activations``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from authhost.admin import totals as totals_module
from authhost.admin.errors import ServiceError
from authhost.admin.service.base import _with_reason
from authhost.admin.service.lifecycle import ACTIVATION_INTENT, CardLifecycle, HandOver
from authhost.admin.views import card_view
from authhost.cards import lifecycle
from authhost.cards.model import Card
from authhost.store.interface import Intent

# an intent younger than this may be an activation still running in another process
ACTIVATION_GRACE_S = 60.0


class InterruptedActivations(CardLifecycle):
    """Finishing the activations that did not finish."""

    async def finish_activations(self, older_than_s: float = ACTIVATION_GRACE_S) -> dict[str, Any]:
        """Finish every activation begun more than ``older_than_s`` ago and not finished:
        audit it if its entry is missing, send the PAN updates not sent, retire its
        predecessors; an intent whose card was never activated (the activation was refused)
        is dropped. Each finished one is audited (``card.activation_finished``)."""
        finished: list[dict[str, Any]] = []
        failed: list[dict[str, str]] = []
        dropped = 0
        for intent in await self.store.intents(ACTIVATION_INTENT, time.time() - older_than_s):
            card = await self.store.get_card(intent.key)
            if card is None or not card.replaces or not lifecycle.has_been_activated(card):
                await self.store.drop_intent(ACTIVATION_INTENT, intent.key, intent.ts)
                dropped += 1
                continue
            try:
                finished.append(await self._finish_activation(card, intent))
            except ServiceError as error:  # a predecessor that keeps changing: next time
                failed.append({"card_id": card.card_id, "error": error.message})
                continue
            await self.store.drop_intent(ACTIVATION_INTENT, intent.key, intent.ts)
        return {"finished": finished, "failed": failed, "dropped": dropped}

    async def _finish_activation(self, card: Card, intent: Intent) -> dict[str, Any]:
        plan = HandOver.model_validate_json(intent.data)
        audited, announced = await self._done_since(card.card_id, plan.begun)
        if not audited:
            after = {**_with_reason(card_view(card), plan.reason), **plan.details}
            await self.record_audit("card.activate", card.card_id, plan.before, after)
        tokens = {token.token_ref: token for token in card.tokens}
        sent = []
        for ref, from_id in plan.moved:
            old = await self.store.get_card(from_id)
            if ref in announced or ref not in tokens or old is None:
                continue  # sent, or the token deleted since (its own event said so)
            await self._announce_pan_updates(card, [(tokens[ref], old)])
            sent.append(ref)
        await self._retire_predecessor(card, frozenset(plan.refs))
        done = {
            "card_id": card.card_id,
            "begun_at": totals_module.iso_time(intent.ts),
            "activation_audited": not audited,
            "pan_updates_sent": len(sent),
        }
        await self.record_audit("card.activation_finished", card.card_id, None, done)
        return done

    async def _done_since(self, card_id: str, since: float) -> tuple[bool, set[str]]:
        """Whether the card's activation was audited since ``since``, and the token
        references whose PAN update was."""
        audited, announced = False, set()
        after_id = 0
        while page := await self.store.audit(subject=card_id, limit=1000, after_id=after_id):
            after_id = max(entry.audit_id for entry in page)
            for entry in page:
                if entry.ts < since:
                    continue
                if entry.action == "card.activate":
                    audited = True
                elif entry.action == "card.token_pan_update":
                    announced.update(t["token_ref"] for t in json.loads(entry.after)["tokens"])
        return audited, announced
