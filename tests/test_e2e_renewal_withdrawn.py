"""A renewal or reissue withdrawn before its activation (cancelled, expired) was never handed
over to: the old card stays the one in use, and can be renewed or reissued again."""

from __future__ import annotations

import pytest
from host_admin import card_id_of, start_host_with_admin
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import purchase, store_url  # noqa: F401 (fixture)


async def _withdrawn_renewal(port: int, old_id: str, end: str) -> str:
    """Renew ``old_id`` and end the renewal with ``end`` before it is activated."""
    renewed = await call(port, "POST", f"/v1/cards/{old_id}/renew")
    assert renewed.status == 200, renewed
    new_id = renewed.json["card_id"]
    if end == "expire":
        assert (await call(port, "POST", f"/v1/cards/{new_id}/ship")).status == 200
    ended = await call(port, "POST", f"/v1/cards/{new_id}/{end}")
    assert ended.status == 200, ended
    return new_id


@pytest.mark.parametrize("end", ["cancel", "expire"])
async def test_the_old_card_of_a_withdrawn_renewal_can_be_renewed_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    end,
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    old_id = await card_id_of(port, host.cards["active-visa"]["pan"])
    new_id = await _withdrawn_renewal(port, old_id, end)

    old = await call(port, "GET", f"/v1/cards/{old_id}")
    assert old.json["state"] == "active" and old.json["replaced_by"] is None
    audit = await call(port, "GET", f"/v1/audit?subject={old_id}")
    (withdrawn,) = [e for e in audit.json["audit"] if e["action"] == "card.successor_withdrawn"]
    assert new_id in withdrawn["after"]
    again = await call(port, "POST", f"/v1/cards/{old_id}/renew")
    assert again.status == 200, again
    assert again.json["card_id"] not in (old_id, new_id)


async def test_a_reissue_cancelled_before_activation_lets_the_card_be_reissued_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    old_id = await card_id_of(port, host.cards["active-visa"]["pan"])
    reissued = await call(port, "POST", f"/v1/cards/{old_id}/reissue")
    assert (await call(port, "POST", f"/v1/cards/{reissued.json['card_id']}/cancel")).status == 200
    again = await call(port, "POST", f"/v1/cards/{old_id}/reissue")
    assert again.status == 200, again


@pytest.mark.parametrize("end", ["cancel", "expire"])
async def test_a_withdrawn_renewal_never_takes_the_pan_from_the_old_card(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    end,
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    switch = await Switch.connect(host.port)
    old_id = await card_id_of(port, visa["pan"])
    await _withdrawn_renewal(port, old_id, end)

    assert await card_id_of(port, visa["pan"]) == old_id
    assert (await switch.send(purchase(visa, 500)))["39"] == "00"
    await switch.aclose()


async def test_cancelling_a_card_cancels_its_waiting_renewal_but_not_a_replacement(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Closing a card closes its number: a renewal waiting with that number (shipped, not
    yet activated) is cancelled with it, or it could be activated later and the closed number
    would come back with a new expiry. A reissue under a new PAN is a card of its own and
    stays waiting for its activation."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    renewed_id = await card_id_of(port, host.cards["active-visa"]["pan"])
    renewal = await call(port, "POST", f"/v1/cards/{renewed_id}/renew")
    assert renewal.status == 200, renewal
    renewal_id = renewal.json["card_id"]
    assert (await call(port, "POST", f"/v1/cards/{renewal_id}/ship")).status == 200
    reissued_id = await card_id_of(port, host.cards["active-credit"]["pan"])
    reissue = await call(port, "POST", f"/v1/cards/{reissued_id}/reissue")
    assert reissue.status == 200, reissue
    reissue_id = reissue.json["card_id"]

    for old_id in (renewed_id, reissued_id):
        cancelled = await call(port, "POST", f"/v1/cards/{old_id}/cancel")
        assert cancelled.status == 200 and cancelled.json["state"] == "closed", cancelled

    withdrawn = await call(port, "GET", f"/v1/cards/{renewal_id}")
    assert withdrawn.json["state"] == "closed", withdrawn.json
    refused = await call(port, "POST", f"/v1/cards/{renewal_id}/activate")
    assert refused.status == 409, refused
    audit = await call(port, "GET", f"/v1/audit?subject={renewal_id}")
    [cancel] = [e for e in audit.json["audit"] if e["action"] == "card.cancel"]
    assert f"predecessor {renewed_id} cancelled: its number is closed" in cancel["after"], cancel
    reply = await switch.send(purchase(host.cards["active-visa"]))
    assert reply["39"] != "00", reply  # the number is closed, old card and renewal alike

    kept = await call(port, "GET", f"/v1/cards/{reissue_id}")
    assert kept.json["state"] == "created", kept.json
    assert (await call(port, "POST", f"/v1/cards/{reissue_id}/ship")).status == 200
    activated = await call(port, "POST", f"/v1/cards/{reissue_id}/activate")
    assert activated.status == 200 and activated.json["state"] == "active", activated
