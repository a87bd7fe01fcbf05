"""The Luhn (mod 10) check digit that every card number carries."""

from __future__ import annotations


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial`` + digit Luhn-valid."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:  # these get doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    """True when ``number`` is all digits and its last digit is the Luhn check digit."""
    if len(number) < 2 or not number.isdigit():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]
