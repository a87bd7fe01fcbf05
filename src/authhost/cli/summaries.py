"""One-line command summaries for typer's command lists."""

from __future__ import annotations

import inspect

import typer


def one_line_summaries(typer_app: typer.Typer) -> None:
    """Give every command without a ``short_help`` the first paragraph of its help on one
    line. Typer's rich help keeps the docstring's line breaks in a group's command list, so a
    summary wrapped at the source's width showed as ragged lines cut mid-sentence (the
    command's own ``--help`` rewraps it)."""
    for command in typer_app.registered_commands:
        text = command.help or (command.callback.__doc__ if command.callback else None) or ""
        if command.short_help is None and text:
            command.short_help = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            one_line_summaries(group.typer_instance)
