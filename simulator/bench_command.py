"""``authhost-sim bench``: the load generator on the command line (table, JSON, progress)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from simulator import mixes
from simulator.bench import run_bench
from simulator.demo_cards import DemoFileError, load_demo_file
from simulator.loadgen import LoadPlan

out = Console()
err = Console(stderr=True)


def bench(
    host: str = typer.Option("127.0.0.1", help="Server address."),
    port: int = typer.Option(8583, help="Server port."),
    mix: str = typer.Option(
        "network", help="network (0800 echo tests: the wire path) or auth (demo cards, PIN+CVV)."
    ),
    cards: Path | None = typer.Option(
        None, help="Demo card file (authhost demo --export) for --mix auth."
    ),
    bins: str = typer.Option("", help="Only cards whose PAN starts with these (comma list)."),
    amount: int = typer.Option(1, help="Amount of each authorisation, minor units."),
    pin_keying: str = typer.Option("zpk", help="zpk or dukpt (field 53 KSN)."),
    connections: int = typer.Option(8, "--connections", "-c", help="TCP connections."),
    rate: float | None = typer.Option(
        None, help="Open loop: requests/s offered. Without it: closed loop."
    ),
    concurrency: int = typer.Option(64, help="Closed loop: requests in flight in total."),
    count: int | None = typer.Option(20_000, help="Stop after this many requests (0: no bound)."),
    duration: float | None = typer.Option(10.0, help="Stop after this many seconds (0: none)."),
    timeout: float = typer.Option(2.0, help="Seconds before an unanswered request times out."),
    processes: int = typer.Option(1, help="Load processes (when one cannot saturate)."),
    dialect: str = typer.Option("ascii-binary-bitmap", help="ISO 8583 dialect."),
    framing: str = typer.Option("binary2", help="Length header: binary2 or ascii4."),
    tpdu: bool = typer.Option(False, help="Frames carry a 5-byte TPDU."),
    label: str = typer.Option("", help="Name of this run in the report."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON here."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Load a server with ISO 8583 requests: throughput, latency, response codes, timeouts.

    Open loop with --rate (latency from the scheduled send time), else closed loop with
    --concurrency requests in flight. Stops at --count requests or --duration seconds.
    Latency percentiles come from an HDR histogram.
    """
    try:
        if json_out is not None and not json_out.parent.is_dir():
            raise ValueError(f"--json: no directory {json_out.parent} to write the report in")
        plan = LoadPlan(
            host=host,
            port=port,
            connections=connections,
            rate=rate,
            concurrency=concurrency,
            count=count or None,
            duration=duration or None,
            timeout=timeout,
            dialect=dialect,
            framing=framing,
            tpdu=tpdu,
        )
        fields = _mix(mix, cards, bins, amount, pin_keying)
    except (ValueError, DemoFileError) as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    total = count or None
    progress = Progress(
        TextColumn(f"[bold]{label or mix}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
    )
    with progress:
        task = progress.add_task("bench", total=total)
        try:
            report = run_bench(
                plan,
                fields,
                processes=processes,
                label=label or mix,
                progress=lambda done: progress.update(task, completed=done),
            )
        except ValueError as error:
            err.print(f"[red]error:[/red] {error}")
            raise typer.Exit(2) from None
    data = report.as_dict()
    out.print(report.table())
    if json_out is not None:
        try:
            json_out.write_text(json.dumps(data, indent=2) + "\n")
        except OSError as error:
            err.print(f"[red]error:[/red] cannot write {json_out}: {error.strerror or error}")
            raise typer.Exit(2) from None
    if report.result.completed == 0:
        err.print("[red]error:[/red] no request was answered")
        raise typer.Exit(1)


def _mix(name: str, cards: Path | None, bins: str, amount: int, pin_keying: str) -> list:
    if name == "network":
        return mixes.network()
    if name != "auth":
        raise ValueError(f"unknown mix {name!r}; known: {', '.join(mixes.MIXES)}")
    if cards is None:
        raise ValueError("--mix auth needs --cards FILE (from `authhost demo --export FILE`)")
    if pin_keying not in ("zpk", "dukpt"):
        raise ValueError("--pin-keying is zpk or dukpt")
    if not 0 <= amount < 10**12:
        raise ValueError("--amount is 0 or more minor units, at most 12 digits")
    demo = load_demo_file(cards)
    prefixes = tuple(b.strip() for b in bins.split(",") if b.strip())
    return mixes.authorisations(demo, bins=prefixes, amount_minor=amount, pin_keying=pin_keying)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
