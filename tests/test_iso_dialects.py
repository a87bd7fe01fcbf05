"""The ASCII dialects are pyiso8583's specs with exactly the documented change (field 53); the
BCD dialect packs bytes as jPOS's ISO87BPackager does (checked against bytes written out by
hand here, and against the hand-written peer of ``iso_peers`` on every field)."""

from __future__ import annotations

import iso8583.specs
import pytest
from iso_peers import BCD_DIALECT, bcd_decode, bcd_encode

from authhost.auth.decision import Decision
from authhost.iso.codec import FormatError, decode_message, encode_request, encode_response
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import DEFAULT_DIALECT, DIALECTS, get_dialect

EBCDIC = "ebcdic-binary-bitmap"
ORIGINALS = {
    "ascii-binary-bitmap": iso8583.specs.default,
    "ascii-hex-bitmap": iso8583.specs.default_ascii,
}


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_only_field_53_differs_from_the_pyiso8583_original(name: str) -> None:
    spec, original = get_dialect(name).spec, ORIGINALS[name]
    assert set(spec) == set(original)
    assert [key for key in spec if spec[key] != original[key]] == ["53"]
    assert (spec["53"]["len_type"], spec["53"]["max_len"], spec["53"]["data_enc"]) == (
        2,
        48,
        "ascii",
    )


def test_the_originals_are_left_untouched() -> None:
    assert iso8583.specs.default["53"]["max_len"] == 16
    assert iso8583.specs.default_ascii["53"]["len_type"] == 0


def test_default_dialect_is_the_binary_bitmap_one() -> None:
    assert DEFAULT_DIALECT == "ascii-binary-bitmap"
    assert get_dialect(DEFAULT_DIALECT).spec["p"]["data_enc"] == "b"
    assert set(DIALECTS) == {*ORIGINALS, "bcd-binary-bitmap", "ebcdic-binary-bitmap"}


def test_unknown_dialect_names_the_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match="unknown ISO 8583 dialect 'ebcdic'.*ascii-binary-bitmap, ascii-hex-bitmap, bcd.*ebcdic-",
    ):
        get_dialect("ebcdic")


# A 0200 as a jPOS ISO87BPackager channel sends it, written out byte by byte.
_BCD_0200 = bytes.fromhex(
    "0200"  # MTI, 2 BCD bytes
    "7024068128C09000"  # bitmap: 2 3 4 11 14 22 23 25 32 35 37 41 42 49 52
    "16"
    "4000001234567899"  # 2: LLNUM, length 16 digits in one BCD byte
    "000000"  # 3: n6
    "000000012345"  # 4: n12
    "004711"  # 11: n6
    "2912"  # 14: n4
    "0051"  # 22: n3, left-padded
    "0001"  # 23: n3
    "00"  # 25: n2
    "05"
    "123450"  # 32: LLNUM 5 digits, right-padded with a 0 nibble
    "33"
    "4000001234567899D2912101000000000"
    "0"  # 35: 33 digits, "=" as D, padded
)
_BCD_0200 += b"000000004711" + b"TERM0001" + b"MERCHANT0000001" + b"826"  # 37 41 42 49: ASCII
_BCD_0200 += bytes.fromhex("0412AC89ABCDEF67")  # 52: 8 raw bytes


def test_the_bcd_dialect_reads_what_a_jpos_iso87b_switch_sends() -> None:
    request = decode_message(_BCD_0200, get_dialect(BCD_DIALECT))
    assert (request.mti, request.pan, request.processing_code) == (
        "0200", "4000001234567899", "000000"
    )  # fmt: skip
    assert (request.amount_minor, request.stan, request.expiry) == (12345, "004711", "2912")
    assert (request.pos_entry_mode, request.card_sequence, request.acquirer_id) == (
        "051", "001", "12345"
    )  # fmt: skip
    assert request.track2 == "4000001234567899=2912101000000000"
    assert (request.terminal_id, request.merchant_id, request.currency) == (
        "TERM0001", "MERCHANT0000001", "826"
    )  # fmt: skip
    assert request.pin_block == bytes.fromhex("0412AC89ABCDEF67")
    assert bcd_decode(_BCD_0200)["35"] == request.track2  # the peer agrees with the bytes


