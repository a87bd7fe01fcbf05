"""Visa decimalisation of a cipher block, shared by CVV/CVC and PVV.

The block's hex digits are read left to right: first the decimal ones, then, when there are
too few, the letters A-F as 0-5, again left to right. Done with two C-level ``translate``
calls on the hex bytes rather than a Python loop per nibble.
"""

from __future__ import annotations

from binascii import hexlify

_HEX_LETTERS = b"abcdef"
_DECIMALS = b"0123456789"
_LETTERS_AS_DIGITS = bytes.maketrans(_HEX_LETTERS, b"012345")


def visa_digits(block: bytes, count: int) -> str:
    """The first ``count`` decimalised digits of ``block`` (Visa CVV and PVV rule)."""
    text = hexlify(block)
    digits = text.translate(None, _HEX_LETTERS)
    if len(digits) < count:
        digits += text.translate(_LETTERS_AS_DIGITS, _DECIMALS)
    return digits[:count].decode("ascii")
