"""PAN production, Luhn, expiry and PIN try rules (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authhost.cards import pin
from authhost.cards.luhn import is_luhn_valid, luhn_check_digit
from authhost.cards.model import Card, CardState, Product
from authhost.cards.production import (
    PanFacts,
    ProductionError,
    expiry_from,
    is_past_expiry,
    months_after,
    new_card,
    new_pan,
)

NOW = 1_780_000_000.0  # 2026-05-28 UTC


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),
        ("5413330089020011", True),
        ("4000000000000002", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("79927398710", False),
        ("41111111111111a1", False),
        ("", False),
    ],
)
def test_luhn_known_numbers(number, valid):
    assert is_luhn_valid(number) is valid


@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_check_digit_makes_any_number_valid_and_is_unique(partial):
    digit = luhn_check_digit(partial)
    assert is_luhn_valid(partial + digit)
    assert [d for d in "0123456789" if is_luhn_valid(partial + d)] == [digit]


@pytest.mark.parametrize(
    ("bin_", "length"), [("400000", 16), ("54133300", 16), ("476173", 19), ("400000", 13)]
)
def test_new_pan_from_bin_is_luhn_valid(bin_, length):
    pan = new_pan(bin_, length)
    assert pan.startswith(bin_) and len(pan) == length and is_luhn_valid(pan)


def test_new_pans_are_random_not_sequential():
    pans = [int(new_pan("400000")[6:15]) for _ in range(200)]
    assert len(set(pans)) == 200
    gaps = {b - a for a, b in zip(pans, pans[1:], strict=False)}
    assert len(gaps) > 150  # a counter would show one constant gap


@pytest.mark.parametrize(
    ("bin_", "length"), [("4000", 16), ("40000a", 16), ("400000", 7), ("400000", 20)]
)
def test_impossible_products_are_refused(bin_, length):
    with pytest.raises(ProductionError):
        new_pan(bin_, length)


@pytest.mark.parametrize(
    ("months", "expiry"), [(1, "2606"), (7, "2612"), (8, "2701"), (36, "2905"), (48, "3005")]
)
def test_expiry_counts_months_from_now(months, expiry):
    assert expiry_from(NOW, months) == expiry


def test_expiry_is_inclusive_of_its_month():
    assert not is_past_expiry("2605", NOW)
    assert is_past_expiry("2604", NOW)


def test_new_card_takes_product_defaults_and_never_the_pan():
    product = Product("p1", "bank", "Debit", "400000", validity_months=24, service_code="221")
    pan = new_pan("400000")
    card = new_card(product, PanFacts.of(pan, "idx"), card_id="crd_1", account_id="a1", now=NOW)
    assert card.state is CardState.CREATED and card.expiry == "2805"
    assert card.service_code == "221" and card.last4 == pan[-4:] and card.bin == "400000"
    assert pan not in repr(card)


def test_pin_try_counter_locks_at_limit_and_unlocks():
    card = Card("c", "i", "400000", "1234", 16, "p", "a", CardState.ACTIVE, "2812", "201")
    for _ in range(3):
        card = replace(card, pin_tries=pin.tries_after(card, correct=False))
    assert card.pin_tries == 3 and pin.is_locked(card, 3) and not pin.is_locked(card, 4)
    assert pin.tries_after(card, correct=True) == 0
    assert pin.unlock(card).pin_tries == 0 and not pin.is_locked(pin.unlock(card))
    reset = pin.with_pin_reference(card, "9876")
    assert reset.pin_reference == "9876" and reset.pin_tries == 0


@pytest.mark.parametrize(
    ("expiry", "months", "later"), [("2612", 1, "2701"), ("2911", 36, "3211"), ("2601", 0, "2601")]
)
def test_months_after_an_expiry_roll_over_the_year(expiry, months, later):
    assert months_after(expiry, months) == later
