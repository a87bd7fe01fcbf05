"""Card production: a fresh PAN from the product's BIN, the expiry and the new card value.

PANs are random (``secrets``), never sequential, so that one card number does not reveal its
neighbours. Uniqueness is the caller's job: it checks the store by PAN index and draws again
(the store also refuses a duplicate index). Card verification values are not produced here:
they are computed from the product's keys by the security module and never stored.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from authhost.cards.luhn import luhn_check_digit
from authhost.cards.model import Card, CardState, Product


class ProductionError(ValueError):
    """A product whose BIN/PAN length cannot produce card numbers."""


def new_pan(bin_prefix: str, pan_length: int = 16) -> str:
    """A random Luhn-valid PAN of ``pan_length`` digits starting with ``bin_prefix``."""
    if not bin_prefix.isdigit() or len(bin_prefix) not in (6, 8):
        raise ProductionError("a BIN is 6 or 8 digits")
    if not 12 <= pan_length <= 19:
        raise ProductionError("a PAN is 12 to 19 digits long")
    body_digits = pan_length - len(bin_prefix) - 1
    if body_digits < 1:
        raise ProductionError("the PAN length leaves no room for an account number")
    body = "".join(str(secrets.randbelow(10)) for _ in range(body_digits))
    partial = bin_prefix + body
    return partial + luhn_check_digit(partial)


def expiry_from(now: float, validity_months: int) -> str:
    """Expiry YYMM ``validity_months`` after the month of ``now`` (the card is valid through
    the last day of that month)."""
    if validity_months < 1:
        raise ProductionError("validity must be at least one month")
    tm = time.gmtime(now)
    months = tm.tm_year * 12 + (tm.tm_mon - 1) + validity_months
    year, month = divmod(months, 12)
    return f"{year % 100:02d}{month + 1:02d}"


def months_after(expiry: str, months: int) -> str:
    """The expiry YYMM ``months`` after ``expiry`` (YYMM, 2000-2099)."""
    count = (2000 + int(expiry[:2])) * 12 + int(expiry[2:]) - 1 + months
    year, month = divmod(count, 12)
    return f"{year % 100:02d}{month + 1:02d}"


def is_past_expiry(expiry: str, now: float) -> bool:
    """True once the month after the expiry month (YYMM) has begun."""
    tm = time.gmtime(now)
    return (tm.tm_year, tm.tm_mon) > (2000 + int(expiry[:2]), int(expiry[2:]))


def new_card_id() -> str:
    """An opaque card identifier that carries nothing of the PAN."""
    return "crd_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class PanFacts:
    """What a card keeps of its PAN: the keyed index and the displayable parts."""

    pan_index: str
    bin: str
    last4: str
    pan_length: int

    @classmethod
    def of(cls, pan: str, pan_index: str) -> PanFacts:
        return cls(pan_index=pan_index, bin=pan[:6], last4=pan[-4:], pan_length=len(pan))


def new_card(
    product: Product,
    pan: PanFacts,
    *,
    card_id: str,
    account_id: str,
    now: float,
    cardholder_name: str = "",
    address_ref: str = "",
) -> Card:
    """A freshly produced card (state created) of ``product`` on ``account_id``."""
    return Card(
        card_id=card_id,
        pan_index=pan.pan_index,
        bin=pan.bin,
        last4=pan.last4,
        pan_length=pan.pan_length,
        product_id=product.product_id,
        account_id=account_id,
        state=CardState.CREATED,
        expiry=expiry_from(now, product.validity_months),
        service_code=product.service_code,
        cardholder_name=cardholder_name,
        address_ref=address_ref,
        pin_method=product.pin_method,
        created_at=now,
    )
