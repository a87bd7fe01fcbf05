"""Online backup, check and facts of the SQLite store: a consistent copy while commits go on."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import trio
from test_store_contract import hold, seeded
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.store import open_store, sqlite_backup
from authhost.store.interface import JournalQuery, StoreError
from authhost.store.sqlite_backup import backup, check, facts, restore


async def test_a_backup_taken_while_commits_go_on_is_consistent_and_blocks_none(tmp_path):
    """Holds are committed the whole time the copy is taken; the copy opens as a store whose
    account holds exactly what its own journal says was held, and the commits never waited
    for the copy (more of them were made while it ran)."""
    source = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{source}")
    card, _ = await seeded(store, balance=10_000_000)
    for n in range(300):  # a journal worth copying
        await store.commit(hold(card, n, 100))
    committed = 300
    copying = True

    async def keep_committing() -> None:
        nonlocal committed
        while copying:
            await store.commit(hold(card, committed, 100))
            committed += 1
            await trio.sleep(0)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_committing)
            await trio.sleep(0.05)
            before = committed
            result = await trio.to_thread.run_sync(backup, str(source), tmp_path / "copy.db")
            after = committed
            copying = False
        assert after > before  # commits went on while the copy was taken
    finally:
        await store.close()

    assert stat.S_IMODE(os.stat(tmp_path / "copy.db").st_mode) == 0o600
    assert not (tmp_path / "copy.db.partial").exists()
    assert check(str(tmp_path / "copy.db"), full=True) == []
    copied = await open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        entries = await copied.journal(JournalQuery(card_id=card.card_id, limit=100_000))
        account = await copied.get_account("acc-1")
    finally:
        await copied.close()
    assert before <= len(entries) <= committed
    assert account.holds == 100 * len(entries)  # one moment, not a mix: each entry held 100
    assert result.facts.rows["journal"] == len(entries)
    assert result.facts.schema_version == facts(str(source)).schema_version


async def test_a_backup_refuses_to_overwrite_unless_told_and_never_the_store_itself(tmp_path):
    source = await _seeded_file(tmp_path / "cards.db")
    target = tmp_path / "copy.db"
    backup(str(source), target)
    with pytest.raises(StoreError, match="exists"):
        backup(str(source), target)
    assert backup(str(source), target, overwrite=True).facts.rows["cards"] == 1
    with pytest.raises(StoreError, match="the store itself"):
        backup(str(source), source, overwrite=True)
    with pytest.raises(StoreError, match="no SQLite store"):
        backup(str(tmp_path / "missing.db"), tmp_path / "x.db")
    with pytest.raises(StoreError, match="failed"):  # a folder that is not there
        backup(str(source), tmp_path / "nowhere" / "copy.db")
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(StoreError, match="is a directory: name the backup file"):
        backup(str(source), tmp_path / "a-folder", overwrite=True)  # said before any copying
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


async def test_a_backup_never_takes_the_place_of_the_stores_own_wal(tmp_path):
    """``store backup authhost.db-wal --force`` renamed the copy over the live WAL: the
    commits not yet checkpointed into the file were gone for every new reader (found by a
    review)."""
    source = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{source}")
    card, _ = await seeded(store, balance=10_000_000)
    try:
        for n in range(3):
            await store.commit(hold(card, n, 100))
        writer = sqlite3.connect(source)  # a server's commit, left in the WAL
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("CREATE TABLE only_in_the_wal (x)")
        writer.commit()
        assert os.path.getsize(f"{source}-wal") > 0
        for end in ("-wal", "-shm", "-journal"):
            with pytest.raises(StoreError, match="the store's own"):
                backup(str(source), f"{source}{end}", overwrite=True)
        reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        tables = {row[0] for row in reader.execute("SELECT name FROM sqlite_master")}
        reader.close()
        writer.close()
        assert "only_in_the_wal" in tables
    finally:
        await store.close()
    assert check(str(source)) == []


async def test_check_finds_a_damaged_file(tmp_path):
    source = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{source}")
    card, _ = await seeded(store, balance=10_000_000)
    for n in range(500):
        await store.commit(hold(card, n, 100))
    await store.close()
    damaged = tmp_path / "damaged.db"
    backup(str(source), damaged)
    assert check(str(damaged)) == []
    size = damaged.stat().st_size
    with damaged.open("r+b") as file:  # scribble over pages in the middle of the file
        file.seek(size // 2)
        file.write(os.urandom(16_384))
    assert check(str(damaged), full=True) != []
    (tmp_path / "text.db").write_text("not a database")
    with pytest.raises(StoreError, match="not a readable SQLite store"):
        facts(str(tmp_path / "text.db"))


def test_the_cli_backs_up_checks_and_describes_and_says_why_not_on_redis(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo's key store and card file go there, not the checkout
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cards.db'}"
    assert runner.invoke(app, ["demo", "--store", url]).exit_code == 0
    copy = tmp_path / "copy.db"
    done = runner.invoke(app, ["store", "backup", str(copy), "--store", url])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["store", "backup", str(copy), "--store", url])
    assert again.exit_code == 1 and "--force" in again.stderr
    assert (
        runner.invoke(app, ["store", "backup", str(copy), "--force", "--store", url]).exit_code == 0
    )
    into_dir = runner.invoke(app, ["store", "backup", str(tmp_path), "--force", "--store", url])
    assert into_dir.exit_code == 1 and "is a directory: name the backup file" in into_dir.stderr
    checked = runner.invoke(app, ["store", "check", "--full", "--store", f"sqlite:///{copy}"])
    assert checked.exit_code == 0 and '"ok": true' in checked.stdout
    info = runner.invoke(app, ["store", "info", "--store", f"sqlite:///{copy}"])
    assert info.exit_code == 0 and '"cards"' in info.stdout
    redis = runner.invoke(app, ["store", "backup", str(copy), "--store", "redis://127.0.0.1:1/0"])
    assert redis.exit_code == 1 and "BGSAVE" in redis.stderr
    redis = runner.invoke(app, ["store", "restore", str(copy), "--store", "redis://127.0.0.1:1/0"])
    assert redis.exit_code == 1 and "BGSAVE" in redis.stderr


_KILLED_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA wal_autocheckpoint = 0")
conn.execute("CREATE TABLE written_after_the_backup (x)")
conn.executemany("INSERT INTO written_after_the_backup VALUES (?)", [(n,) for n in range(2000)])
conn.execute("UPDATE accounts SET balance = balance + 1")
conn.commit()
os._exit(0)  # killed outright: its commits stay in the -wal file, never checkpointed
"""


