"""Payment tokens follow a card succeeded under a new PAN, over TCP on both stores: a reissue
(and a lost or stolen card's replacement) hands the old card's live tokens over to the new card
when the new card is activated, with their references and states, as the networks' token
services do on the issuer's PAN update. A wallet payment is then decided against the new card
(its state, its limits), the old card keeps no live token, deleted tokens stay behind, and the
notification service hears of each move once, with masked PANs only."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from host_admin import VisaAtHost, card_id_of, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import store_url  # noqa: F401 - fixture
from test_e2e_renewal import year_ahead
from test_e2e_tokens import APPLE_PAY, host_pan_index, token_number, wallet_payment

from authhost.cards.track2 import build_track2
from authhost.iso.messages import TokenData
from authhost.security.module import SecurityModule
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def ok(port: int, method: str, path: str, **options: Any) -> dict[str, Any]:
    reply = await call(port, method, path, **options)
    assert reply.status == 200, (path, reply.status, reply.json)
    return reply.json


async def add_token(at: VisaAtHost, card_id: str, seed: str, state: str = "active") -> TokenData:
    """A token registered on the card over the admin API (then set to ``state``)."""
    number = token_number(seed)
    view = await ok(at.port, "POST", f"/v1/cards/{card_id}/tokens",
                    payload={"token_pan": number, "requestor_id": APPLE_PAY,
                             "expiry": "3112", "device": f"watch {seed}"})  # fmt: skip
    if state != "active":
        [ref] = [t["token_ref"] for t in view["tokens"] if t["last4"] == number[-4:]]
        await ok(at.port, "PUT", f"/v1/cards/{card_id}/tokens/{ref}", payload={"state": state})
    return TokenData(number, "3112", APPLE_PAY, "C")


async def the_new_card(at: VisaAtHost, new: dict[str, Any]) -> dict[str, Any]:
    """The successor's PAN (decrypted from the store, as the bureau would) and expiry, as the
    network sends them once it has the token service's PAN update."""
    security = SecurityModule.open(at.host.config.security, demo=True)
    async with opened_store(at.host.store_url) as store:
        ciphertext = await store.pan_ciphertext(new["card_id"])
    pan = security.decrypt_pan(ciphertext, new["card_id"])
    values = security.card_values(pan, new["expiry"], new["service_code"], "cvk")
    track2 = build_track2(pan, new["expiry"], new["service_code"], values.icvv)
    return {"pan": pan, "expiry": new["expiry"], "currency": at.visa["currency"], "track2": track2}


