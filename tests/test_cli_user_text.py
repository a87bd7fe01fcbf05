"""The rule, backtest and model commands print users' text as written: a '[' in a path, a
reason, an owner or a model name is not rich markup (it was swallowed, or raised), and a line
is one line in a pipe (rich wrapped at 80 columns, cutting ``file:line: reason`` mid-token)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.models.artifact import write_artifact
from authhost.models.features import N_FEATURES
from authhost.models.terminal_risk import TerminalRisk

runner = CliRunner()
LONG = "a-directory-name-long-enough-to-push-every-line-past-eighty-columns"


def _odd_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "[red]old" / LONG
    folder.mkdir(parents=True)
    return folder


def test_rules_check_and_list_print_paths_reasons_and_owners_as_written(tmp_path: Path) -> None:
    rules = _odd_dir(tmp_path) / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "web"\nexpression = "amount > 1"\naction = "review"\n'
        'reason = "R-[bold]x[/bold]"\nowner = "team [fraud] [/]"\n'
    )
    checked = runner.invoke(app, ["rules", "check", str(rules)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[0].startswith(f"OK {rules}: 1 rules")
    listed = runner.invoke(app, ["rules", "list", str(rules)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == f"{rules} (version {lines[0].rsplit(' ', 1)[1]}"
    assert lines[1] == (
        "  1. web  [review, enforce, priority 100, reason R-[bold]x[/bold], "
        "owner team [fraud] [/], line 3]"
    )
    assert lines[2] == "     amount > 1" and len(lines) == 3


def test_rules_check_errors_are_one_line_each_with_the_path_as_written(tmp_path: Path) -> None:
    rules = _odd_dir(tmp_path) / "rules.toml"
    rules.write_text('[[rule]]\nname = "w"\nexpression = "channel == \'web\'"\naction = "review"\n')
    result = runner.invoke(app, ["rules", "check", str(rules)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{rules}:3: rule 'w': channel == 'web' can never be true: channel is one of 'pos', "
        "'atm', 'ecommerce', 'contactless', 'moto' (column 12)"
    ]
    missing = runner.invoke(app, ["backtest", "--rules", str(rules), "--data", str(rules)])
    assert missing.exit_code == 1 and len(missing.output.splitlines()) == 1


def test_rules_tables_under_a_plural_name_say_the_name_a_rule_takes(tmp_path: Path) -> None:
    """A first rules file written with ``[[rules]]`` got only "unknown top-level key(s):
    rules": the check now says which name it takes, in the file's own syntax."""
    body = 'name = "a"\nexpression = "amount > 1"\naction = "review"\n'
    toml = tmp_path / "rules.toml"
    toml.write_text("[[rules]]\n" + body)
    result = runner.invoke(app, ["rules", "check", str(toml)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{toml}: unknown top-level key(s): rules (did you mean 'rule'? each rule is a "
        "[[rule]] table)"
    )
    yaml = tmp_path / "rules.yaml"
    yaml.write_text("rules:\n  - name: a\n    expression: amount > 1\n    action: review\n")
    result = runner.invoke(app, ["rules", "check", str(yaml)])
    assert result.exit_code == 1 and "each rule is an item of the `rule:` list" in result.output


def test_a_number_compared_with_text_is_answered_for_what_it_is(tmp_path: Path) -> None:
    """Every such test said 'quote the value, e.g. "5967"': for ``mcc == 59671`` the quoted
    value was refused next (a code of the wrong width), and the example was never the value."""
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "a"\nexpression = "mcc == 59671"\naction = "review"\n'
        '[[rule]]\nname = "b"\nexpression = "terminal == 123"\naction = "review"\n'
    )
    result = runner.invoke(app, ["rules", "check", str(rules)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{rules}:3: rule 'a': 59671 can never be a 4-digit code: compare with a code of 4 "
        "digits (column 1)",
        f"{rules}:7: rule 'b': cannot compare text with a number; quote the value: \"123\" "
        "(column 1)",
    ]


def test_an_error_naming_a_path_is_printed_as_written(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[rule]]\nname = "a"\nexpression = "amount > 1"\naction = "review"\n')
    data = _odd_dir(tmp_path) / "missing.csv"
    result = runner.invoke(app, ["backtest", "--rules", str(good), "--data", str(data)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {data}: data file not found (labelled data: authhost-sim traffic --out FILE, "
        "or authhost journal export --labels --format parquet --out FILE)"
    ]


def test_a_folder_given_as_data_is_called_a_folder(tmp_path: Path) -> None:
    """``backtest --data DIR`` and ``train --data DIR`` said "data file not found" of a
    folder that was there."""
    good = tmp_path / "good.toml"
    good.write_text('[[rule]]\nname = "a"\nexpression = "amount > 1"\naction = "review"\n')
    for args in (
        ["backtest", "--rules", str(good), "--data", str(tmp_path)],
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "out")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert f"{tmp_path}: a folder, not a data file" in result.output, result.output


def test_rules_variables_prints_one_line_per_variable_in_a_pipe() -> None:
    result = runner.invoke(app, ["rules", "variables", "--markdown"])
    assert result.exit_code == 0
    rows = result.output.splitlines()[2:]
    assert rows and all(row.startswith("| `") and row.endswith(" |") for row in rows)


def test_models_list_prints_names_and_errors_as_written(tmp_path: Path) -> None:
    arrays = {"coef": np.zeros(N_FEATURES), "intercept": np.array([0.0])}
    meta = {"threshold": 800, "created": "2026-01-01", "metrics": {}}
    name = "lr-[bold]-" + LONG
    write_artifact(tmp_path / name, "logistic", arrays, TerminalRisk(), meta)
    broken = tmp_path / "gbm-[x]"
    broken.mkdir()
    (broken / "model.json").write_text("{not json [x]")
    result = runner.invoke(app, ["models", "list", "--dir", str(tmp_path), "-o", "table"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert len(rows) == 2  # one line each: nothing wrapped
    assert (
        name in rows[1] and "gbm-[x]" in rows[0] and "gbm-[x]/model.json: not valid JSON" in rows[0]
    )
    assert f"models in {tmp_path}" in result.output
