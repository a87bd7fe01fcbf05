"""The CLI's options spelt alike across commands: ``-c`` for ``--config`` wherever a command
takes a configuration file, ``-o table|json`` for what it prints, on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trio
import typer.main
from test_store_contract import hold, seeded
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.models.artifact import write_artifact
from authhost.models.features import FEATURE_NAMES, N_FEATURES
from authhost.models.registry import Registry
from authhost.models.terminal_risk import TerminalRisk
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


def _commands(command, path: tuple[str, ...] = ()):  # noqa: ANN001, ANN202 - click objects
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_command_that_takes_a_configuration_file_takes_dash_c() -> None:
    """``rules list -c FILE`` and ``models list -c FILE`` worked; ``journal reviews -c FILE``,
    ``journal explain -c FILE`` (and every other command of the admin CLI, ``rules
    performance`` and ``models compare`` too) said "No such option: -c"."""
    without = [
        name
        for name, command in _commands(typer.main.get_command(app))
        for param in command.params
        if "--config" in param.opts and "-c" not in param.opts
    ]
    assert without == []
    twice = [  # a short option given to two options of one command: the later would be lost
        name
        for name, command in _commands(typer.main.get_command(app))
        if len(spelt := [o for p in command.params for o in p.opts]) != len(set(spelt))
    ]
    assert twice == []


def _amount_model(models: Path) -> None:
    """A logistic model that reads the amount only, made the champion."""
    coef = np.zeros(N_FEATURES)
    coef[FEATURE_NAMES.index("amount_log")] = 1.0
    # the training mean of each feature: what explaining a score measures from
    arrays = {"coef": coef, "intercept": np.array([-6.0]), "mean": np.zeros(N_FEATURES)}
    meta = {"threshold": 500, "created": "2026-11-29T00:00:00+00:00"}
    write_artifact(models / "lr-amount", "logistic", arrays, TerminalRisk(), meta)
    Registry(models).activate("lr-amount")


@pytest.fixture
def analyst(tmp_path: Path):
    """A SQLite store with one flagged purchase of 900.00, a champion model, and a config
    file naming both: ``run(*args)`` is ``authhost ARGS``, and the entry's ids."""
    store_url = f"sqlite:///{tmp_path / 'authhost.db'}"

    async def flagged() -> tuple[str, int]:
        async with opened_store(store_url) as store:
            card, _ = await seeded(store, balance=10**7)
            await store.commit(hold(card, 1, 90_000, review=True))
            [entry] = await store.journal(JournalQuery(card_id=card.card_id))
            return card.card_id, entry.journal_id

    card_id, journal_id = trio.run(flagged)
    _amount_model(tmp_path / "models")
    config = tmp_path / "authhost.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[models]\ndir = "{tmp_path / "models"}"\n'
        f'[security]\nkey_store = "{tmp_path / "keys.json"}"\ndemo = true\n'
    )

    def run(*args: str):  # noqa: ANN202 - a click Result
        return CliRunner().invoke(app, list(args))

    run.config, run.card_id, run.journal_id = str(config), card_id, journal_id
    return run


