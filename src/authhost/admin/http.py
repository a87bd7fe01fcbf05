"""The admin API's HTTP/1.1 transport: h11 (sans-I/O) driven by trio.

This module only moves bytes: it reads one request at a time with h11, hands an
``ApiRequest`` to ``AdminApi.handle`` and writes the ``ApiResponse`` back, keeping the
connection alive when the client allows. Routing, authentication and JSON live in
``admin.api``; the card logic in ``admin.service``. Limits keep a slow or hostile client from
holding resources: headers 16 KiB however they arrive, body 1 MiB, ``admin.timeout_s``
(30 s) to send a request and as long to take its answer, and at most
``admin.max_connections`` connections at once (more are closed as soon as accepted, so a flood
on this port cannot use up the file descriptors the ISO 8583 listeners need; refusals and
failed accepts are logged at most once a second). With a certificate and key configured it
speaks HTTPS only (TLS 1.2 and above): the API takes card numbers (searches, compromise
alerts), which must not cross a network in clear.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import h11
import trio

from authhost.admin.api import AdminApi, ApiRequest, ApiResponse, error_response
from authhost.admin.lockout import AdminLockout
from authhost.admin.service import CardService
from authhost.admin.tokens import TokenTable
from authhost.config import AdminConfig
from authhost.server.admission import Admission
from authhost.server.sockets import ListenError
from authhost.tls import server_context

log = logging.getLogger("authhost.admin.http")

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
# what is read and dropped after a 413, and for how long, so the answer is not lost to a reset
DRAIN_BYTES, DRAIN_S = 16 * 1024 * 1024, 2.0
REQUEST_TIMEOUT_S = 30.0  # the default of admin.timeout_s
ACCEPT_RETRY_S = 0.1  # pause after a failed accept (out of file descriptors and the like)
SERVER_NAME = b"authhost-admin"


_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class _TooLarge(Exception):
    pass


class _HeadersTooLarge(Exception):
    pass


async def serve_admin(
    service: CardService,
    config: AdminConfig,
    *,
    tokens: TokenTable | None = None,
    lockout: AdminLockout | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the admin API on ``config.host:config.port`` until cancelled.

    ``task_status.started`` receives the bound port (so ``nursery.start`` waits until the API
    accepts connections). Port 0 in the config means "disabled": this returns at once.
    """
    if config.port == 0:
        task_status.started(0)
        return
    api = AdminApi(
        service,
        tokens if tokens is not None else TokenTable.from_config(config),
        lockout if lockout is not None else admin_lockout(config),
    )
    if not api.tokens.by_digest:
        log.warning(
            "admin API: no tokens configured; every request will be refused (401): give "
            "[admin] tokens_file (docs/admin.md, Tokens and roles), or "
            "AUTHHOST_ADMIN_TOKENS='TOKEN:operator', and restart"
        )
    tls = tls_context(config)
    timeout_s = config.timeout_s
    admission = Admission(max_connections=config.max_connections)
    try:
        listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    except OSError as exc:  # a start-up failure (exit 2), as the ISO and metrics ports' are
        raise ListenError(
            f"cannot serve the admin API on {config.host}:{config.port}: "
            f"{exc.strerror or exc} (admin.port; 0 disables the API)"
        ) from None
    port = listeners[0].socket.getsockname()[1]
    scheme = "https" if tls is not None else "http"
    log.info("admin API listening on %s://%s:%d", scheme, config.host, port)
    if tls is None and not _loopback(config.host):
        log.warning(
            "admin API: plain HTTP on %s, which is not a loopback address: card numbers sent "
            "to it (searches, compromise alerts) cross the network in clear; set "
            "admin.tls_cert_file and admin.tls_key_file",
            config.host,
        )

    async def handler(stream: trio.SocketStream) -> None:
        try:
            peer = _peer(stream)
            if tls is None:
                await serve_connection(stream, api, timeout_s=timeout_s, peer=peer)
                return
            secured = trio.SSLStream(stream, tls, server_side=True)
            try:
                with trio.fail_after(timeout_s):
                    await secured.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError):
                await trio.aclose_forcefully(stream)  # not TLS, or a failed handshake: no answer
                return
            await serve_connection(secured, api, timeout_s=timeout_s, peer=peer)
        except Exception:
            # one connection's fault (a bug in the exchange) ends that connection, never the
            # API: an error here would otherwise end the nursery every connection runs in
            log.exception("admin API: a connection failed; it is closed, the API serves on")
            await trio.aclose_forcefully(stream)
        finally:
            admission.open -= 1

    task_status.started(port)
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, admission, handler, nursery)


async def _accept_loop(
    listener: trio.SocketListener,
    admission: Admission,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    nursery: trio.Nursery,
) -> None:
    """Accept connections for ``handler`` until cancelled (trio.serve_listeners' loop, with the
    connection cap, and a failed accept logged at most once a second without a traceback
    instead of ten tracebacks a second: out of file descriptors, that would flood the log)."""
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if admission.worth_logging("accept_failed"):
                    log.error(
                        "admin API: accept failed: %s (retrying every %s s)", exc, ACCEPT_RETRY_S
                    )
                await trio.sleep(ACCEPT_RETRY_S)
                continue
            if admission.refusal("") == "too_many":
                _refuse(stream)
                if admission.worth_logging("too_many"):
                    log.warning(
                        "admin API: connection refused: %d connections open "
                        "(admin.max_connections)",
                        admission.open,
                    )
                continue
            admission.open += 1
            nursery.start_soon(handler, stream)


