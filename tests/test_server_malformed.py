"""Garbage on one connection: answered with 30 where readable, else that link closes; the
server keeps serving every other connection."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_support import (
    SwitchClient,
    approve,
    financial_fields,
    frame,
    running_server,
    server_config,
)

from authhost.server.metrics import ServerMetrics
from authhost.server.server import AuthServer


def _valid_body(stan: str = "000123") -> bytes:
    import copy

    import iso8583
    from test_server_support import BINARY_BITMAP_SPEC

    body, _ = iso8583.encode(copy.deepcopy(financial_fields("0100", stan)), BINARY_BITMAP_SPEC)
    return bytes(body)


def _with_field_64_declared_but_missing() -> bytes:
    body = bytearray(_valid_body("000124"))
    body[4 + 7] |= 0x01  # primary bitmap bit 64 (MAC) set; no MAC follows
    return bytes(body)


def _truncated_after_stan() -> bytes:
    body = _valid_body("000125")
    return body[: body.index(b"TERM0001") + 4]  # cut inside field 41


ANSWERED_WITH_30 = [
    pytest.param(
        _with_field_64_declared_but_missing(), "000124", id="bitmap declares a missing field"
    ),
    pytest.param(_truncated_after_stan(), "000125", id="truncated inside field 41"),
]

CLOSES_THE_LINK = [
    pytest.param(frame(b"01"), id="body too short for an MTI"),
    pytest.param(frame(b"\xff\xfe\x00\x01garbage"), id="binary garbage, no MTI"),
    pytest.param(struct.pack(">H", 9000) + b"x" * 9000, id="oversize frame (9000 > 8192)"),
]


async def _still_serving(server: AuthServer, bystander: SwitchClient, stan: str) -> None:
    response = await bystander.request(financial_fields("0100", stan))
    assert response["39"] == "00", "a connection opened before the garbage still works"
    async with SwitchClient.connect(server.addresses[0]) as fresh:
        response = await fresh.request(financial_fields("0100", stan))
        assert response["39"] == "00", "a new connection works"


@pytest.mark.parametrize(("body", "stan"), ANSWERED_WITH_30)
async def test_readable_garbage_gets_30_and_the_link_lives_on(body: bytes, stan: str) -> None:
    metrics = ServerMetrics()
    async with (
        running_server(metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0]) as bystander,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        await client.send_raw(frame(body))
        response = await client.receive()
        assert (response["t"], response["39"], response["11"]) == ("0110", "30", stan)
        # same connection keeps working
        assert (await client.request(financial_fields("0100", "000999")))["39"] == "00"
        await _still_serving(server, bystander, "000777")
    assert metrics.format_errors._value.get() == 1  # noqa: SLF001


@pytest.mark.parametrize("data", CLOSES_THE_LINK)
async def test_unreadable_garbage_closes_only_that_link(data: bytes) -> None:
    metrics = ServerMetrics()
    async with (
        running_server(metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0]) as bystander,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        await client.send_raw(data)
        assert await client.closed_by_server()
        await _still_serving(server, bystander, "000778")
    assert metrics.format_errors._value.get() >= 1  # noqa: SLF001


async def test_zero_length_frames_are_keep_alives() -> None:
    async with running_server() as server, SwitchClient.connect(server.addresses[0]) as client:
        await client.send_raw(struct.pack(">H", 0) * 3)
        assert (await client.request(financial_fields("0100", "000001")))["39"] == "00"


async def test_bad_ascii_length_header_closes_the_link() -> None:
    config = server_config(framing="ascii4")
    async with (
        running_server(config=config) as server,
        SwitchClient.connect(server.addresses[0], framing="ascii4") as client,
    ):
        await client.send_raw(b"00x9" + b"0" * 20)
        assert await client.closed_by_server()
        async with SwitchClient.connect(server.addresses[0], framing="ascii4") as fresh:
            assert (await fresh.request(financial_fields("0100", "000001")))["39"] == "00"


async def test_responses_already_decided_are_sent_before_a_bad_frame_closes_the_link() -> None:
    async with (
        running_server() as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        good = frame(SwitchClient(client.stream).encode(financial_fields("0100", "000321")))
        await client.send_raw(good + struct.pack(">H", 60000))
        response = await client.receive()
        assert response["11"] == "000321"
        assert await client.closed_by_server()


# -- random bytes (hypothesis): a server in its own thread, a plain blocking client --------


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[tuple[str, int]]:
    server = AuthServer(server_config(), approve)
    started = threading.Event()
    token: list[trio.lowlevel.TrioToken] = []

    async def main() -> None:
        token.append(trio.lowlevel.current_trio_token())
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            started.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield server.addresses[0]
    finally:
        trio.from_thread.run_sync(server.shutdown, trio_token=token[0])
        thread.join(10)


def _exchange(address: tuple[str, int], data: bytes) -> bytes:
    """Send data, half-close, read until the server closes: the server must never hang."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def _good_exchange(address: tuple[str, int]) -> bytes:
    return _exchange(address, frame(_valid_body("000555")))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=300),  # a raw stream: random length headers too
        st.binary(max_size=300).map(frame),  # well framed random bodies
        st.binary(max_size=60).map(lambda b: frame(b"0100" + b)),  # an MTI, then noise
    )
)
def test_random_bytes_never_break_the_server(threaded_server: tuple[str, int], data: bytes) -> None:
    _exchange(threaded_server, data)
    assert b"000555" in _good_exchange(threaded_server)


async def test_a_link_that_ends_inside_a_frame_is_logged_and_counted(caplog) -> None:
    """A switch that half-closes (or whose end goes away) in the middle of a request gets
    the answers to its whole frames; the cut frame, which can have no answer, used to vanish
    without a trace (closed as a plain eof); now it is logged, counted and the close says why."""
    metrics = ServerMetrics()
    async with (
        running_server(metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        whole = frame(client.encode(financial_fields("0100", "000041")))
        await client.send_raw(whole + whole[:30])  # one request, and 30 bytes of another
        await client.stream.send_eof()
        assert (await client.receive())["11"] == "000041"
        assert await client.closed_by_server()
    assert metrics.connections_closed.labels("truncated")._value.get() == 1  # noqa: SLF001
    assert metrics.format_errors._value.get() == 1  # noqa: SLF001
    [line] = [r for r in caplog.records if r.getMessage().startswith("connection ended inside")]
    assert line.__dict__["fields"]["bytes"] == 30  # header included


async def test_a_link_the_switch_resets_is_counted_and_the_server_serves_on() -> None:
    """A switch's end that resets the TCP link (a crash, a firewall's RST) instead of closing
    it: the connection ends as "reset" in the metrics, and the next link is served."""
    metrics = ServerMetrics()
    async with running_server(metrics=metrics) as server:
        address = server.addresses[0]
        async with SwitchClient.connect(address) as client:
            whole = frame(client.encode(financial_fields("0100", "000051")))
            await client.send_raw(whole)
            assert (await client.receive())["11"] == "000051"
            client.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.stream.socket.close()  # RST, not FIN
        with trio.fail_after(5):
            while not metrics.connections_closed.labels("reset")._value.get():  # noqa: SLF001
                await trio.sleep(0.02)
        async with SwitchClient.connect(address) as again:
            await again.send_raw(frame(again.encode(financial_fields("0100", "000052"))))
            assert (await again.receive())["11"] == "000052"
