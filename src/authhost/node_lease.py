"""One server process per approval-code node: a second ``serve`` on the same store with the
same ``server.node_id`` is told, not silently let hand out the same codes.

Approval codes are unique per day only per node (``auth/approval.py``): two processes on one
node give the same codes in the same second, and clearing matches a presentment by card and
approval code. Each process holds the store lease ``server.node.N`` while it serves; one that
finds it held by another logs an ERROR naming the holder (and goes on serving: refusing
would take a bank's host down over a configuration slip). A worker the supervisor restarts
holds it under the supervisor's name, so a crash and restart is not taken for a second
server; a process killed outright leaves its lease to expire (``NODE_LEASE_S``), or to be
taken over by the next process on its host (``exited_here``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import trio
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from authhost.store.interface import CardStore
from authhost.store.outage import StoreOutage

log = logging.getLogger("authhost.server")

NODE_LEASE_S = 60.0  # how long a holder that stopped renewing keeps its node
NODE_RENEW_S = 20.0


def node_owner() -> str:
    """This server's name for the lease: the host and the pid of the ``serve`` command (a
    worker's supervisor), the same for every worker it starts and restarts."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    return f"{socket.gethostname()} pid {pid}"


@dataclass
class NodeWatch:
    """This process's approval-code node and whether another server holds it, as the last
    claim found: for /metrics, where an alert can watch it (the ERROR line is easy to miss)."""

    node_id: int
    shared: bool = False


class NodeLeaseCollector(Collector):
    """authhost_approval_node_shared{node}: 1 while another server on the store holds this
    process's approval-code node (both hand out the same approval codes: alert above 0)."""

    def __init__(self, watch: NodeWatch) -> None:
        self._watch = watch

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "authhost_approval_node_shared",
            "1 while another server on this store holds this process's approval-code node",
            labels=["node"],
        )
        family.add_metric([str(self._watch.node_id)], float(self._watch.shared))
        yield family


def lease_name(node_id: int) -> str:
    return f"server.node.{node_id}"


async def claim_node(
    store: CardStore, node_id: int, owner: str, outage: StoreOutage | None = None
) -> bool:
    """Take or renew the node's lease; log who else holds it when it is not ours. True when
    it is ours, or the store could not say (the renewals' ``outage`` says that once)."""
    name = lease_name(node_id)
    try:
        if await store.take_lease(name, owner, NODE_LEASE_S):
            if outage is not None:
                outage.worked()
            return True
        holder = await store.lease_of(name)
    except Exception as exc:  # the store down: /readyz and the requests' log say so too
        if outage is None or not outage.failed(exc):
            log.debug("cannot check approval-code node %d: %s", node_id, exc)
        return True
    if outage is not None:
        outage.worked()
    if holder is None:  # it lapsed between the two reads: the next renewal takes it
        return True
    if exited_here(holder.owner) and await _take_over(store, name, holder.owner, owner):
        log.info(
            "approval-code node %d taken over from %s, which has exited", node_id, holder.owner
        )
        return True
    log.error(
        "approval-code node %d is in use by another server on this store (%s, since %s): both "
        "hand out the same approval codes; give one of them another [server] node_id (a "
        "server killed outright on another host lets go of it within %.0f s)",
        node_id, holder.owner, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(holder.since)),
        NODE_LEASE_S,
    )  # fmt: skip
    return False


def exited_here(owner: str) -> bool:
    """The owner (``node_owner``) was a process of this host that no longer runs: a server
    killed outright (OOM killer, ``kill -9``) and started again by its service manager, whose
    lease has not expired yet. Not to be taken for a second server: that was an ERROR, up to
    three times, naming the dead pid. A pid reused since reads as running (the lease expires)."""
    host, _, pid = owner.rpartition(" pid ")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: running
        return False
    return False


async def _take_over(store: CardStore, name: str, dead: str, owner: str) -> bool:
    try:
        await store.drop_lease(name, dead)  # only if still the dead one's
        return await store.take_lease(name, owner, NODE_LEASE_S)
    except Exception as exc:  # the store down: as in claim_node
        log.debug("cannot take over %s: %s", name, exc)
        return False


async def keep_node(store: CardStore, node: NodeWatch, owner: str) -> None:
    """Renew the node's lease while serving (saying so again while another holds it); let go
    of it on the way out, so the next start need not wait for its expiry."""
    outage = StoreOutage(store, f"renew approval-code node {node.node_id}'s lease", log)
    try:
        while True:
            await trio.sleep(NODE_RENEW_S)
            node.shared = not await claim_node(store, node.node_id, owner, outage)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            try:
                await store.drop_lease(lease_name(node.node_id), owner)
            except Exception as exc:
                log.debug("cannot let go of approval-code node %d: %s", node.node_id, exc)