@pytest.mark.parametrize(
    ("track2_pad", "acquirer_pad"), [("F", "F"), ("0", "F"), ("F", "0")],
    ids=["both F", "field 32 F", "track 2 F"],
)  # fmt: skip
def test_the_bcd_dialect_reads_odd_lengths_padded_with_f(track2_pad, acquirer_pad) -> None:
    """Many switches pad an odd count of BCD digits with F rather than jPOS's 0; F is never
    a digit, so it can only be the pad (before, such a track 2 or PAN was answered 30)."""
    body = _BCD_0200.replace(
        bytes.fromhex("4000001234567899D29121010000000000"),
        bytes.fromhex("4000001234567899D2912101000000000" + track2_pad),
    ).replace(bytes.fromhex("05123450"), bytes.fromhex("0512345" + acquirer_pad))
    assert body != _BCD_0200
    request = decode_message(body, get_dialect(BCD_DIALECT))
    assert request.track2 == "4000001234567899=2912101000000000"
    assert request.acquirer_id == "12345"


def test_the_bcd_dialect_refuses_a_pad_that_is_a_digit_other_than_its_own() -> None:
    body = _BCD_0200.replace(
        bytes.fromhex("4000001234567899D29121010000000000"),
        bytes.fromhex("4000001234567899D29121010000000007"),
    )
    with pytest.raises(FormatError):
        decode_message(body, get_dialect(BCD_DIALECT))


def test_the_bcd_dialect_answers_in_bytes_a_jpos_switch_reads() -> None:
    dialect = get_dialect(BCD_DIALECT)
    request = decode_message(_BCD_0200, dialect)
    decision = Decision(ResponseCode.APPROVED, approval_code="A1B2C3")
    body = encode_response(request, decision, dialect)
    assert body[:2] == bytes.fromhex("0210")
    assert body[2:10] == bytes.fromhex("302000010EC08000")  # 3 4 11 | 32 | 37 38 39 41 42 | 49
    assert body[10:26] == bytes.fromhex("00000000000001234500471105123450")
    assert body[26:] == b"000000004711A1B2C300TERM0001MERCHANT0000001826"
    assert bcd_decode(body)["38"] == "A1B2C3"


def test_the_bcd_dialect_sends_track_2_as_jpos_packs_it() -> None:
    fields = {"t": "0100", "11": "000001", "35": "4000001234567899=29121010000000000"}
    body = encode_request(fields, get_dialect(BCD_DIALECT))
    assert body == bcd_encode(fields)
    assert body[-18:] == bytes.fromhex("344000001234567899D29121010000000000")


def test_the_ebcdic_dialect_is_the_binary_bitmap_one_in_code_page_500() -> None:
    ascii_spec, ebcdic = get_dialect("ascii-binary-bitmap").spec, get_dialect(EBCDIC).spec
    assert set(ebcdic) == set(ascii_spec)
    for key, field in ascii_spec.items():
        expected = {k: "cp500" if v == "ascii" else v for k, v in field.items()}
        assert ebcdic[key] == expected, key
    # an 0800 echo test as a mainframe sends it: EBCDIC digits (F0-F9), binary bitmaps
    body = bytes.fromhex("F0F8F0F082200000000000000400000000000000")
    body += bytes.fromhex("F1F1F2F5F2F0F3F0F0F0F0F0F0F0F0F1F3F0F1")  # 7, 11, 70
    message = decode_message(body, get_dialect(EBCDIC))
    assert (message.mti, message.code, message.stan) == ("0800", "301", "000001")
    assert (
        encode_request(
            {"t": "0800", "7": "1125203000", "11": "000001", "70": "301"}, get_dialect(EBCDIC)
        )
        == body
    )