def _refuse(stream: trio.SocketStream) -> None:
    """Close a connection beyond the cap at once, with a reset, before reading a byte."""
    with contextlib.suppress(OSError):
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


def tls_context(config: AdminConfig) -> ssl.SSLContext | None:
    """The admin API's TLS context (``authhost.tls``), or None for plain HTTP."""
    return server_context(config.tls_cert_file, config.tls_key_file, where="admin.")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def admin_lockout(config: AdminConfig) -> AdminLockout:
    """The lockout of addresses that sent too many wrong tokens, as ``[admin]`` sets it."""
    return AdminLockout(config.lockout_failures, config.lockout_window_s, config.lockout_s)


def _peer(stream: trio.SocketStream) -> str:
    """The client's ``host:port`` for the request log, as the ISO listeners log theirs."""
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "unknown"
    return f"{host}:{port}"


async def serve_connection(
    stream: trio.abc.Stream,
    api: AdminApi,
    *,
    timeout_s: float = REQUEST_TIMEOUT_S,
    peer: str = "",
) -> None:
    """Answer requests on one connection until the client closes it or an error ends it.

    The client has ``timeout_s`` to send each request (the first byte of the next one on a
    kept-alive connection included) and as long to take each answer: one that stops reading
    (answers to pipelined requests filling the TCP buffers) is closed like one that stops
    sending."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        while True:
            with trio.move_on_after(timeout_s) as scope:
                try:
                    request = await _read_request(stream, conn)
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint
                    await _send(stream, conn, error_response(status, "malformed HTTP request"))
                    await _drain(stream)
                    return
                except _HeadersTooLarge:
                    response = error_response(431, f"headers larger than {MAX_HEADER_BYTES} bytes")
                    response.close = True
                    await _send(stream, conn, response)
                    await _drain(stream)
                    return
                except _TooLarge:
                    response = error_response(413, f"body larger than {MAX_BODY_BYTES} bytes")
                    response.close = True
                    await _send(stream, conn, response)
                    await _drain(stream)
                    return
            if scope.cancelled_caught:
                if conn.our_state is h11.SEND_RESPONSE or conn.their_state is h11.SEND_BODY:
                    with trio.move_on_after(timeout_s):
                        await _send(stream, conn, error_response(408, "request timed out"))
                return
            if request is None:
                return
            response = await api.handle(dataclasses.replace(request, peer=peer))
            with trio.move_on_after(timeout_s) as sending:
                await _send(stream, conn, response, with_body=request.method != "HEAD")
            if sending.cancelled_caught:
                return  # the client takes no answer: close rather than wait for it forever
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
        return  # the client went away or the exchange cannot continue: just close
    finally:
        with trio.move_on_after(1) as cleanup:
            cleanup.shield = True
            await stream.aclose()


async def _drain(stream: trio.abc.Stream) -> None:
    """After an answer sent before the request was read whole (413, 431, 400): stop sending and read
    what the client is still sending, for a moment, before closing. Closing a socket with
    unread data resets the connection, and the reset can reach the client before the answer
    does: it would see "connection reset" instead of the 413."""
    if not isinstance(stream, trio.SocketStream):
        return  # TLS: no half-close; the close_notify goes out with aclose
    with trio.move_on_after(DRAIN_S), contextlib.suppress(trio.BrokenResourceError):
        await stream.send_eof()
        drained = 0
        while drained < DRAIN_BYTES and (chunk := await stream.receive_some(65536)):
            drained += len(chunk)


async def _read_request(stream: trio.abc.Stream, conn: h11.Connection) -> ApiRequest | None:
    """The next complete request, or None when the client closed the connection."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.they_are_waiting_for_100_continue:
                go_ahead = h11.InformationalResponse(status_code=100, headers=[])
                await stream.send_all(conn.send(go_ahead))
            conn.receive_data(await stream.receive_some(65536))
            continue
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if isinstance(event, h11.Request):
            # h11 bounds the headers only while they are incomplete: all of them in one packet
            # (a receive takes up to 64 KiB) reach here whatever their size
            if _head_size(event) > MAX_HEADER_BYTES:
                raise _HeadersTooLarge
            head = event
            length = dict(event.headers).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
                raise _TooLarge
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise _TooLarge
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in head.headers
            }
            return ApiRequest(
                method=head.method.decode("ascii", "replace").upper(),
                target=head.target.decode("latin-1"),
                headers=headers,
                body=bytes(body),
            )


def _head_size(request: h11.Request) -> int:
    """The size of a request's head as sent (request line and header lines, within the few
    bytes of optional blanks h11 removed)."""
    line = len(request.method) + len(request.target) + len(b" HTTP/1.1\r\n") + 1
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers) + 2


async def _send(
    stream: trio.abc.Stream, conn: h11.Connection, response: ApiResponse, with_body: bool = True
) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        (b"server", SERVER_NAME),
        (b"cache-control", b"no-store"),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()),
    ]
    if response.close:
        headers.append((b"connection", b"close"))
    reason = _REASONS.get(response.status, b"")
    data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
    if with_body:  # a HEAD answer has the headers (Content-Length included) and no body
        data += conn.send(h11.Data(data=response.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)
