"""Segments of the traffic a fraud analyst measures drift in (``authhost models drift
--segment``): the same model sees different traffic at an ATM and on the web, and a drift
in one segment can hide in the whole (a new e-commerce market is a few percent of all
requests, and most of the web's).

Each kind is a function of the transaction context (``models.context.TxContext``), the one
training and the drift report's replay both build, so a segment of the held-out days and of
a period of the journal hold the same requests. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from authhost.models.context import TxContext
from authhost.models.features import ENTRY_GROUPS
from authhost.models.merchant_groups import ELEVATED, HIGH, LOW, ORDINARY, mcc_risk_group

# the channel as an analyst splits it: card present (chip, swipe, tap at a terminal),
# e-commerce (with mail and telephone orders: card not present), ATM
CHANNEL_GROUPS = {
    "pos": "card_present",
    "contactless": "card_present",
    "ecommerce": "ecommerce",
    "moto": "ecommerce",
    "atm": "atm",
}
_MCC_GROUPS = {LOW: "low", ORDINARY: "ordinary", ELEVATED: "elevated", HIGH: "high"}
OTHER = "other"
NO_PRODUCT = "none"


def _cross_border(ctx: TxContext) -> str:
    if not (ctx.country and ctx.home_country):
        return "unknown"
    return "cross_border" if ctx.country != ctx.home_country else "domestic"


SEGMENTS: dict[str, Callable[[TxContext], str]] = {
    # card_present, ecommerce, atm (other: a channel the request did not give)
    "channel": lambda ctx: CHANNEL_GROUPS.get(ctx.channel, OTHER),
    # how the card was read (field 22): chip, contactless, magstripe, manual, ecommerce...
    "entry": lambda ctx: ENTRY_GROUPS.get(ctx.entry_mode, OTHER),
    # domestic, cross_border (the acquirer's country is not the card's home), unknown
    "cross-border": _cross_border,
    # the merchant category's fraud risk group (models.merchant_groups)
    "mcc-group": lambda ctx: _MCC_GROUPS.get(mcc_risk_group(ctx.mcc), OTHER),
    # the card's product (admin products), as journalled
    "product": lambda ctx: ctx.product or NO_PRODUCT,
}


def segment_of(kind: str) -> Callable[[TxContext], str]:
    """The segment function of ``kind``; ValueError naming the kinds otherwise."""
    try:
        return SEGMENTS[kind]
    except KeyError:
        raise ValueError(f"unknown segment {kind!r}; known: {', '.join(SEGMENTS)}") from None
