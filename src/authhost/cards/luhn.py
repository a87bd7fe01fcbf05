"""The Luhn (mod 10) check digit that every card number carries.

ASCII digit strings (every real PAN) take a table-driven path: two C-level ``translate``
calls map the digits to their Luhn values and ``sum`` adds them, with no Python loop per
digit. Anything else goes through the plain loop, which keeps its exact behaviour (other
Unicode decimal digits count, non-digits raise ValueError).
"""

from __future__ import annotations

_DIGITS = b"0123456789"
_PLAIN = bytes.maketrans(_DIGITS, bytes(range(10)))
_DOUBLED = bytes.maketrans(_DIGITS, bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))  # 2d, minus 9 if > 9


def _luhn_total(digits: bytes) -> int:
    """The Luhn sum of ASCII digits whose rightmost digit is doubled."""
    return sum(digits[-1::-2].translate(_DOUBLED)) + sum(digits[-2::-2].translate(_PLAIN))


def _luhn_total_slow(partial: str) -> int:
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:  # these get doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial`` + digit Luhn-valid."""
    if partial.isascii() and partial.isdigit():
        total = _luhn_total(partial.encode("ascii"))
    else:
        total = _luhn_total_slow(partial)
    return str((10 - total % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    """True when ``number`` is all digits and its last digit is the Luhn check digit."""
    if len(number) < 2 or not number.isdigit():
        return False
    if number.isascii():  # the check digit is not doubled: the whole sum must end in 0
        digits = number.encode("ascii")
        return (_luhn_total(digits[:-1]) + digits[-1] - 48) % 10 == 0
    return luhn_check_digit(number[:-1]) == number[-1]
