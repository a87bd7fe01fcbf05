"""Holding a store lease (``CardStore.take_lease``) for a piece of work: whose it is, and
letting it go however the work ends."""

from __future__ import annotations

import contextlib
import secrets

import anyio

from authhost.store.interface import CardStore, StoreError

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
