"""CLI of the fraud rules: ``authhost rules check|list|reload|performance`` and ``authhost
backtest``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from authhost.admin.service import CardService
from authhost.cli.admin_support import (
    ConfigOpt,
    DayOpt,
    StoreOpt,
    UntilOpt,
    _config,
    _run,
)
from authhost.cli.output import labelled, plain_console
from authhost.cli.tables import OutputOpt
from authhost.config import ConfigError, load_config
from authhost.rules.lists import ListLoadError, load_lists
from authhost.rules.loader import load_rule_set
from authhost.rules.rulefile import RuleLoadError

rules_app = typer.Typer(
    help="Analysts' fraud rules: check, list, variables, reload, performance in production.",
    no_args_is_help=True,
)

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="configuration file (default: $AUTHHOST_CONFIG, else authhost.toml if present)",
)


def _fail(message: str) -> typer.Exit:
    plain_console(stderr=True).print(labelled("error:", "red", message))
    return typer.Exit(1)


def _rules_file(file: Path | None, config_path: Path | None) -> Path:
    if file is not None:
        return file
    try:
        configured = load_config(config_path).rules.file
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not configured:
        raise _fail("no rules file given and [rules] file is not set in the configuration")
    return Path(configured)


def _load(  # noqa: ANN202 - RuleSet
    file: Path, promote_shadow: bool = False, ignore_windows: bool = False
):
    try:
        return load_rule_set(file, promote_shadow=promote_shadow, ignore_windows=ignore_windows)
    except RuleLoadError as exc:
        errors = plain_console(stderr=True)
        for error in exc.errors:
            errors.print(str(error), style="red")
        raise typer.Exit(1) from None


@rules_app.command("check")
def check(
    file: Path = typer.Argument(..., help="rules file (TOML or YAML)"),
    lists_dir: Path | None = typer.Option(None, help="lists directory to check list names"),
    show_code: bool = typer.Option(False, help="print the generated Python function"),
) -> None:
    """Validate a rules file; print every error with its line, exit 1 if any."""
    rules = _load(file)
    console = plain_console()
    shadow = sum(1 for r in rules.rules if r.shadow)
    console.print(
        f"OK {file}: {len(rules.all_rules)} rules ({len(rules.rules)} enabled, {shadow} shadow), "
        f"version {rules.version}"
    )
    if not rules.all_rules:
        console.print(
            labelled(
                "warning:",
                "yellow",
                "no rules: a server started with it runs without fraud rules, and one with "
                "rules in force refuses it on reload (turn rules off with enabled = false)",
            )
        )
    now = time.time()
    for rule in rules.rules:
        state = rule.window_state(now)
        if state == "ended":
            console.print(
                labelled(
                    "warning:",
                    "yellow",
                    f"rule {rule.name!r} (line {rule.line}) ended: {rule.window_text()}; it "
                    "no longer runs, remove it",
                )
            )
        elif state == "scheduled":
            console.print(f"rule {rule.name!r} is scheduled: {rule.window_text()}")
    if rules.lists:
        console.print(f"lists read: {', '.join(sorted(rules.lists))}")
    if lists_dir is not None:
        try:
            known = load_lists(lists_dir)
        except ListLoadError as exc:
            raise _fail(str(exc)) from None
        missing = sorted(rules.lists - set(known))
        if missing:
            console.print(
                labelled(
                    "warning:",
                    "yellow",
                    f"not in {lists_dir} (empty unless the store has them): " + ", ".join(missing),
                )
            )
    if show_code:
        console.print(rules.code)


@rules_app.command("list")
def list_rules(
    file: Path | None = typer.Argument(None, help="rules file; default: \\[rules] file"),
    config: Path | None = ConfigOption,
) -> None:
    """Show the rules of a file in the order they run."""
    rules = _load(_rules_file(file, config))
    console = plain_console()
    now = time.time()
    console.print(f"{rules.source} (version {rules.version})")
    for i, rule in enumerate(rules.all_rules, start=1):
        action = rule.action.value
        if rule.response_code:
            action += f" {rule.response_code}"
        elif rule.points:
            action += f" {rule.points:+d}"
        state = "" if rule.enabled else ", DISABLED"
        if rule.windowed:
            window = rule.window_state(now)
            state += f", {rule.window_text()}" + (
                "" if window == "active" else f" ({window.upper()})"
            )
        console.print(
            Text.assemble(
                f"{i:3d}. ",
                (rule.name, "bold"),
                f"  [{action}, {rule.mode.value}{state}, priority {rule.priority}, "
                f"reason {rule.reason}, owner {rule.owner or '-'}, line {rule.line}]",
            )
        )
        console.print("     " + " ".join(rule.expression.split()))


@rules_app.command("variables")
def variables(
    markdown: bool = typer.Option(False, "--markdown", help="print a Markdown table"),
) -> None:
    """Every variable a rule can read, with its type and meaning."""
    from authhost.rules.variables import VARIABLES

    console = plain_console()
    if markdown:
        console.print("| variable | type | meaning |\n| --- | --- | --- |")
    for var in VARIABLES.values():
        kind = var.kind.value + (", may be missing" if var.nullable else "")
        if var.code_width:
            kind += f", {var.code_width}-digit code"
        if markdown:
            console.print(f"| `{var.name}` | {kind} | {var.doc} |")
        else:
            console.print(f"{var.name:32} {kind:34} {var.doc}")


@rules_app.command("reload")
def reload(config: Path | None = ConfigOption) -> None:
    """Check the configured rules file, then ask the running server to reload it (SIGHUP)."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if cfg.rules.file:
        try:  # refuse before signalling: the server would refuse too
            _load(Path(cfg.rules.file))
        except typer.Exit:  # it printed the file's errors only, and left the reader wondering
            plain_console(stderr=True).print(
                f"no reload requested: the server keeps the rules it has; fix "
                f"{cfg.rules.file} (authhost rules check) and run authhost rules reload again"
            )
            raise
    pid_file = Path(cfg.server.pid_file)
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        raise _fail(f"{pid_file}: no pid file; is authhost serve running?") from None
    except (OSError, ValueError):
        raise _fail(f"{pid_file}: does not hold a process id") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise _fail(f"no process {pid} (stale {pid_file})") from None
    except PermissionError:
        raise _fail(f"not allowed to signal process {pid}") from None
    if cfg.rules.file:  # a server started without one logs that it takes none: restart it
        said = (
            "the server log shows the new version (or, for a server started without a rules "
            "file, that it takes none until restarted)"
        )
    else:  # the server started without rules: SIGHUP adds none, and there is no version
        said = (
            "no rules file is configured ([rules] file, or AUTHHOST_RULES_FILE), so the server "
            "runs without fraud rules and this reload adds none: set one and restart "
            "authhost serve (models and keys are re-read)"
        )
    plain_console().print(f"reload requested from process {pid}; {said}")


