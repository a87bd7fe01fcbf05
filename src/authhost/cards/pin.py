"""PIN try counter rules: lock after the configured number of wrong tries, unlock by an operator.

The PIN itself is never here: a card keeps only its PVV or IBM 3624 offset (``pin_reference``),
set from an encrypted PIN block by the security module.
"""

from __future__ import annotations

from dataclasses import replace

from authhost.cards.model import Card, Product

DEFAULT_TRY_LIMIT = 3
CHIP_PIN_UNBLOCK = "pin_unblock"  # the issuer script command (emv_scripts.ScriptCommand)


def is_locked(card: Card, try_limit: int = DEFAULT_TRY_LIMIT) -> bool:
    """True when wrong tries reached the limit (the PIN step answers 75)."""
    return card.pin_tries >= try_limit


def tries_after(card: Card, *, correct: bool) -> int:
    """The counter after one PIN check: a good PIN resets it, a wrong one counts up."""
    return 0 if correct else card.pin_tries + 1


def unlock(card: Card) -> Card:
    """An operator's unlock: the counter back to zero, the PIN unchanged."""
    return replace(card, pin_tries=0)


def with_pin_reference(card: Card, reference: str) -> Card:
    """The card after a PIN set/reset: the new PVV/offset, and a fresh try counter. An ATM's
    PIN change before it can no longer be undone by its reversal (that would bring back a PIN
    older than the one the bank just set)."""
    return replace(
        card, pin_reference=reference, pin_tries=0, pin_change_key="", previous_pin_reference=None
    )


def with_chip_unblock(card: Card, product: Product) -> Card:
    """``card`` with PIN UNBLOCK queued for its chip's next online request: the chip counts
    wrong offline PINs itself, and still refuses offline PIN at the till until told. The
    card as it is when its product sends no issuer scripts or the command waits already."""
    if not product.imk_smi_name or CHIP_PIN_UNBLOCK in card.chip_scripts:
        return card
    return replace(card, chip_scripts=(*card.chip_scripts, CHIP_PIN_UNBLOCK))
