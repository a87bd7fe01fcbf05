"""The table-driven Luhn check agrees with the digit-by-digit loop on every kind of input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_security_oracles import luhn_complete

from authhost.cards.luhn import is_luhn_valid, luhn_check_digit


def reference_check_digit(partial: str) -> str:
    return luhn_complete(partial)[-1]  # the digit-by-digit oracle of the security tests


def reference_is_valid(number: str) -> bool:
    if len(number) < 2 or not number.isdigit():
        return False
    return reference_check_digit(number[:-1]) == number[-1]


def outcome(function, text: str) -> object:
    try:
        return function(text)
    except ValueError:
        return ValueError


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("79927398713", True),
        ("79927398710", False),
        ("4761739001010119", True),
        ("18", True),
        ("0", False),
        ("", False),
        ("4761 7390", False),
        ("00", True),
    ],
)
def test_known_numbers(number: str, valid: bool) -> None:
    assert is_luhn_valid(number) is valid


def test_check_digit_of_known_partials() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("476173900101011") == "9"
    assert luhn_check_digit("") == "0"


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789", max_size=22))
def test_matches_the_loop_on_digits(number: str) -> None:
    assert luhn_check_digit(number) == reference_check_digit(number)
    assert is_luhn_valid(number) is reference_is_valid(number)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789a ²٣１-", max_size=8))
def test_matches_the_loop_on_odd_input(text: str) -> None:
    """Non-ASCII digits count as the loop counts them; non-digits raise or fail alike."""
    assert outcome(luhn_check_digit, text) == outcome(reference_check_digit, text)
    assert outcome(is_luhn_valid, text) == outcome(reference_is_valid, text)
