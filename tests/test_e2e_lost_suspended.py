"""A card the bank suspended (an investigation, arrears) and then reported lost or stolen keeps
the bank's block for its replacement, over TCP on both stores: the report stops the old card
(41/43) and its replacement under a new PAN is activated suspended (62 until the bank resumes
it), its activation's audit entry naming the suspension's reason, as a renewal of a suspended
card is. Before, the report overwrote ``suspended`` and the replacement started active."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from host_admin import cli_config, run_cli, visa_at_host
from test_auth_steps import CARD, NOW
from test_e2e_auth import purchase, store_url  # noqa: F401 (fixture)
from test_e2e_token_pan_update import ok, the_new_card

from authhost.cards import lifecycle
from authhost.cards.model import CardState
from authhost.store.codec import card_from_json, card_to_json


async def _replace_and_activate(port: int, card_id: str) -> dict[str, Any]:
    new = await ok(port, "POST", f"/v1/cards/{card_id}/replace")
    await ok(port, "POST", f"/v1/cards/{new['card_id']}/ship")
    return await ok(port, "POST", f"/v1/cards/{new['card_id']}/activate")


async def _activation(port: int, card_id: str) -> dict[str, Any]:
    audit = await ok(port, "GET", f"/v1/audit?subject={card_id}")
    (entry,) = [e for e in audit["audit"] if e["action"] == "card.activate"]
    return json.loads(entry["after"])


async def test_a_suspended_card_reported_lost_is_replaced_suspended(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    await ok(at.port, "POST", f"/v1/cards/{at.card_id}/suspend", payload={"reason": "arrears"})
    lost = await ok(at.port, "POST", f"/v1/cards/{at.card_id}/report-lost")
    assert lost["state"] == "lost"
    assert (await at.switch.send(purchase(at.visa, 500)))["39"] == "41"  # the report stops it

    activated = await _replace_and_activate(at.port, at.card_id)
    assert activated["state"] == "suspended"  # was "active": the report lifted the block
    new_plastic = await the_new_card(at, activated)
    assert (await at.switch.send(purchase(new_plastic, 500)))["39"] == "62"
    after = await _activation(at.port, activated["card_id"])
    assert after["suspended_from"] == at.card_id and after["suspended_when_reported"] == "lost"
    assert after["suspension_reason"] == "arrears"

    # the bank lifts its block on the new card
    await ok(at.port, "POST", f"/v1/cards/{activated['card_id']}/resume")
    assert (await at.switch.send(purchase(new_plastic, 500)))["39"] == "00"
    assert (await at.switch.send(purchase(at.visa, 500)))["39"] == "41"
    await at.switch.aclose()


async def test_a_suspended_card_reported_stolen_over_the_cli_is_replaced_suspended(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    config = str(cli_config(tmp_path, store_url))

    async def cli(*args: str) -> dict[str, Any]:
        code, output = await run_cli("cards", *args, "--config", config)
        assert code == 0, output
        return json.loads(output)

    await cli("suspend", at.card_id, "--reason", "investigation")
    assert (await cli("report-stolen", at.card_id))["state"] == "stolen"
    assert (await at.switch.send(purchase(at.visa, 500)))["39"] == "43"
    new = await cli("replace", at.card_id)
    await cli("ship", new["card_id"])
    activated = await cli("activate", new["card_id"])
    assert activated["state"] == "suspended"
    new_plastic = await the_new_card(at, activated)
    assert (await at.switch.send(purchase(new_plastic, 500)))["39"] == "62"
    after = await _activation(at.port, new["card_id"])
    assert after["suspended_when_reported"] == "stolen"
    assert after["suspension_reason"] == "investigation"
    await at.switch.aclose()


async def test_a_card_not_suspended_when_reported_lost_is_replaced_active(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Suspended and resumed before the report: the block was lifted, the replacement is
    active, and the stored lost card has no kept suspension."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    await ok(at.port, "POST", f"/v1/cards/{at.card_id}/suspend", payload={"reason": "arrears"})
    await ok(at.port, "POST", f"/v1/cards/{at.card_id}/resume")
    await ok(at.port, "POST", f"/v1/cards/{at.card_id}/report-lost")
    activated = await _replace_and_activate(at.port, at.card_id)
    assert activated["state"] == "active"
    new_plastic = await the_new_card(at, activated)
    assert (await at.switch.send(purchase(new_plastic, 500)))["39"] == "00"
    assert "suspended_from" not in await _activation(at.port, activated["card_id"])
    await at.switch.aclose()


def test_the_kept_suspension_is_stored_only_when_set():
    """The report of a suspended card keeps the reason (even an empty one) on the card's JSON;
    a card not suspended when reported writes no key, so its JSON is what older processes
    wrote and read, and a successor starts without its predecessor's."""
    suspended = dataclasses.replace(CARD, state=CardState.SUSPENDED)
    lost = lifecycle.transition(suspended, "report-lost", now=NOW, suspension_reason="arrears")
    assert lost.state is CardState.LOST and lost.suspension_at_report == "arrears"
    assert card_from_json(card_to_json(lost)) == lost
    quiet = lifecycle.transition(suspended, "report-stolen", now=NOW)
    assert card_from_json(card_to_json(quiet)).suspension_at_report == ""
    active = lifecycle.transition(CARD, "report-lost", now=NOW, suspension_reason="unused")
    assert active.suspension_at_report is None
    assert "suspension_at_report" not in json.loads(card_to_json(active))
    _, new = lifecycle.replace(lost, now=NOW, validity_months=36, new_card_id="crd_new")
    assert new.suspension_at_report is None