def test_the_review_queue_and_explain_take_dash_c_and_dash_o(analyst) -> None:  # noqa: ANN001
    """``journal explain`` printed JSON only (no ``-o``); now ``-o table`` shows the features,
    the ones that pushed the score up first, with the score beside the journalled one, and
    ``-o json`` (the default in a pipe) is the answer as before."""
    card, entry, config = analyst.card_id, str(analyst.journal_id), analyst.config
    queue = analyst("journal", "reviews", "-c", config, "-o", "json")
    assert queue.exit_code == 0, queue.output
    assert [r["journal_id"] for r in json.loads(queue.stdout)["reviews"]] == [analyst.journal_id]

    as_before = analyst("journal", "explain", card, entry, "--config", config)
    assert as_before.exit_code == 0, as_before.output
    view = json.loads(as_before.stdout)
    assert view["score"] > 500 and view["reasons"][0]["feature"] == "amount_log"
    as_json = analyst("journal", "explain", card, entry, "-c", config, "-o", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == view

    table = analyst("journal", "explain", card, entry, "-c", config, "-o", "table")
    assert table.exit_code == 0, table.output
    rows = [line for line in table.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == len(view["features"])
    assert "amount_log" in rows[0] and f"{view['reasons'][0]['added']:+.4f}" in rows[0]
    said = " ".join(table.stdout.split())
    assert f"model lr-amount (authhost-features-1) scores {view['score']}" in said
    assert "journalled model score -, fraud score -; not scored online: no model" in said
    wrong = analyst("journal", "explain", card, entry, "-c", config, "-o", "yaml")
    assert wrong.exit_code == 2 and "must be one of auto, table, json" in wrong.output


def test_models_list_takes_dash_o_as_the_other_listings_do(analyst) -> None:  # noqa: ANN001
    """``models list`` alone took ``--json``; ``-o json`` prints the same, ``--json`` still
    works (docs/models.md names it), and ``-o table`` the table."""
    by_flag = analyst("models", "list", "-c", analyst.config, "--json")
    by_output = analyst("models", "list", "-c", analyst.config, "-o", "json")
    assert by_flag.exit_code == by_output.exit_code == 0, by_output.output
    assert json.loads(by_output.stdout) == json.loads(by_flag.stdout)
    assert json.loads(by_output.stdout)["active"]["champion"] == "lr-amount"
    table = analyst("models", "list", "-c", analyst.config, "-o", "table")
    assert "lr-amount" in table.stdout and "champion" in table.stdout
    assert not table.stdout.lstrip().startswith("{")


# the commands that print a listing or a report for an analyst to read: each takes -o
REPORTS = (
    "train",
    "cards list",
    "cards timeline",
    "journal show",
    "journal explain",
    "journal explain-rules",
    "journal fraud-reports",
    "journal reviews",
    "journal acceptors",
    "journal alerts",
    "audit list",
    "disputes list",
    "rules performance",
    "models list",
    "models compare",
    "models drift",
    "fraud common-points",
)


def test_every_report_command_takes_dash_o() -> None:
    """``journal explain-rules`` and ``models compare`` printed JSON only and ``train`` took
    ``--json`` alone, unlike the other reports' ``-o auto|table|json``; a command with a
    ``--json`` flag (what it prints) is a report too."""
    commands = dict(_commands(typer.main.get_command(app)))
    assert set(REPORTS) <= set(commands)  # a renamed command is named here again
    flagged = {
        name
        for name, command in commands.items()
        if any("--json" in p.opts and getattr(p, "is_flag", False) for p in command.params)
    }
    without = [
        name
        for name in sorted(set(REPORTS) | flagged)
        if "-o" not in [o for p in commands[name].params for o in p.opts]
    ]
    assert without == []


def _store_url(config: str) -> str:
    return f"sqlite:///{Path(config).parent / 'authhost.db'}"


def test_explain_rules_takes_dash_o_with_the_outcome_on_top(analyst, tmp_path: Path) -> None:  # noqa: ANN001
    """``journal explain-rules`` printed JSON only; ``-o table`` has the set's outcome and the
    journalled one on top, then the rules that matched before the others, and ``-o json`` (the
    default in a pipe) is the answer as before."""
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "small"\nexpression = "amount < 10"\naction = "decline"\n'
        'reason = "tiny"\n[[rule]]\nname = "large"\nexpression = "amount >= 500"\n'
        'action = "decline"\nreason = "big"\n'
    )
    args = ["journal", "explain-rules", analyst.card_id, str(analyst.journal_id)]
    args += ["--rules", str(rules), "-c", analyst.config]
    as_before = analyst(*args)
    assert as_before.exit_code == 0, as_before.output
    view = json.loads(as_before.stdout)
    assert view["outcome"]["matched"] == ["large"]
    assert [r["name"] for r in view["rules"]] == ["small", "large"]  # the set's order
    as_json = analyst(*args, "-o", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == view

    table = analyst(*args, "-o", "table")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"journal entry {analyst.journal_id} of card {analyst.card_id}")
    assert "decline" in lines[0] and "matched large" in lines[0]
    assert lines[1].startswith("journalled: response 00")
    rows = [line for line in lines if line.startswith("│")]
    assert "large" in rows[0] and "matched" in rows[0] and "amount=900" in rows[0]
    assert "small" in rows[1] and " no " in rows[1]
    wrong = analyst(*args, "-o", "yaml")
    assert wrong.exit_code == 2 and "must be one of auto, table, json" in wrong.output


def test_models_compare_takes_dash_o_with_the_period_on_top(analyst) -> None:  # noqa: ANN001
    """``models compare`` printed JSON only; ``-o table`` says the period and its reported
    frauds on top, a row per model (threshold, alerts, frauds caught and for how much), the
    agreement under them; ``-o json`` (the default in a pipe) is the answer as before."""

    async def scored() -> list[int]:
        async with opened_store(_store_url(analyst.config)) as store:
            card = await store.get_card(analyst.card_id)
            ids = []
            for n, (champion, challenger) in enumerate(((800, 300), (100, 700), (50, 60)), 2):
                scores = {"fraud_score": champion, "model_score": champion}
                await store.commit(hold(card, n, 12_345, challenger_score=challenger, **scores))
                journal = await store.journal(JournalQuery(card_id=card.card_id, limit=100))
                ids += [e.journal_id for e in journal if e.stan == f"{n:06d}"]
            return ids

    fraud, other, _ = trio.run(scored)
    config = analyst.config
    report = analyst("journal", "report-fraud", analyst.card_id, str(fraud), "--source", "analyst",
                     "-c", config)  # fmt: skip
    assert report.exit_code == 0, report.output
    args = ["models", "compare", "--since", "0", "--until", "4000000000", "-c", config]
    args += ["--champion-threshold", "500", "--challenger-threshold", "500"]
    as_before = analyst(*args)
    assert as_before.exit_code == 0, as_before.output
    view = json.loads(as_before.stdout)
    assert (view["scored_by_both"], view["reported_frauds"]) == (3, 1)
    assert view["frauds_only_champion_catches"] == [fraud]
    as_json = analyst(*args, "-o", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == view

    table = analyst(*args, "-o", "table")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert "3 requests scored by both, 1 reported fraud (123.45 978)" in lines[0]
    rows = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    assert [[c.strip() for c in row][:6] for row in rows] == [
        ["champion", "lr-amount", "500", "1", "0.3333", "1"],
        ["challenger", "-", "500", "1", "0.3333", "0"],
    ]
    assert "123.45 978" in rows[0][6]
    assert lines[1].startswith("both alert 0, champion only 1, challenger only 1, neither 1")
    assert lines[1].endswith(f"only the champion: {fraud}")
    wrong = analyst(*args, "-o", "yaml")
    assert wrong.exit_code == 2 and "must be one of auto, table, json" in wrong.output
