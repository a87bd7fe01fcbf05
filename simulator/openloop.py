"""The open-loop engine: requests on a fixed schedule from one selector loop in one thread.

Why not trio, as the closed loop: at a fixed rate every answer arrives on its own, and a trio
task per connection pays a scheduler pass for each one. Measured against two authhost
workers at 2,000/s offered on this 2-core host, the trio engine spent about 220 µs of CPU
per request, a fifth of a core taken from the server it measured and charged to its latency;
one ``selectors`` loop that takes every ready socket in one call and sends what fell due on a
1 ms grid spends 90-120 µs (``benchmarks/bench_loadgen.py``). A load generator that shares the
machine must cost as little as it can, or it measures itself.

The schedule is the trio engine's: request ``j`` of this process is due at
``start + j / rate`` on connection ``j % connections``, and its latency counts from that
scheduled time (no coordinated omission). Frames are built as they fall due, never ahead, so
a long run holds only what is in flight.
"""

from __future__ import annotations

import random
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from authhost.iso.framing import FrameDecoder, FrameError, Framing, encode_frame
from simulator.wire import NO_CODE, ResponseReader, Template

GRID_S = 0.001  # the sender wakes at most this often: several requests share one wake-up
PROGRESS_S = 0.2


def count_answers(
    decoder: FrameDecoder,
    pending: dict[tuple[bytes, bytes], float],
    reader: ResponseReader,
    result: Any,  # simulator.loadgen.LoadResult
    now: float,
    timeout: float,
    wall_now: float,
) -> None:
    """Match every complete answer in ``decoder`` to its request in ``pending`` (by STAN and
    RRN) and count it: answered, or timed out when later than ``timeout`` after its clock
    started (``now`` is on the clock of ``pending``; ``wall_now`` becomes ``result.finished``).
    FrameError or ValueError: the answers cannot be read (the caller closes the link)."""
    read = reader.read
    while (body := decoder.next_frame()) is not None:
        stan, rrn, code = read(body)
        began = pending.pop((stan, rrn), None)
        if began is None:
            continue  # not ours, or already counted as timed out
        latency = now - began
        if latency > timeout:
            result.timeouts += 1
            continue
        result.completed += 1
        result.codes[code.decode("ascii", "replace") or NO_CODE] += 1
        result.histogram.record_value(max(1, int(latency * 1_000_000)))
        result.finished = wall_now


class _Link:
    """One connection: its socket, what is still to be written, and its requests in flight."""

    __slots__ = (
        "index", "sock", "decoder", "outbox", "writing", "pending", "closed", "serial", "prefix",
    )  # fmt: skip

    def __init__(self, index: int, sock: socket.socket, framing: Framing, process: int) -> None:
        self.index = index
        self.sock = sock
        self.decoder = FrameDecoder(framing)
        self.outbox = bytearray()
        self.writing = False  # registered for EVENT_WRITE: the socket did not take it all
        self.pending: dict[tuple[bytes, bytes], float] = {}  # (stan, rrn) -> scheduled time
        self.closed = False
        # every run is new transmissions: the STAN/RRN counter starts at a random place
        self.serial = random.randrange(10_000_000)
        self.prefix = f"9{process}{index % 1000:03d}".encode()


