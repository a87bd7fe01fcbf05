"""One switch connection: read frames, answer each as soon as it is decided.

A reader decodes frames and starts one task per read of financial requests under their
deadline: the requests of one read are decided together when the handler can (one call, one
commit wait), else each in a task of its own. The answers settled together (a read's
requests, or the frames the reader answered itself) leave in one write, made at once by the
task that settled them when nothing is waiting to be sent and the socket takes it all; else
they go through one memory channel to one writer task, which sends whatever has queued up in
one write and waits while the peer is slow to read. Answers leave in the order they are
decided, not the order requests arrived: the switch matches them by STAN/RRN.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import trio

from authhost.auth.decision import Decision
from authhost.iso.codec import (
    NETWORK_MTIS,
    FormatError,
    ResponseReceived,
    decode_message,
    encode_format_error,
    encode_network_response,
    encode_response,
)
from authhost.iso.codes import ResponseCode
from authhost.iso.framing import FrameDecoder, FrameError, Framing, encode_frame, swap_tpdu
from authhost.iso.macs import MacFunction, MacPlacementError, split_mac
from authhost.iso.messages import AuthRequest, MessageClass, NetworkRequest
from authhost.iso.subfields import fits_additional_amounts
from authhost.security.masking import mask_pan
from authhost.server.key_exchange import KEY_CHANGE_CODE
from authhost.server.logs import LogLimits, log_request
from authhost.server.metrics import ServerMetrics
from authhost.server.slow import SlowDecisions
from authhost.store.interface import StoreError

DecisionHandler = Callable[[AuthRequest, float], Awaitable[Decision]]
# answers a key change (0800, field 70 = 161) with the 0810's response code
# a key change (0800/161) and the name of the MAC key of the link it came on
KeyExchange = Callable[[NetworkRequest, str], Awaitable[ResponseCode]]

RECEIVE_SIZE = 65536
# Read no more from a peer with this many answers outstanding (in flight or not yet sent):
# a switch that stops reading must not make the server queue without bound.
MAX_UNSENT = 1024
# With idle_timeout_s, a TLS link's answers are sent in pieces of this size, each of which
# must go within the timeout (on plain TCP every partial send counts as progress)
TLS_SEND_PIECE = 16384
# A link the server closes while the peer may still be sending (a stop, a bad frame) gets a FIN
# after its answers, then what the peer still sends is read and dropped for at most this long
# before the socket closes: closing with unread input sends a reset, and a reset throws away
# the answers still in the send buffer, not yet delivered
LINGER_S = 2.0
LINGER_REASONS = frozenset({"shutdown", "frame_error", "format_error"})
_LINK_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError)
# 0800 codes the server answers itself (field 70): sign-on, sign-off, echo test.
CUTOVER_CODE = "201"
# answered 00 by the server itself; 201 is the switch's cutover to a new business day
NETWORK_CODES = {
    "001": "sign-on",
    "002": "sign-off",
    "061": "sign-on",  # Mastercard: sign-on by group
    "062": "sign-off",  # Mastercard: sign-off by group
    "201": "cutover",
    "270": "echo",  # Mastercard: network connection status, echo test
    "301": "echo",
}

_APPROVED = ResponseCode.APPROVED
_INVALID = ResponseCode.INVALID_TRANSACTION
_FORMAT_ERROR = ResponseCode.FORMAT_ERROR
_MAC_FAILED = ResponseCode.SECURITY_VIOLATION

log = logging.getLogger("authhost.server")


@dataclass(frozen=True, slots=True)
class Wire:
    """How one listener's traffic is framed and encoded."""

    name: str  # host:port, for logs
    dialect: Any
    framing: Framing
    mac: MacFunction | None = None  # sign every answer (field 64/128) when set
    verify_mac: Callable[[bytes, bytes], bool] | None = None  # and require a valid MAC on input
    key_exchange: bool = True  # a switch may change its zone PIN key here (0800/161)
    mac_key: str = "mak"  # the MAC key (its name) of this link: what a MAC key change replaces
    # no frame for this long closes the link (0: never): a switch whose end went away without
    # a FIN, or that stopped its echo tests, no longer holds a connection slot; nor does one
    # that took no answer bytes for this long (it stopped reading)
    idle_timeout_s: float = 0.0
    # declines carry Mastercard's merchant advice code (field 48 SE 84): may the merchant retry
    advice: Callable[[str, Sequence[str]], str | None] | None = None
    tls: ssl.SSLContext | None = None  # the link is TLS (``authhost.tls``)


