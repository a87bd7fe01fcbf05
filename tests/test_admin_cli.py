"""The card management CLI on a real SQLite file: demo export, bulk CSV, errors, journal export."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import trio
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.models.dataset import load_labelled
from authhost.store import opened_store
from authhost.store.interface import Commit, JournalQuery
from authhost.store.records import JOURNAL_COLUMNS, JournalEntry


@pytest.fixture
def cli(tmp_path: Path):
    """Run ``authhost ...`` against a store and a demo key store under tmp_path."""
    config = tmp_path / "authhost.toml"
    store_url = f"sqlite:///{tmp_path / 'authhost.db'}"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        f'[security]\nkey_store = "{tmp_path / "keys.json"}"\ndemo = true\n'
    )
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # noqa: A002 - mirrors CliRunner
        return runner.invoke(app, [*args, "--config", str(config)], input=input)

    run.store_url = store_url
    return run


def _ok(result) -> object:
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None


def test_demo_twice_then_export(cli, tmp_path):
    first = cli("demo")
    assert first.exit_code == 0, first.output
    out = tmp_path / "demo-cards.json"
    second = cli("demo", "--export", str(out))
    assert second.exit_code == 0, second.output
    assert second.stdout == first.stdout  # the same cards, not new ones
    cards = _ok(cli("cards", "list", "--limit", "1000"))
    assert len(cards) == len(first.stdout.strip().splitlines())
    doc = json.loads(out.read_text())
    assert doc["test_only"] is True and set(doc["keys"]) == {
        "zpk",
        "bdk",
        "imk_ac",
        "imk_smi",
        "imk_smc",
        "zmk",
        "cavv",
    }
    assert {c["state"] for c in doc["cards"]} >= {"active", "created", "lost", "stolen", "closed"}
    for card in doc["cards"]:
        assert card["pan"] not in first.stdout  # the listing shows masked PANs only


def test_create_issue_and_an_illegal_transition(cli):
    product = _ok(
        cli("products", "create", "--issuer-id", "bank", "--name", "Debit", "--bin", "541333")
    )
    account = _ok(cli("accounts", "create", "--balance", "5000"))
    card = _ok(
        cli(
            "cards",
            "issue",
            "--product-id",
            product["product_id"],
            "--account-id",
            account["account_id"],
            "--idempotency-key",
            "k-1",
        )
    )
    assert card["pan"].startswith("541333******")
    again = _ok(
        cli(
            "cards",
            "issue",
            "--product-id",
            product["product_id"],
            "--account-id",
            account["account_id"],
            "--idempotency-key",
            "k-1",
        )
    )
    assert again["card_id"] == card["card_id"]

    refused = cli("cards", "activate", card["card_id"])
    assert refused.exit_code == 1
    assert "error:" in refused.stderr and "created" in refused.stderr
    assert "Traceback" not in refused.output
    assert _ok(cli("cards", "ship", card["card_id"]))["state"] == "issued"

    bad = cli("products", "create", "--issuer-id", "bank", "--name", "X", "--bin", "12")
    assert bad.exit_code == 1 and "bin" in bad.stderr

    audit = _ok(cli("audit", "list", "--subject", card["card_id"]))
    assert [e["action"] for e in audit] == ["card.issue", "card.ship"]
    assert audit[0]["actor"].startswith("cli")
    newest = _ok(cli("audit", "list", "--newest", "--limit", "1"))
    assert [e["action"] for e in newest] == ["card.ship"]  # the last write first
    mixed = cli("audit", "list", "--newest", "--after-id", "1")
    assert mixed.exit_code == 1 and "after_id pages oldest first" in mixed.stderr


def test_a_retried_replace_with_its_key_makes_one_card(cli):
    """A script whose 'cards replace' timed out runs it again with the same key and gets the
    replacement the first run made; without a key the second is refused, never a second card."""
    product = _ok(
        cli("products", "create", "--issuer-id", "bank", "--name", "D", "--bin", "476173")
    )
    account = _ok(cli("accounts", "create", "--balance", "5000"))
    issue = ("cards", "issue", "--product-id", product["product_id"],
             "--account-id", account["account_id"])  # fmt: skip
    card = _ok(cli(*issue))
    for action in ("ship", "activate", "report-stolen"):
        _ok(cli("cards", action, card["card_id"]))
    first = _ok(cli("cards", "replace", card["card_id"], "--idempotency-key", "r-1"))
    again = _ok(cli("cards", "replace", card["card_id"], "--idempotency-key", "r-1"))
    assert again["card_id"] == first["card_id"] != card["card_id"]
    unkeyed = cli("cards", "replace", card["card_id"])
    assert unkeyed.exit_code == 1 and "Traceback" not in unkeyed.output
    assert len(_ok(cli("cards", "list", "--limit", "100"))) == 2
    refused = cli("cards", "suspend", card["card_id"], "--idempotency-key", "s-1")
    assert refused.exit_code == 2  # only the actions that create a card take a key
    assert "No such option" in refused.output and "--idempotency-key" in refused.output


def test_only_the_actions_that_make_a_card_offer_an_idempotency_key(cli):
    """``cards suspend --help`` (and ship, activate, cancel...) showed --idempotency-key
    "repeat this request safely", and every use of it was refused: "takes no
    Idempotency-Key"."""
    from authhost.admin.service import LIFECYCLE_ACTIONS

    offered = {
        action
        for action in LIFECYCLE_ACTIONS
        if "--idempotency-key" in CliRunner().invoke(app, ["cards", action, "--help"]).output
    }
    assert offered == {"replace", "renew", "reissue"}


