"""Backtest figures on a small hand-labelled file, worked out by hand below; and the rules CLI
(check, list, backtest with reports, reload by SIGHUP to a real process)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.rules.backtest import run_backtest
from authhost.rules.dataset import DatasetError, iter_rows, read_labelled
from authhost.rules.loader import load_rule_set
from simulator.traffic import ScenarioRates, TrafficConfig, generate

MERCHANT_RULES = Path(__file__).parent.parent / "examples" / "rules" / "merchant_rules.toml"

RULES_A = """
[[rule]]
name = "big"
expression = "amount > 500"
action = "decline"
priority = 10

[[rule]]
name = "burst"
expression = "card.count_1h >= 2"
action = "review"
priority = 20

[[rule]]
name = "shadow-abroad"
expression = "country != card.home_country"
action = "decline"
mode = "shadow"
priority = 30

[[rule]]
name = "hi-score"
expression = "score >= 900"
action = "decline"
priority = 40
"""

RULES_B = """
[[rule]]
name = "abroad"
expression = "country != card.home_country"
action = "decline"
"""

# (name, card, ts, amount, country, label, fraud_score, message_class); home country 276
ROWS = [
    ("r3", "c1", 1200.0, 5_000, "840", 1, -1, "authorisation"),  # file order != time order
    ("r1", "c1", 1000.0, 10_000, "276", 0, 100, "authorisation"),
    ("r2", "c1", 1100.0, 60_000, "840", 1, 950, "financial"),
    ("rv", "c1", 1150.0, 60_000, "840", 0, -1, "reversal"),  # replayed, never evaluated
    ("r4", "c2", 1000.0, 70_000, "276", 0, 200, "authorisation"),
    ("r5", "c2", 5000.0, 2_000, "276", 0, 920, "authorisation"),
    ("r6", "c3", 2000.0, 3_000, "250", 1, 300, "authorisation"),
]
# Worked out by hand, set A (big > 500 declines, burst reviews, hi-score >= 900 declines):
#   r1 c1 100.00 genuine: count_1h 0, nothing matches.
#   r2 c1 600.00 fraud:   big (decides) + hi-score (950) + shadow-abroad; count_1h 1 -> no burst.
#   r3 c1  50.00 fraud:   count_1h 2 (r1, r2; the reversal does not count) -> burst (review);
#                         shadow-abroad; score missing -> hi-score false.
#   r4 c2 700.00 genuine: big -> declined good volume 700.
#   r5 c2  20.00 genuine: hi-score (920) -> declined good volume 20; r4 is 4000 s old: no burst.
#   r6 c3  30.00 fraud:   only shadow-abroad (250 != 276) -> missed.
# Set B (abroad declines): r2, r3, r6 declined, all fraud.


def write_csv(path: Path) -> Path:
    columns = [
        "ts", "mti", "message_class", "response_code", "card_id", "processing_code",
        "amount_minor", "currency", "mcc", "country", "channel", "home_country", "fraud_score",
        "label", "scenario",
    ]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for name, card, ts, amount, country, label, score, message_class in ROWS:
            writer.writerow(
                [ts, "0100", message_class, "00", card, "000000", amount, "978", "0742",
                 country, "pos", "276", score, label, name]
            )  # fmt: skip
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a.toml").write_text(RULES_A)
    (tmp_path / "b.toml").write_text(RULES_B)
    return {
        "a": tmp_path / "a.toml",
        "b": tmp_path / "b.toml",
        "data": write_csv(tmp_path / "labelled.csv"),
    }


def test_hand_worked_figures(files: dict[str, Path]) -> None:
    table = read_labelled(files["data"])
    assert table.column("ts").to_pylist() == sorted(r[2] for r in ROWS)
    assert table.column("mcc").to_pylist()[0] == "0742"  # codes stay text
    a, b = load_rule_set(files["a"]), load_rule_set(files["b"])
    result = run_backtest(iter_rows(table), [a, b], {}, data_name="hand")
    assert (result.rows, result.evaluated) == (7, 6)

    sa, sb = result.sets
    rules = {r.name: r for r in sa.rules}
    big, burst, abroad, hi = rules["big"], rules["burst"], rules["shadow-abroad"], rules["hi-score"]
    assert (big.matches, big.true_positives, big.false_positives) == (2, 1, 1)
    assert (big.precision, big.recall, big.fraud_amount) == (0.5, 1 / 3, {"978": 600.0})
    assert (burst.matches, burst.true_positives, burst.precision, burst.fraud_amount) == (
        1,
        1,
        1.0,
        {"978": 50.0},
    )
    assert (abroad.mode, abroad.matches, abroad.true_positives, abroad.recall) == (
        "shadow",
        3,
        3,
        1.0,
    )
    assert abroad.fraud_amount == {"978": 680.0}
    assert (hi.matches, hi.true_positives, hi.false_positives) == (2, 1, 1)
    assert hi.fraud_amount == {"978": 600.0}

    assert (sa.transactions, sa.fraud, sa.fraud_amount) == (6, 3, {"978": 680.0})
    assert (sa.declined, sa.declined_fraud, sa.declined_genuine) == (3, 1, 2)
    assert sa.detection_rate == pytest.approx(1 / 3)
    assert sa.amount_detection_rate == pytest.approx(600 / 680)
    assert sa.false_positive_ratio == 2.0
    assert (sa.declined_fraud_amount, sa.declined_genuine_amount) == (
        {"978": 600.0},
        {"978": 720.0},
    )
    assert (sa.reviewed_fraud, sa.reviewed_genuine) == (1, 0)

    assert (sb.declined, sb.declined_fraud, sb.declined_genuine) == (3, 3, 0)
    assert (sb.detection_rate, sb.false_positive_ratio, sb.declined_genuine_amount) == (
        1.0,
        0.0,
        {},
    )
    d = result.diff
    assert d is not None
    assert (d.only_a_fraud, d.only_a_genuine, d.only_b_fraud, d.only_b_genuine) == (0, 2, 2, 0)
    assert sorted(result.scores_fraud) == [300, 950]
    assert sorted(result.scores_genuine) == [100, 200, 920]


def test_promoting_shadow_rules_shows_what_enforcing_them_would_do(files: dict[str, Path]) -> None:
    promoted = load_rule_set(files["a"], promote_shadow=True)
    result = run_backtest(iter_rows(read_labelled(files["data"])), [promoted], {})
    s = result.sets[0]
    assert (s.declined_fraud, s.declined_genuine) == (3, 2)  # r3 and r6 now declined too


def test_data_without_labels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nolabel.csv"
    path.write_text("ts,amount_minor\n1,100\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_labelled(path)


runner = CliRunner()


def test_cli_backtest_writes_tables_json_and_plots(files: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--rules", str(files["a"]),
            "--compare", str(files["b"]),
            "--data", str(files["data"]),
            "--report-dir", str(report),
            "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "detection rate" in result.output and "33.3%" in result.output
    data = json.loads((report / "backtest.json").read_text())
    assert data["sets"][0]["declined_genuine_amount"] == {"978": 720.0}
    assert data["sets"][1]["detection_rate"] == 1.0
    assert data["diff"]["only_b_fraud"] == 2
    for name in ("rules_precision_recall.png", "rules_precision_recall_compare.png",
                 "score_distribution.png"):  # fmt: skip
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_check_reports_errors_with_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "x"\naction = "decline"\nexpression = "amont > 1"\n')
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    lines = result.output.splitlines()  # one line an error, whatever the terminal's width:
    assert any(  # file:line: first, for editors and grep; no markup printed as text
        line.startswith(f"{bad}:4: rule 'x': unknown variable 'amont'") for line in lines
    ), result.output
    assert "[red]" not in result.output


def test_cli_check_and_list_good_file(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["rules", "check", str(files["a"])])
    assert result.exit_code == 0 and "OK" in result.output and "1 shadow" in result.output
    assert "no rules" not in result.output
    result = runner.invoke(app, ["rules", "list", str(files["a"])])
    assert result.exit_code == 0 and "hi-score" in result.output


def test_cli_check_warns_of_a_file_without_rules(tmp_path: Path) -> None:
    """A file with no rule loads (a server may run without rules), but it is refused on
    reload while rules are in force: the check says both, and still exits 0."""
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n")
    result = runner.invoke(app, ["rules", "check", str(empty)])
    assert result.exit_code == 0 and "OK" in result.output, result.output
    assert "warning: no rules" in result.output and "refuses it on reload" in result.output


def test_cli_reload_signals_the_server_pid(files: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "got-hup"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time, pathlib\n"
            f"p = pathlib.Path({str(marker)!r})\n"
            # written aside and renamed: the test must never see the file before its text
            "t = p.with_suffix('.tmp')\n"
            "signal.signal(signal.SIGHUP, lambda *a: (t.write_text('hup'), t.replace(p)))\n"
            "print('ready', flush=True)\n"
            "deadline = time.time() + 20\n"
            "while not p.exists() and time.time() < deadline: time.sleep(0.01)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        pid_file = tmp_path / "authhost.pid"
        pid_file.write_text(f"{child.pid}\n")
        config = tmp_path / "authhost.toml"
        config.write_text(f'[server]\npid_file = "{pid_file}"\n[rules]\nfile = "{files["a"]}"\n')
        result = runner.invoke(app, ["rules", "reload", "--config", str(config)])
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.read_text() == "hup"
    finally:
        child.wait(timeout=10)


def test_cli_reload_refuses_a_bad_file_and_a_missing_pid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "x"\naction = "decline"\nexpression = "amount >"\n')
    config = tmp_path / "authhost.toml"
    config.write_text(f'[server]\npid_file = "{tmp_path / "none.pid"}"\n[rules]\nfile = "{bad}"\n')
    result = runner.invoke(app, ["rules", "reload", "--config", str(config)])
    assert result.exit_code == 1 and "syntax error" in result.output
    said = " ".join(result.output.split())  # it printed the errors alone: reloaded or not?
    assert "no reload requested: the server keeps the rules it has" in said
    config.write_text(f'[server]\npid_file = "{tmp_path / "none.pid"}"\n')
    result = runner.invoke(app, ["rules", "reload", "--config", str(config)])
    assert result.exit_code == 1 and "no pid file" in result.output
    assert os.getpid() > 0 and signal.SIGHUP  # nothing was signalled


def test_the_backtest_replays_travel_notices_and_what_spent(tmp_path: Path) -> None:
    """Columns the replay reads were dropped when the file was loaded: a journalled travel
    notice replayed as none, and a completion counted toward the card's amounts."""
    rules = tmp_path / "r.toml"
    rules.write_text(
        '[[rule]]\nname = "trip"\nexpression = "card.travel_notice"\naction = "review"\n\n'
        '[[rule]]\nname = "spent"\nexpression = "card.amount_24h >= 500.00"\naction = "review"\n'
    )
    columns = ["ts", "message_class", "response_code", "card_id", "processing_code",
               "amount_minor", "currency", "country", "home_country", "travel_notice",
               "movement", "reason_codes", "label"]  # fmt: skip
    rows = [
        [1000.0, "authorisation", "00", "c1", "000000", 40_000, "978", "840", "276", 1, "hold",
         "", 0],
        [1100.0, "financial_advice", "00", "c1", "000000", 40_000, "978", "840", "276", 1,
         "post", "advice.completion;advice.stand_in", 0],
        [1200.0, "authorisation", "00", "c1", "000000", 1_000, "978", "840", "276", 1, "hold",
         "", 0],
    ]  # fmt: skip
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    result = run_backtest(iter_rows(read_labelled(data)), [load_rule_set(rules)], {})
    found = {r.name: r.matches for r in result.sets[0].rules}
    # both requests abroad on a trip (the advice is replayed, not evaluated); 400.00 spent
    # once before the last (the completion is not spending again): 400.00 < 500.00
    assert found == {"trip": 2, "spent": 0}