@runtime_checkable
class AnsweredHere(Protocol):
    """Journals the financial requests the server answers without the pipeline, so that every
    one leaves a journal entry: a frame that does not decode (30, with the fields that could
    be read, which the answer echoes), a MAC that fails (63), a message class the host does not
    handle (12). Called on the event loop: it queues the entry and must not block."""

    def journal_rejected_frame(
        self, mti: str, fields: Mapping[str, str], received_at: float
    ) -> None: ...

    def journal_answered_here(
        self, request: AuthRequest, decision: Decision, received_at: float
    ) -> None: ...


@runtime_checkable
class DecidesTogether(Protocol):
    """A handler that decides the requests of one read together: one decision (or the
    exception deciding it raised) per request, in order. Saves a task, a cancel scope and a
    wait per request over deciding them one by one."""

    async def decide_many(
        self, requests: Sequence[AuthRequest], received_at: float
    ) -> list[Decision | Exception]: ...


@dataclass(frozen=True, slots=True)
class Decider:
    """What every connection shares: the handler, the deadline and where to count."""

    handler: DecisionHandler
    deadline_s: float
    timeout_code: ResponseCode
    metrics: ServerMetrics
    journal: AnsweredHere | None = None  # the handler itself when it can journal these
    together: DecidesTogether | None = None  # the handler itself when it can
    slow: SlowDecisions | None = None  # logs decisions slower than its threshold
    key_exchange: KeyExchange | None = None  # installs a switch's new zone PIN key
    # the server's own: warnings repeated per frame or per request, one line a second a kind
    log_limits: LogLimits = field(default_factory=LogLimits)


