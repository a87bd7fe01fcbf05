"""Least-connections balancing between ``--workers`` processes that share listening sockets.

With SO_REUSEPORT the kernel hashes each connection to one process, at random: with the few
connections a payment switch keeps open, one worker often gets most of them (two connections
land on the same one of two workers half of the time; 8 split 5/3 or worse 72% of the time) and
saturates while the other idles. Instead the supervisor opens the listening sockets once and
every worker accepts from the same queue, but only while no ready worker holds fewer
connections than it does; the others leave the connection to it. Each worker writes only its
own slot of a shared array (its open connections, or -1 while it is not accepting: starting,
or finishing its connections during a shutdown), so no lock is needed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

NOT_ACCEPTING = -1
POLL_S = 0.005  # how soon a worker that left a connection to another looks again


class ConnectionBalance:
    def __init__(self, counts: Any, index: int) -> None:  # counts: multiprocessing RawArray
        self._counts = counts
        self._index = index
        self._open = 0
        self._accepting = False

    def _publish(self) -> None:
        self._counts[self._index] = self._open if self._accepting else NOT_ACCEPTING

    def accepting(self) -> None:
        self._accepting = True
        self._publish()

    def stopped(self) -> None:
        """No more accepting (shutting down): the others stop leaving connections to us."""
        self._accepting = False
        self._publish()

    def may_accept(self) -> bool:
        """No ready worker holds fewer connections than this one."""
        mine = self._open
        return all(
            other == NOT_ACCEPTING or mine <= other
            for i, other in enumerate(self._counts)
            if i != self._index
        )

    def opened(self) -> None:
        self._open += 1
        self._publish()

    def closed(self) -> None:
        self._open -= 1
        self._publish()


@dataclass
class SharedListeners:
    """What a worker inherits from the supervisor: one listening socket per configured
    listener (same order) and its place in the balance."""

    sockets: list[socket.socket]
    balance: ConnectionBalance
