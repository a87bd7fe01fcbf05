"""``authhost train`` end to end on a small synthetic labelled export, then ``authhost models``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.models.features import (
    ACCEPTOR_FEATURE_NAMES,
    ACCEPTOR_FEATURE_SET,
    FEATURE_NAMES,
    RECEIVED_FEATURE_NAMES,
    RECEIVED_FEATURE_SET,
    WALLET_FEATURE_NAMES,
    WALLET_FEATURE_SET,
    feature_blocks,
)
from authhost.models.scorer import Scorer
from authhost.models.synthetic import generate_rows

CONFIG = """
models = ["logistic", "hgb"]
[split]
test_days = 6
gap_days = 2
[operating]
alert_rate = 0.02
top_k_cards = 10
[hgb]
max_iter = 25
max_leaf_nodes = 15
class_weight = 5
threads = 1
"""


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = generate_rows(cards=120, days=24, seed=5, fraud_card_share=0.2)
    path = tmp_path_factory.mktemp("data") / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(rows), path)
    return path


def test_train_reports_and_exports_both_models(tmp_path: Path, labelled_csv: Path) -> None:
    config = tmp_path / "train.toml"
    config.write_text(CONFIG)
    out = tmp_path / "models"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["train", "--data", str(labelled_csv), "--config", str(config), "--out", str(out),
         "-o", "table"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "held-out test days" in result.output and "hgb" in result.output

    report = json.loads(next((out / "runs").glob("*/report.json")).read_text())
    assert report["train"]["frauds"] > 0 and report["test"]["frauds"] > 0
    assert report["train"]["days"][1] < report["test"]["days"][0]  # the gap: no overlap
    for kind in ("logistic", "hgb"):
        m = report["metrics"][kind]
        assert 0.5 < m["auc_roc"] <= 1 + 1e-9 and 0 < m["average_precision"] <= 1 + 1e-9
        assert len(m["card_precision_per_day"]) == 6 and m["k"] == 10
        assert 0 <= m["precision_at_threshold"] <= 1 and 0 <= m["threshold"] <= 999
    for plot in report["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    artifacts = {p.name.split("-")[0]: p for p in out.iterdir() if (p / "model.json").exists()}
    assert set(artifacts) == {"logistic", "hgb"}
    meta = json.loads((artifacts["hgb"] / "model.json").read_text())
    assert meta["training_data"]["sha256"] == report["data"]["sha256"]
    assert meta["metrics"]["average_precision"] == report["metrics"]["hgb"]["average_precision"]
    scorer = Scorer.load(artifacts["hgb"])
    assert scorer.threshold == meta["threshold"] and scorer.terminal_risk.rates

    listed = runner.invoke(app, ["models", "list", "--dir", str(out), "--json"])
    assert listed.exit_code == 0, listed.output
    assert {a["name"] for a in json.loads(listed.output)["artifacts"]} == {
        p.name for p in artifacts.values()
    }
    for name, extra in ((artifacts["logistic"].name, []), (artifacts["hgb"].name, [])):
        done = runner.invoke(app, ["models", "activate", name, "--dir", str(out), *extra])
        assert done.exit_code == 0, done.output
    back = runner.invoke(app, ["models", "rollback", "--dir", str(out)])
    assert back.exit_code == 0 and f"champion: {artifacts['logistic'].name}" in back.output
    cleared = runner.invoke(app, ["models", "clear-challenger", "--dir", str(out)])
    assert cleared.exit_code == 0 and "no challenger" in cleared.output, cleared.output
    for said in (done, back):  # a running server reads the change at SIGHUP only
        assert "picks this up on SIGHUP (kill -HUP $(cat authhost.pid))" in said.output


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "data.csv").write_text("a,b\n1,2\n"), "missing column(s) ts, label"),
        (lambda d: None, "data file not found"),
        (
            lambda d: (d / "train.toml").write_text("[hgb]\nmax_iters = 3\n"),
            "unknown key(s) max_iters",
        ),
        (  # it said "lower [split] test_days/gap_days" and not where that table is
            lambda d: (d / "train.toml").write_text("[split]\ntest_days = 40\n"),
            "under [split] in a training config (--config train.toml",
        ),
    ],
    ids=["not a journal export", "no data file", "typo in config", "too little data"],
)
def test_train_errors_are_one_clear_line(
    tmp_path: Path, labelled_csv: Path, setup, message: str
) -> None:  # type: ignore[no-untyped-def]
    setup(tmp_path)
    data = tmp_path / "data.csv" if (tmp_path / "data.csv").exists() else labelled_csv
    if message == "data file not found":
        data = tmp_path / "missing.csv"
    args = ["train", "--data", str(data), "--out", str(tmp_path / "out")]
    if (tmp_path / "train.toml").exists():
        args += ["--config", str(tmp_path / "train.toml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_models_commands_report_errors_without_traces(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "activate", "nope", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "no artifact named 'nope'" in result.output
    said = " ".join(result.output.split())
    assert f"no artifact named 'nope' in the models directory {tmp_path}" in said
    result = CliRunner().invoke(app, ["models", "list", "--dir", str(tmp_path), "-o", "table"])
    assert result.exit_code == 0 and "no model artifacts" in result.output


def test_train_config_accepts_balanced_or_numeric_class_weights(tmp_path: Path) -> None:
    from authhost.models.training import TrainingError, load_train_config

    path = tmp_path / "train.toml"
    path.write_text(
        '[hgb]\nclass_weight = "balanced"\nmax_iter = 10\n[logistic]\nclass_weight = 25\n'
    )
    config = load_train_config(path)
    assert config.hgb.class_weight == "balanced" and config.hgb.max_iter == 10
    assert config.logistic.class_weight == 25
    path.write_text('[hgb]\nmax_iter = "many"\n')
    with pytest.raises(TrainingError, match=r"\[hgb\]\.max_iter: expected a number"):
        load_train_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[split]\ntest_days = -1\n", "[split].test_days: must be at least 1, got -1"),
        ("[split]\ngap_days = 1.5\n", "[split].gap_days: expected a whole number, got 1.5"),
        ("[logistic]\nC = -1\n", "[logistic].C: must be more than 0, got -1"),
        ("[logistic]\nC = nan\n", "[logistic].C: expected a number, got nan"),
        ("[hgb]\nmax_iter = 0\n", "[hgb].max_iter: must be at least 1, got 0"),
        ("[hgb]\nlearning_rate = 0\n", "[hgb].learning_rate: must be more than 0, got 0"),
        ("[operating]\ntop_k_cards = 0\n", "[operating].top_k_cards: must be at least 1, got 0"),
        (
            "[terminal_risk]\nsmoothing = -3\n",
            "[terminal_risk].smoothing: must be at least 0, got -3",
        ),
        ("[hgb]\nclass_weight = -2\n", "[hgb].class_weight must be 'balanced' or a positive"),
    ],
)
def test_train_config_refuses_values_out_of_range_before_the_replay(
    tmp_path: Path, text: str, message: str
) -> None:
    """These were accepted: a negative test_days made an empty split, C = -1 a scikit-learn
    traceback after the whole replay, gap_days 1.5 was cut to 1 without a word."""
    config = tmp_path / "train.toml"
    config.write_text(text)
    missing = tmp_path / "never-read.csv"  # the config is refused before the data is read
    args = ["train", "--data", str(missing), "--config", str(config), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"authhost: {config}:{message}"] or (
        message.startswith("[hgb].class_weight") and message in result.output
    )


@pytest.mark.parametrize(
    ("feature_set", "names"),
    [
        (ACCEPTOR_FEATURE_SET, (*FEATURE_NAMES, *ACCEPTOR_FEATURE_NAMES)),
        (RECEIVED_FEATURE_SET, (*FEATURE_NAMES, *ACCEPTOR_FEATURE_NAMES, *RECEIVED_FEATURE_NAMES)),
        (
            WALLET_FEATURE_SET,
            (
                *FEATURE_NAMES,
                *ACCEPTOR_FEATURE_NAMES,
                *RECEIVED_FEATURE_NAMES,
                *WALLET_FEATURE_NAMES,
            ),
        ),  # fmt: skip
    ],
)
def test_train_with_merchant_features_reports_each_scenario(
    tmp_path: Path, labelled_csv: Path, feature_set: str, names: tuple[str, ...]
) -> None:
    """``--features authhost-features-2``: the artifacts name the second feature set (the
    first's features then the merchant and terminal ones), their scorer reads the counters, and
    the report counts the frauds of each scenario caught at the threshold; the third adds the
    money the card received, the fourth the wallet token that paid."""
    config = tmp_path / "train.toml"
    config.write_text(CONFIG)
    out = tmp_path / "models"
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(labelled_csv), "--config", str(config), "--out", str(out),
         "--features", feature_set, "-o", "table"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scenario" in result.output and "card_testing" in result.output
    report = json.loads(next((out / "runs").glob("*/report.json")).read_text())
    assert report["features"] == feature_set
    for kind in ("logistic", "hgb"):
        caught = report["metrics"][kind]["recall_by_scenario"]
        assert "card_testing" in caught
        assert sum(of for _, of in caught.values()) == report["test"]["frauds"]
        assert all(0 <= hit <= of for hit, of in caught.values())
    for artifact in (p for p in out.iterdir() if (p / "model.json").exists()):
        meta = json.loads((artifact / "model.json").read_text())
        assert meta["feature_set"] == feature_set
        assert meta["features"] == list(names)
        scorer = Scorer.load(artifact)
        assert scorer.reads_acceptors and scorer.n_features == len(meta["features"])
        assert scorer.feature_blocks == feature_blocks(feature_set)
    listed = CliRunner().invoke(app, ["models", "list", "--dir", str(out), "--json"])
    assert {a["feature_set"] for a in json.loads(listed.output)["artifacts"]} == {feature_set}


def test_train_takes_dash_o_as_the_other_reports_do(tmp_path: Path, labelled_csv: Path) -> None:
    """``train`` alone took ``--json`` (and printed its table into a pipe); now ``-o json``,
    the default in a pipe, prints the run's report.json as ``--json`` did (docs/models.md
    names it), and a wrong ``-o`` is refused before the replay and the fits."""
    config = tmp_path / "train.toml"
    config.write_text(CONFIG)
    for flag in ([], ["-o", "json"], ["--json"]):
        out = tmp_path / f"models{len(flag)}{''.join(flag)}"
        args = ["train", "--data", str(labelled_csv), "--config", str(config), "--out", str(out)]
        result = CliRunner().invoke(app, [*args, *flag])
        assert result.exit_code == 0, result.output
        report = next((out / "runs").glob("*/report.json")).read_text()
        assert json.loads(result.stdout) == json.loads(report), flag
    wrong = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "no"), "-o", "yaml"])
    assert wrong.exit_code == 2 and "must be one of auto, table, json" in wrong.output
    assert not (tmp_path / "no").exists()


def test_an_unknown_feature_set_is_one_clear_line(tmp_path: Path, labelled_csv: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--data", str(labelled_csv), "--out", str(tmp_path), "--features", "x"]
    )
    assert result.exit_code == 2
    assert "features must be one of authhost-features-1, authhost-features-2" in result.output
    assert "Traceback" not in result.output
    (tmp_path / "train.toml").write_text('features = "authhost-features-9"\n')
    result = CliRunner().invoke(
        app, ["train", "--data", str(labelled_csv), "--config", str(tmp_path / "train.toml")]
    )
    assert result.exit_code == 2 and "features must be one of" in result.output


def test_train_out_that_is_a_file_is_one_line_before_the_replay(
    tmp_path: Path, labelled_csv: Path
) -> None:
    """A file where --out should be a directory was a FileExistsError traceback after the
    replay and the fits."""
    out = tmp_path / "models"
    out.write_text("not a directory")
    result = CliRunner().invoke(app, ["train", "--data", str(labelled_csv), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"authhost: {out}: cannot write the models there: not a directory"
    ]


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("test_days = 3\n", "unknown section(s) test_days (it belongs under [split])"),
        ("[splt]\ntest_days = 3\n", "unknown section(s) splt (did you mean 'split'?)"),
        ("max_iter = 3\n", "max_iter (it belongs under [logistic] or [hgb])"),
    ],
)
def test_a_key_above_its_section_is_told_where_it_belongs(
    tmp_path: Path, text: str, hint: str
) -> None:
    from authhost.models.training import TrainingError, load_train_config

    path = tmp_path / "train.toml"
    path.write_text(text)
    with pytest.raises(TrainingError) as caught:
        load_train_config(path)
    assert str(caught.value) == f"{path}: {hint}" or hint in str(caught.value)