def test_bulk_issue_reports_the_bad_line_and_issues_the_rest(cli, tmp_path):
    _ok(
        cli(
            "products",
            "create",
            "--product-id",
            "p",
            "--issuer-id",
            "b",
            "--name",
            "D",
            "--bin",
            "476173",
        )
    )
    _ok(cli("accounts", "create", "--account-id", "a"))
    rows = tmp_path / "cards.csv"
    rows.write_text(
        "product_id,account_id,cardholder_name\n"
        "p,a,ADA LOVELACE\n"
        "p,unknown,ALAN TURING\n"
        "p,a,GRACE HOPPER\n"
    )
    results = tmp_path / "results.csv"
    result = cli("cards", "bulk-issue", str(rows), "--results", str(results))
    assert result.exit_code == 1  # something failed: say so to scripts
    assert f"{rows}:3: account unknown not found" in result.stderr
    assert "3 row(s): 2 issued, 1 failed" in result.stderr
    lines = list(csv.DictReader(results.open()))
    assert [r["line"] for r in lines] == ["2", "3", "4"]
    assert lines[0]["pan"].startswith("476173******") and lines[1]["error"]
    assert len(_ok(cli("cards", "list"))) == 2


def test_bulk_issue_with_a_broken_header_issues_nothing(cli, tmp_path):
    rows = tmp_path / "cards.csv"
    rows.write_text("product,account\np,a\n")
    result = cli("cards", "bulk-issue", str(rows))
    assert result.exit_code == 1 and "line 1: missing column(s)" in result.stderr


