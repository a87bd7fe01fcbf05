"""Two of the server's own sockets configured on one port: refused before anything opens.

Without this the second one to open failed with "Address already in use", naming a port that
nothing held once authhost had exited (the metrics endpoint opens before the ISO listeners, so
``metrics_port`` equal to a listener's port was reported as the listener's port in use; with
``--workers`` the metrics ports ``metrics_port + i`` can run into the admin port).
"""

from __future__ import annotations

from authhost.config import Config

_ANY = {"0.0.0.0": "ipv4", "::": "ipv6"}


def _family(host: str) -> str:
    return "ipv6" if ":" in host else "ipv4"


def _overlap(a: str, b: str) -> bool:
    """Whether sockets on hosts ``a`` and ``b`` (same port) would collide: the same address,
    or one is every interface of the other's family. Names (``localhost``) match only alike."""
    if a == b:
        return True
    return any(_ANY.get(x) == _family(y) for x, y in ((a, b), (b, a)))


def own_sockets(config: Config) -> list[tuple[str, str, int]]:
    """(what, host, port) of every socket the configuration opens on a fixed port."""
    server = config.server
    found = [
        ("[server] port" if i == 0 else f"[[listeners]] #{i} port", x.host, x.port)
        for i, x in enumerate(config.all_listeners())
    ]
    if server.metrics_port:
        for i in range(server.workers):
            what = "server.metrics_port" + (f" + {i} (worker {i})" if i else "")
            found.append((what, server.metrics_host, server.metrics_port + i))
    if config.admin.port:
        found.append(("admin.port", config.admin.host, config.admin.port))
    return [item for item in found if item[2]]


def port_clash(config: Config) -> str | None:
    """The first two sockets that would take the same port, said in one line; None if none."""
    sockets = own_sockets(config)
    for i, (what, host, port) in enumerate(sockets):
        for other, other_host, other_port in sockets[i + 1 :]:
            if port == other_port and _overlap(host, other_host):
                return (
                    f"{what} and {other} are both port {port} on {host}"
                    + (f" / {other_host}" if other_host != host else "")
                    + ": give each its own port"
                )
    return None
