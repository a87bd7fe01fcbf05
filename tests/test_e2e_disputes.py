"""Disputes over a running host, on both stores: a provisional credit gives the posted
charge back at once, a lost dispute takes it back, a won one without a credit gives it then;
each movement is journalled (the account's statement shows it), a retried step moves nothing
twice, and what cannot be disputed is refused with the reason."""

from __future__ import annotations

import json
import time

import pytest
from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import balances_of, purchase, store_url  # noqa: F401 - fixture

from authhost.admin import disputes as dispute_steps
from authhost.admin.errors import InvalidRequest
from authhost.admin.requests import DisputeOpen
from authhost.admin.service import CardService
from authhost.cli.admin_support import open_card_service
from authhost.config import load_config
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

DAY = 86_400


async def test_a_dispute_gives_the_money_back_and_a_lost_one_takes_it_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa, card_id = at.port, at.switch, at.visa, at.card_id
    charged = await switch.send(purchase(visa, amount=5_000, t="0200"))  # posted at once
    held = await switch.send(purchase(visa, amount=1_000))  # only held
    other = await switch.send(purchase(visa, amount=2_000, t="0200"))
    assert charged["39"] == held["39"] == other["39"] == "00"
    async with opened_store(store_url) as store:
        entries = {e.stan: e for e in await store.journal(JournalQuery(card_id=card_id))}
    charge, hold, second = (entries[r["11"]] for r in (charged, held, other))
    ledger, available = await balances_of(switch, visa)

    url = f"/v1/cards/{card_id}/journal/{charge.journal_id}/dispute"
    opened = await call(port, "POST", url, payload={"reason": "fraud", "note": "not me"})
    assert opened.status == 200, opened
    dispute = opened.json
    assert (dispute["state"], dispute["amount_minor"], dispute["credited_minor"]) == (
        "open", 5_000, 5_000
    )  # fmt: skip
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)
    again = await call(port, "POST", url, payload={"reason": "amount"})
    assert again.status == 409  # one dispute per charge
    report = await call(port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    assert [(r["journal_id"], r["source"]) for r in report.json["reports"]] == [
        (charge.journal_id, "chargeback")
    ]  # the fraud dispute labels the charge for training  # fmt: skip

    lost = await call(port, "POST", f"/v1/disputes/{dispute['dispute_id']}/resolve",
                      payload={"outcome": "lost"})  # fmt: skip
    assert lost.status == 200 and lost.json["state"] == "lost" and lost.json["credited_minor"] == 0
    assert await balances_of(switch, visa) == (ledger, available)  # taken back
    closed = await call(port, "POST", f"/v1/disputes/{dispute['dispute_id']}/resolve",
                        payload={"outcome": "won"})  # fmt: skip
    assert closed.status == 409

    # without a provisional credit: nothing moves until it is won (from the CLI)
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli(
        "disputes", "open", card_id, str(second.journal_id), "--reason", "not_received",
        "--no-credit", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    quiet = json.loads(output)
    assert quiet["credited_minor"] == 0
    assert await balances_of(switch, visa) == (ledger, available)
    won = await call(port, "POST", f"/v1/disputes/{quiet['dispute_id']}/resolve",
                     payload={"outcome": "won"})  # fmt: skip
    assert won.status == 200 and won.json["credited_minor"] == 2_000
    assert await balances_of(switch, visa) == (ledger + 2_000, available + 2_000)

    # a step tried again (say the dispute's update failed after the post) is a retransmission
    async with open_card_service(load_config(config), "test", pipeline=True) as service:
        stored = await service.store.get_dispute(quiet["dispute_id"])
        assert stored is not None
        for _ in range(2):
            await service._dispute_move(stored, "", dispute_steps.FINAL_CREDIT, 2_000)
    assert await balances_of(switch, visa) == (ledger + 2_000, available + 2_000)

    # the movements are journalled: the account's statement lists them
    statement = await call(
        port, "GET", f"/v1/accounts/{visa['account']}/statement?since=0&until=9999999999",
        token=AUDITOR_TOKEN,
    )  # fmt: skip
    disputed = [(ln["mti"], ln["movement"], ln["amount_minor"]) for ln in statement.json["lines"]
                if ln["mti"] == "0220"]  # fmt: skip
    assert disputed == [("0220", "credit", 5_000), ("0220", "post", 5_000),
                        ("0220", "credit", 2_000)]  # fmt: skip
    listed = await call(port, "GET", "/v1/disputes?state=won", token=AUDITOR_TOKEN)
    assert [d["dispute_id"] for d in listed.json["disputes"]] == [quiet["dispute_id"]]
    code, output = await run_cli("disputes", "list", "--config", str(config))
    assert code == 0 and [d["state"] for d in json.loads(output)] == ["lost", "won"]

    # what cannot be disputed
    held_url = f"/v1/cards/{card_id}/journal/{hold.journal_id}/dispute"
    refused = await call(port, "POST", held_url, payload={"reason": "fraud"})
    assert refused.status == 422 and "posted" in refused.json["error"]
    too_much = await call(port, "POST", f"/v1/cards/{card_id}/journal/{charge.journal_id}/dispute",
                          payload={"reason": "amount", "amount_minor": 9_999_999})  # fmt: skip
    assert too_much.status in (409, 422)  # disputed already, or more than was posted
    missing = await call(port, "POST", f"/v1/cards/{card_id}/journal/999999/dispute",
                         payload={"reason": "fraud"})  # fmt: skip
    assert missing.status == 404
    bad = await call(port, "POST", url, payload={"reason": "bored"})
    assert bad.status == 422
    assert (await call(port, "GET", "/v1/disputes/dsp-none", token=AUDITOR_TOKEN)).status == 404
    # 120 days on, a charge can no longer be charged back
    fresh = await switch.send(purchase(visa, amount=300, t="0200"))
    async with opened_store(store_url) as store:
        [late_charge] = [e for e in await store.journal(JournalQuery(card_id=card_id, limit=1000))
                         if e.stan == fresh["11"]]  # fmt: skip
    async with open_card_service(load_config(config), "test") as service:
        late = CardService(service.store, service.security, clock=lambda: time.time() + 121 * DAY)
        with pytest.raises(InvalidRequest, match="120 days"):
            await late.open_dispute(
                card_id,
                late_charge.journal_id,
                DisputeOpen(reason="fraud", provisional_credit=False),
            )
    audit = await call(port, "GET", f"/v1/audit?subject={dispute['dispute_id']}",
                       token=AUDITOR_TOKEN)  # fmt: skip
    assert [a["action"] for a in audit.json["audit"]] == ["dispute.open", "dispute.resolve"]
