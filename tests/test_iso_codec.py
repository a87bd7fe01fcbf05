"""Typed decode and response encoding, checked against an independent ISO 8583 peer.

Requests are built and responses read by the peers of ``iso_peers`` (a switch that followed
docs/iso.md), never with authhost's own encoder, so a passing test means an
independent client gets correct answers.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from iso_peers import BCD_DIALECT, PEER_DIALECTS, PEER_SPECS, peer_decode, peer_encode

from authhost.auth.decision import Decision
from authhost.iso.codec import (
    EncodeError,
    FormatError,
    decode_fields,
    decode_message,
    encode_format_error,
    encode_network_response,
    encode_request,
    encode_response,
    response_mti,
)
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import DEFAULT_DIALECT, get_dialect
from authhost.iso.messages import AuthRequest, Balance, Channel, MessageClass, NetworkRequest
from authhost.iso.subfields import parse_additional_amounts

DIALECTS = PEER_DIALECTS

PAN = "4000001234567899"  # test BIN 400000, Luhn-valid
PIN_BLOCK = bytes.fromhex("0412AC89ABCDEF67")
ICC = bytes.fromhex("9F2608A1B2C3D4E5F607089F2701809F100706010A03A00000")
KSN = "FFFF9876543210E00001"


def financial(mti: str, **extra: str) -> dict[str, Any]:
    fields = {
        "t": mti,
        "2": PAN,
        "3": "000000",
        "4": "000000012345",
        "7": "1125203000",
        "11": "004711",
        "12": "203000",
        "13": "1125",
        "14": "2912",
        "18": "5411",
        "19": "826",
        "22": "051",
        "23": "001",
        "25": "00",
        "32": "00123456",
        "33": "654321",
        "35": f"{PAN}=29121010000000000",
        "37": "000000004711",
        "41": "TERM0001",
        "42": "MERCHANT0000001",
        "43": "ACME STORES".ljust(23) + "LONDON".ljust(14) + " GB",
        "48": "R9203123",
        "49": "826",
        "52": PIN_BLOCK.hex().upper(),
        "53": KSN,
        "55": ICC.hex().upper(),
    }
    if mti[:2] == "04":
        fields["90"] = "0200" + "004711" + "1125203000" + "00000123456" + "00000000000"
        fields["95"] = "000000005000" + "0" * 12 + "C00000000" + "C00000000"
    fields.update(extra)
    return fields


SENSITIVE = ("2", "14", "35", "45", "48", "52", "53", "55", "125")

CLASSES = [
    ("0100", MessageClass.AUTHORISATION, "0110"),
    ("0101", MessageClass.AUTHORISATION, "0110"),
    ("0120", MessageClass.AUTHORISATION_ADVICE, "0130"),
    ("0121", MessageClass.AUTHORISATION_ADVICE, "0130"),
    ("0200", MessageClass.FINANCIAL, "0210"),
    ("0201", MessageClass.FINANCIAL, "0210"),
    ("0220", MessageClass.FINANCIAL_ADVICE, "0230"),
    ("0221", MessageClass.FINANCIAL_ADVICE, "0230"),
    ("0400", MessageClass.REVERSAL, "0410"),
    ("0401", MessageClass.REVERSAL, "0410"),
    ("0420", MessageClass.REVERSAL_ADVICE, "0430"),
    ("0421", MessageClass.REVERSAL_ADVICE, "0430"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("mti", "message_class", "reply_mti"), CLASSES, ids=[c[0] for c in CLASSES]
)
def test_peer_request_decodes_to_typed_view_and_gets_a_conforming_response(
    dialect: str, mti: str, message_class: MessageClass, reply_mti: str
) -> None:
    fields = financial(mti, **{"125": PIN_BLOCK.hex().upper()})  # a PIN change's new PIN
    request = decode_message(peer_encode(fields, dialect), get_dialect(dialect))

    assert isinstance(request, AuthRequest)
    assert request.mti == mti
    assert request.message_class is message_class
    assert request.pan == PAN
    assert request.processing_code == "000000"
    assert request.amount_minor == 12345
    assert request.transmission_time == "1125203000"
    assert request.stan == "004711"
    assert (request.local_time, request.local_date, request.expiry) == ("203000", "1125", "2912")
    assert (request.mcc, request.country, request.pos_entry_mode) == ("5411", "826", "051")
    assert (request.card_sequence, request.pos_condition_code) == ("001", "00")
    assert (request.acquirer_id, request.forwarding_id) == ("00123456", "654321")
    assert request.track2 == fields["35"]
    assert (request.rrn, request.terminal_id, request.merchant_id) == (
        "000000004711",
        "TERM0001",
        "MERCHANT0000001",
    )
    assert request.merchant_name_location == fields["43"]
    assert request.cvv2 == "123"
    assert request.currency == "826"
    assert request.pin_block == PIN_BLOCK
    assert request.security_control == KSN
    assert request.new_pin_block == PIN_BLOCK
    assert request.icc_data == ICC
    assert request.original_data == fields.get("90")
    assert request.replacement_amounts == fields.get("95")

    decision = Decision(ResponseCode.APPROVED, approval_code="A1B2C3")
    response = peer_decode(encode_response(request, decision, get_dialect(dialect)), dialect)

    assert response["t"] == reply_mti
    for number in ("3", "4", "7", "11", "12", "13", "32", "33", "37", "41", "42", "49"):
        assert response[number] == fields[number], f"field {number} is echoed"
    assert response.get("90") == fields.get("90"), "a reversal's original is echoed"
    assert response["38"] == "A1B2C3"
    assert response["39"] == "00"
    assert not set(SENSITIVE) & set(response), "no PAN, track, PIN or chip data in a response"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_converted_amount_is_the_cardholders_and_both_are_echoed(dialect: str) -> None:
    """A card used abroad: field 4 in the merchant's currency, 6 and 51 in the card's."""
    fields = {**financial("0100"), "4": "000000010000", "49": "840", "6": "000000009215",
              "51": "978"}  # fmt: skip
    request = decode_message(peer_encode(fields, dialect), get_dialect(dialect))
    assert isinstance(request, AuthRequest)
    assert (request.amount_minor, request.currency) == (10_000, "840")
    assert (request.billing_amount_minor, request.billing_currency) == (9_215, "978")
    assert (request.cardholder_amount_minor, request.cardholder_currency) == (9_215, "978")
    decision = Decision(ResponseCode.APPROVED, approval_code="A1B2C3")
    response = peer_decode(encode_response(request, decision, get_dialect(dialect)), dialect)
    for number in ("4", "6", "49", "51"):
        assert response[number] == fields[number], f"field {number} is echoed"
    domestic = decode_message(peer_encode(financial("0100"), dialect), get_dialect(dialect))
    assert isinstance(domestic, AuthRequest)
    assert (domestic.cardholder_amount_minor, domestic.cardholder_currency) == (12345, "826")
    assert "6" not in peer_decode(
        encode_response(domestic, decision, get_dialect(dialect)), dialect
    )


@pytest.mark.parametrize(
    ("mti", "reported"),
    [("0120", {"38": "STANDN", "39": "00"}), ("0220", {"39": "51"}), ("0420", {"39": "68"})],
    ids=["approved stand-in advice", "declined stand-in advice", "reversal advice reason"],
)
def test_advices_and_reversals_report_the_decision_already_given(mti: str, reported: dict) -> None:
    request = decode_message(
        peer_encode(financial(mti, **reported), DEFAULT_DIALECT), get_dialect(DEFAULT_DIALECT)
    )
    assert request.reported_response_code == reported["39"]
    assert request.reported_approval_code == reported.get("38")
    response = peer_decode(
        encode_response(request, Decision(ResponseCode.APPROVED), get_dialect(DEFAULT_DIALECT)),
        DEFAULT_DIALECT,
    )
    assert response["39"] == "00", "the answer carries authhost's own code, not the reported one"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_decline_has_no_approval_code_and_carries_its_response_code(dialect: str) -> None:
    request = decode_message(peer_encode(financial("0100"), dialect), get_dialect(dialect))
    decision = Decision(ResponseCode.INSUFFICIENT_FUNDS, approval_code="A1B2C3")
    response = peer_decode(encode_response(request, decision, get_dialect(dialect)), dialect)
    assert response["39"] == "51"
    assert "38" not in response


@pytest.mark.parametrize("dialect", DIALECTS)
def test_balances_go_to_field_54_in_the_standard_20_character_layout(dialect: str) -> None:
    request = decode_message(peer_encode(financial("0200"), dialect), get_dialect(dialect))
    balances = [Balance("00", "01", "826", 150_00), Balance("00", "02", "826", -25_50)]
    decision = Decision(ResponseCode.APPROVED, approval_code="000001", balances=balances)
    response = peer_decode(encode_response(request, decision, get_dialect(dialect)), dialect)
    assert response["54"] == "0001826C0000000150000002826D000000002550"
    assert parse_additional_amounts(response["54"]) == balances


@pytest.mark.parametrize("dialect", DIALECTS)
def test_response_to_a_minimal_request_echoes_only_what_was_sent(dialect: str) -> None:
    fields = {"t": "0100", "2": PAN, "3": "000000", "4": "000000000100", "11": "000001"}
    request = decode_message(peer_encode(fields, dialect), get_dialect(dialect))
    decision = Decision(ResponseCode.DO_NOT_HONOUR)
    response = peer_decode(encode_response(request, decision, get_dialect(dialect)), dialect)
    assert {k: v for k, v in response.items() if k not in ("p", "1")} == {
        "t": "0110",
        "3": "000000",
        "4": "000000000100",
        "11": "000001",
        "39": "05",
    }


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("code", ["001", "002", "301"], ids=["sign-on", "sign-off", "echo"])
def test_network_management_round_trip(dialect: str, code: str) -> None:
    fields = {"t": "0800", "7": "1125203000", "11": "000042", "70": code}
    request = decode_message(peer_encode(fields, dialect), get_dialect(dialect))
    assert isinstance(request, NetworkRequest)
    assert (request.mti, request.code, request.stan) == ("0800", code, "000042")
    assert request.transmission_time == "1125203000"

    body = encode_network_response(request, ResponseCode.APPROVED, get_dialect(dialect))
    response = peer_decode(body, dialect)
    assert {k: v for k, v in response.items() if k not in ("p", "1")} == {
        "t": "0810",
        "7": "1125203000",
        "11": "000042",
        "39": "00",
        "70": code,
    }


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("mti", "reply"), [("0300", "0310"), ("0600", "0610"), ("0820", "0830")])
def test_unknown_request_mti_is_a_typed_unknown_answered_in_its_response_class(
    dialect: str, mti: str, reply: str
) -> None:
    fields = {"t": mti, "2": PAN, "11": "000007", "41": "TERM0001"}
    request = decode_message(peer_encode(fields, dialect), get_dialect(dialect))
    assert isinstance(request, AuthRequest)
    assert request.message_class is MessageClass.UNKNOWN
    body = encode_response(
        request, Decision(ResponseCode.INVALID_TRANSACTION), get_dialect(dialect)
    )
    response = peer_decode(body, dialect)
    assert (response["t"], response["11"], response["39"]) == (reply, "000007", "12")
    assert "2" not in response


@pytest.mark.parametrize(
    ("mti", "expected"),
    [("0100", "0110"), ("0101", "0110"), ("0220", "0230"), ("0421", "0430"), ("0800", "0810"),
     ("0402", "0412"), ("1100", "1110")],
)  # fmt: skip
def test_response_mti(mti: str, expected: str) -> None:
    assert response_mti(mti) == expected


@pytest.mark.parametrize("mti", ["0110", "0810", "01A0", "100", ""])
def test_response_mti_refuses_what_is_not_a_request(mti: str) -> None:
    with pytest.raises(ValueError):
        response_mti(mti)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_pan_comes_from_track_2_when_field_2_is_absent(dialect: str) -> None:
    fields = financial("0200")
    del fields["2"]
    request = decode_message(peer_encode(fields, dialect), get_dialect(dialect))
    assert request.pan == PAN


@pytest.mark.parametrize(
    ("field_48", "cvv2"),
    [("R9203123", "123"), ("9203987", "987"), ("T0102AB9203555", "555"), ("R0102AB", None)],
    ids=["TCC then 92", "92 alone", "92 after another subelement", "no 92"],
)
def test_cvv2_is_subelement_92_of_field_48(field_48: str, cvv2: str | None) -> None:
    dialect = get_dialect(DEFAULT_DIALECT)
    request = decode_message(
        peer_encode(financial("0100", **{"48": field_48}), DEFAULT_DIALECT), dialect
    )
    assert request.cvv2 == cvv2


@pytest.mark.parametrize(
    ("field_48", "supported"),
    [("R610510000", True), ("6105100009203123", True), ("R610500000", False),
     ("R9203123", False), (None, False)],
    ids=["TCC then 61", "61 then 92", "61 says no", "no 61", "no field 48"],
)  # fmt: skip
def test_partial_approval_support_is_the_first_position_of_subelement_61(
    field_48: str | None, supported: bool
) -> None:
    fields = financial("0100", **({"48": field_48} if field_48 else {}))
    if field_48 is None:
        fields.pop("48", None)
    request = decode_message(peer_encode(fields, DEFAULT_DIALECT), get_dialect(DEFAULT_DIALECT))
    assert request.partial_approval_supported is supported


@pytest.mark.parametrize(
    ("field_48", "sequence", "more"),
    [("R62040103", (1, 3), True), ("620403039203123", (3, 3), False), ("R9203123", None, False)],
    ids=["first of three", "last of three, then 92", "no 62"],
)
def test_a_split_completion_is_numbered_by_subelement_62(
    field_48: str, sequence: tuple[int, int] | None, more: bool
) -> None:
    fields = financial("0220", **{"48": field_48})
    request = decode_message(peer_encode(fields, DEFAULT_DIALECT), get_dialect(DEFAULT_DIALECT))
    assert request.completion_sequence == sequence
    assert request.more_completions_follow is more


@pytest.mark.parametrize("value", ["0003", "0402", "01A3", "103"], ids=str)
def test_a_completion_number_that_cannot_be_is_a_format_error(value: str) -> None:
    fields = financial("0220", **{"48": f"R62{len(value):02d}{value}"})
    with pytest.raises(FormatError, match="subelement 62") as raised:
        decode_message(peer_encode(fields, DEFAULT_DIALECT), get_dialect(DEFAULT_DIALECT))
    assert raised.value.mti == "0220"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_partial_approval_answers_the_approved_amount_in_field_4(dialect: str) -> None:
    request = decode_message(peer_encode(financial("0100"), dialect), get_dialect(dialect))
    decision = Decision(
        ResponseCode.PARTIAL_APPROVAL, approval_code="A1B2C3", approved_amount_minor=1_234
    )
    response = peer_decode(encode_response(request, decision, get_dialect(dialect)), dialect)
    assert (response["39"], response["38"], response["4"]) == ("10", "A1B2C3", "000000001234")


def test_authhost_encoded_request_reads_the_same_with_the_peer_spec() -> None:
    """encode_request (the simulator's encoder) speaks the documented dialects."""
    for dialect in DIALECTS:
        fields: dict[str, str | bytes] = dict(financial("0200"))
        fields["52"] = PIN_BLOCK  # bytes accepted for binary fields
        fields["55"] = ICC
        fields["64"] = bytes(8)
        decoded = peer_decode(encode_request(fields, get_dialect(dialect)), dialect)
        expected = financial("0200", **{"64": "00" * 8})
        assert {k: v for k, v in decoded.items() if k not in ("p", "1")} == expected


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mac_fields_round_trip(dialect: str) -> None:
    fields = {"t": "0200", "2": PAN, "11": "000001", "64": "0123456789ABCDEF"}
    assert decode_fields(peer_encode(fields, dialect), get_dialect(dialect))["64"] == fields["64"]
    with_128 = {"t": "0200", "2": PAN, "11": "000001", "90": "0" * 42, "128": "FEDCBA9876543210"}
    assert (
        decode_fields(peer_encode(with_128, dialect), get_dialect(dialect))["128"]
        == "FEDCBA9876543210"
    )


def test_encode_request_names_the_bad_field_and_not_its_value() -> None:
    with pytest.raises(EncodeError, match="field 4") as raised:
        encode_request({"t": "0200", "2": PAN, "4": "12"}, get_dialect(DEFAULT_DIALECT))
    assert PAN not in str(raised.value)


# --- malformed input: always a FormatError, with MTI and STAN when they can be read -------


def _format_error(
    body: bytes, dialect: str = DEFAULT_DIALECT, visa_fields: bool = False
) -> FormatError:
    with pytest.raises(FormatError) as raised:
        decode_message(body, get_dialect(dialect, visa_fields=visa_fields))
    assert PAN not in str(raised.value)
    return raised.value


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_truncation_is_a_format_error(dialect: str) -> None:
    body = peer_encode(financial("0200"), dialect)
    mti_size = 2 if dialect == BCD_DIALECT else 4  # 4 BCD digits in 2 bytes
    for size in range(len(body)):
        error = _format_error(body[:size], dialect)
        if size < mti_size:
            assert error.mti is None
        else:
            assert error.mti == "0200"


@pytest.mark.parametrize(
    ("case", "fields", "stan"),
    [
        ("amount not numeric", {"4": "00000000010A"}, "004711"),
        ("STAN not numeric is still echoed", {"11": "00471X"}, "00471X"),
        ("field 48 subelements broken", {"48": "R92"}, "004711"),
        ("PIN block not hex", {"52": "ZZ"}, "004711"),
        ("new PIN block (PIN change) not hex", {"3": "920000", "125": "ZZ" * 8}, "004711"),
        ("billing amount without its currency", {"6": "000000009215"}, "004711"),
        ("billing amount not numeric", {"6": "0000000092X5", "51": "978"}, "004711"),
    ],
)
def test_bad_field_after_the_stan_is_answered_with_30(case: str, fields: dict, stan: str) -> None:
    dialect = "ascii-hex-bitmap"
    request = financial("0200")
    if "52" in fields:  # the hex dialect carries the PIN block as 16 characters
        fields = {"52": "ZZ" * 8}
    request.update(fields)
    error = _format_error(peer_encode(request, dialect), dialect)
    logged = stan if stan.isdigit() else None  # error.stan is logged: digits only
    assert (error.mti, error.stan) == ("0200", logged)
    response = peer_decode(encode_format_error(error, get_dialect(dialect)), dialect)
    assert (response["t"], response["11"], response["39"]) == ("0210", stan, "30")
    assert not set(SENSITIVE) & set(response)


def test_bad_length_of_a_late_field_still_gives_mti_and_stan() -> None:
    body = peer_encode(financial("0100"), DEFAULT_DIALECT)
    index = body.index(b"TERM0001") + len(b"TERM0001MERCHANT0000001") + 40  # field 48's LLL
    broken = body[:index] + b"9x9" + body[index + 3 :]
    error = _format_error(broken)
    assert (error.mti, error.stan) == ("0100", "004711")
    assert (
        peer_decode(encode_format_error(error, get_dialect(DEFAULT_DIALECT)), DEFAULT_DIALECT)["39"]
        == "30"
    )


def test_bad_length_before_the_stan_leaves_it_unreadable() -> None:
    body = peer_encode(financial("0100"), DEFAULT_DIALECT)
    broken = body[:12] + b"X9" + body[14:]  # field 2's LL
    error = _format_error(broken)
    assert error.mti == "0100"
    assert error.stan is None
    assert encode_format_error(error, get_dialect(DEFAULT_DIALECT)) is None


def test_bitmap_announcing_missing_fields_is_a_format_error() -> None:
    body = peer_encode(
        {"t": "0800", "7": "1125203000", "11": "000001", "70": "301"}, DEFAULT_DIALECT
    )
    broken = body[:4] + b"\xff" + body[5:]
    assert _format_error(broken).mti == "0800"


def test_hex_bitmap_with_non_hex_characters_is_a_format_error() -> None:
    body = peer_encode({"t": "0800", "11": "000001", "70": "301"}, "ascii-hex-bitmap")
    error = _format_error(body[:4] + b"G" + body[5:], "ascii-hex-bitmap")
    assert error.stan is None


@pytest.mark.parametrize(
    "fields",
    [{"t": "0800", "11": "000001", "70": "301"}, {"t": "0200", "7": "1125203000", "11": "000001"}],
    ids=["STAN before the last field", "STAN is the last field"],
)
def test_extra_bytes_after_the_last_field_are_a_format_error_with_stan(fields: dict) -> None:
    error = _format_error(peer_encode(fields, DEFAULT_DIALECT) + b"junk")
    assert (error.mti, error.stan) == (fields["t"], "000001")


@pytest.mark.parametrize("number", ["2", "32"])
def test_empty_numeric_variable_field_is_a_format_error(number: str) -> None:
    error = _format_error(peer_encode(financial("0100", **{number: ""}), DEFAULT_DIALECT))
    assert error.stan == "004711"
    assert f"field {number} " in str(error)


@pytest.mark.parametrize("mti", ["0110", "0810", "AB00"])
def test_a_response_or_garbage_mti_is_not_answered(mti: str) -> None:
    body = peer_encode({"t": mti, "11": "000001", "39": "00"}, DEFAULT_DIALECT)
    error = _format_error(body)
    assert encode_format_error(error, get_dialect(DEFAULT_DIALECT)) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300), dialect=st.sampled_from(DIALECTS))
