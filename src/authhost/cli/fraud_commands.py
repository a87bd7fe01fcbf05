"""CLI of fraud investigations over the journal: ``authhost fraud common-points``."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.console import Console

from authhost.admin.service import CardService
from authhost.cli.admin_support import (
    ConfigOpt,
    DayOpt,
    OffsetOpt,
    SinceOpt,
    StoreOpt,
    UntilOpt,
    _config,
    _run,
)
from authhost.cli.tables import TABLES, OutputOpt, TableSpec, render, show, wants_table

fraud_app = typer.Typer(
    help="Fraud investigations: where the cards that turned up with fraud had been.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``fraud`` to the root app."""
    app.add_typer(fraud_app, name="fraud")


@fraud_app.command("common-points")
def common_points(
    day: DayOpt = "",
    since: SinceOpt = 0.0,
    until: UntilOpt = 0.0,
    lookback_days: Annotated[
        int, typer.Option(min=1, max=365, help="days before each card's first fraud to look at")
    ] = 60,
    min_cards: Annotated[
        int, typer.Option(min=1, max=1000, help="fraud cards a merchant needs to be listed")
    ] = 2,
    by: Annotated[str, typer.Option(help="merchant (field 42) or terminal (fields 42 and 41)")] = (
        "merchant"
    ),
    limit: Annotated[int, typer.Option(min=1, max=1000, help="rows to show")] = 20,
    offset: OffsetOpt = 0,
    output: OutputOpt = "auto",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Common point of purchase: the merchants where the cards whose first fraud fell in the
    period (a day, or --since/--until) had an approved purchase in the --lookback-days before
    it, most fraud cards first, then the highest lift (their share among the merchant's cards
    over the share among all cards: 1.0 is a supermarket everyone visits). Then the cards that
    visited the top ones with no fraud reported yet, masked: the ones to watch or reissue
    (authhost cards compromised --card-ids acts on them; this changes nothing). Reads the
    journal of the period and its lookback."""

    async def report(service: CardService) -> dict[str, Any]:
        return await service.common_points(
            day=day, since=since, until=until, lookback_days=lookback_days,
            min_cards=min_cards, by=by, limit=limit, offset=offset,
        )  # fmt: skip

    result = _run(_config(config, store), report, show=False, output=output)
    if not wants_table(output):
        show(result, None, output)
        return
    width = None if sys.stdout.isatty() else 400
    console = Console(soft_wrap=False, width=width)
    table = render(result, _spec("common_points", result["by"]))
    table.caption = (
        f"{result['fraud_cards']} fraud card(s) in the period, {result['cards_with_visits']} "
        f"card(s) with visits, base rate {_rate(result['base_rate'])}; "
        f"{result['entries_read']} journal entries read"
    )
    console.print(table)
    if result["next_offset"] is not None:  # the rows beyond this page
        typer.echo(
            f"rows {offset + 1}-{result['next_offset']} of {result['points_total']}; "
            f"next page: --offset {result['next_offset']}"
        )
    if result["at_risk"]:
        console.print(render(result, _spec("at_risk", result["by"])))
    if result["hint"]:
        typer.echo(result["hint"])


def _spec(name: str, by: str) -> TableSpec:
    """The table, without its terminal column when ranked by merchant (always empty)."""
    spec = TABLES[name]
    if by == "terminal":
        return spec
    return replace(spec, columns=tuple(c for c in spec.columns if c.header != "terminal"))


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.4f}"
