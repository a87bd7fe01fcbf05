"""Length-prefixed framing: any split of the byte stream gives the same frames; bad headers
and oversize frames are a FrameError (the server closes the link)."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.iso.framing import (
    DEFAULT_TPDU,
    FrameDecoder,
    FrameError,
    Framing,
    encode_frame,
    swap_tpdu,
)

FRAMINGS = [
    Framing("binary2"),
    Framing("ascii4"),
    Framing("binary2", tpdu=True),
    Framing("ascii4", tpdu=True),
]
IDS = ["binary2", "ascii4", "binary2+tpdu", "ascii4+tpdu"]
TPDU = b"\x60\x00\x03\x00\x07"


def independent_frame(body: bytes, framing: Framing, tpdu: bytes = TPDU) -> bytes:
    """A frame written without authhost's encoder."""
    payload = (tpdu if framing.tpdu else b"") + body
    head = (
        struct.pack(">H", len(payload)) if framing.header == "binary2" else b"%04d" % len(payload)
    )
    return head + payload


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


@pytest.mark.parametrize("framing", FRAMINGS, ids=IDS)
def test_byte_at_a_time_feeding_yields_each_frame_once(framing: Framing) -> None:
    bodies = [b"0800first", b"0200" + bytes(range(256)), b"x"]
    stream = b"".join(independent_frame(b, framing) for b in bodies)
    decoder = FrameDecoder(framing)
    frames = []
    for byte in stream:
        decoder.feed(bytes([byte]))
        frames.extend(drain(decoder))
    assert frames == bodies
    assert decoder.buffered == 0
    if framing.tpdu:
        assert decoder.last_tpdu == TPDU


@pytest.mark.parametrize("framing", FRAMINGS, ids=IDS)
def test_many_frames_in_one_feed(framing: Framing) -> None:
    bodies = [b"%04d" % i for i in range(100)]
    decoder = FrameDecoder(framing)
    decoder.feed(b"".join(independent_frame(b, framing) for b in bodies))
    assert drain(decoder) == bodies


@settings(max_examples=100, deadline=None)
@given(
    bodies=st.lists(st.binary(min_size=1, max_size=200), max_size=10),
    cuts=st.lists(st.integers(0, 3000), max_size=20),
    framing=st.sampled_from(FRAMINGS),
)
def test_any_split_of_the_stream_gives_the_same_frames(
    bodies: list[bytes], cuts: list[int], framing: Framing
) -> None:
    stream = b"".join(encode_frame(b, framing, TPDU if framing.tpdu else None) for b in bodies)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder(framing)
    frames = []
    for start, end in zip(points, points[1:], strict=False):
        decoder.feed(stream[start:end])
        frames.extend(drain(decoder))
    assert frames == bodies


@pytest.mark.parametrize("framing", FRAMINGS, ids=IDS)
def test_encode_frame_matches_an_independent_framer(framing: Framing) -> None:
    body = b"0810" + bytes(20)
    assert encode_frame(body, framing, TPDU if framing.tpdu else None) == independent_frame(
        body, framing
    )


def test_response_tpdu_swaps_destination_and_source() -> None:
    assert swap_tpdu(b"\x60\x00\x03\x00\x07") == b"\x60\x00\x07\x00\x03"
    framing = Framing("binary2", tpdu=True)
    decoder = FrameDecoder(framing)
    decoder.feed(independent_frame(b"0800", framing))
    assert decoder.next_frame() == b"0800"
    reply = encode_frame(b"0810", framing, swap_tpdu(decoder.last_tpdu))
    assert reply == b"\x00\x09\x60\x00\x07\x00\x03" + b"0810"


def test_a_tpdu_framing_without_a_request_tpdu_writes_the_default() -> None:
    assert encode_frame(b"0810", Framing("ascii4", tpdu=True)) == b"0009" + DEFAULT_TPDU + b"0810"


def test_zero_length_frames_are_keep_alives() -> None:
    decoder = FrameDecoder(Framing("binary2"))
    decoder.feed(b"\x00\x00\x00\x00\x00\x040800\x00\x00")
    assert drain(decoder) == [b"0800"]


@pytest.mark.parametrize(
    ("framing", "header"),
    [(Framing("binary2", max_frame=100), b"\x00\x65"), (Framing("ascii4", max_frame=100), b"0101")],
    ids=["binary2", "ascii4"],
)
def test_oversize_frame_is_refused_from_its_header_alone(framing: Framing, header: bytes) -> None:
    decoder = FrameDecoder(framing)
    decoder.feed(header)  # the body has not arrived: refuse before buffering it
    with pytest.raises(FrameError, match="exceeds the maximum of 100"):
        decoder.next_frame()


def test_frame_at_the_maximum_is_accepted() -> None:
    decoder = FrameDecoder(Framing("binary2", max_frame=100))
    decoder.feed(b"\x00\x64" + bytes(100))
    assert decoder.next_frame() == bytes(100)


@pytest.mark.parametrize("header", [b"00a1", b" 012", b"-001", b"\xff\xff\xff\xff"])
def test_non_digit_ascii_header_is_a_frame_error(header: bytes) -> None:
    decoder = FrameDecoder(Framing("ascii4"))
    decoder.feed(header + b"0800")
    with pytest.raises(FrameError, match="not 4 ASCII digits"):
        decoder.next_frame()


def test_tpdu_frame_shorter_than_its_tpdu_is_a_frame_error() -> None:
    decoder = FrameDecoder(Framing("binary2", tpdu=True))
    decoder.feed(b"\x00\x03abc")
    with pytest.raises(FrameError, match="too short for its TPDU"):
        decoder.next_frame()


def test_incomplete_frame_waits_and_reports_what_is_buffered() -> None:
    decoder = FrameDecoder(Framing("binary2"))
    decoder.feed(b"\x00\x10half")
    assert decoder.next_frame() is None
    assert decoder.buffered == 6


def test_encoding_a_frame_over_the_maximum_is_refused() -> None:
    with pytest.raises(FrameError):
        encode_frame(bytes(101), Framing("binary2", max_frame=100))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"header": "binary4"}, "unknown framing 'binary4'"),
        ({"header": "ascii4", "max_frame": 10000}, "between 1 and 9999"),
        ({"max_frame": 0}, "between 1 and 65535"),
    ],
)
def test_invalid_framing_settings_are_refused_with_the_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Framing(**kwargs)


def test_framing_from_a_listener_config() -> None:
    listener = SimpleNamespace(framing="ascii4", tpdu=True, max_frame=4096)
    assert Framing.from_config(listener) == Framing("ascii4", tpdu=True, max_frame=4096)
