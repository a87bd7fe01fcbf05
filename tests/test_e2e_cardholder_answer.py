"""The cardholder's answer to a fraud alert, over a running host on both stores: "it was me"
labels the payment genuine and lets the retry through the fraud rules (that merchant, that
amount, a while: nothing more); "it was not me" labels it fraud, suspends the card and can
reissue it; bad answers are refused before anything is written."""

from __future__ import annotations

import json
import time
from typing import Any

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import ecommerce, purchase, store_url  # noqa: F401 - fixture

from authhost.cards.cardholder_pass import PASS_REASON

SHOP, OTHER = "SHOP-ELECTRO-01", "SHOP-GARDEN-002"

RULES = """
[[rule]]
name = "web-policy"          # a policy, not a suspicion: no answer lifts it
expression = "channel == 'ecommerce' and amount >= 900.00"
action = "decline"
response_code = "57"
reason = "POLICY-WEB"

[[rule]]
name = "large-web-payment"   # suspected fraud (59): the cardholder is asked
expression = "channel == 'ecommerce' and amount >= 100.00"
action = "decline"
reason = "FR-WEB"
"""


def web(visa: dict[str, Any], amount: int, merchant: str = SHOP) -> dict[str, Any]:
    return ecommerce(visa, visa["cvv2"], **{"4": f"{amount:012d}", "42": merchant})


async def journal_of(port: int, card_id: str) -> dict[str, dict[str, Any]]:
    """The card's journal rows by STAN."""
    reply = await call(port, "GET", f"/v1/cards/{card_id}/journal?limit=500", token=AUDITOR_TOKEN)
    assert reply.status == 200, reply
    return {row["stan"]: row for row in reply.json["journal"]}


async def answer(port: int, card_id: str, journal_id: int, **body: Any):
    path = f"/v1/cards/{card_id}/journal/{journal_id}/cardholder-answer"
    return await call(port, "POST", path, payload=body)


