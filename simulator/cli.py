"""The ``authhost-sim`` command: one typer app; each tool registers its own commands."""

from __future__ import annotations

import typer

from authhost.cli.summaries import one_line_summaries
from simulator import (
    bench_command,
    send_command,
    terminal_command,
    traffic_command,
    wallet_command,
)

app = typer.Typer(
    name="authhost-sim",
    help="Terminal and switch simulator, labelled traffic generator and load generator for "
    "authhost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Tools that talk to authhost the way acquirers and switches do: over ISO 8583."""


for module in (send_command, terminal_command, traffic_command, bench_command, wallet_command):
    module.register(app)
one_line_summaries(app)


def main() -> None:
    app()
