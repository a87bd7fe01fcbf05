"""The admin API's lockout of a client address after repeated wrong tokens (PCI DSS 8.3.4).

The API answered a wrong token at once and without limit, so a token could be guessed at the
speed of the network. Each client address (the peer's host, its port left out) is allowed
``failures`` wrong tokens within ``window_s``; the next one locks it out for ``lockout_s``:
its requests are answered 429 with Retry-After and no token is checked, not even a right
one (a guess that lands while locked tells nothing). The counts live in this process's
memory (with --workers, worker 0 alone serves the API), and a restart resets them (the
"until reset" of 8.3.4).
Pure: the clock is given, nothing here touches a socket.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# addresses followed at once: past it, those with nothing to remember are forgotten, then the
# oldest (a spray from many addresses must not grow the table without bound)
MAX_PEERS = 10_000


@dataclass
class _Peer:
    failures: deque[float] = field(default_factory=deque)  # times of wrong tokens, oldest first
    locked_until: float = 0.0


class AdminLockout:
    """Wrong tokens per client address, and the addresses locked out for them."""

    def __init__(
        self,
        failures: int = 10,
        window_s: float = 1800.0,
        lockout_s: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures, self.window_s, self.lockout_s = failures, window_s, lockout_s
        self._clock = clock
        self._peers: dict[str, _Peer] = {}
        self.lockouts = 0  # addresses locked out since start (the metric)
        self.refused = 0  # requests answered 429 while locked

    def retry_after(self, host: str) -> int:
        """Whole seconds until ``host`` may try again (0: it may now)."""
        peer = self._peers.get(host)
        if peer is None or not self.failures:
            return 0
        left = peer.locked_until - self._clock()
        if left <= 0:
            return 0
        self.refused += 1
        return max(1, math.ceil(left))

    def failed(self, host: str) -> bool:
        """Count one wrong token from ``host``; True when it locks the address out now (the
        caller logs that once)."""
        if not self.failures or not host:
            return False
        now = self._clock()
        peer = self._peers.get(host)
        if peer is None:
            self._make_room(now)
            peer = self._peers[host] = _Peer()
        while peer.failures and now - peer.failures[0] >= self.window_s:
            peer.failures.popleft()
        peer.failures.append(now)
        if len(peer.failures) < self.failures:
            return False
        peer.failures.clear()
        peer.locked_until = now + self.lockout_s
        self.lockouts += 1
        return True

    def _make_room(self, now: float) -> None:
        """A full table frees a tenth of itself at once: freeing one address per new one
        scanned the whole table each time (1.4 ms of the event loop the authorisations share,
        per request of a spray from many addresses); now once per ``MAX_PEERS // 10``."""
        if len(self._peers) < MAX_PEERS:
            return
        keep = MAX_PEERS - max(1, MAX_PEERS // 10)
        for host, peer in list(self._peers.items()):
            stale = not peer.failures or now - peer.failures[-1] >= self.window_s
            if stale and peer.locked_until <= now:
                del self._peers[host]
        # still full: the oldest not locked out first (dicts keep insertion order), so that
        # a spray from many addresses does not free an address it locked out
        for host in [h for h, p in self._peers.items() if p.locked_until <= now]:
            if len(self._peers) <= keep:
                return
            del self._peers[host]
        while len(self._peers) > keep:
            del self._peers[next(iter(self._peers))]


def peer_host(peer: str) -> str:
    """What a ``host:port`` peer is counted under ("" for none): its IPv4 address (an
    IPv4-mapped IPv6 one as IPv4), or its IPv6 /64 network: one machine has a whole /64 to
    take addresses from, 10 tries each."""
    host = peer.rpartition(":")[0] if ":" in peer else peer
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
