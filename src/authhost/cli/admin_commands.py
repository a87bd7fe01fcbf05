"""Card management commands: products, accounts, cards, pin, journal, audit, lists, disputes,
demo. Each area is its own module; this one registers them (and holds ``demo``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from authhost.admin.service import CardService
from authhost.cli import card_batch_commands  # noqa: F401 - registers its commands on cards
from authhost.cli.account_commands import accounts, products
from authhost.cli.admin_support import (
    ConfigOpt,
    StoreOpt,
    _config,
    _run,
    _say,
)
from authhost.cli.audit_commands import audit, lists
from authhost.cli.card_commands import cards
from authhost.cli.dispute_commands import disputes
from authhost.cli.journal_commands import journal, models_compare, models_drift
from authhost.cli.model_commands import models_app
from authhost.cli.pin_commands import pin


def demo(
    export: Annotated[
        Path | None, typer.Option("--export", help="write the demo cards and test keys here")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create demo products, accounts and cards (idempotent) on a demo installation.

    Runs the security module in demo mode (generated test keys). --export writes the cards
    with clear PANs, PINs and test keys for test tools: demo installations only.
    """
    from authhost.admin.demo import ensure_demo, export_demo, off_script_notes

    async def work(service: CardService) -> list[dict[str, Any]]:
        cards = await ensure_demo(service)
        if export is not None:
            await export_demo(service, export)
        return cards

    cards = _run(_config(config, store, demo=True), work, show=False, creates=True)
    for card in cards:
        typer.echo(f"{card['card_id']}  {card['pan']}  {card['state']:<9}  {card['account_id']}")
    for note in off_script_notes(cards):
        _say(note)
    if export is not None:
        _say(f"wrote the demo cards and test keys to {export} (test use only)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(products, name="products")
    app.add_typer(accounts, name="accounts")
    app.add_typer(cards, name="cards")
    app.add_typer(pin, name="pin")
    app.add_typer(journal, name="journal")
    models_app.command("compare")(models_compare)  # the models group reads the journal here
    models_app.command("drift")(models_drift)
    app.add_typer(audit, name="audit")
    app.add_typer(lists, name="lists")
    app.add_typer(disputes, name="disputes")
    app.command("demo")(demo)
