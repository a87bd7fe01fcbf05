"""Funds loads and take-offs from a core banking system over a running host, on both stores: a
load resent with the same Idempotency-Key moves money once (resent one after the other, or
eight at once), the key reused for another request is refused, a take-off never reaches the
money a pending authorisation holds, and what was loaded is spendable over ISO at once."""

from __future__ import annotations

import trio
from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture


async def test_a_resent_load_moves_money_once_and_a_take_off_spares_the_holds(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    account = visa["account"]
    funds = f"/v1/accounts/{account}/funds"
    start = (await call(port, "GET", f"/v1/accounts/{account}")).json
    key = {"Idempotency-Key": "core-credit-20261127-0001"}
    load = {"amount_minor": 12_345, "reason": "salary"}

    answers = [await call(port, "POST", funds, payload=load, headers=key) for _ in range(3)]
    assert {a.status for a in answers} == {200}
    assert answers[0].json == answers[1].json == answers[2].json
    assert answers[0].json["balance"] == start["balance"] + 12_345
    misuse = await call(port, "POST", funds, payload={**load, "amount_minor": 99}, headers=key)
    assert misuse.status == 409 and "Idempotency-Key" in misuse.json["error"]

    burst_key = {"Idempotency-Key": "core-credit-20261127-0002"}
    burst: list[int] = []

    async def resend() -> None:
        reply = await call(port, "POST", funds, payload={"amount_minor": 1_000}, headers=burst_key)
        burst.append(reply.status)

    async with trio.open_nursery() as resends:
        for _ in range(8):
            resends.start_soon(resend)
    assert burst == [200] * 8
    now = (await call(port, "GET", f"/v1/accounts/{account}")).json
    assert now["balance"] == start["balance"] + 12_345 + 1_000
    audit = await call(port, "GET", f"/v1/audit?subject={account}", token=AUDITOR_TOKEN)
    assert [a["action"] for a in audit.json["audit"]].count("account.funds") == 2

    paid_out = await call(port, "POST", funds, payload={"amount_minor": 1_500 - now["balance"]})
    assert paid_out.status == 200 and paid_out.json["open_to_buy"] == 1_500
    now = paid_out.json
    assert (await switch.send(purchase(visa, amount=1_000)))["39"] == "00"  # 5.00 left
    refused = await call(port, "POST", funds, payload={"amount_minor": -501})
    assert refused.status == 409 and "500 available" in refused.json["error"]
    assert (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"] == now["balance"]
    assert (await switch.send(purchase(visa, amount=501)))["39"] == "51"
    code, out = await run_cli(
        "accounts", "fund", account, "501", "--idempotency-key", "core-credit-20261127-0003",
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 0, out
    assert (await switch.send(purchase(visa, amount=1_001)))["39"] == "00"  # the load spends
    code, again = await run_cli(
        "accounts", "fund", account, "501", "--idempotency-key", "core-credit-20261127-0003",
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 0 and again == out  # the first answer, nothing moved
    assert (await switch.send(purchase(visa, amount=1)))["39"] == "51"


async def test_a_debit_account_spends_into_its_arranged_overdraft_and_no_further(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    account = f"/v1/accounts/{visa['account']}"
    now = (await call(port, "GET", account)).json
    paid_out = await call(
        port, "POST", f"{account}/funds", payload={"amount_minor": 300 - now["balance"]}
    )
    assert paid_out.json["open_to_buy"] == 300  # 3.00 left, no overdraft
    assert (await switch.send(purchase(visa, amount=1_000)))["39"] == "51"

    arranged = await call(port, "PUT", f"{account}/credit-limit", payload={"credit_limit": 5_000})
    assert arranged.status == 200 and arranged.json["open_to_buy"] == 5_300
    assert (await switch.send(purchase(visa, amount=1_000, t="0200")))["39"] == "00"
    after = (await call(port, "GET", account)).json
    assert (after["balance"], after["open_to_buy"]) == (-700, 4_300)  # overdrawn by 7.00
    inquiry = await switch.send(purchase(visa, amount=0, **{"3": "310000"}))
    assert inquiry["39"] == "00" and "02978C000000004300" in inquiry["54"]  # available: 43.00
    assert "01978D000000000700" in inquiry["54"]  # the ledger balance: overdrawn by 7.00
    assert (await switch.send(purchase(visa, amount=4_301)))["39"] == "51"
    assert (await switch.send(purchase(visa, amount=4_300)))["39"] == "00"  # to the limit

    withdrawn = await call(port, "PUT", f"{account}/credit-limit", payload={"credit_limit": 0})
    assert withdrawn.json["open_to_buy"] == -700 - 4_300  # what is owed: nothing to spend
    assert (await switch.send(purchase(visa, amount=1)))["39"] == "51"


async def test_an_amount_that_is_not_a_json_integer_moves_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A load of "100.00", 250.0 or true, a ledger balance of "100.00" (in the body or a
    ledger file's cell), a credit limit, an opening balance or a card limit that is not a JSON
    integer, is refused naming the value: they were taken for 100, 250 and 1 minor units, a
    hundredth of what a core system writing major units meant."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    account = at.visa["account"]
    start = (await call(at.port, "GET", f"/v1/accounts/{account}")).json["balance"]
    funds, ledger = f"/v1/accounts/{account}/funds", f"/v1/accounts/{account}/ledger-balance"
    for amount in ("100.00", "100", 250.0, True):
        refused = await call(at.port, "POST", funds, payload={"amount_minor": amount})
        assert refused.status == 422 and "is not a whole number" in refused.json["error"], amount
        synced = {"ledger_balance_minor": amount, "through_journal_id": 0}
        refused = await call(at.port, "POST", ledger, payload=synced)
        assert refused.status == 422 and "is not a whole number" in refused.json["error"], amount
    rows = tmp_path / "ledger.csv"
    rows.write_text(f"account_id,ledger_balance_minor,through_journal_id\n{account},100.00,0\n")
    code, out = await run_cli("accounts", "ledger-file", str(rows),
                              "--config", str(cli_config(tmp_path, store_url)))  # fmt: skip
    assert code == 1 and "'100.00' is not a whole number" in out, out
    assert (await call(at.port, "GET", f"/v1/accounts/{account}")).json["balance"] == start
    loaded = await call(at.port, "POST", funds, payload={"amount_minor": 10_000})
    assert loaded.status == 200 and loaded.json["balance"] == start + 10_000
    # the same for every amount of an account's or a card's: a credit limit, an opening
    # balance, a limit
    limit = await call(at.port, "PUT", f"/v1/accounts/{account}/credit-limit",
                       payload={"credit_limit": "750.00"})  # fmt: skip
    assert limit.status == 422 and "'750.00' is not a whole number" in limit.json["error"]
    opened = await call(at.port, "POST", "/v1/accounts",
                        payload={"account_id": "acc-major", "balance": 100.0})  # fmt: skip
    assert opened.status == 422 and "100.0 is not a whole number" in opened.json["error"]
    assert (await call(at.port, "GET", "/v1/accounts/acc-major")).status == 404
    card_limits = await call(at.port, "PUT", f"/v1/cards/{at.card_id}/limits",
                             payload={"daily_amount": "500"})  # fmt: skip
    assert card_limits.status == 422, card_limits
