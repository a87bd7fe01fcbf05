"""The ``authhost`` command: one typer app; each area registers its own commands."""

from __future__ import annotations

import typer

from authhost.cli import (
    admin_commands,
    clearing_commands,
    fraud_commands,
    key_commands,
    model_commands,
    rule_commands,
    serve_command,
    store_commands,
)
from authhost.cli.summaries import one_line_summaries

app = typer.Typer(
    name="authhost",
    help="ISO 8583 issuer authorisation host with fraud detection and card management.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (
    serve_command,
    admin_commands,
    store_commands,
    key_commands,
    rule_commands,
    model_commands,
    clearing_commands,
    fraud_commands,
):
    module.register(app)


one_line_summaries(app)


def main() -> None:
    app()
