"""Requests on one account decided together (one read from the switch, one snapshot each),
over a running host on both stores: they move the money as one after the other would."""

from __future__ import annotations

from host_admin import visa_at_host
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import balances_of, field_90, purchase, start_host, store_url  # noqa: F401

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cards.track2 import build_track2
from authhost.security.module import SecurityModule
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def test_two_copies_of_a_partial_reversal_release_it_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    ledger, available = await balances_of(switch, card)
    held = purchase(card, amount=10_000)
    assert (await switch.send(held))["39"] == "00"
    partial = {**purchase(card, amount=10_000, t="0400"), "90": field_90(held),
               "95": f"{6_000:012d}" + "0" * 30}  # 60.00 of the 100.00 stays  # fmt: skip
    advice = {**partial, "t": "0420"}  # the acquirer's advice of the same reversal
    answers = await switch.send_together([partial, advice])
    assert [a["39"] for a in answers[partial["11"]]] == ["00", "00"]
    assert await balances_of(switch, card) == (ledger, available - 6_000)  # 40.00 released once


async def test_a_cards_limit_holds_for_requests_sent_together(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    limits = {"daily_amount": 50_000, "daily_count": 2}
    assert (
        await call(at.port, "PUT", f"/v1/cards/{at.card_id}/limits", payload=limits)
    ).status == 200
    three = [purchase(at.visa, amount=20_000) for _ in range(3)]  # 600.00 of a 500.00 day
    answers = await at.switch.send_together(three)
    assert sorted(answers[p["11"]][0]["39"] for p in three) == ["00", "00", "61"]
    five = [purchase(at.visa, amount=100) for _ in range(2)]  # two more of two a day
    answers = await at.switch.send_together(five)
    assert [answers[p["11"]][0]["39"] for p in five] == ["65", "65"]


async def test_a_reversal_sent_with_its_original_releases_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    before = await balances_of(switch, card)
    held = purchase(card, amount=10_000)
    reversal = {**purchase(card, amount=10_000, t="0400"), "90": field_90(held)}
    answers = await switch.send_together([held, reversal])
    assert answers[held["11"]][0]["39"] == "00" and answers[reversal["11"]][0]["39"] == "00"
    assert await balances_of(switch, card) == before  # held, then released: not left held


async def test_two_cards_of_one_account_sent_together_spend_its_money_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Two cards of one account (a household's), each purchase read in the same batch:
    each is decided on the same snapshot, where both fit, and the write's re-check of the
    open-to-buy refuses the second, answered 51 (`funds.recheck`): nothing is held for it,
    and the journal says why."""
    host = await start_host(nursery, tmp_path, store_url)
    low = host.cards["active-visa-low"]
    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        service = CardService(store, security, actor="e2e")
        first = await service.find_card(low["pan"])
        issued = await service.issue_card(
            rq.IssueCard(product_id=first["product_id"], account_id=first["account_id"])
        )
        for action in ("ship", "activate"):
            await service.apply(issued["card_id"], action)
        pan = security.decrypt_pan(await store.pan_ciphertext(issued["card_id"]), issued["card_id"])
    values = security.card_values(pan, issued["expiry"], issued["service_code"], "cvk")
    second = {
        **low,
        "pan": pan,
        "expiry": issued["expiry"],
        "track2": build_track2(pan, issued["expiry"], issued["service_code"], values.icvv),
    }
    switch = await Switch.connect(host.port)
    ledger, available = await balances_of(switch, low)
    spend = available * 3 // 5  # each fits, both do not
    one, other = purchase(low, amount=spend), purchase(second, amount=spend)
    answers = await switch.send_together([one, other])
    codes = sorted(answers[p["11"]][0]["39"] for p in (one, other))
    assert codes == ["00", "51"], codes
    assert await balances_of(switch, low) == (ledger, available - spend)
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    [refused] = [
        e for e in entries if e.stan in (one["11"], other["11"]) and e.response_code == "51"
    ]
    assert "funds.recheck" in refused.reason_codes.split(";")
    assert refused.approval_code in ("", None) and refused.hold_amount == 0
