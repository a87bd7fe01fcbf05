"""The card management CLI on a real SQLite file, given what an operator may well type: a
huge id, a results file it cannot write, a file that is missing or not UTF-8, a demo card
changed by hand. Each ends in one line on stderr and exit status 1 (or, for the demo, a
note), never a traceback, and nothing is done half-way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_admin_cli import _ok, cli  # noqa: F401 - the fixture

from authhost.admin.demo import CARDS

HUGE = str(10**20)


def _one_line_refusal(result, needle: str) -> None:
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "list", "--after-id", HUGE),
        ("journal", "show", "crd_x", "--after-id", HUGE),
        ("journal", "movements", "--after-id", HUGE),
        ("journal", "alerts", "--after-id", HUGE),
        ("journal", "reviews", "--after-id", HUGE),
        ("journal", "fraud-reports", "--after-id", HUGE),
        ("cards", "wallet-events", "--after-id", HUGE),
        ("accounts", "list", "--offset", HUGE),
        ("cards", "list", "--offset", HUGE),
        ("journal", "explain", "crd_x", HUGE),
        ("journal", "report-fraud", "crd_x", HUGE, "--source", "analyst"),
    ],
    ids=lambda args: " ".join(a for a in args if a != HUGE),
)
def test_a_huge_id_or_offset_is_one_line_and_exit_1(cli, args):  # noqa: F811
    _one_line_refusal(cli(*args), f"to {10**15:,}" if "--offset" not in args else "to 1,0")


def test_bulk_issue_checks_the_results_file_before_issuing_anything(cli, tmp_path):  # noqa: F811
    _ok(cli("products", "create", "--product-id", "p", "--issuer-id", "b", "--name", "D",
            "--bin", "476173"))  # fmt: skip
    _ok(cli("accounts", "create", "--account-id", "a"))
    rows = tmp_path / "cards.csv"
    rows.write_text("product_id,account_id\np,a\np,a\n")
    result = cli("cards", "bulk-issue", str(rows), "--results", "/nonexistent/x.csv")
    _one_line_refusal(result, "cannot write /nonexistent/x.csv")
    assert _ok(cli("cards", "list")) == []


def test_ledger_file_checks_the_results_file_before_any_sync(cli, tmp_path):  # noqa: F811
    _ok(cli("accounts", "create", "--account-id", "a", "--balance", "100"))
    rows = tmp_path / "ledger.csv"
    rows.write_text("account_id,ledger_balance_minor,through_journal_id\na,500,0\n")
    result = cli("accounts", "ledger-file", str(rows), "--results", str(tmp_path))
    _one_line_refusal(result, f"cannot write {tmp_path}")
    assert _ok(cli("accounts", "show", "a"))["balance"] == 100


@pytest.mark.parametrize("content", [None, b"merchant-1\n\xff\xfe bad\n"],
                         ids=["missing", "not UTF-8"])  # fmt: skip
def test_lists_put_and_a_compromise_alert_from_an_unreadable_file(cli, tmp_path, content):  # noqa: F811
    path = tmp_path / "values.txt"
    if content is not None:
        path.write_bytes(content)
    needle = "not UTF-8" if content else "cannot read"
    good = tmp_path / "good.txt"
    good.write_text("merchant-2\n")
    _ok(cli("lists", "put", "allowed", str(good)))  # the store now exists
    _one_line_refusal(cli("lists", "put", "blocked", str(path)), needle)
    _one_line_refusal(cli("cards", "compromised", str(path)), needle)
    assert "blocked" not in json.dumps(_ok(cli("lists", "list")))


def test_demo_leaves_a_card_an_operator_changed_and_says_so(cli, tmp_path):  # noqa: F811
    first = cli("demo")
    assert first.exit_code == 0, first.output
    lines = first.stdout.strip().splitlines()
    active = lines[[c.key for c in CARDS].index("active-visa")].split()[0]
    issued = lines[[c.key for c in CARDS].index("issued")].split()[0]
    _ok(cli("cards", "suspend", active))
    _ok(cli("cards", "activate", issued))

    again = cli("demo")

    assert again.exit_code == 0, (again.output, again.exception)
    notes = again.stderr.strip().splitlines()
    assert len(notes) == 2 and all("left as it is" in n for n in notes), again.stderr
    assert active in notes[0] and "suspended" in notes[0] and issued in notes[1]
    assert _ok(cli("cards", "show", active))["state"] == "suspended"
    assert _ok(cli("cards", "show", issued))["state"] == "active"
    out = tmp_path / "demo.json"
    assert cli("demo", "--export", str(out)).exit_code == 0
    assert len(json.loads(Path(out).read_text())["cards"]) == len(CARDS)


def test_lists_put_reads_a_file_as_the_lists_directory_does(cli, tmp_path):  # noqa: F811
    """A lists directory's file skips `#` comments; `lists put` of the same file kept them in
    the values, so `M-1  # fraud ring` never matched merchant M-1 once the list was moved
    into the store, and a comment line became a value."""
    path = tmp_path / "merchant_block.txt"
    path.write_text("# merchants with confirmed fraud\nM-1  # fraud ring\n\nM-2\n")
    _ok(cli("lists", "put", "merchant_block", str(path)))
    assert _ok(cli("lists", "show", "merchant_block"))["values"] == ["M-1", "M-2"]
