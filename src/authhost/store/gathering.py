"""Requests that are ready together, handled together: the first one leads.

The stores use it for authorisation commits: the first commit to arrive becomes the leader,
yields so that every other request ready to commit now joins (more passes while each brings
more: ``let_others_join``), and then writes them all at once (one SQLite transaction, one Redis
pipeline); the others wait for the leader to hand them their results. Under load that turns N
writes into one; a lone request pays two scheduler passes. Everything runs on one event loop
thread, so no lock is needed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel


class Waiter:
    """One request in a gathering: what it asks for, then its result or error."""

    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


W = TypeVar("W", bound=Waiter)


class Gathering(Generic[W]):
    def __init__(self) -> None:
        self._pending: list[W] = []

    def join(self, waiter: W) -> bool:
        """Add ``waiter``; True when it is the first and must lead."""
        self._pending.append(waiter)
        return len(self._pending) == 1

    def __len__(self) -> int:
        return len(self._pending)

    def take(self) -> list[W]:
        """Everything that joined so far (the leader first); the next one to join leads anew."""
        batch, self._pending = self._pending, []
        return batch


# At most this many passes of the event loop for a batch to gather (see let_others_join).
GATHER_PASSES = 4


async def let_others_join(
    gathering: Gathering[Any], passes: int = GATHER_PASSES, max_s: float = math.inf
) -> None:
    """The leader's wait before it writes: passes of the event loop while each brings more
    commits (requests read from the network in the meantime), at least two: the first always
    counts (the leader itself joined before it), and the second catches the requests trio ran
    after the leader in that pass. A lone request pays those two passes; stopping after one
    cost 1% more server CPU per answer at 900/s offered (``benchmarks/same_time.py``,
    four rounds), because the batches were smaller. A busy loop writes bigger batches, so
    fewer transactions or round trips per request.

    No more passes once ``max_s`` has gone by since the leader began to wait, even after the
    first: when one pass took that long the batch is already big (the SQLite group commit sets
    it; see ``sqlite_group.GATHER_MAX_S``)."""
    gathered = 0
    began = time.perf_counter()
    for _ in range(passes):
        await anyio.lowlevel.checkpoint()
        if len(gathering) == gathered or time.perf_counter() - began >= max_s:
            return
        gathered = len(gathering)


def wake_followers(batch: list[W]) -> None:
    for waiter in batch[1:]:
        waiter.done.set()


A = TypeVar("A")
R = TypeVar("R")


async def each_at_once(call: Callable[[A], Awaitable[R]], args: Sequence[A]) -> list[R | Exception]:
    """``call`` on every argument concurrently: each result, or the exception it raised.

    For a store whose reads and writes wait on the network: concurrent calls join the same
    round trips (a gathering), where one after another would wait for each in turn."""
    outcomes: list[R | Exception] = [Exception("not run")] * len(args)

    async def one(index: int, arg: A) -> None:
        try:
            outcomes[index] = await call(arg)
        except Exception as exc:
            outcomes[index] = exc

    if len(args) == 1:
        await one(0, args[0])
        return outcomes
    async with anyio.create_task_group() as group:
        for index, arg in enumerate(args):
            group.start_soon(one, index, arg)
    return outcomes