def backtest(
    rules: Path = typer.Option(..., "--rules", help="rules file to test"),
    data: Path = typer.Option(..., "--data", help="labelled journal export (.csv or .parquet)"),
    compare: Path | None = typer.Option(None, "--compare", help="second rules file, side by side"),
    report_dir: Path | None = typer.Option(None, "--report-dir", help="write JSON and PNG here"),
    lists_dir: Path | None = typer.Option(None, "--lists-dir", help="named lists directory"),
    promote_shadow: bool = typer.Option(
        False, "--promote-shadow", help="count shadow rules as enforced (what if turned on)"
    ),
    ignore_windows: bool = typer.Option(
        False,
        "--ignore-windows",
        help="run temporary rules (active_from/active_until) on every row, whatever its time",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Replay labelled transactions through rule files and report what they would catch.
    A temporary rule runs only on the rows within its window, as it would have online
    (--ignore-windows: on every row)."""
    from authhost.rules.backtest import run_backtest
    from authhost.rules.dataset import DatasetError, iter_rows, read_labelled
    from authhost.rules.report import print_report, write_json, write_plots

    sets = [_load(rules, promote_shadow, ignore_windows)]
    if compare is not None:
        sets.append(_load(compare, promote_shadow, ignore_windows))
    windowed = [r for rule_set in sets for r in rule_set.rules if r.windowed]
    if windowed and not ignore_windows:  # a rule scheduled from tomorrow matches no old row
        plain_console(stderr=True).print(
            "note: temporary rules run only on the rows within their window, as online "
            "(--ignore-windows runs them on every row): "
            + "; ".join(f"{r.name} {r.window_text()}" for r in windowed)
        )
    if report_dir is not None:  # before the replay: a path that cannot hold the report
        try:  # (a file, no permission) is said now, not as a traceback after the replay
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "not a directory" if report_dir.exists() else exc.strerror or str(exc)
            raise _fail(f"--report-dir {report_dir}: {why}") from None
    try:
        lists = load_lists(lists_dir) if lists_dir else {}
        table = read_labelled(data)
    except (ListLoadError, DatasetError) as exc:
        raise _fail(str(exc)) from None
    if table.num_rows == 0:  # a report of zeros would read as "the rules caught nothing"
        raise _fail(f"{data}: no rows: nothing to replay (a header only?)")
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=plain_console(stderr=True),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=table.num_rows)
        result = run_backtest(
            iter_rows(table),
            sets,
            lists,
            data_name=str(data),
            progress=lambda n: bar.advance(task, n),
        )
    console = plain_console()
    print_report(result, console)
    if report_dir is not None:
        try:
            written = [
                write_json(result, report_dir / "backtest.json"),
                *write_plots(result, report_dir),
            ]
        except OSError as exc:
            raise _fail(f"{exc.filename or report_dir}: {exc.strerror or exc}") from None
        for path in written:
            console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add ``rules`` (check, list, reload) and ``backtest`` to the root app."""
    app.add_typer(rules_app, name="rules")
    app.command("backtest")(backtest)


@rules_app.command("performance")
def performance(
    day: DayOpt = "",
    since: Annotated[
        float, typer.Option(help="or from this time, epoch seconds (to now unless --until)")
    ] = 0.0,
    until: UntilOpt = 0.0,
    rules: Annotated[
        Path | None,
        typer.Option(help="the rules file that names actions (default: \\[rules] file)"),
    ] = None,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What each rule did in production over a day or period, from the journal: matches,
    approved, declined (by the rule itself), let through by a cardholder's pass, reviewed, and
    the fraud reports on its matches: fraud, genuine ("it was me"), declined genuine (by it or
    anything else) and of those its own declines (the customers the rule turned away),
    precision. Most of its own declined genuine first."""
    settings = _config(config, store)

    async def report(service: CardService) -> dict:
        service.rules_file = rules or settings.rules.file
        return await service.rule_performance(day=day, since=since, until=until)

    _run(settings, report, table="rule_performance", output=output)
