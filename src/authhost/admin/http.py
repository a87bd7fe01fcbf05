"""The admin API's HTTP/1.1 transport: h11 (sans-I/O) driven by trio.

This module only moves bytes: it reads one request at a time with h11, hands an
``ApiRequest`` to ``AdminApi.handle`` and writes the ``ApiResponse`` back, keeping the
connection alive when the client allows. Routing, authentication and JSON live in
``admin.api``; the card logic in ``admin.service``. Limits keep a slow or hostile client from
holding resources: headers 16 KiB, body 1 MiB, 30 s to send a request. With a certificate
and key configured it speaks HTTPS only (TLS 1.2 and above): the API takes card numbers
(searches, compromise alerts), which must not cross a network in clear.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from http import HTTPStatus

import h11
import trio

from authhost.admin.api import AdminApi, ApiRequest, ApiResponse, error_response
from authhost.admin.service import CardService
from authhost.admin.tokens import TokenTable
from authhost.config import AdminConfig
from authhost.tls import server_context

log = logging.getLogger("authhost.admin.http")

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
REQUEST_TIMEOUT_S = 30.0
SERVER_NAME = b"authhost-admin"


_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class _TooLarge(Exception):
    pass


async def serve_admin(
    service: CardService,
    config: AdminConfig,
    *,
    tokens: TokenTable | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the admin API on ``config.host:config.port`` until cancelled.

    ``task_status.started`` receives the bound port (so ``nursery.start`` waits until the API
    accepts connections). Port 0 in the config means "disabled": this returns at once.
    """
    if config.port == 0:
        task_status.started(0)
        return
    api = AdminApi(service, tokens if tokens is not None else TokenTable.from_config(config))
    if not api.tokens.by_digest:
        log.warning("admin API: no tokens configured; every request will be refused (401)")
    tls = tls_context(config)
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
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
        if tls is None:
            await serve_connection(stream, api)
            return
        secured = trio.SSLStream(stream, tls, server_side=True)
        try:
            with trio.fail_after(REQUEST_TIMEOUT_S):
                await secured.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError):
            await trio.aclose_forcefully(stream)  # not TLS, or a failed handshake: no answer
            return
        await serve_connection(secured, api)

    task_status.started(port)
    await trio.serve_listeners(handler, listeners)


def tls_context(config: AdminConfig) -> ssl.SSLContext | None:
    """The admin API's TLS context (``authhost.tls``), or None for plain HTTP."""
    return server_context(config.tls_cert_file, config.tls_key_file, where="admin.")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def serve_connection(stream: trio.abc.Stream, api: AdminApi) -> None:
    """Answer requests on one connection until the client closes it or an error ends it."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        while True:
            with trio.move_on_after(REQUEST_TIMEOUT_S) as scope:
                try:
                    request = await _read_request(stream, conn)
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint
                    await _send(stream, conn, error_response(status, "malformed HTTP request"))
                    return
                except _TooLarge:
                    response = error_response(413, f"body larger than {MAX_BODY_BYTES} bytes")
                    response.close = True
                    await _send(stream, conn, response)
                    return
            if scope.cancelled_caught:
                if conn.our_state is h11.SEND_RESPONSE or conn.their_state is h11.SEND_BODY:
                    await _send(stream, conn, error_response(408, "request timed out"))
                return
            if request is None:
                return
            response = await api.handle(request)
            await _send(stream, conn, response, with_body=request.method != "HEAD")
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
        return  # the client went away or the exchange cannot continue: just close
    finally:
        with trio.move_on_after(1) as cleanup:
            cleanup.shield = True
            await stream.aclose()


async def _read_request(stream: trio.abc.Stream, conn: h11.Connection) -> ApiRequest | None:
    """The next complete request, or None when the client closed the connection."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.they_are_waiting_for_100_continue:
                await stream.send_all(conn.send(h11.InformationalResponse(status_code=100)))
            conn.receive_data(await stream.receive_some(65536))
            continue
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if isinstance(event, h11.Request):
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
