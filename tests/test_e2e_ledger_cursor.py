"""A ledger balance through a journal id the journal has not reached is refused, over a running
host on both stores: kept, it would have made every real sync after it look older (409)."""

from __future__ import annotations

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture
from test_e2e_ledger_sync import _ledger_feed


async def test_a_cursor_beyond_the_newest_journal_entry_is_refused_and_changes_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    account = at.visa["account"]
    assert (await at.switch.send(purchase(at.visa, amount=1_000, t="0200")))["39"] == "00"
    cursor = (await _ledger_feed(at, store_url, 0))["next_after_id"]
    assert cursor > 0
    sync = f"/v1/accounts/{account}/ledger-balance"

    errors = []
    for beyond in (cursor + 1_000_000, 10**15, 4611686018427387904):
        body = {"ledger_balance_minor": 5_000, "through_journal_id": beyond}
        refused = await call(at.port, "POST", sync, payload=body)
        assert refused.status == 422, (beyond, refused)
        errors.append(refused.json["error"])
    assert "beyond the journal" in errors[0] and "beyond the journal" in errors[1], errors
    assert "1,000,000,000,000,000" in errors[2] and "******" not in str(errors), errors
    code, out = await run_cli(
        "accounts", "ledger-balance", account, "5000", "--through", str(cursor + 1_000_000),
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 1 and "beyond the journal" in out, out
    view = (await call(at.port, "GET", f"/v1/accounts/{account}")).json
    assert view["ledger_sync"] is None

    synced = await call(at.port, "POST", sync,
                        payload={"ledger_balance_minor": 5_000, "through_journal_id": cursor})  # fmt: skip
    assert synced.status == 200, synced
    assert synced.json["ledger_sync"]["through_journal_id"] == cursor
