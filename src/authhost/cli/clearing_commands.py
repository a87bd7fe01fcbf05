"""``authhost clearing import FILE``: post the acquirers' presentments against the holds their
authorisations left (``admin.clearing``), through the server's own pipeline and store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import trio
import typer

from authhost.admin.clearing import ClearingFileError, read_presentments
from authhost.admin.errors import ServiceError
from authhost.admin.service import CardService
from authhost.cli.admin_support import (
    ConfigOpt,
    StoreOpt,
    _config,
    _say,
    actor_name,
    require_store,
)
from authhost.security.errors import SecurityError
from authhost.store.interface import StoreError

clearing_app = typer.Typer(help="Clearing: the presentments that settle authorisations.")


@clearing_app.command("import")
def clearing_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="clearing CSV: "
            + ", ".join(("pan", "approval_code", "amount_minor", "currency", "presented_at", "arn"))
        ),
    ],
    dry_run: Annotated[bool, typer.Option(help="match every presentment, post nothing")] = False,
    dispute_duplicates: Annotated[
        bool,
        typer.Option(
            help="open a dispute (reason duplicate, no credit) on each suspected duplicate "
            "presentment posted; flagged and counted either way"
        ),
    ] = True,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Post each presentment: matched to its authorisation by card and approval code (the hold
    released, the presented amount posted), or forced when none is found. The whole file is
    read and checked first; importing it again posts nothing twice. A suspected duplicate
    presentment (the same purchase under another ARN, README "Clearing") is posted, flagged
    and disputed. One import posts at a time (a second exits 1 saying since when the running
    one runs); a dry run runs beside it."""
    settings = _config(config, store)
    try:
        presentments = read_presentments(file)
    except ClearingFileError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    require_store(settings)

    async def main() -> dict[str, Any]:
        from authhost.runtime import open_runtime

        async with open_runtime(settings, serving=False) as runtime:
            service = CardService(
                runtime.store, runtime.security, actor_name(),
                decide_many=runtime.handler.decide_many,
                dispute_limits=settings.admin.dispute_limits,
            )  # fmt: skip
            # posted, disputed and audited as the admin API's import is
            return await service.post_clearing(
                presentments, dry_run=dry_run, dispute_duplicates=dispute_duplicates
            )

    try:
        result = trio.run(main)
    except ServiceError as exc:  # another import is running (409 over the API): nothing posted
        _say(f"error: {exc.message}")
        raise typer.Exit(1) from None
    except (OSError, ValueError, StoreError, SecurityError) as exc:  # SecurityError: the
        _say(f"error: {exc}")  # master key missing, the key store not the store's: a traceback
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"dry_run": dry_run, **result}, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(clearing_app, name="clearing")
