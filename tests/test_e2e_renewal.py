"""Renewal over TCP: the old plastic keeps working until the renewed card is activated, then the
PAN means the new card (new expiry, new card values) and the old expiry is refused."""

from __future__ import annotations

import time
from typing import Any

from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 (fixture)
from test_e2e_tokens import ecommerce, token_number, wallet_payment

from authhost.admin.service import CardService
from authhost.cards.track2 import build_track2
from authhost.iso.messages import TokenData
from authhost.security.module import SecurityModule
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def year_ahead(
    store, security: SecurityModule, card: dict[str, Any]
) -> tuple[CardService, str]:
    """The back office a year ahead (renewals are issued near expiry, so the renewed card's
    expiry differs from the card it renews), and the id of ``card``."""
    service = CardService(store, security, actor="e2e", clock=lambda: time.time() + 3.2e7)
    return service, (await service.find_card(card["pan"]))["card_id"]


async def renewed_in_use(host, store, old: dict[str, Any]) -> tuple[CardService, dict]:
    """``old`` renewed a year ahead, and the renewal shipped and activated: the PAN's card."""
    security = SecurityModule.open(host.config.security, demo=True)
    service, old_id = await year_ahead(store, security, old)
    renewed = await service.apply(old_id, "renew")
    for action in ("ship", "activate"):
        await service.apply(renewed["card_id"], action)
    return service, renewed


async def test_a_renewed_card_takes_over_only_when_activated(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url)
    old = host.cards["restricted"]
    security = SecurityModule.open(host.config.security, demo=True)
    switch = await Switch.connect(host.port)
    async with opened_store(store_url) as store:
        service, old_id = await year_ahead(store, security, old)

        async def code(card: dict[str, Any]) -> str:
            return (await switch.send(purchase(card, 500)))["39"]

        assert await code(old) == "00"
        renewed = await service.apply(old_id, "renew")
        new = dict(old, expiry=renewed["expiry"])
        values = security.card_values(old["pan"], new["expiry"], old["service_code"], "cvk")
        new["track2"] = build_track2(old["pan"], new["expiry"], old["service_code"], values.icvv)
        assert new["expiry"] != old["expiry"]

        await service.apply(renewed["card_id"], "ship")
        assert await code(old) == "00"  # renewed and shipped: the old card still works
        assert await code(new) == "54"  # the PAN still means the old card: wrong expiry

        await service.apply(renewed["card_id"], "activate")
        assert await code(new) == "00"  # the third of the card number's day (3 a day)
        assert await code(new) == "65"  # the velocity is the number's, not the plastic's
        assert await code(old) == "54"  # the old expiry no longer matches
        # the old plastic's track 2 with the new card's expiry in field 14: the track decides
        mixed = purchase(old, 500, **{"14": new["expiry"]})
        assert (await switch.send(mixed))["39"] == "54"
        assert (await service.get_card(old_id))["state"] == "replaced"
        # a merchant's refund of a purchase made with the old plastic still reaches the account
        refund = await switch.send(purchase(old, 500, **{"3": "200000"}))
        assert refund["39"] == "00"
        (entry,) = [e for e in await store.journal(JournalQuery(limit=100))
                    if e.stan == refund["11"]]  # fmt: skip
        assert "card.previous_expiry" in entry.reason_codes
    await switch.aclose()


async def test_a_subscription_kept_on_file_survives_the_renewal(nursery, tmp_path, store_url):  # noqa: F811
    """Merchants charging a card on file keep the expiry they were given until the networks'
    account updater reaches them: a merchant-initiated charge (field 48 SE 22 SF 05 M...) with
    the renewed card's expiry is honoured; the cardholder paying with it (C...), a request that
    does not say, or an expiry the card never had, is not."""
    host = await start_host(nursery, tmp_path, store_url)
    old = host.cards["active-visa"]
    switch = await Switch.connect(host.port)
    async with opened_store(store_url) as store:
        service, renewed = await renewed_in_use(host, store, old)
        assert (await service.get_card(renewed["card_id"]))["previous_expiry"] == old["expiry"]

        on_file = await switch.send(card_on_file(old, old["expiry"], "M103"))
        assert on_file["39"] == "00"
        assert (await switch.send(card_on_file(old, old["expiry"], "C101")))["39"] == "54"
        assert (await switch.send(card_on_file(old, old["expiry"], None)))["39"] == "54"
        assert (await switch.send(card_on_file(old, "3112", "M103")))["39"] == "54"
        assert (await switch.send(card_on_file(old, renewed["expiry"], "M101")))["39"] == "00"
        (entry,) = [e for e in await store.journal(JournalQuery(limit=100))
                    if e.stan == on_file["11"]]  # fmt: skip
        assert "card.previous_expiry" in entry.reason_codes
        assert entry.stored_credential == "M103"
    await switch.aclose()


