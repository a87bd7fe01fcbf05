"""A card's case timeline over a running host, on both stores: purchases approved and
declined sent by a switch over TCP, a suspension and its lifting by an operator, an analyst's
fraud report, a fraud dispute (with its provisional credit and chargeback label), then a
reissue under a new PAN and a purchase with the new card. The timeline (admin API and CLI)
lists all of it newest first, each event with its kind, card and masked PAN; the chain of
cards is followed unless asked not to; the period and the pages cut it as asked; no clear PAN
appears; bad input is refused with a message."""

from __future__ import annotations

import json
from typing import Any

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture
from test_e2e_token_pan_update import the_new_card

from authhost.admin import timeline as tl
from authhost.admin.timeline import page
from authhost.store import opened_store
from authhost.store.interface import JournalQuery
from authhost.store.records import AuditEntry, JournalEntry


async def ok(port: int, method: str, path: str, **options: Any) -> dict[str, Any]:
    reply = await call(port, method, path, **options)
    assert reply.status == 200, (method, path, reply.status, reply.json)
    return reply.json


async def timeline(port: int, card_id: str, query: str = "") -> dict[str, Any]:
    """The timeline as an auditor reads it (a read-only role)."""
    path = f"/v1/cards/{card_id}/timeline" + (f"?{query}" if query else "")
    return await ok(port, "GET", path, token=AUDITOR_TOKEN)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


