"""The card timeline reads a card's journal newest first, only as far back as a page needs,
on both stores (a real SQLite file, a real redis-server): a card with a long history costs a
page, not a read of its whole history per page. The pages are the events of the whole
timeline, in order, each once (``before`` continues exactly), with journal ids that are not
in time order (ids are taken when an entry is written, its time when its request arrived),
across a chain of cards and when one instant holds more than a page. What the store read is
counted by wrapping its journal reads (the old timeline read every entry of the period,
oldest first, through ``export_journal``)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from test_admin_support import open_service

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cards.model import Card
from authhost.store.interface import Commit
from authhost.store.records import JournalEntry

STEP = 20.0  # seconds between a card's requests
HISTORY = 300
LIMIT = 20
# what a page of LIMIT may read: the LIMIT + 1 newest, a page through the id/time lag, and
# the seeks of a page deep in the history (one-entry reads, a few per doubling of the ids)
READ_BOUND = 3 * (LIMIT + 1)


@pytest.fixture(params=["sqlite", "redis"])
async def service(request, tmp_path) -> AsyncIterator[CardService]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    async with open_service(tmp_path, request.param, redis_url) as opened:
        yield opened


class Reads:
    """Journal entries the store handed out, by whichever of its reads (a wrapper around the
    real store's methods: they still read the store). ``export_journal`` reads through
    ``journal`` (``store.interface.journal_pages``), so it is counted there."""

    def __init__(self, store: Any) -> None:
        self.entries = 0
        for name in ("journal", "card_journal_newest"):
            real = getattr(store, name, None)
            if real is not None:
                setattr(store, name, self._counted(real))

    def _counted(self, real: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> list[JournalEntry]:
            got = await real(*args, **kwargs)
            self.entries += len(got)
            return got

        return counted

    def take(self) -> int:
        taken, self.entries = self.entries, 0
        return taken


async def a_card(service: CardService) -> Card:
    await service.create_product(
        rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit", bin="476173")
    )
    await service.create_account(rq.NewAccount(account_id="a1", balance=10_000))
    issued = await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1"))
    card = await service.store.get_card(issued["card_id"])
    assert card is not None
    return card


def declined(card: Card, ts: float, n: int) -> JournalEntry:
    return JournalEntry(
        ts=ts, mti="0100", message_class="authorisation", response_code="05",
        card_id=card.card_id, pan_masked=card.masked_pan, pan_index=card.pan_index,
        account_id=card.account_id, product_id=card.product_id, processing_code="000000",
        amount_minor=100 + n, currency="978", merchant_id="M1", stan=f"{n % 1_000_000:06d}",
    )  # fmt: skip


async def journalled(service: CardService, writes: list[tuple[Card, float]]) -> None:
    """Each (card, ts) through the store's commit path, in the order given (their ids)."""
    for n, (card, ts) in enumerate(writes):
        await service.store.commit(Commit(journal=declined(card, ts, n), card_id=card.card_id))


def shuffled_in_threes(times: list[float]) -> list[float]:
    """The times in the order their ids are taken: within each three, out of time order (a
    later id up to 2 * STEP older: within the stores' JOURNAL_ID_LAG_S)."""
    rng = random.Random(7)
    out: list[float] = []
    for i in range(0, len(times), 3):
        three = times[i : i + 3]
        rng.shuffle(three)
        out += three
    return out


async def paged(
    service: CardService, card_id: str, reads: Reads, limit: int = LIMIT, **period: Any
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every page of the timeline, on with next_before; the entries read for each."""
    events: list[dict[str, Any]] = []
    read: list[int] = []
    before = 0.0
    for _ in range(1000):
        page = await service.card_timeline(card_id, limit=limit, before=before, **period)
        read.append(reads.take())
        events += page["events"]
        if page["next_before"] is None:
            return events, read
        before = page["next_before"]
    raise AssertionError("paging did not end")


def journal_ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["journal_id"] for e in events if e["audit_id"] is None]


async def test_a_page_of_a_long_history_reads_a_page_and_the_next_continues(service):
    card = await a_card(service)
    now = service.clock()
    start = now - HISTORY * STEP - 3600
    times = [start + i * STEP for i in range(HISTORY)]
    await journalled(service, [(card, ts) for ts in shuffled_in_threes(times)])
    reads = Reads(service.store)

    whole = await service.card_timeline(card.card_id, limit=2000)
    reads.take()
    events = whole["events"]
    assert len(events) == HISTORY + 1  # and the card's issue
    assert [e["ts"] for e in events] == sorted((e["ts"] for e in events), reverse=True)
    assert [e["kind"] for e in events[:1]] == ["card.issue"]

    first = await service.card_timeline(card.card_id, limit=LIMIT)
    first_read = reads.take()
    assert first["events"] == events[:LIMIT]
    assert first["next_before"] == events[LIMIT - 1]["ts"]
    assert first_read <= READ_BOUND, first_read  # the old timeline: all HISTORY

    second = await service.card_timeline(card.card_id, limit=LIMIT, before=first["next_before"])
    second_read = reads.take()
    assert second["events"] == events[LIMIT : 2 * LIMIT]
    assert second_read <= READ_BOUND, second_read

    # deep in the history (the tenth page from the end): a seek, then a page
    deep = events[-10 * LIMIT]["ts"]
    page = await service.card_timeline(card.card_id, limit=LIMIT, before=deep)
    assert page["events"] == events[-10 * LIMIT + 1 : -9 * LIMIT + 1]
    assert reads.take() <= READ_BOUND

    # every page: the whole timeline, each event once, each page read a bounded number
    every, read = await paged(service, card.card_id, reads)
    assert every == events
    assert len(read) == HISTORY // LIMIT + 1
    assert max(read) <= READ_BOUND, read

    # a period: the same from the events of the period, read as little
    since, until = times[100], times[200]
    period, read = await paged(service, card.card_id, reads, since=since, until=until)
    assert period == [e for e in events if since <= e["ts"] < until]
    assert len(period) == 100 and max(read) <= READ_BOUND, read


async def test_a_chain_of_cards_is_merged_by_time_reading_a_page_of_each(service):
    """A reissued card used on while its successor is (the old until it is blocked), then
    the successor alone: the chain's journals merged by time, page after page."""
    old = await a_card(service)
    await service.apply(old.card_id, "ship")
    await service.apply(old.card_id, "activate")
    new_id = (await service.apply(old.card_id, "reissue"))["card_id"]
    new = await service.store.get_card(new_id)
    assert new is not None
    now = service.clock()
    start = now - HISTORY * STEP - 3600
    writes = [(old, start + i * STEP) for i in range(0, 200, 2)]  # the old card
    writes += [(new, start + i * STEP) for i in range(101, 200, 2)]  # both, interleaved
    writes += [(new, start + i * STEP) for i in range(200, HISTORY)]  # the new one alone
    writes.sort(key=lambda w: w[1])
    ids_order = [writes[i] for i in range(len(writes))]
    rng = random.Random(11)
    for i in range(0, len(ids_order), 3):  # ids out of time order within threes
        three = ids_order[i : i + 3]
        rng.shuffle(three)
        ids_order[i : i + 3] = three
    await journalled(service, ids_order)
    reads = Reads(service.store)

    whole = await service.card_timeline(old.card_id, limit=2000)
    reads.take()
    events = whole["events"]
    assert {c["card_id"] for c in whole["cards"]} == {old.card_id, new.card_id}
    journal = [e for e in events if e["audit_id"] is None]
    assert len(journal) == len(writes)
    assert {e["card_id"] for e in journal[:LIMIT]} == {new.card_id}
    assert [e["ts"] for e in events] == sorted((e["ts"] for e in events), reverse=True)

    every, read = await paged(service, new.card_id, reads)
    assert every == events
    assert max(read) <= 2 * READ_BOUND, read  # a page of each card at most, and the lag

    # the pages where both cards were used: both in each
    both = [e for e in events if start + 101 * STEP <= e["ts"] < start + 200 * STEP]
    assert {e["card_id"] for e in both} == {old.card_id, new.card_id}
    sevens, read = await paged(service, old.card_id, reads, limit=7)
    assert sevens == events
    assert max(read) <= 2 * READ_BOUND, read

    only_old, read = await paged(service, old.card_id, reads, chain=False)
    assert only_old == [e for e in events if e["card_id"] == old.card_id]
    assert max(read) <= READ_BOUND, read


async def test_an_instant_bigger_than_the_page_is_whole_and_paging_goes_on(service):
    """30 entries of one instant (a burst a switch stamped alike) in a long history, pages
    of 20: the instant whole on one page, then on to the older entries."""
    card = await a_card(service)
    now = service.clock()
    start = now - HISTORY * STEP - 3600
    times = [start + i * STEP for i in range(HISTORY)]
    instant = times[250]
    writes = [(card, ts) for ts in times[:250]] + [(card, instant)] * 30
    writes += [(card, ts) for ts in times[251:]]
    await journalled(service, writes)
    reads = Reads(service.store)

    whole = await service.card_timeline(card.card_id, limit=2000)
    reads.take()
    events = whole["events"]
    every, read = await paged(service, card.card_id, reads)
    assert every == events
    at_instant = [i for i, e in enumerate(events) if e["ts"] == instant]
    assert len(at_instant) == 30
    # the page that holds the instant reads three times: the page, the instant whole and
    # whether anything is older (each a seek and a page or two), never the history
    assert max(read) <= 3 * READ_BOUND + 30, read

    page = await service.card_timeline(card.card_id, limit=LIMIT, before=instant + 1)
    assert [e["ts"] for e in page["events"]] == [instant] * 30
    assert page["next_before"] == instant
    assert page["events"] == events[at_instant[0] : at_instant[-1] + 1]
    assert reads.take() <= 3 * READ_BOUND + 30
    older = await service.card_timeline(card.card_id, limit=LIMIT, before=instant)
    assert older["events"] == events[at_instant[-1] + 1 : at_instant[-1] + 1 + LIMIT]
    # the instant's 30 are read again on the way (they are within the lag of the page)
    assert journal_ids(older["events"]) and reads.take() <= READ_BOUND + 30


async def test_a_dispute_opened_long_after_its_charge_is_on_the_page_of_its_opening(service):
    """A charge, a long history after it, then a fraud dispute of the old charge: the first
    page (which reads back a page, nowhere near the charge) shows the dispute's opening and
    its chargeback label, found by card, as the whole timeline does; so does a period that
    holds the opening but not the charge."""
    card = await a_card(service)
    now = service.clock()
    start = now - HISTORY * STEP - 3600
    charge = replace(
        declined(card, start - STEP, 0), response_code="00", movement="post",
        hold_amount=500, amount_minor=500, stan="999999",
    )  # fmt: skip
    stored = await service.store.commit(Commit(journal=charge, card_id=card.card_id))
    charged = stored.journal.journal_id
    await journalled(service, [(card, start + i * STEP) for i in range(HISTORY)])
    dispute = await service.open_dispute(
        card.card_id, charged, rq.DisputeOpen(reason="fraud", provisional_credit=False)
    )
    reads = Reads(service.store)

    first = await service.card_timeline(card.card_id, limit=LIMIT)
    assert reads.take() <= READ_BOUND  # a page, not the history back to the charge
    about = [(e["kind"], e["dispute_id"]) for e in first["events"] if e["journal_id"] == charged]
    assert ("dispute.open", dispute["dispute_id"]) in about
    assert ("fraud_report", None) in about  # the chargeback label, opened with it
    whole = await service.card_timeline(card.card_id, limit=2000)
    assert first["events"] == whole["events"][:LIMIT]
    assert len(whole["events"]) == HISTORY + 4  # the issue, the charge, the dispute, the label

    # the last minutes (the card was issued in them too): the charge is from before them
    recent = await service.card_timeline(card.card_id, since=now - 60, until=now + 60)
    assert {(e["kind"], e["journal_id"]) for e in recent["events"]} == {
        ("card.issue", None),
        ("dispute.open", charged),
        ("fraud_report", charged),
    }
