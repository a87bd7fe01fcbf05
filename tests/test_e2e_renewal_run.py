"""The monthly renewal run over a running host, on both stores: every live card expiring in
the month gets a successor (same PAN, new expiry, at created), the old plastics keep working
until theirs are activated, running the month again renews nothing twice, and the run is
audited (POST /v1/cards/renewals and ``authhost cards renew-expiring``)."""

from __future__ import annotations

import json

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture

import authhost.admin.service.base as service_base

LIVE = ("issued", "active", "suspended")


async def test_the_renewal_run_renews_each_expiring_card_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    # the run reads the cards one at a time while it renews them: paging must neither skip
    # nor repeat a card whose renewal changed it
    monkeypatch.setattr(service_base, "RENEWAL_PAGE", 1)
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    cards = (await call(port, "GET", "/v1/cards?limit=1000")).json["cards"]
    month = next(c["expiry"] for c in cards if c["card_id"] == at.card_id)  # found by its PAN
    expected = sorted(
        c["card_id"] for c in cards
        if c["expiry"] == month and c["state"] in LIVE and not c["replaced_by"]
    )  # fmt: skip
    assert expected and len(expected) < len(cards)  # lost, closed and expired ones are not due

    ahead = await call(port, "GET", "/v1/cards/expiring?months=60", token=AUDITOR_TOKEN)
    assert ahead.status == 200 and len(ahead.json["months"]) == 60
    due_then = {m["expiry"]: m["due"] for m in ahead.json["months"]}
    assert due_then[month] == len(expected) and sum(due_then.values()) == len(expected)

    dry = await call(port, "POST", "/v1/cards/renewals", payload={"expiry": month, "dry_run": True})
    assert dry.status == 200, dry
    assert sorted(c["card_id"] for c in dry.json["cards"]) == expected
    assert dry.json["renewed"] == 0
    after_dry = (await call(port, "GET", "/v1/cards?limit=1000")).json["cards"]
    assert len(after_dry) == len(cards)  # a dry run creates nothing

    done = await call(port, "POST", "/v1/cards/renewals", payload={"expiry": month})
    assert done.status == 200, done
    report = done.json
    assert (report["due"], report["renewed"], report["failed"]) == (len(expected), len(expected), 0)
    assert sorted(c["card_id"] for c in report["cards"]) == expected
    by_id = {
        c["card_id"]: c for c in (await call(port, "GET", "/v1/cards?limit=1000")).json["cards"]
    }
    for row in report["cards"]:
        old, new = by_id[row["card_id"]], by_id[row["new_card_id"]]
        assert old["replaced_by"] == new["card_id"] and new["replaces"] == old["card_id"]
        assert (new["state"], new["pan"]) == ("created", old["pan"])  # the same PAN
        assert new["expiry"] > month and row["new_expiry"] == new["expiry"]
        assert visa["pan"] not in json.dumps(row)
    ahead = await call(port, "GET", "/v1/cards/expiring?months=60", token=AUDITOR_TOKEN)
    assert {m["expiry"]: m["due"] for m in ahead.json["months"]}[month] == 0  # all renewed
    assert (await call(port, "GET", "/v1/cards/expiring?months=61")).status == 400
    # the bureau gets every new plastic in one file
    created = [c["card_id"] for c in (await call(port, "GET", "/v1/cards?state=created&limit=1000",
                                                 token=AUDITOR_TOKEN)).json["cards"]]  # fmt: skip
    assert {row["new_card_id"] for row in report["cards"]} <= set(created)
    bureau = tmp_path / "bureau.jsonl"
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli(
        "cards", "export-personalisation", "--all-created", "--out", str(bureau),
        "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    records = [json.loads(line) for line in bureau.read_text().splitlines()]
    assert len(records) == len(created) and f"{len(created)} personalisation" in output
    code, output = await run_cli(
        "cards", "export-personalisation", "--out", str(tmp_path / "x.jsonl"), "--config",
        str(config),
    )  # fmt: skip
    assert code == 1 and "--all-created" in output

    # the old plastic works until its successor is activated
    assert (await switch.send(purchase(visa, amount=1_000)))["39"] == "00"

    # the month again, from the CLI: nothing renewed twice
    code, output = await run_cli("cards", "renew-expiring", month, "--config", str(config))
    assert code == 0, output
    again = json.loads(output)
    assert (again["due"], again["renewed"], again["already_renewed"]) == (0, 0, len(expected))
    code, output = await run_cli("cards", "renew-expiring", "2713", "--config", str(config))
    assert code == 1 and "expiry" in output
    bad = await call(port, "POST", "/v1/cards/renewals", payload={"expiry": "27-01"})
    assert bad.status == 422
    auditor = await call(port, "POST", "/v1/cards/renewals", payload={"expiry": month},
                         token=AUDITOR_TOKEN)  # fmt: skip
    assert auditor.status == 403

    audit = await call(port, "GET", f"/v1/audit?subject=expiry-{month}", token=AUDITOR_TOKEN)
    runs = [json.loads(a["after"]) for a in audit.json["audit"]]
    assert [(r["renewed"], r["already_renewed"]) for r in runs] == [
        (len(expected), 0), (0, len(expected))
    ]  # fmt: skip
