"""Renewal over TCP: the old plastic keeps working until the renewed card is activated, then the
PAN means the new card (new expiry, new card values) and the old expiry is refused."""

from __future__ import annotations

import time
from typing import Any

from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 (fixture)

from authhost.admin.service import CardService
from authhost.cards.track2 import build_track2
from authhost.security.module import SecurityModule
from authhost.store import opened_store


async def test_a_renewed_card_takes_over_only_when_activated(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url)
    old = host.cards["restricted"]
    security = SecurityModule.open(host.config.security, demo=True)
    switch = await Switch.connect(host.port)
    async with opened_store(store_url) as store:
        # renewals are issued near expiry: run the back office a year ahead, so the renewed
        # card's expiry differs from the card it renews
        service = CardService(store, security, actor="e2e", clock=lambda: time.time() + 3.2e7)
        old_id = (await service.find_card(old["pan"]))["card_id"]

        async def code(card: dict[str, Any]) -> str:
            return (await switch.send(purchase(card, 500)))["39"]

        assert await code(old) == "00"
        renewed = await service.apply(old_id, "renew")
        new = dict(old, expiry=renewed["expiry"])
        values = security.card_values(old["pan"], new["expiry"], old["service_code"], "cvk")
        new["track2"] = build_track2(old["pan"], new["expiry"], old["service_code"], values.icvv)
        assert new["expiry"] != old["expiry"]

        assert await code(old) == "00"  # renewed and shipped: the old card still works
        await service.apply(renewed["card_id"], "ship")
        assert await code(old) == "00"
        assert await code(new) == "54"  # the PAN still means the old card: wrong expiry

        await service.apply(renewed["card_id"], "activate")
        assert await code(new) == "00"
        assert await code(old) == "54"  # the old expiry no longer matches
        assert (await service.get_card(old_id))["state"] == "replaced"
    await switch.aclose()
