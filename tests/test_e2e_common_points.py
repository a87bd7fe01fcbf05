"""Common point of purchase over a running host, on both stores: ten cards shop at a
supermarket, five of them also at a fuel station with a skimmer; three of those turn up with
fraud at a web shop, labelled through the admin API and the CLI. The report, over the API
(an auditor's token) and the CLI, ranks the fuel station first with its lift over the
supermarket's, lists the two cards that were there and show no fraud yet, masked, and
refuses bad input."""

from __future__ import annotations

import json
import time
from typing import Any

from host_admin import cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import ecommerce, purchase, store_url  # noqa: F401 - fixture

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cards.track2 import build_track2
from authhost.config import Config
from authhost.security.module import SecurityModule
from authhost.store import opened_store

SKIMMED = "FUELSTATION0001"
SKIMMED_NAME = "CORNER FUEL".ljust(23) + "BERLIN".ljust(13) + "  DE"  # field 43: 40 characters
SUPERMARKET = "SUPERMARKET0001"
WEB_SHOP = "WEBSHOP00000001"


async def issued_cards(config: Config, like_pan: str, count: int) -> list[dict[str, Any]]:
    """``count`` active cards of the product of the card ``like_pan``, each on its own funded
    account, with what a terminal reads from them (test keys of the demo)."""
    security = SecurityModule.open(config.security, demo=True)
    cards = []
    async with opened_store(config.store.url) as store:
        service = CardService(store, security, actor="e2e")
        product_id = (await service.find_card(like_pan))["product_id"]
        for n in range(count):
            account = f"cpp-acc-{n}"
            await service.create_account(rq.NewAccount(account_id=account, balance=1_000_000))
            card = await service.issue_card(rq.IssueCard(product_id=product_id,
                                                         account_id=account))  # fmt: skip
            for action in ("ship", "activate"):
                await service.apply(card["card_id"], action)
            pan = security.decrypt_pan(await store.pan_ciphertext(card["card_id"]),
                                       card["card_id"])  # fmt: skip
            values = security.card_values(pan, card["expiry"], card["service_code"], "cvk")
            track2 = build_track2(pan, card["expiry"], card["service_code"], values.icvv)
            cards.append({"card_id": card["card_id"], "pan": pan, "expiry": card["expiry"],
                          "track2": track2, "cvv2": values.cvv2, "currency": "978"})  # fmt: skip
    return cards


async def fraud_entry(port: int, card_id: str) -> int:
    """The journal id of the card's purchase at the web shop."""
    journal = await call(port, "GET", f"/v1/cards/{card_id}/journal", token=AUDITOR_TOKEN)
    [entry] = [e for e in journal.json["journal"] if e["merchant_id"] == WEB_SHOP]
    return entry["journal_id"]


