"""``authhost pin``: set or reset a PIN from an encrypted PIN block, PIN mailers, unlock."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.cli.admin_support import (
    ConfigOpt,
    StoreOpt,
    _check_named_or_all,
    _config,
    _named_or_created,
    _run,
    _say,
    _validated,
)

pin = typer.Typer(help="PIN set/reset (from an encrypted PIN block), generate, and unlock.")


@pin.command("set")
def pin_set(
    card_id: str,
    pin_block: Annotated[str, typer.Option(help="encrypted PIN block, hex (16 or 32 digits)")],
    ksn: Annotated[str | None, typer.Option(help="DUKPT KSN when the block is DUKPT")] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set or reset a PIN; only its PVV / IBM 3624 offset is stored."""
    request = _validated(rq.PinChange, {"pin_block": pin_block, "ksn": ksn})
    _run(_config(config, store), lambda s: s.set_pin(card_id, request))


@pin.command("generate")
def pin_generate(
    out: Annotated[Path, typer.Option("--out", help="new file for the PIN mailer printer")],
    card_ids: Annotated[list[str] | None, typer.Argument(help="cards to give a new PIN")] = None,
    all_created: Annotated[
        bool, typer.Option(help="every card at created without a PIN (new plastics)")
    ] = False,
    length: Annotated[int, typer.Option(help="digits (IBM 3624 cards; a PVV holds 4)")] = 4,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Random PINs for cards, out only as PIN blocks under the PIN mailer printer's key.

    The cards keep the PVV or offset; the file (mode 0600, never overwritten) holds one line
    per card: PAN, cardholder, PIN block, key name and check value. Audited per card.
    """
    _check_named_or_all(card_ids, all_created)
    if not 4 <= length <= 12:
        _say("error: --length is 4 to 12 digits")
        raise typer.Exit(2)

    async def generate(service: CardService) -> int:
        ids = await _named_or_created(service, card_ids, all_created, without_pin=True)
        return await service.generate_pins(ids, out, length)

    count = _run(_config(config, store), generate, show=False)
    _say(f"wrote {count} PIN mailer record(s) to {out} (mode 0600)")


@pin.command("unlock")
def pin_unlock(card_id: str, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Reset the wrong-PIN counter of a locked card (response 75)."""
    _run(_config(config, store), lambda s: s.unlock_pin(card_id))
