"""Admin writes of money with their audit entry while the host authorises, on both stores.

A real host (TCP for the switch, HTTP for the admin API): loads on one account, each sent
twice with its idempotency key, from many operators at once, while switches post advices
(which move the balance the loads' entries record) and hold purchases on the same account's
card, and other operators change another card, a product and a list. Afterwards the balance
is the opening balance plus every load less every advice (each load once), there is one
``account.funds`` entry per load, and the audit chain verifies through the API and
``authhost audit verify``. Nothing is timed.
"""

from __future__ import annotations

import json
import secrets

import trio
from host_admin import card_id_of, cli_config, run_cli, visa_at_host
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture

LOADS = 120
OPERATORS = 40  # at once (the test client's worker threads)
ADVICES = 30  # per switch
SWITCHES = 2


async def test_loads_during_authorisations_move_money_once_and_chain(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    account = (await call(at.port, "GET", f"/v1/cards/{at.card_id}")).json["account_id"]
    opening = (await call(at.port, "GET", f"/v1/accounts/{account}")).json["balance"]
    other_card = await card_id_of(at.port, at.host.cards["active-credit"]["pan"])
    product = (await call(at.port, "GET", f"/v1/cards/{at.card_id}")).json["product_id"]
    posted: list[int] = []
    loaded: list[int] = []

    async def loads(first: int) -> None:
        for n in range(first, LOADS, OPERATORS):
            amount = 1_000 + n
            key = {"Idempotency-Key": f"core-{n}-{secrets.token_hex(4)}"}
            answers = []
            for _ in range(2):  # no answer reached the core system: it sends it again
                answer = await call(at.port, "POST", f"/v1/accounts/{account}/funds",
                                    payload={"amount_minor": amount, "reason": f"load {n}"},
                                    headers=key)  # fmt: skip
                assert answer.status == 200, answer
                answers.append(answer.json)
            assert answers[0] == answers[1]
            loaded.append(amount)

    async def advices(switch: Switch, first: int) -> None:
        for n in range(ADVICES):
            amount = 100 + first + n
            reply = await switch.send(purchase(at.visa, amount=amount, t="0220"))
            assert (reply["t"], reply["39"]) == ("0230", "00"), reply
            posted.append(amount)
            await switch.send(purchase(at.visa, amount=50))  # a hold, or a decline: no posting

    async def other_writes() -> None:
        for n in range(6):
            for action in ("suspend", "resume"):
                moved = await call(at.port, "POST", f"/v1/cards/{other_card}/{action}")
                assert moved.status == 200, moved
            renamed = await call(at.port, "PATCH", f"/v1/products/{product}",
                                 payload={"name": f"Visa debit {n}"})  # fmt: skip
            assert renamed.status == 200, renamed
            listed = await call(at.port, "PUT", "/v1/lists/blocked", payload={"values": [f"M{n}"]})
            assert listed.status == 200, listed

    switches = [at.switch] + [await Switch.connect(at.host.port) for _ in range(SWITCHES - 1)]
    async with trio.open_nursery() as writers:
        for first in range(OPERATORS):
            writers.start_soon(loads, first)
        for n, switch in enumerate(switches):
            writers.start_soon(advices, switch, 1_000 * n)
        writers.start_soon(other_writes)

    assert len(loaded) == LOADS and len(posted) == ADVICES * SWITCHES
    balance = (await call(at.port, "GET", f"/v1/accounts/{account}")).json["balance"]
    assert balance == opening + sum(loaded) - sum(posted)  # each load once, each advice once

    audit = (await call(at.port, "GET", "/v1/audit?limit=1000", token=AUDITOR_TOKEN)).json["audit"]
    funds = [a for a in audit if a["action"] == "account.funds"]
    assert len(funds) == LOADS  # a load sent again: no second entry
    for entry in funds:  # the balance the write found, the one it set
        before, after = json.loads(entry["before"]), json.loads(entry["after"])
        assert after["balance"] == before["balance"] + after["amount_minor"]
        assert "holds" not in before and "holds" not in after
    answer = await call(at.port, "GET", "/v1/audit/verify", token=AUDITOR_TOKEN)
    verified = answer.json
    assert verified["ok"] and verified["verified"] == verified["entries"] == len(audit), verified
    code, output = await run_cli("audit", "verify", "--config", str(cli_config(tmp_path,
                                                                                store_url)))  # fmt: skip
    assert code == 0 and json.loads(output)["head"] == verified["head"], output
