"""Work a crash cut short, finished.

Some operations are several writes that no store can make one: activating a card that
succeeds another (the card with its audit entry and the token service's PAN update for each
wallet token it takes over, one write but on a Redis Cluster; then the retirement of the card
it succeeds, which gives those tokens up), and
opening a dispute with a provisional credit (the credit posted through the pipeline, then the
dispute recorded). A process that dies between them, or a store that stops taking writes,
would leave the old card working beside the new one and the token service never told, or the
cardholder's money back with no dispute to say so. Each writes an intent first
(``store.put_intent``) and drops it after its last write; what is left of one is finished
here, by the server now and then or by ``authhost store finish``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from authhost.admin import totals as totals_module
from authhost.admin.errors import NotFoundError, ServiceError
from authhost.admin.service.base import _with_reason
from authhost.admin.service.dispute_cases import DISPUTE_OPEN_INTENT, DisputeCases
from authhost.admin.service.leases import HeldLease, LeaseLost, owner_name
from authhost.admin.service.lifecycle import ACTIVATION_INTENT, CardLifecycle, HandOver
from authhost.admin.views import card_view
from authhost.cards import lifecycle
from authhost.cards.model import Card
from authhost.store import codec
from authhost.store.interface import Conflict, Intent

# an intent younger than this may be work still running in another process
GRACE_S = 60.0
FINISH_LEASE = "store.finish"  # the store lease of the one process finishing at a time
FINISH_LEASE_TTL_S = 600.0  # a finisher that died blocks the next one this long at most
Keep = Callable[[], Awaitable[None]]  # called between pieces of work: the lease renewed


@dataclass
class FinishWatch:
    """The server's looks for work a crash cut short, for its metrics (``store.metrics``):
    work finished means a crash or an outage cut it short (worth a look at why); work that
    could not be finished stays until a look can."""

    looked_at: float = 0.0  # epoch seconds of the last look; 0 until the first
    activations_finished: int = 0  # since the process started
    disputes_recorded: int = 0
    failed: int = 0  # activations the last look could not finish

    def record(self, result: dict[str, Any], now: float) -> None:
        self.looked_at = now
        self.activations_finished += len(result["activations"]["finished"])
        self.disputes_recorded += len(result["dispute_openings"]["recorded"])
        self.failed = len(result["activations"]["failed"])


def _busy(why: str) -> dict[str, Any]:
    return {
        "busy": why,
        "activations": {"finished": [], "failed": [], "dropped": 0},
        "dispute_openings": {"recorded": [], "dropped": 0},
    }


async def _nothing_to_keep() -> None:
    """A finishing run called without a lease (the tests', one process at a time)."""


class UnfinishedWork(CardLifecycle, DisputeCases):
    """Finishing the activations and dispute openings that did not finish."""

    async def finish_unfinished(self, older_than_s: float = GRACE_S) -> dict[str, Any]:
        """Finish what was begun more than ``older_than_s`` ago and not finished: card
        activations (``finish_activations``) and dispute openings
        (``finish_dispute_openings``). One process at a time (the store's lease
        ``FINISH_LEASE``: two finishing one activation at once could both send a token's PAN
        update); while another holds it, ``busy`` names it and nothing is done."""
        lease = HeldLease(self.store, FINISH_LEASE, self.actor, FINISH_LEASE_TTL_S)
        if (holder := await lease.take()) is not None:
            return _busy(f"{owner_name(holder.owner)} is finishing them now")
        try:
            return {
                "activations": await self.finish_activations(older_than_s, lease.keep),
                "dispute_openings": await self.finish_dispute_openings(older_than_s, lease.keep),
            }
        except LeaseLost:  # stalled past the lease's life: another may be finishing now
            return _busy(
                "this run stopped: its lease lapsed and another process may be finishing them; "
                "what it finished is in the audit log"
            )
        finally:
            await lease.drop()

    async def unfinished(self) -> dict[str, Any]:
        """The work begun and not finished, without touching it (``authhost store finish
        --list``): each intent's kind, subject (a card, a charge's journal id) and age; those
        younger than ``GRACE_S`` may still be running."""
        now = time.time()
        waiting = [
            {
                "kind": intent.kind,
                "subject": intent.subject,
                "begun_at": totals_module.iso_time(intent.ts),
                "age_s": round(now - intent.ts, 1),
            }
            for kind in (ACTIVATION_INTENT, DISPUTE_OPEN_INTENT)
            for intent in await self.store.intents(kind, math.inf)
        ]
        return {"unfinished": waiting, "grace_s": GRACE_S}

    async def finish_activations(
        self, older_than_s: float = GRACE_S, keep: Keep = _nothing_to_keep
    ) -> dict[str, Any]:
        """Finish every activation begun more than ``older_than_s`` ago and not finished:
        audit it if its entry is missing, send the PAN updates not sent, retire its
        predecessors; an intent whose card was never activated (the activation was refused)
        is dropped. Each finished one is audited (``card.activation_finished``). ``keep`` is
        called before each (the finishing lease renewed; LeaseLost stops the run)."""
        finished: list[dict[str, Any]] = []
        failed: list[dict[str, str]] = []
        dropped = 0
        for intent in await self.store.intents(ACTIVATION_INTENT, time.time() - older_than_s):
            await keep()
            card = await self.store.get_card(intent.subject)
            if not await self._still_the_intent(intent):
                continue  # begun again since it was read (its own run finishes it)
            if card is None or not card.replaces or not lifecycle.has_been_activated(card):
                await self.store.drop_intent(ACTIVATION_INTENT, intent.subject, intent.ts)
                dropped += 1
                continue
            try:
                finished.append(await self._finish_activation(card, intent))
            except ServiceError as error:  # a predecessor that keeps changing: next time
                failed.append({"card_id": card.card_id, "error": error.message})
                continue
            await self.store.drop_intent(ACTIVATION_INTENT, intent.subject, intent.ts)
        return {"finished": finished, "failed": failed, "dropped": dropped}

    async def _still_the_intent(self, intent: Intent) -> bool:
        """Whether ``intent`` is still the one stored: read again after its card, so that an
        activation begun again meanwhile (its intent written before its card) is left to the
        run that began it, which would otherwise send the same PAN updates beside this one."""
        now = await self.store.intents(intent.kind, math.inf)
        return any(i.subject == intent.subject and i.ts == intent.ts for i in now)

    async def _finish_activation(self, card: Card, intent: Intent) -> dict[str, Any]:
        plan = HandOver.model_validate_json(intent.data)
        audited, announced = await self._done(card.card_id)
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

    async def _done(self, card_id: str) -> tuple[bool, set[str]]:
        """Whether the card's activation was audited, and the token references whose PAN
        update was: a card is activated once, and takes its tokens over then, so any such
        entry of the card is the one (not only those since the intent: another try's intent
        may have replaced it)."""
        audited, announced = False, set()
        after_id = 0
        while page := await self.store.audit(subject=card_id, limit=1000, after_id=after_id):
            after_id = max(entry.audit_id for entry in page)
            for entry in page:
                if entry.action == "card.activate":
                    audited = True
                elif entry.action == "card.token_pan_update":
                    announced.update(t["token_ref"] for t in json.loads(entry.after)["tokens"])
        return audited, announced

    async def finish_dispute_openings(
        self, older_than_s: float = GRACE_S, keep: Keep = _nothing_to_keep
    ) -> dict[str, Any]:
        """Record the disputes whose provisional credit was posted and that were never
        recorded (the store failed in between, or the process stopped): with the credit the
        journal has, audited as ``dispute.open`` with ``finished_after_a_failure``. One
        recorded whose audit entry (and fraud label) the failure cut off gets them now. An
        opening whose charge has a dispute of another try's now (that try audits it) or whose
        credit never posted (refused, or not reached) is dropped: nothing is left to do."""
        recorded: list[dict[str, Any]] = []
        dropped = 0
        for intent in await self.store.intents(DISPUTE_OPEN_INTENT, time.time() - older_than_s):
            await keep()
            dispute = codec.dispute_from_json(intent.data)
            try:
                entry = await self._journal_entry(dispute.card_id, dispute.journal_id)
            except NotFoundError:  # pruned meanwhile: nothing to record against
                entry = None
            existing = None if entry is None else await self._dispute_of(entry)
            credited = 0
            if entry is not None and existing is None:
                credited = await self._credit_given(entry)
            if existing is not None and existing.dispute_id == dispute.dispute_id:
                # this try's, recorded with its entry (on Redis Cluster, or by an older
                # authhost, the entry followed: the failure may have cut it off)
                if not await self._audited(existing.dispute_id, "dispute.open"):
                    view = self._view(existing)
                    await self.store.append_audit(
                        self._opening_entry(existing, view, finished_after_a_failure=True),
                        self.security.audit_seal,
                    )
                    recorded.append(view)
                await self._dispute_recorded(existing, unless_reported=True)
            elif credited:
                opened = replace(dispute, credited_minor=credited)
                view = self._view(opened)
                entry = self._opening_entry(opened, view, finished_after_a_failure=True)
                with contextlib.suppress(Conflict):  # recorded by a retry meanwhile
                    await self.store.open_dispute(opened, entry, self.security.audit_seal)
                    await self._dispute_recorded(opened)
                    recorded.append(view)
            else:
                dropped += 1
            await self.store.drop_intent(DISPUTE_OPEN_INTENT, intent.subject, intent.ts)
        return {"recorded": recorded, "dropped": dropped}
