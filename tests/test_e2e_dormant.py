"""Dormant cards over a running host, on both stores: the active cards nobody has used since a
moment (never used: counted from activation) are listed with when each was last used, and
suspending them declines them (62) while the cards in use go on."""

from __future__ import annotations

import json
import time

from host_admin import card_id_of, cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture


async def test_dormant_cards_are_listed_and_suspended(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    visa, mastercard = host.cards["active-visa"], host.cards["active-3624"]
    assert (await switch.send(purchase(visa)))["39"] == "00"
    cut = time.time() + 0.01
    while time.time() < cut + 0.01:  # the next request is strictly after the cut-off
        time.sleep(0.005)
    assert (await switch.send(purchase(mastercard)))["39"] == "00"
    ids = {name: await card_id_of(port, host.cards[name]["pan"])
           for name in ("active-visa", "active-3624", "active-visa-low", "active-credit")}  # fmt: skip

    one = await call(port, "GET", f"/v1/cards/{ids['active-3624']}", token=AUDITOR_TOKEN)
    assert one.json["last_used"] > cut  # a single card's view says when it was last used
    never = await call(port, "GET", f"/v1/cards/{ids['active-credit']}", token=AUDITOR_TOKEN)
    assert never.json["last_used"] is None
    listed = await call(port, "GET", f"/v1/cards/dormant?unused_since={cut}", token=AUDITOR_TOKEN)
    assert listed.status == 200, listed
    found = {c["card_id"]: c for c in listed.json["cards"]}
    assert {ids["active-visa"], ids["active-visa-low"], ids["active-credit"]} <= set(found)
    assert ids["active-3624"] not in found  # used after the cut-off
    assert all(c["state"] == "active" and (c["last_used"] or 0) < cut for c in found.values())
    assert found[ids["active-visa"]]["last_used"] < cut  # used, before the cut-off
    assert found[ids["active-visa-low"]]["last_used"] is None  # never used
    assert all("*" in c["pan"] for c in found.values())  # masked

    done = await call(port, "POST", f"/v1/cards/dormant/suspend?unused_since={cut}")
    assert done.status == 200 and done.json["suspended"], done
    assert {c["state"] for c in done.json["cards"]} == {"suspended"}
    assert (await switch.send(purchase(visa)))["39"] == "62"
    assert (await switch.send(purchase(mastercard)))["39"] == "00"
    audit = await call(port, "GET", f"/v1/audit?subject={ids['active-visa']}",
                       token=AUDITOR_TOKEN)  # fmt: skip
    (suspension,) = [a for a in audit.json["audit"] if a["action"] == "card.suspend"]
    assert "dormant" in json.dumps(suspension)

    for bad in ("", "?days=1&unused_since=1", "?days=0", "?unused_since=soon"):
        refused = await call(port, "GET", f"/v1/cards/dormant{bad}", token=AUDITOR_TOKEN)
        assert refused.status == 400 and refused.json["error"], bad
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("cards", "dormant", "--days", "1", "--config", str(config))
    assert code == 0 and json.loads(output)["cards"] == [], output  # all used or activated today
