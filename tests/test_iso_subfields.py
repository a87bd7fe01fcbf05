"""Inner layouts of fields 48, 54, 90 and 95: read what a peer writes, write what it reads."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authhost.iso.messages import Balance, TokenData
from authhost.iso.subfields import (
    CAVV_RESULT_POSITION,
    NOTHING_ASKED,
    VISA_AVS_RESULT_POSITION,
    VISA_CAVV_RESULT_POSITION,
    VISA_CVV2_RESULT_POSITION,
    OriginalData,
    SubfieldError,
    VisaAsked,
    build_additional_data,
    build_avs_data,
    build_pan_mapping,
    build_visa_pos_information,
    build_visa_private,
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
    parse_visa_additional_response,
    parse_visa_address,
    parse_visa_eci,
    parse_visa_private,
    replacement_amounts_field,
    visa_results_asked,
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
        value = format_additional_response({CAVV_RESULT_POSITION: code})
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


# Visa's fields (docs/iso.md, "Visa's fields")

CAVV_HEX = "00010102620000" + "1234567890123456" + "00" + "00000000"  # 20 bytes: a CAVV's layout
CAVV_B64 = base64.b64encode(bytes.fromhex(CAVV_HEX)).decode()
XID_HEX = "AB" * 20
NINE_TEN = "00C0000000000000"  # field 126's bitmap naming 126.9 and 126.10
# 126.1 to 126.7 as docs/iso.md lays them out: bill payment data (customer name 25, customer
# address 57, biller address 57, biller telephone 18 characters), the Visa merchant identifier
# (8 characters), the SET certificate serial numbers (17 bytes each: 34 hex characters)
BILL_PAYMENT = ("JANE CARDHOLDER".ljust(25) + "12 LOVELACE STREET LONDON EC1A 1BB".ljust(57)
                + "NORTHERN POWER PO BOX 12 LEEDS LS1 4AP".ljust(57) + "+44 113 496 0000".ljust(18))  # fmt: skip
VMID = "VMID0042"
CERTIFICATE = "10" + "0123456789ABCDEF" * 2  # 16 significant digits, then 16 bytes
ONE_TO_TEN = "FFC0000000000000"  # 126.1 to 126.10


@pytest.mark.parametrize(
    ("field_60", "authentication"),
    [
        (None, None),  # no field 60
        ("01", None),  # 60.1 and 60.2 only: no 60.8
        ("01000000", None),
        ("0100000005", "authenticated"),  # 60.8 at positions 9-10
        ("010000000500", "authenticated"),
        ("010000000600", "attempted"),
        ("010000000700", "none"),  # non-authenticated e-commerce (channel encryption)
        ("010000000800", "none"),  # non-secure
        ("010000000900", "none"),  # an ECI authhost does not know is no authentication
        ("010000000000", ""),  # not e-commerce: says nothing, as no SE 42
        ("010000000100", ""),  # a mail or telephone order
        ("010000000400", ""),
    ],
)
def test_the_eci_is_field_60_positions_9_and_10(field_60, authentication) -> None:
    assert parse_visa_eci(field_60) == authentication


@pytest.mark.parametrize(
    "field_60",
    ["", "010000000", "0100000005001", "01000000O5", "01000000\uff10\uff15", "0100 00005"],
    ids=["empty", "half of 60.8", "13 digits", "a letter", "full-width digits", "a space"],
)
def test_a_field_60_that_is_not_its_digits_is_malformed(field_60: str) -> None:
    with pytest.raises(SubfieldError, match="field 60"):
        parse_visa_eci(field_60)


def test_the_simulators_field_60_carries_its_eci_where_the_host_reads_it() -> None:
    for eci, authentication in (("05", "authenticated"), ("06", "attempted"), ("07", "none")):
        assert parse_visa_eci(build_visa_pos_information(eci)) == authentication


@pytest.mark.parametrize(
    ("field_126", "cavv", "cvv2", "requested", "wanted"),
    [
        ("0" * 16, None, None, False, False),
        (NINE_TEN + CAVV_HEX + "11 123", CAVV_B64, "123", True, True),
        ("01C0000000000000" + XID_HEX + CAVV_HEX + "11 123", CAVV_B64, "123", True, True),
        (NINE_TEN.lower() + CAVV_HEX.lower() + "101234", CAVV_B64, "1234", True, False),
        ("0040000000000000" + "11 123", None, "123", True, True),  # 126.10 alone
        ("0080000000000000" + CAVV_HEX, CAVV_B64, None, False, False),  # 126.9 alone
        ("0040000000000000" + "01    ", None, None, True, True),  # not provided
        ("0040000000000000" + "21    ", None, None, True, True),  # not legible
        ("0040000000000000" + "90 123", None, None, True, False),  # not on the card
        ("0060000000000000" + "11 123" + "R", None, "123", True, True),  # 126.11: not read
        ("0040000000000001" + "11 123" + "XYZ", None, "123", True, True),  # 126.64: not read
        (ONE_TO_TEN + BILL_PAYMENT + VMID + CERTIFICATE * 2 + XID_HEX + CAVV_HEX + "11 123",
         CAVV_B64, "123", True, True),
        ("F040000000000000" + BILL_PAYMENT + "11 123", None, "123", True, True),  # 1-4, 10
        ("0800000000000000" + VMID, None, None, False, False),  # 126.5 alone
        ("06C0000000000000" + CERTIFICATE.lower() * 2 + CAVV_HEX + "11 123",
         CAVV_B64, "123", True, True),  # 6, 7, 9, 10
        ("8860000000000000" + "X" * 25 + VMID + "11 123" + "R", None, "123", True, True),
    ],
    ids=["bitmap only", "9 and 10", "8, 9 and 10", "lower-case hex, 4 digits", "10 alone",
         "9 alone", "no CVV2", "illegible", "not on the card", "126.11 after", "126.64 after",
         "1 to 10", "bill payment", "5 alone", "certificates", "1, 5, 10 and 11"],
)  # fmt: skip
def test_field_126_carries_the_cavv_in_9_and_the_cvv2_in_10(
    field_126, cavv, cvv2, requested, wanted
) -> None:
    found = parse_visa_private(field_126)
    assert (found.cavv, found.cvv2) == (cavv, cvv2)
    assert (found.cvv2_request, found.cvv2_result_wanted) == (requested, wanted)
    assert "123" not in repr(found) and CAVV_B64 not in repr(found)
    withheld = field_126.endswith(("21    ", "90 123"))  # the illegible and not-on-card rows
    assert found.cvv2_withheld is withheld


@pytest.mark.parametrize(
    "field_126",
    [
        "00C00000000000",  # a short bitmap
        "00C000000000000G" + CAVV_HEX + "11 123",  # not hex
        "00C00000 0000000" + CAVV_HEX + "11 123",  # a space in it
        "8000000000000000" + "X" * 24,  # 126.1 cut short
        "F040000000000000" + BILL_PAYMENT[:-1] + "11 123",  # 126.4 a character short
        "0840000000000000" + VMID[:-1] + "11 123",  # 126.5 a character short
        "02C0000000000000" + "X" * 34 + CAVV_HEX + "11 123",  # 126.7 not hex
        "06C0000000000000" + CERTIFICATE + CERTIFICATE[:-2] + CAVV_HEX + "11 123",  # 7 short
        ONE_TO_TEN + BILL_PAYMENT + VMID + CERTIFICATE * 2 + XID_HEX + CAVV_HEX + "11 123X",
        NINE_TEN + CAVV_HEX[:-2],  # 126.9 cut short, no 126.10
        NINE_TEN + CAVV_HEX + "11 12",  # 126.10 cut short
        NINE_TEN + "Z" + CAVV_HEX[1:] + "11 123",  # 126.9 not hex
        "01C0000000000000" + "G" * 40 + CAVV_HEX + "11 123",  # the XID not hex
        NINE_TEN + CAVV_HEX + "31 123",  # presence 3
        NINE_TEN + CAVV_HEX + "12 123",  # response type 2
        NINE_TEN + CAVV_HEX + "11  12",  # two digits
        NINE_TEN + CAVV_HEX + "111 23",  # a space inside
        NINE_TEN + CAVV_HEX + "11 12A",
        NINE_TEN + CAVV_HEX + "11123 ",  # left-justified
        NINE_TEN + CAVV_HEX + "11 123" + "0",  # data after 126.10, no subfield after it
        "0" * 16 + "11 123",  # data after an empty bitmap
    ],
    ids=["short bitmap", "bitmap not hex", "space in bitmap", "126.1 cut short",
         "126.4 short", "126.5 short", "126.7 not hex", "126.7 short", "1 to 10 trailing",
         "126.9 cut short", "126.10 cut short", "126.9 not hex", "XID not hex", "presence 3",
         "response type 2", "two digits", "space inside", "a letter", "left-justified",
         "trailing data", "data without a subfield"],
)  # fmt: skip
def test_a_malformed_field_126_is_refused_without_its_values(field_126: str) -> None:
    with pytest.raises(SubfieldError, match="field 126") as error:
        parse_visa_private(field_126)
    assert "123" not in str(error.value) and CAVV_HEX[:20] not in str(error.value)


def test_the_simulators_field_126_reads_back() -> None:
    assert parse_visa_private(build_visa_private()) == parse_visa_private("0" * 16)
    both = build_visa_private(cavv=CAVV_B64, cvv2="123")
    assert both == NINE_TEN + CAVV_HEX + "11 123"
    found = parse_visa_private(both)
    assert (found.cavv, found.cvv2, found.cvv2_result_wanted) == (CAVV_B64, "123", True)
    assert parse_visa_private(build_visa_private(cvv2="1234")).cvv2 == "1234"
    none = parse_visa_private(build_visa_private(cvv2=""))  # --cvv2 none: not on the card
    assert (none.cvv2, none.cvv2_withheld, none.cvv2_result_wanted) == (None, True, True)


def test_field_123_is_a_postcode_and_a_street_address() -> None:
    address = parse_visa_address("EC1A 1BB 12 Lovelace Street")
    assert address is not None
    assert (address.postcode, address.street) == ("EC1A 1BB", "12 Lovelace Street")
    assert parse_visa_address(None) is None
    assert parse_visa_address(build_avs_data(address)) == address
    assert parse_visa_address("10001" + " " * 4 + "X" * 20) is not None  # 29: the most
    with pytest.raises(SubfieldError, match="field 123"):
        parse_visa_address("10001" + " " * 4 + "X" * 21)


def test_field_44_carries_visas_results_at_their_positions() -> None:
    value = format_additional_response(
        {VISA_AVS_RESULT_POSITION: "Y", VISA_CVV2_RESULT_POSITION: "M",
         VISA_CAVV_RESULT_POSITION: "2"}
    )  # fmt: skip
    assert value == " Y        M   2"  # 44.2 position 2, 44.10 position 11, 44.13 position 15
    assert parse_visa_additional_response(value) == {"avs": "Y", "cvv2": "M", "cavv": "2"}
    assert format_additional_response({VISA_CVV2_RESULT_POSITION: "N"}) == " " * 10 + "N"
    assert parse_visa_additional_response(" " * 12 + "2") == {}  # field 48's CAVV position
    assert parse_additional_response(" " * 12 + "2", CAVV_RESULT_POSITION) == "2"


def test_the_answer_layout_follows_the_fields_the_request_used() -> None:
    assert visa_results_asked({}) is NOTHING_ASKED
    assert visa_results_asked({"48": "R9203123"}) is NOTHING_ASKED
    assert visa_results_asked({"123": "EC1A 1BB"}) == VisaAsked(avs=True)
    private = NINE_TEN + CAVV_HEX + "11 123"
    assert visa_results_asked({"126": private}) == VisaAsked(cvv2=True, cavv=True)
    no_result = NINE_TEN + CAVV_HEX + "10 123"  # response type 0: field 39 only
    assert visa_results_asked({"126": no_result, "123": ""}) == VisaAsked(avs=True, cavv=True)