async def test_it_was_me_lets_the_retry_through_and_nothing_more(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url, rules=RULES)
    first = web(at.visa, 15_000)
    assert (await at.switch.send(first))["39"] == "59"
    asked = (await journal_of(at.port, at.card_id))[first["11"]]
    assert asked["reason_codes"] == "FR-WEB"

    before = time.time()
    said = await answer(at.port, at.card_id, asked["journal_id"], was_cardholder=True)
    assert said.status == 200, said
    given = said.json["card"]["cardholder_pass"]
    assert {k: given[k] for k in ("journal_id", "merchant_id", "max_amount_minor")} == {
        "journal_id": asked["journal_id"], "merchant_id": SHOP, "max_amount_minor": 15_000}  # fmt: skip
    assert before + 3600 <= given["until"] <= time.time() + 3600
    report = said.json["fraud_report"]
    assert (report["fraud"], report["source"], said.json["successor"]) == (
        False,
        "cardholder",
        None,
    )

    sent = {
        "retry": web(at.visa, 15_000),
        "a cent more": web(at.visa, 15_001),
        "elsewhere": web(at.visa, 15_000, OTHER),
        "small elsewhere": web(at.visa, 5_000, OTHER),
    }
    codes = {name: (await at.switch.send(fields))["39"] for name, fields in sent.items()}
    assert codes == {"retry": "00", "a cent more": "59", "elsewhere": "59", "small elsewhere": "00"}
    rows = await journal_of(at.port, at.card_id)
    retried = rows[sent["retry"]["11"]]
    assert retried["reason_codes"].split(";") == [PASS_REASON, "FR-WEB"]
    assert retried["rule_matches"] == "large-web-payment" and not retried["review"]
    assert rows[sent["a cent more"]["11"]]["reason_codes"] == "FR-WEB"
    assert rows[first["11"]]["verdict"] == "genuine"
    code, out = await run_cli("journal", "show", at.card_id, "--output", "table", "--config",
                              str(cli_config(tmp_path, store_url)))  # fmt: skip
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert code == 0 and "150.00 978" in lines[str(asked["journal_id"])]
    assert (
        "FR-WEB" in lines[str(asked["journal_id"])] and "genuine" in lines[str(asked["journal_id"])]
    )
    assert "fraud.cardholder_pass FR-WEB" in lines[str(retried["journal_id"])]

    # a wider pass: any merchant, more money; the policy rule still declines
    wider = await answer(at.port, at.card_id, asked["journal_id"], was_cardholder=True,
                         any_merchant=True, max_amount_minor=100_000, pass_minutes=5)  # fmt: skip
    assert wider.status == 200 and wider.json["card"]["cardholder_pass"]["merchant_id"] == ""
    wide = {"garden": web(at.visa, 50_000, OTHER), "policy": web(at.visa, 95_000, OTHER)}
    codes = {name: (await at.switch.send(fields))["39"] for name, fields in wide.items()}
    assert codes == {"garden": "00", "policy": "57"}

    # the CLI: an answer with no pass ends the one there was
    code, out = await run_cli(
        "journal", "cardholder-answer", at.card_id, str(asked["journal_id"]), "--was-me",
        "--minutes", "0", "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 0, out
    assert '"cardholder_pass": null' in out
    # the verdict's report id, as `journal report-fraud` prints it (it printed null)
    listed = await call(at.port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    newest = listed.json["reports"][-1]
    assert json.loads(out)["fraud_report"]["report_id"] == newest["report_id"] is not None
    assert (await at.switch.send(web(at.visa, 50_000, OTHER)))["39"] == "59"


async def test_not_me_suspends_the_card_and_reissues_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url, rules=RULES)
    first = web(at.visa, 20_000)
    assert (await at.switch.send(first))["39"] == "59"
    asked = (await journal_of(at.port, at.card_id))[first["11"]]
    given = await answer(at.port, at.card_id, asked["journal_id"], was_cardholder=True)
    assert given.json["card"]["cardholder_pass"] is not None

    note = f"cardholder called: {at.visa['pan']} never left home"
    said = await answer(at.port, at.card_id, asked["journal_id"], was_cardholder=False,
                        reissue=True, note=note)  # fmt: skip
    assert said.status == 200, said
    card, successor = said.json["card"], said.json["successor"]
    assert (card["state"], card["cardholder_pass"]) == ("suspended", None)
    assert successor["replaces"] == at.card_id and successor["state"] == "created"
    assert (said.json["fraud_report"]["fraud"], said.json["fraud_report"]["source"]) == (
        True, "cardholder")  # fmt: skip
    # the verdict's report id, as GET /v1/fraud-reports lists it (the answer said null)
    listed = await call(at.port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    newest = listed.json["reports"][-1]
    assert said.json["fraud_report"]["report_id"] == newest["report_id"] is not None
    assert given.json["fraud_report"]["report_id"] < newest["report_id"]
    relabelled = await call(at.port, "POST",
                            f"/v1/cards/{at.card_id}/journal/{asked['journal_id']}/fraud-report",
                            payload={"source": "analyst"})  # fmt: skip
    assert relabelled.json["report_id"] > newest["report_id"]
    assert at.visa["pan"] not in str(said.json)
    assert (await at.switch.send(web(at.visa, 20_000)))["39"] == "62"  # suspended
    assert (await at.switch.send(purchase(at.visa)))["39"] == "62"
    rows = await journal_of(at.port, at.card_id)
    assert rows[first["11"]]["verdict"] == "fraud"

    audit = await call(at.port, "GET", f"/v1/audit?subject={at.card_id}", token=AUDITOR_TOKEN)
    assert audit.status == 200, audit
    actions = [entry["action"] for entry in audit.json["audit"]]
    assert actions.count("card.cardholder_answer") == 2 and "card.reissue" in actions
    assert at.visa["pan"] not in str(audit.json)


async def test_bad_answers_are_refused_and_write_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url, rules=RULES)
    lost = at.host.cards["lost"]
    no_merchant = web(at.visa, 12_000, None)
    at_lost = purchase(lost)
    assert (await at.switch.send(no_merchant))["39"] == "59"
    assert (await at.switch.send(at_lost))["39"] == "41"
    visa_entry = (await journal_of(at.port, at.card_id))[no_merchant["11"]]["journal_id"]
    found = await call(at.port, "POST", "/v1/cards/search", payload={"pan": lost["pan"]},
                       token=AUDITOR_TOKEN)  # fmt: skip
    lost_id = found.json["card_id"]
    lost_entry = (await journal_of(at.port, lost_id))[at_lost["11"]]["journal_id"]

    refused = {
        "no merchant to pass": (at.card_id, visa_entry, {"was_cardholder": True}, 422),
        "reissue with it was me": (at.card_id, visa_entry,
                                   {"was_cardholder": True, "reissue": True}, 422),
        "a pass of two days": (at.card_id, visa_entry,
                               {"was_cardholder": True, "pass_minutes": 2880}, 422),
        "no answer": (at.card_id, visa_entry, {}, 422),
        "another card's entry": (at.card_id, lost_entry, {"was_cardholder": False}, 404),
        "an unknown card": ("no-such-card", visa_entry, {"was_cardholder": False}, 404),
        "reissue a lost card": (lost_id, lost_entry, {"was_cardholder": False, "reissue": True},
                                409),
    }  # fmt: skip
    for case, (card_id, journal_id, body, status) in refused.items():
        reply = await answer(at.port, card_id, journal_id, **body)
        assert reply.status == status, (case, reply)
        assert reply.json["error"] and "Traceback" not in str(reply.json), case
    auditor = await call(at.port, "POST",
                         f"/v1/cards/{at.card_id}/journal/{visa_entry}/cardholder-answer",
                         payload={"was_cardholder": False}, token=AUDITOR_TOKEN)  # fmt: skip
    assert auditor.status == 403

    rows = await journal_of(at.port, at.card_id)
    assert rows[no_merchant["11"]]["verdict"] is None
    assert (await journal_of(at.port, lost_id))[at_lost["11"]]["verdict"] is None
    view = await call(at.port, "GET", f"/v1/cards/{at.card_id}", token=AUDITOR_TOKEN)
    assert (view.json["state"], view.json["cardholder_pass"]) == ("active", None)

    # what the refusal asked for works: a pass for any merchant
    fine = await answer(at.port, at.card_id, visa_entry, was_cardholder=True, any_merchant=True)
    assert fine.status == 200 and fine.json["card"]["cardholder_pass"]["max_amount_minor"] == 12_000
    assert (await at.switch.send(web(at.visa, 12_000, OTHER)))["39"] == "00"
