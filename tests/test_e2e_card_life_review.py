"""A card's life through the admin API and the TCP server: what a renewal's successor inherits
from the card it renews, what reporting that card lost does to the renewal, the successor's own
history, and retried lifecycle requests. Both store backends."""

from __future__ import annotations

import time
from typing import Any

from host_admin import card_id_of, start_host_with_admin
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import Host, purchase, store_url, with_pin  # noqa: F401 (fixture)

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cards.track2 import build_track2
from authhost.models.context import replay_contexts
from authhost.security.module import SecurityModule
from authhost.security.pinblock import encrypt_pin_block
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


def plastic(host: Host, card: dict[str, Any], expiry: str) -> dict[str, Any]:
    """``card`` as the plastic with the same PAN and ``expiry`` (its own card values)."""
    security = SecurityModule.open(host.config.security, demo=True)
    values = security.card_values(card["pan"], expiry, card["service_code"], "cvk")
    track2 = build_track2(card["pan"], expiry, card["service_code"], values.icvv)
    return dict(card, expiry=expiry, track2=track2)


async def ok(port: int, method: str, path: str, payload: Any = None, **kw: Any) -> Any:
    reply = await call(port, method, path, payload=payload, **kw)
    assert reply.status == 200, reply
    return reply.json


async def renewed(port: int, old_id: str) -> dict[str, Any]:
    return await ok(port, "POST", f"/v1/cards/{old_id}/renew")


async def activate(port: int, card_id: str) -> None:
    await ok(port, "POST", f"/v1/cards/{card_id}/ship")
    await ok(port, "POST", f"/v1/cards/{card_id}/activate")


