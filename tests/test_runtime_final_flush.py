"""At a stop, the journal entries still queued (answers sent off the pipeline: timeouts,
format errors, a store that failed) are written until FINAL_FLUSH_S is over, not tried once:
a store that blinks at the stop no longer loses them, and the ones it does lose are said to
be lost (the last word was "will retry", as the process exited 0)."""

from __future__ import annotations

import logging

import trio

from authhost import runtime
from authhost.store.interface import StoreUnavailable


class Queue:
    """The part of ``AuthService`` the flush uses: entries waiting, and a store that refuses
    the first ``refusals`` writes."""

    def __init__(self, entries: int, refusals: int) -> None:
        self.pending = entries
        self.refusals = refusals
        self.tries = 0

    async def flush_pending(self) -> int:
        self.tries += 1
        if self.tries <= self.refusals:
            logging.getLogger("authhost.auth").warning(
                "journal write failed (%s); will retry", StoreUnavailable("Redis is down")
            )
            return 0
        written, self.pending = self.pending, 0
        return written


async def _stop(queue: Queue) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runtime.flush_pending, queue)
        await trio.sleep(0)
        nursery.cancel_scope.cancel()  # the stop: the service is cancelled at once


async def test_a_store_back_within_the_final_flush_gets_every_entry(caplog) -> None:
    queue = Queue(entries=3, refusals=2)
    with caplog.at_level(logging.ERROR, "authhost.runtime"):
        await _stop(queue)
    assert queue.pending == 0 and queue.tries == 3
    assert "lost" not in caplog.text


async def test_entries_the_store_never_takes_are_said_to_be_lost(caplog, monkeypatch) -> None:
    monkeypatch.setattr(runtime, "FINAL_FLUSH_S", 1.0)
    queue = Queue(entries=2, refusals=10_000)
    with caplog.at_level(logging.ERROR, "authhost.runtime"):
        await _stop(queue)
    assert queue.pending == 2
    assert "stopping with 2 journal entries unwritten" in caplog.text