def test_the_backtest_judges_rules_on_the_models_own_score(tmp_path: Path) -> None:
    """fraud_score has the score rules' points; the rules saw the model's own score."""
    rules = tmp_path / "r.toml"
    rules.write_text('[[rule]]\nname = "hi"\nexpression = "score >= 900"\naction = "decline"\n')
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "ts",
                "message_class",
                "response_code",
                "card_id",
                "processing_code",
                "amount_minor",
                "currency",
                "fraud_score",
                "model_score",
                "label",
            ]
        )
        writer.writerow([1000.0, "authorisation", "00", "c1", "000000", 100, "978", 950, 600, 0])
        writer.writerow([1001.0, "authorisation", "00", "c2", "000000", 100, "978", 950, -1, 1])
    result = run_backtest(iter_rows(read_labelled(data)), [load_rule_set(rules)], {})
    (hi,) = result.sets[0].rules
    assert (hi.matches, hi.true_positives) == (1, 1)  # the row without its own score: as before


# (ts, card_id, response_code, reason_codes, rule_matches, cvv_failed, message_class, label,
#  scenario, amount_minor): one web shop, one terminal
BEFORE_FRAUD_ROWS = [
    (1000.0, "", "14", "card.unknown", "", 0, "authorisation", 1, "bin_attack", 101),
    (1010.0, "c1", "82", "cvv.cvv_failed", "", 1, "authorisation", 1, "card_testing", 102),
    (1020.0, "c2", "55", "pin.wrong", "", 0, "financial", 0, "", 103),
    (1030.0, "c3", "00", "", "", 0, "authorisation", 1, "bin_attack", 1_000),
    (1040.0, "c4", "05", "", "", 0, "authorisation", 0, "", 2_000),  # no reason: kept
    # a rule's decline whose reason starts like the card step's: the fraud step ran
    (1050.0, "c5", "59", "card.testing_rule", "theirs", 0, "authorisation", 1, "", 3_000),
    # approved by the pipeline, refused by the funds re-check: scored
    (1060.0, "c6", "51", "card.previous_expiry;funds.recheck", "", 0, "financial", 0, "", 4_000),
    (1070.0, "c3", "00", "", "", 0, "reversal", 0, "", 1_000),  # replayed, never evaluated
]
BEFORE_FRAUD_RULES = """
[[rule]]
name = "web"
expression = "channel == 'ecommerce'"
action = "decline"

[[rule]]
name = "after-unknown"
expression = "terminal.unknown_card_count_10m >= 1 and merchant.failed_cvv_10m >= 1"
action = "review"
"""