class Connection:
    """Reader, writer and in-flight requests of one accepted stream."""

    def __init__(self, stream: trio.abc.Stream, wire: Wire, decider: Decider, peer: str):
        self._stream = stream
        self._wire = wire
        self._decider = decider
        self._metrics = decider.metrics
        self.peer = peer
        self._reading = trio.CancelScope()
        self._frames = 0  # whole frames read: the idle timeout counts from the last one
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, int]](math.inf)
        # plain TCP: answers are written straight to the socket when it has room; TLS: always
        # through the stream (the bytes on the socket are the TLS records)
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        self._answered: list[bytes] = []  # frames settled, not yet written or queued
        self._queued = 0  # frames in the channel or being sent by the writer
        self._requests: trio.Nursery | None = None
        self._close_reason = "eof"
        self._unsent = 0  # frames read whose answer has not been written yet
        self._space: trio.Event | None = None  # set by the writer when _unsent drops

    def stop_reading(self) -> None:
        """Shutdown: read no more frames; requests in flight still get their answers."""
        self._close_reason = "shutdown"
        self._reading.cancel()

    async def run(self) -> None:
        self._metrics.connection_count += 1
        try:
            async with trio.open_nursery() as connection:
                connection.start_soon(self._write_loop, connection.cancel_scope)
                try:
                    async with trio.open_nursery() as requests:
                        self._requests = requests
                        with self._reading:
                            await self._read_loop()
                finally:
                    self._send.close()  # the writer sends what is queued, then stops
        finally:
            self._metrics.connection_count -= 1
            self._metrics.connections_closed.labels(self._close_reason).inc()
            log.info(
                "connection closed",
                extra={
                    "fields": {
                        "peer": self.peer,
                        "listener": self._wire.name,
                        "reason": self._close_reason,
                    }
                },
            )
            try:
                if self._close_reason in LINGER_REASONS:
                    await self._linger()
            finally:
                await trio.aclose_forcefully(self._stream)

    async def _linger(self) -> None:
        """FIN after the answers, then drop what the peer still sends until it closes too
        (at most LINGER_S): the answers already written reach it instead of being reset."""
        link = self._stream
        with trio.move_on_after(LINGER_S):
            if isinstance(link, trio.SSLStream):
                # close_notify first: without it the switch's TLS stack sees a truncated link
                # (an error) instead of the host's clean close; then end the TCP side
                secured, link = link, link.transport_stream
                with contextlib.suppress(*_LINK_GONE):  # the peer sent more or left: FIN anyway
                    await secured.unwrap()
            if not isinstance(link, trio.SocketStream):
                return
            try:
                await link.send_eof()
                while await link.receive_some(RECEIVE_SIZE):
                    pass
            except _LINK_GONE:
                pass

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(self._wire.framing)
        receive_some = self._stream.receive_some
        idle_s = self._wire.idle_timeout_s
        # idle means no whole frame for idle_s: a peer dripping a byte now and then without
        # ever completing a frame must not hold the link open for good; a keep-alive (a
        # zero-length frame, all some switches send on a quiet link) is a whole frame
        idle_until = trio.current_time() + idle_s
        while True:
            if self._unsent >= MAX_UNSENT:
                self._space = trio.Event()
                await self._space.wait()
                # the pause was ours, not the peer's silence: its next frames may be waiting
                idle_until = max(idle_until, trio.current_time() + idle_s)
            try:
                if idle_s:
                    data = None
                    with trio.move_on_at(idle_until):
                        data = await receive_some(RECEIVE_SIZE)
                    if data is None:
                        self._close_reason = "idle"
                        log.info(
                            "idle connection closed",
                            extra={"fields": {"peer": self.peer, "idle_timeout_s": idle_s}},
                        )
                        return
                else:
                    data = await receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._close_reason = "reset"
                return
            if not data:
                if decoder.buffered:  # a request cut short: no answer can be sent for it
                    self._close_reason = "truncated"
                    self._metrics.format_errors.inc()
                    self._warn(
                        "truncated",
                        "connection ended inside a frame, its bytes dropped",
                        {"peer": self.peer, "bytes": decoder.buffered},
                    )
                return
            decoder.feed(data)
            arrived = trio.current_time()
            wall = time.time()
            batch: list[tuple[AuthRequest, bytes | None]] = []
            frames_before = self._frames + decoder.keep_alives
            try:
                if not self._split(decoder, batch, arrived, wall):
                    return
            finally:  # requests already read are decided even when the link must close
                self._write_answered()  # what the reader answered itself (0800, 30, 63, 12)
                self._start(batch, arrived, wall)
            if self._frames + decoder.keep_alives != frames_before:
                idle_until = arrived + idle_s

    def _split(
        self,
        decoder: FrameDecoder,
        batch: list[tuple[AuthRequest, bytes | None]],
        arrived: float,
        wall: float,
    ) -> bool:
        """Answer or collect every complete frame; False when the connection must close."""
        while True:
            try:
                frame = decoder.next_frame()
            except FrameError as error:
                self._close_reason = "frame_error"
                self._metrics.format_errors.inc()
                self._warn(
                    "bad_frame",
                    "bad frame, closing the connection",
                    {"peer": self.peer, "error": str(error)},
                )
                return False
            if frame is None:
                return True
            self._frames += 1
            tpdu = decoder.last_tpdu
            if tpdu is not None:
                tpdu = swap_tpdu(tpdu)  # answer to where it came from
            if not self._on_frame(frame, tpdu, batch, arrived, wall):
                self._close_reason = "format_error"
                return False

    def _start(
        self, batch: list[tuple[AuthRequest, bytes | None]], arrived: float, wall: float
    ) -> None:
        """Start deciding requests that arrived together; they share one deadline.

        A lone request gets its own task and cancel scope. Several share one task and scope:
        the handler decides them together when it can, else each gets a task in a nursery
        under the shared scope (a cancel scope costs about as much as a task in trio, so a
        pipelined burst pays for one instead of one each).
        """
        if not batch:
            return
        assert self._requests is not None
        self._metrics.in_flight_count += len(batch)
        if len(batch) == 1:
            request, tpdu = batch[0]
            self._requests.start_soon(self._decide_one, request, tpdu, arrived, wall)
        elif self._decider.together is not None:
            self._requests.start_soon(self._decide_together, batch, arrived, wall)
        else:
            self._requests.start_soon(self._decide_batch, batch, arrived, wall)

    def _on_frame(
        self,
        body: bytes,
        tpdu: bytes | None,
        batch: list[tuple[AuthRequest, bytes | None]],
        arrived: float,
        wall: float,
    ) -> bool:
        """Answer a frame the server handles itself, or add its request to ``batch``.

        False means the connection must close."""
        self._unsent += 1
        dialect = self._wire.dialect
        try:
            message = decode_message(body, dialect)
        except ResponseReceived as error:  # 0110, 0810...: answers nothing we sent
            self._sent(1)  # nothing to answer: no room held for it
            self._metrics.responses_ignored.inc()
            self._warn(
                "response_received",
                "a response sent to the host, not answered",
                {"peer": self.peer, "mti": error.mti, "stan": error.stan},
            )
            return True
        except FormatError as error:
            self._metrics.format_errors.inc()
            response = encode_format_error(error, dialect, mac=self._wire.mac)
            if response is None:
                self._warn(
                    "unreadable",
                    "unreadable message (no MTI/STAN), closing the connection",
                    {"peer": self.peer, "error": str(error)},
                )
                return False
            mti = error.mti or ""
            self._answer(response, tpdu, mti, None, error.stan, "30", arrived, str(error))
            journal = self._decider.journal
            if journal is not None and mti not in NETWORK_MTIS:  # financial requests only
                journal.journal_rejected_frame(mti, error.echo, wall)
            return True
        except Exception:  # a decoder bug must cost this link at most, never the server
            self._metrics.format_errors.inc()
            self._warn(
                "decode_failed",
                "cannot decode a frame, closing the connection",
                {"peer": self.peer},
                failure=sys.exc_info()[1],
            )
            return False

        if self._wire.verify_mac is not None and not self._mac_ok(body, message):
            self._metrics.format_errors.inc()
            self._warn(
                "mac",
                "MAC missing or wrong, answering 63",
                {"peer": self.peer, "mti": message.mti, "stan": message.stan},
            )
            if isinstance(message, NetworkRequest):
                response = encode_network_response(
                    message, _MAC_FAILED, dialect, mac=self._wire.mac
                )
                self._answer(response, tpdu, message.mti, None, message.stan, "63", arrived, "mac")
            else:
                decision = Decision(_MAC_FAILED, reason_codes=["mac"])
                self._reply(message, decision, tpdu, arrived)
                self._journal_here(message, decision, wall)
            return True

        if isinstance(message, NetworkRequest):
            exchange = self._decider.key_exchange
            if message.code == KEY_CHANGE_CODE and exchange and self._wire.key_exchange:
                assert self._requests is not None
                self._requests.start_soon(self._change_key, exchange, message, tpdu, arrived)
                return True
            # field 70 is what an 0800 asks: without it the message is malformed (30), with
            # a code the host does not serve it is a request it cannot do (12)
            code = (
                _FORMAT_ERROR if not message.code
                else _APPROVED if message.code in NETWORK_CODES else _INVALID
            )  # fmt: skip
            if message.code == CUTOVER_CODE:  # the switch's business day changes now
                log.info(  # the date as checked by decode_message (MMDD), never raw bytes
                    "cutover",
                    extra={"fields": {"peer": self.peer,
                                      "business_date": message.settlement_date or ""}},
                )  # fmt: skip
            response = encode_network_response(message, code, dialect, mac=self._wire.mac)
            self._answer(
                response, tpdu, message.mti, None, message.stan, code, arrived, message.code
            )
            return True

        if message.message_class is MessageClass.UNKNOWN:
            decision = Decision(ResponseCode.INVALID_TRANSACTION, reason_codes=["unknown_mti"])
            self._reply(message, decision, tpdu, arrived)
            self._journal_here(message, decision, wall)
            return True

        batch.append((message, tpdu))
        return True

    async def _change_key(
        self,
        exchange: KeyExchange,
        message: NetworkRequest,
        tpdu: bytes | None,
        arrived: float,
    ) -> None:
        """A key change writes the key store, off the reader: its 0810 follows when it is done
        (the switch waits for it before sending PIN blocks under the new key)."""
        try:
            code = await exchange(message, self._wire.mac_key)
        except Exception:  # a bug must cost this key change, never the link
            log.exception("key change failed", extra={"fields": {"peer": self.peer}})
            code = ResponseCode.SYSTEM_MALFUNCTION
        response = encode_network_response(message, code, self._wire.dialect, mac=self._wire.mac)
        self._answer(
            response, tpdu, message.mti, None, message.stan, str(code), arrived, message.code
        )
        self._write_answered()

    def _warn(
        self,
        kind: str,
        message: str,
        fields: dict[str, Any],
        failure: BaseException | None = None,
        level: int = logging.WARNING,
    ) -> None:
        """A warning that can repeat per frame or request (an error with ``failure``): at most
        one line a second of each kind per server, saying how many it held back."""
        held = self._decider.log_limits.allow(kind)
        if held is None:
            return
        fields["held_back"] = held
        level = level if failure is None else logging.ERROR
        log.log(level, message, exc_info=failure, extra={"fields": fields})

    def _journal_here(self, request: AuthRequest, decision: Decision, wall: float) -> None:
        journal = self._decider.journal
        if journal is not None:
            journal.journal_answered_here(request, decision, wall)

    def _mac_ok(self, body: bytes, message: AuthRequest | NetworkRequest) -> bool:
        """The message carries a MAC in field 64/128 that verifies over the bytes before it."""
        assert self._wire.verify_mac is not None
        try:
            covered, received = split_mac(body, message.fields, self._wire.dialect)
        except MacPlacementError:
            return False
        return self._wire.verify_mac(covered, received)

    async def _decide_one(
        self, request: AuthRequest, tpdu: bytes | None, arrived: float, wall: float
    ) -> None:
        with trio.move_on_at(arrived + self._decider.deadline_s):
            await self._decide(request, tpdu, arrived, wall)

    async def _decide_batch(
        self, batch: list[tuple[AuthRequest, bytes | None]], arrived: float, wall: float
    ) -> None:
        with trio.move_on_at(arrived + self._decider.deadline_s):
            async with trio.open_nursery() as nursery:
                for request, tpdu in batch:
                    nursery.start_soon(self._decide, request, tpdu, arrived, wall)

    async def _decide_together(
        self, batch: list[tuple[AuthRequest, bytes | None]], arrived: float, wall: float
    ) -> None:
        together = self._decider.together
        assert together is not None
        outcomes: list[Decision | Exception] | None = None
        try:
            with trio.move_on_at(arrived + self._decider.deadline_s):
                try:
                    outcomes = await together.decide_many([r for r, _ in batch], wall)
                except Exception as error:
                    outcomes = [error] * len(batch)
        finally:
            for index, (request, tpdu) in enumerate(batch):
                self._settle(request, tpdu, arrived, outcomes[index] if outcomes else None)
            self._write_answered()

    async def _decide(
        self, request: AuthRequest, tpdu: bytes | None, arrived: float, wall: float
    ) -> None:
        """Ask the handler (inside the caller's deadline scope) and queue the answer.

        The answer is queued in ``finally``: when the deadline cancels the handler, the
        timeout code goes out instead; queueing never blocks, so it is safe while cancelled.
        """
        outcome: Decision | Exception | None = None
        try:
            try:
                outcome = await self._decider.handler(request, wall)
            except Exception as error:
                outcome = error
        finally:
            self._settle(request, tpdu, arrived, outcome)
            self._write_answered()

    def _settle(
        self,
        request: AuthRequest,
        tpdu: bytes | None,
        arrived: float,
        outcome: Decision | Exception | None,
    ) -> None:
        """Answer one request: its decision, 96 when deciding it failed, the timeout code
        when it ran out of time; none when its connection is closing under it."""
        decider = self._decider
        decider.metrics.in_flight_count -= 1
        if isinstance(outcome, Exception):
            decider.metrics.handler_errors.inc()
            fields = {
                "mti": request.mti,
                "pan": mask_pan(request.pan),
                "stan": request.stan,
                "peer": self.peer,
            }
            if isinstance(outcome, StoreError):  # the store's own words say it all: one line
                fields["error"] = str(outcome)
                self._warn(
                    "decision_failed", "the store failed, answering 96", fields, level=logging.ERROR
                )
            else:  # a bug: its traceback
                self._warn("decision_failed", "decision failed, answering 96", fields, outcome)
            outcome = Decision(ResponseCode.SYSTEM_MALFUNCTION, reason_codes=["error"])
        if outcome is None and trio.current_time() >= arrived + decider.deadline_s:
            decider.metrics.timeouts.inc()
            outcome = Decision(decider.timeout_code, reason_codes=["deadline"])
        if outcome is not None:
            self._reply(request, outcome, tpdu, arrived)
        else:  # cancelled before its deadline: the link broke or a forced stop
            self._warn(
                "abandoned",
                "request abandoned: its connection is closing",
                {"mti": request.mti, "stan": request.stan, "peer": self.peer},
            )

    def _reply(
        self, request: AuthRequest, decision: Decision, tpdu: bytes | None, arrived: float
    ) -> None:
        timings = decision.timings_us
        if timings:  # a decision of the pipeline: where its time went
            self._metrics.count_steps(timings)
            slow = self._decider.slow
            if slow is not None:
                latency = trio.current_time() - arrived
                if latency >= slow.threshold_s:
                    code = str(decision.response_code)
                    slow.report(request.mti, request.pan, request.stan, code, latency, timings,
                                self.peer)  # fmt: skip
        balances = decision.balances
        if balances and not all(map(fits_additional_amounts, balances)):
            self._warn(  # the answer goes out without them (encode_response); no PAN here
                "balance_too_large",
                "balance too large for field 54 (12 digits), left out of the answer",
                {"mti": request.mti, "stan": request.stan, "peer": self.peer},
            )
        try:
            wire = self._wire
            response = encode_response(request, decision, wire.dialect, wire.mac, wire.advice)
        except Exception:
            self._warn(
                "encode_failed",
                "cannot encode the response, answering 96",
                {"mti": request.mti, "stan": request.stan, "peer": self.peer},
                failure=sys.exc_info()[1],
            )
            decision = Decision(ResponseCode.SYSTEM_MALFUNCTION, reason_codes=["encode"])
            try:
                response = encode_response(
                    request, decision, self._wire.dialect, mac=self._wire.mac
                )
            except Exception:
                log.exception("no response can be built for this request; none sent")
                self._sent(1)
                return
        self._answer(
            response,
            tpdu,
            request.mti,
            request.pan,
            request.stan,
            str(decision.response_code),
            arrived,
            ",".join(decision.reason_codes) or None,
        )

    def _answer(
        self,
        body: bytes,
        tpdu: bytes | None,
        mti: str,
        pan: str | None,
        stan: str | None,
        code: str,
        arrived: float,
        detail: str | None,
    ) -> None:
        """Add one response frame to those ``_write_answered`` sends; count and log it."""
        try:
            self._answered.append(encode_frame(body, self._wire.framing, tpdu))
        except FrameError as error:  # a response larger than the link's max_frame
            self._sent(1)  # never sent, but no longer outstanding: a waiting reader reads on
            self._warn(
                "response_too_large",
                f"response not sent: {error}",
                {"mti": mti, "stan": stan, "peer": self.peer},
                level=logging.ERROR,
            )
        latency = trio.current_time() - arrived
        self._metrics.count_request(mti, code, latency)
        log_request(mti, pan, stan, code, latency, detail, self.peer)

    def _write_answered(self) -> None:
        """Send the frames settled since the last call, in one write.

        When the writer has nothing queued, the write is made here and now: a socket with room
        takes it whole without a trip through the channel, the writer task and two scheduler
        passes. What it does not take (a peer slow to read, a broken link) goes to the writer
        after whatever is queued, which waits for room or closes the connection.
        """
        answered = self._answered
        if not answered:
            return
        self._answered = []
        data = answered[0] if len(answered) == 1 else b"".join(answered)
        if not self._queued and self._fd is not None:
            try:
                written = os.write(self._fd, data)  # non-blocking: trio set the socket so
            except OSError:  # BlockingIOError (no room) or a broken link: the writer's job
                written = 0
            if written == len(data):
                self._sent(len(answered))
                return
            data = data[written:]
        self._queued += len(answered)
        # closed or broken: the connection is closing, and its peer is gone
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            self._send.send_nowait((data, len(answered)))

    def _sent(self, frames: int) -> None:
        self._unsent -= frames
        if self._space is not None and self._unsent < MAX_UNSENT // 2:
            self._space.set()
            self._space = None

    async def _write_loop(self, connection: trio.CancelScope) -> None:
        receive = self._receive
        send_all = self._stream.send_all if not self._wire.idle_timeout_s else self._send_or_stall
        try:
            async for data, frames in receive:
                chunks = [data]
                while True:
                    try:
                        more, more_frames = receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    chunks.append(more)
                    frames += more_frames
                await send_all(data if len(chunks) == 1 else b"".join(chunks))
                self._queued -= frames
                self._sent(frames)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._close_reason = "reset"
            connection.cancel()  # nobody to answer: stop reading and deciding
        except _Stalled:
            # The peer stopped reading: read no more from it (a reader waiting for room wakes
            # too), let what is being decided finish (the pipeline journals it) and close.
            # Answers still to come have nowhere to go.
            self._close_reason = "stalled"
            log.warning(
                "peer not reading its answers, closing the connection",
                extra={"fields": {"peer": self.peer, "idle_timeout_s": self._wire.idle_timeout_s,
                                  "unsent": self._unsent}},
            )  # fmt: skip
            receive.close()
            self._reading.cancel()

    async def _send_or_stall(self, data: bytes) -> None:
        """Send ``data``; _Stalled when the peer takes none of it for idle_timeout_s. A peer
        that reads, however slowly, keeps its link; one that stopped no longer holds the
        slot (and the requests it still sends) forever."""
        idle_s = self._wire.idle_timeout_s
        if self._fd is not None:  # plain TCP: every partial send is progress
            send = self._stream.socket.send
            view = memoryview(data)
            while view:
                try:
                    with trio.move_on_after(idle_s) as waited:
                        sent = await send(view)
                except OSError as error:  # reset or closed: as SocketStream.send_all says it
                    raise trio.BrokenResourceError from error
                if waited.cancelled_caught:
                    raise _Stalled
                view = view[sent:]
            return
        send_all = self._stream.send_all  # TLS: a piece at a time
        for start in range(0, len(data), TLS_SEND_PIECE):
            with trio.move_on_after(idle_s) as waited:
                await send_all(data[start : start + TLS_SEND_PIECE])
            if waited.cancelled_caught:
                raise _Stalled


class _Stalled(Exception):
    """The peer took no answer bytes for idle_timeout_s."""
