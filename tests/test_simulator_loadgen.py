"""The load generator stops at its bounds, counts what it sent, and survives bad servers.

Runs against the real echo server (benchmarks/echo_server.py) on a free port, and against
small trio servers that misbehave on purpose.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from conftest import free_port
from typer.testing import CliRunner

from authhost.iso.codec import decode_message
from authhost.iso.dialects import DEFAULT_DIALECT, get_dialect
from authhost.iso.framing import FrameDecoder, Framing, encode_frame
from simulator.bench import run_bench, split_plan
from simulator.builder import Entry, Kind, RequestBuilder
from simulator.cli import app
from simulator.demo_cards import SimCard
from simulator.loadgen import LoadPlan, run_load
from simulator.mixes import network

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def echo_port():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "echo_server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("echo server did not start")
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(timeout=10)


def plan(port: int, **overrides) -> LoadPlan:
    settings = {"host": "127.0.0.1", "port": port, "connections": 4, "concurrency": 8,
                "count": 300, "duration": 30.0, "timeout": 2.0}  # fmt: skip
    settings.update(overrides)
    return LoadPlan(**settings)


def test_closed_loop_stops_at_its_count(echo_port):
    report = run_bench(plan(echo_port, count=300), network())
    result = report.result
    assert result.sent == 300 and result.completed == 300
    assert result.timeouts == 0 and result.errors == 0
    assert result.histogram.get_total_count() == 300
    assert report.as_dict()["codes"] == {"--": 300}  # the echo carries no field 39


def test_open_loop_stops_at_its_duration(echo_port):
    report = run_bench(plan(echo_port, rate=200.0, count=None, duration=1.0), network())
    result = report.result
    # one second at 200/s: about 200 requests, never the unbounded count
    assert 150 <= result.sent <= 210
    assert result.completed + result.timeouts + result.errors == result.sent


def test_closed_loop_stops_at_its_duration(echo_port):
    report = run_bench(plan(echo_port, count=None, duration=0.5), network())
    assert report.result.sent > 0
    assert report.result.completed == report.result.sent


def test_several_processes_share_the_count(echo_port):
    report = run_bench(plan(echo_port, count=401, connections=4), network(), processes=2)
    assert report.result.sent == 401 and report.result.completed == 401
    assert report.processes == 2


def test_split_plan_gives_each_process_its_share():
    parts = split_plan(plan(1, count=1001, connections=5, concurrency=11, rate=300.0), 2)
    assert [p.count for p in parts] == [501, 500]
    assert [p.connections for p in parts] == [3, 2]
    assert sum(p.concurrency for p in parts) == 11
    assert [p.rate for p in parts] == [150.0, 150.0]
    assert [p.process_index for p in parts] == [0, 1]


@pytest.mark.parametrize("processes", [1, 2])
def test_nothing_listening_is_an_error_not_a_hang(processes):
    report = run_bench(plan(free_port(), count=20), network(), processes=processes)
    assert report.result.completed == 0 and report.result.errors == 20
    assert "cannot connect" in report.result.error_messages[0]


@pytest.mark.parametrize(
    "overrides",
    [{"connections": 0}, {"rate": -1.0}, {"count": None, "duration": None},
     {"concurrency": 2, "connections": 4}],
    ids=["no connection", "negative rate", "no bound", "fewer in flight than connections"],
)  # fmt: skip
def test_plans_without_sense_are_refused(overrides):
    with pytest.raises(ValueError):
        plan(1, **overrides)


# each engine: the closed loop's trio tasks, and the open loop's selector loop (openloop.py)
LOOPS = pytest.mark.parametrize("loop", [{}, {"rate": 400.0}], ids=["closed loop", "open loop"])


@LOOPS
async def test_a_silent_server_makes_timeouts(loop):
    async def swallow(stream):
        while await stream.receive_some(4096):
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, swallow, 0)
        port = listeners[0].socket.getsockname()[1]
        settings = {"count": 10, "timeout": 0.3, "connections": 2, "concurrency": 4, **loop}
        result = await run_load(plan(port, **settings), network())
        nursery.cancel_scope.cancel()
    # each timeout frees a slot, so the closed loop goes on until its count
    assert result.sent == 10 and result.timeouts == 10 and result.completed == 0


@LOOPS
async def test_a_server_that_hangs_up_makes_errors(loop):
    async def hang_up(stream):
        await stream.receive_some(4096)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, hang_up, 0)
        port = listeners[0].socket.getsockname()[1]
        settings = {"count": 50, "connections": 2, "concurrency": 2, **loop}
        result = await run_load(plan(port, **settings), network())
        nursery.cancel_scope.cancel()
    assert result.completed == 0
    assert result.errors > 0
    assert result.sent == result.errors
    # a FIN (a server stopping gracefully) is named too: the report said nothing, while the
    # closed connections' share of the load went unsent
    assert sorted(result.error_messages) == [
        "connection 0: closed by the server",
        "connection 1: closed by the server",
    ], result.error_messages


async def test_open_loop_latency_counts_from_the_scheduled_send_time():
    """A server that answers one request at a time, 20 ms each, on one connection, offered
    100/s: it falls behind by half of every interval, so the requests queue and the later
    ones wait for all before them. Measured from when each was written (as a generator that
    waits for a free moment would), every latency would stay near 20 ms."""
    framing = Framing()

    async def slow_echo(stream):
        decoder = FrameDecoder(framing)
        while data := await stream.receive_some(65536):
            decoder.feed(data)
            while (body := decoder.next_frame()) is not None:
                await trio.sleep(0.02)
                await stream.send_all(encode_frame(body, framing))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, slow_echo, 0)
        port = listeners[0].socket.getsockname()[1]
        settings = {"count": 30, "rate": 100.0, "connections": 1, "concurrency": 1}
        result = await run_load(plan(port, **settings), network())
        nursery.cancel_scope.cancel()
    assert result.completed == 30
    # the 30th is due at 290 ms and answered after 30 x 20 ms = 600 ms at the earliest
    assert result.histogram.get_max_value() >= 250_000
    assert result.histogram.get_min_value() >= 15_000


@LOOPS
async def test_runs_with_the_same_templates_send_new_transmissions_each_time(loop):
    """A host answers a repeated transmission (same STAN, RRN, terminal and transmission
    time) from its journal without deciding it: runs that reuse one set of templates (as
    benchmarks/suite.py does, phase after phase) must never repeat an earlier run's."""
    seen: list[tuple[str, str, str]] = []
    dialect = get_dialect(DEFAULT_DIALECT)
    framing = Framing()

    async def record_and_echo(stream):
        decoder = FrameDecoder(framing)
        while data := await stream.receive_some(65536):
            decoder.feed(data)
            while (body := decoder.next_frame()) is not None:
                request = decode_message(body, dialect)
                seen.append((request.transmission_time, request.stan, request.rrn))
                await stream.send_all(encode_frame(body, framing))

    pan = "4761730000000011"  # Visa test BIN, Luhn-valid
    card = SimCard(pan=pan, expiry="2812", service_code="201", cvv2="123",
                   track2=f"{pan}=28122019990000", pin=None, state="active", account="acc",
                   currency="978", available=1000)  # fmt: skip
    templates = [RequestBuilder().financial(Kind.PURCHASE, card, 100, entry=Entry.ECOMMERCE)]
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, record_and_echo, 0)
        port = listeners[0].socket.getsockname()[1]
        for _ in range(3):  # the same second, most likely: the counters alone keep them apart
            result = await run_load(plan(port, count=200, **loop), templates)
            assert result.completed == 200
        nursery.cancel_scope.cancel()
    assert len(seen) == 600 and len(set(seen)) == 600