async def _store_with_a_killed_writer(tmp_path):
    """A store, its backup, then commits a process killed outright left in the -wal."""
    source = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{source}")
    card, _ = await seeded(store, balance=10_000_000)
    for n in range(50):
        await store.commit(hold(card, n, 100))
    await store.close()
    copy = tmp_path / "copy.db"
    backup(str(source), copy)
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(source)], check=True)
    assert os.path.getsize(f"{source}-wal") > 0
    return source, copy


def _tables(path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


async def test_a_restore_after_a_crash_is_the_backup_not_the_backup_under_a_stale_wal(
    tmp_path, monkeypatch
):
    """README's restore was "put the copy in the store's place": after a server killed
    outright, its -wal file stayed beside the copy and SQLite replayed it over the copy
    (``integrity_check``: "wrong # of entries in index journal_by_ts"; found by following
    the README). ``authhost store restore`` folds the WAL into the old store, keeps that
    aside, and puts the checked copy in place alone."""
    source, copy = await _store_with_a_killed_writer(tmp_path)
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)  # a demo key store there: the restore's audit entry is sealed
    demo = ["demo", "--store", f"sqlite:///{tmp_path / 'demo.db'}"]
    assert (await trio.to_thread.run_sync(runner.invoke, app, demo)).exit_code == 0
    restoring = ["store", "restore", str(copy), "--store", f"sqlite:///{source}"]
    done = await trio.to_thread.run_sync(runner.invoke, app, restoring)
    assert done.exit_code == 0, done.output
    assert check(str(source), full=True) == []
    # the stale -wal was folded into the old store, not replayed over the copy (a -wal there
    # now is the restore's audit entry's own, written through the store)
    assert "written_after_the_backup" not in _tables(source)
    assert facts(str(source)).rows == facts(str(copy)).rows
    assert stat.S_IMODE(os.stat(source).st_mode) == 0o600
    [kept] = list(tmp_path.glob("cards.db.replaced-*"))  # what the store held: nothing lost
    assert str(kept) in done.stdout
    assert "written_after_the_backup" in _tables(kept)
    assert check(str(kept), full=True) == []
    store = await open_store(f"sqlite:///{source}")
    try:
        assert (await store.get_account("acc-1")).holds == 50 * 100
    finally:
        await store.close()


