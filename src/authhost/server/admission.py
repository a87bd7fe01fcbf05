"""Who may connect to a listener: the switches' addresses, and how many links at once.

A card network or switch connects from known addresses; anything else reaching the port is
a scan, a misrouted client or an attack, and gets no byte of ISO 8583 from the host (PCI DSS
1.3: inbound traffic limited to what is needed). A listener with ``allow_from`` closes every
other connection as soon as it is accepted; with ``max_connections``, a connection beyond the
limit is closed too, so that one peer opening links in a loop cannot use up the process's
file descriptors. Refusals are counted (``authhost_connections_refused{reason}``) and logged
at most once a second per listener and reason, so a flood cannot flood the log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from authhost.server.logs import LogLimits

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOG_EVERY_S = 1.0


class AdmissionError(ValueError):
    """An ``allow_from`` entry that is no address or network."""


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """``["10.1.2.0/24", "192.0.2.7"]`` as networks; AdmissionError naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise AdmissionError(f"{entry!r} is no IP address or network (CIDR)") from None
    return tuple(networks)


class Admission:
    """The admission policy of one listener and its open connections."""

    def __init__(self, allow_from: Sequence[str] = (), max_connections: int = 0) -> None:
        if max_connections < 0:
            raise AdmissionError(
                f"max_connections must be 0 (no limit) or more, got {max_connections}"
            )
        self.networks = parse_networks(allow_from)
        self.max_connections = max_connections
        self.open = 0
        self.log_limits = LogLimits(LOG_EVERY_S)  # this listener's own

    def refusal(self, host: str) -> str | None:
        """Why a connection from ``host`` is refused ("not_allowed", "too_many"), or None."""
        if self.networks:
            try:
                address = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                return "not_allowed"
            if address.version == 6 and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # an IPv4 client on a dual-stack socket
            if not any(address in network for network in self.networks):
                return "not_allowed"
        if self.max_connections and self.open >= self.max_connections:
            return "too_many"
        return None

    def worth_logging(self, reason: str) -> bool:
        """At most one log line a second per reason."""
        return self.log_limits.allow(reason) is not None
