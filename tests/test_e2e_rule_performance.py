"""What each rule did in production (rules.performance), over a running host on both stores:
its matches, what became of them (approved, declined by it or by another rule, let through by
a cardholder's pass, reviewed) and the labels that came back (a chargeback, an analyst, the
cardholder's "it was me")."""

from __future__ import annotations

import json
import time

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import store_url  # noqa: F401 - fixture
from test_e2e_cardholder_answer import OTHER, RULES, answer, journal_of, web

import authhost.admin.service.journal as journal_service

RULES_WITH_MORE = (
    RULES
    + """
[[rule]]
name = "watch-web"
expression = "channel == 'ecommerce' and amount >= 50.00"
action = "review"
reason = "FR-WATCH"

[[rule]]
name = "small-web-trial"
expression = "channel == 'ecommerce' and amount < 20.00"
action = "decline"
reason = "FR-SMALL"
mode = "shadow"
active_until = 2099-01-01T00:00:00Z
"""
)


async def test_each_rules_matches_outcomes_and_labels(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    started = time.time() - 1
    at = await visa_at_host(nursery, tmp_path, store_url, rules=RULES_WITH_MORE)
    sent = {
        "asked": web(at.visa, 15_000),
        "retry": None,  # after the cardholder's answer
        "watched": web(at.visa, 6_000, OTHER),
        "policy": web(at.visa, 95_000, OTHER),
        "small": web(at.visa, 1_000, OTHER),
    }
    codes = {}
    for name in sent:
        if name == "retry":
            first = (await journal_of(at.port, at.card_id))[sent["asked"]["11"]]
            said = await answer(at.port, at.card_id, first["journal_id"], was_cardholder=True)
            assert said.status == 200, said
            sent[name] = web(at.visa, 15_000)
        codes[name] = (await at.switch.send(sent[name]))["39"]
    assert codes == {"asked": "59", "retry": "00", "watched": "00", "policy": "57", "small": "00"}
    rows = await journal_of(at.port, at.card_id)
    ids = {name: rows[fields["11"]]["journal_id"] for name, fields in sent.items()}
    for name, source in (("policy", "analyst"), ("watched", "chargeback")):
        path = f"/v1/cards/{at.card_id}/journal/{ids[name]}/fraud-report"
        assert (await call(at.port, "POST", path, payload={"source": source})).status == 200

    day = time.strftime("%Y-%m-%d", time.gmtime())
    reply = await call(at.port, "GET", f"/v1/rules/performance?day={day}", token=AUDITOR_TOKEN)
    assert reply.status == 200, reply
    report = reply.json
    assert report["entries"] == 5 and report["entries_with_matches"] == 5
    by_rule = {row["rule"]: row for row in report["rules"]}
    counted = ("matches", "approved", "declined", "declined_by_rule", "passed", "reviewed",
               "fraud", "genuine", "genuine_by_cardholder", "declined_genuine",
               "declined_genuine_by_rule")  # fmt: skip
    assert {rule: tuple(row[k] for k in counted) for rule, row in by_rule.items()} == {
        # asked, retry, watched, policy: the declines were its own once, the policy's once
        "watch-web": (4, 2, 2, 0, 1, 1, 2, 1, 1, 1, 0),
        "large-web-payment": (3, 1, 2, 1, 1, 0, 1, 1, 1, 1, 1),
        "web-policy": (1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0),
        "small-web-trial": (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    }
    # the customer turned away ("asked", then "it was me") was the decline rule's: the review
    # rule that matched it too came first in "which rule turns genuine customers away?"
    assert [row["rule"] for row in report["rules"]][:2] == ["large-web-payment", "watch-web"]
    assert by_rule["large-web-payment"]["precision"] == 0.5
    assert by_rule["watch-web"]["precision"] == round(2 / 3, 4)
    assert by_rule["large-web-payment"]["fraud_amount_minor"] == {"978": 95_000}
    assert by_rule["watch-web"]["fraud_amount_minor"] == {"978": 95_000 + 6_000}
    assert (by_rule["small-web-trial"]["shadow"], by_rule["web-policy"]["action"]) == (
        True,
        "decline",
    )
    # a temporary rule's window, as the rules file says it now
    assert by_rule["small-web-trial"]["window"] == "until 2099-01-01T00:00:00Z"
    assert by_rule["watch-web"]["window"] == ""

    # a busy day's report reads the fraud reports a batch of entries at a time: batches of two
    # (here) must count what one batch counts
    monkeypatch.setattr(journal_service, "REPORT_BATCH", 2)
    batched = await call(at.port, "GET", f"/v1/rules/performance?day={day}", token=AUDITOR_TOKEN)
    assert batched.json == report

    other_day = await call(at.port, "GET", "/v1/rules/performance?day=2020-01-01",
                           token=AUDITOR_TOKEN)  # fmt: skip
    assert other_day.json["entries"] == 0
    assert all(row["matches"] == 0 for row in other_day.json["rules"])  # the file's rules, idle
    bad = await call(at.port, "GET", "/v1/rules/performance?day=yesterday", token=AUDITOR_TOKEN)
    assert bad.status == 400 or bad.status == 422, bad
    assert "day" in bad.json["error"]

    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(RULES_WITH_MORE)
    code, out = await run_cli(
        "rules", "performance", "--day", day, "--rules", str(rules_file), "--output", "table",
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 0, out
    line = next(line for line in out.splitlines() if "large-web-payment" in line)
    cells = [cell.strip() for cell in line.split("│") if cell.strip()]
    assert cells == ["large-web-payment", "decline", "3", "1", "2", "1", "1", "0", "1", "1", "1",
                     "1", "1", "0.50", "950.00 978"]  # fmt: skip

    # --since alone: from then up to now (it was refused: "give a day, or until after since")
    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("rules", "performance", "--since", str(started), "--config", config)
    assert code == 0, out
    assert json.loads(out)["entries"] == 5
    code, out = await run_cli("rules", "performance", "--since", str(time.time() + 3600),
                              "--config", config)  # fmt: skip
    assert code == 1 and "is in the future" in out
