"""A card's case timeline (``admin.timeline``): the reads behind it.

The card's journal, its audit log entries, the fraud reports and disputes of its journal
entries, for the card and (``chain``) the cards it succeeds and that succeed it, merged
newest first into one page of events. The journal is read newest first, only as far back as
the page needs (``CardTimeline._journal``), not the whole period; the disputes are found by
card (``CardStore.disputes_of_card``), not through the entries read.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

from authhost.admin import timeline as tl
from authhost.admin.errors import InvalidRequest
from authhost.admin.service.base import ServiceBase, _period
from authhost.cards.model import Card
from authhost.store.interface import JOURNAL_ID_LAG_S
from authhost.store.records import JournalEntry

AUDIT_PAGE = 1000  # a card's audit entries read at a time
JOURNAL_PAGE_MIN = 16  # a card's journal entries read at a time, at least
JOURNAL_PAGE_MAX = 1000  # and at most


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

        What it reads: each card of the chain and all its audit entries (a card has few),
        page by page; the chain's journal entries newest first (``_journal``: each card's
        read back from its newest entry by journal id, the cards' reads merged by time),
        only until the newest ``limit`` of the period before ``before`` are known, and
        ``JOURNAL_ID_LAG_S`` (60 s) of each card's entries beyond them, since id order is
        time order only up to that; for a ``before`` or ``until`` deep in a long history,
        a few dozen one-entry seeks find where to start. The order is exact as long as no
        entry of the card was written more than ``JOURNAL_ID_LAG_S`` after its request
        arrived (``store.interface.JOURNAL_ID_LAG_S`` says why none is). The fraud reports
        are those of the entries read; the disputes are every dispute of each card of the
        chain (``CardStore.disputes_of_card``: a card has few), their openings and closings
        in the period listed, and the chargeback labels of the fraud ones with them, so a
        dispute opened weeks after its charge is on the page of its opening however far
        back its charge is (or before the period)."""
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
        if low < high:
            events.add_all(await self._events(cards, low, high, limit + 1))
        page, next_before = tl.page(events, limit)
        if len(page) > limit:
            # one instant fills the page (tl.page): what was read kept only limit + 1
            # events, so the instant may have more and older events may follow; the whole
            # instant, and a next page when anything is older
            instant = page[-1]["ts"]
            whole = tl.Newest(tl.TIMELINE_MAX)
            whole.add_all(
                await self._events(
                    cards, instant, math.nextafter(instant, math.inf), tl.TIMELINE_MAX, limit + 1
                )
            )
            page = list(whole)
            next_before = None
            if low < instant and await self._events(cards, low, instant, 1):
                next_before = instant
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

    async def _events(
        self, cards: list[Card], low: float, high: float, keep: int, first: int = 0
    ) -> list[dict[str, Any]]:
        """The newest ``keep`` events of the cards in [low, high): their journal entries
        (read back from the newest until the ``keep`` newest of the chain are known, see
        ``_journal``), the fraud reports of the entries read, the cards' disputes and the
        chargeback labels of the fraud ones, and their audit entries. ``first``: how many
        entries a card's first journal page reads (``keep`` when 0), doubling page after
        page."""
        read = await self._journal(cards, low, high, keep, first or keep)
        entries = [e for one in read for e in one.entries]
        # every dispute of each card (a card has few), by the store's index of disputes by
        # card: a dispute opened long after its charge is found however little was read
        disputed = [await self.store.disputes_of_card(one.card.card_id) for one in read]
        labelled = [d.journal_id for card_disputes in disputed for d in card_disputes
                    if d.reason == "fraud"]  # fmt: skip
        reports = await self.store.fraud_reports_of([e.journal_id for e in entries] + labelled)
        verdicts = {jid: "fraud" if r.fraud else "genuine" for jid, r in reports.items()}
        events = tl.Newest(keep)
        events.add_all(tl.journal_event(e, verdicts.get(e.journal_id)) for e in entries)
        for one, card_disputes in zip(read, disputed, strict=True):
            card, pan = one.card, one.card.masked_pan
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
            # a label no audit entry tells of (a fraud dispute's chargeback), on an entry read
            # or on the charge of one of the card's fraud disputes
            frauds = [d.journal_id for d in card_disputes if d.reason == "fraud"]
            for journal_id in dict.fromkeys([e.journal_id for e in one.entries] + frauds):
                report = reports.get(journal_id)
                if report is None or (report.journal_id, report.reported_at) in audited:
                    continue
                if low <= report.reported_at < high:
                    events.add(tl.fraud_report_event(report, pan))
            for dispute in card_disputes:
                events.add_all(e for e in tl.dispute_events(dispute, pan) if low <= e["ts"] < high)
        return list(events)

    async def _journal(
        self, cards: list[Card], low: float, high: float, keep: int, first: int
    ) -> list[_Reading]:
        """Each card's journal entries in [low, high), read back from the newest (by journal
        id, ``CardStore.card_journal_newest``) a page at a time, the card that may still
        hold the newest unread entry first, until the ``keep`` newest of all the cards are
        known: no card's unread entries can be newer than the oldest of them, nor in the
        period. Id order is time order up to ``JOURNAL_ID_LAG_S`` (an entry below an id is
        at most that much newer than the entry of the id), so what is read goes that much
        further back than the ``keep`` newest; with ``high`` set, each card's read starts
        below an entry at least that much newer than ``high`` (``_seek``)."""
        readings = [_Reading(card) for card in cards]
        if high != math.inf:
            for one in readings:
                await self._seek(one, high + JOURNAL_ID_LAG_S)
        newest: list[tuple[float, int]] = []  # a heap: the chain's newest ``keep`` (ts, id)
        while True:
            floor = newest[0][0] if len(newest) >= keep else -math.inf
            live = [r for r in readings if not r.done and r.reach >= max(low, floor)]
            if not live:
                return readings
            one = max(live, key=lambda r: r.reach)
            # what the ``keep`` newest still lack (``first``, doubling, at most), then small
            # pages through the lag
            wanted = min(keep - len(newest), first << min(one.pages, 16))
            size = min(max(wanted, JOURNAL_PAGE_MIN), JOURNAL_PAGE_MAX)
            page = await self.store.card_journal_newest(one.card.card_id, one.before_id, size)
            one.pages += 1
            one.done = len(page) < size
            for entry in page:
                one.before_id = entry.journal_id
                one.oldest_ts = min(one.oldest_ts, entry.ts)
                if not low <= entry.ts < high:
                    continue
                one.entries.append(entry)
                item = (entry.ts, entry.journal_id)
                if len(newest) < keep:
                    heapq.heappush(newest, item)
                elif item > newest[0]:
                    heapq.heapreplace(newest, item)

    async def _seek(self, one: _Reading, target: float) -> None:
        """Start ``one``'s read below the lowest-id entry of the card found whose ts is
        ``target`` or later (then every entry with a higher id is at most JOURNAL_ID_LAG_S
        older than it: none is before ``target - JOURNAL_ID_LAG_S``, the period's end), by
        bisecting on journal ids with one-entry reads: a page deep into a long history
        costs a few dozen index seeks, not a read of everything newer."""
        card_id = one.card.card_id
        top = await self.store.card_journal_newest(card_id, 0, 1)
        if not top:
            one.done = True
            return
        if top[0].ts < target:
            return  # read from the newest
        one.before_id, one.oldest_ts = top[0].journal_id, top[0].ts
        lo, hi = 0, top[0].journal_id
        while hi - lo > 1:
            mid = (lo + hi) // 2
            below = await self.store.card_journal_newest(card_id, mid, 1)
            if below and below[0].ts >= target:
                hi = one.before_id = below[0].journal_id
                one.oldest_ts = min(one.oldest_ts, below[0].ts)
            else:
                lo = mid


@dataclass
class _Reading:
    """One card's journal as ``_journal`` reads it back from the newest."""

    card: Card
    before_id: int = 0  # the next page is below this id (0: from the newest)
    oldest_ts: float = math.inf  # the oldest ts read: unread entries are at most
    # JOURNAL_ID_LAG_S newer than it
    done: bool = False  # every entry is read
    pages: int = 0  # pages read
    entries: list[JournalEntry] = field(default_factory=list)  # those in the period, id desc

    @property
    def reach(self) -> float:
        """The newest an unread entry of the card can be."""
        return self.oldest_ts + JOURNAL_ID_LAG_S
