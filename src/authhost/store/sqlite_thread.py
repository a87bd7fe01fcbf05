"""A dedicated SQLite thread with group commit, awaited from any anyio event loop.

sqlite3 blocks, so the event loop must never call it directly. Each ``SqliteThread`` owns one
connection and runs jobs (plain functions of that connection) from a queue. A writer thread
takes every job that is waiting, runs them in ONE ``BEGIN IMMEDIATE`` transaction (each job
inside its own savepoint, so a failing job is undone alone), commits once, then wakes all the
waiting tasks with one call into their event loop (a failing job makes the batch run again
job by job, so it is undone alone). Under load that turns N commits into one
WAL append and one thread hop, which is what lets the embedded store keep up with the
authorisation pipeline. A reader thread runs the waiting jobs in one read transaction (a
consistent snapshot in WAL mode).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.from_thread
import anyio.lowlevel

from authhost.store.interface import unavailable

Job = Callable[[sqlite3.Connection], Any]
MAX_BATCH = 512


@dataclass(slots=True)
class _Pending:
    job: Job
    token: Any
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: BaseException | None = None


def _wake(batch: list[_Pending]) -> None:
    for item in batch:
        item.done.set()


class SqliteThread:
    """One connection, one thread; ``await run(job)`` returns ``job(connection)``."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str, writer: bool):
        self._connect = connect
        self._writer = writer
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            raise self._startup_error

    async def run(self, job: Job) -> Any:
        pending = _Pending(job, anyio.lowlevel.current_token())
        self._queue.put(pending)
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self) -> None:
        """Stop after the queued jobs; blocks until the thread has closed its connection."""
        self._queue.put(None)
        self._thread.join()

    # --- the thread ----------------------------------------------------------------------

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to the opener
            self._startup_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                try:
                    if self._writer:
                        self._run_writes(conn, batch)
                    else:
                        self._run_reads(conn, batch)
                except BaseException as exc:  # the connection is in an unknown state
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    failed = _refused(exc)
                    for item in batch:
                        item.result, item.error = None, failed
                self._notify(batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_reads(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        """One read transaction for the batch: each job sees a consistent database, and all
        of them see it as of the moment the batch started (writes re-check what matters)."""
        try:
            conn.execute("BEGIN")
        except BaseException as exc:
            for item in batch:
                item.error = exc
            return
        for item in batch:
            try:
                item.result = item.job(conn)
            except BaseException as exc:
                item.error = exc
        with contextlib.suppress(sqlite3.Error):
            conn.execute("COMMIT")

    def _run_writes(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        """All jobs in one transaction. If one fails, roll back and run each job again in a
        transaction of its own, so the failure is undone alone. (Jobs change nothing but the
        database, so running one again is safe; savepoints per job would cost two more
        sqlite3 calls each, and every call gives up and re-takes the GIL.)"""
        if len(batch) > 1:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                pass
            else:
                if commit_together(conn, batch):
                    return
        for item in batch:
            item.result, item.error = None, None
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException as exc:
                item.error = _refused(exc)
                continue
            commit_alone(conn, item)

    def _notify(self, batch: list[_Pending]) -> None:
        by_token: dict[int, list[_Pending]] = {}
        tokens: dict[int, Any] = {}
        for item in batch:
            by_token.setdefault(id(item.token), []).append(item)
            tokens[id(item.token)] = item.token
        for key, items in by_token.items():
            # RuntimeError: that event loop has ended, so nobody is waiting any more
            with contextlib.suppress(RuntimeError):
                _call_soon(tokens[key], items)


class WriteItem(Protocol):
    job: Job
    result: Any
    error: BaseException | None


def commit_together(conn: sqlite3.Connection, items: Sequence[WriteItem]) -> bool:
    """Run every job inside the write transaction just begun and commit; False (rolled back,
    results meaningless) when one of them or the commit failed."""
    try:
        for item in items:
            item.result = item.job(conn)
        conn.execute("COMMIT")
        return True
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        return False


def commit_alone(conn: sqlite3.Connection, item: WriteItem) -> None:
    """Run one job inside the write transaction just begun and commit; a failure is rolled
    back and kept on the item."""
    try:
        item.result = item.job(conn)
        conn.execute("COMMIT")
    except BaseException as exc:
        item.result, item.error = None, _refused(exc)
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _refused(error: BaseException) -> BaseException:
    """SQLite's own error of a write (a full disk, a lock held past the busy timeout, an I/O
    error) as the store's ``StoreUnavailable``; what a job raised on purpose stays as it is."""
    if isinstance(error, sqlite3.Error):
        return unavailable(error, "SQLite refused the write")
    return error


def _call_soon(token: Any, items: list[_Pending]) -> None:
    """Schedule the wake-up in the event loop without waiting for it to run.

    anyio's ``from_thread.run_sync`` would block this thread for a full round trip per batch;
    both backends offer a non-blocking thread-safe "call soon", which is all a wake-up needs.
    """
    native = token.native_token
    if hasattr(native, "run_sync_soon"):  # trio.lowlevel.TrioToken
        native.run_sync_soon(_wake, items)
    elif hasattr(native, "call_soon_threadsafe"):  # asyncio event loop
        native.call_soon_threadsafe(_wake, items)
    else:
        anyio.from_thread.run_sync(_wake, items, token=token)
