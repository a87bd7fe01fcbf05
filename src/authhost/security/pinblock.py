"""ISO 9564-1 PIN blocks: formats 0, 1 and 3 (8 bytes, TDES) and format 4 (16 bytes, AES).

Pure functions. ``encode``/``decode`` work on clear blocks (for format 4 the clear *PIN field*,
since format 4 binds the PAN during encryption, not by XOR); ``encrypt_pin_block`` and
``decrypt_pin_block`` do the whole job under a clear key, as a terminal or an HSM would.
Errors (``PinBlockError``) never carry the PIN, the PAN or the block.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from enum import IntEnum

from authhost.security.blockcipher import (
    aes_ecb_decrypt,
    aes_ecb_encrypt,
    tdes_ecb_decrypt,
    tdes_ecb_encrypt,
    xor,
)

MIN_PIN = 4
MAX_PIN = 12


class PinBlockError(ValueError):
    """A PIN block that cannot be built or does not decode (wrong key, tampered, bad format)."""


class PinBlockFormat(IntEnum):
    ISO0 = 0  # PIN XOR PAN, fill F (ANSI X9.8)
    ISO1 = 1  # PIN with random fill, no PAN
    ISO3 = 3  # PIN XOR PAN, random fill A-F
    ISO4 = 4  # AES: 16-byte PIN field, PAN field bound through two encryptions


def _check_pin(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and MIN_PIN <= len(pin) <= MAX_PIN):
        raise PinBlockError(f"a PIN is {MIN_PIN} to {MAX_PIN} decimal digits")


def _check_pan(pan: str) -> None:
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise PinBlockError("a PAN is 12 to 19 decimal digits")


def _pan_field(pan: str) -> bytes:
    """Formats 0 and 3: 0000 + the 12 rightmost PAN digits excluding the check digit, zero
    padded on the left when there are fewer (a 12-digit PAN has 11; ISO 9564-1)."""
    _check_pan(pan)
    return bytes.fromhex("0000" + pan[-13:-1].rjust(12, "0"))


def _pan_field_iso4(pan: str) -> bytes:
    """Format 4: PAN length - 12 in the first nibble, the PAN, zero padding to 32 nibbles."""
    _check_pan(pan)
    return bytes.fromhex((str(len(pan) - 12) + pan).ljust(32, "0"))


def _random_hex(count: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(count))


def encode(pin: str, pan: str | None, fmt: PinBlockFormat = PinBlockFormat.ISO0) -> bytes:
    """The clear PIN block (formats 0, 1, 3) or clear PIN field (format 4)."""
    _check_pin(pin)
    fmt = PinBlockFormat(fmt)
    head = f"{int(fmt)}{len(pin):X}{pin}"
    if fmt is PinBlockFormat.ISO0:
        return xor(bytes.fromhex(head.ljust(16, "F")), _pan_field(pan or ""))
    if fmt is PinBlockFormat.ISO1:
        return bytes.fromhex(head + _random_hex(16 - len(head), "0123456789ABCDEF"))
    if fmt is PinBlockFormat.ISO3:
        fill = _random_hex(16 - len(head), "ABCDEF")
        return xor(bytes.fromhex(head + fill), _pan_field(pan or ""))
    return bytes.fromhex(head.ljust(16, "A")) + secrets.token_bytes(8)


# Control nibbles and fill digits as plain ints and lowercase hex: the decode path compares
# them per PIN block, and IntEnum members or an upper-cased copy of the hex cost more.
_ISO0, _ISO1, _ISO3, _ISO4 = (
    int(f)
    for f in (PinBlockFormat.ISO0, PinBlockFormat.ISO1, PinBlockFormat.ISO3, PinBlockFormat.ISO4)
)
_FILL = {_ISO0: "f", _ISO3: "abcdef", _ISO4: "a"}


def _pin_from_field(field: bytes, fill: str | None) -> str:
    """Read control-length-PIN-fill from the first 8 bytes of a clear PIN field; raise on any
    deviation. ``fill`` holds the allowed fill digits in lowercase hex (None: any)."""
    length = field[0] & 0x0F
    if not MIN_PIN <= length <= MAX_PIN:
        raise PinBlockError("PIN block: PIN length out of range")
    text = field[:8].hex()
    pin = text[2 : 2 + length]
    if not pin.isdigit():
        raise PinBlockError("PIN block: PIN digits are not decimal")
    if fill is not None and text[2 + length :].strip(fill):  # anything left is not fill
        raise PinBlockError("PIN block: fill digits do not match the format")
    return pin


def decode(block: bytes, pan: str | None, fmt: PinBlockFormat | None = None) -> str:
    """The PIN from a clear PIN block (0, 1, 3) or clear PIN field (4).

    With ``fmt`` None the format of an 8-byte block is read from its control nibble (the PAN
    field starts with 0000, so the nibble survives the XOR).
    """
    if len(block) == 16:
        if fmt is not None and fmt != _ISO4:
            raise PinBlockError("PIN block: 16 bytes is format 4 only")
        if block[0] >> 4 != _ISO4:
            raise PinBlockError("PIN block: control field is not format 4")
        return _pin_from_field(block, _FILL[_ISO4])
    if len(block) != 8:
        raise PinBlockError("PIN block: wrong length")
    control = block[0] >> 4
    if fmt is not None and control != int(fmt):
        raise PinBlockError("PIN block: control field does not match the expected format")
    if control == _ISO1:
        return _pin_from_field(block, None)
    if control != _ISO0 and control != _ISO3:
        raise PinBlockError("PIN block: unsupported format")
    if pan is None:
        raise PinBlockError("PIN block: formats 0 and 3 need the PAN")
    return _pin_from_field(xor(block, _pan_field(pan)), _FILL[control])


def encrypt_pin_block(
    key: bytes, pin: str, pan: str | None, fmt: PinBlockFormat = PinBlockFormat.ISO0
) -> bytes:
    """An encrypted PIN block as a terminal sends it: TDES for 0/1/3, AES for 4."""
    fmt = PinBlockFormat(fmt)
    clear = encode(pin, pan, fmt)
    if fmt is PinBlockFormat.ISO4:
        return aes_ecb_encrypt(key, xor(aes_ecb_encrypt(key, clear), _pan_field_iso4(pan or "")))
    return tdes_ecb_encrypt(key, clear)


def decrypt_pin_block(
    key: bytes,
    block: bytes,
    pan: str | None,
    fmt: PinBlockFormat | None = None,
    *,
    accept: Collection[int] | None = None,
) -> str:
    """The PIN inside an encrypted block; PinBlockError for a wrong key or a tampered block.

    ``accept`` limits the formats taken (the control nibble of the clear block). Accepting
    only the PAN-bound formats 0, 3 and 4 also makes a wrong key or a tampered block fail
    reliably: a random 8-byte block passes as format 1 about once in 300 tries.
    """
    try:
        if len(block) == 16:
            if len(key) not in (16, 24, 32):
                raise PinBlockError("PIN block: format 4 needs an AES key")
            inner = xor(aes_ecb_decrypt(key, block), _pan_field_iso4(pan or ""))
            clear = aes_ecb_decrypt(key, inner)
        elif len(block) != 8:
            raise PinBlockError("PIN block: wrong length")
        elif len(key) not in (16, 24):
            raise PinBlockError("PIN block: formats 0, 1 and 3 need a TDES key")
        else:
            clear = tdes_ecb_decrypt(key, block)
        if accept is not None and clear[0] >> 4 not in accept:
            raise PinBlockError("PIN block: format not accepted")
        return decode(clear, pan, fmt)
    except PinBlockError:
        raise
    except ValueError:
        raise PinBlockError("PIN block: cannot be decrypted") from None
