"""PAN masking in free text: every PAN-like run of digits is masked, on its own or glued to a
word ("pan_4761...", "x4761..."), and the identifiers and keyed hashes that hold such a run by
chance are left whole (an audit entry or a log line that mangled a token's reference or a
card id could not be followed)."""

from __future__ import annotations

import pytest

from authhost.security.masking import mask_pan, mask_pans_in_text

PAN = "4761739001010119"


@pytest.mark.parametrize(
    "text",
    [
        f"pan {PAN} declined",
        f'{{"pan": "{PAN}"}}',
        f"pan={PAN};",
        f"({PAN})",
        f"invalid literal for int() with base 10: '{PAN}'",
        f"{PAN}",
        f"card 476173900101011 (15 digits) and {PAN[:13]} (13)",
        f"/v1/cards/pan_{PAN}",  # glued to a word: still a PAN
        f"reason x{PAN}",
        f"{PAN}xyz",
        f"ticket_{PAN}_closed",
        f"crd_{PAN}",  # an id's shape, but the digits pass the Luhn check as a PAN's do
        "card number ٤٧٦١٧٣٩٠٠١٠١٠١١٩ in another script's digits",
    ],
)
def test_a_pan_on_its_own_is_masked(text: str) -> None:
    masked = mask_pans_in_text(text)
    assert PAN not in masked and PAN[:13] not in masked and "476173900101011 " not in masked
    assert "٤٧٦١٧٣٩٠٠١٠١٠١١٩" not in masked
    assert "******" in masked or "***" in masked


@pytest.mark.parametrize(
    "text",
    [
        "a693d066fae53078038690902be4f",  # a keyed hash in hex with a 13-digit run
        "crd_4a2501234567890123cd",  # an id whose hex holds a long run of digits
        "token_ref=9f3078038690902123456a",
        "ab" + PAN,  # touching a hex letter: taken for part of a hex value
        "crd_1234567890123456",  # one of our ids, all of whose hex digits are decimal
        '{"card_id":"acc_9036511337101102","x":1}',
        "t=1700000000.123456 amount=000000001000 stan=000123",  # times, amounts, fields
    ],
)
def test_hex_values_ids_and_shorter_numbers_are_left_whole(text: str) -> None:
    assert mask_pans_in_text(text) == text


def test_mask_pan_keeps_first_six_and_last_four() -> None:
    assert mask_pan(PAN) == "476173******0119"
    assert mask_pan("123") == "***" and mask_pan(None) is None
