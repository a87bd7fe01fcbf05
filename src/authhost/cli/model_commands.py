"""``authhost train`` and ``authhost models list|activate|rollback``: the analyst's model commands.

Errors (bad data file, bad config, broken artifact) are printed as one line and exit with
status 2; no stack trace reaches the user.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from authhost.cli.output import plain_console
from authhost.cli.tables import OutputOpt, check_output, wants_table
from authhost.config import ConfigError, load_config

models_app = typer.Typer(
    help="Fraud model artifacts: list them, activate a champion or challenger, roll back, "
    "compare the two on live traffic, watch the inputs drift.",
    no_args_is_help=True,
)

AuthhostConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="configuration file (default: $AUTHHOST_CONFIG, else authhost.toml if present): "
    "its \\[models] dir, unless --dir",
    dir_okay=False,
)
DirOption = typer.Option(None, "--dir", help="models directory (default: \\[models] dir)")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"authhost: {message}", err=True)
    return typer.Exit(2)


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _models_dir(config_file: Path | None, directory: Path | None) -> Path:
    if directory is not None:
        return directory
    try:
        return Path(load_config(config_file).models.dir)
    except ConfigError as exc:
        raise _fail(f"configuration error: {exc}") from None


def _say_sighup(config_file: Path | None) -> None:
    """A changed registry is read by a running server at its SIGHUP only: rollback and
    clear-challenger said nothing of it, and the model rolled back from kept scoring."""
    try:
        pid_file = load_config(config_file).server.pid_file
    except ConfigError:
        pid_file = "authhost.pid"
    typer.echo(f"a running server picks this up on SIGHUP (kill -HUP $(cat {pid_file}))")


def _audit_change(config_file: Path | None, action: str, before: Any, after: Any) -> None:
    """The change of the models that decide (or shadow) every authorisation, in the store's
    audit log (``model.activate``, ``model.challenger``, ``model.rollback``,
    ``model.clear_challenger``; PCI DSS 10.2: a change of the system's decision logic): the
    registry's own change log sits in the models directory, which whoever changes the models
    can also rewrite. A SQLite store not created yet (models chosen before the first start)
    is said and skipped; a failure exits 1, saying the change was made."""
    from authhost.cli.admin_support import sqlite_file_of
    from authhost.cli.store_audit import audit_cli_action

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        typer.echo(f"authhost: {action} was done, but not audited: configuration error: {exc}",
                   err=True)  # fmt: skip
        raise typer.Exit(1) from None
    path = sqlite_file_of(config.store.url)
    if path is not None and not Path(path).exists():
        typer.echo(f"authhost: {action} not audited: no store at {path} yet", err=True)
        return
    audit_cli_action(config, action, "models", _roles(before), _roles(after))


def _roles(state: Any) -> dict[str, Any]:  # a models.registry.ActiveState
    return {"champion": state.champion, "challenger": state.challenger, "history": state.history}


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return "n/a" if value is None else str(value)


def train(
    data: Path = typer.Option(..., "--data", help="labelled journal export (CSV or Parquet)"),
    train_config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="training config (TOML): split, hyperparameters, threshold; optional, every key "
        "has a default (docs/models.md)",
    ),
    out: Path = typer.Option(Path("models"), "--out", help="directory to write artifacts into"),
    features: str | None = typer.Option(
        None,
        "--features",
        help="feature set: authhost-features-1 (the card's history, default), "
        "authhost-features-2 (+ every card's requests at the merchant and terminal), "
        "authhost-features-3 (+ the money the card received: mules), authhost-features-4 "
        "(+ the wallet token that paid and its age) or authhost-features-5 (+ the web "
        "shop's address verification)",
    ),
    output: OutputOpt = "auto",
    as_json: bool = typer.Option(False, "--json", help="the same as -o json"),
) -> None:
    """Train logistic regression and gradient-boosted models; report and export artifacts.
    The report is a table on a terminal (-o table), its report.json in a pipe (-o json)."""
    from authhost.models.dataset import DatasetError
    from authhost.models.training import TrainingError, load_train_config
    from authhost.models.training import train as run_training

    check_output(output)  # before the replay and the fits, not after
    try:
        config = load_train_config(train_config)
        if features is not None:
            config = dataclasses.replace(config, features=features)
        result = run_training(data, out, config)
    except (DatasetError, TrainingError) as exc:
        raise _fail(str(exc)) from None
    if as_json or not wants_table(output):
        typer.echo(result.report.read_text())
        return
    console = plain_console()  # scenario names and paths as written
    s = result.summary
    console.print(
        f"train {s['train']['days'][0]}..{s['train']['days'][1]}: {s['train']['rows']} rows, "
        f"{s['train']['frauds']} fraud; test {s['test']['days'][0]}..{s['test']['days'][1]}: "
        f"{s['test']['rows']} rows, {s['test']['frauds']} fraud"
    )
    data = s["data"]
    if data["excluded_before_fraud_step"]:
        steps = ", ".join(f"{step} {n}" for step, n in data["excluded_by_step"].items())
        console.print(
            f"left out: {data['excluded_before_fraud_step']} rows declined before the fraud "
            f"step ({data['excluded_frauds']} fraud; {steps}): never scored online, neither "
            f"trained nor evaluated on"
        )
    k = next(iter(result.metrics.values())).k
    table = Table(title=f"held-out test days (run {result.run_id})")
    for column in ("model", "AUC ROC", "AP", f"card P@{k}/day", "thr", "P@thr", "R@thr", "alerts"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for kind, m in result.metrics.items():
        table.add_row(
            kind,
            _fmt(m.auc_roc),
            _fmt(m.average_precision),
            _fmt(m.card_precision_at_k),
            str(m.threshold),
            _fmt(m.precision_at_threshold),
            _fmt(m.recall_at_threshold),
            str(m.alerts),
        )
    console.print(table)
    console.print(
        "AP: average precision; thr: operating threshold; P/R@thr: precision/recall at it"
    )
    first = next(iter(result.metrics.values()))
    left_out = first.excluded_frauds_by_scenario
    scenarios = sorted(
        {name for m in result.metrics.values() for name in m.recall_by_scenario} | set(left_out)
    )
    if scenarios:
        caught = Table(title=f"frauds at or above the threshold, by scenario ({s['features']})")
        caught.add_column("scenario")
        for kind in result.metrics:
            caught.add_column(kind, justify="right")
        if left_out:
            caught.add_column("declined before scoring", justify="right")
        for name in scenarios:
            cells = [m.recall_by_scenario.get(name, (0, 0)) for m in result.metrics.values()]
            extra = [str(left_out.get(name, 0))] if left_out else []
            caught.add_row(name, *(f"{hit}/{of}" for hit, of in cells), *extra)
        console.print(caught)
    for kind, path in result.artifacts.items():
        console.print(f"artifact {kind}: {path}")
    console.print(f"report: {result.report}; plots: {', '.join(str(p) for p in result.plots)}")


@models_app.command("list")
def list_models(
    config_file: Path | None = AuthhostConfigOption,
    directory: Path | None = DirOption,
    output: OutputOpt = "auto",
    as_json: bool = typer.Option(False, "--json", help="the same as -o json"),
) -> None:
    """List artifacts, marking the champion and the challenger."""
    from authhost.models.registry import Registry, RegistryError

    check_output(output)
    registry = Registry(_models_dir(config_file, directory))
    try:
        state = registry.state()
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # a name too long for a file, a --dir that is a file
        raise _fail(_os_error(exc)) from None
    items = registry.list()
    if as_json or not wants_table(output):
        typer.echo(
            json.dumps(
                {
                    "active": state.as_json(),
                    "artifacts": [
                        {
                            "name": a.name,
                            "kind": a.kind,
                            "created": a.created,
                            "threshold": a.threshold,
                            "feature_set": a.feature_set,
                            "amount_units": a.amount_units,
                            "metrics": a.metrics,
                            "error": a.error,
                        }
                        for a in items
                    ],
                },
                indent=2,
            )
        )
        return
    if not items:
        typer.echo(f"no model artifacts in {registry.root}")
        return
    table = Table(title=f"models in {registry.root}")
    table.add_column("name", no_wrap=True)  # copied into `models activate`: never cut
    for column in ("role", "kind", "set", "amounts", "created", "thr", "AP", "AUC"):
        table.add_column(column)
    with_notes = any(a.error for a in items)
    if with_notes:
        table.add_column("error")
    for a in items:
        role = (
            "champion"
            if a.name == state.champion
            else "challenger"
            if a.name == state.challenger
            else ""
        )
        cells = [
            a.name,
            role,
            a.kind,
            a.feature_set.removeprefix("authhost-features-"),
            # trained before amounts were read by currency: retrain for yen or dinar cards
            {"currency": "currency", "two_decimals": "2 decimals"}.get(a.amount_units, ""),
            a.created[:16],
            str(a.threshold),
            _fmt(a.metrics.get("average_precision"), 3),
            _fmt(a.metrics.get("auc_roc"), 3),
        ]
        table.add_row(*cells, *([a.error] if with_notes else []))
    plain_console().print(table)  # names with '[' as written, never cut


@models_app.command("activate")
def activate(
    name: str = typer.Argument(..., help="artifact name (a directory in the models dir)"),
    challenger: bool = typer.Option(
        False, "--challenger", help="score in shadow only (journalled, never used)"
    ),
    config_file: Path | None = AuthhostConfigOption,
    directory: Path | None = DirOption,
) -> None:
    """Make an artifact the champion (or the challenger); checked before it is switched."""
    from authhost.models.registry import Registry, RegistryError

    registry = Registry(_models_dir(config_file, directory))
    try:
        before = registry.state()
        state = registry.activate(name, challenger=challenger)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # a name too long for a file, a --dir that is a file
        raise _fail(_os_error(exc)) from None
    typer.echo(f"champion: {state.champion}; challenger: {state.challenger or '-'}")
    _say_sighup(config_file)
    _audit_change(config_file, "model.challenger" if challenger else "model.activate", before,
                  state)  # fmt: skip


@models_app.command("rollback")
def rollback(
    config_file: Path | None = AuthhostConfigOption,
    directory: Path | None = DirOption,
) -> None:
    """Make the previous champion the champion again."""
    from authhost.models.registry import Registry, RegistryError

    registry = Registry(_models_dir(config_file, directory))
    try:
        before = registry.state()
        state = registry.rollback()
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # a name too long for a file, a --dir that is a file
        raise _fail(_os_error(exc)) from None
    typer.echo(f"champion: {state.champion}; challenger: {state.challenger or '-'}")
    _say_sighup(config_file)
    _audit_change(config_file, "model.rollback", before, state)


@models_app.command("clear-challenger")
def clear_challenger(
    config_file: Path | None = AuthhostConfigOption,
    directory: Path | None = DirOption,
) -> None:
    """Stop shadow scoring. With no challenger nothing changes, and nothing is written or
    audited: a ``model.clear_challenger`` entry whose before and after were the same read as
    a change of the decision logic that never was."""
    from authhost.models.registry import Registry, RegistryError

    registry = Registry(_models_dir(config_file, directory))
    try:
        before = registry.state()
        if before.challenger is None and registry.root.is_dir():  # (a file: refused below)
            typer.echo(f"no challenger (champion: {before.champion or '-'}); nothing changed")
            return
        state = registry.clear_challenger()
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # a name too long for a file, a --dir that is a file
        raise _fail(_os_error(exc)) from None
    typer.echo(f"champion: {state.champion or '-'}; challenger: -")
    _say_sighup(config_file)
    _audit_change(config_file, "model.clear_challenger", before, state)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``models`` (list, activate, rollback, clear-challenger)."""
    app.command("train")(train)
    app.add_typer(models_app, name="models")