async def test_a_restore_is_refused_while_a_process_has_the_store_open(tmp_path):
    source = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{source}")
    await seeded(store)
    copy = tmp_path / "copy.db"
    backup(str(source), copy)
    try:
        with pytest.raises(StoreError, match="open in another process"):
            restore(copy, source, now=0.0)
    finally:
        await store.close()
    assert list(tmp_path.glob("*.replaced-*")) == []
    assert list(tmp_path.glob("*.restoring*")) == []


async def test_a_restore_refuses_a_copy_that_is_not_a_sound_store(tmp_path):
    source = await _seeded_file(tmp_path / "cards.db")
    (tmp_path / "notes.txt").write_text("not a database")
    with pytest.raises(StoreError, match="not a readable SQLite store"):
        restore(tmp_path / "notes.txt", source, now=0.0)
    with pytest.raises(StoreError, match="the store itself"):
        restore(source, source, now=0.0)
    plain = sqlite3.connect(tmp_path / "plain.db")
    plain.execute("CREATE TABLE t (x)")
    plain.commit()
    plain.close()
    with pytest.raises(StoreError, match="not an authhost store"):
        restore(tmp_path / "plain.db", source, now=0.0)
    future = tmp_path / "future.db"
    backup(str(source), future)
    with sqlite3.connect(future) as conn:  # as a newer authhost leaves it
        conn.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreError, match="schema version 999; this authhost knows up to"):
        restore(future, source, now=0.0)
    assert list(tmp_path.glob("*.replaced-*")) == []
    assert facts(str(source)).rows["cards"] == 1


async def _store_and_copy(tmp_path, store_path) -> os.PathLike:
    """An empty store at ``store_path`` and, apart, a backup of a store holding a card."""
    await (await open_store(f"sqlite:///{store_path}")).close()
    other = await _seeded_file(tmp_path / "other.db")
    copy = tmp_path / "copy.db"
    backup(str(other), copy)
    return copy


async def _seeded_file(path: Path) -> Path:
    """A store file at ``path`` holding an account and its card (``seeded``), closed."""
    store = await open_store(f"sqlite:///{path}")
    await seeded(store)
    await store.close()
    return path


async def test_a_restore_through_a_symlinked_store_writes_its_real_file(tmp_path):
    """A store path that is a symlink (the data on its own volume): the restore replaced the
    symlink with a regular file beside it and left the real file as it was, so whatever
    opened the real path still saw the old store."""
    (tmp_path / "data").mkdir()
    (tmp_path / "etc").mkdir()
    real = tmp_path / "data" / "authhost.db"
    copy = await _store_and_copy(tmp_path, real)
    link = tmp_path / "etc" / "authhost.db"
    link.symlink_to(real)
    done = restore(copy, link, now=0.0)
    assert link.is_symlink() and link.resolve() == real
    assert facts(str(real)).rows["cards"] == 1
    assert done.replaced is not None and os.path.dirname(done.replaced) == str(real.parent)
    assert not os.path.islink(done.replaced) and facts(done.replaced).rows["cards"] == 0
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["authhost.db"]