async def test_the_skimmed_merchant_ranks_first_and_its_other_cards_are_at_risk(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    cards = await issued_cards(host.config, host.cards["active-visa"]["pan"], 10)
    since = time.time() - 1
    switch = await Switch.connect(host.port)

    async def buy(card: dict[str, Any], merchant: str, **fields: str) -> None:
        answer = await switch.send(purchase(card, amount=2_500, **{"42": merchant, **fields}))
        assert answer["39"] == "00", answer

    for card in cards:
        await buy(card, SUPERMARKET, **{"41": "TILL0001"})
    for card in cards[:5]:
        await buy(card, SKIMMED, **{"41": "PUMP0001", "43": SKIMMED_NAME, "18": "5541"})
    # a declined visit is no exposure: this card's purchase at the pump was more than it had
    pump = {"42": SKIMMED, "41": "PUMP0001", "43": SKIMMED_NAME, "18": "5541"}
    declined = await switch.send(purchase(cards[5], amount=5_000_000, **pump))
    assert declined["39"] != "00", declined
    for card in cards[:3]:  # the counterfeits are used online
        online = await switch.send(ecommerce(card, card["cvv2"], amount=9_000, **{"42": WEB_SHOP}))
        assert online["39"] == "00", online
    for card in cards[:2]:  # through the admin API, an analyst's verdict
        journal_id = await fraud_entry(port, card["card_id"])
        path = f"/v1/cards/{card['card_id']}/journal/{journal_id}/fraud-report"
        done = await call(port, "POST", path, payload={"source": "analyst"})
        assert done.status in (200, 201), done
    config = cli_config(tmp_path, store_url)
    journal_id = await fraud_entry(port, cards[2]["card_id"])
    code, output = await run_cli("journal", "report-fraud", cards[2]["card_id"], str(journal_id),
                                 "--source", "chargeback", "--config", str(config))  # fmt: skip
    assert code == 0, output

    query = f"/v1/fraud/common-points?since={since:.0f}&lookback_days=7"
    answer = await call(port, "GET", query, token=AUDITOR_TOKEN)
    assert answer.status == 200, answer
    report = answer.json
    assert (report["fraud_cards"], report["fraud_cards_with_visits"]) == (3, 3)
    assert report["cards_with_visits"] == 10 and report["base_rate"] == 0.3
    top, supermarket = report["points"]  # the web shop: only visits at or after the fraud
    assert (top["merchant_id"], top["fraud_cards"], top["cards"]) == (SKIMMED, 3, 5)
    assert (top["share"], top["lift"]) == (0.6, 2.0)
    assert top["merchant_name"] == SKIMMED_NAME.rstrip() and top["mcc"] == "5541"
    assert (supermarket["merchant_id"], supermarket["fraud_cards"]) == (SUPERMARKET, 3)
    assert (supermarket["cards"], supermarket["lift"]) == (10, 1.0)
    at_risk = report["at_risk"]  # not the supermarket's: no likelier than any other
    assert {c["merchant_id"] for c in at_risk} == {SKIMMED}
    assert sorted(c["card_id"] for c in at_risk) == sorted(c["card_id"] for c in cards[3:5])
    assert "authhost cards compromised" in report["hint"]
    text = answer.body.decode()
    assert not any(card["pan"] in text for card in cards)
    masked = {c["pan"] for c in at_risk}
    assert masked == {f"{c['pan'][:6]}******{c['pan'][-4:]}" for c in cards[3:5]}

    # a page at a time (it was one answer of at most 1,000 rows): the same order, and the
    # cards at risk on the first page only
    assert (report["points_total"], report["next_offset"]) == (2, None)
    first = (await call(port, "GET", f"{query}&limit=1", token=AUDITOR_TOKEN)).json
    assert [p["merchant_id"] for p in first["points"]] == [SKIMMED]
    assert (first["points_total"], first["next_offset"], first["at_risk"]) == (2, 1, at_risk)
    second = (await call(port, "GET", f"{query}&limit=1&offset=1", token=AUDITOR_TOKEN)).json
    assert second["points"] == [supermarket] and second["next_offset"] is None
    assert second["at_risk"] == [] and second["points_total"] == 2

    by_terminal = await call(port, "GET", f"{query}&by=terminal&min_cards=3&limit=1",
                             token=AUDITOR_TOKEN)  # fmt: skip
    [pump] = by_terminal.json["points"]
    assert (pump["merchant_id"], pump["terminal_id"], pump["fraud_cards"]) == (
        SKIMMED,
        "PUMP0001",
        3,
    )
    none = await call(port, "GET", f"{query}&min_cards=4", token=AUDITOR_TOKEN)
    assert none.json["points"] == [] and none.json["at_risk"] == [] and not none.json["hint"]

    for bad in ("by=acquirer", "lookback_days=0", "lookback_days=366", "min_cards=x",
                "limit=0", "offset=-1"):  # fmt: skip
        refused = await call(port, "GET", f"{query}&{bad}", token=AUDITOR_TOKEN)
        assert 400 <= refused.status < 500 and bad.split("=")[0] in refused.json["error"], refused
    no_period = await call(port, "GET", "/v1/fraud/common-points", token=AUDITOR_TOKEN)
    assert no_period.status in (400, 422) and "since" in no_period.json["error"]
    anonymous = await call(port, "GET", query, token="")
    assert anonymous.status == 401

    code, output = await run_cli("fraud", "common-points", "--since", f"{since:.0f}",
                                 "--lookback-days", "7", "--output", "json",
                                 "--config", str(config))  # fmt: skip
    assert code == 0, output
    assert json.loads(output)["points"] == report["points"]
    code, table = await run_cli("fraud", "common-points", "--since", f"{since:.0f}",
                                "--lookback-days", "7", "--output", "table",
                                "--config", str(config))  # fmt: skip
    assert code == 0, table
    lines = table.splitlines()
    [first_row] = [line for line in lines if SKIMMED in line][:1]
    assert "CORNER FUEL" in first_row and "2.0" in first_row
    assert lines.index(first_row) < min(i for i, line in enumerate(lines) if SUPERMARKET in line)
    assert "cards at risk" in table and "authhost cards compromised" in table
    assert not any(card["pan"] in table for card in cards) and "PUMP0001" not in table
    # acting on the cards at risk by their ids, as the hint says: the report has no PAN
    ids = tmp_path / "at-risk.txt"
    ids.write_text("".join(c["card_id"] + "\n" for c in at_risk) + "no-such-card\n")
    code, output = await run_cli("cards", "compromised", str(ids), "--card-ids",
                                 "--action", "watch", "--config", str(config))  # fmt: skip
    assert code == 0, output
    acted = json.loads(output)
    assert (acted["card_ids"], acted["unknown_ids"], acted["pans"]) == (3, 1, 0)
    assert sorted(c["card_id"] for c in acted["cards"]) == sorted(c["card_id"] for c in at_risk)
    listed = await call(port, "GET", "/v1/lists/compromised_cards", token=AUDITOR_TOKEN)
    assert set(listed.json["values"]) == {c["card_id"] for c in at_risk}
    suspended = await call(port, "POST", "/v1/cards/compromised",
                           payload={"card_ids": [at_risk[0]["card_id"]], "action": "suspend"})  # fmt: skip
    assert suspended.status == 200 and suspended.json["cards"][0]["state"] == "suspended"
    nothing = await call(port, "POST", "/v1/cards/compromised", payload={"action": "watch"})
    assert nothing.status == 422 and "pans, card_ids or both" in nothing.json["error"]

    code, table = await run_cli("fraud", "common-points", "--since", f"{since:.0f}",
                                "--by", "terminal", "--output", "table",
                                "--config", str(config))  # fmt: skip
    assert code == 0 and "PUMP0001" in table and "TILL0001" in table, table
    code, table = await run_cli("fraud", "common-points", "--since", f"{since:.0f}",
                                "--lookback-days", "7", "--limit", "1", "--output", "table",
                                "--config", str(config))  # fmt: skip
    assert code == 0 and "next page: --offset 1" in table and SUPERMARKET not in table, table
    code, output = await run_cli("fraud", "common-points", "--since", f"{since:.0f}",
                                 "--lookback-days", "7", "--offset", "1", "--output", "json",
                                 "--config", str(config))  # fmt: skip
    assert code == 0 and json.loads(output)["points"] == [supermarket], output
    code, output = await run_cli("fraud", "common-points", "--since", f"{since:.0f}",
                                 "--by", "acquirer", "--config", str(config))  # fmt: skip
    assert code != 0 and "by must be" in output
