"""An account's statement shows the bank's own bookings beside the card transactions: a load
(``accounts fund``), a take-off, a ledger balance sync (from the API and from a ledger file),
so that its opening balance plus its lines' balance changes is its closing balance, and one
period's closing balance is the next one's opening. Over a running host, on both stores.
The movements feed does not list the bookings: they are the bank's ledger's own."""

from __future__ import annotations

import time
from typing import Any

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture
from test_e2e_ledger_sync import _ledger_feed


async def _statement(port: int, account: str, since: float, until: float) -> dict[str, Any]:
    got = await call(
        port, "GET", f"/v1/accounts/{account}/statement?since={since}&until={until}",
        token=AUDITOR_TOKEN,
    )  # fmt: skip
    assert got.status == 200, got
    return got.json


def _adds_up(statement: dict[str, Any]) -> None:
    """Opening + each line's change = its running balance; the last one = closing."""
    balance = statement["opening_balance_minor"]
    for line in statement["lines"]:
        balance += line["balance_delta_minor"]
        assert line["balance_after_minor"] == balance, line
    assert balance == statement["closing_balance_minor"]


async def test_a_statement_shows_loads_and_ledger_syncs_and_adds_up(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    account = visa["account"]
    since = time.time()
    assert (await switch.send(purchase(visa, amount=2_000, t="0200")))["39"] == "00"
    load = await call(port, "POST", f"/v1/accounts/{account}/funds",
                      payload={"amount_minor": 10_000, "reason": "top-up"})  # fmt: skip
    assert load.status == 200, load
    fee = await call(port, "POST", f"/v1/accounts/{account}/funds",
                     payload={"amount_minor": -150, "reason": "card fee"})  # fmt: skip
    assert fee.status == 200, fee
    assert (await switch.send(purchase(visa, amount=1_000)))["39"] == "00"  # a hold: no change
    middle = time.time()

    feed = await _ledger_feed(at, store_url, 0)
    mine = [m for m in feed["movements"] if m["account_id"] == account]
    assert [m["movement"] for m in mine] == ["post", "hold"]  # no booking in the feed
    before_sync = (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"]
    # the bank's ledger: the host's balance plus a salary the bank booked itself
    synced = await call(port, "POST", f"/v1/accounts/{account}/ledger-balance",
                        payload={"ledger_balance_minor": before_sync + 50_000,
                                 "through_journal_id": feed["next_after_id"],
                                 "reason": "end of day"})  # fmt: skip
    assert synced.status == 200, synced
    assert (await switch.send(purchase(visa, amount=700, t="0200")))["39"] == "00"
    now = (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"]
    ledger_file = tmp_path / "balances.csv"
    later = await _ledger_feed(at, store_url, 0)
    ledger_file.write_text(
        "account_id,ledger_balance_minor,through_journal_id,reason\n"
        f"{account},{now - 300},{later['next_after_id']},nightly\n"  # a 3.00 fee booked
    )
    code, out = await run_cli("accounts", "ledger-file", str(ledger_file),
                              "--config", str(cli_config(tmp_path, store_url)))  # fmt: skip
    assert code == 0, out
    until = time.time() + 1
    closing_now = (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"]
    assert closing_now == now - 300

    whole = await _statement(port, account, since, until)
    _adds_up(whole)
    assert whole["closing_balance_minor"] == closing_now  # before: no balances at all
    moved = [(ln["movement"], ln["balance_delta_minor"]) for ln in whole["lines"]]
    assert moved == [
        ("post", -2_000), ("funds", 10_000), ("funds", -150), ("hold", 0),
        ("ledger_sync", 50_000), ("post", -700), ("ledger_sync", -300),
    ]  # fmt: skip
    assert whole["opening_balance_minor"] == closing_now - sum(d for _, d in moved)
    bookings = [ln for ln in whole["lines"] if ln["journal_id"] is None]
    assert [ln["reason"] for ln in bookings] == ["top-up", "card fee", "end of day", "nightly"]
    assert bookings[2]["ledger_balance_minor"] == before_sync + 50_000
    assert whole["bookings"]["funds"] == {"count": 2, "balance_delta_minor": 9_850}
    assert whole["bookings"]["ledger_sync"] == {"count": 2, "balance_delta_minor": 49_700}
    assert whole["posted"] == {"count": 2, "amount_minor": 2_700}  # the card's, as before

    first, second = (await _statement(port, account, since, middle),
                     await _statement(port, account, middle, until))  # fmt: skip
    for part in (first, second):
        _adds_up(part)
    assert first["opening_balance_minor"] == whole["opening_balance_minor"]
    assert first["closing_balance_minor"] == second["opening_balance_minor"]
    assert second["closing_balance_minor"] == closing_now
    assert [ln["movement"] for ln in second["lines"]] == ["ledger_sync", "post", "ledger_sync"]