async def test_changes_to_the_renewed_card_are_carried_to_its_successor(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """Between the renewal and the activation of the new plastic the cardholder changes their
    name, billing address, limits, controls, stop payments and travel notices on the card in
    use: the new card has them all, and authorises by them."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    base = f"/v1/cards/{old_id}"
    await ok(port, "POST", f"{base}/personalise", {"cardholder_name": "JANE NEWNAME",
             "address_ref": "addr-2", "billing_postcode": "10115", "billing_street": "12"})  # fmt: skip
    await ok(port, "PUT", f"{base}/limits", {"per_transaction": 800})
    await ok(port, "PUT", f"{base}/controls", {"blocked_channels": ["ecommerce"]})
    stops = {"stops": [{"merchant_id": "MERCHANT0000009", "until": ""}]}
    await ok(port, "PUT", f"{base}/stop-payments", stops)
    trip = {"notices": [{"countries": ["840"], "start": "2030-01-01", "end": "2030-01-20"}]}
    await ok(port, "PUT", f"{base}/travel-notices", trip)
    # what was set on the successor itself and not changed on the old card since stays
    await ok(port, "POST", f"/v1/cards/{new['card_id']}/personalise", {"address_ref": "addr-3"})
    await ok(port, "POST", f"{base}/personalise", {"cardholder_name": "JANE Q NEWNAME"})
    await activate(port, new["card_id"])

    after = await ok(port, "GET", f"/v1/cards/{new['card_id']}")
    assert after["cardholder_name"] == "JANE Q NEWNAME" and after["address_ref"] == "addr-3"
    assert after["billing_address_on_file"] is True
    assert after["limits"]["per_transaction"] == 800
    assert after["controls"]["blocked_channels"] == ["ecommerce"]
    assert after["stop_payments"] == stops["stops"]
    assert after["travel_notices"] == trip["notices"]

    card = plastic(host, visa, new["expiry"])
    switch = await Switch.connect(host.port)
    assert (await switch.send(purchase(card, 700)))["39"] == "00"
    assert (await switch.send(purchase(card, 900)))["39"] == "61"  # the carried limit
    assert (await switch.send(purchase(visa, 700)))["39"] == "54"  # the old plastic: retired
    await switch.aclose()


async def test_reporting_the_card_lost_withdraws_its_pending_renewal(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The renewal has the lost card's number: it is cancelled with it (a thief holding the
    old plastic knows the number), and the lost card is replaced under a new PAN."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    await ok(port, "POST", f"/v1/cards/{new['card_id']}/ship")
    await ok(port, "POST", f"/v1/cards/{old_id}/report-lost", {"reason": "left on a train"})

    successor = await ok(port, "GET", f"/v1/cards/{new['card_id']}")
    assert successor["state"] == "closed"
    refused = await call(port, "POST", f"/v1/cards/{new['card_id']}/activate")
    assert refused.status == 409 and "closed" in refused.json["error"]
    switch = await Switch.connect(host.port)
    assert (await switch.send(purchase(plastic(host, visa, new["expiry"]), 500)))["39"] == "41"
    assert (await switch.send(purchase(visa, 500)))["39"] == "41"
    await switch.aclose()

    replacement = await ok(port, "POST", f"/v1/cards/{old_id}/replace")
    await activate(port, replacement["card_id"])
    assert await card_id_of(port, visa["pan"]) == old_id  # a new PAN: the old one stays lost
    audit = await ok(port, "GET", f"/v1/audit?subject={new['card_id']}")
    (closed,) = [e for e in audit["audit"] if e["action"] == "card.cancel"]
    assert old_id in closed["after"] and "lost" in closed["after"]


async def test_a_renewal_s_successor_has_its_own_issue_entry(nursery, tmp_path, store_url):  # noqa: F811
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    audit = await ok(port, "GET", f"/v1/audit?subject={new['card_id']}")
    (issued,) = [e for e in audit["audit"] if e["action"] == "card.issue"]
    assert f'"replaces":"{old_id}"' in issued["after"] and '"renew"' in issued["after"]
    assert visa["pan"] not in str(audit)


async def test_a_pin_changed_at_the_atm_before_the_activation_is_the_successor_s_pin(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The PIN is the cardholder's, not the plastic's: changed at an ATM with the old card
    while the renewed one is in the post, it is the PIN of the renewed card too."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    old_pin, new_pin = visa["pin"], "4826" if visa["pin"] != "4826" else "4827"
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    switch = await Switch.connect(host.port)
    change = with_pin(purchase(visa, **{"3": "920000", "4": None, "18": "6011"}), host, visa,
                      old_pin)  # fmt: skip
    change["125"] = encrypt_pin_block(host.zpk(), new_pin, visa["pan"]).hex().upper()
    assert (await switch.send(change))["39"] == "00"
    await activate(port, new["card_id"])

    card = plastic(host, visa, new["expiry"])
    assert (await switch.send(with_pin(purchase(card, 500), host, card, old_pin)))["39"] == "55"
    assert (await switch.send(with_pin(purchase(card, 500), host, card, new_pin)))["39"] == "00"
    await switch.aclose()


async def test_a_pin_set_by_the_bank_before_the_activation_is_the_successor_s_pin(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    new_pin = "4826" if visa["pin"] != "4826" else "4827"
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    block = encrypt_pin_block(host.zpk(), new_pin, visa["pan"]).hex().upper()
    await ok(port, "PUT", f"/v1/cards/{old_id}/pin", {"pin_block": block})
    await activate(port, new["card_id"])

    card = plastic(host, visa, new["expiry"])
    switch = await Switch.connect(host.port)
    assert (await switch.send(with_pin(purchase(card, 500), host, card, new_pin)))["39"] == "00"
    await switch.aclose()


async def test_a_retried_replacement_with_its_idempotency_key_makes_one_card(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """A client whose "replace" timed out sends it again with the same Idempotency-Key: the
    same new card comes back, and the card has one replacement."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    old_id = await card_id_of(port, host.cards["active-visa"]["pan"])
    await ok(port, "POST", f"/v1/cards/{old_id}/report-stolen")
    key = {"Idempotency-Key": "replace-7f3a"}
    first = await ok(port, "POST", f"/v1/cards/{old_id}/replace", headers=key)
    again = await ok(port, "POST", f"/v1/cards/{old_id}/replace", headers=key)
    assert again["card_id"] == first["card_id"]
    without_key = await call(port, "POST", f"/v1/cards/{old_id}/replace")
    assert without_key.status == 409 and "already replaced" in without_key.json["error"]
    listed = await ok(port, "GET", f"/v1/cards?account_id={first['account_id']}&limit=1000")
    assert [c["card_id"] for c in listed["cards"] if c["replaces"] == old_id] == [first["card_id"]]
    other = await call(port, "POST", f"/v1/cards/{old_id}/replace", payload={"reason": "x"},
                       headers=key)  # fmt: skip
    assert other.status == 409 and "Idempotency-Key" in other.json["error"]
    # renew and reissue take one too; other lifecycle actions change nothing twice
    live = await card_id_of(port, host.cards["active-credit"]["pan"])
    renew_key = {"Idempotency-Key": "renew-1"}
    one = await ok(port, "POST", f"/v1/cards/{live}/renew", headers=renew_key)
    assert (await ok(port, "POST", f"/v1/cards/{live}/renew", headers=renew_key)) == one
    refused = await call(port, "POST", f"/v1/cards/{live}/suspend", headers=renew_key)
    assert refused.status == 400


async def test_a_pin_set_on_the_renewal_itself_is_kept_at_its_activation(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The bank sent the renewed card a PIN of its own (a PIN mailer): activating it keeps
    that PIN rather than the old card's."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    own_pin = "4826" if visa["pin"] != "4826" else "4827"
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    block = encrypt_pin_block(host.zpk(), own_pin, visa["pan"]).hex().upper()
    await ok(port, "PUT", f"/v1/cards/{new['card_id']}/pin", {"pin_block": block})
    await activate(port, new["card_id"])

    card = plastic(host, visa, new["expiry"])
    switch = await Switch.connect(host.port)
    assert (await switch.send(with_pin(purchase(card, 500), host, card, own_pin)))["39"] == "00"
    await switch.aclose()


async def test_a_card_past_its_expiry_is_not_shipped_or_activated(nursery, tmp_path, store_url):  # noqa: F811
    """A plastic left unactivated past its expiry date would be active and decline every
    payment (54): activating it is refused with 409 and what to do instead."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    async with opened_store(store_url) as store:
        security = SecurityModule.open(host.config.security, demo=True)
        past = CardService(store, security, "e2e", clock=lambda: time.time() - 4 * 3.2e7)
        spec = rq.IssueCard(product_id="demo-visa-debit", account_id="demo-acc-1")
        shipped = await past.issue_card(spec)
        await past.apply(shipped["card_id"], "ship")
        unshipped = await past.issue_card(spec)
    refusals = ((shipped["card_id"], "activate", "renew it"),
                (unshipped["card_id"], "ship", "cancel it"))  # fmt: skip
    for card_id, action, instead in refusals:
        refused = await call(port, "POST", f"/v1/cards/{card_id}/{action}")
        assert refused.status == 409, refused
        assert "expired at the end of" in refused.json["error"]
        assert instead in refused.json["error"]
    assert (await ok(port, "GET", f"/v1/cards/{shipped['card_id']}"))["state"] == "issued"
    assert (await ok(port, "POST", f"/v1/cards/{shipped['card_id']}/expire"))["state"] == "expired"


async def test_a_renewal_goes_on_with_its_predecessor_s_velocity(nursery, tmp_path, store_url):  # noqa: F811
    """Velocity is the card number's (docs/admin.md): an activated renewal (the same PAN)
    counts what its predecessor did in the window, so the day's limit is not spent once on
    each card."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    old = host.cards["restricted"]  # 3 a day
    switch = await Switch.connect(host.port)
    assert [(await switch.send(purchase(old, 100)))["39"] for _ in range(2)] == ["00", "00"]
    old_id = await card_id_of(port, old["pan"])
    new = await renewed(port, old_id)
    await activate(port, new["card_id"])
    renewal = plastic(host, old, new["expiry"])
    # the third of the day, then the limit: counted across both cards
    assert [(await switch.send(purchase(renewal, 100)))["39"] for _ in range(2)] == [
        "00", "65"]  # fmt: skip
    await switch.aclose()

    # the offline replay (training, backtests) counts the card number's history the same way
    async with opened_store(store_url) as store:
        rows = [e.as_row() async for e in store.export_journal(JournalQuery())]
    counts = [
        (row["card_id"] == old_id, row["response_code"], ctx.velocity.approved_count_24h)
        for row, ctx in replay_contexts(rows)
        if row["pan_index"] == rows[-1]["pan_index"] and row["message_class"] == "authorisation"
    ]
    assert counts == [(True, "00", 0), (True, "00", 1), (False, "00", 2), (False, "65", 3)]


async def test_a_card_moved_to_another_account_takes_its_renewal_along(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    await ok(port, "POST", f"/v1/cards/{old_id}/personalise", {"account_id": "demo-acc-2"})
    assert (await ok(port, "GET", f"/v1/cards/{new['card_id']}"))["account_id"] == "demo-acc-2"
    listed = await ok(port, "GET", "/v1/cards?account_id=demo-acc-2&limit=1000")
    assert new["card_id"] in [c["card_id"] for c in listed["cards"]]
    audit = await ok(port, "GET", f"/v1/audit?subject={new['card_id']}")
    (carried,) = [e for e in audit["audit"] if e["action"] == "card.carried"]
    assert '"fields":["account_id"]' in carried["after"] and old_id in carried["after"]
    await activate(port, new["card_id"])
    switch = await Switch.connect(host.port)
    assert (await switch.send(purchase(plastic(host, visa, new["expiry"]), 100)))["39"] == "00"
    await switch.aclose()


async def test_a_compromised_card_s_pending_renewal_is_withdrawn_and_the_card_reissued(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """A network reports the number exposed while its renewal (the same number) is in the
    post: reissuing must not leave the exposed number to live on in the renewal."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    alert = {"pans": [visa["pan"]], "action": "reissue"}
    done = await ok(port, "POST", "/v1/cards/compromised", alert)
    assert done["not_allowed"] == 0 and len(done["cards"]) == 1, done
    reissue = done["cards"][0]
    assert reissue["card_id"] != new["card_id"] and reissue["replaces"] == old_id
    assert (await ok(port, "GET", f"/v1/cards/{new['card_id']}"))["state"] == "closed"
    refused = await call(port, "POST", f"/v1/cards/{new['card_id']}/activate")
    assert refused.status == 409
    assert visa["pan"] not in str(done)

    # suspended for the breach: the renewal of another card is withdrawn too (its activation
    # would have lifted the suspension)
    credit = host.cards["active-credit"]
    credit_id = await card_id_of(port, credit["pan"])
    pending = await renewed(port, credit_id)
    alert = {"pans": [credit["pan"]], "action": "suspend"}
    assert (await ok(port, "POST", "/v1/cards/compromised", alert))["cards"][0]["state"] == (
        "suspended"
    )
    assert (await ok(port, "GET", f"/v1/cards/{pending['card_id']}"))["state"] == "closed"


async def test_the_pin_of_a_lost_card_is_not_unlocked(nursery, tmp_path, store_url):  # noqa: F811
    """A lost card is final: nothing on it changes, its PIN try counter neither (it was
    unlocked, and a PIN unblock queued for the finder's chip)."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    card = host.cards["active-3624"]
    wrong = "9999" if card["pin"] != "9999" else "8888"
    switch = await Switch.connect(host.port)
    assert (await switch.send(with_pin(purchase(card), host, card, wrong)))["39"] == "55"
    await switch.aclose()
    card_id = await card_id_of(port, card["pan"])
    await ok(port, "POST", f"/v1/cards/{card_id}/report-lost")
    refused = await call(port, "POST", f"/v1/cards/{card_id}/pin/unlock")
    assert refused.status == 409 and "lost" in refused.json["error"], refused
    assert (await ok(port, "GET", f"/v1/cards/{card_id}"))["pin_tries"] == 1


async def test_not_me_withdraws_the_renewal_that_has_the_exposed_number(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The cardholder answers a payment "it was not me" (the card's details are out) while
    its renewal, with the same number, is in the post: the renewal is cancelled (activating it
    would lift the suspension and give the fraudster's number a new life), and with
    ``reissue`` the card is reissued under a new PAN (it was refused, "already replaced")."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    visa = host.cards["active-visa"]
    old_id = await card_id_of(port, visa["pan"])
    new = await renewed(port, old_id)
    switch = await Switch.connect(host.port)
    paid = await switch.send(purchase(visa, 700))
    await switch.aclose()
    journal = await ok(port, "GET", f"/v1/cards/{old_id}/journal?limit=10")
    (entry,) = [row for row in journal["journal"] if row["stan"] == paid["11"]]
    path = f"/v1/cards/{old_id}/journal/{entry['journal_id']}/cardholder-answer"
    said = await ok(port, "POST", path, {"was_cardholder": False, "reissue": True})
    assert said["card"]["state"] == "suspended"
    assert said["successor"]["card_id"] != new["card_id"], said
    assert said["successor"]["replaces"] == old_id
    assert (await ok(port, "GET", f"/v1/cards/{new['card_id']}"))["state"] == "closed"


async def test_a_renewal_of_a_pending_renewal_is_withdrawn_with_it(nursery, tmp_path, store_url):  # noqa: F811
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    old_id = await card_id_of(port, host.cards["active-visa"]["pan"])
    first = await renewed(port, old_id)
    await ok(port, "POST", f"/v1/cards/{first['card_id']}/ship")
    second = await renewed(port, first["card_id"])
    await ok(port, "POST", f"/v1/cards/{old_id}/report-stolen")
    for card in (first, second):
        assert (await ok(port, "GET", f"/v1/cards/{card['card_id']}"))["state"] == "closed"
    refused = await call(port, "POST", f"/v1/cards/{second['card_id']}/ship")
    assert refused.status == 409
