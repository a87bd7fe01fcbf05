"""A network's compromise alert over a running host, on both stores: this issuer's live cards
among the exposed PANs go on a rules list (a rule then declines them online) or are suspended;
the other PANs are counted, and none is kept, printed or audited."""

from __future__ import annotations

import json

import trio
from host_admin import card_id_of, cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import RULES, ecommerce, purchase, store_url  # noqa: F401 - fixture

from authhost.cards.track2 import build_track2
from authhost.security.module import SecurityModule
from authhost.store import opened_store

WATCH_RULE = """
[[rule]]
name = "CMP-01 compromised card online"
expression = 'card.id in list("compromised_cards") and channel == "ecommerce"'
action = "decline"
response_code = "59"
reason = "compromised.online"
"""


async def test_a_compromise_alert_watches_or_suspends_the_cards_it_names(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url,
                                             rules=RULES + WATCH_RULE)  # fmt: skip
    switch = await Switch.connect(host.port)
    visa, mastercard = host.cards["active-visa"], host.cards["active-3624"]
    alert = tmp_path / "alert.txt"
    pans = [
        visa["pan"],
        host.cards["lost"]["pan"],
        "4000000000000002",
        host.cards["suspended"]["pan"],
    ]
    alert.write_text("\n".join(pans) + "\n")
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("cards", "compromised", str(alert), "--config", str(config))
    assert code == 0, output
    report = json.loads(output)
    assert (report["pans"], report["not_ours"], report["not_live"]) == (4, 1, 1)
    assert len(report["cards"]) == 2 and not any(p in output for p in pans)
    visa_id = await card_id_of(port, visa["pan"])
    listed = await call(port, "GET", "/v1/lists/compromised_cards", token=AUDITOR_TOKEN)
    assert visa_id in listed.json["values"]

    # the rule sees the list once the server has read it again (every few seconds)
    def check() -> dict:  # an online account verification: 85 until the rule declines it
        return ecommerce(visa, visa["cvv2"], amount=0, **{"25": "51"})

    online = None
    with trio.move_on_after(30):
        while (online := await switch.send(check()))["39"] != "59":
            await trio.sleep(1)
    assert online is not None and online["39"] == "59"
    assert (await switch.send(purchase(visa)))["39"] == "00"  # at the till: not this rule

    done = await call(port, "POST", "/v1/cards/compromised",
                      payload={"pans": [mastercard["pan"]], "action": "suspend"})  # fmt: skip
    assert done.status == 200 and done.json["cards"][0]["state"] == "suspended", done
    assert (await switch.send(purchase(mastercard)))["39"] == "62"
    broken = tmp_path / "broken.txt"
    broken.write_text(f"{visa['pan']}\n\n12ab{visa['pan'][4:]}\n")
    code, output = await run_cli("cards", "compromised", str(broken), "--config", str(config))
    # the file's line, not the request's index ("pans.1"), and the line's value never shown
    assert code != 0 and "broken.txt: line(s) 3: not a card number" in output, output
    assert visa["pan"][4:] not in output and "pans.1" not in output, output
    bad = await call(port, "POST", "/v1/cards/compromised", payload={"pans": ["12ab"]})
    assert bad.status == 422 and "12ab" not in bad.body.decode()
    audit = await call(port, "GET", "/v1/audit?subject=cards", token=AUDITOR_TOKEN)
    alerts = [a for a in audit.json["audit"] if a["action"] == "card.compromise_alert"]
    assert alerts and not any(mastercard["pan"] in json.dumps(a) for a in alerts)


async def test_an_exposed_card_is_reissued_and_the_old_one_works_until_the_new_one_does(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    visa = host.cards["active-visa"]
    done = await call(port, "POST", "/v1/cards/compromised",
                      payload={"pans": [visa["pan"]], "action": "reissue"})  # fmt: skip
    assert done.status == 200, done
    (new,) = done.json["cards"]
    old_id = await card_id_of(port, visa["pan"])
    assert new["state"] == "created" and new["replaces"] == old_id
    assert (await switch.send(purchase(visa)))["39"] == "00"  # the old card works meanwhile

    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        pan = security.decrypt_pan(await store.pan_ciphertext(new["card_id"]), new["card_id"])
    values = security.card_values(pan, new["expiry"], new["service_code"], "cvk")
    fresh = {"pan": pan, "expiry": new["expiry"], "currency": "978",
             "track2": build_track2(pan, new["expiry"], new["service_code"], values.icvv)}  # fmt: skip
    assert pan != visa["pan"]
    for action in ("ship", "activate"):
        assert (await call(port, "POST", f"/v1/cards/{new['card_id']}/{action}")).status == 200
    assert (await switch.send(purchase(fresh)))["39"] == "00"
    assert (await switch.send(purchase(visa)))["39"] == "62"  # retired: the exposed number
    again = await call(port, "POST", "/v1/cards/compromised",
                       payload={"pans": [visa["pan"]], "action": "reissue"})  # fmt: skip
    assert again.json["not_live"] == 1 and again.json["cards"] == []
