"""A reversal that comes after the charge's dispute was resolved, over a running host on both
stores: the chargeback stood for what the charge took then, so the acquirer would pay the
reversed part twice; the chargebacks file recalls it (a recall line on the reversal's day, for
what the issuer holds of the chargeback beyond what the charge still takes), without writing
the closed dispute. A reversal the resolution counted gets no second line."""

from __future__ import annotations

import csv
import json
import time

from host_admin import cli_config, run_cli
from test_admin_support import AUDITOR_TOKEN, call
from test_dispute_stage_amounts import _step
from test_e2e_auth import balances_of, store_url  # noqa: F401 - fixture
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
        shown = await _dispute(port, dispute_id)
        assert shown.pop("late_reversals")["recalls"]  # shown, not written (below)
        assert (shown, await _audit_actions(port, dispute_id)) == before

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


async def test_a_closed_dispute_shows_its_late_reversal_and_the_operator_takes_it_back(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Won for 5,000 (its credit kept), then the acquirer reverses 2,000 of the charge: the
    cardholder holds 2,000 twice (the credit and the reversal's release) and the chargebacks
    file recalls 2,000. The closed dispute shows both and the command; the CLI's reconcile of
    it takes the 2,000 back once, named after the reversal (again: nothing moves), records it
    on the dispute and audits it; the recall line stays as it was. Lost for 1,000 and then
    reversed whole: the 1,000 kept is taken back the same way; won for 3,000 with no
    chargeback and then reversed whole: no recall, the 3,000 taken back."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    port, config = at.port, str(cli_config(tmp_path, store_url))
    since = int(time.time()) - 1
    won_fields, lost_fields, plain_fields, won, lost, plain = await _disputed(
        at, store_url, 5_000, 4_000, 3_000
    )
    won_id, lost_id, plain_id = won["dispute_id"], lost["dispute_id"], plain["dispute_id"]
    for dispute_id in (won_id, lost_id):
        await _step(port, dispute_id, "chargeback")
    await _step(port, lost_id, "represented", {"reference": "REP-5", "amount_minor": 3_000})
    await _step(port, won_id, "resolve", {"outcome": "won"})
    await _step(port, lost_id, "resolve", {"outcome": "lost"})
    await _step(port, plain_id, "resolve", {"outcome": "won"})
    assert "late_reversals" not in await _dispute(port, won_id)  # nothing reversed yet
    settled = await balances_of(at.switch, at.visa)
    assert (await at.switch.send(_reversal(won_fields, amount_left=3_000)))["39"] == "00"
    assert (await at.switch.send(_reversal(lost_fields)))["39"] == "00"
    assert (await at.switch.send(_reversal(plain_fields)))["39"] == "00"
    paid_twice = await balances_of(at.switch, at.visa)
    assert paid_twice[0] == settled[0] + 2_000 + 4_000 + 3_000  # the reversals' releases

    shown = await _dispute(port, won_id)
    late = shown["late_reversals"]
    assert (late["recalled_minor"], late["cardholder_excess_minor"]) == (2_000, 2_000)
    assert f"disputes reconcile {won_id}" in late["todo"]
    assert (shown["credited_minor"], shown["late_taken_back_minor"]) == (5_000, 0)
    url = f"/v1/disputes/chargebacks?since={since}"
    filed = (await call(port, "GET", url, token=AUDITOR_TOKEN)).json["chargebacks"]

    plain_late = (await _dispute(port, plain_id))["late_reversals"]
    assert (plain_late["recalls"], plain_late["cardholder_excess_minor"]) == ([], 3_000)
    for dispute_id, taken in ((won_id, 2_000), (lost_id, 1_000), (plain_id, 3_000)):
        code, output = await run_cli("disputes", "reconcile", dispute_id, "--config", config)
        assert code == 0, output
        done = json.loads(output)
        assert (done["late_taken_back_minor"], done["late_taken_back_at"] > 0) == (taken, True)
        # nothing held twice now: the recalls still shown, or nothing at all (no chargeback)
        late = done.get("late_reversals")
        assert late["cardholder_excess_minor"] == 0 if dispute_id != plain_id else late is None
        assert (await _audit_actions(port, dispute_id)).count("dispute.reconcile") == 1
    assert (await _dispute(port, won_id))["credited_minor"] == 3_000
    assert (await _dispute(port, lost_id))["credited_minor"] == 0
    assert (await _dispute(port, plain_id))["credited_minor"] == 0
    back = (paid_twice[0] - 6_000, paid_twice[1] - 6_000)
    assert await balances_of(at.switch, at.visa) == back

    again = await call(port, "POST", f"/v1/disputes/{won_id}/reconcile")
    assert again.status == 200 and again.json["late_taken_back_minor"] == 2_000, again
    assert await balances_of(at.switch, at.visa) == back
    assert (await _audit_actions(port, won_id)).count("dispute.reconcile") == 1
    after = (await call(port, "GET", url, token=AUDITOR_TOKEN)).json["chargebacks"]
    assert after == filed  # the network's recall lines as they were
