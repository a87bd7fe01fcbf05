"""Decisions slower than ``server.slow_ms`` are logged with their time per step, at most ten
lines a second, each saying how many it held back."""

from __future__ import annotations

import logging

import pytest
import trio
from test_server_support import (
    TEST_PAN,
    SwitchClient,
    financial_fields,
    running_server,
    server_config,
)

from authhost.auth.decision import Decision
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest
from authhost.server.logs import JsonFormatter
from authhost.server.slow import SlowDecisions

STEPS = {"card": 12, "fraud": 40_000}


async def slow_pipeline(request: AuthRequest, received_at: float) -> Decision:
    """A decision whose fraud step reports 40 ms, and that takes 60 ms to arrive."""
    await trio.sleep(0.06)
    return Decision(ResponseCode.APPROVED, approval_code="A1B2C3", timings_us=dict(STEPS))


async def quick_pipeline(request: AuthRequest, received_at: float) -> Decision:
    return Decision(ResponseCode.APPROVED, approval_code="A1B2C3", timings_us=dict(STEPS))


def slow_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [r.fields for r in caplog.records if r.name == "authhost.slow"]  # type: ignore[attr-defined]


async def test_a_slow_decision_is_logged_with_its_steps_and_the_time_outside_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="authhost"):
        async with (
            running_server(slow_pipeline, server_config(slow_ms=30)) as server,
            SwitchClient.connect(server.addresses[0]) as client,
        ):
            response = await client.request(financial_fields("0100", "000001"))
    assert response["39"] == "00"
    [line] = slow_lines(caplog)
    assert line["steps_us"] == STEPS and line["stan"] == "000001" and line["rc"] == "00"
    assert line["latency_us"] >= 60_000
    assert line["outside_steps_us"] == line["latency_us"] - sum(STEPS.values())
    assert line["held_back"] == 0
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert TEST_PAN not in formatted and "400000******7899" in formatted


@pytest.mark.parametrize(
    # "fast": far under a threshold that a loaded test machine cannot reach by accident
    ("handler", "slow_ms"),
    [(quick_pipeline, 1000), (slow_pipeline, 0)],
    ids=["fast", "off"],
)
async def test_no_slow_line_for_a_fast_decision_or_when_turned_off(
    caplog: pytest.LogCaptureFixture, handler, slow_ms: int
) -> None:
    with caplog.at_level(logging.INFO, logger="authhost"):
        async with (
            running_server(handler, server_config(slow_ms=slow_ms)) as server,
            SwitchClient.connect(server.addresses[0]) as client,
        ):
            assert (await client.request(financial_fields("0100", "000001")))["39"] == "00"
    assert slow_lines(caplog) == []


def test_at_most_so_many_lines_a_second_and_the_next_says_how_many_it_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.2]
    slow = SlowDecisions(0.05, per_second=2, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="authhost.slow"):
        for stan in ("1", "2", "3", "4"):
            slow.report("0100", TEST_PAN, stan, "00", 0.08, STEPS, "peer")
        now[0] = 101.0  # the next second
        slow.report("0100", TEST_PAN, "5", "00", 0.08, STEPS, "peer")
    lines = slow_lines(caplog)
    assert [(line["stan"], line["held_back"]) for line in lines] == [("1", 0), ("2", 0), ("5", 2)]
    assert all(line["pan"] == "400000******7899" for line in lines)
