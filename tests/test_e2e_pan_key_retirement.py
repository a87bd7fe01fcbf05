"""The PAN data key's end of cryptoperiod, beside a running host, on both stores: rotate,
reseal every stored PAN under the new version, retire the old one (refused while a PAN still
needs it). The host issues under the new version as soon as it is on disk, the cards keep
working, and every PAN still opens."""

from __future__ import annotations

import json

from host_admin import cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture

from authhost.security.module import SecurityModule
from authhost.store import opened_store


async def test_an_old_pan_key_is_retired_once_no_stored_pan_needs_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    config = cli_config(tmp_path, store_url)
    demo_cards = len(host.cards)

    code, output = await run_cli("keys", "rotate-pan-key", "--config", str(config))
    assert code == 0 and "version 2" in output, output
    # the running host issues the next card under version 2 (it reads the rotation from disk)
    issued = await call(port, "POST", "/v1/cards",
                        payload={"product_id": "demo-visa-debit", "account_id": "demo-acc-1"})  # fmt: skip
    assert issued.status == 201, issued.json

    code, output = await run_cli("keys", "retire-pan-key", "1", "--config", str(config))
    assert code != 0 and "still sealed under PAN data key version 1" in output, output
    assert "Traceback" not in output

    code, output = await run_cli("keys", "reseal-pans", "--config", str(config))
    assert code == 0, output
    summary = json.loads(output)
    before = summary["cards_by_version_before"]
    assert before["2"] == 1 and before["1"] >= demo_cards  # (renewals made in the demo too)
    assert summary["resealed"] == before["1"] and summary["changed_meanwhile"] == 0

    code, output = await run_cli("keys", "retire-pan-key", "1", "--config", str(config))
    assert code == 0, output
    assert json.loads(output) == {"retired_version": 1, "pan_key_version": 2}
    code, output = await run_cli("keys", "retire-pan-key", "2", "--config", str(config))
    assert code != 0 and "newest" in output
    code, output = await run_cli("keys", "retire-pan-key", "99", "--config", str(config))
    assert code != 0 and "version 99 is not in the key store" in output
    assert "Traceback" not in output

    # every stored PAN opens under what is left, and is the card's
    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        for name, demo in host.cards.items():
            card = await store.find_card(security.pan_index(demo["pan"]))
            assert card is not None, name
            blob = await store.pan_ciphertext(card.card_id)
            assert security.pan_blob_version(blob) == 2, name
            assert security.decrypt_pan(blob, card.card_id) == demo["pan"], name
    switch = await Switch.connect(host.port)
    assert (await switch.send(purchase(host.cards["active-visa"])))["39"] == "00"
    code, output = await run_cli("keys", "reseal-pans", "--config", str(config))
    assert code == 0 and json.loads(output)["resealed"] == 0  # nothing left to do
    audit = await call(port, "GET", "/v1/audit?subject=pan-data", token=AUDITOR_TOKEN)
    actions = [a["action"] for a in audit.json["audit"]]
    assert actions.count("pan_key.reseal") == 2 and actions.count("pan_key.retire") == 1
    assert host.cards["active-visa"]["pan"] not in json.dumps(audit.json)
