"""The load generator's engines: one process, N connections.

Two ways to load a server:

* open loop (``rate`` set): requests leave on a fixed schedule whatever the server does, and
  latency counts from the *scheduled* send time, so a server that falls behind is charged for
  the queue it causes (no coordinated omission); it runs in ``simulator.openloop``, one
  selector loop in a thread, because answers that arrive one by one cost a trio task a
  scheduler pass each;
* closed loop (``rate`` None): each connection keeps its share of ``concurrency`` requests in
  flight and sends a new one as each answer arrives; this finds the maximum throughput (a
  trio task per connection: answers come in bursts, and the tasks batch them).

A run stops issuing at ``count`` requests or after ``duration`` seconds, whichever comes first,
then waits up to ``timeout`` for the answers in flight; what is still unanswered is counted as
timed out. Latencies go into an HDR histogram (microseconds, 3 significant digits).

Requests come from templates (``simulator.wire.Template``): each request gets a fresh STAN and
RRN, so that no two are the same transmission, and the answer is matched on (STAN, RRN).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from hdrh.histogram import HdrHistogram

from authhost.iso.dialects import get_dialect
from authhost.iso.framing import FrameDecoder, FrameError, Framing, encode_frame
from simulator.openloop import count_answers, run_open_loop
from simulator.wire import NO_CODE, ResponseReader, Template

__all__ = ["NO_CODE", "LoadPlan", "LoadResult", "run_load"]

HIGHEST_US = 60_000_000


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, 3)


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What one load process does. ``rate``/``concurrency``/``count`` are this process's share."""

    host: str
    port: int
    connections: int = 8
    rate: float | None = None  # requests/s in total (open loop); None = closed loop
    concurrency: int = 64  # requests in flight in total (closed loop)
    count: int | None = 10_000
    duration: float | None = 10.0
    timeout: float = 2.0
    dialect: str = "ascii-binary-bitmap"
    framing: str = "binary2"
    tpdu: bool = False
    process_index: int = 0  # makes RRNs unique across load processes

    def __post_init__(self) -> None:
        if self.connections < 1:
            raise ValueError("at least one connection")
        if self.rate is not None and not 0 < self.rate < math.inf:  # NaN fails too
            raise ValueError("the rate must be a positive number of requests a second")
        if self.count is not None and self.count < 0:
            raise ValueError("the count cannot be negative (0: no bound)")
        if self.duration is not None and not 0 < self.duration < math.inf:
            raise ValueError("the duration must be a positive number of seconds (0: no bound)")
        if not 0 < self.timeout < math.inf:
            raise ValueError("the timeout must be a positive number of seconds")
        if self.rate is None and self.concurrency < self.connections:
            raise ValueError("concurrency must be at least the number of connections")
        if self.count is None and self.duration is None:
            raise ValueError("a run needs a count or a duration bound")
        if not 0 <= self.process_index <= 9:
            raise ValueError("at most 10 load processes")


@dataclass
class LoadResult:
    """What one load process measured."""

    sent: int = 0
    completed: int = 0  # answered within the timeout
    timeouts: int = 0  # answered late, or never
    errors: int = 0  # lost with a connection the server closed or refused
    codes: Counter[str] = field(default_factory=Counter)
    started: float = 0.0  # time.monotonic() when sending began
    finished: float = 0.0  # time of the last answer (or of the end of the run)
    histogram: HdrHistogram = field(default_factory=new_histogram)
    error_messages: list[str] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """A picklable form (the histogram encoded), to send from a load process."""
        return {
            "sent": self.sent,
            "completed": self.completed,
            "timeouts": self.timeouts,
            "errors": self.errors,
            "codes": dict(self.codes),
            "started": self.started,
            "finished": self.finished,
            "histogram": self.histogram.encode(),
            "error_messages": self.error_messages[:5],
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> LoadResult:
        result = cls(
            sent=data["sent"],
            completed=data["completed"],
            timeouts=data["timeouts"],
            errors=data["errors"],
            codes=Counter(data["codes"]),
            started=data["started"],
            finished=data["finished"],
            error_messages=list(data["error_messages"]),
        )
        result.histogram = HdrHistogram.decode(data["histogram"])
        return result

    def merge(self, other: LoadResult) -> None:
        self.sent += other.sent
        self.completed += other.completed
        self.timeouts += other.timeouts
        self.errors += other.errors
        self.codes.update(other.codes)
        self.started = min(self.started, other.started) if self.started else other.started
        self.finished = max(self.finished, other.finished)
        self.histogram.add(other.histogram)
        self.error_messages.extend(other.error_messages[: 5 - len(self.error_messages)])

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)


