"""A command given a SQLite store that does not exist says "no store at PATH" and exits 1,
leaving no file behind: SQLite created an empty database at a mistyped --store, and a reading
command answered "no entries" or "not found" as if the store had been read. The commands that
create (demo, products create, accounts create, lists put; serve) still make a new store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authhost.cli.app import app

runner = CliRunner()

READING = [
    ["journal", "show", "C1"],
    ["journal", "export", "--out", "{tmp}/out.csv"],
    ["journal", "totals", "--day", "2026-01-02"],
    ["journal", "reviews"],
    ["journal", "fraud-reports"],
    ["journal", "movements"],
    ["journal", "report-fraud", "C1", "1", "--source", "analyst"],
    ["cards", "list"],
    ["cards", "show", "C1"],
    ["cards", "expiring"],
    ["products", "list"],
    ["accounts", "list"],
    ["accounts", "show", "A1"],
    ["audit", "list"],
    ["lists", "list"],
    ["disputes", "list"],
    ["store", "info"],
    ["store", "check"],
]


@pytest.fixture
def demo_keys(tmp_path: Path) -> Path:
    """A demo installation's key store (made by `demo` on a store of its own), so that the
    commands get as far as opening the store."""
    config = tmp_path / "authhost.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "real.db"}"\n\n'
        f'[security]\nkey_store = "{tmp_path / "keys.json"}"\ndemo = true\n'
    )
    made = runner.invoke(app, ["demo", "--config", str(config)])
    assert made.exit_code == 0, made.output
    return config


@pytest.mark.parametrize("args", READING, ids=[" ".join(a[:2]) for a in READING])
def test_a_missing_store_is_refused_and_not_created(
    tmp_path: Path, demo_keys: Path, args: list[str]
) -> None:
    missing = tmp_path / "typo.db"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(
        app, [*args, "--store", f"sqlite:///{missing}", "--config", str(demo_keys)]
    )
    assert result.exit_code == 1, result.output
    assert re.search(f"no (SQLite )?store at {re.escape(str(missing))}", result.output)
    assert "Traceback" not in result.output
    assert not missing.exists()
    assert not (tmp_path / "out.csv").exists()


def test_a_bare_path_and_a_file_url_are_checked_too(tmp_path: Path, demo_keys: Path) -> None:
    for url in (str(tmp_path / "bare.db"), f"file://{tmp_path / 'file.db'}"):
        result = runner.invoke(app, ["cards", "list", "--store", url, "--config", str(demo_keys)])
        assert result.exit_code == 1 and "no store at" in result.output, result.output
    assert not (tmp_path / "bare.db").exists() and not (tmp_path / "file.db").exists()


def test_the_commands_that_create_still_create(
    tmp_path: Path, demo_keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # `demo` without --config makes its key store here
    new = tmp_path / "new.db"
    store = ["--store", f"sqlite:///{new}", "--config", str(demo_keys)]
    values = tmp_path / "values.txt"
    values.write_text("merchant-1\n")
    made = runner.invoke(app, ["lists", "put", "blocked", str(values), *store])
    assert made.exit_code == 0, made.output
    assert new.exists()
    listed = runner.invoke(app, ["lists", "list", *store])  # now it reads
    assert listed.exit_code == 0 and "blocked" in json.loads(listed.stdout), listed.output
    other = tmp_path / "demo.db"
    assert runner.invoke(app, ["demo", "--store", f"sqlite:///{other}"]).exit_code == 0
    assert other.exists()