def test_find_reads_the_pan_from_stdin_and_shows_it_masked(cli, tmp_path):
    out = tmp_path / "demo.json"
    assert cli("demo", "--export", str(out)).exit_code == 0
    pan = json.loads(out.read_text())["cards"][0]["pan"]
    found = _ok(cli("cards", "find", input=pan + "\n"))
    assert found["pan"] == pan[:6] + "******" + pan[-4:]
    assert pan not in found["pan"]
    # in groups, as embossed and read out on the phone: it was refused as not 12-19 digits
    grouped = " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))
    assert _ok(cli("cards", "find", input=grouped + "\n"))["card_id"] == found["card_id"]
    hyphens = _ok(cli("cards", "find", input=grouped.replace(" ", "-") + "\n"))
    assert hyphens["card_id"] == found["card_id"]
    refused = cli("cards", "find", input=pan[:8] + "x" + pan[9:] + "\n")
    assert refused.exit_code == 1 and pan[9:] not in refused.output


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_journal_export_has_exactly_the_journal_columns(cli, tmp_path, fmt):
    async def write_entries() -> None:
        async with opened_store(cli.store_url) as store:
            for i in range(3):
                entry = JournalEntry(
                    ts=time.time() + i,
                    mti="0100",
                    message_class="authorization",
                    response_code="00",
                    amount_minor=100 * (i + 1),
                    stan=f"{i:06d}",
                )
                await store.commit(Commit(journal=entry))

    trio.run(write_entries)
    out = tmp_path / f"journal.{fmt}"
    result = cli("journal", "export", "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 3 journal entries" in result.stderr
    if fmt == "csv":
        with out.open() as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
        assert tuple(reader.fieldnames) == JOURNAL_COLUMNS
        assert [r["amount_minor"] for r in rows] == ["100", "200", "300"]
    else:
        table = pq.read_table(out)
        assert tuple(table.column_names) == JOURNAL_COLUMNS
        assert table.column("amount_minor").to_pylist() == [100, 200, 300]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_fraud_reports_become_the_labels_training_reads(cli, tmp_path, fmt):
    _ok(cli("demo"))
    card_id = _ok(cli("cards", "list", "--state", "active", "--limit", "1"))[0]["card_id"]

    async def write_entries() -> list[int]:
        async with opened_store(cli.store_url) as store:
            for i in range(3):
                entry = JournalEntry(ts=time.time() + i, mti="0100", card_id=card_id,
                                     message_class="authorisation", response_code="00",
                                     amount_minor=100 * (i + 1), stan=f"{i:06d}")  # fmt: skip
                await store.commit(Commit(journal=entry, card_id=card_id))
            return [e.journal_id for e in await store.journal(JournalQuery(card_id=card_id))]

    ids = sorted(trio.run(write_entries))
    report = _ok(cli("journal", "report-fraud", card_id, str(ids[1]), "--source", "chargeback"))
    assert (report["journal_id"], report["fraud"], report["source"]) == (ids[1], True, "chargeback")
    _ok(cli("journal", "report-fraud", card_id, str(ids[2]), "--source", "cardholder"))
    # the cardholder's claim on the third turns out wrong: the analyst's verdict replaces it
    _ok(cli("journal", "report-fraud", card_id, str(ids[2]), "--source", "analyst", "--genuine"))
    unknown = cli("journal", "report-fraud", card_id, str(ids[2] + 1000), "--source", "analyst")
    assert unknown.exit_code == 1 and "not found" in unknown.stderr
    bad = cli("journal", "report-fraud", card_id, str(ids[1]), "--source", "rumour")
    assert bad.exit_code == 1 and "source" in bad.stderr

    listed = _ok(cli("journal", "fraud-reports"))
    assert [(r["journal_id"], r["fraud"], r["source"]) for r in listed] == [
        (ids[1], True, "chargeback"),
        (ids[2], False, "analyst"),
    ]
    out = tmp_path / f"labelled.{fmt}"
    result = cli("journal", "export", "--format", fmt, "--out", str(out), "--labels")
    assert result.exit_code == 0, result.output
    labelled = load_labelled(out)  # what `authhost train --data` reads
    assert labelled.labels.tolist() == [0, 1, 0]
    plain = tmp_path / f"plain.{fmt}"
    _ok(cli("journal", "export", "--format", fmt, "--out", str(plain)))
    columns = next(csv.reader(plain.open())) if fmt == "csv" else pq.read_table(plain).column_names
    assert tuple(columns) == JOURNAL_COLUMNS  # no label unless asked

    async def audited() -> list[str]:
        async with opened_store(cli.store_url) as store:
            return [a.action for a in await store.audit(subject=card_id)]

    assert trio.run(audited).count("journal.fraud_report") == 3


def test_journal_prune_keeps_the_days_asked_and_is_audited(cli):
    day = 86_400

    async def write_entries() -> None:
        async with opened_store(cli.store_url) as store:
            for i, age_days in enumerate((400, 90, 36, 34, 1)):
                entry = JournalEntry(ts=time.time() - age_days * day, mti="0100",
                                     message_class="authorisation", response_code="00",
                                     amount_minor=100, stan=f"{i:06d}")  # fmt: skip
                await store.commit(Commit(journal=entry))

    trio.run(write_entries)
    refused = cli("journal", "prune", "--keep-days", "30")
    assert refused.exit_code == 1 and "at least 35" in refused.stderr
    done = _ok(cli("journal", "prune", "--keep-days", "35"))
    assert (done["entries"], done["holds"]) == (3, 0)

    async def read_back() -> tuple[list[str], list]:
        async with opened_store(cli.store_url) as store:
            left = await store.journal(JournalQuery(limit=10))
            return sorted(e.stan for e in left), await store.audit(subject="journal")

    left, audit = trio.run(read_back)
    assert left == ["000003", "000004"]  # 34 days and 1 day old
    assert [a.action for a in audit] == ["journal.prune"]
    assert json.loads(audit[0].after)["entries"] == 3


def test_journal_keep_days_under_the_minimum_is_a_configuration_error(tmp_path):
    config = tmp_path / "authhost.toml"
    config.write_text("[auth]\njournal_keep_days = 20\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code != 0 and "journal_keep_days must be 0" in result.output


@pytest.mark.parametrize("every", ["0", "-5", "3601"])
def test_a_hold_expiry_interval_out_of_range_is_a_configuration_error(tmp_path, every):
    config = tmp_path / "authhost.toml"
    config.write_text(f"[auth]\nhold_expiry_every_s = {every}\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code != 0 and "hold_expiry_every_s must be above 0" in result.output


def test_journal_export_takes_its_format_from_the_file_name(cli, tmp_path):
    """`journal export --out j.parquet` wrote CSV under a .parquet name, which `authhost
    backtest --data j.parquet` then refused as a corrupt Parquet file; a --format the name
    contradicts is refused rather than written."""

    async def write_entry() -> None:
        async with opened_store(cli.store_url) as store:
            entry = JournalEntry(
                ts=time.time(),
                mti="0100",
                message_class="authorization",
                response_code="00",
                stan="000001",
            )
            await store.commit(Commit(journal=entry))

    trio.run(write_entry)
    out = tmp_path / "j.parquet"
    _ok(cli("journal", "export", "--out", str(out)))
    assert pq.read_table(out).num_rows == 1
    refused = cli("journal", "export", "--format", "csv", "--out", str(tmp_path / "k.parquet"))
    assert refused.exit_code == 2 and "--format csv but k.parquet" in refused.stderr
    assert not (tmp_path / "k.parquet").exists()
    plain = tmp_path / "j.txt"
    _ok(cli("journal", "export", "--out", str(plain)))
    assert plain.read_text().startswith(JOURNAL_COLUMNS[0])


def test_journal_export_rejects_an_unknown_format(cli, tmp_path):
    result = cli("journal", "export", "--format", "xlsx", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "csv, parquet" in result.stderr


def test_the_busiest_acceptors_show_where_cards_fail(cli, tmp_path):
    """`journal acceptors` ranks merchants (or terminals) by a counter over every card's
    requests of the last hour: an analyst's view of card testing going on now."""
    _ok(cli("demo"))
    card_id = _ok(cli("cards", "list", "--state", "active", "--limit", "1"))[0]["card_id"]

    async def write_entries() -> None:
        async with opened_store(cli.store_url) as store:
            # journalled two hours ago (a journal is in time order): not counted
            old = JournalEntry(ts=time.time() - 7200, mti="0100", card_id=card_id,
                               merchant_id="SHOP-C", message_class="authorisation",
                               response_code="05", cvv_failed=True, stan="000099")  # fmt: skip
            await store.commit(Commit(journal=old, card_id=card_id))
            shops = ["SHOP-A", "SHOP-B", "SHOP-B", "SHOP-B", "SHOP-C"]
            for i, shop in enumerate(shops):
                entry = JournalEntry(ts=time.time() - 60 + i, mti="0100", card_id="",
                                     pan_index=f"unknown-{i}", merchant_id=shop,
                                     merchant_name=f"{shop} NO {i}",
                                     terminal_id=f"T{i % 2}", message_class="authorisation",
                                     response_code="05", cvv_failed=shop != "SHOP-C",
                                     stan=f"{i:06d}")  # fmt: skip
                await store.commit(Commit(journal=entry))

    trio.run(write_entries)
    ranked = _ok(cli("journal", "acceptors", "--by", "failed_cvv_1h"))
    assert ranked["requests_counted"] == 5
    assert [(a["merchant_id"], a["failed_cvv_1h"]) for a in ranked["acceptors"]] == [
        ("SHOP-B", 3), ("SHOP-A", 1), ("SHOP-C", 0)
    ]  # fmt: skip
    assert ranked["acceptors"][0]["unknown_card_count_10m"] == 3
    assert ranked["acceptors"][0]["merchant_name"] == "SHOP-B NO 3"  # the newest name it sent
    at_terminals = _ok(
        cli("journal", "acceptors", "--terminals", "--by", "count_10m", "--limit", "2")
    )
    assert [(a["merchant_id"], a["terminal_id"], a["count_10m"]) for a in at_terminals["acceptors"]] == [
        ("SHOP-B", "T1", 2), ("SHOP-A", "T0", 1)
    ]  # fmt: skip
    bad = cli("journal", "acceptors", "--by", "count_2h")
    assert bad.exit_code == 1 and "by must be one of" in bad.stderr
    # the analyst's next step: that merchant's own journal
    out = tmp_path / "shop-b.csv"
    exported = cli("journal", "export", "--out", str(out), "--merchant-id", "SHOP-B")
    assert exported.exit_code == 0, exported.output
    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert [(r["merchant_id"], r["merchant_name"]) for r in rows] == [
        ("SHOP-B", f"SHOP-B NO {i}") for i in (1, 2, 3)
    ]


def test_bulk_issue_says_which_rows_an_earlier_file_issued_already(cli, tmp_path):
    """A row's default key is its content: next month's file repeating a row gets last
    month's card back. The operator is told so, not shown it as issued."""
    _ok(cli("products", "create", "--product-id", "p", "--issuer-id", "b", "--name", "D",
            "--bin", "476173"))  # fmt: skip
    _ok(cli("accounts", "create", "--account-id", "gifts"))
    november = tmp_path / "gift-cards-2611.csv"
    november.write_text("product_id,account_id\np,gifts\n")
    first = cli("cards", "bulk-issue", str(november))
    assert first.exit_code == 0 and "earlier" not in first.stderr, first.stderr
    december = tmp_path / "gift-cards-2612.csv"
    december.write_text("product_id,account_id\np,gifts\np,gifts\n")
    second = cli("cards", "bulk-issue", str(december))
    assert second.exit_code == 0, second.stderr
    # line 2 repeats november's only row: no card made for it; line 3 is a second such row
    assert f"{december}:2: not issued: crd_" in second.stderr
    assert f"{december}:3:" not in second.stderr
    assert "2 row(s): 2 issued, 0 failed; 1 of them by an earlier run" in second.stderr
    assert len(_ok(cli("cards", "list"))) == 2
    keyed = tmp_path / "gift-cards-2612-keyed.csv"
    keyed.write_text("product_id,account_id,idempotency_key\np,gifts,gift-2612-1\n")
    third = cli("cards", "bulk-issue", str(keyed))
    assert third.exit_code == 0 and "earlier" not in third.stderr, third.stderr
    assert len(_ok(cli("cards", "list"))) == 3


def test_a_report_without_a_period_says_what_to_give(cli):
    """``journal totals`` with no --day or --since said "give a day (YYYY-MM-DD), since, or
    until after since", as if an --until were wrong; the reports that take a period
    (totals, statements, rule performance, model comparison) share the message."""
    account = _ok(cli("accounts", "create", "--balance", "5000"))  # the store exists
    for command in (
        ("journal", "totals"),
        ("accounts", "statement", account["account_id"]),
        ("rules", "performance"),
    ):
        result = cli(*command)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        text = " ".join(result.stderr.split())
        assert "no period given: give a day (YYYY-MM-DD), or a since" in text, text
    backwards = cli("journal", "totals", "--since", "5", "--until", "1")
    assert backwards.exit_code == 1
    assert "until 1 is not after since 5" in " ".join(backwards.stderr.split())


def test_a_product_shown_then_sent_back_as_a_new_one_says_what_to_remove(cli, tmp_path):
    """``products show``'s JSON given to ``products create --json`` (a product like this one)
    was refused "version: Extra inputs are not permitted"; a misspelt field got the same."""
    shown = _ok(cli("products", "create", "--issuer-id", "bank", "--name", "D", "--bin", "476173"))
    shown["product_id"] = "copy"
    copy = tmp_path / "product.json"
    copy.write_text(json.dumps(shown))
    refused = cli("products", "create", "--json", str(copy))
    said = " ".join(refused.stderr.split())
    assert refused.exit_code == 1 and "Extra inputs" not in said
    assert "version: not a field of this request: remove it" in said
    del shown["version"]
    shown["limits"] = {"daily_amout": 5_000}
    copy.write_text(json.dumps(shown))
    typo = cli("products", "create", "--json", str(copy))
    assert "limits.daily_amout: not a field of this request (did you mean 'daily_amount'?)" in (
        " ".join(typo.stderr.split())
    )
    del shown["limits"]
    copy.write_text(json.dumps(shown))
    assert _ok(cli("products", "create", "--json", str(copy)))["product_id"] == "copy"


def test_an_export_to_a_folder_that_does_not_exist_names_the_file(cli, tmp_path):
    """``journal export --out /no/such/dir/j.csv`` printed Python's "[Errno 2] No such file
    or directory: '...'", where the other writers say the file and the reason."""
    _ok(cli("accounts", "create", "--balance", "5000"))  # the store exists
    out = tmp_path / "no-such-folder" / "j.csv"
    result = cli("journal", "export", "--out", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    said = " ".join(result.stderr.split())
    assert said == (
        f"error: cannot write {out}: the folder {out.parent} does not exist; create it first"
    ), said


def test_explain_without_a_model_names_the_models_directory(cli, tmp_path, monkeypatch):
    """It said "no active model in models", the directory's name alone (the default is
    "models"), which read as a sentence with a word missing."""
    monkeypatch.setenv("AUTHHOST_MODELS_DIR", str(tmp_path / "models"))
    product = _ok(cli("products", "create", "--issuer-id", "b", "--name", "D", "--bin", "476173"))
    account = _ok(cli("accounts", "create", "--balance", "5000"))
    card = _ok(cli("cards", "issue", "--product-id", product["product_id"],
                   "--account-id", account["account_id"]))  # fmt: skip
    result = cli("journal", "explain", card["card_id"], "1")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 1
    assert f"no active model in the models directory {tmp_path / 'models'} ([models] dir)" in said
