"""The listing commands' tables (cli.tables): amounts in their currency's exponent, times in
UTC, the columns an analyst reads, and JSON unless a table is asked for or the output is a
terminal."""

from __future__ import annotations

import calendar

import pytest
from rich.console import Console

from authhost.cli.tables import TABLES, amount, render, wants_table, when


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1_234_550, "978", "12,345.50 978"),  # euro: 2 decimals
        (1_500, "392", "1,500 392"),  # yen: none
        (1_234, "048", "1.234 048"),  # Bahraini dinar: 3
        (5, "", "0.05"),
        (None, "978", ""),
    ],
)
def test_amounts_in_their_currencys_exponent(minor, currency, text):
    assert amount(minor, currency) == text


def test_times_are_utc():
    assert when(calendar.timegm((2026, 11, 27, 21, 7, 51))) == "2026-11-27 21:07:51"
    assert when(None) == "" and when(0) == ""


def test_a_review_queue_as_a_table():
    row = {
        "journal_id": 41, "ts": calendar.timegm((2026, 11, 27, 9, 0, 0)), "mti": "0100",
        "response_code": "00", "pan_masked": "476173******0010", "amount_minor": 15_000,
        "currency": "978", "merchant_name": "SHOP   ELECTRO   BERLIN", "merchant_id": "M1",
        "country": "276", "channel": "ecommerce", "fraud_score": 812,
        "reason_codes": "fraud.cardholder_pass;FR-WEB", "review": True, "verdict": None,
    }  # fmt: skip
    console = Console(width=200, record=True)
    console.print(render({"reviews": [row], "next_after_id": 41}, TABLES["reviews"]))
    text = console.export_text()
    line = next(line for line in text.splitlines() if "476173******0010" in line)
    cells = [cell.strip() for cell in line.split("│") if cell.strip()]
    assert cells == ["41", "2026-11-27 09:00:00", "476173******0010", "0100", "00", "150.00 978",
                     "SHOP ELECTRO BERLIN", "276", "ecommerce", "812",
                     "fraud.cardholder_pass FR-WEB [review]"]  # fmt: skip
    assert "review queue: 1" in text and "--after-id 41" in text


def test_json_unless_a_table_is_asked_for(capsys):
    assert wants_table("table") and not wants_table("json")
    assert not wants_table("auto")  # pytest's stdout is not a terminal
    with pytest.raises(Exception, match="table or json|must be one of"):
        wants_table("xml")


def test_rule_performance_table_shows_a_temporary_rules_window():
    row = {
        "rule": "ATT-17", "action": "decline", "shadow": False, "window": "until 2026-11-01T00:00:00Z",
        "matches": 4, "approved": 0, "declined": 4, "declined_by_rule": 4, "passed": 0,
        "reviewed": 0, "fraud": 1, "genuine": 1, "genuine_by_cardholder": 0,
        "declined_genuine": 1, "precision": 0.5,
    }  # fmt: skip
    console = Console(width=250, record=True)
    console.print(render({"rules": [row]}, TABLES["rule_performance"]))
    line = next(line for line in console.export_text().splitlines() if "ATT-17" in line)
    cells = [cell.strip() for cell in line.split("│") if cell.strip()]
    assert cells[-1] == "until 2026-11-01T00:00:00Z"


def test_rule_performance_table_shows_the_fraud_amount_per_currency():
    """The JSON had each rule's fraud amount per currency; the table showed none."""
    row = {
        "rule": "BIG", "action": "decline", "shadow": False, "window": "", "matches": 2,
        "fraud": 2, "genuine": 0, "precision": 1.0,
        "fraud_amount_minor": {"840": 10_000, "392": 10_000, "048": 500},
    }  # fmt: skip
    console = Console(width=250, record=True)
    console.print(render({"rules": [row]}, TABLES["rule_performance"]))
    text = console.export_text()
    assert "0.500 048" in text and "10,000 392" in text and "100.00 840" in text
    assert len([line for line in text.splitlines() if " 392 " in line or " 840 " in line]) == 2


def test_the_audit_table_says_what_each_entry_changed():
    """The audit table had who, what and on which subject but not the change: a closure's
    reason, a list's additions or a card's new state were only in the JSON."""
    entries = [
        {"audit_id": 7, "ts": 0, "actor": "cli:ops", "action": "card.report_lost",
         "subject": "crd_1", "before": '{"state":"active"}',
         "after": '{"state":"lost","reason":"wallet stolen"}'},
        {"audit_id": 8, "ts": 0, "actor": "cli:ops", "action": "list.put",
         "subject": "blocked-merchants", "before": '{"size":0}',
         "after": '{"added":["BADSHOP42"],"removed":[],"size":1}'},
        {"audit_id": 9, "ts": 0, "actor": "cli:ops", "action": "account.close",
         "subject": "acc-1", "before": '{"balance":0}',
         "after": '{"closed_at":1795970830.5,"reason":"customer left"}'},
        {"audit_id": 10, "ts": 0, "actor": "cli:ops", "action": "journal.fraud_report",
         "subject": "crd_1", "before": "", "after": '{"fraud":true,"report_id":null}'},
        {"audit_id": 11, "ts": 0, "actor": "cli:ops", "action": "card.personalise",
         "subject": "crd_1", "before": "", "after": '{"note":"' + "x" * 400 + '"}'},
    ]  # fmt: skip
    console = Console(width=400, record=True)
    console.print(render(entries, TABLES["audit"]))
    text = console.export_text()

    def change(audit_id: int) -> str:
        line = next(ln for ln in text.splitlines() if ln.startswith(f"│ {audit_id:>2} │"))
        return [cell.strip() for cell in line.split("│")][-2]

    assert change(7) == "state active -> lost; reason wallet stolen"
    assert change(8) == "added [BADSHOP42]; removed []; size 0 -> 1"
    assert change(9) == "closed_at 1795970830.5; reason customer left"
    assert change(10) == "fraud true; report_id null"
    assert len(change(11)) == 160 and change(11).endswith("…")  # the JSON has it all
