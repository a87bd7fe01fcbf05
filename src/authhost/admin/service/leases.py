"""Holding a store lease (``CardStore.take_lease``) for a piece of work: whose it is, keeping
it while the work goes on, and letting it go however the work ends."""

from __future__ import annotations

import contextlib
import secrets
import time

import anyio

from authhost.store.interface import CardStore, Lease, StoreError

DROP_TIMEOUT_S = 10.0  # a store that hangs on the drop: the lease expires by itself instead


def lease_owner(actor: str) -> str:
    """An owner for one piece of work: the actor (named to the one refused) and a random part
    (each run its own, even the same actor's)."""
    return f"{actor}#{secrets.token_hex(8)}"


def owner_name(owner: str) -> str:
    """The actor part of a ``lease_owner``."""
    return owner.rpartition("#")[0] or owner


async def drop_quietly(store: CardStore, name: str, owner: str) -> None:
    """Drop the lease even when the work was cancelled; a store that fails the drop leaves
    the lease to expire (the work's own error is the one reported)."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(DROP_TIMEOUT_S),
        contextlib.suppress(StoreError, *store.backend_errors),
    ):
        await store.drop_lease(name, owner)


class LeaseLost(Exception):
    """The work's lease lapsed (not renewed within its time to live) and another may have
    held it meanwhile: the work must stop, or it would run beside the other's."""


class HeldLease:
    """One piece of work's hold on the store lease ``name``: ``take`` it (or learn who holds
    it), ``keep`` it between steps (renewed at most every quarter of ``ttl_s``: cheap when not
    due; LeaseLost when it lapsed meanwhile), ``drop`` it at the end however the work ends."""

    def __init__(self, store: CardStore, name: str, actor: str, ttl_s: float) -> None:
        self.store, self.name, self.ttl_s = store, name, ttl_s
        self.owner = lease_owner(actor)
        self.renew_at = 0.0
        self.since: float | None = None  # when it was taken (a renewal keeps it)

    async def take(self) -> Lease | None:
        """None when taken; else who holds it (its owner, and since when)."""
        for _ in range(3):  # (no holder: the one that held it ended between the two reads)
            if await self.store.take_lease(self.name, self.owner, self.ttl_s):
                held = await self.store.lease_of(self.name)
                self.since = held.since if held is not None else None
                self.renew_at = time.monotonic() + self.ttl_s / 4
                return None
            holder = await self.store.lease_of(self.name)
            if holder is not None:
                return holder
        return Lease(self.name, "others one after another", time.time(), time.time())

    async def keep(self) -> None:
        if time.monotonic() < self.renew_at:
            return
        taken = await self.store.take_lease(self.name, self.owner, self.ttl_s)
        held = await self.store.lease_of(self.name) if taken else None
        if not taken or held is None or held.since != self.since:
            # lapsed, and another took it (or took it and ended meanwhile: take_lease then
            # takes the free lease anew, with a new since)
            raise LeaseLost(self.name)
        self.renew_at = time.monotonic() + self.ttl_s / 4

    async def drop(self) -> None:
        await drop_quietly(self.store, self.name, self.owner)
