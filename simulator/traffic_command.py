"""``authhost-sim traffic``: generate labelled traffic to a file (and replay it over TCP)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from simulator.traffic import FORMATS, ScenarioRates, TrafficConfig, timed_generate

console = Console(stderr=True)


def traffic(
    out: Path = typer.Option(..., "--out", "-o", help="CSV or Parquet file (by suffix)."),
    cards: int = typer.Option(5000, help="Cards in the simulated population."),
    days: int = typer.Option(90, help="Length of the period, in days."),
    seed: int = typer.Option(7, help="Same seed, same options: same rows."),
    start: float = typer.Option(
        TrafficConfig().start, help="Start of the period, epoch seconds UTC."
    ),
    card_testing: float = typer.Option(ScenarioRates().card_testing, help="Share of cards."),
    compromised_merchant: float = typer.Option(
        ScenarioRates().compromised_merchant, help="Share of cards."
    ),
    stolen_card: float = typer.Option(ScenarioRates().stolen_card, help="Share of cards."),
    account_takeover: float = typer.Option(
        ScenarioRates().account_takeover, help="Share of cards."
    ),
    travel: float = typer.Option(ScenarioRates().travel, help="Share of cards (genuine)."),
    fmt: str | None = typer.Option(None, "--format", help=f"One of {', '.join(FORMATS)}."),
) -> None:
    """Generate labelled traffic in the journal export format (+ label, scenario).

    Everyday spending of a card population, with genuine travel and fraud scenarios (card
    testing, compromised merchant, stolen card, account takeover) at the given shares of cards.
    """
    try:
        rates = ScenarioRates(card_testing, compromised_merchant, stolen_card, account_takeover,
                              travel)  # fmt: skip
        config = TrafficConfig(cards=cards, days=days, seed=seed, start=start, rates=rates)
    except ValueError as error:
        raise _fail(str(error)) from None
    fmt_name = (fmt or out.suffix.lstrip(".")).lower()
    if fmt_name not in FORMATS:
        raise _fail(f"output format must be one of {', '.join(FORMATS)}: use --format or a "
                    f".csv/.parquet file name")  # fmt: skip
    generated, seconds = timed_generate(config)
    try:
        generated.write(out, fmt_name)
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror or error}") from None
    summary = generated.summary()
    summary["seconds"] = round(seconds, 2)
    summary["out"] = str(out)
    console.print(f"wrote {len(generated):,} rows to {out} in {seconds:.1f} s")
    typer.echo(json.dumps(summary, indent=2))


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("traffic")(traffic)
