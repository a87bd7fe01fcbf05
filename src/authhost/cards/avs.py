"""Address verification (AVS): does the billing address a card-not-present merchant was given
match the cardholder's?

The issuer keeps no address in clear: the card holds keyed hashes (``security`` makes them) of
the normalised postcode and of the street address's house number, set when the card is
personalised. A request's address (field 120, see ``iso.subfields.parse_avs_data``) is
normalised the same way, hashed and compared, and the answer is Mastercard's AVS result code
(field 48 subelement 83). The result never declines by itself: the merchant decides what to
do with it, and the issuer's rules may (``avs_result``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from authhost.cards.model import Card


class AvsResult(StrEnum):
    """Mastercard's AVS result codes (the subset without a separate ZIP+4 answer)."""

    BOTH_MATCH = "Y"  # the street address and the postcode match
    ADDRESS_ONLY = "A"  # the street address matches, the postcode does not
    POSTCODE_ONLY = "Z"  # the postcode matches, the street address does not
    NO_MATCH = "N"  # neither matches
    UNAVAILABLE = "U"  # no address on file for the card, or none in the request


_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
_DIGITS = re.compile(r"\d+")
HOUSE_NUMBER_DIGITS = 5  # the numeric part compared, as the networks' AVS does


def normal_postcode(text: str) -> str:
    """The postcode as compared: letters and digits only, upper case, and a US ZIP+4 cut to
    its five digits ("ec1a 1bb" -> "EC1A1BB", "10001-1234" -> "10001")."""
    code = _NOT_ALNUM.sub("", text.upper())
    return code[:5] if len(code) == 9 and code.isdigit() else code


def house_number(street: str) -> str:
    """The street address as compared: its first number (up to five digits), the part of an
    address a cardholder types the same way every time ("12b Baker St" -> "12")."""
    found = _DIGITS.search(street)
    return found.group()[:HOUSE_NUMBER_DIGITS] if found else ""


def avs_result(postcode_match: bool | None, street_match: bool | None) -> AvsResult:
    """The result for what could be compared (None: nothing to compare, on the card or in
    the request)."""
    if postcode_match is None and street_match is None:
        return AvsResult.UNAVAILABLE
    if postcode_match and street_match:
        return AvsResult.BOTH_MATCH
    if street_match:
        return AvsResult.ADDRESS_ONLY
    if postcode_match:
        return AvsResult.POSTCODE_ONLY
    return AvsResult.NO_MATCH


def address_refs(
    address_ref: Callable[[str, str], str], postcode: str, street: str
) -> dict[str, str]:
    """The card's fields for a billing address: the keyed hashes (``address_ref``, the
    security module's) of its normalised postcode and house number."""
    return {
        "avs_postcode_ref": address_ref("postcode", normal_postcode(postcode)),
        "avs_street_ref": address_ref("street", house_number(street)),
    }


def verify_address(
    address_ref: Callable[[str, str], str], card: Card, postcode: str, street: str
) -> AvsResult:
    """The result for the address a request gives, against the card's (``address_refs``)."""
    given = address_refs(address_ref, postcode, street)

    def matches(name: str) -> bool | None:
        kept = getattr(card, name)
        return None if not kept or not given[name] else given[name] == kept

    return avs_result(matches("avs_postcode_ref"), matches("avs_street_ref"))