def run_open_loop(
    plan: Any,  # simulator.loadgen.LoadPlan with rate set
    templates: Sequence[Template],
    reader: ResponseReader,
    framing: Framing,
    result: Any,  # simulator.loadgen.LoadResult, filled in
    progress: Callable[[int], None],
    ready: Callable[[], Any] | None,
) -> None:
    """Connect, wait for ``ready`` (all load processes start together), then run the plan."""
    links: list[_Link] = []
    try:
        for index in range(plan.connections):
            sock = socket.create_connection((plan.host, plan.port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            links.append(_Link(index, sock, framing, plan.process_index))
    except OSError as error:
        for link in links:
            link.sock.close()
        result.errors = plan.count or 0
        result.error_messages.append(f"cannot connect to {plan.host}:{plan.port}: {error}")
        if ready is not None:  # the other load processes must not wait for this one
            ready()
        return
    if ready is not None:
        ready()
    try:
        _Loop(plan, templates, reader, framing, result, progress, links).run()
    finally:
        for link in links:
            link.sock.close()


class _Loop:
    def __init__(
        self,
        plan: Any,
        templates: Sequence[Template],
        reader: ResponseReader,
        framing: Framing,
        result: Any,
        progress: Callable[[int], None],
        links: list[_Link],
    ) -> None:
        self.plan, self.templates, self.reader, self.framing = plan, templates, reader, framing
        self.result, self.progress, self.links = result, progress, links
        self.selector = selectors.DefaultSelector()
        for link in links:
            self.selector.register(link.sock, selectors.EVENT_READ, link)

    def run(self) -> None:
        plan, result = self.plan, self.result
        interval = 1.0 / plan.rate
        limit = plan.count if plan.count is not None else float("inf")
        result.started = start = time.monotonic()
        deadline = start + plan.duration if plan.duration is not None else float("inf")
        issued = 0  # scheduled slots passed (a closed connection's slots send nothing)
        next_progress = start + PROGRESS_S
        next_reap = start + plan.timeout / 4
        last_issue = start
        while True:
            now = time.monotonic()
            issuing = issued < limit and now < deadline
            if issuing:
                due = min(limit, int((now - start) / interval) + 1)
                if due > issued:
                    self._issue(issued, int(due), start, interval)
                    issued, last_issue = int(due), now
                wake = max(start + issued * interval, now + GRID_S)
            else:
                open_links = [link for link in self.links if not link.closed]
                in_flight = any(link.pending for link in open_links)
                if not in_flight or now - last_issue > plan.timeout:
                    break
                wake = now + 0.01
            if now >= next_reap:
                self._reap(now)
                next_reap = now + plan.timeout / 4
            if now >= next_progress:
                self.progress(result.completed)
                next_progress = now + PROGRESS_S
            if all(link.closed for link in self.links):
                break
            for key, events in self.selector.select(max(0.0, min(wake, next_reap) - now)):
                link = key.data
                if events & selectors.EVENT_READ:
                    self._receive(link)
                if events & selectors.EVENT_WRITE and not link.closed:
                    self._flush(link)
        for link in self.links:
            if link.closed:
                result.errors += len(link.pending)
            else:
                result.timeouts += len(link.pending)
            link.pending.clear()
        self.progress(result.completed)
        if not result.finished:
            result.finished = time.monotonic()

    def _issue(self, first: int, end: int, start: float, interval: float) -> None:
        """Build and send requests ``first`` to ``end - 1`` of the schedule."""
        links, templates, framing = self.links, self.templates, self.framing
        count = len(links)
        sent = 0
        touched = set()
        for j in range(first, end):
            link = links[j % count]
            if link.closed:
                continue
            link.serial += 1
            serial = link.serial
            stan = b"%06d" % (serial % 1_000_000)
            rrn = link.prefix + b"%07d" % (serial % 10_000_000)
            template = templates[serial % len(templates)]
            link.outbox += encode_frame(bytes(template.body(stan, rrn)), framing)
            link.pending[(stan, rrn if template.has_rrn else b"")] = start + j * interval
            touched.add(j % count)
            sent += 1
        self.result.sent += sent
        for index in touched:
            self._flush(links[index])

    def _flush(self, link: _Link) -> None:
        """Write what the socket takes now; wait for it to become writable for the rest."""
        if link.outbox:
            try:
                written = link.sock.send(link.outbox)
            except BlockingIOError:
                written = 0
            except OSError as error:
                self._close(link, f"connection {link.index}: {error}")
                return
            del link.outbox[:written]
        # a server that stops reading fills the socket: the rest waits, the time bound holds
        if bool(link.outbox) != link.writing:
            link.writing = bool(link.outbox)
            wants = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.writing else 0)
            self.selector.modify(link.sock, wants, link)

    def _receive(self, link: _Link) -> None:
        result = self.result
        try:
            data = link.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as error:
            self._close(link, f"connection {link.index}: {error}")
            return
        if not data:  # the server closed it (a graceful stop, a bad frame): say so
            self._close(link, f"connection {link.index}: closed by the server")
            return
        now = time.monotonic()
        link.decoder.feed(data)
        try:
            count_answers(
                link.decoder, link.pending, self.reader, result, now, self.plan.timeout, now
            )
        except (FrameError, ValueError) as error:
            self._close(link, f"connection {link.index}: bad answer: {error}")

    def _reap(self, now: float) -> None:
        """Give up on requests older than the timeout: they count as timed out."""
        timeout = self.plan.timeout
        for link in self.links:
            expired = []
            for key, began in link.pending.items():  # insertion order is schedule order
                if now - began <= timeout:
                    break
                expired.append(key)
            for key in expired:
                del link.pending[key]
            self.result.timeouts += len(expired)

    def _close(self, link: _Link, message: str | None) -> None:
        if link.closed:
            return
        link.closed = True
        # its requests in flight are lost now (a reset, a crashed worker), not timed out later
        self.result.errors += len(link.pending)
        link.pending.clear()
        if message is not None:
            self.result.error_messages.append(message)
        self.selector.unregister(link.sock)
