"""An analyst's loop on both stores: a rule flags transactions for review as the server
approves them over TCP, the review queue lists them, a verdict closes one, and the labelled
journal export carries the verdicts to training."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
import trio
from host_admin import start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call, demo_security
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture
from test_store_contract import NOW, hold, seeded

from authhost.admin import journal_export
from authhost.admin import requests as rq
from authhost.admin.journal_export import export_journal
from authhost.admin.service import CardService
from authhost.models.dataset import load_labelled
from authhost.security.module import SecurityModule
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

REVIEW_RULES = """
[[rule]]
name = "big-ticket"
expression = "amount > 500.00"
action = "review"
reason = "R-BIG"
"""


async def test_flagged_transactions_wait_for_a_verdict(nursery, tmp_path, store_url, monkeypatch):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url, rules=REVIEW_RULES)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    sent = [purchase(card, amount=amount) for amount in (90_000, 1_000, 60_000, 2_000)]
    for fields in sent:
        assert (await switch.send(fields))["39"] == "00"  # review approves, and flags

    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        young = await CardService(store, security).review_queue()
        assert young == {"reviews": [], "next_after_id": 0}  # listed once settled (2 s)
        service = CardService(store, security, actor="analyst-1", clock=lambda: time.time() + 10)
        queue = await service.review_queue()
        assert [r["stan"] for r in queue["reviews"]] == [sent[0]["11"], sent[2]["11"]]
        assert {r["verdict"] for r in queue["reviews"]} == {None}
        first = queue["reviews"][0]
        spec = rq.FraudReportSpec(source="analyst", note="card testing at this merchant")
        await service.report_fraud(first["card_id"], first["journal_id"], spec)
        still_open = await service.review_queue()
        assert [r["stan"] for r in still_open["reviews"]] == [sent[2]["11"]]
        everything = await service.review_queue(open_only=False)
        assert [r["verdict"] for r in everything["reviews"]] == ["fraud", None]
        paged = await service.review_queue(after_id=first["journal_id"], open_only=False)
        assert [r["stan"] for r in paged["reviews"]] == [sent[2]["11"]]

        out = tmp_path / "labelled.parquet"
        count = await export_journal(store, JournalQuery(), "parquet", out, labels=True)
        entries = await store.journal(JournalQuery(limit=count))
        # written two rows at a time, and the reports read one at a time: the same file
        monkeypatch.setattr(journal_export, "BATCH_ROWS", 2)
        monkeypatch.setattr(journal_export, "REPORT_PAGE", 1)
        small = tmp_path / "labelled-small.parquet"
        assert await export_journal(store, JournalQuery(), "parquet", small, labels=True) == count
    labelled = load_labelled(out)
    assert int(labelled.labels.sum()) == 1 and len(labelled.labels) == count
    fraud_row = [e.journal_id for e in entries].index(first["journal_id"])
    assert labelled.labels.tolist()[fraud_row] == 1
    assert pq.read_table(small).equals(pq.read_table(out))


async def test_a_flagged_entry_written_late_is_not_skipped_by_the_queues_cursor(
    tmp_path,
    store_url,  # noqa: F811
):
    """Two server processes write flagged entries while an analyst pages the queue with
    ``next_after_id``. On Redis a process takes journal ids a block at a time before its writes
    land, so an entry can be written after one with a higher id: a cursor moved past the
    higher one would skip it for good. The queue lists an entry once it is settled (as the
    journal feeds do), so every flagged entry is listed, once."""
    async with opened_store(store_url) as quiet, opened_store(store_url) as busy:
        try:
            await _late_flagged_entry(tmp_path, quiet, busy)
        finally:
            if hasattr(quiet, "drop_all"):
                await quiet.drop_all()  # this test's Redis prefix


async def _late_flagged_entry(tmp_path, quiet, busy) -> None:  # noqa: ANN001
    """The flagged entries of two processes, one written late, and the analyst's pages."""
    card, _ = await seeded(quiet, balance=10**9)
    if hasattr(quiet, "id_block_life_s"):
        quiet.id_block_life_s = 60.0  # this process's block outlives the steps below
    await quiet.commit(hold(card, 1, 100))  # Redis: reserves this process's block of ids
    await busy.commit(hold(card, 2, 200, review=True))  # flagged, in the next block
    security = demo_security(tmp_path)

    def analyst(at: float) -> CardService:
        return CardService(busy, security, actor="analyst-1", clock=lambda: at)

    # half a second after the flagged entry was written, and again a minute later
    first = await analyst(NOW + 2.5).review_queue()
    await quiet.commit(hold(card, 3, 300, review=True))  # written late, a lower id on Redis
    rest = await analyst(NOW + 60).review_queue(after_id=first["next_after_id"])
    last = await analyst(NOW + 120).review_queue(after_id=rest["next_after_id"])
    listed = [r["stan"] for r in first["reviews"] + rest["reviews"] + last["reviews"]]
    assert sorted(listed) == ["000002", "000003"]  # each flagged entry once


