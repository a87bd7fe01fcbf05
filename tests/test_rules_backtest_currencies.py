"""Backtest amounts are totalled per currency, each in its own decimals: a bank issuing yen,
dollar and dinar cards never reads 10,000 yen plus 100.00 dollars as one number."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.rules.backtest import run_backtest
from authhost.rules.dataset import iter_rows, read_labelled
from authhost.rules.loader import load_rule_set

RULES = """
[[rule]]
name = "big"
expression = "amount > 50"
action = "decline"
"""

JPY, USD, BHD = "392", "840", "048"  # exponents 0, 2, 3
# (card, ts, amount_minor, currency, label): "amount > 50" in each card's own major units
ROWS = [
    ("c1", 1000.0, 10_000, JPY, 1),  # 10,000 yen: declined, fraud
    ("c2", 1100.0, 10_000, USD, 1),  # 100.00 dollars: declined, fraud
    ("c3", 1200.0, 500, BHD, 1),  # 0.500 dinar: missed fraud
    ("c3", 1300.0, 75_250, BHD, 0),  # 75.250 dinars: declined, genuine
    ("c1", 1400.0, 20, JPY, 0),  # 20 yen: approved
]


def _data(path: Path) -> Path:
    columns = ["ts", "message_class", "response_code", "card_id", "processing_code",
               "amount_minor", "currency", "mcc", "country", "channel", "label"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for card, ts, amount, currency, label in ROWS:
            writer.writerow(
                [ts, "authorisation", "00", card, "000000", amount, currency, "5411", "276",
                 "pos", label]
            )  # fmt: skip
    return path


def test_totals_are_per_currency_in_each_ones_major_units(tmp_path: Path) -> None:
    rules = tmp_path / "r.toml"
    rules.write_text(RULES)
    table = read_labelled(_data(tmp_path / "d.csv"))
    (s,) = run_backtest(iter_rows(table), [load_rule_set(rules)], {}).sets
    assert s.fraud_amount == {BHD: 0.5, JPY: 10_000.0, USD: 100.0}
    assert s.declined_fraud_amount == {JPY: 10_000.0, USD: 100.0}
    assert s.declined_genuine_amount == {BHD: 75.25}
    assert s.rules[0].fraud_amount == {JPY: 10_000.0, USD: 100.0}
    assert s.amount_detection_rate_by_currency == {BHD: 0.0, JPY: 1.0, USD: 1.0}
    assert s.amount_detection_rate is None  # no single ratio of three currencies' amounts


def test_the_cli_tables_and_json_show_each_currency(tmp_path: Path) -> None:
    rules = tmp_path / "r.toml"
    rules.write_text(RULES)
    report = tmp_path / "report"
    args = ["backtest", "--rules", str(rules), "--data", str(_data(tmp_path / "d.csv")),
            "--report-dir", str(report), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "10,000 392" in result.output and "100.00 840" in result.output
    assert "75.250 048" in result.output
    assert "10,100" not in result.output  # yen and dollars never added
    assert "fraud amount matched" in result.output  # per rule: a review rule catches nothing
    data = json.loads((report / "backtest.json").read_text())["sets"][0]
    assert data["declined_fraud_amount"] == {JPY: 10_000.0, USD: 100.0}
    assert data["amount_detection_rate_by_currency"] == {BHD: 0.0, JPY: 1.0, USD: 1.0}
