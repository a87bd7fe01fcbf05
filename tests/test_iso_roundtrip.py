"""Whole wire path without a socket: an independent peer's frame in, a frame it can read out.

Every message class, both dialects, every framing (with and without TPDU): the peer frames
and encodes with its own code and pyiso8583 specs; authhost unframes, decodes, answers,
encodes and frames; the peer unframes and decodes the answer.
"""

from __future__ import annotations

import struct

import pytest
from test_iso_codec import CLASSES, DIALECTS, SENSITIVE, financial, peer_decode, peer_encode

from authhost.auth.decision import Decision
from authhost.iso.codec import decode_message, encode_network_response, encode_response
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import get_dialect
from authhost.iso.framing import FrameDecoder, Framing, encode_frame, swap_tpdu
from authhost.iso.messages import AuthRequest, NetworkRequest

FRAMINGS = {
    "binary2": Framing("binary2"),
    "ascii4": Framing("ascii4"),
    "binary2+tpdu": Framing("binary2", tpdu=True),
    "ascii4+tpdu": Framing("ascii4", tpdu=True),
}
REQUEST_TPDU = b"\x60\x00\x12\x00\x34"  # to NII 0x0012 from NII 0x0034


def peer_frame(body: bytes, framing: Framing) -> bytes:
    payload = (REQUEST_TPDU if framing.tpdu else b"") + body
    if framing.header == "binary2":
        return struct.pack(">H", len(payload)) + payload
    return b"%04d" % len(payload) + payload


def peer_unframe(data: bytes, framing: Framing) -> tuple[bytes | None, bytes]:
    """(TPDU or None, body) of exactly one frame."""
    if framing.header == "binary2":
        size, payload = struct.unpack(">H", data[:2])[0], data[2:]
    else:
        size, payload = int(data[:4]), data[4:]
    assert size == len(payload)
    if framing.tpdu:
        return payload[:5], payload[5:]
    return None, payload


def serve_one(wire: bytes, framing: Framing, dialect: str, decision: Decision) -> bytes:
    """What the server does with one frame, with the iso API only."""
    decoder = FrameDecoder(framing)
    decoder.feed(wire)
    body = decoder.next_frame()
    assert body is not None
    request = decode_message(body, get_dialect(dialect))
    if isinstance(request, NetworkRequest):
        reply = encode_network_response(request, ResponseCode.APPROVED, get_dialect(dialect))
    else:
        reply = encode_response(request, decision, get_dialect(dialect))
    tpdu = swap_tpdu(decoder.last_tpdu) if framing.tpdu and decoder.last_tpdu else None
    return encode_frame(reply, framing, tpdu)


@pytest.mark.parametrize("framing_name", FRAMINGS)
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("mti", "message_class", "reply_mti"), CLASSES, ids=[c[0] for c in CLASSES]
)
def test_financial_round_trip(
    framing_name: str, dialect: str, mti: str, message_class, reply_mti: str
) -> None:
    framing = FRAMINGS[framing_name]
    fields = financial(mti)
    decision = Decision(ResponseCode.APPROVED, approval_code="654321")

    out = serve_one(peer_frame(peer_encode(fields, dialect), framing), framing, dialect, decision)

    tpdu, body = peer_unframe(out, framing)
    if framing.tpdu:
        assert tpdu == b"\x60\x00\x34\x00\x12", "the response goes back to where it came from"
    response = peer_decode(body, dialect)
    assert response["t"] == reply_mti
    assert (response["11"], response["37"], response["38"], response["39"]) == (
        fields["11"],
        fields["37"],
        "654321",
        "00",
    )
    assert not set(SENSITIVE) & set(response)
    assert fields["2"].encode() not in out


@pytest.mark.parametrize("framing_name", FRAMINGS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_network_round_trip(framing_name: str, dialect: str) -> None:
    framing = FRAMINGS[framing_name]
    fields = {"t": "0800", "7": "1125203000", "11": "000099", "70": "301"}
    out = serve_one(
        peer_frame(peer_encode(fields, dialect), framing),
        framing,
        dialect,
        Decision(ResponseCode.APPROVED),
    )
    _, body = peer_unframe(out, framing)
    response = peer_decode(body, dialect)
    assert (response["t"], response["11"], response["39"], response["70"]) == (
        "0810",
        "000099",
        "00",
        "301",
    )


def test_decoded_request_keeps_the_typed_view_independent_of_dialect() -> None:
    """The same request in every dialect gives the same typed view."""
    views = [decode_message(peer_encode(financial("0200"), d), get_dialect(d)) for d in DIALECTS]
    assert len(views) == 4 and all(isinstance(v, AuthRequest) for v in views)
    first = views[0]
    assert first.track2 and "=" in first.track2
    for other in views[1:]:
        assert other == first
        assert (other.pin_block, other.icc_data, other.track2) == (
            first.pin_block,
            first.icc_data,
            first.track2,
        )
