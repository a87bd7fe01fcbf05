"""Length-prefixed framing: split a TCP byte stream into ISO 8583 message bodies and back.

Sans-I/O in the h11 style: the server feeds whatever bytes arrived into a ``FrameDecoder``
and asks for complete frames; ``encode_frame`` turns a body into bytes to send. A frame is

    length header | [5-byte TPDU] | ISO 8583 message

where the header is ``binary2`` (2-byte big-endian) or ``ascii4`` (4 ASCII digits) and
counts the bytes after it (TPDU included). A zero-length frame is a keep-alive that some
switches send on idle links: it is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEADERS: dict[str, int] = {"binary2": 2, "ascii4": 4}
TPDU_SIZE = 5
DEFAULT_MAX_FRAME = 8192
# A TPDU for responses when the caller has none to answer: id 0x60, destination and source 0.
DEFAULT_TPDU = b"\x60\x00\x00\x00\x00"
_LARGEST = {"binary2": 0xFFFF, "ascii4": 9999}


class FrameError(ValueError):
    """The byte stream cannot be framed (bad header, oversize): the link must be closed."""


@dataclass(frozen=True, slots=True)
class Framing:
    """How one listener delimits messages: header kind, optional TPDU, largest frame."""

    header: str = "binary2"
    tpdu: bool = False
    max_frame: int = DEFAULT_MAX_FRAME

    def __post_init__(self) -> None:
        if self.header not in HEADERS:
            known = ", ".join(HEADERS)
            raise ValueError(f"unknown framing {self.header!r}; known framings: {known}")
        if not 0 < self.max_frame <= _LARGEST[self.header]:
            raise ValueError(
                f"max_frame must be between 1 and {_LARGEST[self.header]} for "
                f"{self.header} framing, got {self.max_frame}"
            )

    @classmethod
    def from_config(cls, listener: Any) -> Framing:
        """From a listener config (``framing``, ``tpdu``, ``max_frame`` attributes)."""
        return cls(
            header=listener.framing,
            tpdu=bool(listener.tpdu),
            max_frame=int(listener.max_frame),
        )

    @property
    def header_size(self) -> int:
        return HEADERS[self.header]


def swap_tpdu(tpdu: bytes) -> bytes:
    """A response's TPDU: the request's with destination and source addresses swapped."""
    if len(tpdu) != TPDU_SIZE:
        raise ValueError(f"a TPDU is {TPDU_SIZE} bytes, got {len(tpdu)}")
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def encode_frame(body: bytes, framing: Framing, tpdu: bytes | None = None) -> bytes:
    """Length header (+ TPDU when the framing has one) + body.

    ``tpdu`` is written as given: pass ``swap_tpdu(request_tpdu)`` to answer a request.
    Without one, a framing with TPDUs writes ``DEFAULT_TPDU``.
    """
    if framing.tpdu:
        if tpdu is None:
            tpdu = DEFAULT_TPDU
        elif len(tpdu) != TPDU_SIZE:
            raise ValueError(f"a TPDU is {TPDU_SIZE} bytes, got {len(tpdu)}")
        body = tpdu + body
    size = len(body)
    if size > framing.max_frame:
        raise FrameError(f"frame of {size} bytes exceeds the maximum of {framing.max_frame}")
    if framing.header == "binary2":
        return size.to_bytes(2, "big") + body
    return b"%04d" % size + body


class FrameDecoder:
    """Incremental frame splitter: ``feed(data)`` then ``next_frame()`` until it returns None.

    ``next_frame`` returns a message body (TPDU removed) or None when no complete frame is
    buffered; it raises FrameError for a bad length header or a frame over ``max_frame``,
    after which the decoder is unusable (the connection should close). The TPDU of the frame
    just returned is in ``last_tpdu``. Zero-length frames (keep-alives) are skipped but
    counted in ``keep_alives``: they are a sign of life for an idle timeout.
    """

    __slots__ = ("_framing", "_buffer", "_pos", "_header", "_ascii", "_tpdu", "_max", "last_tpdu",
                 "keep_alives")  # fmt: skip

    def __init__(self, framing: Framing) -> None:
        self._framing = framing
        self._buffer = bytearray()
        self._pos = 0
        self._header = framing.header_size
        self._ascii = framing.header == "ascii4"
        self._tpdu = framing.tpdu
        self._max = framing.max_frame
        self.last_tpdu: bytes | None = None
        self.keep_alives = 0

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos >= len(self._buffer) // 2:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (non-zero at EOF = truncated)."""
        return len(self._buffer) - self._pos

    def next_frame(self) -> bytes | None:
        buffer = self._buffer
        while True:
            pos = self._pos
            start = pos + self._header
            if len(buffer) < start:
                return None
            if self._ascii:
                text = bytes(buffer[pos:start])
                if not text.isdigit():
                    raise FrameError(f"length header {text!r} is not 4 ASCII digits")
                size = int(text)
            else:
                size = (buffer[pos] << 8) | buffer[pos + 1]
            if size > self._max:
                raise FrameError(f"frame of {size} bytes exceeds the maximum of {self._max}")
            end = start + size
            if len(buffer) < end:
                return None
            self._pos = end
            if size == 0:
                self.keep_alives += 1
                continue
            if self._tpdu:
                if size < TPDU_SIZE:
                    raise FrameError(f"frame of {size} bytes is too short for its TPDU")
                self.last_tpdu = bytes(buffer[start : start + TPDU_SIZE])
                start += TPDU_SIZE
            return bytes(buffer[start:end])