# a BCD STAN that is not digits: answered 30 with field 11 echoed as sent (found by a run)
@example(body=b"\x00\x00\x00 \x00\x00\x00\x00\x00\x00\x00\x00\n", dialect="bcd-binary-bitmap")
def test_random_bytes_are_a_format_error_or_a_request(body: bytes, dialect: str) -> None:
    try:
        message = decode_message(body, get_dialect(dialect))
    except FormatError as error:
        response = encode_format_error(error, get_dialect(dialect))
        # answered only when the switch can match the answer: a STAN read, or one that is
        # not digits echoed as it was sent
        assert response is None or error.stan is not None or "11" in error.echo
        if response is not None and error.stan is None:
            assert peer_decode(response, dialect)["11"] == error.echo["11"]
        return
    assert isinstance(message, AuthRequest | NetworkRequest)


_VALID = {d: peer_encode(financial("0200"), d) for d in DIALECTS}


@settings(max_examples=300, deadline=None)
@given(
    dialect=st.sampled_from(DIALECTS),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=4),
)
@example(dialect="ascii-binary-bitmap", edits=[(1, 56)])  # 0200 -> 0800: a network request
def test_corrupted_messages_are_a_format_error_or_a_request(
    dialect: str, edits: list[tuple[int, int]]
) -> None:
    body = bytearray(_VALID[dialect])
    for position, value in edits:
        body[position % len(body)] = value
    try:
        message = decode_message(bytes(body), get_dialect(dialect))
    except FormatError as error:
        assert PAN not in str(error)
        if error.mti is not None and error.stan is not None and error.mti[2] in "02468":
            assert encode_format_error(error, get_dialect(dialect)) is not None
        return
    if isinstance(message, NetworkRequest):  # an edited MTI can make it one (0200 -> 0800)
        response = encode_network_response(message, ResponseCode.APPROVED, get_dialect(dialect))
    else:
        decision = Decision(ResponseCode.DO_NOT_HONOUR)
        response = encode_response(message, decision, get_dialect(dialect))
    assert PAN.encode() not in response