async def test_two_analysts_closing_one_review_at_once_leave_one_verdict(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Closing a review is reporting a verdict on its entry (a fraud report): nothing moves,
    and a later report on an entry replaces the earlier. Two analysts who close the same
    review at the same moment, one saying fraud and one genuine, both succeed (both are
    audited); the entry is left with one verdict, the later written, which the queue and the
    fraud-report feed show once."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url, rules=REVIEW_RULES)
    switch = await Switch.connect(host.port)
    assert (await switch.send(purchase(host.cards["active-visa"], amount=90_000)))["39"] == "00"
    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        later = CardService(store, security, clock=lambda: time.time() + 10)
        [flagged] = (await later.review_queue())["reviews"]
        path = f"/v1/cards/{flagged['card_id']}/journal/{flagged['journal_id']}/fraud-report"
        replies = []

        async def close(fraud: bool) -> None:
            body = {"fraud": fraud, "source": "analyst"}
            replies.append(await call(port, "POST", path, payload=body))

        async with trio.open_nursery() as both:
            both.start_soon(close, True)
            both.start_soon(close, False)
        assert [r.status for r in replies] == [200, 200], replies
        assert (await later.review_queue())["reviews"] == []  # closed
        [closed] = (await later.review_queue(open_only=False))["reviews"]
        feed = await call(port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
        [report] = feed.json["reports"]
        assert closed["verdict"] == ("fraud" if report["fraud"] else "genuine")
    audit = await call(port, "GET", f"/v1/audit?subject={flagged['card_id']}")
    actions = [a["action"] for a in audit.json["audit"]]
    assert actions.count("journal.fraud_report") == 2


async def test_a_flagged_request_a_later_step_declined_is_not_reviewed(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The fraud step flags a request for review, then the funds step declines it (51): it
    never went through, so the analyst's queue leaves it out; ``declined`` (``--declined``,
    ``?declined=true``) shows it with its final answer."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url, rules=REVIEW_RULES)
    switch = await Switch.connect(host.port)
    low, card = host.cards["active-visa-low"], host.cards["active-visa"]  # 50.00, 2,500.00
    too_much, fine = purchase(low, amount=60_000), purchase(card, amount=60_000)
    assert (await switch.send(too_much))["39"] == "51"  # flagged by the rule, then no funds
    assert (await switch.send(fine))["39"] == "00"
    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        later = CardService(store, security, clock=lambda: time.time() + 10)
        queue = await later.review_queue()
        assert [r["stan"] for r in queue["reviews"]] == [fine["11"]]
        both = await later.review_queue(declined=True)
        assert [(r["stan"], r["response_code"]) for r in both["reviews"]] == [
            (too_much["11"], "51"),
            (fine["11"], "00"),
        ]
    await trio.sleep(2.1)  # the API's clock is the real one: let the entries settle
    listed = await call(port, "GET", "/v1/reviews")
    assert [r["stan"] for r in listed.json["reviews"]] == [fine["11"]]
    listed = await call(port, "GET", "/v1/reviews?declined=true")
    assert [r["stan"] for r in listed.json["reviews"]] == [too_much["11"], fine["11"]]


async def test_a_page_of_the_queue_is_full_past_the_entries_it_leaves_out(
    tmp_path,
    store_url,  # noqa: F811
):
    """A card tester's burst: the rules flag every try, the funds step declines most (51).
    A page left those out after reading ``limit`` flagged entries, so it came back short or
    empty with a cursor to page on: the CLI printed an empty queue without its "next page"
    hint, and an analyst (or a client that stops at an empty page) saw no open review while
    the approved ones waited behind the declines. A page reads on until it holds ``limit``
    entries that went through (or the settled journal ends), and the pages together list
    each open review once, whatever the page size."""
    async with opened_store(store_url) as store:
        try:
            await _page_past_left_out(tmp_path, store)
        finally:
            if hasattr(store, "drop_all"):
                await store.drop_all()  # this test's Redis prefix


async def _page_past_left_out(tmp_path, store) -> None:  # noqa: ANN001
    card, _ = await seeded(store, balance=10**9)
    declined = {n: "51" for n in (1, 2, 3, 4, 6, 7)}  # flagged, then no funds
    for n in range(1, 10):
        await store.commit(hold(card, n, 100 * n, review=True, response_code=declined.get(n, "00")))
    security = demo_security(tmp_path)
    analyst = CardService(store, security, actor="analyst-1", clock=lambda: NOW + 60)
    closed = (await analyst.review_queue(declined=True))["reviews"][7]  # stan 8
    assert closed["stan"] == "000008"
    spec = rq.FraudReportSpec(source="analyst", note="genuine: the cardholder confirmed")
    await analyst.report_fraud(card.card_id, closed["journal_id"], spec)

    first = await analyst.review_queue(limit=2)
    assert [r["stan"] for r in first["reviews"]] == ["000005", "000009"]  # 8 has a verdict
    for size in (1, 2, 3):
        listed, after = [], 0
        for _ in range(10):
            page = await analyst.review_queue(limit=size, after_id=after)
            if not page["reviews"]:
                break
            assert len(page["reviews"]) <= size
            listed += [r["stan"] for r in page["reviews"]]
            after = page["next_after_id"]
        assert listed == ["000005", "000009"], size
    everything = await analyst.review_queue(limit=3, declined=True, open_only=False)
    assert [r["stan"] for r in everything["reviews"]] == ["000001", "000002", "000003"]
