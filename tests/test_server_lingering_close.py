"""A link the server closes with requests still unread in its socket (a graceful stop, a bad
frame) must not lose the answers it already sent: closing a socket with unread input makes
the kernel send a reset, which throws away the answers still in the send buffer, not yet
delivered. The server sends a FIN after its answers and reads what the peer still sends
(discarding it) until the peer closes or a short time passes; only then does it close."""

from __future__ import annotations

import socket
import struct

import trio
from test_server_support import SwitchClient, financial_fields, frame, running_server, server_config

from authhost.auth.decision import Decision
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest
from authhost.server.metrics import ServerMetrics

COUNT = 500


async def _connect_reading_little(address: tuple[str, int]) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(address)
    return trio.SocketStream(sock)


async def _answers_until_closed(client: SwitchClient) -> list[str]:
    stans = []
    try:
        while (body := await client.receive_body()) is not None:
            stans.append(body[:4].decode() + ":" + str(len(body)))
    except trio.BrokenResourceError:  # a reset: what was not delivered is lost
        pass
    return stans


def _requests(client: SwitchClient, first: int, count: int) -> bytes:
    return b"".join(
        frame(client.encode(financial_fields("0100", f"{i:06d}")))
        for i in range(first, first + count)
    )


async def test_answers_before_a_bad_frame_reach_a_peer_that_sent_more() -> None:
    metrics = ServerMetrics()
    async with running_server(metrics=metrics) as server:
        stream = await _connect_reading_little(server.addresses[0])
        client = SwitchClient(stream)
        # COUNT requests, then a frame over max_frame: the link closes once they are answered
        await stream.send_all(_requests(client, 1, COUNT) + struct.pack(">H", 9000))
        with trio.fail_after(10):  # the bad frame is read: the server reads no more
            while not metrics.format_errors._value.get():  # noqa: SLF001
                await trio.sleep(0.01)
        await stream.send_all(_requests(client, 9000, 5))  # never read by the server
        await trio.sleep(0.5)  # the answers are written, into the kernel's buffers
        with trio.fail_after(20):
            answers = await _answers_until_closed(client)
        await stream.aclose()
    assert len(answers) == COUNT


async def test_a_graceful_stop_delivers_every_answer_to_a_peer_that_sent_more() -> None:
    release = trio.Event()
    seen = 0

    async def held(request: AuthRequest, received_at: float) -> Decision:
        nonlocal seen
        seen += 1
        await release.wait()
        return Decision(ResponseCode.APPROVED, approval_code="A1B2C3")

    config = server_config(deadline_ms=20_000)
    async with running_server(held, config) as server:
        stream = await _connect_reading_little(server.addresses[0])
        client = SwitchClient(stream)
        await stream.send_all(_requests(client, 1, COUNT))
        with trio.fail_after(10):
            while seen < COUNT:
                await trio.sleep(0.01)
        server.shutdown()
        await trio.sleep(0.1)  # the server reads no more
        await stream.send_all(_requests(client, 9000, 5))  # the switch does not know yet
        release.set()
        await trio.sleep(0.5)  # the answers are written, into the kernel's buffers
        with trio.fail_after(20):
            answers = await _answers_until_closed(client)
        await stream.aclose()
    assert len(answers) == COUNT
