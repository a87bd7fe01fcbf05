"""A peer that stops reading its answers gives up its connection slot after idle_timeout_s,
as a silent one does; and a reader waiting for answers to drain is woken by answers that
could not be sent as well as by those that were."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct

import trio
from test_server_support import (
    SwitchClient,
    financial_fields,
    frame,
    network_fields,
    running_server,
    server_config,
)
from test_server_tls import client_context, pki  # noqa: F401 - the fixture

from authhost.auth.decision import Decision
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest, Balance
from authhost.server.connection import MAX_UNSENT
from authhost.server.metrics import ServerMetrics


async def _connect_reading_little(address: tuple[str, int]) -> trio.SocketStream:
    """A connection whose receive buffer is small, so that unread answers fill it soon."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(address)
    return trio.SocketStream(sock)


async def _flood(stream: trio.abc.Stream, data: bytes) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(data)  # until the server closes the link under it


async def test_a_peer_that_stops_reading_is_closed_after_the_idle_timeout() -> None:
    """20,000 echo tests and not one answer read: the writer makes no progress, and with it
    the reader waits for room; after idle_timeout_s the link closes and frees its slot."""
    metrics = ServerMetrics()
    config = server_config(idle_timeout_s=1.0, max_connections=1)
    async with running_server(config=config, metrics=metrics) as server:
        (address,) = server.addresses
        echo = frame(SwitchClient(None).encode(network_fields("301", "000001")))  # type: ignore[arg-type]
        stalled = await _connect_reading_little(address)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_flood, stalled, echo * 20_000)
            with trio.fail_after(60):  # a bound for a hang, not a speed
                while not metrics.connections_closed.labels("stalled")._value.get():  # noqa: SLF001
                    await trio.sleep(0.05)
                while metrics.connection_count:
                    await trio.sleep(0.05)
            async with SwitchClient.connect(address) as second:  # the slot is free again
                assert (await second.request(financial_fields("0100", "000002")))["39"] == "00"
            nursery.cancel_scope.cancel()
        await stalled.aclose()
    assert metrics.connections_refused.labels("too_many")._value.get() == 0  # noqa: SLF001


async def test_a_tls_peer_that_stops_reading_is_closed_after_the_idle_timeout(pki) -> None:  # noqa: F811
    """The same over TLS, where the answers go through the TLS stream a piece at a time."""
    metrics = ServerMetrics()
    host = pki["host"]
    config = server_config(idle_timeout_s=1.0, tls_cert_file=str(host),
                           tls_key_file=str(host.with_suffix(".key")))  # fmt: skip
    async with running_server(config=config, metrics=metrics) as server:
        (address,) = server.addresses
        context: ssl.SSLContext = client_context(pki, None)
        stalled = trio.SSLStream(
            await _connect_reading_little(address), context, server_hostname="127.0.0.1"
        )
        await stalled.do_handshake()
        echo = frame(SwitchClient(None).encode(network_fields("301", "000001")))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_flood, stalled, echo * 20_000)
            with trio.fail_after(60):  # a bound for a hang, not a speed
                while not metrics.connections_closed.labels("stalled")._value.get():  # noqa: SLF001
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        await trio.aclose_forcefully(stalled)


async def test_a_peer_that_resets_while_its_answers_wait_is_a_reset(caplog) -> None:
    """The answers wait for room in the socket when the peer resets the link: closed as a
    reset, the server serving on, no connection failure logged."""
    metrics = ServerMetrics()
    config = server_config(idle_timeout_s=30.0)
    async with running_server(config=config, metrics=metrics) as server:
        (address,) = server.addresses
        echo = frame(SwitchClient(None).encode(network_fields("301", "000001")))  # type: ignore[arg-type]
        stream = await _connect_reading_little(address)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_flood, stream, echo * 20_000)
            with trio.fail_after(30):  # a bound for a hang, not a speed
                while metrics.in_flight_count + metrics.connection_count < 1:
                    await trio.sleep(0.01)
                await trio.sleep(0.5)  # the answers have filled the buffers by now
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            nursery.cancel_scope.cancel()
        stream.socket.close()  # with unread data and linger 0: a reset
        with trio.fail_after(30):
            while metrics.connection_count:
                await trio.sleep(0.05)
        async with SwitchClient.connect(address) as client:
            assert (await client.request(financial_fields("0100", "000002")))["39"] == "00"
    assert metrics.connections_closed.labels("reset")._value.get() == 1  # noqa: SLF001
    assert "connection failed" not in caplog.text


async def test_requests_in_flight_when_a_stalled_link_closes_are_still_decided() -> None:
    """The link is closed for not reading, not broken: what was being decided is decided
    (and so journalled by the pipeline), not cancelled halfway."""
    decided: list[str] = []
    started = trio.Event()

    async def slow(request: AuthRequest, received_at: float) -> Decision:
        if request.stan == "000100":
            started.set()
            await trio.sleep(2.5)  # past the 1 s idle timeout, inside the 5 s deadline
        decided.append(request.stan or "")
        return Decision(ResponseCode.APPROVED, approval_code="A1B2C3")

    metrics = ServerMetrics()
    config = server_config(idle_timeout_s=1.0, deadline_ms=5000)
    async with running_server(slow, config=config, metrics=metrics) as server:
        (address,) = server.addresses
        stalled = await _connect_reading_little(address)
        client = SwitchClient(stalled)
        await client.send(financial_fields("0100", "000100"))
        await started.wait()
        echo = frame(client.encode(network_fields("301", "000001")))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_flood, stalled, echo * 20_000)
            with trio.fail_after(60):
                while metrics.connection_count:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        await stalled.aclose()
    assert metrics.connections_closed.labels("stalled")._value.get() == 1  # noqa: SLF001
    assert "000100" in decided


async def test_answers_too_large_to_send_still_make_room_for_more_requests() -> None:
    """Each answer over max_frame is logged and dropped; the reader, stopped at MAX_UNSENT
    answers outstanding, must still read on: the request after them is answered."""
    too_big = [Balance("00", "01", "978", n) for n in range(6)]  # 120 characters of field 54
    release = trio.Event()

    async def answer(request: AuthRequest, received_at: float) -> Decision:
        if request.stan == "999999":
            return Decision(ResponseCode.APPROVED, approval_code="A1B2C3")
        await release.wait()  # held until the reader has stopped at MAX_UNSENT
        return Decision(ResponseCode.APPROVED, approval_code="A1B2C3", balances=too_big)

    metrics = ServerMetrics()
    # a request fits, its answer with balances does not
    config = server_config(max_frame=200, deadline_ms=20_000)
    async with (
        running_server(answer, config=config, metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        request = frame(client.encode(financial_fields("0100", "000001")))
        assert len(request) - 2 < 200
        await client.send_raw(request * (MAX_UNSENT + 100))
        with trio.fail_after(30):  # a bound for a hang, not a speed
            while metrics.in_flight_count < MAX_UNSENT:  # the reader waits for room now
                await trio.sleep(0.01)
            await client.send(financial_fields("0100", "999999"))
            release.set()
            response = await client.receive()
        assert (response["11"], response["39"]) == ("999999", "00")
