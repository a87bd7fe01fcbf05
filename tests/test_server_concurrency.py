"""Many requests in flight per connection, answers as soon as decided, deadlines, failures."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

import pytest
import trio
from test_server_support import (
    TEST_PAN,
    SwitchClient,
    financial_fields,
    frame,
    running_server,
    server_config,
)

from authhost.auth.decision import Decision
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest
from authhost.server.logs import JsonFormatter
from authhost.server.metrics import ServerMetrics


async def test_responses_leave_in_decision_order_not_arrival_order() -> None:
    """All requests are in the handler at once; releasing them in reverse order must bring
    the answers back in reverse order on the same connection."""
    count = 12
    entered: list[str] = []
    all_in = trio.Event()
    release = {f"{i:06d}": trio.Event() for i in range(1, count + 1)}

    async def held(request: AuthRequest, received_at: float) -> Decision:
        assert request.stan is not None
        entered.append(request.stan)
        if len(entered) == count:
            all_in.set()
        await release[request.stan].wait()
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    config = server_config(deadline_ms=10_000)
    async with (
        running_server(held, config) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        for stan in release:
            await client.send(financial_fields("0100", stan))
        with trio.fail_after(5):
            await all_in.wait()
        answered = []
        for stan in reversed(release):
            release[stan].set()
            answered.append((await client.receive())["11"])
    assert answered == list(reversed(release))


async def test_one_slow_request_does_not_hold_back_the_others() -> None:
    async def by_amount(request: AuthRequest, received_at: float) -> Decision:
        # the larger the amount, the sooner the decision
        await trio.sleep((10 - (request.amount_minor or 0)) * 0.01)
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    config = server_config(deadline_ms=5_000)
    async with (
        running_server(by_amount, config) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        await client.send(financial_fields("0100", "000001", amount=1))  # slowest
        await client.send(financial_fields("0100", "000002", amount=9))  # fastest
        first = await client.receive()
        second = await client.receive()
    assert (first["11"], second["11"]) == ("000002", "000001")


@pytest.mark.parametrize(
    "pipelined",
    [pytest.param(True, id="both frames in one write"), pytest.param(False, id="one write each")],
)
async def test_deadline_answers_with_timeout_code_and_others_still_pass(pipelined: bool) -> None:
    """Frames read together share one deadline scope, frames read apart get one each: in
    both cases only the stuck request gets 91, the other its own answer."""

    async def stuck_on_big_amounts(request: AuthRequest, received_at: float) -> Decision:
        if (request.amount_minor or 0) > 5000:
            await trio.sleep_forever()
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    metrics = ServerMetrics()
    config = server_config(deadline_ms=50)
    async with (
        running_server(stuck_on_big_amounts, config, metrics) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        stuck = frame(client.encode(financial_fields("0200", "000001", amount=9999)))
        quick = frame(client.encode(financial_fields("0200", "000002", amount=100)))
        if pipelined:
            await client.send_raw(stuck + quick)
        else:
            await client.send_raw(stuck)
            await trio.sleep(0.01)
            await client.send_raw(quick)
        answers = [await client.receive(), await client.receive()]
    # by STAN, not by arrival: on a loaded host the stuck one's deadline may pass before the
    # quick one is even read (one write each), and then its 91 comes first
    by_stan = {answer["11"]: answer for answer in answers}
    assert by_stan["000002"]["39"] == "00"
    assert by_stan["000001"]["39"] == "91"
    assert "38" not in by_stan["000001"]
    assert metrics.timeouts._value.get() == 1  # noqa: SLF001 - the counter's value
    assert metrics.in_flight_count == 0


async def test_configured_timeout_code_is_used() -> None:
    async def never(request: AuthRequest, received_at: float) -> Decision:
        await trio.sleep_forever()
        raise AssertionError

    config = server_config(deadline_ms=20, timeout_response_code="96")
    async with (
        running_server(never, config) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        response = await client.request(financial_fields("0100", "000003"))
    assert response["39"] == "96"


async def test_handler_error_answers_96_logs_no_pan_and_the_connection_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fragile(request: AuthRequest, received_at: float) -> Decision:
        if request.stan == "000001":
            raise RuntimeError(f"store exploded while reading {request.pan}")
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    metrics = ServerMetrics()
    with caplog.at_level(logging.INFO, logger="authhost"):
        async with (
            running_server(fragile, metrics=metrics) as server,
            SwitchClient.connect(server.addresses[0]) as client,
        ):
            failed = await client.request(financial_fields("0100", "000001"))
            fine = await client.request(financial_fields("0100", "000002"))
    assert failed["39"] == "96"
    assert fine["39"] == "00"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "a handler failure must be logged"
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert TEST_PAN not in formatted
    assert "400000******7899" in formatted
    assert metrics.handler_errors._value.get() == 1  # noqa: SLF001


async def test_request_log_line_has_the_fields_operators_need(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json

    with caplog.at_level(logging.INFO, logger="authhost.requests"):
        async with (
            running_server() as server,
            SwitchClient.connect(server.addresses[0]) as client,
        ):
            await client.request(financial_fields("0100", "000042"))
    [record] = [r for r in caplog.records if r.name == "authhost.requests"]
    line = json.loads(JsonFormatter().format(record))
    assert line["mti"] == "0100"
    assert line["stan"] == "000042"
    assert line["rc"] == "00"
    assert line["pan"] == "400000******7899"
    assert isinstance(line["latency_us"], int) and line["latency_us"] >= 0


async def test_many_connections_many_requests() -> None:
    async def quick(request: AuthRequest, received_at: float) -> Decision:
        await trio.sleep(0.001)
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    results: dict[int, set[str]] = {}

    async def one_switch(server_address: tuple[str, int], index: int) -> None:
        async with SwitchClient.connect(server_address) as client:
            stans = {f"{index * 1000 + i:06d}" for i in range(25)}
            for stan in stans:
                await client.send(financial_fields("0100", stan))
            got = set()
            for _ in stans:
                got.add((await client.receive())["11"])
            results[index] = got ^ stans

    async with running_server(quick) as server, trio.open_nursery() as nursery:
        for index in range(8):
            nursery.start_soon(one_switch, server.addresses[0], index)
    assert results == {i: set() for i in range(8)}


async def test_a_peer_that_does_not_read_answers_is_not_read_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Back-pressure: with MAX_UNSENT answers outstanding the server stops reading that peer
    (its requests wait in TCP buffers) instead of queueing without bound."""
    import authhost.server.connection as connection_module

    monkeypatch.setattr(connection_module, "MAX_UNSENT", 10)
    seen, release, held = _held_until_released()

    config = server_config(deadline_ms=10_000)
    async with (
        running_server(held, config) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        first = b"".join(
            frame(client.encode(financial_fields("0100", f"{i:06d}"))) for i in range(1, 11)
        )
        rest = b"".join(
            frame(client.encode(financial_fields("0100", f"{i:06d}"))) for i in range(11, 21)
        )
        await client.send_raw(first)
        with trio.fail_after(5):
            while len(seen) < 10:
                await trio.sleep(0.005)
        await client.send_raw(rest)
        await trio.sleep(0.1)
        assert len(seen) == 10, "over the limit: the next frames stay unread"
        release.set()
        stans = {(await client.receive())["11"] for _ in range(20)}
    assert stans == {f"{i:06d}" for i in range(1, 21)}


async def test_answers_a_full_socket_cannot_take_are_sent_whole_and_in_order_later() -> None:
    """Answers are written at once while the socket has room; a peer that reads nothing for a
    while fills it, and the rest must wait in the writer, after what is already waiting, and
    reach the peer whole: every frame intact, each answer once, in the order decided."""
    count = 1_000  # under MAX_UNSENT: all are read and decided while the peer reads none
    order: list[str] = []

    async def at_once(request: AuthRequest, received_at: float) -> Decision:
        assert request.stan is not None
        order.append(request.stan)
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    async with running_server(at_once, server_config(deadline_ms=10_000)) as server:
        with socket.socket() as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
            raw.connect(server.addresses[0])
            raw.setblocking(False)
            client = SwitchClient(trio.SocketStream(trio.socket.from_stdlib_socket(raw)))
            requests = b"".join(
                frame(client.encode(financial_fields("0100", f"{i:06d}")))
                for i in range(1, count + 1)
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send_raw, requests)
                with trio.fail_after(10):
                    while len(order) < count:  # all decided while the peer reads nothing
                        await trio.sleep(0.01)
            with trio.fail_after(10):
                received = [(await client.receive())["11"] for _ in range(count)]
    answered_bytes = count * len(frame(client.encode(financial_fields("0110", "000001"))))
    assert answered_bytes > 100_000  # far beyond a 4 KB receive and a 16 KB send buffer
    assert received == order


async def test_a_decision_that_cannot_be_encoded_is_answered_96() -> None:
    async def bad_approval_code(request: AuthRequest, received_at: float) -> Decision:
        # field 38 is 6 characters (a shorter code is space-filled): 7 cannot be sent
        return Decision(ResponseCode.APPROVED, approval_code="1234567")

    async with (
        running_server(bad_approval_code) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        response = await client.request(financial_fields("0100", "000001"))
        assert (response["39"], response["11"]) == ("96", "000001")
        assert (await client.request(financial_fields("0100", "000002")))["39"] == "96"


class Together:
    """A handler that decides the frames of one read together (``DecidesTogether``): it
    records each call's STANs; amount 9999 fails, 8888 makes the whole call hang."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, request: AuthRequest, received_at: float) -> Decision:
        (outcome,) = await self.decide_many([request], received_at)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def decide_many(
        self, requests: list[AuthRequest], received_at: float
    ) -> list[Decision | Exception]:
        self.calls.append([r.stan or "" for r in requests])
        if any(r.amount_minor == 8888 for r in requests):
            await trio.sleep_forever()
        return [
            RuntimeError(f"cannot decide {r.pan}")
            if r.amount_minor == 9999
            else Decision(ResponseCode.APPROVED, approval_code=f"A{r.stan}"[-6:])
            for r in requests
        ]


async def test_frames_read_together_are_decided_in_one_call_and_fail_alone() -> None:
    handler = Together()
    metrics = ServerMetrics()
    async with (
        running_server(handler, metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        amounts = {"000001": 100, "000002": 9999, "000003": 300}
        await client.send_raw(
            b"".join(
                frame(client.encode(financial_fields("0200", stan, amount=amount)))
                for stan, amount in amounts.items()
            )
        )
        answers = {}
        for _ in amounts:
            response = await client.receive()
            answers[response["11"]] = (response["39"], response.get("38"))
        alone = await client.request(financial_fields("0200", "000004"))
    assert handler.calls[0] == ["000001", "000002", "000003"]  # one call for the read
    assert answers == {
        "000001": ("00", "000001"),
        "000002": ("96", None),  # its failure is its own
        "000003": ("00", "000003"),
    }
    assert alone["39"] == "00"
    assert metrics.handler_errors._value.get() == 1  # noqa: SLF001
    assert metrics.in_flight_count == 0


async def test_frames_read_together_share_the_deadline() -> None:
    handler = Together()
    metrics = ServerMetrics()
    async with (
        running_server(handler, server_config(deadline_ms=50), metrics) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        await client.send_raw(
            frame(client.encode(financial_fields("0200", "000001", amount=8888)))
            + frame(client.encode(financial_fields("0200", "000002", amount=100)))
        )
        codes = sorted([(await client.receive())["39"] for _ in range(2)])
    assert codes == ["91", "91"]
    assert metrics.timeouts._value.get() == 2  # noqa: SLF001
    assert metrics.in_flight_count == 0


async def test_time_the_server_spent_not_reading_does_not_count_as_the_peer_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With MAX_UNSENT answers outstanding the server stops reading; the peer's next requests
    wait in the socket. That pause is the server's, not the peer's silence: a pause longer
    than idle_timeout_s used to close the link as idle the moment reading resumed, with the
    requests the peer had sent left unread and unanswered."""
    import authhost.server.connection as connection_module

    monkeypatch.setattr(connection_module, "MAX_UNSENT", 10)
    seen, release, held = _held_until_released()

    metrics = ServerMetrics()
    config = server_config(deadline_ms=20_000, idle_timeout_s=0.5)
    async with (
        running_server(held, config, metrics) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        first, rest = (
            b"".join(frame(client.encode(financial_fields("0100", f"{i:06d}"))) for i in stans)
            for stans in (range(1, 11), range(11, 21))
        )
        await client.send_raw(first)
        with trio.fail_after(5):
            while len(seen) < 10:
                await trio.sleep(0.005)
        await client.send_raw(rest)  # unread: the reader waits for room now
        await trio.sleep(1.5)  # three idle timeouts long
        release.set()
        with trio.fail_after(10):
            stans = {(await client.receive())["11"] for _ in range(20)}
    assert stans == {f"{i:06d}" for i in range(1, 21)}
    assert metrics.connections_closed.labels("idle")._value.get() == 0  # noqa: SLF001


def _held_until_released() -> tuple[list[str], trio.Event, Callable[..., Awaitable[Decision]]]:
    """A handler that records each request's STAN and answers none until ``release`` is set."""
    seen: list[str] = []
    release = trio.Event()

    async def held(request: AuthRequest, received_at: float) -> Decision:
        assert request.stan is not None
        seen.append(request.stan)
        await release.wait()
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    return seen, release, held
