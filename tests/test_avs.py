"""Address verification's pure parts: how an address is normalised before it is hashed, the
result for what matched, and field 120 read and written."""

from __future__ import annotations

import pytest

from authhost.cards.avs import AvsResult, avs_result, house_number, normal_postcode
from authhost.iso.messages import AvsData
from authhost.iso.subfields import build_avs_data, parse_avs_data


@pytest.mark.parametrize(
    ("typed", "compared"),
    [
        ("EC1A 1BB", "EC1A1BB"),
        ("ec1a-1bb", "EC1A1BB"),
        ("10001-1234", "10001"),  # a US ZIP+4 compares as its ZIP
        ("100011234", "10001"),
        ("75008", "75008"),
        ("K1A 0B1", "K1A0B1"),
        ("", ""),
    ],
)
def test_a_postcode_is_compared_without_spaces_case_or_zip4(typed, compared):
    assert normal_postcode(typed) == compared


@pytest.mark.parametrize(
    ("street", "number"),
    [
        ("12 Lovelace Street", "12"),
        ("12, Lovelace St.", "12"),
        ("Flat 3, 12 Lovelace St", "3"),  # the first number: the networks' rule too
        ("1234567 Long Road", "12345"),
        ("Rue de Rivoli", ""),
    ],
)
def test_a_street_address_is_compared_by_its_house_number(street, number):
    assert house_number(street) == number


@pytest.mark.parametrize(
    ("postcode", "street", "result"),
    [
        (True, True, AvsResult.BOTH_MATCH),
        (False, True, AvsResult.ADDRESS_ONLY),
        (None, True, AvsResult.ADDRESS_ONLY),
        (True, False, AvsResult.POSTCODE_ONLY),
        (True, None, AvsResult.POSTCODE_ONLY),
        (False, False, AvsResult.NO_MATCH),
        (False, None, AvsResult.NO_MATCH),
        (None, None, AvsResult.UNAVAILABLE),
    ],
)
def test_the_result_says_what_matched(postcode, street, result):
    assert avs_result(postcode, street) is result


def test_field_120_carries_the_postcode_then_the_street():
    avs = AvsData("EC1A 1BB", "12 Lovelace Street")
    assert build_avs_data(avs) == "EC1A 1BB 12 Lovelace Street"
    assert parse_avs_data("52", build_avs_data(avs)) == avs
    assert parse_avs_data("52", None) == AvsData("", "")
    assert parse_avs_data(None, "EC1A 1BB 12 Lovelace Street") is None  # not asked for
    with pytest.raises(ValueError, match="subelement 82 must be 52"):
        parse_avs_data("51", "EC1A 1BB")
    with pytest.raises(ValueError, match="field 120"):
        parse_avs_data("52", "X" * 30)
    assert "EC1A" not in repr(avs)  # personal data: never in a repr, a log line or an error
