"""The networks' exception file from a running host's store, on both stores: every PAN the host
refuses for its card's state (lost 41, stolen 43, suspended, closed, damaged and replaced under
a new PAN 62), as the host answers it, and nothing it would approve; a card resumed is gone
from the next file."""

from __future__ import annotations

import json
import stat

from host_admin import card_id_of, cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture


async def test_the_exception_file_lists_what_the_host_refuses(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    host, port, switch = at.host, at.port, at.switch
    config = cli_config(tmp_path, store_url)
    first = tmp_path / "exceptions-1.jsonl"
    code, output = await run_cli("cards", "exception-file", "--out", str(first),
                                 "--config", str(config))  # fmt: skip
    assert code == 0, output
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    listed = {r["pan"]: r for r in map(json.loads, first.read_text().splitlines())}
    for state, action in (("lost", "41"), ("stolen", "43"), ("suspended", "62"),
                          ("closed", "62"), ("damaged", "62")):  # fmt: skip
        card = host.cards[state]
        assert listed[card["pan"]]["action_code"] == action, state
        assert listed[card["pan"]]["purge_date"] == card["expiry"]
        # the host answers each of them with the same code
        assert (await switch.send(purchase(card)))["39"] == action, state
    for state in ("active-visa", "expired", "issued", "created"):
        assert host.cards[state]["pan"] not in listed, state
    assert len(listed) == 5

    # resumed: the next file leaves it out
    suspended = host.cards["suspended"]
    suspended_id = (await call(port, "GET", "/v1/cards?state=suspended", token=AUDITOR_TOKEN)
                    ).json["cards"][0]["card_id"]  # fmt: skip
    assert (await call(port, "POST", f"/v1/cards/{suspended_id}/resume")).status == 200
    second = tmp_path / "exceptions-2.jsonl"
    code, output = await run_cli("cards", "exception-file", "--out", str(second),
                                 "--config", str(config))  # fmt: skip
    assert code == 0, output
    assert suspended["pan"] not in second.read_text() and len(second.read_text().splitlines()) == 4
    code, output = await run_cli("cards", "exception-file", "--out", str(second),
                                 "--config", str(config))  # fmt: skip
    assert code != 0 and "exists" in output
    audit = await call(port, "GET", "/v1/audit?subject=cards", token=AUDITOR_TOKEN)
    files = [a for a in audit.json["audit"] if a["action"] == "card.exception_file"]
    assert len(files) == 2 and all(host.cards["lost"]["pan"] not in json.dumps(a) for a in files)
    assert await card_id_of(port, at.visa["pan"]) == at.card_id  # the live card is untouched


async def test_the_exposed_number_of_a_reissued_card_is_listed_once_its_successor_is_active(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A reissue retires the exposed number when the new card is activated: the host answers
    it 62 (card.replaced), and so must the network's stand-in. A renewal retired by its
    activated successor leaves the PAN to that card, and stays out."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch = at.port, at.switch
    reissued = await call(port, "POST", f"/v1/cards/{at.card_id}/reissue")
    assert reissued.status == 200, reissued
    new_id = reissued.json["card_id"]
    for action in ("ship", "activate"):
        assert (await call(port, "POST", f"/v1/cards/{new_id}/{action}")).status == 200
    assert (await switch.send(purchase(at.visa)))["39"] == "62"
    renewed_pan = at.host.cards["active-credit"]["pan"]
    renewed_id = await card_id_of(port, renewed_pan)
    renewal = (await call(port, "POST", f"/v1/cards/{renewed_id}/renew")).json["card_id"]
    for action in ("ship", "activate"):
        assert (await call(port, "POST", f"/v1/cards/{renewal}/{action}")).status == 200

    out = tmp_path / "exceptions.jsonl"
    code, output = await run_cli("cards", "exception-file", "--out", str(out),
                                 "--config", str(cli_config(tmp_path, store_url)))  # fmt: skip
    assert code == 0, output
    listed = {r["pan"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert listed[at.visa["pan"]]["action_code"] == "62"  # was missing: stand-in approved it
    assert listed[at.visa["pan"]]["state"] == "replaced"
    assert renewed_pan not in listed
    await switch.aclose()
