"""PAN masking in free text: every PAN-like run of digits standing on its own is masked, and
the identifiers and keyed hashes that hold such a run by chance are left whole (an audit
entry or a log line that mangled a token's reference or a card id could not be followed)."""

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
    ],
)
def test_a_pan_on_its_own_is_masked(text: str) -> None:
    masked = mask_pans_in_text(text)
    assert PAN not in masked and PAN[:13] not in masked and "476173900101011 " not in masked
    assert "******" in masked or "***" in masked


@pytest.mark.parametrize(
    "text",
    [
        "a693d066fae53078038690902be4f",  # a keyed hash in hex with a 13-digit run
        "crd_4a2501234567890123cd",  # an id whose hex holds a long run of digits
        "token_ref=9f3078038690902123456a",
        "ab" + PAN,  # glued to a word: part of the word, not a PAN
    ],
)
def test_digits_inside_a_longer_word_are_left_whole(text: str) -> None:
    assert mask_pans_in_text(text) == text


def test_mask_pan_keeps_first_six_and_last_four() -> None:
    assert mask_pan(PAN) == "476173******0119"
    assert mask_pan("123") == "***" and mask_pan(None) is None
