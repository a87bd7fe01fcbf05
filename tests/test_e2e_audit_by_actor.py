"""A team lead reads one agent's actions in the audit log, over a running host on both stores:
``GET /v1/audit?actor=NAME`` (and ``authhost audit list --actor``) lists only what that token
or CLI user wrote, oldest or newest first, paging as the unfiltered log does. Before, the log
took no actor (400 "unknown query parameter(s): actor") and the lead read every entry of the
day by hand."""

from __future__ import annotations

import getpass
import json
import secrets

from conftest import free_port
from host_admin import cli_config, run_cli
from test_admin_support import call
from test_e2e_auth import start_host, store_url  # noqa: F401 - fixture

from authhost.config import AdminConfig

AGENT_A = "agent-a-" + secrets.token_hex(8)
AGENT_B = "agent-b-" + secrets.token_hex(8)
LEAD = "lead-" + secrets.token_hex(8)


async def test_the_audit_log_lists_one_agents_actions(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    port = free_port()
    tokens = f"{AGENT_A}:operator,{AGENT_B}:operator,{LEAD}:auditor"
    host = await start_host(
        nursery, tmp_path, store_url, admin=AdminConfig(port=port, tokens=tokens)
    )
    visa = await card_id_of_as(port, host.cards["active-visa"]["pan"])
    credit = await card_id_of_as(port, host.cards["active-credit"]["pan"])
    for card in (visa, credit):  # agent A suspends and resumes two cards
        for action in ("suspend", "resume"):
            done = await call(port, "POST", f"/v1/cards/{card}/{action}", token=AGENT_A)
            assert done.status == 200, done
    limits = {"per_transaction": 50000}
    done = await call(port, "PUT", f"/v1/cards/{visa}/limits", payload=limits, token=AGENT_B)
    assert done.status == 200, done
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("cards", "suspend", credit, "--config", str(config))
    assert code == 0, output

    everything = (await call(port, "GET", "/v1/audit?order=newest&limit=50", token=LEAD)).json[
        "audit"
    ]
    actor_a = next(e["actor"] for e in everything if e["action"] == "card.resume")
    actor_b = next(e["actor"] for e in everything if e["action"] == "card.limits")
    assert actor_a != actor_b

    of_a = await call(port, "GET", f"/v1/audit?actor={actor_a}", token=LEAD)
    assert of_a.status == 200, of_a
    assert [e["action"] for e in of_a.json["audit"]] == ["card.suspend", "card.resume"] * 2
    assert {e["actor"] for e in of_a.json["audit"]} == {actor_a}
    newest = await call(port, "GET", f"/v1/audit?actor={actor_a}&order=newest&limit=3", token=LEAD)
    page = newest.json["audit"]
    assert [e["action"] for e in page] == ["card.resume", "card.suspend", "card.resume"]
    back = page[-1]["audit_id"]
    rest = await call(port, "GET", f"/v1/audit?actor={actor_a}&before_id={back}", token=LEAD)
    assert [e["action"] for e in rest.json["audit"]] == ["card.suspend"]
    after = of_a.json["audit"][1]["audit_id"]
    later = await call(port, "GET", f"/v1/audit?actor={actor_a}&after_id={after}", token=LEAD)
    assert [e["audit_id"] for e in later.json["audit"]] == [
        e["audit_id"] for e in of_a.json["audit"][2:]
    ]
    of_b = await call(port, "GET", f"/v1/audit?actor={actor_b}&subject={visa}", token=LEAD)
    assert [e["action"] for e in of_b.json["audit"]] == ["card.limits"]

    login = f"cli:{getpass.getuser()}"
    code, output = await run_cli(
        "audit", "list", "--actor", login, "-o", "json", "--config", str(config)
    )
    assert code == 0, output
    assert [(e["action"], e["subject"]) for e in json.loads(output)] == [("card.suspend", credit)]


async def card_id_of_as(port: int, pan: str) -> str:
    """``card_id_of`` with the lead's token (the test's tokens are its own)."""
    found = await call(port, "POST", "/v1/cards/search", payload={"pan": pan}, token=LEAD)
    assert found.status == 200, found
    return found.json["card_id"]
