"""The networks' account updater file from a running host's store, on both stores: a renewal
activated is a new expiry (E), a reissued card activated a new number (A), a cancelled card a
closure (C); a successor not yet activated changes nothing a merchant keeps, so is left out."""

from __future__ import annotations

import json
import stat
import time

from host_admin import card_id_of, cli_config, run_cli, start_host_with_admin
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import store_url  # noqa: F401 - fixture


async def test_the_account_updater_file_lists_what_merchants_on_file_must_change(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    config = cli_config(tmp_path, store_url)
    started = time.time()
    ids = {name: await card_id_of(port, host.cards[name]["pan"])
           for name in ("active-credit", "active-visa-low", "active-3624", "active-visa")}  # fmt: skip

    async def successor(name: str, action: str, activate: bool = True) -> dict:
        made = await call(port, "POST", f"/v1/cards/{ids[name]}/{action}")
        assert made.status == 200, made.json
        new = made.json
        for step in ("ship", "activate") if activate else ():
            assert (await call(port, "POST", f"/v1/cards/{new['card_id']}/{step}")).status == 200
        return new

    renewed = await successor("active-credit", "renew")
    reissued = await successor("active-visa-low", "reissue")
    await successor("active-visa", "renew", activate=False)  # not yet in the cardholder's hands
    # a renewal withdrawn before its activation: the card it renews stays live, no closure
    withdrawn = await successor("active-3624", "renew", activate=False)
    assert (await call(port, "POST", f"/v1/cards/{withdrawn['card_id']}/cancel")).status == 200
    assert (await call(port, "POST", f"/v1/cards/{ids['active-3624']}/cancel")).status == 200

    out = tmp_path / "updates.jsonl"
    code, output = await run_cli("cards", "account-updates", "--out", str(out),
                                 "--since", str(started), "--until", str(time.time() + 1),
                                 "--config", str(config))  # fmt: skip
    assert code == 0, output
    assert "A 1, E 1, C 1" in output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    records = {r["old_card_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {ids["active-credit"], ids["active-visa-low"], ids["active-3624"]}

    credit = host.cards["active-credit"]
    expiry = records[ids["active-credit"]]
    assert (expiry["update"], expiry["old_pan"], expiry["new_pan"]) == ("E", credit["pan"],
                                                                         credit["pan"])  # fmt: skip
    assert (expiry["old_expiry"], expiry["new_expiry"]) == (credit["expiry"], renewed["expiry"])
    assert expiry["new_card_id"] == renewed["card_id"]

    low = host.cards["active-visa-low"]
    number = records[ids["active-visa-low"]]
    assert number["update"] == "A" and number["old_pan"] == low["pan"]
    assert number["new_pan"] != low["pan"] and number["new_pan"][:6] == low["pan"][:6]
    assert (
        number["new_pan"][-4:] == reissued["pan"][-4:]
        and number["new_expiry"] == reissued["expiry"]
    )

    closed = records[ids["active-3624"]]
    assert (closed["update"], closed["old_pan"], closed["new_pan"], closed["new_expiry"]) == (
        "C",
        host.cards["active-3624"]["pan"],
        "",
        "",
    )

    # the period before: nothing; the same file again: refused
    earlier = tmp_path / "earlier.jsonl"
    code, output = await run_cli("cards", "account-updates", "--out", str(earlier),
                                 "--since", str(started - 7200), "--until", str(started - 60),
                                 "--config", str(config))  # fmt: skip
    assert code == 0 and earlier.read_text() == "", output
    code, output = await run_cli("cards", "account-updates", "--out", str(out),
                                 "--since", "1", "--until", "2", "--config", str(config))  # fmt: skip
    assert code != 0 and "exists" in output
    for bad, message in ((["--day", "2026-13-01"], "not a date"),
                         (["--since", "5", "--until", "1"], "until after since")):  # fmt: skip
        code, output = await run_cli("cards", "account-updates", "--out",
                                     str(tmp_path / "bad.jsonl"), *bad, "--config", str(config))  # fmt: skip
        assert code != 0 and message in output and "Traceback" not in output
        assert not (tmp_path / "bad.jsonl").exists()  # nothing written
    audit = await call(port, "GET", "/v1/audit?subject=cards", token=AUDITOR_TOKEN)
    runs = [a for a in audit.json["audit"] if a["action"] == "card.account_updates"]
    assert len(runs) == 2 and all(low["pan"] not in json.dumps(a) for a in runs)
    assert {"A": 1, "E": 1, "C": 1} in [json.loads(a["after"])["updates"] for a in runs]
