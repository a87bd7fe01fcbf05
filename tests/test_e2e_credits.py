"""Money to the card over a running host, on both stores: a transfer to the card (Visa's
original credit, processing code 26; Mastercard's payment transaction, 28) is credited at once
whatever the product's channels and blocks, a prepaid programme's maximum balance refuses one
that would exceed it (61), neither a transfer nor a refund uses up the cardholder's spending
limits (they are no velocity events), and a reversed credit is taken back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from host_admin import start_host_with_admin
from iso_client import Switch, next_stan
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import (  # noqa: F401 - store_url is a fixture
    balances_of,
    field_90,
    purchase,
    store_url,
    with_pin,
)
from test_e2e_pin_mailer import new_cards

from authhost.store import opened_store
from authhost.store.interface import JournalQuery


def transfer(card: dict, amount: int, code: str = "26") -> dict:
    """A transfer to the card as the network sends it: 0200, the PAN and expiry, no card data."""
    fields = purchase(card, amount=amount, **{"3": f"{code}0000", "18": "4829", "22": "010",
                                               "35": None, "14": card["expiry"]})  # fmt: skip
    return {**fields, "t": "0200", "2": card["pan"]}


async def reasons_by_stan(url: str) -> dict[str, str]:
    async with opened_store(url) as store:
        return {e.stan: e.reason_codes for e in await store.journal(JournalQuery(limit=1000))}


@pytest.mark.parametrize("code", ["26", "28"])
async def test_a_transfer_to_the_card_is_credited_at_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    code,
):
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]  # debit, account demo-acc-1
    ledger, available = await balances_of(switch, card)
    reply = await switch.send(transfer(card, 30_000, code))
    assert reply["39"] == "00" and reply.get("38")
    assert await balances_of(switch, card) == (ledger + 30_000, available + 30_000)
    async with opened_store(store_url) as store:
        (entry,) = [e for e in await store.journal(JournalQuery(limit=1000))
                    if e.stan == reply["11"]]  # fmt: skip
    assert entry.movement == "credit" and entry.amount_minor == 30_000
    assert (await switch.send(transfer(host.cards["lost"], 1_000, code)))["39"] == "41"


async def test_credits_do_not_use_up_the_spending_limits(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The demo Visa debit product allows 5,000.00 a day in 30 purchases: three refunds and a
    transfer of 1,500.00 each leave all of it to spend (they once counted as spending)."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    for _ in range(3):
        refund = purchase(card, amount=150_000, **{"3": "200000", "t": "0200"})
        assert (await switch.send(refund))["39"] == "00"
    assert (await switch.send(transfer(card, 150_000)))["39"] == "00"
    spent = [(await switch.send(purchase(card, amount=amount)))["39"]
             for amount in (200_000, 200_000, 100_000)]  # fmt: skip
    assert spent == ["00", "00", "00"]  # 5,000.00: the daily limit, all of it
    over = await switch.send(purchase(card, amount=100))
    assert over["39"] == "61"
    assert "limits.daily_amount" in (await reasons_by_stan(store_url))[over["11"]]


async def test_a_prepaid_programme_caps_what_a_card_may_receive(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    product = {"product_id": "prepaid", "issuer_id": "e2e", "name": "Prepaid", "bin": "476173",
               "kind": "prepaid", "channels": ["pos"], "blocked_mccs": ["4829"],
               "limits": {"max_balance": 100_000}}  # fmt: skip
    assert (await call(port, "POST", "/v1/products", payload=product)).status == 201
    account = {"account_id": "prepaid-acc", "kind": "prepaid", "balance": 90_000}
    assert (await call(port, "POST", "/v1/accounts", payload=account)).status == 201
    (card,) = await new_cards(host, 1, "prepaid", "prepaid-acc")
    for action in ("ship", "activate"):
        assert (await call(port, "POST", f"/v1/cards/{card['card_id']}/{action}")).status == 200

    too_much = await switch.send(transfer(card, 10_001))
    assert too_much["39"] == "61"
    assert "limits.max_balance" in (await reasons_by_stan(store_url))[too_much["11"]]
    # the channel (no e-commerce) and the blocked MCC (money transfers) do not apply to it
    assert (await switch.send(transfer(card, 10_000)))["39"] == "00"
    assert (await switch.send(transfer(card, 1, "28")))["39"] == "61"
    refund = purchase(card, amount=500, **{"3": "200000", "t": "0200", "11": next_stan()})
    assert (await switch.send(refund))["39"] == "00"  # a refund is the merchant's money back


async def test_a_reversed_credit_is_taken_back(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A transfer or refund the network reverses (0400 naming it in field 90) is taken back
    from the account, in part when field 95 says what stays; a repeated reversal takes nothing
    more; the day's totals count it apart from the reversals that release money."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    ledger, available = await balances_of(switch, card)
    sent = transfer(card, 40_000)
    assert (await switch.send(sent))["39"] == "00"
    reversal = {**sent, "t": "0400", "11": next_stan(), "90": field_90(sent)}
    assert (await switch.send(reversal))["39"] == "00"
    assert await balances_of(switch, card) == (ledger, available)  # taken back
    again = {**reversal, "11": next_stan()}
    assert (await switch.send(again))["39"] == "00"
    assert await balances_of(switch, card) == (ledger, available)  # nothing more

    refund = purchase(card, amount=10_000, **{"3": "200000", "t": "0200"})
    assert (await switch.send(refund))["39"] == "00"
    partial = {**refund, "t": "0400", "11": next_stan(), "90": field_90(refund),
               "95": f"{4_000:012d}" + "0" * 30}  # fmt: skip
    assert (await switch.send(partial))["39"] == "00"  # 40.00 of the 100.00 refund stays
    assert await balances_of(switch, card) == (ledger + 4_000, available + 4_000)

    day = time.strftime("%Y-%m-%d", time.gmtime())
    totals = await call(port, "GET", f"/v1/journal/totals?day={day}", token=AUDITOR_TOKEN)
    (euros,) = [c for c in totals.json["currencies"] if c["currency"] == "978"]
    assert euros["taken_back"] == {"count": 2, "amount_minor": 46_000}
    assert euros["credited"] == {"count": 2, "amount_minor": 50_000}
    assert euros["net_posted_minor"] == euros["posted"]["amount_minor"] - 50_000 + 46_000


async def test_an_account_funding_transaction_is_spending(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Visa's AFT (processing code 10): the card pays into a transfer. It is held and limited
    as a purchase is."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    ledger, available = await balances_of(switch, card)
    funding = purchase(card, amount=20_000, **{"3": "100000", "18": "4829"})
    assert (await switch.send(funding))["39"] == "00"
    assert await balances_of(switch, card) == (ledger, available - 20_000)  # held
    too_big = purchase(card, amount=200_001, **{"3": "100000", "18": "4829"})
    reply = await switch.send(too_big)
    assert reply["39"] == "61"  # the product's per-transaction limit, as for a purchase
    assert "limits.per_transaction" in (await reasons_by_stan(store_url))[reply["11"]]


async def test_a_cash_deposit_at_an_atm_is_credited(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Processing code 21 at an ATM with the PIN: credited at once (a cash-recycling ATM
    counted the notes), checked as a use of the card (its channels apply), and taken back
    when reversed."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    ledger, available = await balances_of(switch, card)
    deposit = with_pin(purchase(card, amount=10_000, **{"3": "210000", "18": "6011",
                                                        "t": "0200"}), host, card, card["pin"])  # fmt: skip
    assert (await switch.send(deposit))["39"] == "00"
    assert await balances_of(switch, card) == (ledger + 10_000, available + 10_000)
    wrong = "9999" if card["pin"] != "9999" else "8888"
    bad_pin = with_pin(purchase(card, amount=10_000, **{"3": "210000", "18": "6011",
                                                        "t": "0200"}), host, card, wrong)  # fmt: skip
    assert (await switch.send(bad_pin))["39"] == "55"
    reversal = {**deposit, "t": "0400", "11": next_stan(), "90": field_90(deposit)}
    assert (await switch.send(reversal))["39"] == "00"
    assert await balances_of(switch, card) == (ledger, available)

    product = {"product_id": "no-atm", "issuer_id": "e2e", "name": "No ATM", "bin": "476173",
               "channels": ["pos"]}  # fmt: skip
    assert (await call(port, "POST", "/v1/products", payload=product)).status == 201
    (pos_only,) = await new_cards(host, 1, "no-atm")
    for action in ("ship", "activate"):
        assert (await call(port, "POST", f"/v1/cards/{pos_only['card_id']}/{action}")).status == 200
    at_atm = purchase(pos_only, amount=5_000, **{"3": "210000", "18": "6011", "t": "0200"})
    reply = await switch.send(at_atm)
    assert reply["39"] == "57"  # the product allows no ATM: not for deposits either
    assert "controls.channel_atm" in (await reasons_by_stan(store_url))[reply["11"]]


async def test_the_transfer_rules_stop_funding_from_a_fresh_card(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """examples/rules/transfer_rules.toml on a running host: account funding of 300.00 from a
    card with no purchases is declined 59, a purchase from it is not; a large transfer to a
    card days old is approved and flagged for review."""
    rules = Path(__file__).parent.parent / "examples" / "rules" / "transfer_rules.toml"
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url, rules=rules.read_text())
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa-low"]  # 50.00 on its account, never used
    funding = purchase(card, amount=30_000, **{"3": "100000", "18": "4829"})
    reply = await switch.send(funding)
    assert reply["39"] == "59"
    assert "aft.no_history" in (await reasons_by_stan(store_url))[reply["11"]]
    assert (await switch.send(purchase(card, amount=1_000)))["39"] == "00"
    paid = await switch.send(transfer(card, 150_000))
    assert paid["39"] == "00"
    async with opened_store(store_url) as store:
        (entry,) = [e for e in await store.journal(JournalQuery(limit=1000))
                    if e.stan == paid["11"]]  # fmt: skip
    assert entry.review and "oct.young_card" in entry.reason_codes


async def test_the_mule_rules_stop_a_card_emptied_after_it_was_paid(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """examples/rules/transfer_rules.toml's MULE rules on a running host read the money the
    card received (card.received_amount_24h, card.seconds_since_received): a transfer of
    800.00 to a card, then cash of 450.00 at the ATM is declined 59; 100.00 is approved and
    flagged, and 300.00 more (410.00 out of 800.00 today) declined; a purchase is neither."""
    rules = Path(__file__).parent.parent / "examples" / "rules" / "transfer_rules.toml"
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url, rules=rules.read_text())
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa-low"]  # 50.00 on its account

    def cash(amount: int) -> dict:
        atm = purchase(card, amount=amount, **{"3": "010000", "18": "6011", "t": "0200"})
        return with_pin(atm, host, card, card["pin"])

    before = await switch.send(cash(1_000))  # nothing received yet: the rules stay silent
    assert before["39"] == "00"
    assert (await switch.send(transfer(card, 80_000)))["39"] == "00"
    emptied = await switch.send(cash(45_000))
    assert emptied["39"] == "59"
    small = await switch.send(cash(10_000))
    assert small["39"] == "00"
    assert (await switch.send(cash(30_000)))["39"] == "59"  # in several goes: the same
    bought = await switch.send(purchase(card, amount=2_000))
    assert bought["39"] == "00"
    reasons = await reasons_by_stan(store_url)
    assert "mule.cash_out" in reasons[emptied["11"]]
    assert "mule.fast_out" in reasons[small["11"]]
    assert "mule.cash_out" not in reasons[small["11"]]
    assert not any(r.startswith("mule.") for r in reasons[bought["11"]] + reasons[before["11"]])


async def test_a_refund_reaches_a_blocked_cards_account_but_never_a_closed_one(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A merchant's refund to a card reported lost or stolen, suspended or expired is the
    cardholder's money: it is credited to the account (which all these demo cards share with
    active-visa) and journalled with why; a purchase on the same cards still declines, and a
    refund to a closed card is declined 62."""
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    active = host.cards["active-visa"]
    ledger, available = await balances_of(switch, active)
    credited = 0
    refunded: dict[str, str] = {}
    for name, purchase_code in (("lost", "41"), ("stolen", "43"), ("suspended", "62"),
                                ("expired", "54")):  # fmt: skip
        card = host.cards[name]
        refund = purchase(card, amount=1_234, **{"3": "200000", "t": "0200"})
        reply = await switch.send(refund)
        assert reply["39"] == "00", name
        refunded[name] = reply["11"]
        credited += 1_234
        assert (await switch.send(purchase(card, amount=100)))["39"] == purchase_code, name
    closed = purchase(host.cards["closed"], amount=1_234, **{"3": "200000", "t": "0200"})
    assert (await switch.send(closed))["39"] == "62"
    assert await balances_of(switch, active) == (ledger + credited, available + credited)
    reasons = await reasons_by_stan(store_url)
    assert "card.refund_when_lost" in reasons[refunded["lost"]]
    assert "card.refund_when_stolen" in reasons[refunded["stolen"]]
    assert "card.refund_when_suspended" in reasons[refunded["suspended"]]
    assert "card.refund_when_expired" in reasons[refunded["expired"]]
