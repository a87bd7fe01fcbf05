"""A live product changed over the admin API (PATCH /v1/products/{id}) or the CLI: the next
authorisation on its cards is decided by the new controls, on both stores; what may not
change is refused with a 422 and the product is left as it was; every change is audited."""

from __future__ import annotations

import json

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture

from authhost.admin.demo import PRODUCTS


async def test_a_product_change_applies_to_the_next_authorisation(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    [product_id] = [p.product_id for p in PRODUCTS if visa["pan"].startswith(p.bin)]
    before = (await call(port, "GET", f"/v1/products/{product_id}")).json
    assert "5411" not in before["blocked_mccs"]
    assert (await switch.send(purchase(visa, amount=5_000)))["39"] == "00"  # a grocery, 50.00

    change = {"blocked_mccs": ["5411", "7995"], "limits": {"per_transaction": 4_000}}
    done = await call(port, "PATCH", f"/v1/products/{product_id}", payload=change)
    assert done.status == 200, done
    assert sorted(done.json["blocked_mccs"]) == ["5411", "7995"]
    assert done.json["limits"] == {**before["limits"], "per_transaction": 4_000}  # others kept
    assert done.json["bin"] == before["bin"] and done.json["name"] == before["name"]
    # the very next requests: groceries blocked (57), 50.00 elsewhere over the new limit (61)
    assert (await switch.send(purchase(visa, amount=1_000)))["39"] == "57"
    assert (await switch.send(purchase(visa, amount=5_000, **{"18": "5732"})))["39"] == "61"
    assert (await switch.send(purchase(visa, amount=3_000, **{"18": "5732"})))["39"] == "00"

    # what may not change, or is no change, or is not valid: 422 and nothing changed
    for bad in ({"bin": "999999"}, {}, {"channels": ["telepathy"]}, {"name": ""},
                {"validity_months": 0}, {"limits": {}}):  # fmt: skip  # {}: was "none"
        refused = await call(port, "PATCH", f"/v1/products/{product_id}", payload=bad)
        assert refused.status == 422 and refused.json["error"], bad
    auditor = await call(port, "PATCH", f"/v1/products/{product_id}", payload={"name": "x"},
                         token=AUDITOR_TOKEN)  # fmt: skip
    assert auditor.status == 403
    missing = await call(port, "PATCH", "/v1/products/nope", payload={"name": "x"})
    assert missing.status == 404
    assert (await call(port, "GET", f"/v1/products/{product_id}")).json == done.json
    # a change made on what another operator has changed since: 409, and nothing changes
    assert done.json["version"] == before["version"] + 1
    stale = await call(port, "PATCH", f"/v1/products/{product_id}",
                       payload={"name": "Stale", "version": before["version"]})  # fmt: skip
    assert stale.status == 409 and "version" in stale.json["error"]
    assert (await call(port, "GET", f"/v1/products/{product_id}")).json == done.json

    # the whole set: PUT .../limits (a limit not given is no limit)
    whole = await call(port, "PUT", f"/v1/products/{product_id}/limits",
                       payload={"daily_count": 50})  # fmt: skip
    assert whole.status == 200, whole
    assert {k: v for k, v in whole.json["limits"].items() if v is not None} == {"daily_count": 50}
    assert whole.json["version"] == done.json["version"] + 1
    bad = await call(port, "PUT", f"/v1/products/{product_id}/limits", payload={"x": 1})
    assert bad.status == 422
    put_back = await call(port, "PUT", f"/v1/products/{product_id}/limits",
                          payload={**before["limits"], "per_transaction": 4_000})  # fmt: skip
    assert put_back.json["limits"] == done.json["limits"]

    # the CLI: lift the limit again (null: that one removed, the others kept)
    config = cli_config(tmp_path, store_url)
    spec = tmp_path / "change.json"
    spec.write_text(json.dumps({"limits": {"per_transaction": None}, "blocked_mccs": []}))
    code, output = await run_cli(
        "products", "update", product_id, "--json", str(spec), "--config", str(config)
    )
    assert code == 0, output
    assert json.loads(output)["limits"] == {**before["limits"], "per_transaction": None}
    assert (await switch.send(purchase(visa, amount=5_000)))["39"] == "00"

    audit = await call(port, "GET", f"/v1/audit?subject={product_id}", token=AUDITOR_TOKEN)
    updates = [a for a in audit.json["audit"] if a["action"] == "product.update"]
    assert len(updates) == 4  # the PATCH, both PUTs, the CLI's
    first_before, first_after = json.loads(updates[0]["before"]), json.loads(updates[0]["after"])
    assert first_before["limits"]["per_transaction"] == before["limits"]["per_transaction"]
    assert first_after["limits"]["per_transaction"] == 4_000
