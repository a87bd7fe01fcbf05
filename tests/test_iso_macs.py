"""MAC placement: field 64, or 128 with a secondary bitmap, covering every byte before it.

The MAC itself is the real ISO 9797-1 algorithm 3 (authhost.security.mac) under a test key;
the expected bytes come from a peer that encodes with its own pyiso8583 spec.
"""

from __future__ import annotations

import pytest
from test_iso_codec import DIALECTS, PAN, financial, peer_decode, peer_encode

from authhost.auth.decision import Decision
from authhost.iso.codec import (
    FormatError,
    decode_fields,
    decode_message,
    encode_format_error,
    encode_network_response,
    encode_request,
    encode_response,
)
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import get_dialect
from authhost.iso.macs import MacPlacementError, mac_field, split_mac
from authhost.security.mac import retail_mac

TEST_MAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # test key, never a real one


def mac(data: bytes) -> bytes:
    return retail_mac(TEST_MAK, data)


def peer_signed(fields: dict, dialect: str, number: str) -> bytes:
    """What a peer sends: encode with a zero MAC, MAC the bytes before it, put it in."""
    size = 16 if dialect == "ascii-hex-bitmap" else 8  # hex text or raw bytes
    unsigned = peer_encode({**fields, number: "00" * 8}, dialect)[:-size]
    value = mac(unsigned)
    return unsigned + (value if size == 8 else value.hex().upper().encode())


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("mti", "number"), [("0200", "64"), ("0400", "128")], ids=["64", "128"])
def test_peer_mac_is_found_and_verifies(dialect: str, mti: str, number: str) -> None:
    body = peer_signed(financial(mti), dialect, number)
    fields = decode_fields(body, get_dialect(dialect))
    covered, received = split_mac(body, fields, get_dialect(dialect))
    assert received == mac(covered)
    assert covered == body[: len(covered)] and len(body) - len(covered) in (8, 16)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_tampered_message_fails_verification(dialect: str) -> None:
    body = bytearray(peer_signed(financial("0200"), dialect, "64"))
    codec = "cp500" if dialect.startswith("ebcdic") else "ascii"
    at = body.index("TERM0001".encode(codec))
    body[at : at + 8] = "TERM0002".encode(codec)
    fields = decode_fields(bytes(body), get_dialect(dialect))
    covered, received = split_mac(bytes(body), fields, get_dialect(dialect))
    assert received != mac(covered)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("mti", "number"), [("0100", "64"), ("0400", "128")], ids=["64", "128"])
def test_signed_request_equals_what_a_peer_signs(dialect: str, mti: str, number: str) -> None:
    fields = financial(mti)
    assert encode_request(fields, get_dialect(dialect), mac=mac) == peer_signed(
        fields, dialect, number
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_signed_responses_verify_for_the_peer(dialect: str) -> None:
    d = get_dialect(dialect)
    request = decode_message(peer_signed(financial("0200"), dialect, "64"), d)
    bodies = [
        encode_response(
            request, Decision(ResponseCode.APPROVED, approval_code="123456"), d, mac=mac
        ),
        encode_network_response(
            decode_message(peer_encode({"t": "0800", "11": "000001", "70": "301"}, dialect), d),
            ResponseCode.APPROVED,
            d,
            mac=mac,
        ),
        encode_format_error(FormatError("bad", mti="0200", stan="000009"), d, mac=mac),
    ]
    size = 16 if dialect == "ascii-hex-bitmap" else 8  # hex text or raw bytes
    for body in bodies:
        assert body is not None
        response = peer_decode(body, dialect)
        number = "128" if "70" in response else "64"  # 0810 has a secondary bitmap
        assert bytes.fromhex(response[number]) == mac(body[:-size])
        assert PAN.encode() not in body


def test_mac_field_follows_the_bitmap() -> None:
    assert mac_field({"t": "0200", "2": PAN, "64": ""}) == "64"
    assert mac_field({"t": "0400", "90": "x", "128": ""}) == "128"


@pytest.mark.parametrize(
    "fields",
    [
        {"t": "0200", "11": "000001"},
        {"t": "0400", "11": "000001", "90": "0" * 42, "64": "00" * 8},
        {"t": "0200", "11": "000001", "64": "0011"},
    ],
    ids=["no MAC", "64 with a secondary bitmap", "MAC too short"],
)
def test_misplaced_mac_is_refused(fields: dict) -> None:
    with pytest.raises(MacPlacementError):
        split_mac(b"", fields, get_dialect("ascii-hex-bitmap"))