# --- any well-typed request decodes and gets a conforming answer ---------------------------

_NUMERIC_TEXT = "0123456789"
_TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -./"


@st.composite
def well_typed_requests(draw: st.DrawFn, dialect: str) -> dict[str, str]:
    """A request with a random subset of authhost's fields, each value of its ISO type."""
    spec = PEER_SPECS.get(dialect, PEER_SPECS[DEFAULT_DIALECT])  # sizes: alike in every dialect
    fields = {"t": draw(st.sampled_from([c[0] for c in CLASSES] + ["0800"]))}
    chosen = draw(st.sets(st.sampled_from(
        ["2", "3", "4", "7", "11", "12", "13", "14", "18", "19", "22", "23", "25", "32", "33",
         "37", "41", "42", "43", "49", "52", "53", "55", "70", "90", "95"]
    )))  # fmt: skip
    for number in chosen:
        field = spec[number]
        fixed = field["len_type"] == 0
        if number in ("52", "55"):
            size = 8 if number == "52" else draw(st.integers(0, 100))
            fields[number] = draw(st.binary(min_size=size, max_size=size)).hex().upper()
            continue
        if number == "95":  # two amounts (n 12) and two fees (x+n 8)
            amounts = draw(st.text(_NUMERIC_TEXT, min_size=24, max_size=24))
            fees = [draw(st.sampled_from("CD")) + draw(st.text(_NUMERIC_TEXT, min_size=8,
                    max_size=8)) for _ in range(2)]  # fmt: skip
            fields[number] = amounts + "".join(fees)
            continue
        alphabet = _NUMERIC_TEXT if number in NUMERIC else _TEXT
        low = field["max_len"] if fixed else (1 if number in NUMERIC else 0)
        high = field["max_len"] if fixed else min(field["max_len"], 40)
        fields[number] = draw(st.text(alphabet, min_size=low, max_size=high))
    return fields


