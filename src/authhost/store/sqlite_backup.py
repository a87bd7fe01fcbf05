"""Online backup, integrity check and facts of the SQLite store's file, while servers run.

Copying ``authhost.db`` with ``cp`` while a server writes can give a file that is not a
database (half a write) or that lacks what sits in the ``-wal`` file. SQLite's backup API
copies what one read transaction sees: a consistent snapshot. It is taken in one step, so
that the servers' commits never restart it (a stepped backup starts over whenever another
connection writes); in WAL mode a reader blocks no writer, so the servers go on answering
meanwhile, and the WAL only grows until the copy is done. The copy is written beside the
target, checked (``PRAGMA quick_check``) and renamed into place, readable by its owner only:
it holds the encrypted PANs and the journal.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from authhost.store.interface import StoreError

_COUNTED = ("cards", "accounts", "journal", "holds")


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What a store file holds: enough to compare a backup with its source."""

    path: str
    schema_version: int
    size_bytes: int  # the database file (without its WAL)
    wal_bytes: int
    rows: dict[str, int]  # rows of the main tables


@dataclass(frozen=True, slots=True)
class BackupResult:
    source: str
    target: str
    seconds: float
    facts: StoreFacts  # of the copy


def _read_only(path: str) -> sqlite3.Connection:
    if not os.path.exists(path):
        raise StoreError(f"no SQLite store at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable SQLite store: {exc}") from None
    return conn


def facts(path: str) -> StoreFacts:
    """Schema version, sizes and row counts of the store at ``path`` (read only)."""
    conn = _read_only(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        rows = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            for name in _COUNTED
            if name in tables
        }
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    finally:
        conn.close()
    wal = Path(f"{path}-wal")
    return StoreFacts(
        path=path,
        schema_version=version,
        size_bytes=os.path.getsize(path),
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        rows=rows,
    )


def check(path: str, *, full: bool = False) -> list[str]:
    """The problems SQLite finds in the file ([] when it is sound): ``quick_check`` (pages
    and records), or with ``full`` also every index against its table (``integrity_check``,
    slower on a big journal)."""
    conn = _read_only(path)
    try:
        pragma = "integrity_check" if full else "quick_check"
        found = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [] if found == ["ok"] else found


def backup(source: str, target: str | Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the store at ``source`` to ``target`` as one consistent snapshot (see the module
    docstring); refuses an existing ``target`` unless ``overwrite``."""
    target = Path(target)
    store = Path(source).resolve()
    if target.resolve() == store:
        raise StoreError("the backup cannot be the store itself")
    # the store's own WAL, shared memory or journal: renaming a copy over the WAL throws away
    # the commits not yet checkpointed into the file (and --force used to do just that)
    if target.resolve() in {Path(f"{store}{end}") for end in ("-wal", "-shm", "-journal")}:
        raise StoreError(f"the backup cannot be {target}: it is the store's own {target.suffix}")
    if target.is_dir():  # checked before any work: --force overwrites a file, never a directory
        raise StoreError(
            f"{target} is a directory: name the backup file (e.g. {target}/authhost.db)"
        )
    if target.exists() and not overwrite:
        raise StoreError(f"{target} exists: choose another file, or overwrite it with --force")
    partial = target.with_name(target.name + ".partial")
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    src = _read_only(source)
    try:
        dst = sqlite3.connect(partial)
        try:
            os.chmod(partial, 0o600)
            src.backup(dst)  # one step: one read transaction, never restarted by writers
            problems = [row[0] for row in dst.execute("PRAGMA quick_check")]
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup of {source} failed: {exc}") from None
    finally:
        src.close()
    if problems != ["ok"]:
        partial.unlink(missing_ok=True)
        raise StoreError(f"the copy of {source} failed its check: {'; '.join(problems[:5])}")
    try:
        os.replace(partial, target)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):
        os.chmod(target, 0o600)
    return BackupResult(source, str(target), time.monotonic() - started, facts(str(target)))
