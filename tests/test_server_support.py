"""Shared pieces of the server tests: an independent switch client and a server in a nursery.

The client frames with its own code and encodes with the independent peers of ``iso_peers``,
not with authhost's encoder, so a round trip proves that an independent ISO 8583 peer is understood.
(This module holds no tests of its own.)
"""

from __future__ import annotations

import copy
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import iso8583
import iso8583.specs
import trio
from iso_peers import peer_decode, peer_encode

from authhost.auth.decision import Decision
from authhost.config import Config, ServerConfig
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest
from authhost.server.metrics import ServerMetrics
from authhost.server.server import AuthServer

# ASCII fields, 8-byte binary bitmap, binary PIN block: what most hosts speak.
BINARY_BITMAP_SPEC: dict[str, dict[str, Any]] = copy.deepcopy(iso8583.specs.default)


TEST_PAN = "4000001234567899"  # test BIN 400000, Luhn-valid


def luhn_ok(pan: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


assert luhn_ok(TEST_PAN)


def frame(body: bytes, framing: str = "binary2", tpdu: bytes | None = None) -> bytes:
    """Length header (+ optional TPDU) in front of a message body, written independently."""
    payload = (tpdu or b"") + body
    if framing == "binary2":
        return struct.pack(">H", len(payload)) + payload
    if framing == "ascii4":
        return b"%04d" % len(payload) + payload
    raise ValueError(framing)


def financial_fields(mti: str, stan: str, amount: int = 1000, **extra: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "t": mti,
        "2": TEST_PAN,
        "3": "000000",
        "4": f"{amount:012d}",
        "7": "1125203000",
        "11": stan,
        "12": "203000",
        "13": "1125",
        "14": "2912",
        "22": "051",
        "25": "00",
        "32": "123456",
        "37": f"{int(stan):012d}",
        "41": "TERM0001",
        "42": "MERCHANT0000001",
        "49": "978",
    }
    if mti[:2] == "04":  # reversals carry the original data elements
        fields["90"] = "0100" + stan + "1125203000" + "00000123456" + "00000000000"
    fields.update(extra)
    return fields


def network_fields(code: str, stan: str) -> dict[str, Any]:
    return {"t": "0800", "7": "1125203000", "11": stan, "70": code}


class SwitchClient:
    """A switch's side of one connection: send requests, read responses (any order)."""

    def __init__(
        self,
        stream: trio.SocketStream,
        dialect: str = "ascii-binary-bitmap",
        framing: str = "binary2",
        tpdu: bytes | None = None,
    ) -> None:
        self.stream = stream
        self.dialect = dialect
        self.framing = framing
        self.tpdu = tpdu
        self._buffer = bytearray()
        self.header = 2 if framing == "binary2" else 4

    @classmethod
    @asynccontextmanager
    async def connect(cls, address: tuple[str, int], **kwargs: Any) -> AsyncIterator[SwitchClient]:
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            yield cls(stream, **kwargs)

    def encode(self, fields: dict[str, Any]) -> bytes:
        return peer_encode(fields, self.dialect)

    async def send(self, fields: dict[str, Any]) -> None:
        await self.stream.send_all(frame(self.encode(fields), self.framing, self.tpdu))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive_body(self) -> bytes | None:
        """The next frame body without TPDU, or None at end of stream."""
        while True:
            if len(self._buffer) >= self.header:
                head = bytes(self._buffer[: self.header])
                size = struct.unpack(">H", head)[0] if self.header == 2 else int(head)
                if len(self._buffer) >= self.header + size:
                    payload = bytes(self._buffer[self.header : self.header + size])
                    del self._buffer[: self.header + size]
                    return payload[len(self.tpdu) :] if self.tpdu else payload
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self._buffer += data

    async def receive(self) -> dict[str, Any]:
        body = await self.receive_body()
        assert body is not None, "the server closed the connection"
        return peer_decode(body, self.dialect)

    async def request(self, fields: dict[str, Any]) -> dict[str, Any]:
        await self.send(fields)
        return await self.receive()

    async def closed_by_server(self) -> bool:
        """True when the server closes the stream (after any responses still queued)."""
        with trio.fail_after(5):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return True
                if not data:
                    return True


Handler = Callable[[AuthRequest, float], Awaitable[Decision]]


async def approve(request: AuthRequest, received_at: float) -> Decision:
    """Approve everything, with an approval code (the server's seam filled by a test)."""
    return Decision(ResponseCode.APPROVED, approval_code="A1B2C3")


def server_config(**server: Any) -> Config:
    """A config on a free port (port 0), metrics endpoint off, unless told otherwise."""
    settings: dict[str, Any] = {"port": 0, "metrics_port": 0, "pid_file": ""}
    settings.update(server)
    return Config(server=ServerConfig(**settings))


@asynccontextmanager
async def running_server(
    handler: Handler = approve,
    config: Config | None = None,
    metrics: ServerMetrics | None = None,
) -> AsyncIterator[AuthServer]:
    """An AuthServer serving in a nursery; shut down gracefully on exit."""
    server = AuthServer(config or server_config(), handler, metrics=metrics)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield server
        finally:
            server.shutdown()


@asynccontextmanager
async def approving_runtime(config: Config, *, demo: bool = False) -> AsyncIterator[Any]:
    """A runtime factory for ``authhost.server.process.run`` in a subprocess: a handler that
    takes 300 ms to approve (so that requests are in flight when a signal lands) and a
    reloader that logs. Module level so that spawned ``--workers`` can import it."""
    import logging

    from authhost.runtime import Runtime

    async def slow_approve(request: AuthRequest, received_at: float) -> Decision:
        await trio.sleep(0.3)  # the approval code says which process answered
        return Decision(ResponseCode.APPROVED, approval_code=f"{os.getpid() % 1_000_000:06d}")

    async def reload() -> None:
        logging.getLogger("authhost.test").info("test reloader ran")

    yield Runtime(handler=slow_approve, reloaders=[reload], banner=["test runtime ready"])


@asynccontextmanager
async def store_outage_runtime(config: Config, *, demo: bool = False) -> AsyncIterator[Any]:
    """``approving_runtime``, except that it cannot open while a file ``store-down`` lies
    beside the pid file: a store that is down when a worker is (re)started."""
    from authhost.store.interface import StoreError

    if (Path(config.server.pid_file).parent / "store-down").exists():
        raise StoreError("cannot reach the store (test: store-down)")
    async with approving_runtime(config, demo=demo) as runtime:
        yield runtime


def free_port_number() -> int:
    """A currently free TCP port on 127.0.0.1 (for a subprocess that binds it itself)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
