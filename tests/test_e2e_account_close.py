"""Closing an account over a running host, on both stores: refused while it holds money for
a pending authorisation, has a balance or an open dispute (each with the reason), then every
live card on it is cancelled and answers 62 from the next request; audited."""

from __future__ import annotations

from host_admin import visa_at_host
from iso_client import next_stan
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import field_90, purchase, store_url  # noqa: F401 - fixture

from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def test_an_account_closes_once_nothing_is_held_owed_or_disputed(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa, card_id = at.port, at.switch, at.visa, at.card_id
    account = visa["account"]
    close = f"/v1/accounts/{account}/close"

    held = purchase(visa, amount=1_000)
    assert (await switch.send(held))["39"] == "00"
    refused = await call(port, "POST", close)
    assert refused.status == 409 and "pending authorisations" in refused.json["error"]
    reversal = {**held, "t": "0400", "11": next_stan(), "90": field_90(held)}
    assert (await switch.send(reversal))["39"] == "00"

    charged = await switch.send(purchase(visa, amount=2_000, t="0200"))
    async with opened_store(store_url) as store:
        [charge] = [e for e in await store.journal(JournalQuery(card_id=card_id, limit=100))
                    if e.stan == charged["11"]]  # fmt: skip
    dispute = await call(port, "POST", f"/v1/cards/{card_id}/journal/{charge.journal_id}/dispute",
                         payload={"reason": "not_received", "provisional_credit": False})  # fmt: skip
    assert dispute.status == 200, dispute
    refused = await call(port, "POST", close)
    assert refused.status == 409 and "balance" in refused.json["error"]
    balance = (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"]
    paid_out = await call(port, "POST", f"/v1/accounts/{account}/funds",
                          payload={"amount_minor": -balance, "reason": "paid out"})  # fmt: skip
    assert paid_out.status == 200 and paid_out.json["balance"] == 0
    refused = await call(port, "POST", close)
    assert refused.status == 409 and dispute.json["dispute_id"] in refused.json["error"]
    withdrawn = await call(port, "POST", f"/v1/disputes/{dispute.json['dispute_id']}/resolve",
                           payload={"outcome": "withdrawn"})  # fmt: skip
    assert withdrawn.status == 200

    closed = await call(port, "POST", close, payload={"reason": "customer left"})
    assert closed.status == 200, closed
    assert card_id in closed.json["cancelled_cards"]
    cards = (await call(port, "GET", f"/v1/cards?account_id={account}&limit=1000")).json["cards"]
    assert {c["state"] for c in cards} <= {"closed", "lost", "stolen", "damaged", "expired",
                                           "replaced"}  # fmt: skip
    assert (await switch.send(purchase(visa)))["39"] == "62"
    audit = await call(port, "GET", f"/v1/audit?subject={account}", token=AUDITOR_TOKEN)
    assert "account.close" in [a["action"] for a in audit.json["audit"]]
    assert (await call(port, "POST", "/v1/accounts/nope/close")).status == 404


async def test_no_card_is_issued_replaced_or_moved_onto_a_closed_account(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Closing cancels the live cards; a card made or moved onto the account afterwards would
    spend again on an account the bank has settled (a credit one keeps its limit)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port = at.port
    made = await call(port, "POST", "/v1/accounts", payload={
        "account_id": "acc-gone", "currency": "978", "kind": "credit", "credit_limit": 100_000})  # fmt: skip
    assert made.status == 201, made
    issue = {"product_id": "demo-visa-credit", "account_id": "acc-gone"}
    lost_id = (await call(port, "POST", "/v1/cards", payload=issue)).json["card_id"]
    for action in ("ship", "activate", "report-lost"):
        assert (await call(port, "POST", f"/v1/cards/{lost_id}/{action}")).status == 200
    credit_id = (await call(port, "POST", "/v1/cards", payload=dict(issue, account_id=
        at.host.cards["active-credit"]["account"]))).json["card_id"]  # fmt: skip
    closed = await call(port, "POST", "/v1/accounts/acc-gone/close")
    assert closed.status == 200, closed

    issued = await call(port, "POST", "/v1/cards", payload=issue)
    assert issued.status == 409 and "acc-gone was closed at" in issued.json["error"], issued
    replaced = await call(port, "POST", f"/v1/cards/{lost_id}/replace")  # the lost card's
    assert replaced.status == 409 and "closed" in replaced.json["error"], replaced
    moved = await call(port, "POST", f"/v1/cards/{credit_id}/personalise",
                       payload={"account_id": "acc-gone"})  # fmt: skip
    assert moved.status == 409 and "closed" in moved.json["error"], moved
    cards = (await call(port, "GET", "/v1/cards?account_id=acc-gone")).json["cards"]
    assert {c["state"] for c in cards} == {"lost"}  # nothing live came back
    for amount in (5_000, -5_000):  # a payment in or a fee out: the account was settled
        funds = await call(port, "POST", "/v1/accounts/acc-gone/funds",
                           payload={"amount_minor": amount})  # fmt: skip
        assert funds.status == 409 and "acc-gone was closed at" in funds.json["error"], funds
    gone = (await call(port, "GET", "/v1/accounts/acc-gone", token=AUDITOR_TOKEN)).json
    assert gone["balance"] == 0 and gone["open_to_buy"] == made.json["open_to_buy"], gone
    loaded = await call(port, "POST", f"/v1/accounts/{at.visa['account']}/funds",
                        payload={"amount_minor": 5_000})  # fmt: skip
    assert loaded.status == 200, loaded  # an open account still takes money
    view = await call(port, "GET", "/v1/accounts/acc-gone", token=AUDITOR_TOKEN)
    assert view.json["closed_at"] is not None
    open_view = await call(port, "GET", f"/v1/accounts/{at.visa['account']}")
    assert open_view.json["closed_at"] is None
    await at.switch.aclose()


async def test_money_that_reached_a_closed_account_can_be_paid_out(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A load checked while the account was open and written just after its closure (two
    requests at once, or two server processes) leaves money on a closed account: it must
    still be paid out (a change back towards zero), while every other change stays refused,
    or the money would be stuck where no card and no API reaches it."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port = at.port
    made = await call(port, "POST", "/v1/accounts", payload={
        "account_id": "acc-left", "currency": "978", "kind": "debit"})  # fmt: skip
    assert made.status == 201, made
    assert (await call(port, "POST", "/v1/accounts/acc-left/close")).status == 200
    async with opened_store(store_url) as store:  # the racing load lands after the close
        await store.change_funds("acc-left", 7_000)
    funds = "/v1/accounts/acc-left/funds"
    for amount in (1_000, -8_000):  # more money on it, or an overdraft: refused
        refused = await call(port, "POST", funds, payload={"amount_minor": amount})
        assert refused.status == 409 and "acc-left was closed at" in refused.json["error"]
    paid = await call(port, "POST", funds, payload={"amount_minor": -7_000, "reason": "paid out"})
    assert paid.status == 200 and paid.json["balance"] == 0, paid
    refused = await call(port, "POST", funds, payload={"amount_minor": -1})
    assert refused.status == 409, refused


async def test_a_load_made_before_the_closure_and_sent_again_gets_its_first_answer(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The core banking system loaded the account, lost the answer, and resends the load
    with its Idempotency-Key after the bank paid the money out and closed the account: it
    gets the first answer (the load was made once), not a 409 that says it was refused."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port = at.port
    made = await call(port, "POST", "/v1/accounts", payload={
        "account_id": "acc-resent", "currency": "978", "kind": "debit"})  # fmt: skip
    assert made.status == 201, made
    funds = "/v1/accounts/acc-resent/funds"
    once = {"Idempotency-Key": "core-load-1"}
    load = {"amount_minor": 4_000, "reason": "salary"}
    first = await call(port, "POST", funds, payload=load, headers=once)
    assert first.status == 200 and first.json["balance"] == 4_000, first
    paid = await call(port, "POST", funds, payload={"amount_minor": -4_000, "reason": "paid out"})
    assert paid.status == 200, paid
    assert (await call(port, "POST", "/v1/accounts/acc-resent/close")).status == 200

    again = await call(port, "POST", funds, payload=load, headers=once)
    assert again.status == 200 and again.json == first.json, again
    other = await call(port, "POST", funds, payload={**load, "amount_minor": 5_000}, headers=once)
    assert other.status == 409 and "closed" not in other.json["error"], other  # key reused
    new = await call(port, "POST", funds, payload=load, headers={"Idempotency-Key": "core-load-2"})
    assert new.status == 409 and "acc-resent was closed at" in new.json["error"], new
    view = await call(port, "GET", "/v1/accounts/acc-resent", token=AUDITOR_TOKEN)
    assert view.json["balance"] == 0, view  # nothing moved again
