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


@pytest.mark.parametrize("separator", [".", "_", "/", " ", "-"])
def test_a_note_masks_a_card_number_however_a_person_split_it(separator):
    """A dispute note "card 4761.7390.0101.0119 used abroad" was stored and audited in clear:
    only blanks and dashes were taken for a card number's groups."""
    from authhost.security.masking import mask_pans_in_note

    split = separator.join(PAN[i : i + 4] for i in range(0, 16, 4))
    masked = mask_pans_in_note(f"card {split} used abroad, ref 2026.11.29")
    assert PAN not in masked.replace(separator, "") and "*" in masked, masked
    assert masked.endswith("ref 2026.11.29") and PAN[-4:] in masked and PAN[:4] in masked
    assert mask_pans_in_note("47617390_01010119") == "476173**_****0119"


def test_log_text_keeps_a_float_whole_a_note_would_mask():
    """Log lines and audit JSON keep epoch seconds with their fraction whole (17 digits that
    pass the Luhn check here): the note's rule is for notes."""
    from authhost.security.masking import mask_pans_in_note

    seconds = "1795983717.0357057"
    assert mask_pans_in_text(f'{{"ts":{seconds}}}') == f'{{"ts":{seconds}}}'
    assert seconds not in mask_pans_in_note(f"at {seconds}")


def _in(digits: str, zero: int) -> str:
    """The PAN's digits in another script (zero: the code point of its 0)."""
    return "".join(chr(zero + int(d)) if d.isdigit() else d for d in digits)


@pytest.mark.parametrize(
    "separator", [". ", " .", "\n", "\r\n", "\t", "  ", " - ", "'", "\u00a0"],
    ids=["dot-blank", "blank-dot", "lf", "crlf", "tab", "two-blanks", "blank-dash-blank",
         "apostrophe", "nbsp"],
)  # fmt: skip
def test_a_note_masks_a_card_number_split_by_blanks_dots_and_line_breaks(separator):
    """The merged note masking took one dot, slash or underscore between groups: a PAN a
    person wrote "4761. 7390. ...", over two lines, with two blanks or "4761 - 7390 - ..." was
    stored and audited in clear."""
    from authhost.security.masking import mask_pans_in_note

    split = separator.join(PAN[i : i + 4] for i in range(0, 16, 4))
    masked = mask_pans_in_note(f"card {split} used abroad")
    assert len(masked) == len(f"card {split} used abroad") and masked.endswith(" used abroad")
    shown = "".join(c for c in masked if c.isdigit() or c == "*")
    assert shown == PAN[:6] + "*" * 6 + PAN[-4:], masked


@pytest.mark.parametrize("zero", [0xFF10, 0x0660], ids=["full-width", "arabic-indic"])
def test_a_card_number_in_another_scripts_digits_is_masked_in_groups(zero):
    """A PAN in groups of full-width or Arabic-Indic digits was left whole (the Luhn check
    compared its check digit as text, "9" against "٩"); whole runs were masked already."""
    from authhost.security.masking import mask_pans_in_note

    spaced = _in(f"{PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}", zero)
    assert _in(PAN[6:12], zero)[:2] not in mask_pans_in_text(spaced)[7:], spaced
    assert mask_pans_in_text(spaced).count("*") == 6
    assert (
        mask_pans_in_note(_in(f"{PAN[:4]}.{PAN[4:8]}.{PAN[8:12]}.{PAN[12:]}", zero)).count("*") == 6
    )


@pytest.mark.parametrize(
    "text",
    [
        "paid 1.234.567 EUR on 29/11/2026 at 12.30",
        "see dsp-20261128-051424-174178-137 and 2026-11-28",
        "ARN 74761731234567890123456 from the acquirer",
        "from 10.1.2.3 and 192.168.100.200",
        "amounts 12.50\n7.25\n100.00",
    ],
)
def test_a_note_keeps_amounts_dates_ids_and_references_whole(text):
    from authhost.security.masking import mask_pans_in_note

    assert mask_pans_in_note(text) == text