NUMERIC = {"2", "3", "4", "7", "11", "12", "13", "14", "18", "19", "22", "23", "25", "32", "33",
           "49", "70", "90"}  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dialect=st.sampled_from(DIALECTS), approved=st.booleans())
def test_any_well_typed_request_is_answered_with_its_echo(
    data: st.DataObject, dialect: str, approved: bool
) -> None:
    fields = data.draw(well_typed_requests(dialect))
    request = decode_message(peer_encode(fields, dialect), get_dialect(dialect))
    if isinstance(request, NetworkRequest):
        body = encode_network_response(request, ResponseCode.APPROVED, get_dialect(dialect))
        response = peer_decode(body, dialect)
        for number in ("7", "11", "32", "33", "70"):
            assert response.get(number) == fields.get(number)
        return
    code = ResponseCode.APPROVED if approved else ResponseCode.DO_NOT_HONOUR
    body = encode_response(request, Decision(code, approval_code="XYZ123"), get_dialect(dialect))
    response = peer_decode(body, dialect)
    assert response["t"] == response_mti(fields["t"])
    for number in ("3", "4", "7", "11", "12", "13", "32", "33", "37", "41", "42", "49", "90"):
        assert response.get(number) == fields.get(number)
    assert ("38" in response) is approved
    assert response["39"] == str(code)
    assert not set(SENSITIVE) & set(response)


