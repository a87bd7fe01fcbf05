"""3-D Secure authentication values: the CAVV an issuer's access control server (ACS) puts
in an e-commerce authorisation after it authenticated the cardholder, checked by the issuer.

A merchant can claim "the cardholder was authenticated" in field 48 SE 42 for free; the CAVV
(field 48 SE 43, 28 characters of base64 for 20 bytes) is what proves it: only the ACS holds
the issuer's CAVV key pair. The layout is Visa's 3-D Secure CAVV:

    byte  0     authentication results code (0: authenticated, 7: an attempt the ACS
                vouches for)
    byte  1     second factor authentication code (how: password, one-time code, app...)
    byte  2     CAVV key indicator (which of the issuer's key pairs made it)
    bytes 3-4   CAVV output: 3 digits, BCD, left-padded with a zero digit
    bytes 5-6   unpredictable number: 4 digits, BCD
    bytes 7-14  authentication tracking number (ATN): 16 digits, BCD, unique per
                authentication
    byte  15    version and authentication action
    bytes 16-19 the cardholder's IP address at authentication (0 when not given)

and its output follows the "CVV with ATN" method (CAVV algorithm 2): the card verification
value algorithm (``cardvalues.visa_cvv``) under the CAVV key pair, with the ATN's last four
digits where the expiry goes and the results code and second factor code where the service
code goes. So a CAVV made for one card, one authentication result or one authentication does
not verify for another. Pure functions over a clear key pair: the security module holds the
key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass, replace
from typing import NamedTuple

from authhost.security.cardvalues import CardValueError, visa_cvv

CAVV_BYTES = 20
RESULT_AUTHENTICATED = 0x00  # byte 0: the cardholder was authenticated
RESULT_ATTEMPTED = 0x07  # byte 0: the ACS answered for an issuer or card not enrolled

# The CAVV results code (Visa field 44.13) the issuer reports for what it found
CAVV_PASSED = "2"  # passed validation: authentication
CAVV_PASSED_ATTEMPT = "3"  # passed validation: attempted authentication
CAVV_FAILED = "1"  # failed validation: authentication (forged or made for another card)
CAVV_FAILED_ATTEMPT = "4"  # failed validation: attempted authentication
CAVV_ERRONEOUS = "0"  # not validated: the value is not a CAVV (wrong length, not base64...)
CAVV_RESULTS = {
    CAVV_PASSED: "passed: authenticated",
    CAVV_PASSED_ATTEMPT: "passed: attempt",
    CAVV_FAILED: "failed: authentication",
    CAVV_FAILED_ATTEMPT: "failed: attempt",
    CAVV_ERRONEOUS: "not validated: erroneous data",
}
FAILED_RESULTS = frozenset({CAVV_FAILED, CAVV_FAILED_ATTEMPT})


class CavvError(ValueError):
    """A value that is not a CAVV (messages never contain the value)."""


@dataclass(frozen=True, slots=True)
class Cavv:
    """The fields of a CAVV (see the module docstring)."""

    results_code: int
    second_factor: int
    key_indicator: int
    output: str  # 3 digits
    unpredictable: str  # 4 digits
    atn: str  # 16 digits
    version: int = 0
    ip_address: bytes = bytes(4)

    @property
    def attempt(self) -> bool:
        return self.results_code == RESULT_ATTEMPTED

    def to_bytes(self) -> bytes:
        return (
            bytes((self.results_code, self.second_factor, self.key_indicator))
            + bytes.fromhex("0" + self.output + self.unpredictable + self.atn)
            + bytes((self.version,))
            + self.ip_address
        )

    def to_text(self) -> str:
        """The 28-character base64 form that field 48 SE 43 carries."""
        return base64.b64encode(self.to_bytes()).decode("ascii")


def parse_cavv(text: str) -> Cavv:
    """A CAVV from its base64 form; ``CavvError`` when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CavvError("the authentication value is not base64") from None
    if len(raw) != CAVV_BYTES:
        raise CavvError(f"a CAVV is {CAVV_BYTES} bytes, this value is {len(raw)}")
    digits = raw[3:15].hex()
    if not digits.isdigit() or digits[0] != "0":
        raise CavvError("the CAVV's output, unpredictable number and ATN must be BCD digits")
    if raw[0] > 9 or raw[1] > 0x99 or not f"{raw[1]:02x}".isdigit():
        raise CavvError("the CAVV's results and second factor codes must be BCD digits")
    return Cavv(
        results_code=raw[0],
        second_factor=raw[1],
        key_indicator=raw[2],
        output=digits[1:4],
        unpredictable=digits[4:8],
        atn=digits[8:24],
        version=raw[15],
        ip_address=raw[16:20],
    )


def cavv_output(key_pair: bytes, pan: str, cavv: Cavv) -> str:
    """The 3 digits a CAVV with these fields must carry for this PAN (CVV with ATN)."""
    service_code = f"{cavv.results_code:x}{cavv.second_factor:02x}"
    try:
        return visa_cvv(key_pair, pan, cavv.atn[-4:], service_code)
    except CardValueError as error:
        raise CavvError(str(error)) from None


def make_cavv(
    key_pair: bytes,
    pan: str,
    *,
    atn: str,
    unpredictable: str = "0000",
    attempt: bool = False,
    second_factor: int = 0x01,
    key_indicator: int = 0x01,
) -> Cavv:
    """What the issuer's ACS puts in a CAVV after an authentication (the simulator's ACS, and
    tests); ``atn`` is 16 digits, unique per authentication."""
    if not (atn.isascii() and atn.isdigit() and len(atn) == 16):
        raise CavvError("the ATN is 16 digits")
    if not (unpredictable.isascii() and unpredictable.isdigit() and len(unpredictable) == 4):
        raise CavvError("the unpredictable number is 4 digits")
    draft = Cavv(
        results_code=RESULT_ATTEMPTED if attempt else RESULT_AUTHENTICATED,
        second_factor=second_factor,
        key_indicator=key_indicator,
        output="000",
        unpredictable=unpredictable,
        atn=atn,
    )
    return replace(draft, output=cavv_output(key_pair, pan, draft))


class CavvCheck(NamedTuple):
    """What checking a request's value found: the CAVV results code, and the authentication
    tracking number of a value that passed (what an approval uses up; "" otherwise)."""

    result: str
    atn: str = ""


def check_cavv(key_pair: bytes, pan: str, text: str) -> CavvCheck:
    """The CAVV results code for the value a request carries: passed or failed, for an
    authentication or an attempt, or erroneous data; read and checked once."""
    try:
        cavv = parse_cavv(text)
        expected = cavv_output(key_pair, pan, cavv)
    except CavvError:
        return CavvCheck(CAVV_ERRONEOUS)
    if cavv.results_code not in (RESULT_AUTHENTICATED, RESULT_ATTEMPTED):
        return CavvCheck(CAVV_ERRONEOUS)  # not a result an ACS vouches for with a CAVV
    if not hmac.compare_digest(expected.encode(), cavv.output.encode()):
        return CavvCheck(CAVV_FAILED_ATTEMPT if cavv.attempt else CAVV_FAILED)
    return CavvCheck(CAVV_PASSED_ATTEMPT if cavv.attempt else CAVV_PASSED, cavv.atn)
