"""A support agent finds where a cardholder's dispute stands from the card they hold now, over a
running host on both stores: ``GET /v1/disputes?card_id=`` (``disputes list --card-id``) lists
the disputes of that card and of the card it replaced, as a fraud victim calls with the new
plastic. Before, the list took no card (400) and an agent needed the dispute's id, which the
cardholder does not have."""

from __future__ import annotations

import json

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture


async def test_a_cardholders_disputes_are_found_from_the_card_they_hold_now(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    charged = await at.switch.send(purchase(at.visa, amount=5_000, t="0200"))  # posted at once
    assert charged["39"] == "00"
    journal = await call(at.port, "GET", f"/v1/cards/{at.card_id}/journal", token=AUDITOR_TOKEN)
    (charge,) = [e for e in journal.json["journal"] if e["stan"] == charged["11"]]
    url = f"/v1/cards/{at.card_id}/journal/{charge['journal_id']}/dispute"
    opened = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert opened.status == 200, opened
    dispute_id = opened.json["dispute_id"]

    # the card is reported stolen and replaced; the new one is activated
    assert (await call(at.port, "POST", f"/v1/cards/{at.card_id}/report-stolen")).status == 200
    replaced = await call(at.port, "POST", f"/v1/cards/{at.card_id}/replace")
    new_id = replaced.json["card_id"]
    for action in ("ship", "activate"):
        assert (await call(at.port, "POST", f"/v1/cards/{new_id}/{action}")).status == 200

    for card in (new_id, at.card_id):
        listed = await call(at.port, "GET", f"/v1/disputes?card_id={card}", token=AUDITOR_TOKEN)
        assert listed.status == 200, listed
        assert [(d["dispute_id"], d["state"], d["credited_minor"]) for d in listed.json["disputes"]] == [
            (dispute_id, "open", 5_000)
        ]  # fmt: skip
    won = await call(
        at.port, "GET", f"/v1/disputes?card_id={new_id}&state=won", token=AUDITOR_TOKEN
    )
    assert won.status == 200 and won.json["disputes"] == []
    other = at.host.cards["active-credit"]
    found = await call(at.port, "POST", "/v1/cards/search", payload={"pan": other["pan"]})
    none = await call(
        at.port, "GET", f"/v1/disputes?card_id={found.json['card_id']}", token=AUDITOR_TOKEN
    )
    assert none.status == 200 and none.json["disputes"] == []
    unknown = await call(at.port, "GET", "/v1/disputes?card_id=crd_nope", token=AUDITOR_TOKEN)
    assert unknown.status == 404
    mixed = await call(
        at.port, "GET", f"/v1/disputes?card_id={new_id}&after=x", token=AUDITOR_TOKEN
    )
    assert mixed.status == 422

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli(
        "disputes", "list", "--card-id", new_id, "-o", "json", "--config", config
    )
    assert code == 0, out
    assert [d["dispute_id"] for d in json.loads(out)] == [dispute_id]
