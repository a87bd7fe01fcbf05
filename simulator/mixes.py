"""Request mixes for the load generator: lists of request field dicts to cycle through.

``network`` is 0800 echo tests: they exercise authhost's wire path alone (frame, decode, route,
encode, send) with no store and no crypto. ``authorisations`` is the full pipeline on demo
cards: chip purchases with a PIN block (track 2 with the card's iCVV) and e-commerce purchases
with CVV2, for a small amount so the demo accounts last the whole run.
"""

from __future__ import annotations

from collections.abc import Sequence

from simulator.builder import Entry, Fields, Kind, RequestBuilder, Terminal
from simulator.demo_cards import DemoFile, SimCard

MIXES = ("network", "auth")


def network() -> list[Fields]:
    return [RequestBuilder().network(Kind.ECHO)]


def usable_cards(demo: DemoFile, bins: Sequence[str] = ()) -> tuple[SimCard, ...]:
    """Active cards with a PIN, optionally only those whose PAN starts with one of ``bins``."""
    cards = demo.active()
    if bins:
        cards = tuple(c for c in cards if c.pan.startswith(tuple(bins)))
    return cards


def authorisations(
    demo: DemoFile,
    *,
    bins: Sequence[str] = (),
    amount_minor: int = 1,
    pin_keying: str = "zpk",
) -> list[Fields]:
    """Per usable card: a chip purchase with PIN, and an e-commerce purchase with CVV2."""
    cards = usable_cards(demo, bins)
    if not cards:
        raise ValueError("no active demo card with a PIN matches (check the card file and --bins)")
    builder = RequestBuilder(Terminal(pin_keying=pin_keying), zpk=demo.zpk, bdk=demo.bdk)
    # no imk_ac: a template is sent again and again with a new STAN and RRN, and a chip
    # cryptogram sent twice is a replay the host refuses (82), so the mix carries no field 55
    out: list[Fields] = []
    for card in cards:
        out.append(builder.financial(Kind.PURCHASE, card, amount_minor, pin=card.pin))
        out.append(builder.financial(Kind.PURCHASE, card, amount_minor, entry=Entry.ECOMMERCE))
    return out
