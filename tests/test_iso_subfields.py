"""Inner layouts of fields 48, 54, 90 and 95: read what a peer writes, write what it reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authhost.iso.messages import Balance, TokenData
from authhost.iso.subfields import (
    OriginalData,
    SubfieldError,
    build_additional_data,
    build_pan_mapping,
    format_additional_amounts,
    format_additional_response,
    parse_additional_amounts,
    parse_additional_data,
    parse_additional_response,
    parse_authentication,
    parse_key_exchange,
    parse_original_data,
    parse_pan_mapping,
    parse_replacement_amount,
    parse_stored_credential,
    replacement_amounts_field,
)


@pytest.mark.parametrize(
    ("text", "elements"),
    [
        ("", {}),
        ("R", {}),
        ("9203123", {"92": "123"}),
        ("R9203123", {"92": "123"}),
        ("T0105ABCDE9204 123", {"01": "ABCDE", "92": " 123"}),
        ("4200", {"42": ""}),
    ],
    ids=["empty", "TCC only", "92 alone", "TCC then 92", "two subelements", "empty value"],
)
def test_field_48_subelements(text: str, elements: dict[str, str]) -> None:
    assert parse_additional_data(text) == elements


@pytest.mark.parametrize(
    "text",
    ["92", "R92", "9205123", "9A03123", "R9203123X"],
    ids=["header cut", "TCC then header cut", "value cut", "tag not digits", "trailing junk"],
)
def test_broken_field_48_is_refused_without_its_value(text: str) -> None:
    with pytest.raises(SubfieldError) as raised:
        parse_additional_data(text)
    assert "123" not in str(raised.value)


KEY = "0123456789ABCDEFFEDCBA9876543210"


@pytest.mark.parametrize(
    ("check", "expected"), [("A1B2C3D4E5F60718", "A1B2C3D4E5F60718"), ("a1b2c3", "A1B2C3")]
)
def test_a_key_exchange_block_is_class_index_cycle_key_and_check(check, expected) -> None:
    block = parse_key_exchange(build_additional_data({"11": f"pk0207{KEY}{check}"}))
    assert (block.key_class, block.key_index, block.key_cycle) == ("PK", "02", "07")
    assert block.encrypted_key == bytes.fromhex(KEY) and block.check_value == expected
    assert KEY not in repr(block)


@pytest.mark.parametrize(
    "value",
    [None, f"PK0207{KEY}", f"PK0207{KEY[:-2]}A1B2C3", f"PK02XX{KEY}A1B2C3",
     f"PK0207{KEY}A1B2C3D4E5F6071899", f"PK0207{KEY[:-1]}GA1B2C3"],
    ids=["no subelement 11", "no check value", "short key", "cycle not digits",
         "check value too long", "key not hex"],
)  # fmt: skip
def test_a_broken_key_exchange_block_is_refused_without_its_key(value: str | None) -> None:
    field_48 = build_additional_data({"11": value} if value else {"92": "123"})
    with pytest.raises(SubfieldError) as raised:
        parse_key_exchange(field_48)
    assert "subelement 11" in str(raised.value) and KEY[:16] not in str(raised.value)


@given(
    elements=st.dictionaries(
        st.text("0123456789", min_size=2, max_size=2), st.text(max_size=99), max_size=5
    ),
    tcc=st.sampled_from([None, "R", "T", "C"]),
)
def test_field_48_builds_what_it_parses(elements: dict[str, str], tcc: str | None) -> None:
    assert parse_additional_data(build_additional_data(elements, tcc)) == elements


def test_field_48_build_refuses_bad_tags_and_long_values() -> None:
    with pytest.raises(SubfieldError):
        build_additional_data({"9": "1"})
    with pytest.raises(SubfieldError):
        build_additional_data({"92": "1" * 100})


def test_field_54_layout_and_round_trip() -> None:
    balances = [Balance("10", "01", "978", 0), Balance("30", "02", "840", -999_999_999_999)]
    text = format_additional_amounts(balances)
    assert text == "1001978C0000000000003002840D999999999999"
    assert parse_additional_amounts(text) == balances


@pytest.mark.parametrize(
    "text", ["0001826C00000000", "0001826X000000000100", "0001826C00000000010A"]
)
def test_malformed_field_54_is_refused(text: str) -> None:
    with pytest.raises(SubfieldError):
        parse_additional_amounts(text)


def test_field_54_refuses_amounts_over_12_digits() -> None:
    with pytest.raises(SubfieldError):
        format_additional_amounts([Balance("00", "01", "826", 10**12)])


def test_field_90_round_trip() -> None:
    original = OriginalData("0200", "004711", "1125203000", "00000123456", "00000000000")
    text = original.to_field()
    assert text == "020000471111252030000000012345600000000000"
    assert parse_original_data(text) == original


@pytest.mark.parametrize("text", ["0200", "X" * 42, "0" * 43])
def test_malformed_field_90_is_refused(text: str) -> None:
    with pytest.raises(SubfieldError):
        parse_original_data(text)


def test_field_95_carries_the_remaining_amount_first() -> None:
    text = replacement_amounts_field(5000)
    assert len(text) == 42
    assert text.startswith("000000005000")
    assert parse_replacement_amount(text) == 5000
    with pytest.raises(SubfieldError):
        replacement_amounts_field(-1)
    with pytest.raises(SubfieldError):
        parse_replacement_amount("ABC")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),  # the request does not say
        ("212", "authenticated"),  # UCAF/AAV present: 3-D Secure
        ("211", "attempted"),
        ("216", "exempt"),  # the merchant claims an SCA exemption
        ("210", "none"),
        ("917", "none"),  # any other collection indicator
        ("0103212", "authenticated"),  # Mastercard's subfield form
    ],
)
def test_subelement_42_says_how_the_cardholder_was_authenticated(value, expected) -> None:
    assert parse_authentication(value) == expected


@pytest.mark.parametrize("value", ["", "21", "2120", "21x", "0104212"])
def test_a_broken_subelement_42_is_refused(value: str) -> None:
    with pytest.raises(SubfieldError, match="subelement 42"):
        parse_authentication(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),  # the request does not say
        ("0504M103", "M103"),  # a subscription the merchant charges
        ("0101Y0504C101", "C101"),  # after subfield 01 (low-risk merchant indicator)
        ("0504M2080302AB", "M208"),  # before another subfield
        ("0101Y", ""),  # other subfields only
    ],
)
def test_subelement_22_carries_the_stored_credential_indicator(value, expected) -> None:
    assert parse_stored_credential(value) == expected


@pytest.mark.parametrize("value", ["05", "0504M10", "0504X103", "0504MABC", "0503M10", "x504M103"])
def test_a_broken_subelement_22_is_refused(value: str) -> None:
    with pytest.raises(SubfieldError, match="subelement 22"):
        parse_stored_credential(value)


def test_field_44_carries_the_cavv_result_in_position_13() -> None:
    for code in "01234":
        value = format_additional_response(cavv_result=code)
        assert len(value) == 13 and value[12] == code and not value[:12].strip()
        assert parse_additional_response(value) == code
    assert parse_additional_response(None) == ""
    assert parse_additional_response("5") == ""  # only the response source: no CAVV result
    assert parse_additional_response("5" + " " * 11 + "2" + "ABC") == "2"


def test_subelement_33_names_the_token_that_paid() -> None:
    token = TokenData("4761739123456789", "3012", "50120834693", "C")
    assert parse_pan_mapping(build_pan_mapping(token)) == token
    assert parse_pan_mapping(None) is None
    minimal = parse_pan_mapping("02164761739123456789")
    assert minimal == TokenData("4761739123456789")
    assert "4761739123456789" not in repr(minimal)  # a token number is never shown


@pytest.mark.parametrize(
    "value",
    [
        "",  # no token number
        "0104C",  # cut short
        "0299AB",
        "0206123456",  # too short to be a token
        "021647617391234567890305A012",  # expiry not digits
        "02164761739123456789060312",  # requestor not 11 digits
    ],
)
def test_a_broken_subelement_33_is_refused_without_its_value(value: str) -> None:
    with pytest.raises(SubfieldError, match="subelement 33") as refused:
        parse_pan_mapping(value)
    assert "4761739123456789" not in str(refused.value)
