"""``authhost-sim terminal``: an interactive POS or ATM terminal in the terminal window.

Pick a demo card, choose what to do, key the amount and the PIN: the terminal reads the card
(track 2 with its iCVV), encrypts the PIN block under the zone PIN key or a DUKPT key (KSN in
field 53), sends the request and shows the outcome. Works on piped input too, so a script can
drive it: one answer per line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio
import typer
from rich.console import Console
from rich.table import Table

from authhost.admin.totals import major_text
from simulator.builder import Entry, Kind, RequestBuilder, Terminal
from simulator.chip_counters import ChipCounters
from simulator.client import ClientError, IsoClient, Link
from simulator.demo_cards import DemoFile, load_demo_file
from simulator.display import message_table, outcome
from simulator.send_command import (
    DialectOpt,
    FramingOpt,
    HostOpt,
    PinKeyingOpt,
    PortOpt,
    TimeoutOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    TpduOpt,
    fail,
    minor_units,
)

console = Console()
ACTIONS = {
    "pos": {"1": ("purchase", Kind.PURCHASE), "2": ("refund", Kind.REFUND)},
    "atm": {"1": ("cash withdrawal", Kind.CASH), "2": ("balance inquiry", Kind.BALANCE)},
}
QUIT = ("q", "quit", "exit")


class Quit(Exception):
    """The person asked to leave, or the input ended."""


def ask(prompt: str, default: str | None = None, hide: bool = False) -> str:
    """One answer; PINs are not echoed at a real terminal (piped input has none to hide)."""
    hide = hide and sys.stdin.isatty()
    try:
        answer = typer.prompt(prompt, default=default, hide_input=hide, show_default=not hide)
    except (EOFError, typer.Abort):
        raise Quit from None
    answer = str(answer).strip()
    if answer.lower() in QUIT:
        raise Quit
    return answer


def card_table(demo: DemoFile) -> Table:
    table = Table(title="demo cards")
    for column in ("#", "card", "state", "account", "available"):
        table.add_column(column)
    for i, card in enumerate(demo.cards, 1):
        available = major_text(card.available, card.currency)  # a yen card's has no cents
        table.add_row(str(i), card.masked, card.state, card.account, available)
    return table


def terminal(
    cards: Path = typer.Option(..., help="Demo card file (authhost demo --export FILE)."),
    mode: str = typer.Option("pos", help="pos (purchase, refund) or atm (cash, balance)."),
    pin_keying: str = PinKeyingOpt,
    verbose: bool = typer.Option(False, help="Also show each message field by field."),
    host: str = HostOpt,
    port: int = PortOpt,
    dialect: str = DialectOpt,
    framing: str = FramingOpt,
    tpdu: bool = TpduOpt,
    timeout: float = TimeoutOpt,
    tls_ca: str = TlsCaOpt,
    tls_cert: str = TlsCertOpt,
    tls_key: str = TlsKeyOpt,
) -> None:
    """An interactive POS/ATM terminal: pick a card, enter amount and PIN, see the outcome.

    Type q at any prompt to leave.
    """
    if mode not in ACTIONS:
        raise fail("--mode is pos or atm")
    if pin_keying not in ("zpk", "dukpt"):
        raise fail("--pin-keying is zpk or dukpt")
    try:
        link = Link(host, port, dialect, framing, tpdu, timeout, tls_ca, tls_cert, tls_key)
        link.make_dialect(), link.make_framing()
        demo = load_demo_file(cards)
    except ValueError as error:  # DemoFileError included
        raise fail(str(error)) from None
    kind = "ATM" if mode == "atm" else "POS"
    terminal_info = Terminal(
        terminal_id="SIMATM01" if mode == "atm" else "SIMPOS01",
        mcc="6011" if mode == "atm" else "5411",
        pin_keying=pin_keying,
    )
    builder = RequestBuilder(
        terminal_info,
        zpk=demo.zpk,
        bdk=demo.bdk,
        imk_ac=demo.imk_ac,
        counters=ChipCounters(Path(f"{cards}.atc")),  # the cards' ATCs, kept between runs
    )
    keying = "DUKPT" if pin_keying == "dukpt" else "the ZPK"
    console.print(f"[bold]authhost-sim {kind} terminal[/bold] on {host}:{port} "
                  f"(PIN under {keying}); q to quit")  # fmt: skip
    try:
        trio.run(_session, link, demo, builder, mode, verbose)
    except ClientError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None


async def _session(
    link: Link, demo: DemoFile, builder: RequestBuilder, mode: str, verbose: bool
) -> None:
    async with await IsoClient.connect(link) as client:
        console.print(card_table(demo))
        while True:
            try:
                fields = _next_request(demo, builder, mode)
            except Quit:
                console.print("bye")
                return
            if fields is None:
                continue
            if verbose:
                console.print(message_table(f"request {fields['t']}", fields, client.dialect))
            answer = await client.exchange(fields)
            if verbose:
                console.print(message_table(f"answer {answer.get('t')}", answer, client.dialect))
            code = answer.get("39", "")
            colour = "green" if code in ("00", "10") else "red"
            console.print(f"[bold {colour}]{outcome(answer)}[/]", highlight=False)


def _next_request(demo: DemoFile, builder: RequestBuilder, mode: str):
    choice = ask("card #", "1")
    if not (choice.isdigit() and 1 <= int(choice) <= len(demo.cards)):
        console.print(f"pick a card from 1 to {len(demo.cards)}")
        return None
    card = demo.cards[int(choice) - 1]
    actions = ACTIONS[mode]
    menu = ", ".join(f"{key} {name}" for key, (name, _) in actions.items())
    action = ask(f"{menu}", "1")
    if action not in actions:
        console.print(f"choose one of {', '.join(actions)}")
        return None
    kind = actions[action][1]
    minor = 0
    if kind is not Kind.BALANCE:
        text = ask("amount", "10.00")
        try:
            minor = minor_units(float(text), "the amount", card.currency)
        except ValueError:
            minor = -1
        if minor <= 0:  # in the card's decimals: "like 12.50" misled at a yen card
            like = major_text(1250, card.currency)
            console.print(f"the amount is a positive number of up to 12 digits, like {like}")
            return None
    needs_pin = mode == "atm" or kind is Kind.PURCHASE
    pin = ask("PIN (empty: none)", "", hide=True) if needs_pin else ""
    if pin and not (pin.isdigit() and 4 <= len(pin) <= 12):
        console.print("a PIN is 4 to 12 digits")
        return None
    entry = Entry.CHIP
    return builder.financial(kind, card, minor, entry=entry, pin=pin or None)


def register(app: typer.Typer) -> None:
    app.command("terminal")(terminal)
