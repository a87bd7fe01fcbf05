"""An account's balance stays within 10^15 minor units either way, on both stores: loads over the
admin API past it are refused (409, the account unchanged), and so are refunds and transfers
over ISO 8583 that would credit past it (61, journalled with the reason).

Before the bound, loads of 10^15 each answered 200 until the balance passed 64 bits: SQLite
then kept it as a float (9.231e+18), every later change answered 200 and changed nothing."""

from __future__ import annotations

import os

import pytest
from host_admin import visa_at_host
from iso_client import Switch
from test_admin_support import call, open_service, running_admin
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture
from test_e2e_credits import reasons_by_stan, transfer

BOUND = 10**15  # the documented bound (docs/admin.md, "Accounts and money")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_loads_past_the_bound_are_refused_and_the_balance_stays_exact(tmp_path, backend):
    redis_url = os.environ.get("AUTHHOST_TEST_REDIS_URL") if backend == "redis" else None
    if backend == "redis" and redis_url is None:
        pytest.skip("AUTHHOST_TEST_REDIS_URL is not set")
    async with (
        open_service(tmp_path, backend, redis_url) as service,
        running_admin(service) as port,
    ):
        assert (await call(port, "POST", "/v1/accounts", payload={"account_id": "ovf-1"})).status
        funds = "/v1/accounts/ovf-1/funds"
        first = await call(port, "POST", funds, payload={"amount_minor": BOUND})
        assert first.status == 200 and first.json["balance"] == BOUND, first
        for amount in (BOUND, 1):
            over = await call(port, "POST", funds, payload={"amount_minor": amount})
            assert over.status == 409, over
            assert "1,000,000,000,000,000 either way" in over.json["error"], over.json
            assert "nothing changed" in over.json["error"]
        assert (await call(port, "GET", "/v1/accounts/ovf-1")).json["balance"] == BOUND
        back = await call(port, "POST", funds, payload={"amount_minor": -1})
        assert back.status == 200 and back.json["balance"] == BOUND - 1, back
        audit = await call(port, "GET", "/v1/audit?subject=ovf-1")
        assert [a["action"] for a in audit.json["audit"]].count("account.funds") == 2

        # a credit account: payments beyond what is owed are a credit balance, bound too
        made = await call(port, "POST", "/v1/accounts",
                          payload={"account_id": "ovf-2", "kind": "credit"})  # fmt: skip
        assert made.status == 201, made
        paid = await call(port, "POST", "/v1/accounts/ovf-2/funds",
                          payload={"amount_minor": BOUND})  # fmt: skip
        assert paid.status == 200 and paid.json["balance"] == -BOUND, paid
        over = await call(port, "POST", "/v1/accounts/ovf-2/funds", payload={"amount_minor": 1})
        assert over.status == 409 and "beyond the most" in over.json["error"], over
        assert (await call(port, "GET", "/v1/accounts/ovf-2")).json["balance"] == -BOUND


async def test_a_credit_over_iso_past_the_bound_is_declined_61_and_journalled(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    account = f"/v1/accounts/{visa['account']}"
    now = (await call(port, "GET", account)).json
    assert now["holds"] == 0
    topped = await call(port, "POST", f"{account}/funds",
                        payload={"amount_minor": BOUND - 500 - now["balance"]})  # fmt: skip
    assert topped.status == 200 and topped.json["balance"] == BOUND - 500, topped

    fits = await switch.send(purchase(visa, amount=500, **{"3": "200000", "t": "0200"}))
    assert fits["39"] == "00"  # a refund to the bound itself
    refund = await switch.send(purchase(visa, amount=1, **{"3": "200000", "t": "0200"}))
    assert refund["39"] == "61" and not refund.get("38"), refund
    sent = await switch.send(transfer(visa, 100))
    assert sent["39"] == "61", sent
    after = (await call(port, "GET", account)).json  # (field 54 shows 12 digits at most)
    assert (after["balance"], after["open_to_buy"]) == (BOUND, BOUND)  # nothing moved
    reasons = await reasons_by_stan(store_url)
    assert reasons[refund["11"]].split(";")[-1] == "funds.balance_bound"
    assert reasons[sent["11"]].split(";")[-1] == "funds.balance_bound"

    spent = await switch.send(purchase(visa, amount=100, t="0200"))
    assert spent["39"] == "00"
    again = await Switch.connect(at.host.port)  # room again for a refund of what was spent
    back = await again.send(purchase(visa, amount=100, **{"3": "200000", "t": "0200"}))
    assert back["39"] == "00"
    assert (await call(port, "GET", account)).json["balance"] == BOUND
