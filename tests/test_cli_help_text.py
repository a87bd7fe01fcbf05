"""Every help page shows the configuration sections it names: typer renders help with rich,
which read ``[store]`` in "default: [store] url" as markup and dropped it (83 pages showed
"default:  url of the configuration"). Walks every command of both CLIs."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from authhost.cli.app import app as authhost_app
from simulator.cli import app as simulator_app

SECTION = re.compile(r"\[[a-z_]+\]")


def _pages(app: typer.Typer):
    """(command path, the section names its help texts mention) for every command."""

    def walk(command, path):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        yield path, {name for text in texts for name in SECTION.findall(text)}
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("app", [authhost_app, simulator_app], ids=["authhost", "authhost-sim"])
def test_help_pages_show_the_sections_they_name(app: typer.Typer) -> None:
    runner = CliRunner()
    pages = [(path, names) for path, names in _pages(app) if names]
    missing = []
    for path, names in pages:
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "300"}).output
        missing += [(" ".join(path), name) for name in names if name not in shown]
    assert not missing, missing
    if app is authhost_app:
        assert len(pages) > 50  # the walk reached the commands sharing the --store option


@pytest.mark.parametrize("app", [authhost_app, simulator_app], ids=["authhost", "authhost-sim"])
def test_every_option_says_what_it_does(app: typer.Typer) -> None:
    """``journal reviews --help`` listed --limit and --after-id with no word of what they
    are (nor fraud-reports', acceptors' or keys components' --components)."""
    bare = []

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        for param in getattr(command, "params", []):
            option = param.param_type_name == "option" and param.name != "help"
            if option and not (param.help or "").strip():
                bare.append(f"{' '.join(path)} {param.opts[0]}")

    walk(typer.main.get_command(app), [])
    assert not bare, bare


def test_the_compromise_alert_help_names_every_action() -> None:
    """``cards compromised --help`` said the cards are "watched ... or suspended": its
    --action takes reissue too."""
    shown = CliRunner().invoke(authhost_app, ["cards", "compromised", "--help"]).output
    summary = " ".join(shown.split("Arguments")[0].split())
    assert "watched" in summary and "suspended" in summary and "reissued" in summary


def test_the_group_summaries_name_what_their_commands_do() -> None:
    """``authhost --help`` said rules were "check, list, variables, reload" (not rules
    performance), models "... roll back" (not models compare) and store "The SQLite store's
    file", while store finish works on Redis too."""
    groups = typer.main.get_command(authhost_app).commands  # type: ignore[attr-defined]
    assert "performance" in groups["rules"].help
    assert "compare" in groups["models"].help
    assert "either store" in groups["store"].help


@pytest.mark.parametrize("app", [authhost_app, simulator_app], ids=["authhost", "authhost-sim"])
def test_command_lists_show_each_summary_unbroken(app: typer.Typer) -> None:
    """A group's list of commands showed a docstring's summary with the source's line breaks
    (``rules --help``: "... from the journal: matches," then "approved, declined ..." on the
    next line, cut mid-sentence). On a wide terminal every summary is one line."""
    runner = CliRunner()
    broken = []
    checked = 0

    def walk(command, path):
        nonlocal checked
        subs = getattr(command, "commands", {})
        if not subs:
            return
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).output
        for name, sub in subs.items():
            summary = " ".join((sub.help or "").split("\n\n")[0].split())
            if summary and len(summary) < 300:
                checked += 1
                if summary not in shown:
                    broken.append(" ".join([*path, name]))
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    assert checked > (60 if app is authhost_app else 5)
    assert not broken, broken
