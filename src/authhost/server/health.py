"""Liveness and readiness for orchestrators and load balancers: ``/healthz`` and ``/readyz``.

A process can be running and still be useless: its event loop wedged, its store unreachable,
or draining on its way out. The event loop writes a heartbeat and the result of a cheap store
read every second; the metrics endpoint's HTTP thread only reads them, so a health check never
touches the store or the loop itself and cannot slow an authorisation down.

* ``/healthz`` (liveness): 200 while the event loop beats. A 503 means restart the process.
* ``/readyz`` (readiness): 200 while the loop beats, the server listens, it is not draining
  (SIGTERM), the store answered its last read, and it has not refused journal writes for
  ``WRITES_REFUSED_S`` (a full disk or Redis at its maxmemory answer reads and refuse every write:
  every authorisation would be a 96). A 503 means send traffic elsewhere for now; it comes
  back by itself when the store does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

BEAT_S = 1.0  # how often the loop beats and reads the store
STALE_S = 5.0  # a beat or a store answer older than this counts as missing
STORE_TIMEOUT_S = 2.0  # a store read slower than this is a failed one
WRITES_REFUSED_S = 5.0  # the store refusing writes this long makes the host not ready


@dataclass
class Health:
    """Written by the event loop, read by the HTTP thread (each field is one assignment)."""

    beat: float = 0.0  # time.monotonic() of the event loop's last heartbeat
    store_ok_at: float = 0.0  # ... of the store's last successful read (0: none yet)
    store_ms: float = 0.0  # how long that read took
    store_error: str = ""  # why the last read failed ("" when it did not)
    listening: bool = False
    draining: bool = False
    journal_waiting: int = 0  # journal entries answered off the pipeline, not yet written
    writes_refused_s: float | None = None  # how long the store has refused to write them
    writes_error: str = ""  # the store's words

    def note_journal(self, backlog: tuple[int, float | None, str]) -> None:
        """What the decision handler's ``journal_backlog()`` says, kept for the HTTP thread."""
        self.journal_waiting, self.writes_refused_s, self.writes_error = backlog

    def report(self, now: float | None = None) -> dict[str, object]:
        now = time.monotonic() if now is None else now
        loop_age = now - self.beat if self.beat else None
        store_age = now - self.store_ok_at if self.store_ok_at else None
        live = loop_age is not None and loop_age <= STALE_S
        store_ok = store_age is not None and store_age <= STALE_S and not self.store_error
        refused = self.writes_refused_s
        writes_ok = refused is None or refused < WRITES_REFUSED_S
        ready = live and store_ok and writes_ok and self.listening and not self.draining
        return {
            "live": live,
            "ready": ready,
            "event_loop_beat_age_s": None if loop_age is None else round(loop_age, 3),
            "store": {
                "ok": store_ok,
                "read_ms": round(self.store_ms, 3),
                "last_ok_age_s": None if store_age is None else round(store_age, 3),
                "error": self.store_error,
                "writes_ok": writes_ok,
                "writes_refused_s": None if refused is None else round(refused, 3),
                "writes_error": self.writes_error,
                "journal_waiting": self.journal_waiting,
            },
            "listening": self.listening,
            "draining": self.draining,
        }


async def keep_beating(
    health: Health,
    read_store: Callable[[], Awaitable[object]] | None,
    journal_backlog: Callable[[], tuple[int, float | None, str]] | None = None,
) -> None:
    """Beat, read the store, and note the journal's backlog every ``BEAT_S`` until
    cancelled."""
    while True:
        health.beat = time.monotonic()
        if journal_backlog is not None:
            health.note_journal(journal_backlog())
        if read_store is not None:
            started = time.monotonic()
            with trio.move_on_after(STORE_TIMEOUT_S) as scope:
                try:
                    await read_store()
                except Exception as exc:  # any store failure: not ready, and why
                    health.store_error = f"{type(exc).__name__}: {exc}"[:200]
                else:
                    health.store_ms = (time.monotonic() - started) * 1000
                    health.store_ok_at = time.monotonic()
                    health.store_error = ""
            if scope.cancelled_caught:
                health.store_error = f"no answer within {STORE_TIMEOUT_S:g} s"
        else:
            health.store_ok_at = health.beat  # nothing to read: a store-less server is ready
        await trio.sleep(BEAT_S)


def health_response(health: Health, path: str) -> tuple[str, bytes] | None:
    """The (HTTP status, JSON body) for ``/healthz`` or ``/readyz``; None for another path."""
    if path not in ("/healthz", "/readyz"):
        return None
    report = health.report()
    ok = report["live"] if path == "/healthz" else report["ready"]
    status = "200 OK" if ok else "503 Service Unavailable"
    return status, json.dumps(report).encode() + b"\n"
