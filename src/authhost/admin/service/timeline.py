"""A card's case timeline (``admin.timeline``): the reads behind it.

The card's journal, its audit log entries, the fraud reports and disputes of its journal
entries, for the card and (``chain``) the cards it succeeds and that succeed it, merged
newest first into one page of events.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from authhost.admin import timeline as tl
from authhost.admin.errors import InvalidRequest
from authhost.admin.service.base import ServiceBase, _period
from authhost.cards.model import Card
from authhost.iso.codes import APPROVED_CODES
from authhost.store.interface import JournalQuery
from authhost.store.records import Dispute, JournalEntry

AUDIT_PAGE = 1000  # a card's audit entries read at a time
DISPUTE_LOOKUPS = 2000  # posted charges per card whose dispute is looked up, the newest


class CardTimeline(ServiceBase):
    """A card's history for an investigation, in one list."""

    async def card_timeline(
        self,
        card_id: str,
        *,
        day: str = "",
        since: float = 0.0,
        until: float = 0.0,
        before: float = 0.0,
        limit: int = tl.TIMELINE_LIMIT,
        chain: bool = True,
    ) -> dict[str, Any]:
        """The card's events newest first (``admin.timeline``): its authorisations,
        reversals and advices (the journal), every audited change of it (lifecycle, PIN,
        limits, controls, wallet tokens, lookups, fraud reports), its disputes opened and
        closed, and the chargeback labels of fraud disputes. With ``chain``, those of the
        cards it succeeds and that succeed it too (renewals, replacements, reissues: at most
        ``CHAIN_MAX`` cards), each event naming its card.

        The period is a business ``day`` or [``since``, ``until``) as the journal's reports
        take it (none: the card's whole history); ``before`` (exclusive, epoch seconds) pages
        on with the ``next_before`` of the previous answer. Up to ``limit`` events
        (``TIMELINE_MAX`` at most).

        What it reads, per card of the chain: the card; its journal entries in the period
        (the stores read a card's journal oldest first only, so every entry of the period is
        read, and only the newest ``limit`` kept: bound the period for a busy card); the
        fraud reports of the entries kept; the dispute of each of its posted charges in the
        period (the newest ``DISPUTE_LOOKUPS``; a dispute of a charge from before the period
        is not found: the stores index disputes by entry, not by card); and its audit
        entries, all of them (a card has few), page by page."""
        if not 1 <= limit <= tl.TIMELINE_MAX:
            raise InvalidRequest(f"limit is 1 to {tl.TIMELINE_MAX:,}")
        if before < 0 or math.isnan(before):
            raise InvalidRequest("before is epoch seconds, 0 or more")
        card = await self._card(card_id)
        low, high = 0.0, math.inf
        if day or since or until:
            low, high = _period(day, since, until, self.clock(), self.business_day)
        if before:
            high = min(high, before)
        cards = await self._card_chain(card) if chain else [card]
        events = tl.Newest(limit + 1)
        for one in cards:
            if low < high:
                events.add_all(await self._card_events(one, low, high, limit + 1))
        page, next_before = tl.page(events, limit)
        if len(page) > limit:
            # one instant fills the page (tl.page): what was read kept only limit + 1
            # events, so the instant may have more and older events may follow; the whole
            # instant, and a next page when anything is older
            instant = page[-1]["ts"]
            whole = tl.Newest(tl.TIMELINE_MAX)
            for one in cards:
                whole.add_all(
                    await self._card_events(
                        one, instant, math.nextafter(instant, math.inf), tl.TIMELINE_MAX
                    )
                )
            page = list(whole)
            next_before = None
            for one in cards:
                if low < instant and await self._card_events(one, low, instant, 1):
                    next_before = instant
                    break
        return {
            "card_id": card_id,
            "cards": [
                {
                    "card_id": c.card_id,
                    "pan": c.masked_pan,
                    "state": c.state.value,
                    "replaces": c.replaces,
                    "replaced_by": c.replaced_by,
                }
                for c in cards
            ],  # fmt: skip
            "since": tl.iso_time(low) if low else None,
            "until": tl.iso_time(high) if high != math.inf else None,
            "events": page,
            "next_before": next_before,
        }

    async def _card_chain(self, card: Card) -> list[Card]:
        """The card and every card linked to it by ``replaces`` / ``replaced_by``, either way
        and through each other (a renewal withdrawn and a reissue of the same card are both
        found), oldest first; at most ``CHAIN_MAX``."""
        found = {card.card_id: card}
        waiting = [card]
        while waiting and len(found) < tl.CHAIN_MAX:
            current = waiting.pop()
            for linked in (current.replaces, current.replaced_by):
                if not linked or linked in found or len(found) >= tl.CHAIN_MAX:
                    continue
                other = await self.store.get_card(linked)
                if other is not None:
                    found[linked] = other
                    waiting.append(other)
        return sorted(found.values(), key=lambda c: (c.created_at, c.card_id))

    async def _card_events(
        self, card: Card, low: float, high: float, keep: int
    ) -> list[dict[str, Any]]:
        """The newest ``keep`` events of each of the card's sources in [low, high)."""
        pan = card.masked_pan
        newest: list[tuple[float, int, JournalEntry]] = []  # a heap: the newest ``keep``
        charges: list[int] = []
        query = JournalQuery(card_id=card.card_id, since=low, until=high)
        async for entry in self.store.export_journal(query):
            item = (entry.ts, entry.journal_id, entry)
            if len(newest) < keep:
                heapq.heappush(newest, item)
            elif item[:2] > newest[0][:2]:
                heapq.heapreplace(newest, item)
            if _is_charge(entry):
                charges.append(entry.journal_id)
                if len(charges) > 2 * DISPUTE_LOOKUPS:
                    del charges[:DISPUTE_LOOKUPS]
        kept = [entry for _, _, entry in newest]
        reports = await self.store.fraud_reports_of([e.journal_id for e in kept])
        verdicts = {jid: "fraud" if r.fraud else "genuine" for jid, r in reports.items()}
        events = tl.Newest(keep)
        events.add_all(tl.journal_event(e, verdicts.get(e.journal_id)) for e in kept)

        audited: set[tuple[int, float]] = set()
        after_id = 0
        while page := await self.store.audit(card.card_id, AUDIT_PAGE, after_id):
            after_id = page[-1].audit_id
            for audit in page:
                reported = tl.reported_in_audit(audit)
                if reported is not None:
                    audited.add(reported)
                if low <= audit.ts < high:
                    events.add(tl.audit_event(audit, pan))
            if len(page) < AUDIT_PAGE:
                break
        for report in reports.values():  # a label no audit entry tells of: a chargeback's
            told = (report.journal_id, report.reported_at) in audited
            if not told and low <= report.reported_at < high:
                events.add(tl.fraud_report_event(report, pan))

        for journal_id in charges[-DISPUTE_LOOKUPS:]:
            dispute: Dispute | None = await self.store.dispute_of_entry(journal_id)
            if dispute is not None:
                events.add_all(e for e in tl.dispute_events(dispute, pan) if low <= e["ts"] < high)
        return list(events)


def _is_charge(entry: JournalEntry) -> bool:
    """What a dispute may be opened on: an approved entry that posted money."""
    return entry.response_code in APPROVED_CODES and entry.movement == "post"