def by_last4(view: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {t["last4"]: (t["token_ref"], t["state"]) for t in view["tokens"]}


async def wallet_events_after(at: VisaAtHost, cursor: int) -> list[dict[str, Any]]:
    reply = await ok(at.port, "GET", f"/v1/wallet-events?after_id={cursor}", token=AUDITOR_TOKEN)
    return reply["events"]


async def test_a_reissued_card_takes_the_wallet_tokens_over_when_activated(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    visa, old_id = at.visa, at.card_id
    google = at.visa["token"]
    paused = await add_token(at, old_id, "811", "suspended")  # the cardholder paused the watch
    removed = await add_token(at, old_id, "812", "deleted")
    before = by_last4(await ok(at.port, "GET", f"/v1/cards/{old_id}"))
    cursor = (await ok(at.port, "GET", "/v1/wallet-events", token=AUDITOR_TOKEN))["next_after_id"]

    # reissued (an exposed number), retried with its Idempotency-Key: one new card
    key = {"Idempotency-Key": "reissue-811"}
    new = await ok(at.port, "POST", f"/v1/cards/{old_id}/reissue", headers=key)
    assert await ok(at.port, "POST", f"/v1/cards/{old_id}/reissue", headers=key) == new
    assert new["tokens"] == []  # nothing moves before the new card is in use
    assert (await at.switch.send(wallet_payment(visa, google)))["39"] == "00"  # old one works
    fresh = await the_new_card(at, new)
    assert fresh["pan"] != visa["pan"]
    assert (await at.switch.send(wallet_payment(fresh, google)))["39"] == "78"  # not active
    await ok(at.port, "POST", f"/v1/cards/{new['card_id']}/ship")
    activated = await ok(at.port, "POST", f"/v1/cards/{new['card_id']}/activate")

    # the live tokens moved, with their references and states; the deleted one stayed behind
    moved = by_last4(activated)
    assert moved == {k: v for k, v in before.items() if k != removed.number[-4:]}
    assert moved[google["pan"][-4:]][1] == "active" and moved[paused.number[-4:]][1] == "suspended"
    old = await ok(at.port, "GET", f"/v1/cards/{old_id}")
    assert old["state"] == "replaced"
    assert [(t["last4"], t["state"]) for t in old["tokens"]] == [(removed.number[-4:], "deleted")]

    # the network now sends the new PAN with the token: decided against the new card
    paid = await at.switch.send(wallet_payment(fresh, google))
    assert paid["39"] == "00"
    assert (await at.switch.send(wallet_payment(fresh, paused)))["39"] == "62"  # suspended
    assert (await at.switch.send(wallet_payment(fresh, removed)))["39"] == "62"  # deleted: gone
    assert (await at.switch.send(wallet_payment(visa, google)))["39"] == "62"  # old: replaced
    await ok(at.port, "PUT", f"/v1/cards/{new['card_id']}/limits",
             payload={"per_transaction": 5_000})  # fmt: skip
    assert (await at.switch.send(wallet_payment(fresh, google, 6_000)))["39"] == "61"
    await ok(at.port, "POST", f"/v1/cards/{new['card_id']}/suspend")
    assert (await at.switch.send(wallet_payment(fresh, google)))["39"] == "62"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(card_id=new["card_id"], limit=100))
    seen = [(e.response_code, e.token_last4, e.reason_codes.split(";")[0]) for e in entries]
    last4 = google["pan"][-4:]
    assert seen == [
        ("78", "", "card.not_issued"),
        ("00", last4, ""),
        ("62", paused.number[-4:], "token.suspended"),
        ("62", "", "token.unknown"),
        ("61", last4, "limits.per_transaction"),
        ("62", "", "card.suspended"),  # the card's state is checked before the token
    ], seen

    # the token service hears of each move once: masked PANs and last four digits only
    events = await wallet_events_after(at, cursor)
    updates = [e for e in events if e["event"] == "token_pan_updated"]
    assert sorted(e["token"]["last4"] for e in updates) == sorted(moved)
    for event in updates:
        assert event["card_id"] == new["card_id"] and event["previous_card_id"] == old_id
        assert event["pan"] == new["pan"] and event["previous_pan"] == old["pan"]
        assert event["card_expiry"] == new["expiry"]
        assert event["token"]["token_ref"] == moved[event["token"]["last4"]][0]
    text = str(events)
    for number in (visa["pan"], fresh["pan"], google["pan"], paused.number):
        assert number not in text
    again = await call(at.port, "POST", f"/v1/cards/{new['card_id']}/activate")
    assert again.status == 409
    assert [e for e in await wallet_events_after(at, cursor) if e["event"] != "token_added"] == [
        e for e in events if e["event"] != "token_added"
    ]  # nothing moved twice


async def test_a_lost_or_stolen_card_s_tokens_wait_for_its_replacement(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The phone was not lost with the plastic: a lost card's tokens are declined with it (41)
    and pay on with its replacement once that is activated; one put in a wallet in the day
    before the report (the finder's?) is suspended. A stolen card's are all suspended (the
    thief may have put it in a wallet): they move suspended, and the bank resumes the phones
    the cardholder names."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    visa, old_id = at.visa, at.card_id
    google = visa["token"]
    async with opened_store(store_url) as store:  # the phone has had the card for weeks
        stored = await store.find_card(host_pan_index(at.host, visa["pan"]))
        assert stored is not None
        aged = replace(stored.tokens[0], created_at=stored.tokens[0].created_at - 30 * 86400)
        await store.update_card(replace(stored, tokens=(aged,)))
    lately = await add_token(at, old_id, "821")  # registered an hour before the report
    cursor = (await ok(at.port, "GET", "/v1/wallet-events", token=AUDITOR_TOKEN))["next_after_id"]

    lost = await ok(at.port, "POST", f"/v1/cards/{old_id}/report-lost")
    assert sorted(t["state"] for t in lost["tokens"]) == ["active", "suspended"]
    assert by_last4(lost)[lately.number[-4:]][1] == "suspended"
    assert (await at.switch.send(wallet_payment(visa, google)))["39"] == "41"
    new = await ok(at.port, "POST", f"/v1/cards/{old_id}/replace")
    assert new["tokens"] == []
    for action in ("ship", "activate"):
        activated = await ok(at.port, "POST", f"/v1/cards/{new['card_id']}/{action}")
    assert by_last4(activated) == by_last4(lost)
    fresh = await the_new_card(at, new)
    assert (await at.switch.send(wallet_payment(fresh, google)))["39"] == "00"
    assert (await at.switch.send(wallet_payment(fresh, lately)))["39"] == "62"
    assert (await at.switch.send(wallet_payment(visa, google)))["39"] == "41"  # still lost
    old = await ok(at.port, "GET", f"/v1/cards/{old_id}")
    assert old["state"] == "lost" and old["tokens"] == []
    audit = await ok(at.port, "GET", f"/v1/audit?subject={old_id}", token=AUDITOR_TOKEN)
    assert "card.tokens_moved" in [a["action"] for a in audit["audit"]]

    # stolen: every token suspended, moved suspended, resumed one by one
    low_id = await card_id_of(at.port, at.host.cards["active-3624"]["pan"])
    watch = await add_token(at, low_id, "822")
    stolen = await ok(at.port, "POST", f"/v1/cards/{low_id}/report-stolen")
    assert [t["state"] for t in stolen["tokens"]] == ["suspended"]
    successor = await ok(at.port, "POST", f"/v1/cards/{low_id}/replace")
    for action in ("ship", "activate"):
        activated = await ok(at.port, "POST", f"/v1/cards/{successor['card_id']}/{action}")
    [(ref, state)] = by_last4(activated).values()
    assert state == "suspended"
    fresh = await the_new_card(at, successor)
    assert (await at.switch.send(wallet_payment(fresh, watch)))["39"] == "62"
    await ok(at.port, "PUT", f"/v1/cards/{successor['card_id']}/tokens/{ref}",
             payload={"state": "active", "reason": "the cardholder's watch"})  # fmt: skip
    assert (await at.switch.send(wallet_payment(fresh, watch)))["39"] == "00"

    # the token service heard of each suspension at the report, and of each move
    events = [(e["event"], e["card_id"], e["token"]["last4"], e["token"]["state"])
              for e in await wallet_events_after(at, cursor)]  # fmt: skip
    assert events == [
        ("token_suspended", old_id, lately.number[-4:], "suspended"),
        *(
            ("token_pan_updated", new["card_id"], last4, state)
            for last4, (_, state) in by_last4(lost).items()
        ),
        ("token_added", low_id, watch.number[-4:], "active"),
        ("token_suspended", low_id, watch.number[-4:], "suspended"),
        ("token_pan_updated", successor["card_id"], watch.number[-4:], "suspended"),
        ("token_activated", successor["card_id"], watch.number[-4:], "active"),
    ]


async def test_a_renewal_lost_in_the_post_hands_the_tokens_over_through_its_replacement(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The renewal (the same PAN: a copy of the tokens) is lost in the post and replaced under
    a new PAN: the cardholder's phone pays on with the old card until the replacement is
    activated, which retires the old card and takes the token over once (one PAN update),
    leaving neither the old card nor the lost renewal a live token."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    visa, google = at.visa, at.visa["token"]
    security = SecurityModule.open(at.host.config.security, demo=True)
    async with opened_store(store_url) as store:
        service, old_id = await year_ahead(store, security, visa)
        cursor = (await service.wallet_events())["next_after_id"]
        renewed = await service.apply(old_id, "renew")
        assert by_last4(renewed) == by_last4(await service.get_card(old_id))
        await service.apply(renewed["card_id"], "ship")
        await service.apply(renewed["card_id"], "report-lost", reason="lost in the post")
        replacement = await service.apply(renewed["card_id"], "replace")
        assert (await at.switch.send(wallet_payment(visa, google)))["39"] == "00"
        await service.apply(replacement["card_id"], "ship")
        activated = await service.apply(replacement["card_id"], "activate")
        [(ref, state)] = by_last4(activated).values()
        assert state == "active" and (ref, state) == by_last4(renewed)[google["pan"][-4:]]
        for card_id in (old_id, renewed["card_id"]):
            assert (await service.get_card(card_id))["tokens"] == []
        events = (await service.wallet_events(cursor))["events"]
        assert [(e["event"], e["card_id"]) for e in events] == [
            ("token_pan_updated", replacement["card_id"])
        ]
    fresh = await the_new_card(at, replacement)
    assert (await at.switch.send(wallet_payment(fresh, google)))["39"] == "00"
    assert (await at.switch.send(wallet_payment(visa, google)))["39"] == "62"  # replaced