async def test_the_wallet_pays_on_after_the_renewal_is_activated(nursery, tmp_path, store_url):  # noqa: F811
    """A renewal keeps the PAN and the wallet tokens, but the network de-tokenises a wallet
    payment with the expiry its vault keeps for the PAN: the old one, as authhost tells the
    token service of a new PAN only. That expiry is honoured for a payment with one of the
    card's active tokens (it was declined 54: the phone stopped paying the day the new plastic
    was activated); an unknown token is still refused, and so is the old expiry typed in."""
    host = await start_host(nursery, tmp_path, store_url)
    old = host.cards["active-visa"]
    switch = await Switch.connect(host.port)
    async with opened_store(store_url) as store:
        service, renewed = await renewed_in_use(host, store, old)
        phone = await switch.send(wallet_payment(old, old["token"]))  # field 14: the old expiry
        assert phone["39"] == "00", phone
        (entry,) = [e for e in await store.journal(JournalQuery(limit=100))
                    if e.stan == phone["11"]]  # fmt: skip
        assert "card.previous_expiry" in entry.reason_codes
        stranger = TokenData(token_number("77"), "3112", old["token"]["requestor_id"], "C")
        assert (await switch.send(wallet_payment(old, stranger)))["39"] == "62"
        assert (await switch.send(ecommerce(old)))["39"] == "54"  # typed in: the old expiry
    await switch.aclose()


def card_on_file(card: dict[str, Any], expiry: str, indicator: str | None) -> dict[str, Any]:
    """An e-commerce purchase with a card the merchant keeps on file (field 48 SE 22 SF 05:
    ``indicator``), the expiry it keeps, no CVV2 (no merchant may keep one)."""
    stored = {} if indicator is None else {"48": f"2208 0504{indicator}".replace(" ", "")}
    return purchase(card, 500, **{"22": "812", "25": "59", "35": None, "14": expiry, **stored})


async def test_a_renewal_lost_in_the_post_hands_over_through_its_replacement(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The renewed plastic is lost in the post (reported lost before its activation) and
    replaced under a new PAN: the cardholder keeps paying with the old card until the
    replacement is activated, then the old card stops, as it would have when the lost one
    was activated."""
    host = await start_host(nursery, tmp_path, store_url)
    old = host.cards["restricted"]
    security = SecurityModule.open(host.config.security, demo=True)
    switch = await Switch.connect(host.port)
    async with opened_store(store_url) as store:
        service, old_id = await year_ahead(store, security, old)
        renewed = await service.apply(old_id, "renew")
        await service.apply(renewed["card_id"], "ship")
        await service.apply(renewed["card_id"], "report-lost", reason="lost in the post")
        replacement = await service.apply(renewed["card_id"], "replace")
        assert replacement["card_id"] not in (old_id, renewed["card_id"])
        assert (await switch.send(purchase(old, 500)))["39"] == "00"  # still the card in use
        await service.apply(replacement["card_id"], "ship")
        await service.apply(replacement["card_id"], "activate")
        assert (await service.get_card(old_id))["state"] == "replaced"
        assert (await service.get_card(renewed["card_id"]))["state"] == "lost"
        assert (await switch.send(purchase(old, 500)))["39"] == "62"  # card.replaced
        retired = [e for e in await service.audit(subject=old_id) if e["action"] == "card.retire"]
        assert len(retired) == 1 and f"successor {renewed['card_id']}" in retired[0]["after"]
    await switch.aclose()