async def test_a_cards_timeline_follows_the_cardholder_through_a_reissue(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa, old_id = at.port, at.switch, at.visa, at.card_id
    bought = await switch.send(purchase(visa, amount=4_200))
    charged = await switch.send(purchase(visa, amount=5_000, t="0200"))  # posted: disputable
    assert bought["39"] == charged["39"] == "00"
    await ok(port, "POST", f"/v1/cards/{old_id}/suspend", payload={"reason": "wallet lost"})
    refused = await switch.send(purchase(visa, amount=700))
    assert refused["39"] == "62"  # suspended: declined
    await ok(port, "POST", f"/v1/cards/{old_id}/resume", payload={"reason": "wallet found"})
    async with opened_store(store_url) as store:
        entries = {e.stan: e for e in await store.journal(JournalQuery(card_id=old_id))}
    bought_id, charged_id, refused_id = (
        entries[r["11"]].journal_id for r in (bought, charged, refused)
    )
    base = f"/v1/cards/{old_id}/journal"
    await ok(port, "POST", f"{base}/{bought_id}/fraud-report",
             payload={"fraud": True, "source": "analyst", "note": "odd merchant"})  # fmt: skip
    dispute = await ok(port, "POST", f"{base}/{charged_id}/dispute", payload={"reason": "fraud"})
    new = await ok(port, "POST", f"/v1/cards/{old_id}/reissue", payload={"reason": "exposed"})
    new_id = new["card_id"]
    await ok(port, "POST", f"/v1/cards/{new_id}/ship")
    await ok(port, "POST", f"/v1/cards/{new_id}/activate")
    fresh = await the_new_card(at, new)
    assert (await switch.send(purchase(fresh, amount=1_234)))["39"] == "00"

    whole = await timeline(port, old_id)
    events = whole["events"]
    assert whole["next_before"] is None and whole["since"] is None and whole["until"] is None
    assert [e["ts"] for e in events] == sorted((e["ts"] for e in events), reverse=True)
    assert {c["card_id"] for c in whole["cards"]} == {old_id, new_id}
    assert [c["card_id"] for c in whole["cards"]] == [old_id, new_id]  # oldest first
    # the story, oldest first, as the kinds and cards of the events tell it
    story = [(e["kind"], e["card_id"]) for e in reversed(events)]
    expected = [
        ("authorisation", old_id),
        ("financial", old_id),
        ("card.suspend", old_id),
        ("authorisation", old_id),
        ("card.resume", old_id),
        ("fraud_report", old_id),
        ("dispute.open", old_id),  # when it was asked for
        ("fraud_report", old_id),  # the fraud dispute's chargeback label, at the same time
        ("advice", old_id),  # then the dispute's provisional credit (a 0220)
        ("card.reissue", old_id),
        ("card.issue", new_id),
        ("card.ship", new_id),
        ("card.activate", new_id),
        ("authorisation", new_id),
    ]
    assert _in_order(story, expected), story  # the card's earlier life comes first
    by_journal = {e["journal_id"]: e for e in events if e["kind"] in ("authorisation", "financial")}
    assert by_journal[bought_id]["verdict"] == "fraud"
    assert by_journal[bought_id]["summary"].startswith("0100 purchase 42.00 ")
    assert ": 00 approved" in by_journal[bought_id]["summary"]
    assert "reported fraud" in by_journal[bought_id]["summary"]
    assert ": 62 declined (restricted card)" in by_journal[refused_id]["summary"]
    assert "at MERCHANT0000001 (5411" in by_journal[refused_id]["summary"]
    assert by_journal[charged_id]["pan"] == visa["pan"][:6] + "******" + visa["pan"][-4:]
    suspended = next(e for e in events if e["kind"] == "card.suspend")
    assert suspended["summary"].startswith("card suspended by ")
    assert "reason wallet lost" in suspended["summary"]
    assert "state active -> suspended" in suspended["summary"]
    assert suspended["actor"] and suspended["audit_id"]
    opened = next(e for e in events if e["kind"] == "dispute.open")
    assert opened["dispute_id"] == dispute["dispute_id"] and opened["journal_id"] == charged_id
    assert "fraud, 50.00 " in opened["summary"]
    reports = [e for e in events if e["kind"] == "fraud_report"]
    assert sorted(e["journal_id"] for e in reports) == sorted([bought_id, charged_id])
    assert any("source chargeback" in e["summary"] for e in reports)
    assert any("source analyst" in e["summary"] and e["actor"] for e in reports)
    newest = events[0]
    assert (newest["kind"], newest["card_id"], newest["pan"]) == (
        "authorisation", new_id, new["pan"]
    )  # fmt: skip
    assert newest["summary"].startswith("0100 purchase 12.34 ")

    # the same from the new card's side; chain=false: one card each
    assert (await timeline(port, new_id))["events"] == events
    alone = await timeline(port, old_id, "chain=false")
    assert {e["card_id"] for e in alone["events"]} == {old_id}
    assert [c["card_id"] for c in alone["cards"]] == [old_id]
    assert alone["events"] == [e for e in events if e["card_id"] == old_id]
    only_new = await timeline(port, new_id, "chain=false")
    assert {e["card_id"] for e in only_new["events"]} == {new_id}

    # a period: since the reissue (inclusive), until the new card's purchase (exclusive)
    reissued = next(e for e in events if e["kind"] == "card.reissue")
    cut = await timeline(port, old_id, f"since={reissued['ts']}&until={newest['ts']}")
    assert cut["events"] == [e for e in events if reissued["ts"] <= e["ts"] < newest["ts"]]
    assert cut["events"][-1]["kind"] == "card.reissue" and newest not in cut["events"]
    assert cut["since"] and cut["until"]

    # pages of 3, on with next_before: the same events, each once
    paged: list[dict[str, Any]] = []
    before = ""
    for _ in range(100):
        one = await timeline(port, old_id, f"limit=3{before}")
        assert 1 <= len(one["events"]) <= 3
        paged += one["events"]
        if one["next_before"] is None:
            break
        before = f"&before={one['next_before']}"
    assert paged == events
    assert kinds((await timeline(port, old_id, "limit=2"))["events"]) == kinds(events[:2])

    # never a clear PAN, whichever way it is asked
    text = json.dumps([whole, alone, only_new, cut, paged])
    for number in (visa["pan"], fresh["pan"]):
        assert number not in text

    # bad input: a message, nothing else
    assert (
        await call(port, "GET", "/v1/cards/crd_nope/timeline", token=AUDITOR_TOKEN)
    ).status == 404
    for query in ("limit=0", "limit=2001", "limit=x", "since=yesterday", "until=-5",
                  "chain=maybe", "before=abc", "since=99999999999", "day=2026-13-01",
                  "until=5&since=10", "colour=red"):  # fmt: skip
        reply = await call(port, "GET", f"/v1/cards/{old_id}/timeline?{query}", token=AUDITOR_TOKEN)
        assert reply.status in (400, 422) and reply.json["error"], (query, reply.status, reply.json)
    no_token = await call(port, "GET", f"/v1/cards/{old_id}/timeline", token=None)
    assert no_token.status == 401

    # the CLI prints the same events (JSON in a pipe), and a table when asked
    config = str(cli_config(tmp_path, store_url))
    code, output = await run_cli("cards", "timeline", old_id, "--config", config)
    assert code == 0, output
    printed = json.loads(output)
    assert printed["events"] == (await timeline(port, old_id))["events"]
    code, output = await run_cli(
        "cards", "timeline", old_id, "--no-chain", "--limit", "4", "--config", config
    )
    assert code == 0, output
    assert json.loads(output) == await timeline(port, old_id, "chain=false&limit=4")
    code, table = await run_cli("cards", "timeline", new_id, "-o", "table", "--config", config)
    assert code == 0, table
    assert "card.reissue" in table and "dispute.open" in table and new["pan"] in table
    for number in (visa["pan"], fresh["pan"]):
        assert number not in table and number not in output
    code, output = await run_cli("cards", "timeline", "crd_nope", "--config", config)
    assert code == 1
    code, output = await run_cli("cards", "timeline", old_id, "--limit", "0", "--config", config)
    assert code != 0


def _in_order(story: list[tuple[str, str]], expected: list[tuple[str, str]]) -> bool:
    """``expected`` is a subsequence of ``story``."""
    it = iter(story)
    return all(step in it for step in expected)


def test_a_page_never_ends_inside_an_instant():
    """Events of one ``ts`` (a fraud dispute's opening and its chargeback label) are never
    split between two pages: ``before`` is exclusive."""
    events = [
        {"ts": ts, "kind": kind, "audit_id": None, "journal_id": jid}
        for ts, kind, jid in [(5.0, "a", 1), (4.0, "b", 2), (4.0, "c", 3), (3.0, "d", 4)]
    ]
    first, before = page(events, 2)
    assert [e["ts"] for e in first] == [5.0] and before == 5.0
    second, before = page([e for e in events if e["ts"] < before], 2)
    assert [e["ts"] for e in second] == [4.0, 4.0] and before == 4.0
    third, before = page([e for e in events if e["ts"] < before], 2)
    assert [e["ts"] for e in third] == [3.0] and before is None
    whole, before = page(events[1:3], 1)  # one instant bigger than the page: all of it
    assert len(whole) == 2 and before is None


def test_summaries_are_one_line_for_a_person():
    entry = JournalEntry(
        ts=1.0, mti="0100", message_class="authorisation", response_code="05",
        processing_code="000000", amount_minor=4_200, currency="978", mcc="5411",
        country="FR", merchant_name="SHOP\n  PARIS", reason_codes="rules.decline",
        rule_matches="velocity_burst", fraud_score=910, journal_id=7,
    )  # fmt: skip
    assert tl.journal_summary(entry) == (
        "0100 purchase 42.00 978 at SHOP PARIS (5411, FR): 05 declined (do not honour), "
        "reasons rules.decline, rules velocity_burst, score 910"
    )
    before = {"card_id": "c1", "state": "active", "limits": {"daily_amount": None}}
    after = {**before, "state": "suspended", "reason": "lost wallet"}
    audit = AuditEntry(2.0, "api:ops1", "card.suspend", "c1", json.dumps(before), json.dumps(after))
    assert tl.audit_summary(audit) == (
        "card suspended by api:ops1: reason lost wallet, state active -> suspended"
    )
    limits = {**before, "limits": {"daily_amount": 50_000}}
    changed = AuditEntry(3.0, "ops", "card.limits", "c1", json.dumps(before), json.dumps(limits))
    assert tl.audit_summary(changed) == (
        "card limits changed by ops: limits.daily_amount none -> 50000"
    )


async def test_pages_smaller_than_an_instant_still_reach_the_older_events(tmp_path):
    """Two audited changes at one instant (a fraud dispute's opening and its chargeback
    label share one) and an older event, paged one event at a time: the first page holds the
    whole instant, and its next_before leads on to the older event. The service keeps only
    ``limit + 1`` newest events, so a page that is all one instant could not tell there were
    more and ended the paging (next_before null) with the card's history unread."""
    from test_admin_support import open_service

    from authhost.admin import requests as rq

    async with open_service(tmp_path) as service:
        await service.create_product(
            rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit", bin="476173")
        )
        await service.create_account(rq.NewAccount(account_id="a1", balance=10_000))
        card_id = (await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1")))[
            "card_id"
        ]
        now = service.clock()
        for ts, action in ((now + 10, "card.limits"), (now + 10, "card.controls")):
            await service.store.append_audit(
                AuditEntry(ts, "ops", action, card_id, "{}", "{}"), None
            )
        whole = await service.card_timeline(card_id)
        assert sorted(kinds(whole["events"])) == ["card.controls", "card.issue", "card.limits"]
        paged: list[dict[str, Any]] = []
        before = 0.0
        for _ in range(10):
            one = await service.card_timeline(card_id, limit=1, before=before)
            paged += one["events"]
            if one["next_before"] is None:
                break
            before = one["next_before"]
        assert kinds(paged) == kinds(whole["events"])