# --- the decoder's fast construction gives the same request as the constructor -------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("mti", ["0100", "0201", "0420"])
def test_decoded_request_equals_the_constructors_in_every_field(dialect: str, mti: str) -> None:
    request = decode_message(peer_encode(financial(mti), dialect), get_dialect(dialect))
    assert type(request) is AuthRequest
    every = dataclasses.fields(AuthRequest)
    built = AuthRequest(**{f.name: getattr(request, f.name) for f in every if f.init})
    for f in every:  # the derived and compare=False fields too
        assert getattr(request, f.name) == getattr(built, f.name), f.name
    assert request == built and hash(request) == hash(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.stan = "000001"  # type: ignore[misc]


def _channel_as_specified(entry: str | None, condition: str | None, mcc: str | None,
                          processing: str | None) -> Channel:  # fmt: skip
    """The channel rules, written out independently of messages.py."""
    transaction_type = (processing or "000000")[:2]
    if mcc == "6011" or (transaction_type == "01" and mcc in (None, "6011")):
        return Channel.ATM
    if (entry or "")[:2] in ("07", "91"):
        return Channel.CONTACTLESS
    if (entry or "")[:2] == "81" or condition == "59":
        return Channel.ECOMMERCE
    return Channel.MOTO if condition == "08" else Channel.POS


def test_derived_fields_follow_entry_mode_condition_mcc_and_processing_code() -> None:
    for entry, condition, mcc, processing in itertools.product(
        ["051", "071", "072", "911", "812", "901", "", None],
        ["00", "59", "08", None],
        ["6011", "5411", None],
        ["000000", "010000", "200000", "310000", None],
    ):
        request = AuthRequest(
            mti="0201",
            message_class=MessageClass.FINANCIAL,
            processing_code=processing,
            mcc=mcc,
            pos_entry_mode=entry,
            pos_condition_code=condition,
            stan="004711",
            terminal_id="TERM0001",
        )
        expected = _channel_as_specified(entry, condition, mcc, processing)
        assert request.channel is expected, (entry, condition, mcc, processing)
        assert request.is_card_present is (expected not in (Channel.ECOMMERCE, Channel.MOTO))
        assert request.transaction_type == (processing or "000000")[:2]
        assert request.dedupe_key == "020|004711||TERM0001|"


def test_replace_recomputes_the_derived_fields() -> None:
    purchase = AuthRequest(
        mti="0100",
        message_class=MessageClass.AUTHORISATION,
        processing_code="000000",
        mcc="5411",
        pos_entry_mode="051",
        stan="000001",
    )
    cash = dataclasses.replace(purchase, processing_code="010000", mcc=None, stan="000002")
    assert (purchase.transaction_type, purchase.channel) == ("00", Channel.POS)
    assert (cash.transaction_type, cash.channel) == ("01", Channel.ATM)
    assert cash.dedupe_key == "010|000002|||"


def test_an_ebcdic_mti_of_non_ascii_digits_is_a_format_error() -> None:
    """Code page 500 reads byte FA as "³", which Python counts as a digit (found by the
    corrupted-message test above): such an MTI is refused, not answered."""
    dialect = "ebcdic-binary-bitmap"
    body = bytearray(peer_encode(financial("0200"), dialect))
    body[0] = 0xFA
    with pytest.raises(FormatError) as raised:
        decode_message(bytes(body), get_dialect(dialect))
    assert "MTI" in str(raised.value) and raised.value.mti is None


# --- network management (0800): its fields are checked as an authorisation's are ----------

_NETWORK = {"t": "0800", "7": "1125203000", "11": "000042"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_cutover_carries_its_settlement_date_checked(dialect: str) -> None:
    request = decode_message(peer_encode({**_NETWORK, "70": "201", "15": "1128"}, dialect),
                             get_dialect(dialect))  # fmt: skip
    assert isinstance(request, NetworkRequest)
    assert request.settlement_date == "1128"


_BAD_NETWORK_FIELDS = [
    ({"15": "1399"}, "field 15"),
    ({"15": "0001"}, "field 15"),
    ({"15": "0431"}, "field 15"),  # 31 April
    ({"15": "12 1"}, "field 15"),
    ({"90": "0200" + "ABCDEF" + "0" * 32}, "field 90"),
    ({"90": "0" * 41 + "-"}, "field 90"),
    ({"95": "X" * 42}, "field 95"),
    ({"95": "0" * 24 + "Z00000000C00000000"}, "field 95"),
]
# the BCD dialect packs 15 and 90 as BCD digits: a nibble A-F is what can be wrong there
_BAD_BCD_NETWORK_FIELDS = [
    ({"15": "1A28"}, "field 15"),
    ({"15": "1399"}, "field 15"),
    ({"90": "0200" + "ABCDEF" + "0" * 32}, "field 90"),
    ({"95": "X" * 42}, "field 95"),
]


@pytest.mark.parametrize(
    ("dialect", "extra", "named"),
    [
        *((d, extra, named) for d in DIALECTS if d != BCD_DIALECT
          for extra, named in _BAD_NETWORK_FIELDS),
        *((BCD_DIALECT, extra, named) for extra, named in _BAD_BCD_NETWORK_FIELDS),
    ],
)  # fmt: skip
def test_a_malformed_field_of_an_0800_is_a_format_error(
    dialect: str, extra: dict[str, str], named: str
) -> None:
    error = _format_error(peer_encode({**_NETWORK, "70": "301", **extra}, dialect), dialect)
    assert (error.mti, error.stan) == ("0800", "000042")
    assert named in str(error)
    response = peer_decode(encode_format_error(error, get_dialect(dialect)), dialect)
    assert (response["t"], response["11"], response["39"]) == ("0810", "000042", "30")


@pytest.mark.parametrize("date", ["0229", "1231", "0101"])
def test_field_15_is_a_month_and_day_in_every_request(date: str) -> None:
    dialect = get_dialect(DEFAULT_DIALECT)
    request = decode_message(peer_encode(financial("0200", **{"15": date}), DEFAULT_DIALECT),
                             dialect)  # fmt: skip
    assert request.fields["15"] == date
    error = _format_error(peer_encode(financial("0200", **{"15": "0230"}), DEFAULT_DIALECT))
    assert "field 15" in str(error) and error.stan == "004711"


# Visa's fields (docs/iso.md, "Visa's fields"): the same values as field 48's subelements,
# answered in field 44 at Visa's positions

CAVV = bytes.fromhex("00010102620000" + "1234567890123456" + "00" + "00000000")  # 20 bytes
CAVV_B64 = base64.b64encode(CAVV).decode()
ADDRESS = "EC1A 1BB 12 Lovelace Street"


def web(layout: str, **extra: str) -> dict[str, Any]:
    """An e-commerce purchase with CVV2 123, an authenticated 3-D Secure claim, its CAVV and a
    billing address to verify: in field 48's subelements or in Visa's fields 60, 123, 126."""
    fields = financial("0100", **{"22": "812", "25": "59"})
    del fields["35"], fields["52"], fields["53"], fields["55"]
    if layout == "visa":
        fields.update({"60": "010000000500", "123": ADDRESS,
                       "126": "00C0000000000000" + CAVV.hex().upper() + "11 123"})  # fmt: skip
        del fields["48"]
    else:
        fields.update({"48": f"R9203123420321243{len(CAVV_B64)}{CAVV_B64}8202" + "52",
                       "120": ADDRESS})  # fmt: skip
    fields.update(extra)
    return {k: v for k, v in fields.items() if v is not None}


CHECKED = Decision(ResponseCode.APPROVED, approval_code="A1B2C3", avs_result="Y",
                   cvv2_result="M", cavv_result="2")  # fmt: skip


@pytest.mark.parametrize("dialect", DIALECTS)
def test_visas_fields_fill_what_field_48_fills_and_are_answered_in_field_44(dialect) -> None:
    codec = get_dialect(dialect, visa_fields=True)
    visa = decode_message(peer_encode(web("visa"), dialect), codec)
    mastercard = decode_message(peer_encode(web("mastercard"), dialect), codec)
    assert isinstance(visa, AuthRequest) and isinstance(mastercard, AuthRequest)
    for request in (visa, mastercard):
        assert (request.cvv2, request.authentication) == ("123", "authenticated")
        assert request.authentication_value == CAVV_B64
        assert request.avs is not None and request.avs.postcode == "EC1A 1BB"
        assert request.avs.street == "12 Lovelace Street"
        assert request.channel is Channel.ECOMMERCE

    answer = peer_decode(encode_response(visa, CHECKED, codec), dialect)
    assert answer["44"] == " Y        M   2"  # 44.2 AVS, 44.10 CVV2, 44.13 CAVV (position 15)
    assert "48" not in answer and not {"60", "123", "126"} & set(answer)
    answer = peer_decode(encode_response(mastercard, CHECKED, codec), dialect)
    assert answer["48"] == "R8301Y"  # field 48's layout answers: the TCC, SE 83; 44 position 13
    assert answer["44"] == " " * 12 + "2"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_field_126_travels_as_its_hex_text_in_every_dialect(dialect: str) -> None:
    """docs/iso.md's example byte for byte: field 126 is the message's last field, its length
    prefix then its characters in the dialect's code page."""
    text = "00C0000000000000" + CAVV.hex().upper() + "11 123"
    body = peer_encode({"t": "0100", "11": "000001", "126": text}, dialect)
    prefix = {BCD_DIALECT: b"\x00\x62", "ebcdic-binary-bitmap": "062".encode("cp500")}
    code_page = "cp500" if dialect == "ebcdic-binary-bitmap" else "ascii"
    assert body.endswith(prefix.get(dialect, b"062") + text.encode(code_page))
    assert len(text) == 62 and text.encode("cp500")[:4] == bytes.fromhex("F0F0C3F0")


def test_a_result_asked_in_neither_layout_is_not_answered() -> None:
    codec = get_dialect(DEFAULT_DIALECT, visa_fields=True)
    request = decode_message(peer_encode(financial("0100"), DEFAULT_DIALECT), codec)
    assert isinstance(request, AuthRequest)  # CVV2 in SE 92: its result is answered nowhere
    answer = peer_decode(encode_response(request, Decision(ResponseCode.APPROVED,
                                                           cvv2_result="M"), codec),
                         DEFAULT_DIALECT)  # fmt: skip
    assert "44" not in answer and "48" not in answer
    no_result = web("visa", **{"126": "0040000000000000" + "10 123"})  # response type 0
    request = decode_message(peer_encode(no_result, DEFAULT_DIALECT), codec)
    assert isinstance(request, AuthRequest) and request.cvv2 == "123"
    answer = peer_decode(encode_response(request, CHECKED, codec), DEFAULT_DIALECT)
    assert answer["44"] == " Y" + " " * 10 + "2"  # no 44.10; the CAVV result at field 48's place


def test_each_value_is_answered_in_the_layout_it_came_in() -> None:
    """A CAVV in SE 43 and the CVV2 in 126.10 (different values, different layouts)."""
    mixed = web("mastercard", **{"48": f"43{len(CAVV_B64)}{CAVV_B64}", "120": None,
                                 "126": "0040000000000000" + "11 123"})  # fmt: skip
    codec = get_dialect(DEFAULT_DIALECT, visa_fields=True)
    request = decode_message(peer_encode(mixed, DEFAULT_DIALECT), codec)
    assert isinstance(request, AuthRequest)
    assert (request.cvv2, request.authentication_value) == ("123", CAVV_B64)
    answer = peer_decode(encode_response(request, CHECKED, codec), DEFAULT_DIALECT)
    assert answer["44"] == " " * 10 + "M" + " " + "2"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"48": "R9203456"}, "126.10"),
        ({"48": "R4203212"}, "60.8"),
        ({"48": f"R43{len(CAVV_B64)}{CAVV_B64}"}, "126.9"),
        ({"48": "R820252", "120": ADDRESS}, "123"),
        ({"48": "R9203123", "126": "0040000000000000" + "90    "}, "126.10"),  # even "none"
    ],
    ids=["CVV2", "e-commerce indicator", "CAVV", "address", "CVV2 not on the card"],
)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_one_value_in_both_layouts_is_a_format_error(dialect, extra, named) -> None:
    error = _format_error(peer_encode(web("visa", **extra), dialect), dialect, visa_fields=True)
    assert (error.mti, error.stan) == ("0100", "004711")
    assert named in str(error) and "one layout per value" in str(error)
    assert "123" not in str(error).replace("field 123", "") and CAVV_B64 not in str(error)
    response = peer_decode(
        encode_format_error(error, get_dialect(dialect, visa_fields=True)), dialect
    )
    assert (response["t"], response["11"], response["39"]) == ("0110", "004711", "30")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"126": "00C0000000000000" + CAVV.hex()[:-2] + "11 123"}, "field 126"),
        ({"126": "00C000000000000G" + CAVV.hex() + "11 123"}, "field 126"),
        ({"126": "0440000000000000" + "X" * 34 + "11 123"}, "field 126"),
        ({"126": "0040000000000000" + "11 12X"}, "field 126"),
        ({"60": "0100000005X0"}, "field 60"),
        ({"123": ADDRESS + "X" * 3}, "field 123"),
    ],
    ids=["126.9 cut short", "126 bitmap not hex", "126.6 not hex", "CVV2 not digits",
         "field 60 not digits", "field 123 too long"],
)  # fmt: skip
@pytest.mark.parametrize("dialect", DIALECTS)
def test_malformed_visa_fields_are_answered_30(dialect, extra, named) -> None:
    error = _format_error(peer_encode(web("visa", **extra), dialect), dialect, visa_fields=True)
    assert (error.mti, error.stan) == ("0100", "004711") and named in str(error)
    response = peer_decode(
        encode_format_error(error, get_dialect(dialect, visa_fields=True)), dialect
    )
    assert (response["t"], response["11"], response["39"]) == ("0110", "004711", "30")


