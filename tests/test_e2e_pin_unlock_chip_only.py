"""A PIN blocked at the till by offline PIN tries, which only the chip counted, is unblocked
by the bank's ``pin unlock``, over a running host on both stores: the host saw no wrong PIN
(its counter is 0), yet the PIN UNBLOCK is queued for the chip's next online request and the
unlock is audited (``chip_only``). Before, the unlock answered 200 and changed nothing: no
script, no audit entry, and the support agent told the cardholder it was done."""

from __future__ import annotations

import json

from host_admin import card_id_of, cli_config, run_cli, start_host_with_admin
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import store_url  # noqa: F401 - fixture


async def test_an_offline_pin_block_is_unblocked_on_the_chip(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    card_id = await card_id_of(port, host.cards["active-credit"]["pan"])  # a product with scripts
    card = (await call(port, "GET", f"/v1/cards/{card_id}", token=AUDITOR_TOKEN)).json
    assert card["pin_tries"] == 0 and card["chip_scripts"] == []

    unlocked = await call(port, "POST", f"/v1/cards/{card_id}/pin/unlock")
    assert unlocked.status == 200, unlocked
    assert unlocked.json["chip_scripts"] == ["pin_unblock"]
    audit = await call(port, "GET", f"/v1/audit?subject={card_id}", token=AUDITOR_TOKEN)
    (entry,) = [e for e in audit.json["audit"] if e["action"] == "pin.unlock"]
    assert json.loads(entry["after"])["chip_only"] is True

    # again, with the command still waiting: nothing more to do, nothing written
    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("pin", "unlock", card_id, "--config", config)
    assert code == 0 and json.loads(out)["chip_scripts"] == ["pin_unblock"], out
    audit = await call(port, "GET", f"/v1/audit?subject={card_id}", token=AUDITOR_TOKEN)
    assert [e["action"] for e in audit.json["audit"]].count("pin.unlock") == 1


async def test_an_unlock_with_nothing_to_unlock_says_so(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A card of a product that sends no issuer scripts (no ``imk_smi_name``), and no wrong
    PIN the host counted: the host can reach neither counter, so ``pin unlock`` answers 409
    saying so and what the cardholder can do, and changes nothing. Before, it answered 200
    with the card as it was and wrote no audit entry: the agent told the cardholder the PIN
    was unblocked, and the chip kept refusing it at the till."""
    _host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    product = {"product_id": "plain", "issuer_id": "bank1", "name": "No scripts", "bin": "476173"}
    assert (await call(port, "POST", "/v1/products", payload=product)).status == 201
    account = {"account_id": "plain-acc", "currency": "978", "balance": 10_000}
    assert (await call(port, "POST", "/v1/accounts", payload=account)).status == 201
    issued = await call(
        port, "POST", "/v1/cards", payload={"product_id": "plain", "account_id": "plain-acc"}
    )
    assert issued.status == 201, issued
    card_id = issued.json["card_id"]

    refused = await call(port, "POST", f"/v1/cards/{card_id}/pin/unlock")
    assert refused.status == 409, refused
    assert "no issuer scripts" in refused.json["error"], refused
    assert "ATM" in refused.json["error"], refused
    audit = await call(port, "GET", f"/v1/audit?subject={card_id}", token=AUDITOR_TOKEN)
    assert "pin.unlock" not in [e["action"] for e in audit.json["audit"]]
