"""``authhost-sim traffic``: generate labelled traffic to a file (and replay it over TCP)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import typer
from rich.console import Console

from authhost.out_files import out_file_problem
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
    bin_attack: float = typer.Option(
        ScenarioRates().bin_attack,
        help="BIN attacks a day: unknown card numbers tried at one web shop (answered 14).",
    ),
    money_mule: float = typer.Option(
        ScenarioRates().money_mule,
        help="Share of cards used as money mules: paid by transfer, emptied at ATMs.",
    ),
    transfers_in: float = typer.Option(
        ScenarioRates().transfers_in,
        help="Genuine transfers to the card, as a share of everyday transactions (0.01: about "
        "one a card a quarter).",
    ),
    wallets: float = typer.Option(
        ScenarioRates().wallets,
        help="Share of cards (genuine) paid with a phone wallet token: most of their taps, some "
        "in-app payments.",
    ),
    wallet_fraud: float = typer.Option(
        ScenarioRates().wallet_fraud,
        help="Share of cards whose stolen number a fraudster puts in a phone wallet and spends "
        "within hours.",
    ),
    currency: str = typer.Option(
        "978", help="The cards' currency, ISO 4217 numeric (392 yen, 048 Bahraini dinars)."
    ),
    per_euro: float = typer.Option(
        1.0, help="With --currency: its units to a euro (160 for yen), to convert amounts."
    ),
    fmt: str | None = typer.Option(None, "--format", help=f"One of {', '.join(FORMATS)}."),
) -> None:
    """Generate labelled traffic in the journal export format (+ label, scenario).

    Everyday spending of a card population, with genuine travel and fraud scenarios (card
    testing, compromised merchant, stolen card, account takeover, money mules, wallet fraud)
    at the given shares of cards.
    """
    try:
        rates = ScenarioRates(card_testing, compromised_merchant, stolen_card, account_takeover,
                              travel, bin_attack, money_mule, transfers_in, wallets,
                              wallet_fraud)  # fmt: skip
        config = TrafficConfig(cards=cards, days=days, seed=seed, start=start, rates=rates,
                               currency=currency, per_euro=per_euro)  # fmt: skip
    except ValueError as error:
        raise _fail(str(error)) from None
    fmt_name = (fmt or out.suffix.lstrip(".")).lower()
    if fmt_name not in FORMATS:
        raise _fail(f"output format must be one of {', '.join(FORMATS)}: use --format or a "
                    f".csv/.parquet file name")  # fmt: skip
    if problem := out_file_problem(out, example=f"traffic.{fmt_name}"):
        raise _fail(problem)  # before minutes of generating, not pyarrow's words after them
    generated, seconds = timed_generate(config)
    try:
        generated.write(out, fmt_name)
    except OSError as error:  # pyarrow's strerror is a paragraph: the OS's words for errno
        said = os.strerror(error.errno) if error.errno else error
        raise _fail(f"cannot write {out}: {said}") from None
    summary = generated.summary()
    summary["seconds"] = round(seconds, 2)
    summary["out"] = str(out)
    console.print(f"wrote {len(generated):,} rows to {out} in {seconds:.1f} s")
    typer.echo(json.dumps(summary, indent=2))


def replay(
    traffic_file: Path = typer.Argument(..., help="Traffic file from authhost-sim traffic."),
    cards: Path = typer.Option(..., help="Demo card file (authhost demo --export FILE)."),
    rate: float = typer.Option(100.0, help="Requests per second (open loop)."),
    limit: int | None = typer.Option(2000, help="Replay only the first N rows (0: all)."),
    bins: str = typer.Option("", help="Only demo cards whose PAN starts with these (commas)."),
    connections: int = typer.Option(4, help="TCP connections."),
    pin_keying: str = typer.Option("zpk", help="zpk or dukpt (KSN in field 53)."),
    host: str = typer.Option("127.0.0.1", help="Host address."),
    port: int = typer.Option(8583, help="Host port."),
    dialect: str = typer.Option("ascii-binary-bitmap", help="ISO 8583 dialect."),
    framing: str = typer.Option("binary2", help="binary2 or ascii4."),
    timeout: float = typer.Option(5.0, help="Seconds to wait for the last answers."),
) -> None:
    """Replay a traffic file over TCP against demo cards, in order, at a given rate.

    Prints the response code mix and, per scenario, how many rows the host declined.
    """
    import trio

    from simulator.chip_counters import ChipCounters
    from simulator.client import ClientError, Link
    from simulator.demo_cards import DemoFileError, load_demo_file
    from simulator.replay import read_rows
    from simulator.replay import replay as run_replay

    if not 0 < rate < math.inf or connections < 1:  # NaN fails the first
        raise _fail("--rate must be a positive number and --connections at least 1")
    if limit is not None and limit < 0:
        raise _fail("--limit is a number of rows (0: all)")
    if pin_keying not in ("zpk", "dukpt"):
        raise _fail("--pin-keying is zpk or dukpt")
    prefixes = tuple(b.strip() for b in bins.split(",") if b.strip())
    try:
        link = Link(host, port, dialect, framing, False, timeout)
        link.make_dialect(), link.make_framing()
        demo = load_demo_file(cards)
        rows = read_rows(traffic_file, limit or None)
        console.print(f"replaying {len(rows):,} rows at {rate:g}/s to {host}:{port}")
        result = trio.run(
            lambda: run_replay(
                link,
                demo,
                rows,
                rate=rate,
                connections=connections,
                bins=prefixes,
                pin_keying=pin_keying,
                counters=ChipCounters(Path(f"{cards}.atc"), save_each=False),
            )  # fmt: skip
        )
    except (ValueError, DemoFileError) as error:
        raise _fail(str(error)) from None
    except ClientError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result.summary(rows), indent=2))
    if rows and not any(result.codes):
        console.print("[red]error:[/red] no request was answered")
        raise typer.Exit(1)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)  # one line, however wide
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("traffic")(traffic)
    app.command("replay")(replay)