def test_bench_command_prints_a_table_and_writes_json(echo_port, tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        ["bench", "--port", str(echo_port), "--count", "200", "--connections", "2",
         "--concurrency", "4", "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "throughput" in result.output
    data = json.loads(out.read_text())
    assert data["sent"] == 200 and data["completed"] == 200 and data["mode"] == "closed"
    assert set(data["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}


def test_bench_command_explains_a_missing_card_file():
    result = CliRunner().invoke(app, ["bench", "--mix", "auth", "--quiet"])
    assert result.exit_code == 2
    assert "--cards" in result.output


async def test_open_loop_counts_the_requests_a_closed_connection_lost_as_errors():
    """A worker killed under load resets its connections: the open loop counted the requests
    in flight on them as timeouts once ``timeout`` had passed (errors 0, with "connection
    reset" among the messages), so a run after a crash read as a slow server, not as lost
    answers. The other connection's requests are all answered."""
    accepted = []

    async def first_hangs_up(stream):
        accepted.append(stream)
        if len(accepted) == 1:
            await stream.receive_some(4096)  # takes the first requests, answers none
            await stream.aclose()
            return
        decoder = FrameDecoder(Framing())
        while data := await stream.receive_some(65536):
            decoder.feed(data)
            while (body := decoder.next_frame()) is not None:
                await stream.send_all(encode_frame(body, Framing()))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, first_hangs_up, 0)
        port = listeners[0].socket.getsockname()[1]
        settings = {"rate": 100.0, "count": None, "duration": 2.0, "timeout": 0.3, "connections": 2}
        result = await run_load(plan(port, **settings), network())
        nursery.cancel_scope.cancel()
    assert result.timeouts == 0, result
    assert result.errors > 0 and result.errors + result.completed == result.sent, result
