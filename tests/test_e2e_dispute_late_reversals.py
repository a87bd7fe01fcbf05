"""A reversal that comes after the charge's dispute was resolved, over a running host on both
stores: the chargeback stood for what the charge took then, so the acquirer would pay the
reversed part twice; the chargebacks file recalls it (a recall line on the reversal's day, for
what the issuer holds of the chargeback beyond what the charge still takes), without writing
the closed dispute. A reversal the resolution counted gets no second line."""

from __future__ import annotations

import csv
import time

from host_admin import cli_config, run_cli
from test_admin_support import AUDITOR_TOKEN, call
from test_dispute_stage_amounts import _step
from test_e2e_auth import store_url  # noqa: F401 - fixture
from test_e2e_dispute_reversals import _disputed, _host_that_waits, _reversal
from test_e2e_dispute_stages import _audit_actions, _dispute


async def test_a_reversal_after_the_resolution_is_recalled_in_the_chargebacks_file(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    port = at.port
    since = int(time.time()) - 1
    won_fields, lost_fields, counted_fields, won, lost, counted = await _disputed(
        at, store_url, 5_000, 4_000, 3_000
    )
    won_id, lost_id, counted_id = won["dispute_id"], lost["dispute_id"], counted["dispute_id"]
    for dispute_id in (won_id, lost_id, counted_id):
        await _step(port, dispute_id, "chargeback")
    await _step(port, lost_id, "represented", {"reference": "REP-5", "amount_minor": 3_000})
    # reversed in part while open: the resolution counts it and lowers the chargeback itself
    assert (await at.switch.send(_reversal(counted_fields, amount_left=2_000)))["39"] == "00"
    await _step(port, won_id, "resolve", {"outcome": "won"})
    await _step(port, lost_id, "resolve", {"outcome": "lost"})  # keeps 1,000: the issuer's
    counted_won = await _step(port, counted_id, "resolve", {"outcome": "won"})
    assert counted_won["recalls"][0]["amount_minor"] == 1_000
    closed = {
        i: (await _dispute(port, i), await _audit_actions(port, i)) for i in (won_id, lost_id)
    }

    # after the resolutions: 2,000 of the won charge reversed (3,000 still taken, the issuer
    # holds 5,000 of its chargeback), the lost one reversed whole (it holds 1,000, for none)
    assert (await at.switch.send(_reversal(won_fields, amount_left=3_000)))["39"] == "00"
    assert (await at.switch.send(_reversal(lost_fields)))["39"] == "00"

    url = f"/v1/disputes/chargebacks?since={since}"
    api = await call(port, "GET", url, token=AUDITOR_TOKEN)
    assert api.status == 200, api
    recalls = [
        (row["dispute_id"], row["amount_minor"], row["withdrawn_at_stage"])
        for row in api.json["chargebacks"]
        if row["action"] == "recall"
    ]
    assert recalls == [(won_id, 2_000, ""), (lost_id, 1_000, ""), (counted_id, 1_000, "")]
    again = await call(port, "GET", url, token=AUDITOR_TOKEN)
    assert again.json["chargebacks"] == api.json["chargebacks"]  # read, not written
    for dispute_id, before in closed.items():  # the closed disputes are not written
        assert (await _dispute(port, dispute_id), await _audit_actions(port, dispute_id)) == before

    out = tmp_path / "chargebacks.csv"
    code, output = await run_cli(
        "disputes", "chargebacks", "--since", str(since), "--out", str(out),
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 0 and "wrote 3 chargebacks and 3 recalls" in output, output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    late = next(r for r in rows if r["dispute_id"] == won_id and r["action"] == "recall")
    assert late["amount_minor"] == "2000" and late["recalled_at"] >= late["charged_back_at"]
    assert at.visa["pan"] not in out.read_text()
