"""An analyst's loop on both stores: a rule flags transactions for review as the server
approves them over TCP, the review queue lists them, a verdict closes one, and the labelled
journal export carries the verdicts to training."""

from __future__ import annotations

from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture

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


async def test_flagged_transactions_wait_for_a_verdict(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url, rules=REVIEW_RULES)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    sent = [purchase(card, amount=amount) for amount in (90_000, 1_000, 60_000, 2_000)]
    for fields in sent:
        assert (await switch.send(fields))["39"] == "00"  # review approves, and flags

    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        service = CardService(store, security, actor="analyst-1")
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
    labelled = load_labelled(out)
    assert int(labelled.labels.sum()) == 1 and len(labelled.labels) == count
    fraud_row = [e.journal_id for e in entries].index(first["journal_id"])
    assert labelled.labels.tolist()[fraud_row] == 1
