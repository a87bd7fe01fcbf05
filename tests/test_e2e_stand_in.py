"""The network's stand-in advices and what clears after them, over a running host on both
stores: an advice repeating a request the host approved (its answer came too late) moves no
money again; a stand-in pre-authorisation is journalled under the network's approval code, so
its clearing releases it instead of holding twice; an online refund is not credited again by
its clearing; a reversal never releases another card's money."""

from __future__ import annotations

import datetime as dt
import json

from host_admin import cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_e2e_auth import balances_of, field_90, purchase, store_url  # noqa: F401 - fixture
from test_e2e_clearing import write_clearing

from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def test_stand_in_advices_and_their_clearing_move_money_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    visa = host.cards["active-visa"]
    ledger, available = await balances_of(switch, visa)

    held = purchase(visa, amount=10_000)  # the host approved it, but too late for the network
    assert (await switch.send(held))["39"] == "00"
    repeated = {**held, "t": "0120", "39": "00", "38": "5T1234"}  # its stand-in advice
    assert (await switch.send(repeated))["39"] == "00"
    posted = purchase(visa, amount=2_000, t="0200")
    assert (await switch.send(posted))["39"] == "00"
    assert (await switch.send({**posted, "t": "0220", "39": "00", "38": "5T2222"}))["39"] == "00"
    assert await balances_of(switch, visa) == (ledger - 2_000, available - 12_000)

    stand_in = purchase(visa, amount=4_000, t="0120", **{"39": "00", "38": "5T9999"})
    assert (await switch.send(stand_in))["39"] == "00"  # the host never saw the 0100: held
    refund = purchase(visa, amount=1_500, **{"3": "200000"})  # an online refund: credited
    refunded = await switch.send(refund)
    assert refunded["39"] == "00"
    assert await balances_of(switch, visa) == (ledger - 500, available - 14_500)

    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    row = {"pan": visa["pan"], "currency": visa["currency"], "presented_at": when}
    rows = [
        {**row, "approval_code": "5T1234", "amount_minor": 10_000, "arn": "7400000000000000000011"},
        {**row, "approval_code": "5T9999", "amount_minor": 4_000, "arn": "7400000000000000000012"},
        {**row, "approval_code": "5T2222", "amount_minor": 2_000, "arn": "7400000000000000000013"},
        {**row, "approval_code": refunded["38"], "amount_minor": 1_500, "type": "refund",
         "arn": "7400000000000000000014"},
    ]  # fmt: skip
    file = write_clearing(tmp_path / "clearing.csv", rows)
    code, out = await run_cli("clearing", "import", str(file), "--config",
                              str(cli_config(tmp_path, store_url)))  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert [r["outcome"] for r in report["rows"]] == [
        "matched", "matched", "already_posted", "already_credited"]  # fmt: skip
    # 100.00 and 40.00 posted, their holds released; 20.00 and the refund as they were
    assert await balances_of(switch, visa) == (ledger - 14_500, available - 14_500)

    async with opened_store(store_url) as store:
        entries = {(e.mti, e.stan): e for e in await store.journal(JournalQuery(limit=100))}
    advice = entries[("0120", held["11"])]
    assert "advice.already_approved" in advice.reason_codes.split(";")
    assert (advice.approval_code, advice.movement) == ("5T1234", "")
    assert entries[("0120", stand_in["11"])].approval_code == "5T9999"


async def test_a_reversal_naming_another_cards_transaction_releases_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, _ = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    visa, other = host.cards["active-visa"], host.cards["active-visa-low"]
    held = purchase(visa, amount=3_000)
    assert (await switch.send(held))["39"] == "00"
    before = await balances_of(switch, visa)
    # field 90 names the Visa's purchase, the PAN is another card's
    wrong = purchase(other, amount=3_000, t="0400", **{"90": field_90(held)})
    assert (await switch.send(wrong))["39"] == "00"  # acknowledged, as an unknown original
    assert await balances_of(switch, visa) == before
    right = purchase(visa, amount=3_000, t="0400", **{"90": field_90(held)})
    assert (await switch.send(right))["39"] == "00"
    assert await balances_of(switch, visa) == (before[0], before[1] + 3_000)
    async with opened_store(store_url) as store:
        reasons = {e.stan: e.reason_codes for e in await store.journal(JournalQuery(limit=100))}
    assert reasons[wrong["11"]] == "reversal.unknown_original"
    assert reasons[right["11"]] == "reversal.full"