async def test_a_restored_store_keeps_the_old_stores_owner_and_mode(tmp_path):
    """Restored by root, the store was root's with mode 0600: the servers' own account
    could no longer open it."""
    store = tmp_path / "authhost.db"
    copy = await _store_and_copy(tmp_path, store)
    os.chmod(store, 0o640)
    owner = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(store, *owner)
    restore(copy, store, now=0.0)
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o640
    assert (os.stat(store).st_uid, os.stat(store).st_gid) == owner
    assert facts(str(store)).rows["cards"] == 1


async def test_a_restore_into_a_missing_folder_says_which(tmp_path):
    copy = await _store_and_copy(tmp_path, tmp_path / "authhost.db")
    with pytest.raises(StoreError, match=r"the folder .*nowhere does not exist"):
        restore(copy, tmp_path / "nowhere" / "authhost.db", now=0.0)
    assert not (tmp_path / "nowhere").exists()


async def test_two_restores_in_one_second_keep_both_and_a_hard_link_is_the_store(tmp_path):
    """The second restore of a second (the wrong backup first, then the right one) failed
    on the first's STORE.replaced-STAMP; a hard link to the store is the store itself."""
    store = tmp_path / "authhost.db"
    copy = await _store_and_copy(tmp_path, store)
    first = restore(copy, store, now=0.0)
    second = restore(copy, store, now=0.0)
    assert first.replaced != second.replaced
    assert sorted(p.name for p in tmp_path.glob("authhost.db.replaced-*")) == [
        "authhost.db.replaced-19700101T000000Z",
        "authhost.db.replaced-19700101T000000Z-2",
    ]
    alias = tmp_path / "alias.db"
    os.link(store, alias)
    with pytest.raises(StoreError, match="the store itself"):
        restore(alias, store, now=0.0)


