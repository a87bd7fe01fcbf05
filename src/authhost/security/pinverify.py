"""PIN verification values: Visa PVV and the IBM 3624 PIN offset (generation and check).

An issuer never keeps a PIN; it keeps one of these references and recomputes it from the PIN
a cardholder enters. Pure functions over a clear PVK: the security module is what keeps the
PVK encrypted and the PIN inside.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import lru_cache

from authhost.security.blockcipher import tdes_ecb_encrypt
from authhost.security.decimalise import visa_digits

DEFAULT_DECIMALISATION = "0123456789012345"


class PinVerificationError(ValueError):
    """Inputs a PIN verification value cannot be computed from (messages hold no secrets)."""


def _digits(value: str, low: int, high: int, what: str) -> None:
    if not (value.isascii() and value.isdigit() and low <= len(value) <= high):
        raise PinVerificationError(f"{what} must be {low} to {high} decimal digits")


def visa_pvv(pvk: bytes, pvki: str, pin: str, pan: str) -> str:
    """Visa PVV: TDES of the transformed security parameter, decimalised to 4 digits.

    TSP = the 11 rightmost PAN digits excluding the check digit + PVKI + the 4 PIN digits.
    Decimal digits of the result are taken left to right; if fewer than four, the hex
    letters A-F (as 0-5) fill up, again left to right.
    """
    _digits(pvki, 1, 1, "PVKI")
    _digits(pin, 4, 4, "a PIN for Visa PVV")
    _digits(pan, 12, 19, "PAN")
    tsp = pan[-12:-1] + pvki + pin
    return visa_digits(tdes_ecb_encrypt(pvk, bytes.fromhex(tsp)), 4)


@dataclass(frozen=True, slots=True)
class Ibm3624Params:
    """The issuer's IBM 3624 choices: decimalisation table and where validation data comes from.

    Validation data is ``length`` PAN digits starting ``offset`` digits from the left, padded
    on the right with ``pad`` to 16 nibbles. ``offset`` None (the default) means the rightmost
    ``length`` digits excluding the check digit.
    """

    decimalisation: str = DEFAULT_DECIMALISATION
    offset: int | None = None
    length: int = 12
    pad: str = "F"

    def validation_data(self, pan: str) -> bytes:
        if self.offset is None:
            data = pan[-1 - self.length : -1]
        else:
            data = pan[self.offset : self.offset + self.length]
        if len(data) != self.length:
            raise PinVerificationError("validation data lies outside the PAN")
        return bytes.fromhex(data[:16].ljust(16, self.pad))


def _intermediate_pin(pvk: bytes, pan: str, params: Ibm3624Params) -> str:
    _digits(pan, 12, 19, "PAN")
    table = params.decimalisation
    if len(table) != 16 or not table.isdigit():
        raise PinVerificationError("the decimalisation table must be 16 decimal digits")
    return tdes_ecb_encrypt(pvk, params.validation_data(pan)).hex().translate(_nibble_map(table))


@lru_cache(maxsize=16)
def _nibble_map(table: str) -> dict[int, int]:
    """Hex nibble (lowercase) to decimalised digit: built once per table, not per PIN."""
    return str.maketrans("0123456789abcdef", table)


def ibm3624_natural_pin(pvk: bytes, pan: str, length: int, params: Ibm3624Params) -> str:
    """The natural PIN (offset 0000...) of a PAN: the first ``length`` decimalised digits."""
    if not 4 <= length <= 12:
        raise PinVerificationError("PIN length must be 4 to 12")
    return _intermediate_pin(pvk, pan, params)[:length]


def ibm3624_offset(pvk: bytes, pin: str, pan: str, params: Ibm3624Params) -> str:
    """The offset that turns the natural PIN into ``pin``: digit-wise (pin - natural) mod 10."""
    _digits(pin, 4, 12, "PIN")
    natural = _intermediate_pin(pvk, pan, params)
    return "".join(str((int(p) - int(n)) % 10) for p, n in zip(pin, natural, strict=False))


def ibm3624_verify(pvk: bytes, pin: str, pan: str, offset: str, params: Ibm3624Params) -> bool:
    """True when ``pin`` is the natural PIN plus ``offset`` (lengths must match)."""
    if len(pin) != len(offset):
        return False
    return hmac.compare_digest(ibm3624_offset(pvk, pin, pan, params), offset)


def visa_pvv_verify(pvk: bytes, pvki: str, pin: str, pan: str, pvv: str) -> bool:
    if len(pin) != 4:
        return False
    return hmac.compare_digest(visa_pvv(pvk, pvki, pin, pan), pvv)