def write_before_fraud_csv(path: Path) -> Path:
    columns = ["ts", "message_class", "response_code", "reason_codes", "rule_matches",
               "card_id", "pan_index", "processing_code", "amount_minor", "currency",
               "channel", "merchant_id", "terminal_id", "cvv_failed", "fraud_score", "label",
               "scenario"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for (
            ts,
            card,
            code,
            reasons,
            matches,
            cvv,
            klass,
            label,
            scenario,
            amount,
        ) in BEFORE_FRAUD_ROWS:
            writer.writerow(
                [ts, klass, code, reasons, matches, card, f"p-{card or 'unknown'}", "000000",
                 amount, "978", "ecommerce", "shop-1", "t-1", cvv, -1, label, scenario]
            )  # fmt: skip
    return path


def test_rules_are_not_credited_with_requests_declined_before_the_fraud_step(
    tmp_path: Path,
) -> None:
    """Online the rules run only in the fraud step: the unknown card (14), the failed CVV (82)
    and the wrong PIN (55) never met a rule, so a rule matching every web request is credited
    only with the four the fraud step scored, and the three are counted apart, by step and by
    fraud scenario. They still count in the merchant's and terminal's counters, as online."""
    data = write_before_fraud_csv(tmp_path / "declined.csv")
    rules = tmp_path / "r.toml"
    rules.write_text(BEFORE_FRAUD_RULES)
    result = run_backtest(iter_rows(read_labelled(data)), [load_rule_set(rules)], {})

    assert (result.rows, result.evaluated) == (8, 4)
    assert result.excluded_before_fraud_step == 3
    assert result.excluded_by_step == {"card": 1, "card_verification": 1, "pin": 1}
    assert result.excluded_frauds == 2
    assert result.excluded_frauds_by_scenario == {"bin_attack": 1, "card_testing": 1}
    assert result.excluded_fraud_amount == {"978": 2.03}
    (s,) = result.sets
    web, after = s.rules
    assert (web.matches, web.true_positives, web.false_positives) == (4, 2, 2)
    assert web.fraud_amount == {
        "978": 40.0
    }  # 10.00 and 30.00; not the 1.01 and 1.02 answered 14/82
    assert (s.transactions, s.fraud, s.fraud_amount) == (4, 2, {"978": 40.0})
    assert (s.declined_fraud, s.declined_genuine, s.detection_rate) == (2, 2, 1.0)
    # the 14 and the 82 before them are in the counters of every request the rules saw
    assert (after.matches, after.true_positives) == (4, 2)

    report = tmp_path / "report"
    cli = runner.invoke(
        app,
        ["backtest", "--rules", str(rules), "--data", str(data), "--report-dir", str(report),
         "--no-progress"],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    text = " ".join(cli.output.split())
    assert "3 requests declined before the fraud step left out" in text
    assert "card 1, card_verification 1, pin 1" in text
    assert "of which fraud: 2 (amount 2.03 978): bin_attack 1, card_testing 1" in text
    assert "4 requests evaluated" in text
    got = json.loads((report / "backtest.json").read_text())
    assert (got["evaluated"], got["excluded_before_fraud_step"], got["excluded_frauds"]) == (
        4,
        3,
        2,
    )
    assert got["excluded_by_step"] == {"card": 1, "card_verification": 1, "pin": 1}
    assert got["excluded_frauds_by_scenario"] == {"bin_attack": 1, "card_testing": 1}
    assert got["sets"][0]["rules"][0]["matches"] == 4


def test_a_bin_attack_rule_is_credited_only_with_the_requests_the_fraud_step_scored(
    tmp_path: Path,
) -> None:
    """Simulated BIN attacks (unknown numbers answered 14, real cards hit, some failing CVV2)
    and card testing, backtested with examples/rules/merchant_rules.toml: MCT-03 (unknown
    numbers at a terminal) only matches real cards the issuer went on to score, never the
    numbers it answered 14; MCT-02 (CVV failures at a merchant) never a request answered N7."""
    rates = ScenarioRates(card_testing=0.03, bin_attack=1.0)
    traffic = generate(TrafficConfig(cards=400, days=24, seed=3, rates=rates))
    data = tmp_path / "bin.parquet"
    traffic.write(data)
    rows = pq.read_table(data).to_pylist()
    # the simulator answers every fraud the fraud step scores 00 or 51 (funds come after it)
    scored_frauds = [r for r in rows if r["label"] and r["response_code"] in ("00", "51")]
    bin_hits = [r for r in scored_frauds if r["scenario"] == "bin_attack"]
    bin_declined = [r for r in rows if r["scenario"] == "bin_attack" and r not in bin_hits]
    assert sum(r["response_code"] == "14" for r in bin_declined) > 500 and bin_hits

    report = tmp_path / "report"
    cli = runner.invoke(
        app,
        ["backtest", "--rules", str(MERCHANT_RULES), "--data", str(data), "--report-dir",
         str(report), "--no-progress"],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    got = json.loads((report / "backtest.json").read_text())
    (s,) = got["sets"]
    rules = {r["name"].split()[0]: r for r in s["rules"]}
    mct3 = rules["MCT-03"]
    assert 0 < mct3["matches"] == mct3["true_positives"] <= len(bin_hits)
    scored_tests = [r for r in scored_frauds if r["scenario"] in ("card_testing", "bin_attack")]
    assert rules["MCT-02"]["true_positives"] <= len(scored_tests)
    assert s["fraud"] == len(scored_frauds)

    assert "declined before the fraud step left out" in " ".join(cli.output.split())
    assert got["evaluated"] + got["excluded_before_fraud_step"] == len(rows)  # no advices
    assert got["excluded_frauds_by_scenario"]["bin_attack"] == len(bin_declined)
    assert got["excluded_by_step"]["card"] >= sum(r["response_code"] == "14" for r in rows)
    assert got["excluded_frauds"] + s["fraud"] == sum(r["label"] for r in rows)


def test_cli_backtest_report_dir_that_is_a_file_is_refused_before_the_replay(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """It was a FileExistsError traceback once the replay was done."""
    report = tmp_path / "report"
    report.write_text("a file")
    result = runner.invoke(
        app,
        ["backtest", "--rules", str(files["a"]), "--data", str(files["data"]),
         "--report-dir", str(report), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"error: --report-dir {report}: not a directory"]


def test_cli_reload_names_a_pid_file_that_is_garbage_or_stale(tmp_path: Path) -> None:
    """What an operator meets after a crash: a pid file left behind by a process that is
    gone, or one that holds something else; each is named, nothing is signalled."""
    pid_file = tmp_path / "authhost.pid"
    config = tmp_path / "authhost.toml"
    config.write_text(f'[server]\npid_file = "{pid_file}"\n')
    pid_file.write_text("not a pid\n")
    result = runner.invoke(app, ["rules", "reload", "--config", str(config)])
    assert result.exit_code == 1 and "does not hold a process id" in result.output
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    pid_file.write_text(f"{gone.pid}\n")
    result = runner.invoke(app, ["rules", "reload", "--config", str(config)])
    assert result.exit_code == 1 and f"no process {gone.pid} (stale" in result.output


def test_rules_check_names_lists_the_directory_lacks_and_a_bad_directory(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "b"\naction = "decline"\n'
        "expression = \"merchant in list('merchant_block') or mcc in list('risky_mcc')\"\n"
    )
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "merchant_block.txt").write_text("M-1\n")
    result = runner.invoke(app, ["rules", "check", str(rules), "--lists-dir", str(lists)])
    assert result.exit_code == 0, result.output
    assert "lists read: merchant_block, risky_mcc" in result.output
    assert "warning:" in result.output and "risky_mcc" in result.output.split("warning:")[1]
    (lists / "bad name!.txt").write_text("x\n")
    result = runner.invoke(app, ["rules", "check", str(rules), "--lists-dir", str(lists)])
    assert result.exit_code == 1 and "bad list name" in result.output


def test_a_backtest_without_the_lists_its_rules_read_says_so(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """Without --lists-dir a list is empty: `country not in list("country_allow")` declined
    every request and `merchant in list(...)` none, with no word, where the server has the
    lists; the figures looked like the rule's own."""
    rules = tmp_path / "lists.toml"
    rules.write_text(
        '[[rule]]\nname = "abroad"\nexpression = \'country not in list("country_allow")\'\n'
        'action = "decline"\n'
    )
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "country_allow.txt").write_text("276\n")
    args = ["backtest", "--rules", str(rules), "--data", str(files["data"]), "--no-progress"]
    without = runner.invoke(app, [*args, "--report-dir", str(tmp_path / "report")])
    assert without.exit_code == 0, without.output
    assert "lists this backtest was not given" in without.output
    assert "country_allow" in without.output
    report = json.loads((tmp_path / "report" / "backtest.json").read_text())
    assert report["lists_missing"] == ["country_allow"]
    assert report["sets"][0]["declined"] == 6  # every request: the list is empty

    given = runner.invoke(app, [*args, "--lists-dir", str(lists)])
    assert given.exit_code == 0, given.output
    assert "not given" not in given.output
