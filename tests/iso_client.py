"""A minimal switch for the end-to-end tests: pyiso8583's own `default` spec (8-byte binary
bitmap, the ascii-binary-bitmap dialect), or for another ``dialect`` the independent peers of
``iso_peers`` (the hand-written jPOS ISO87BPackager one for BCD), and a 2-byte length header, independent of authhost's
encoder, so the tests check the host against the wire format rather than against itself."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import iso8583
import trio
from iso8583.specs import default as SPEC
from iso_peers import peer_decode, peer_encode

SPEC = {**SPEC, "53": {**SPEC["53"], "len_type": 2, "max_len": 48}}  # KSN as LLVAR hex text
_stans = itertools.count(1)


def next_stan() -> str:
    return f"{next(_stans) % 1_000_000:06d}"


class Switch:
    """One TCP connection to the host; ``send`` returns the decoded response."""

    def __init__(self, stream: trio.SocketStream, dialect: str = "") -> None:
        self.stream = stream
        self.dialect = dialect  # "": pyiso8583's default spec, as above
        self._buffer = b""

    @classmethod
    async def connect(cls, port: int, dialect: str = "") -> Switch:
        return cls(await trio.open_tcp_stream("127.0.0.1", port), dialect)

    def encode(self, fields: dict[str, Any]) -> bytes:
        if self.dialect:
            return peer_encode(fields, self.dialect)
        body, _ = iso8583.encode(dict(fields), SPEC)
        return bytes(body)

    async def send_raw(self, body: bytes) -> None:
        await self.stream.send_all(struct.pack(">H", len(body)) + body)

    async def receive_raw(self) -> bytes:
        """The next response frame's body."""
        while True:
            if len(self._buffer) >= 2:
                (size,) = struct.unpack(">H", self._buffer[:2])
                if len(self._buffer) >= 2 + size:
                    body, self._buffer = self._buffer[2 : 2 + size], self._buffer[2 + size :]
                    return body
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise EOFError("host closed the connection")
            self._buffer += chunk

    async def receive(self) -> dict[str, Any]:
        body = await self.receive_raw()
        if self.dialect:
            return peer_decode(body, self.dialect)
        doc, _ = iso8583.decode(body, SPEC)
        return doc

    async def send(self, fields: dict[str, Any]) -> dict[str, Any]:
        await self.send_raw(self.encode(fields))
        return await self.receive()

    async def send_together(
        self, messages: list[dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """All messages in one write (the host reads them together); the responses by STAN."""
        frames = []
        for fields in messages:
            body = self.encode(fields)
            frames.append(struct.pack(">H", len(body)) + body)
        await self.stream.send_all(b"".join(frames))
        responses: dict[str, list[dict[str, Any]]] = {}
        for _ in messages:
            response = await self.receive()
            responses.setdefault(response["11"], []).append(response)
        return responses

    async def aclose(self) -> None:
        await self.stream.aclose()