async def test_a_server_that_opens_the_store_during_the_copy_stops_the_restore(
    tmp_path, monkeypatch
):
    """A server started (or restarted by its supervisor) while the copy was made wrote to
    the old file under the store's -wal; the copy was renamed in beside that WAL, which the
    next opener replays over it. Held at the end of the copy, the server opens the store."""
    store = tmp_path / "authhost.db"
    copy = await _store_and_copy(tmp_path, store)
    intruder: list[sqlite3.Connection] = []
    copied = sqlite_backup.backup

    def copy_then_a_server_starts(*args, **kwargs):
        done = copied(*args, **kwargs)
        conn = sqlite3.connect(store, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE written_by_the_server (x)")
        intruder.append(conn)
        return done

    monkeypatch.setattr(sqlite_backup, "backup", copy_then_a_server_starts)
    with pytest.raises(StoreError, match="opened .* while the backup was copied"):
        restore(copy, store, now=0.0)
    intruder[0].close()
    assert list(tmp_path.glob("authhost.db.re*")) == []  # nothing changed
    assert facts(str(store)).rows["cards"] == 0
    monkeypatch.setattr(sqlite_backup, "backup", copied)
    restore(copy, store, now=0.0)  # every process stopped: it goes through
    assert facts(str(store)).rows["cards"] == 1 and check(str(store), full=True) == []


_RESTORE_AS_NOBODY = """
import os, sys
from authhost.store.interface import StoreError
from authhost.store.sqlite_backup import restore
os.setgid(65534)
os.setuid(65534)
try:
    restore(sys.argv[1], sys.argv[2], now=0.0)
except StoreError as exc:
    print(exc)
    sys.exit(1)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the restore as another user")
async def test_a_restore_that_cannot_keep_the_stores_owner_changes_nothing(tmp_path):
    """Run by another account than the store's owner (which may write it), the restored
    file was that account's with mode 0600: the servers could no longer open it."""
    with tempfile.TemporaryDirectory(dir="/tmp") as shared:  # pytest's own is root's alone
        await _restore_as_nobody(Path(shared))


async def _restore_as_nobody(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)
    store = tmp_path / "authhost.db"
    copy = await _store_and_copy(tmp_path, store)
    os.chmod(store, 0o666)
    os.chmod(copy, 0o644)
    done = subprocess.run(
        [sys.executable, "-c", _RESTORE_AS_NOBODY, str(copy), str(store)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot give the copy the store's owner and mode" in done.stdout
    assert "nothing changed" in done.stdout
    assert os.stat(store).st_uid == 0 and facts(str(store)).rows["cards"] == 0
    assert list(tmp_path.glob("authhost.db.re*")) == []


async def test_a_restore_fsyncs_the_folder_after_each_rename_and_link(tmp_path, monkeypatch):
    """A rename is on disk only once its directory is: after a power loss the restore's
    rename (and the kept STORE.replaced-STAMP) could be lost, the old store back in place.
    The real calls are made; the test only records their order."""
    store = tmp_path / "authhost.db"
    copy = await _store_and_copy(tmp_path, store)
    done: list[tuple[str, str]] = []
    real_fsync, real_replace, real_link = os.fsync, os.replace, os.link

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            done.append(("fsync folder", str(os.fstat(fd).st_ino)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        real_replace(src, dst)
        done.append(("replace", Path(dst).name))

    def link(src, dst) -> None:
        real_link(src, dst)
        done.append(("link", Path(dst).name))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    result = restore(copy, store, now=0.0)
    folder = ("fsync folder", str(os.stat(tmp_path).st_ino))
    kept = Path(result.replaced or "").name
    assert done[done.index(("link", kept)) + 1] == folder
    assert done[done.index(("replace", "authhost.db")) + 1] == folder
    assert done[-1] == folder


def test_a_backup_and_a_restore_are_audited_with_the_entries_a_restore_drops(tmp_path, monkeypatch):
    """`store backup` copied every card's data out, and `store restore` dropped every audit
    entry written after the backup's, both without an entry in `authhost audit` (PCI DSS
    10.2.1): the restored log verified as if nothing had been done."""
    monkeypatch.chdir(tmp_path)  # the demo's key store and master key go there
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cards.db'}"
    assert runner.invoke(app, ["demo", "--store", url]).exit_code == 0
    copy = tmp_path / "copy.db"
    assert runner.invoke(app, ["store", "backup", str(copy), "--store", url]).exit_code == 0
    [backed_up] = _audit(runner, url, "store.backup")
    assert backed_up["after"]["target"] == str(copy) and backed_up["actor"].startswith("cli")
    assert backed_up["after"]["audit_head_id"] == backed_up["audit_id"] - 1

    card = json.loads(runner.invoke(app, ["cards", "list", "--store", url]).stdout)[0]
    assert runner.invoke(app, ["cards", "suspend", card["card_id"], "--store", url]).exit_code == 0
    suspended = _audit(runner, url, "card.suspend")[-1]  # written after the backup

    done = runner.invoke(app, ["store", "restore", str(copy), "--store", url])
    assert done.exit_code == 0, done.output
    [restored] = _audit(runner, url, "store.restore")
    assert restored["before"]["audit_head_id"] == suspended["audit_id"], restored
    assert restored["before"]["kept_in"] == json.loads(done.stdout)["replaced"]
    assert restored["after"]["audit_head_id"] == backed_up["audit_id"] - 1
    gone = suspended["audit_id"]  # no longer in the store: named in the entry
    assert gone not in [e["audit_id"] for e in _audit(runner, url, "card.suspend")]
    verified = runner.invoke(app, ["audit", "verify", "--store", url])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"], verified.output


def _audit(runner: CliRunner, url: str, action: str) -> list[dict]:
    listed = runner.invoke(app, ["audit", "list", "--limit", "1000", "-o", "json", "--store", url])
    assert listed.exit_code == 0, listed.output
    found = [e for e in json.loads(listed.stdout) if e["action"] == action]
    for entry in found:
        for side in ("before", "after"):
            entry[side] = json.loads(entry[side]) if entry[side] else None
    return found
