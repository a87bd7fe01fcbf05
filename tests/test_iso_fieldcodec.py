"""The compiled field codec agrees with pyiso8583 on every message, valid or not.

FieldCodec's fast path must never give an answer pyiso8583 would not: these tests generate
field dicts from each dialect's spec, and corrupted bodies, and compare both.
"""

from __future__ import annotations

import copy
import string

import iso8583
import iso8583.specs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.iso.dialects import DIALECTS, get_dialect
from authhost.iso.fieldcodec import FieldCodec, FieldDecodeError, FieldEncodeError

NAMES = sorted(DIALECTS)
# Dialects whose text is ASCII: a byte above 127 in it is an error (code page 500 maps all 256)
ASCII_TEXT = [name for name in NAMES if not name.startswith("ebcdic")]
# Fields authhost reads or writes, and a few it does not, up to the secondary bitmap's end.
NUMBERS = [2, 3, 4, 7, 11, 12, 13, 14, 18, 19, 22, 23, 25, 32, 33, 35, 37, 38, 39, 41, 42, 43,
           48, 49, 52, 53, 54, 55, 60, 64, 70, 90, 95, 102, 128]  # fmt: skip
PRINTABLE = string.ascii_letters + string.digits + " =-/.*"


@st.composite
def field_dicts(draw: st.DrawFn, name: str) -> dict[str, str]:
    spec = get_dialect(name).spec
    doc = {"t": draw(st.text("0123456789", min_size=4, max_size=4))}
    for number in draw(st.sets(st.sampled_from(NUMBERS), min_size=1)):
        field = spec[str(number)]
        most = min(field["max_len"], 60)
        if field.get("len_count") == "nibbles":  # BCD digits, odd lengths too
            size = field["max_len"] if field["len_type"] == 0 else draw(st.integers(0, most))
            doc[str(number)] = draw(st.text("0123456789", min_size=size, max_size=size))
        elif field["data_enc"] == "b":
            size = field["max_len"] if field["len_type"] == 0 else draw(st.integers(0, most))
            doc[str(number)] = draw(st.binary(min_size=size, max_size=size)).hex().upper()
        else:
            size = field["max_len"] if field["len_type"] == 0 else draw(st.integers(0, most))
            doc[str(number)] = draw(st.text(PRINTABLE, min_size=size, max_size=size))
    return doc


def pyiso_encode(doc: dict[str, str], name: str) -> bytes:
    body, _ = iso8583.encode(copy.deepcopy(doc), get_dialect(name).spec)
    return bytes(body)


def pyiso_decode(body: bytes, name: str) -> dict[str, str]:
    decoded, _ = iso8583.decode(body, get_dialect(name).spec)
    return decoded


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_fast_encode_and_decode_equal_pyiso8583(name: str, data: st.DataObject) -> None:
    doc = data.draw(field_dicts(name))
    codec = get_dialect(name).codec
    body = pyiso_encode(doc, name)
    assert codec._encode_fast(doc) == body  # the fast path itself, not its fallback
    assert codec.encode(doc) == body
    assert codec._decode_fast(body) == pyiso_decode(body, name)
    assert codec.decode(body) == pyiso_decode(body, name)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_corrupted_bodies_decode_as_pyiso8583_decides(name: str, data: st.DataObject) -> None:
    body = bytearray(pyiso_encode(data.draw(field_dicts(name)), name))
    edits = data.draw(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3))
    for position, value in edits:
        body[position % len(body)] = value
    cut = data.draw(st.integers(0, len(body)))
    corrupted = bytes(body[:cut])
    codec = get_dialect(name).codec
    try:
        expected = pyiso_decode(corrupted, name)
    except iso8583.DecodeError as error:
        padded = error.doc_dec.get(error.field, "")
        if "nibbles, expecting" in error.msg and "F" in (padded[:1], padded[-1:]):
            # an odd BCD field padded with F, which authhost reads as many terminals send it
            # (iso/packed.py) and pyiso8583 refuses: the field is its digits without the F
            try:
                decoded = codec.decode(corrupted)
            except FieldDecodeError:
                return  # a later field is broken
            assert decoded[error.field] in (padded[1:], padded[:-1])
            return
        with pytest.raises(FieldDecodeError):
            codec.decode(corrupted)
    else:
        assert codec.decode(corrupted) == expected


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200), name=st.sampled_from(NAMES))
def test_random_bytes_raise_only_field_decode_error(body: bytes, name: str) -> None:
    try:
        get_dialect(name).codec.decode(body)
    except FieldDecodeError as error:
        assert isinstance(error.partial, dict)