def test_field_60_of_a_reversal_is_not_read() -> None:
    """A reversal's field 60 says nothing about how the purchase was authenticated: it is not
    read, whatever it carries."""
    codec = get_dialect(DEFAULT_DIALECT, visa_fields=True)
    for mti in ("0400", "0420"):
        reversal = financial(mti, **{"60": "1410001STAND-IN", "48": "R4203212"})
        request = decode_message(peer_encode(reversal, DEFAULT_DIALECT), codec)
        assert isinstance(request, AuthRequest) and request.authentication == "authenticated"


@pytest.mark.parametrize("mti", ["0120", "0121", "0220", "0221"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_advices_field_60_carries_its_eci_as_a_requests_does(dialect, mti) -> None:
    """A stand-in advice reports a purchase the network decided: its 60.8 is read as an 0100's
    (Visa's field 60 has one layout in every message), and a field 60 not in that layout is
    30, as in an 0100."""
    codec = get_dialect(dialect, visa_fields=True)
    for eci, authentication in (("05", "authenticated"), ("06", "attempted"), ("01", "")):
        advice = financial(mti, **{"60": "01000000" + eci + "00", "39": "00"})
        request = decode_message(peer_encode(advice, dialect), codec)
        assert isinstance(request, AuthRequest) and request.authentication == authentication
    broken = financial(mti, **{"60": "1410001STAND-IN", "39": "00"})
    error = _format_error(peer_encode(broken, dialect), dialect, visa_fields=True)
    assert error.mti == mti and "field 60" in str(error)
    both = financial(mti, **{"60": "010000000500", "48": "R4203212", "39": "00"})
    assert "one layout per value" in str(
        _format_error(peer_encode(both, dialect), dialect, visa_fields=True)
    )
    plain = get_dialect(dialect)  # a listener without Visa's fields reads none of it
    request = decode_message(peer_encode(broken, dialect), plain)
    assert isinstance(request, AuthRequest) and request.authentication == ""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mastercards_network_data_settlement_date_and_tcc_come_back_in_every_dialect(dialect):
    """Mastercard finds an answer's transaction by DE 15 and DE 63 and reads DE 48 TCC first
    (docs/iso.md, "Mastercard's fields"): an answer, a 30 and an 0810 carry them back."""
    codec = get_dialect(dialect)
    sent = {"15": "1130", "48": "T4203212", "63": "MCC12345A   "}
    request = decode_message(peer_encode(financial("0100", **sent), dialect), codec)
    assert isinstance(request, AuthRequest)
    declined = Decision(ResponseCode.DO_NOT_HONOUR, reason_codes=["test"])
    answer = peer_decode(encode_response(request, declined, codec, advice=lambda *_: "03"), dialect)
    assert (answer["15"], answer["63"], answer["48"]) == ("1130", "MCC12345A   ", "T840203")
    broken = peer_encode(financial("0100", **{**sent, "48": "T4209"}), dialect)
    with pytest.raises(FormatError) as error:
        decode_message(broken, codec)
    formatted = encode_format_error(error.value, codec)
    assert formatted is not None
    answer = peer_decode(formatted, dialect)
    assert (answer["39"], answer["15"], answer["63"]) == ("30", "1130", "MCC12345A   ")
    echo = {"t": "0800", "2": "545454", "7": "1125203000", "11": "000001", "63": "MCC1"}
    network = decode_message(peer_encode({**echo, "70": "270"}, dialect), codec)
    assert isinstance(network, NetworkRequest)
    answer = peer_decode(encode_network_response(network, ResponseCode.APPROVED, codec), dialect)
    assert (answer["2"], answer["63"], answer["70"]) == ("545454", "MCC1", "270")
