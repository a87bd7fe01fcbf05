"""A card the bank suspended keeps its suspension through its renewal: the cardholder's
activation of the new plastic (the same PAN) must not lift the bank's block. A reissue under
a new PAN (the answer to an exposed number) starts active."""

from __future__ import annotations

from typing import Any

from host_admin import visa_at_host
from test_admin_support import call
from test_e2e_auth import purchase, store_url  # noqa: F401 (fixture)

from authhost.cards.track2 import build_track2
from authhost.security.module import SecurityModule


def plastic(security: SecurityModule, card: dict[str, Any], expiry: str) -> dict[str, Any]:
    """``card`` as its renewal's plastic: the same PAN with the new expiry and its iCVV."""
    values = security.card_values(card["pan"], expiry, card["service_code"], "cvk")
    track2 = build_track2(card["pan"], expiry, card["service_code"], values.icvv)
    return dict(card, expiry=expiry, track2=track2)


async def _ship_and_activate(port: int, card_id: str) -> dict[str, Any]:
    assert (await call(port, "POST", f"/v1/cards/{card_id}/ship")).status == 200
    activated = await call(port, "POST", f"/v1/cards/{card_id}/activate")
    assert activated.status == 200, activated
    return activated.json


async def test_a_renewal_activated_while_the_old_card_is_suspended_stays_suspended(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    security = SecurityModule.open(at.host.config.security, demo=True)
    renewed = await call(at.port, "POST", f"/v1/cards/{at.card_id}/renew")
    assert renewed.status == 200, renewed
    new_id = renewed.json["card_id"]
    held = await call(
        at.port, "POST", f"/v1/cards/{at.card_id}/suspend", payload={"reason": "investigation"}
    )
    assert held.status == 200, held

    activated = await _ship_and_activate(at.port, new_id)
    assert activated["state"] == "suspended"  # was "active": the block was lifted
    old = await call(at.port, "GET", f"/v1/cards/{at.card_id}")
    assert old.json["state"] == "replaced"
    new_plastic = plastic(security, at.visa, activated["expiry"])
    assert (await at.switch.send(purchase(new_plastic, 500)))["39"] == "62"
    audit = await call(at.port, "GET", f"/v1/audit?subject={new_id}")
    (entry,) = [e for e in audit.json["audit"] if e["action"] == "card.activate"]
    assert f'"suspended_from":"{at.card_id}"' in entry["after"], entry
    assert '"suspension_reason":"investigation"' in entry["after"], entry  # why it is held

    # the bank lifts its block on the card now in use
    assert (await call(at.port, "POST", f"/v1/cards/{new_id}/resume")).status == 200
    assert (await at.switch.send(purchase(new_plastic, 500)))["39"] == "00"
    await at.switch.aclose()


async def test_a_renewal_of_a_card_resumed_before_its_activation_starts_active(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    new_id = (await call(at.port, "POST", f"/v1/cards/{at.card_id}/renew")).json["card_id"]
    assert (await call(at.port, "POST", f"/v1/cards/{at.card_id}/suspend")).status == 200
    assert (await call(at.port, "POST", f"/v1/cards/{at.card_id}/resume")).status == 200
    assert (await _ship_and_activate(at.port, new_id))["state"] == "active"
    await at.switch.aclose()


async def test_a_reissue_of_a_suspended_card_starts_active(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    assert (await call(at.port, "POST", f"/v1/cards/{at.card_id}/suspend")).status == 200
    reissued = await call(at.port, "POST", f"/v1/cards/{at.card_id}/reissue")
    assert reissued.status == 200, reissued
    # the new number is the answer to why the old one was stopped
    assert (await _ship_and_activate(at.port, reissued.json["card_id"]))["state"] == "active"
    old = await call(at.port, "GET", f"/v1/cards/{at.card_id}")
    assert old.json["state"] == "replaced"
    await at.switch.aclose()


async def test_a_suspended_card_is_not_reported_damaged_but_renewed(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Reported damaged, a suspended card's same-PAN replacement was activated active: the
    damage report lifted the bank's block. It is refused (409, saying to renew), and the card
    stays suspended and declined."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    held = await call(at.port, "POST", f"/v1/cards/{at.card_id}/suspend")
    assert held.status == 200, held
    refused = await call(at.port, "POST", f"/v1/cards/{at.card_id}/report-damaged")
    assert refused.status == 409 and "renew it" in refused.json["error"], refused
    assert (await call(at.port, "GET", f"/v1/cards/{at.card_id}")).json["state"] == "suspended"
    assert (await at.switch.send(purchase(at.visa, 500)))["39"] == "62"
    await at.switch.aclose()
