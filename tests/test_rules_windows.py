"""Temporary rules: ``active_from``/``active_until`` limit a rule to a window of decision
times. An attack's block that nobody removes turns genuine customers away for months; with a
window it stops on its own, says so when loaded, and the tools judge each transaction by the
window at its own time. Over a real TCP server on both stores, the rules CLI and a backtest."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from host_admin import card_id_of, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture
from test_rules_backtest import write_csv
from test_rules_engine import CTX
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.rules.engine import RuleSet
from authhost.rules.rule import utc_text
from authhost.rules.rulefile import RuleLoadError, parse_rules
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

runner = CliRunner()
DAY = 86_400.0


def windowed(name: str, expression: str, action: str, **extra: str) -> str:
    """A TOML rule; ``extra`` values are written as they are (datetimes are bare in TOML)."""
    text = f'[[rule]]\nname = "{name}"\nexpression = "{expression}"\naction = "{action}"\n'
    return text + "".join(f"{key} = {value}\n" for key, value in extra.items())


def at(ts: float) -> str:
    return utc_text(ts)


def test_a_rule_runs_only_within_its_window() -> None:
    t = CTX.ts
    rules = RuleSet(
        parse_rules(
            windowed("ended", "amount > 1", "decline", reason='"R-ended"', active_until=at(t - 1))
            + windowed(
                "live",
                "amount > 1",
                "review",
                reason='"R-live"',
                active_from=at(t - 60),
                active_until=at(t + 60),
            )  # fmt: skip
            + windowed("later", "amount > 1", "decline", active_from=at(t + 1))
        ).rules,
        version="t",
    )
    out = rules.evaluate(CTX, None, {})
    assert out.matched == ["live"] and out.review and out.decline_code is None
    # the same transaction a second before the first rule ended: it declines
    earlier = rules.evaluate(dataclasses.replace(CTX, ts=t - 2), None, {})
    assert earlier.decline_code == "59" and earlier.reason_codes[0] == "R-ended"
    # the window's start is in it, its end is not
    assert rules.evaluate(dataclasses.replace(CTX, ts=t + 1), None, {}).matched == ["live", "later"]
    assert "live" not in rules.evaluate(dataclasses.replace(CTX, ts=t + 60), None, {}).matched
    # a what-if (a backtest's --ignore-windows) runs every rule whatever the time
    every = RuleSet(rules.rules, version="t", ignore_windows=True).evaluate(CTX, None, {})
    assert every.matched == ["ended", "live", "later"]


def test_an_allow_rule_outside_its_window_stops_nothing() -> None:
    t = CTX.ts
    rules = RuleSet(
        parse_rules(
            windowed("vip", "amount > 1", "allow", priority="1", active_until=at(t - DAY))
            + windowed("block", "amount > 1", "decline", priority="2")
        ).rules
    )
    out = rules.evaluate(CTX, None, {})
    assert not out.allowed and out.decline_code == "59" and out.matched == ["block"]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("active_until = 2026-12-05", "active_until is a date without a time"),
        ('active_until = "2026-12-05"', "active_until is a date without a time"),
        ("active_until = 2026-12-05T18:00:00", "active_until has no UTC offset"),
        ('active_from = "next monday"', "active_from 'next monday' is not a date and time"),
        ("active_from = 5", "active_from must be a date and time with its UTC offset"),
    ],
)
def test_a_window_without_a_clear_instant_is_refused_at_its_line(
    written: str, message: str
) -> None:
    text = '# temporary\n[[rule]]\nname = "x"\nexpression = "amount > 1"\naction = "review"\n'
    with pytest.raises(RuleLoadError) as refused:
        parse_rules(text + written + "\n", "f.toml")
    assert str(refused.value).startswith(f"f.toml:6: rule 'x': {message}"), str(refused.value)


def test_an_empty_window_is_refused_and_yaml_offsets_are_read() -> None:
    with pytest.raises(RuleLoadError, match="active_until must be after active_from"):
        parse_rules(windowed("x", "amount > 1", "review", active_from="2026-12-05T10:00:00Z",
                             active_until="2026-12-05T11:00:00+01:00"))  # fmt: skip
    parsed = parse_rules(
        "rule:\n  - name: x\n    expression: amount > 1\n    action: review\n"
        "    active_until: 2026-12-05T18:00:00+01:00\n",
        fmt="yaml",
    )
    assert parsed.rules[0].active_until == 1_796_490_000.0  # 17:00 UTC


def test_rules_check_and_list_show_ended_and_scheduled_rules(tmp_path: Path) -> None:
    now = time.time()
    path = tmp_path / "r.toml"
    path.write_text(
        windowed("old-attack", "amount > 1", "decline", active_until=at(now - DAY))
        + windowed("campaign", "amount > 1", "review", active_from=at(now + DAY))
        + windowed("always", "amount > 1", "review")
    )
    checked = runner.invoke(app, ["rules", "check", str(path)], env={"COLUMNS": "300"})
    assert checked.exit_code == 0, checked.output  # a warning, not an error
    assert f"warning: rule 'old-attack' (line 3) ended: until {at(now - DAY)}" in checked.output
    assert f"rule 'campaign' is scheduled: from {at(now + DAY)}" in checked.output
    assert "'always'" not in checked.output
    listed = runner.invoke(app, ["rules", "list", str(path)], env={"COLUMNS": "300"})
    assert listed.exit_code == 0, listed.output
    assert f"until {at(now - DAY)} (ENDED)" in listed.output
    assert f"from {at(now + DAY)} (SCHEDULED)" in listed.output


def test_a_backtest_runs_a_temporary_rule_on_its_window_unless_told_not_to(
    tmp_path: Path,
) -> None:
    """The hand-labelled rows of test_rules_backtest (times 1000-5000): a block of amounts
    over 500 until 1050 sees r4 (700.00 at 1000, genuine) and not r2 (600.00 at 1100, fraud);
    on every row it sees both."""
    data = write_csv(tmp_path / "labelled.csv")
    rules = tmp_path / "r.toml"
    rules.write_text(windowed("big", "amount > 500", "decline", active_until=at(1050)))
    base = ["backtest", "--rules", str(rules), "--data", str(data), "--no-progress"]
    within = runner.invoke(app, [*base, "--report-dir", str(tmp_path / "w")])
    assert within.exit_code == 0, within.output
    assert "temporary rules run only on the rows within their window" in within.output
    every = runner.invoke(app, [*base, "--ignore-windows", "--report-dir", str(tmp_path / "e")])
    assert every.exit_code == 0, every.output
    w = json.loads((tmp_path / "w" / "backtest.json").read_text())["sets"][0]
    e = json.loads((tmp_path / "e" / "backtest.json").read_text())["sets"][0]
    assert (w["declined_genuine_amount"], w["detection_rate"]) == ({"978": 700.0}, 0.0)
    assert e["declined_genuine_amount"] == {"978": 700.0} and e["detection_rate"] > 0


async def test_an_ended_rule_declines_nothing_online_and_explain_says_why(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    now = time.time()
    rules = (
        windowed(
            "old-block", "amount > 1", "decline", reason='"attack.old"', active_until=at(now - DAY)
        )  # fmt: skip
        + windowed(
            "next-week",
            "amount > 1",
            "decline",
            reason='"attack.next"',
            active_from=at(now + 7 * DAY),
        )  # fmt: skip
        + windowed(
            "this-week",
            "amount > 1",
            "review",
            reason='"attack.watch"',
            active_from=at(now - DAY),
            active_until=at(now + 7 * DAY),
        )  # fmt: skip
    )
    host, port = await start_host_with_admin(nursery, tmp_path, store_url, rules=rules)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa-low"]
    answer = await switch.send(purchase(card, amount=2_500))
    assert answer["39"] == "00"  # neither decline ran; the review rule flagged it
    card_id = await card_id_of(port, card["pan"])
    async with opened_store(store_url) as store:
        (entry,) = [e for e in await store.journal(JournalQuery(card_id=card_id, limit=100))
                    if e.stan == answer["11"]]  # fmt: skip
    assert entry.rule_matches == "this-week" and entry.review
    assert entry.reason_codes == "attack.watch"
    explained = await call(port, "GET", f"/v1/cards/{card_id}/journal/{entry.journal_id}/rules",
                           token=AUDITOR_TOKEN)  # fmt: skip
    assert explained.status == 200, explained.json
    verdicts = {r["name"]: r for r in explained.json["rules"]}
    assert verdicts["old-block"]["outside_window"] and not verdicts["old-block"]["matched"]
    assert verdicts["old-block"]["window"] == f"until {at(now - DAY)}"
    assert verdicts["next-week"]["outside_window"] and not verdicts["next-week"]["matched"]
    assert verdicts["this-week"]["matched"] and not verdicts["this-week"]["outside_window"]
    assert explained.json["outcome"]["matched"] == ["this-week"]


def test_ended_rules_are_logged_a_warning_on_reload_and_info_at_the_first_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every CLI command that builds the pipeline loads the rules: a warning there on each
    command was noise (`rules check` says it); a reload that brings an ended rule warns."""
    from authhost.rules.loader import RuleSource

    path = tmp_path / "r.toml"
    ended = windowed("old-attack", "amount > 1", "decline", active_until=at(time.time() - DAY))
    path.write_text(ended)
    with caplog.at_level("INFO", logger="authhost.rules"):
        source = RuleSource(path)
    [first] = [r for r in caplog.records if "past their active_until" in r.getMessage()]
    assert first.levelname == "INFO" and "old-attack" in first.getMessage()
    caplog.clear()
    path.write_text(ended + windowed("always", "amount > 1", "review"))
    with caplog.at_level("INFO", logger="authhost.rules"):
        assert source.reload().ok
    [again] = [r for r in caplog.records if "past their active_until" in r.getMessage()]
    assert again.levelname == "WARNING" and "old-attack" in again.getMessage()


def test_prometheus_counts_the_ended_rules_still_in_force(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from authhost.rules.loader import RuleSource
    from authhost.rules.metrics import RuleMetricsCollector

    now = time.time()
    path = tmp_path / "r.toml"
    path.write_text(
        windowed("old-1", "amount > 1", "decline", active_until=at(now - DAY))
        + windowed("old-2", "amount > 2", "review", active_until=at(now - 2 * DAY))
        + windowed("live", "amount > 1", "review", active_until=at(now + DAY))
    )
    source = RuleSource(path)
    registry = CollectorRegistry()
    registry.register(RuleMetricsCollector(source))
    assert "authhost_rules_ended 2.0" in generate_latest(registry).decode()
    path.write_text(windowed("live", "amount > 1", "review", active_until=at(now + DAY)))
    assert source.reload().ok
    assert "authhost_rules_ended 0.0" in generate_latest(registry).decode()