def test_decode_error_keeps_the_fields_read_before_the_failure() -> None:
    codec = get_dialect("ascii-binary-bitmap").codec
    body = codec.encode({"t": "0200", "11": "000123", "41": "TERM0001"})
    with pytest.raises(FieldDecodeError) as raised:
        codec.decode(body[:-2])
    assert raised.value.partial["11"] == "000123"
    assert raised.value.field == "41"


def test_encode_error_from_pyiso8583_names_the_field() -> None:
    codec = get_dialect("ascii-binary-bitmap").codec
    with pytest.raises(FieldEncodeError, match="field 3"):
        codec.encode({"t": "0200", "3": "12345"})


@pytest.mark.parametrize(("len_enc", "fast"), [("bcd", True), ("b", False)])
def test_specs_outside_the_dialects_agree_with_pyiso8583(len_enc: str, fast: bool) -> None:
    """An ASCII spec with one BCD length prefix takes the packed fast path; a binary length
    prefix is in no fast path, and pyiso8583 handles the message whole."""
    spec = copy.deepcopy(iso8583.specs.default)
    spec["2"]["len_enc"] = len_enc
    spec["2"]["len_type"] = 1
    codec = FieldCodec(spec)
    doc = {"t": "0100", "2": "4000001234567899", "11": "000001"}
    body = codec.encode(doc)
    assert body == bytes(iso8583.encode(copy.deepcopy(doc), spec)[0])
    assert codec.decode(body)["2"] == "4000001234567899"
    if fast:
        assert codec._encode_fast(doc) == body and codec._decode_fast(body) == codec.decode(body)
    else:
        with pytest.raises(Exception):  # noqa: B017 - whatever it is, pyiso8583 decides
            codec._encode_fast(doc)


def test_tertiary_bitmap_messages_fall_back_to_pyiso8583() -> None:
    codec = get_dialect("ascii-binary-bitmap").codec
    body = b"0200" + bytes.fromhex("80") + bytes(7) + bytes.fromhex("80") + bytes(7) + bytes(8)
    assert codec.decode(body) == pyiso_decode(body, "ascii-binary-bitmap")


@pytest.mark.parametrize("name", ASCII_TEXT)
@pytest.mark.parametrize("number", ["41", "42", "49"])
def test_a_non_ascii_byte_in_a_text_field_is_pyiso8583s_error(name: str, number: str) -> None:
    """Before a binary field (52), after it, or in the last field: never a latin-1 value."""
    codec = get_dialect(name).codec
    doc = {"t": "0200", "11": "000123", "41": "TERM0001", "42": "MERCHANT0000001", "49": "826"}
    doc["52"] = "0412AC89ABCDEF67"
    body = bytearray(codec.encode(doc))
    body[body.index(doc[number].encode()) + 1] = 0xE9
    with pytest.raises(iso8583.DecodeError):
        pyiso_decode(bytes(body), name)
    with pytest.raises(FieldDecodeError):
        codec.decode(bytes(body))


@pytest.mark.parametrize(("name", "letter"), [*((n, "é") for n in ASCII_TEXT),
                                              ("ebcdic-binary-bitmap", "€")])  # fmt: skip
def test_a_value_outside_the_code_page_is_not_encoded(name: str, letter: str) -> None:
    codec = get_dialect(name).codec
    doc = {"t": "0200", "11": "000123", "41": f"TERM{letter}001", "52": "0412AC89ABCDEF67"}
    with pytest.raises(FieldEncodeError, match="field 41"):
        codec.encode(doc)
