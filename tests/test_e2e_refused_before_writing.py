"""Requests that change several things check everything that can refuse first: a compromise
alert whose cards are in mixed states, and a cardholder's "not me" with a reissue the card
cannot have, over a running host on both stores."""

from __future__ import annotations

from host_admin import card_id_of, visa_at_host
from test_admin_support import call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture
from test_e2e_cardholder_answer import answer, journal_of


async def test_a_suspend_alert_suspends_the_active_cards_and_counts_the_others(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    issued = at.host.cards["issued"]
    issued_id = await card_id_of(at.port, issued["pan"])
    alert = {"pans": [at.visa["pan"], issued["pan"]], "action": "suspend"}

    done = await call(at.port, "POST", "/v1/cards/compromised", payload=alert)

    assert done.status == 200, done
    assert (done.json["not_live"], done.json["not_allowed"]) == (0, 1)
    assert [c["card_id"] for c in done.json["cards"]] == [at.card_id]
    assert done.json["cards"][0]["state"] == "suspended"
    issued_now = await call(at.port, "GET", f"/v1/cards/{issued_id}")
    assert issued_now.json["state"] == "issued"
    audit = await call(at.port, "GET", "/v1/audit?subject=cards")
    (entry,) = [e for e in audit.json["audit"] if e["action"] == "card.compromise_alert"]
    assert '"not_allowed":1' in entry["after"]
    assert (await at.switch.send(purchase(at.visa)))["39"] == "62"


async def test_not_me_with_a_reissue_the_card_cannot_have_changes_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    paid = purchase(at.visa, 700)
    assert (await at.switch.send(paid))["39"] == "00"
    entry = (await journal_of(at.port, at.card_id))[paid["11"]]["journal_id"]
    # a reissue ordered already (a new PAN); a pending renewal is withdrawn instead, since it
    # has the exposed number (test_e2e_card_life_review)
    reissued = await call(at.port, "POST", f"/v1/cards/{at.card_id}/reissue")
    assert reissued.status == 200, reissued
    before = await call(at.port, "GET", f"/v1/audit?subject={at.card_id}")

    reply = await answer(at.port, at.card_id, entry, was_cardholder=False, reissue=True)

    assert reply.status == 409 and "already replaced" in reply.json["error"], reply
    card = await call(at.port, "GET", f"/v1/cards/{at.card_id}")
    assert card.json["state"] == "active"
    assert (await journal_of(at.port, at.card_id))[paid["11"]]["verdict"] is None
    after = await call(at.port, "GET", f"/v1/audit?subject={at.card_id}")
    assert after.json["audit"] == before.json["audit"]
    assert (await at.switch.send(purchase(at.visa)))["39"] == "00"
