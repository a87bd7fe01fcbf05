"""The bank's ledger and the host's balance kept together, over a running host on both stores:
a core banking system posts the movements feed (each movement's balance_delta_minor), books a
salary of its own and sends its ledger balance through the feed's cursor; the host's balance
becomes that plus what it journalled after the cursor, a stale cursor is refused, and the
CLI does the same, from a command or a file of every account's balance."""

from __future__ import annotations

import time

from host_admin import cli_config, run_cli, visa_at_host
from iso_client import next_stan
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import field_90, purchase, store_url  # noqa: F401 - fixture

from authhost.admin.service import CardService
from authhost.security.module import SecurityModule
from authhost.store import opened_store


async def _ledger_feed(at, url: str, after_id: int) -> dict:
    """The movements feed as the bank's ledger polls it, a little later (all settled)."""
    security = SecurityModule.open(at.host.config.security, demo=True)
    async with opened_store(url) as store:
        later = CardService(store, security, clock=lambda: time.time() + 10)
        return await later.money_movements(after_id, 1000)


async def test_the_balance_follows_the_ledger_and_what_came_after_its_cursor(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    account = visa["account"]
    before = (await call(port, "GET", f"/v1/accounts/{account}")).json
    opening = before["balance"]
    assert before["ledger_sync"] is None  # never synchronised

    bought = purchase(visa, amount=2_000, t="0200")
    held = purchase(visa, amount=1_000)
    traffic = [
        bought,
        {**bought, "t": "0400", "11": next_stan(), "90": field_90(bought)},  # money back
        purchase(visa, amount=700, t="0200"),
        purchase(visa, amount=300, t="0200", **{"3": "200000"}),  # a refund
        held,
        {**held, "t": "0400", "11": next_stan(), "90": field_90(held)},  # a hold freed
    ]
    for fields in traffic:
        assert (await switch.send(fields))["39"] == "00"

    feed = await _ledger_feed(at, store_url, 0)
    mine = [m for m in feed["movements"] if m["account_id"] == account]
    deltas = [(m["movement"], m["balance_delta_minor"]) for m in mine]
    assert deltas == [("post", -2_000), ("release", 2_000), ("post", -700), ("credit", 300),
                      ("hold", 0), ("release", 0)]  # fmt: skip
    ledger = opening + sum(d for _, d in deltas)  # what the bank's ledger booked
    host_balance = (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"]
    assert host_balance == ledger  # the feed alone gives the ledger the host's balance
    cursor = feed["next_after_id"]

    assert (await switch.send(purchase(visa, amount=450, t="0200")))["39"] == "00"  # after it
    salary = 50_000  # booked by the bank itself, never seen by the host
    sync = f"/v1/accounts/{account}/ledger-balance"
    body = {"ledger_balance_minor": ledger + salary, "through_journal_id": cursor}
    synced = await call(port, "POST", sync, payload={**body, "reason": "end of day"})
    assert synced.status == 200, synced
    assert (synced.json["after_minor"], synced.json["entries_after"]) == (-450, 1)
    assert synced.json["ledger_sync"]["through_journal_id"] == cursor
    assert synced.json["balance"] == ledger + salary - 450
    now = (await call(port, "GET", f"/v1/accounts/{account}")).json
    assert now["balance"] == ledger + salary - 450 and now["open_to_buy"] == now["balance"]
    assert now["ledger_sync"]["through_journal_id"] == cursor
    assert now["ledger_sync"]["ledger_balance_minor"] == ledger + salary

    stale = await call(port, "POST", sync, payload={**body, "through_journal_id": cursor - 1})
    assert stale.status == 409 and "older" in stale.json["error"]
    for bad in ({"ledger_balance_minor": 1}, {**body, "through_journal_id": -1}):
        refused = await call(port, "POST", sync, payload=bad)
        assert refused.status == 422 and "Traceback" not in refused.body.decode()
    missing = await call(port, "POST", "/v1/accounts/nope/ledger-balance", payload=body)
    assert missing.status == 404
    audit = await call(port, "GET", f"/v1/audit?subject={account}", token=AUDITOR_TOKEN)
    assert [a["action"] for a in audit.json["audit"]].count("account.ledger_sync") == 1

    later = await _ledger_feed(at, store_url, cursor)  # the next day's posting run
    (last,) = [m for m in later["movements"] if m["account_id"] == account]
    code, out = await run_cli(
        "accounts", "ledger-balance", account, str(ledger + salary - 450),
        "--through", str(later["next_after_id"]),
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 0, out
    assert last["balance_delta_minor"] == -450 and '"entries_after": 0' in out
    assert (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"] == (
        ledger + salary - 450
    )

    # the nightly file: a row per account; bad rows reported by line, the good ones applied
    ledger_file = tmp_path / "ledger.csv"
    ledger_file.write_text(
        "account_id,ledger_balance_minor,through_journal_id,reason\n"
        f"{account},77000,{later['next_after_id']},close of 2026-11-27\n"
        f"nope,1,{later['next_after_id']},\n"
        f"{account},5,{cursor - 1},\n"
        f"{account},ten,{later['next_after_id']},\n"
        f"{account},5\n"
    )
    out_file = tmp_path / "ledger-results.csv"
    code, out = await run_cli(
        "accounts", "ledger-file", str(ledger_file), "--results", str(out_file),
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 1
    assert f"{ledger_file}:3: account nope not found" in out
    assert f"{ledger_file}:4:" in out and "older" in out
    assert f"{ledger_file}:5: invalid request: ledger_balance_minor" in out
    assert f"{ledger_file}:6: expected 4 cells, found 2" in out
    assert "5 row(s): 1 synchronised, 4 failed" in out
    assert (await call(port, "GET", f"/v1/accounts/{account}")).json["balance"] == 77_000
    lines = out_file.read_text().splitlines()
    assert lines[0] == "line,account_id,balance,error" and lines[1] == f"2,{account},77000,"
    audit = await call(port, "GET", f"/v1/audit?subject={account}", token=AUDITOR_TOKEN)
    reasons = [a["after"] for a in audit.json["audit"] if a["action"] == "account.ledger_sync"]
    assert any("close of 2026-11-27" in str(r) for r in reasons)
