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
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from authhost.store.interface import StoreError
from authhost.store.sqlite_schema import SCHEMA_VERSION

_COUNTED = ("cards", "accounts", "journal", "holds")


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What a store file holds: enough to compare a backup with its source."""

    path: str
    schema_version: int
    size_bytes: int  # the database file (without its WAL)
    wal_bytes: int
    rows: dict[str, int]  # rows of the main tables
    audit_head_id: int = 0  # the newest audit entry's id (0: none): what a restore drops


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
        head = (
            conn.execute("SELECT max(audit_id) FROM audit").fetchone()
            if "audit" in tables
            else None
        )
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
        audit_head_id=int(head[0] or 0) if head else 0,
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
    sync_directory(target.parent)  # the rename survives a power loss
    with contextlib.suppress(OSError):
        os.chmod(target, 0o600)
    return BackupResult(source, str(target), time.monotonic() - started, facts(str(target)))


@dataclass(frozen=True, slots=True)
class RestoreResult:
    backup: str
    store: str
    replaced: str | None  # where the store's previous content was kept, if there was one
    facts: StoreFacts  # of the store as restored


def _take_whole(store: Path) -> None:
    """Make the store one self-contained file and prove no process has it open.

    A server killed outright leaves its newest commits in ``-wal``; a copy put in the
    store's place beside that WAL gets those frames replayed over it, which corrupts it
    (indexes that no longer match their tables). Leaving WAL mode folds the WAL into the
    file and deletes it, and SQLite allows it only to the one connection on the file: any
    server, worker or command still on it makes it fail, so the restore stops there."""
    try:
        conn = sqlite3.connect(store, timeout=0)
        try:
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            mode = "in use"
        else:
            raise StoreError(f"cannot open {store}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{store} is not a readable SQLite store ({exc}): move it and its -wal and -shm "
            "files away yourself, then restore"
        ) from None
    if mode != "delete":
        raise StoreError(
            f"{store} is open in another process (a server, a worker, a command): stop every "
            'process on the store first (kill "$(cat authhost.pid)"), then restore'
        )


def _the_file(store: str | Path) -> Path:
    """The store's real file: a store path that is a symlink (the data on another volume)
    had the symlink replaced by a regular file beside it, the real file left as it was."""
    return Path(os.path.realpath(store))


def _same_file(copy: Path, store: Path) -> bool:
    """The copy is the store, by name or by inode (a hard link, another path to it)."""
    if copy.resolve() == store:
        return True
    try:
        return os.path.samefile(copy, store)
    except OSError:  # one of them does not exist
        return False


def _free_name(store: Path, stamp: str) -> Path:
    """``STORE.replaced-STAMP``, with a counter when a restore in the same second took it."""
    name = store.with_name(f"{store.name}.replaced-{stamp}")
    count = 1
    while os.path.lexists(name):
        count += 1
        name = store.with_name(f"{store.name}.replaced-{stamp}-{count}")
    return name


def _beside(store: Path) -> Path | None:
    """The store's -wal, -shm or -journal file, if one is there: a process on the store."""
    return next(
        (f for f in (Path(f"{store}{end}") for end in ("-wal", "-shm", "-journal")) if f.exists()),
        None,
    )


def _owned_as(path: Path, old: os.stat_result) -> None:
    """Give the restored file the old store's owner and mode: restored by root (or by
    another operator), it was theirs with mode 0600, and the servers' account could no
    longer open its own store."""
    if (old.st_uid, old.st_gid) != (os.stat(path).st_uid, os.stat(path).st_gid):
        os.chown(path, old.st_uid, old.st_gid)
    os.chmod(path, stat.S_IMODE(old.st_mode))


def sync_directory(folder: Path) -> None:
    """fsync ``folder``: a rename or a new link in it is on disk only once its directory is
    (ext4 and XFS may otherwise lose it to a power loss, the file's content kept)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _counters(path: Path) -> tuple[int, int]:
    """The last journal id and fraud report id the store at ``path`` handed out (0: none)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        journal = report = 0
        if "sqlite_sequence" in tables:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
            journal = int(row[0]) if row else 0
        if "fraud_report_ids" in tables:
            row = conn.execute("SELECT last FROM fraud_report_ids WHERE one = 1").fetchone()
            report = int(row[0]) if row else 0
        return journal, report
    finally:
        conn.close()


