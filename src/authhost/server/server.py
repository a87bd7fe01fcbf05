"""The ISO 8583 TCP server: listeners, accept loops and graceful shutdown.

``AuthServer.run`` serves every listener of the configuration until ``shutdown()`` is called;
then it stops accepting, closes the listening sockets, stops reading from open connections,
lets the requests in flight be answered (at most ``shutdown_grace_s``) and returns.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from functools import partial

import trio

from authhost.auth.approval import MAX_NODES
from authhost.auth.merchant_advice import merchant_advice_code
from authhost.config import Config, ListenerConfig
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import get_dialect
from authhost.iso.framing import Framing
from authhost.server.admission import Admission, AdmissionError
from authhost.server.balance import POLL_S, SharedListeners
from authhost.server.connection import (
    AnsweredHere,
    Connection,
    Decider,
    DecidesTogether,
    DecisionHandler,
    KeyExchange,
    Wire,
)
from authhost.server.metrics import ServerMetrics
from authhost.server.port_clash import port_clash
from authhost.server.slow import SlowDecisions
from authhost.server.sockets import bound_address, listener_from_socket, open_listener
from authhost.tls import TlsConfigError, server_context

log = logging.getLogger("authhost.server")

TLS_HANDSHAKE_S = 10.0  # a client that has not completed the TLS handshake by then is closed
ACCEPT_RETRY_S = 0.1  # pause after a failed accept (out of file descriptors and the like)


class ServerConfigError(ValueError):
    """A server setting that cannot be used; the message names the key."""


# (sign(body, key_name=...), verify(body, mac, key_name=...)): the security module's, which
# each listener binds to its own MAC key (``mac_key``)
MacFunctions = tuple[Callable[..., bytes], Callable[..., bool]]


def wire_for(listener: ListenerConfig, macs: MacFunctions | None = None) -> Wire:
    """Dialect, framing and MAC policy of one listener, checked at start-up, not on first use."""
    where = f"listener {listener.host}:{listener.port}"
    try:
        dialect = get_dialect(listener.dialect, visa_fields=listener.visa_fields)
    except (KeyError, ValueError) as exc:
        raise ServerConfigError(f"{where}: {exc}") from None
    try:
        framing = Framing.from_config(listener)
    except (KeyError, ValueError) as exc:
        raise ServerConfigError(f"{where}: {exc}") from None
    name = f"{listener.host}:{listener.port}"
    keys, idle = listener.key_exchange, listener.idle_timeout_s
    if idle < 0:
        raise ServerConfigError(f"{where}: idle_timeout_s must be 0 (never) or positive")
    advice = merchant_advice_code if listener.merchant_advice else None
    try:
        tls = server_context(
            listener.tls_cert_file, listener.tls_key_file, listener.tls_client_ca_file, f"{where}: "
        )
    except TlsConfigError as exc:
        raise ServerConfigError(str(exc)) from None
    if not listener.mac_key:
        raise ServerConfigError(f"{where}: mac_key names the key store's MAC key ('mak')")
    if not listener.require_mac:
        return Wire(name, dialect, framing, key_exchange=keys, idle_timeout_s=idle, advice=advice,
                    tls=tls, mac_key=listener.mac_key)  # fmt: skip
    if macs is None:
        raise ServerConfigError(f"{where}: require_mac needs the security module's MAC key")
    sign, verify = macs
    return Wire(
        name, dialect, framing, mac=partial(sign, key_name=listener.mac_key),
        verify_mac=partial(verify, key_name=listener.mac_key), key_exchange=keys,
        mac_key=listener.mac_key, idle_timeout_s=idle, advice=advice, tls=tls,
    )  # fmt: skip


def decider_for(
    config: Config,
    handler: DecisionHandler,
    metrics: ServerMetrics,
    key_exchange: KeyExchange | None = None,
) -> Decider:
    server = config.server
    try:
        timeout_code = ResponseCode(server.timeout_response_code)
    except ValueError:
        raise ServerConfigError(
            f"server.timeout_response_code: {server.timeout_response_code!r} is not a known "
            "response code"
        ) from None
    if server.deadline_ms <= 0:
        raise ServerConfigError(f"server.deadline_ms must be positive, got {server.deadline_ms}")
    if server.slow_ms < 0:
        raise ServerConfigError(f"server.slow_ms must be 0 (off) or positive, got {server.slow_ms}")
    journal = handler if isinstance(handler, AnsweredHere) else None
    together = handler if isinstance(handler, DecidesTogether) else None
    slow = SlowDecisions(server.slow_ms / 1000) if server.slow_ms else None
    return Decider(
        handler,
        server.deadline_ms / 1000,
        timeout_code,
        metrics,
        journal,
        together,
        slow,
        key_exchange,
    )


def admission_for(listener: ListenerConfig) -> Admission:
    """Who may connect to one listener, checked at start-up."""
    try:
        return Admission(listener.allow_from, listener.max_connections)
    except AdmissionError as exc:
        raise ServerConfigError(f"listener {listener.host}:{listener.port}: {exc}") from None


def check_config(config: Config) -> None:
    """Raise ServerConfigError for a server setting that cannot work, before opening anything."""
    for listener in config.all_listeners():
        wire_for(listener, macs=_CHECK_ONLY)
        admission_for(listener)
    decider_for(config, _no_handler, ServerMetrics())
    if config.server.workers < 1:
        raise ServerConfigError(f"server.workers must be at least 1, got {config.server.workers}")
    last_node = config.server.node_id + config.server.workers - 1
    if config.server.node_id < 0 or last_node >= MAX_NODES:
        raise ServerConfigError(
            f"server.node_id + server.workers - 1 must be below {MAX_NODES} (each worker needs "
            f"its own node number in approval codes), got {last_node}"
        )
    if config.server.shutdown_grace_s < 0:
        raise ServerConfigError("server.shutdown_grace_s must not be negative")
    if config.server.workers > 1 and any(x.port == 0 for x in config.all_listeners()):
        raise ServerConfigError(
            "server.workers > 1 needs fixed ports (port 0 picks one per process)"
        )
    if (clash := port_clash(config)) is not None:
        raise ServerConfigError(clash)


_CHECK_ONLY: MacFunctions = (
    lambda body, key_name="": bytes(8),
    lambda body, mac, key_name="": False,
)


async def _no_handler(request: object, received_at: float) -> object:  # pragma: no cover
    raise RuntimeError("configuration check only")


class AuthServer:
    """Serves ISO 8583 traffic on every configured listener with one decision handler."""

    def __init__(
        self,
        config: Config,
        handler: DecisionHandler,
        *,
        metrics: ServerMetrics | None = None,
        shared: SharedListeners | None = None,
        macs: MacFunctions | None = None,
        key_exchange: KeyExchange | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self._listeners = config.all_listeners()
        self._wires = [wire_for(listener, macs) for listener in self._listeners]
        self._admissions = [admission_for(listener) for listener in self._listeners]
        self._decider = decider_for(config, handler, self.metrics, key_exchange)
        self._grace_s = config.server.shutdown_grace_s
        self._shared = shared  # a --workers worker: the supervisor's sockets and the balance
        self._connections: set[Connection] = set()
        self._handshakes: set[trio.CancelScope] = set()  # TLS handshakes under way
        self._stopping = trio.Event()
        self.stopped = trio.Event()  # set when run() has returned
        self.addresses: list[tuple[str, int]] = []

    def shutdown(self) -> None:
        """Begin a graceful shutdown (safe to call more than once, or before ``run``)."""
        self._stopping.set()

    async def run(
        self, *, task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until ``shutdown()``; reports the bound (host, port) of each listener."""
        opened: list[trio.SocketListener] = []
        try:
            if self._shared is not None:
                opened.extend(listener_from_socket(sock) for sock in self._shared.sockets)
            else:
                opened.extend(open_listener(x.host, x.port) for x in self._listeners)
            self.addresses = [bound_address(listener) for listener in opened]
            if self._shared is not None:
                self._shared.balance.accepting()
            task_status.started(self.addresses)
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as acceptors:
                    for listener, wire, admission in zip(
                        opened, self._wires, self._admissions, strict=True
                    ):
                        acceptors.start_soon(
                            self._accept_loop, listener, wire, admission, connections
                        )
                    await self._stopping.wait()
                    acceptors.cancel_scope.cancel()
                if self._shared is not None:
                    self._shared.balance.stopped()
                for listener in opened:
                    await trio.aclose_forcefully(listener)
                log.info(
                    "shutting down: no longer accepting, finishing requests in flight",
                    extra={
                        "fields": {
                            "connections": len(self._connections),
                            "in_flight": self.metrics.in_flight_count,
                            "grace_s": self._grace_s,
                        }
                    },
                )
                for connection in list(self._connections):
                    connection.stop_reading()
                for handshake in list(self._handshakes):  # no request read yet: nothing owed
                    handshake.cancel()
                connections.cancel_scope.deadline = trio.current_time() + self._grace_s
            log.info("server stopped")
        finally:
            for listener in opened:
                await trio.aclose_forcefully(listener)
            self.stopped.set()

    async def _accept_loop(
        self,
        listener: trio.SocketListener,
        wire: Wire,
        admission: Admission,
        connections: trio.Nursery,
    ) -> None:
        balance = self._shared.balance if self._shared is not None else None
        while True:
            while balance is not None and not balance.may_accept():
                await trio.sleep(POLL_S)  # a worker with fewer connections takes this one
            try:
                stream = await listener.accept()
            except OSError as exc:  # out of file descriptors and the like: keep serving
                # failing ten times a second for as long as it lasts: one line a second
                if admission.worth_logging("accept_failed"):
                    log.error(
                        "accept failed: %s (retrying every %s s)",
                        exc,
                        ACCEPT_RETRY_S,
                        extra={"fields": {"listener": wire.name}},
                    )
                await trio.sleep(ACCEPT_RETRY_S)
                continue
            with contextlib.suppress(OSError):  # notice peers that vanished without a FIN
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            try:
                host, port = stream.socket.getpeername()[:2]
                peer = f"{host}:{port}"
            except OSError:
                host, peer = "", "unknown"
            refused = admission.refusal(host)
            if refused is not None:
                await self._refuse(stream, wire, admission, refused, peer)
                continue
            admission.open += 1
            if balance is not None:
                balance.opened()
            connections.start_soon(self._serve_connection, stream, wire, admission, peer)

    async def _handshake(
        self, stream: trio.SocketStream, wire: Wire, admission: Admission, peer: str
    ) -> trio.SSLStream | None:
        """The TLS link, or None (closed, counted) when the client does not complete a
        handshake in time: not TLS, a certificate the listener does not accept, too slow."""
        assert wire.tls is not None
        secured = trio.SSLStream(stream, wire.tls, server_side=True)
        try:
            with trio.fail_after(TLS_HANDSHAKE_S), trio.CancelScope() as stop:
                self._handshakes.add(stop)
                try:
                    await secured.do_handshake()
                finally:
                    self._handshakes.discard(stop)
            if stop.cancelled_caught:  # a stop began: a link with no request yet just closes
                await trio.aclose_forcefully(stream)
                return None
            return secured
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            await trio.aclose_forcefully(stream)
            self.metrics.connections_refused.labels("tls").inc()
            if admission.worth_logging("tls"):
                cause = exc.__cause__ or exc
                log.warning(
                    "connection refused",
                    extra={
                        "fields": {
                            "peer": peer,
                            "listener": wire.name,
                            "reason": "tls",
                            "error": str(cause)[:200],
                        }
                    },  # fmt: skip
                )
            return None

    async def _refuse(
        self, stream: trio.SocketStream, wire: Wire, admission: Admission, reason: str, peer: str
    ) -> None:
        """Close a connection the listener does not admit, before reading a byte of it."""
        with contextlib.suppress(OSError):  # RST rather than a FIN: nothing to talk about
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await trio.aclose_forcefully(stream)
        self.metrics.connections_refused.labels(reason).inc()
        if admission.worth_logging(reason):
            log.warning(
                "connection refused",
                extra={"fields": {"peer": peer, "listener": wire.name, "reason": reason}},
            )

    async def _serve_connection(
        self, stream: trio.SocketStream, wire: Wire, admission: Admission, peer: str
    ) -> None:
        connection: Connection | None = None
        try:
            link: trio.abc.Stream = stream
            if self._stopping.is_set():  # accepted as the stop began: not one frame read
                await trio.aclose_forcefully(stream)
                return
            if wire.tls is not None:  # the handshake here, not in the accept loop
                secured = await self._handshake(stream, wire, admission, peer)
                if secured is None:
                    return
                link = secured
            connection = Connection(link, wire, self._decider, peer)
            self._connections.add(connection)
            if self._stopping.is_set():  # its handshake ended as the stop began
                connection.stop_reading()
            log.info("connection opened", extra={"fields": {"peer": peer}})
            await connection.run()
        except Exception:  # a bug in one connection must not take the server down
            log.exception("connection failed", extra={"fields": {"peer": peer}})
        finally:
            admission.open -= 1
            if connection is not None:
                self._connections.discard(connection)
            if self._shared is not None:
                self._shared.balance.closed()