class _Run:
    """State shared by the connections of one process (one trio loop: no locks needed)."""

    def __init__(
        self, plan: LoadPlan, templates: Sequence[Template], progress: Callable[[int], None]
    ):
        self.plan = plan
        self.templates = templates
        self.progress = progress
        self.result = LoadResult()
        self.issued = 0
        self.deadline = 0.0

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` requests within the count bound."""
        if self.plan.count is not None:
            wanted = min(wanted, self.plan.count - self.issued)
        wanted = max(wanted, 0)
        self.issued += wanted
        return wanted

    def open(self) -> bool:
        """True while the run may still issue requests."""
        within_count = self.plan.count is None or self.issued < self.plan.count
        return within_count and trio.current_time() < self.deadline


async def run_load(
    plan: LoadPlan,
    template_fields: Sequence[Mapping[str, Any]],
    progress: Callable[[int], None] = lambda done: None,
    ready: Callable[[], Any] | None = None,
) -> LoadResult:
    """Run ``plan`` with requests cycled from ``template_fields``; return the measurements.

    ``progress(n)`` is called with the number of requests answered so far, a few times a
    second. ``ready`` (if given) is awaited in a worker thread after connecting and before
    sending: the multi-process runner uses it to start all processes at once.
    """
    dialect = get_dialect(plan.dialect)
    # Every request of every run is a new transmission: a host answers a repeated STAN, RRN,
    # terminal and transmission time as a retransmission, from its journal, without deciding
    # it again. The field dicts may be reused run after run (benchmarks/suite.py builds its
    # mixes once), so the transmission time is this run's, and each connection's STAN/RRN
    # counter starts at a random place (two runs in one second do not repeat each other).
    sent_at = time.strftime("%m%d%H%M%S", time.gmtime())
    templates = [
        Template({**fields, "7": sent_at} if "7" in fields else fields, dialect)
        for fields in template_fields
    ]
    if not templates:
        raise ValueError("no requests to send")
    framing = Framing(header=plan.framing, tpdu=plan.tpdu)
    reader = ResponseReader(dialect)
    if plan.rate is not None:  # its own engine, off the event loop (simulator/openloop.py)
        result = LoadResult()
        await trio.to_thread.run_sync(
            run_open_loop, plan, templates, reader, framing, result, progress, ready
        )
        return result
    run = _Run(plan, templates, progress)
    streams = []
    try:
        for _ in range(plan.connections):
            streams.append(await trio.open_tcp_stream(plan.host, plan.port))
    except OSError as error:
        for stream in streams:
            await stream.aclose()
        run.result.errors = plan.count or 0
        run.result.error_messages.append(f"cannot connect to {plan.host}:{plan.port}: {error}")
        if ready is not None:  # the other load processes must not wait for this one
            await trio.to_thread.run_sync(ready)
        return run.result
    if ready is not None:
        await trio.to_thread.run_sync(ready)
    shares = _split(plan.concurrency, plan.connections)
    run.result.started = time.monotonic()
    run.deadline = trio.current_time() + (plan.duration if plan.duration is not None else 1e12)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_report_progress, run)
        async with trio.open_nursery() as connections:
            for index, stream in enumerate(streams):
                connections.start_soon(
                    _connection, run, index, stream, framing, reader, shares[index]
                )
        nursery.cancel_scope.cancel()
    progress(run.result.completed)
    if not run.result.finished:
        run.result.finished = time.monotonic()
    return run.result


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


async def _report_progress(run: _Run) -> None:
    while True:
        await trio.sleep(0.2)
        run.progress(run.result.completed)


async def _connection(
    run: _Run,
    index: int,
    stream: trio.SocketStream,
    framing: Framing,
    reader: ResponseReader,
    depth: int,
) -> None:
    """One closed-loop connection: keeps ``depth`` requests in flight."""
    plan, result = run.plan, run.result
    pending: dict[tuple[bytes, bytes], float] = {}  # (stan, rrn) -> time the clock started
    space = trio.Event()  # set when an answer frees a slot (closed loop)
    closed = False
    rrn_prefix = f"9{plan.process_index}{index % 1000:03d}".encode()
    serial = random.randrange(10_000_000)  # see run_load: new transmissions, run after run
    timeout = plan.timeout

    def build(count: int, sent_at: float) -> bytes:
        """``count`` framed requests, their clocks started at ``sent_at``."""
        nonlocal serial
        frames = []
        templates = run.templates
        for _ in range(count):
            serial += 1
            stan = b"%06d" % (serial % 1_000_000)
            rrn = rrn_prefix + b"%07d" % (serial % 10_000_000)
            template = templates[serial % len(templates)]
            frames.append(encode_frame(bytes(template.body(stan, rrn)), framing))
            pending[(stan, rrn if template.has_rrn else b"")] = sent_at
        result.sent += count
        return b"".join(frames)

    def wake() -> None:
        """Tell a waiting closed-loop sender that slots are free."""
        nonlocal space
        space.set()
        space = trio.Event()

    async def reap() -> None:
        """Give up on requests older than the timeout: count them, free their slots."""
        while True:
            await trio.sleep(timeout / 4)
            now = trio.current_time()
            expired = []
            for key, began in pending.items():  # insertion order is send order
                if now - began <= timeout:
                    break
                expired.append(key)
            for key in expired:
                del pending[key]
            if expired:
                result.timeouts += len(expired)
                wake()

    async def receive() -> None:
        nonlocal closed
        decoder = FrameDecoder(framing)
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                data = None
                result.error_messages.append(f"connection {index}: {error}")
            if not data:
                if data == b"":  # the server closed it (a graceful stop, a bad frame): say so
                    result.error_messages.append(f"connection {index}: closed by the server")
                closed = True
                space.set()
                return
            now = trio.current_time()
            decoder.feed(data)
            try:
                count_answers(decoder, pending, reader, result, now, timeout, time.monotonic())
            except (FrameError, ValueError) as error:
                result.error_messages.append(f"connection {index}: bad answer: {error}")
                closed = True
                space.set()
                return
            if depth:
                wake()

    async def send_closed_loop() -> None:
        while run.open() and not closed:
            free = depth - len(pending)
            if free <= 0:
                with trio.move_on_at(run.deadline):
                    await space.wait()
                continue
            free = run.take(free)
            if free == 0:
                break
            await stream.send_all(build(free, trio.current_time()))
            if len(pending) >= depth:
                with trio.move_on_at(run.deadline):
                    await space.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        nursery.start_soon(reap)
        try:
            # a server that stops reading blocks send_all: the time bound still holds
            with trio.move_on_at(run.deadline):
                await send_closed_loop()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            closed = True
            result.error_messages.append(f"connection {index}: {error}")
        with trio.move_on_after(timeout):
            while pending and not closed:
                await trio.sleep(0.005)
        nursery.cancel_scope.cancel()
    if closed:
        result.errors += len(pending)
    else:
        result.timeouts += len(pending)
    await stream.aclose()
