"""A reader waiting for answers to drain is woken by answers that could not be sent as well
as by those that were."""

from __future__ import annotations

import trio
from test_server_support import SwitchClient, financial_fields, frame, running_server, server_config

from authhost.auth.decision import Decision
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest, Balance
from authhost.server.connection import MAX_UNSENT
from authhost.server.metrics import ServerMetrics


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