def _keep_feed_cursors_valid(incoming: Path, store: Path) -> None:
    """Number the restored store's next journal entries and fraud reports after the
    replaced store's. The feeds' cursors (movements, alerts, reviews, fraud reports) are
    ids the replaced store gave out; restored as the backup numbered them, the host handed
    the ids between the backup's newest and the replaced store's newest out again, to new
    movements, which a ledger whose cursor had passed them never listed: money the host
    moved that the ledger never booked. The audit log keeps its own numbering (its chain
    is verified without gaps; the ``store.restore`` entry says what was dropped)."""
    journal, report = _counters(store)
    conn = sqlite3.connect(incoming)
    try:
        with conn:
            if journal:
                conn.execute(
                    "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'journal'",
                    (journal,),
                )
                conn.execute(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT 'journal', ? WHERE NOT "
                    "EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'journal')",
                    (journal,),
                )
            if report:
                conn.execute(
                    "UPDATE fraud_report_ids SET last = MAX(last, ?) WHERE one = 1", (report,)
                )
    finally:
        conn.close()


def restore(copy: str | Path, store: str | Path, *, now: float) -> RestoreResult:
    """Put the backup ``copy`` in the place of the store at ``store``, which no process may
    have open. The copy is checked first, and written beside the store and renamed over it,
    so a crash leaves the old store or the new one, never a mix; the store's previous
    content stays beside it as ``STORE.replaced-STAMP`` (delete it once the restore is
    known good), and the restored file has its owner and mode."""
    copy, store = Path(copy), _the_file(store)
    if not store.parent.is_dir():  # SQLite said only "unable to open database file"
        raise StoreError(f"{store}: the folder {store.parent} does not exist")
    if _same_file(copy, store):
        raise StoreError("the backup is the store itself")
    if problems := check(str(copy)):
        raise StoreError(f"the backup {copy} failed its check: {'; '.join(problems[:5])}")
    version = facts(str(copy)).schema_version
    if version < 1:
        raise StoreError(f"{copy} is an SQLite file but not an authhost store")
    if version > SCHEMA_VERSION:  # no server of this version would open it: say so now
        raise StoreError(
            f"the backup {copy} has schema version {version}; this authhost knows up to "
            f"{SCHEMA_VERSION}: restore it with the authhost that wrote it"
        )
    old = None
    if store.exists():
        _take_whole(store)
        old = os.stat(store)
    if stale := _beside(store):  # left without a store file, or by a process just gone
        raise StoreError(f"{stale} is there: stop every process on the store first")
    incoming = store.with_name(store.name + ".restoring")
    backup(str(copy), incoming, overwrite=True)
    if stale := _beside(store):  # a server started while the copy was made: it writes to the
        incoming.unlink(missing_ok=True)  # old file under the store's -wal, which SQLite
        raise StoreError(  # would replay over the copy put in its place
            f"a process opened {store} while the backup was copied ({stale} appeared): "
            "nothing changed; stop every process on the store (and what restarts them), then "
            "restore again"
        )
    replaced = None
    if old is not None:
        doing = "number the copy's next journal entries after the store's"
        try:
            _keep_feed_cursors_valid(incoming, store)
            doing = "give the copy the store's owner and mode"
            _owned_as(incoming, old)
            doing = "keep the store under a second name"
            replaced = _free_name(store, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))
            os.link(store, replaced)  # kept under a second name: the rename below loses nothing
            sync_directory(store.parent)  # the second name on disk before the rename
        except (OSError, sqlite3.Error) as exc:
            incoming.unlink(missing_ok=True)
            raise StoreError(
                f"cannot {doing} ({store}: {getattr(exc, 'strerror', None) or exc}): "
                "nothing changed"
            ) from None
    os.replace(incoming, store)
    sync_directory(store.parent)  # else a power loss may bring the old store back
    return RestoreResult(
        str(copy), str(store), str(replaced) if replaced else None, facts(str(store))
    )
