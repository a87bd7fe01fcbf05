"""Listening sockets, built by hand so that several processes can share them.

trio's ``open_tcp_listeners`` gives no plain socket to hand to another process; ``--workers N``
opens its sockets here once, in the supervisor, for the workers to share (``server.balance``).
"""

from __future__ import annotations

import socket

import trio


class ListenError(OSError):
    """A listener could not be opened; the message names the address and the reason."""


def open_listener(host: str, port: int) -> trio.SocketListener:
    """A bound, listening trio listener on host:port (port 0 picks a free one)."""
    return listener_from_socket(listening_socket(host, port))


def listener_from_socket(sock: socket.socket) -> trio.SocketListener:
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening, non-blocking socket on host:port (for a worker to inherit)."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
        except OSError as exc:  # the key to change, as the metrics and admin ports' errors say
            raise ListenError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (server.port or "
                "--port, or a [[listeners]] table's port)"
            ) from None
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bound_address(listener: trio.SocketListener) -> tuple[str, int]:
    """The (host, port) a listener really bound (useful when port 0 was asked for)."""
    host, port = listener.socket.getsockname()[:2]
    return str(host), int(port)
