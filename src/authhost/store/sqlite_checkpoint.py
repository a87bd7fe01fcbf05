"""WAL checkpoints off the write path.

SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so one
authorisation in a thousand would wait for the database file to be written and fsynced. This
thread does it instead, every ``interval`` seconds, in PASSIVE mode (it never blocks readers or
the writer; what it cannot copy now it copies next time). Every connection that writes (the
writer thread's and each event loop's, which group commits use) keeps a high automatic threshold
only as a backstop: with SQLite's default of 1,000 pages, a busy loop thread checkpointed (and
fsynced) inside its own commits about 14 times a second.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable

BACKSTOP_PAGES = 20_000  # ~80 MB of WAL before the writer checkpoints by itself


class Checkpointer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], interval: float = 1.0):
        self._connect = connect
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        conn = self._connect()
        try:
            while not self._stop.wait(self._interval):
                with contextlib.suppress(sqlite3.Error):  # busy now: next time
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
