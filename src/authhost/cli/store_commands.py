"""``authhost store``: back up (while it serves), restore, check and describe the embedded
SQLite store; finish work a crash cut short and prune old idempotency results (either store).

Redis keeps its own backups (RDB snapshots with BGSAVE, the append-only file); these commands
say so rather than pretend to copy a Redis.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from authhost.auth.late_reversals import apply_late_reversals
from authhost.cli.admin_support import ConfigOpt, StoreOpt, _config, _run, _say
from authhost.cli.store_audit import audit_store_action
from authhost.store import sqlite_backup
from authhost.store.interface import StoreError
from authhost.store.opener import sqlite_path

store_app = typer.Typer(
    help="The store: the SQLite file's online backup, integrity check and facts; work a crash "
    "cut short finished, and old idempotency results pruned (either store)."
)

_REDIS = (
    "the store is Redis, which keeps its own backups (BGSAVE, the append-only file); "
    "authhost store {what} works on the SQLite store"
)


def _sqlite_file(store: str | None, config: Path | None, what: str) -> str:
    """The SQLite file of the configured store URL; exit 1 with one line for a Redis URL,
    an unknown scheme or a URL naming no file (``sqlite:///:memory:`` was a traceback, and
    ``foo://x`` was read as a file name)."""
    url = _config(config, store).store.url
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme.startswith("redis") or scheme.startswith("rediss"):
        _say(f"error: {_REDIS.format(what=what)}")
        raise typer.Exit(1)
    if scheme not in ("", "sqlite", "file"):
        _say(f"error: unknown store URL scheme {scheme!r}: authhost store {what} works on a "
             "SQLite store (sqlite:///PATH)")  # fmt: skip
        raise typer.Exit(1)
    try:
        path = sqlite_path(url) if scheme == "sqlite" else url.removeprefix("file://")
    except StoreError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    if not path.strip():
        _say("error: the store URL is empty: sqlite:///authhost.db")
        raise typer.Exit(1)
    return path


def _show(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


@store_app.command("backup")
def store_backup(
    target: Annotated[Path, typer.Argument(help="the file to write the copy to")],
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Copy the SQLite store to TARGET as one consistent snapshot, while servers run (they go
    on answering; the copy is checked, then renamed into place, readable by its owner only).
    Restore with `authhost store restore TARGET`, the servers stopped. Audited (store.backup:
    a copy of every card's data left the store)."""
    path = _sqlite_file(store, config, "backup")
    if not target.absolute().parent.is_dir():  # SQLite says only "unable to open database file"
        _say(f"error: {target}: the folder {target.absolute().parent} does not exist")
        raise typer.Exit(1)
    try:
        done = sqlite_backup.backup(path, target, overwrite=force)
    except (StoreError, OSError) as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    _show(
        {
            "source": done.source,
            "target": done.target,
            "seconds": round(done.seconds, 3),
            **dataclasses.asdict(done.facts),
        }
    )
    audit_store_action(
        _config(config, store), "store.backup", None,
        {"target": done.target, "rows": done.facts.rows, "audit_head_id": done.facts.audit_head_id},
    )  # fmt: skip


@store_app.command("restore")
def store_restore(
    copy: Annotated[
        Path, typer.Argument(help="the backup file to restore (authhost store backup)")
    ],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Put a backup in the SQLite store's place, every server stopped first (refused while a
    process has the store open). A server killed outright leaves commits in the store's -wal
    file, which a copy put in place by hand gets replayed over it, corrupting it; this folds
    that file in first, keeps the store's previous content as STORE.replaced-STAMP, and checks
    the copy before it renames it into place. Audited in the restored store (store.restore:
    the audit entries it no longer has, and where they are kept)."""
    path = _sqlite_file(store, config, "restore")
    try:
        done = sqlite_backup.restore(copy, path, now=time.time())
    except (StoreError, OSError) as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    _show(
        {
            "backup": done.backup,
            "store": done.store,
            "replaced": done.replaced,
            **{k: v for k, v in dataclasses.asdict(done.facts).items() if k != "path"},
        }
    )
    # the audit entries the store had after the backup's are gone from it: say which, and
    # where the store's previous content (and so they) are kept
    dropped = sqlite_backup.facts(done.replaced).audit_head_id if done.replaced else 0
    audit_store_action(
        _config(config, store), "store.restore",
        {"audit_head_id": dropped, "kept_in": done.replaced},
        {"backup": done.backup, "audit_head_id": done.facts.audit_head_id},
    )  # fmt: skip


@store_app.command("check")
def store_check(
    full: Annotated[bool, typer.Option(help="also every index against its table (slower)")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check the SQLite store's file (SQLite's quick_check, or integrity_check with --full);
    exits 1 and lists the problems when there are any."""
    path = _sqlite_file(store, config, "check")
    try:
        problems = sqlite_backup.check(path, full=full)
    except StoreError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    _show({"path": path, "ok": not problems, "problems": problems})
    if problems:
        raise typer.Exit(1)


@store_app.command("info")
def store_info(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Schema version, file and WAL sizes, and row counts of the SQLite store."""
    path = _sqlite_file(store, config, "info")
    try:
        _show(dataclasses.asdict(sqlite_backup.facts(path)))
    except StoreError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None


@store_app.command("finish")
def store_finish(
    older_than: Annotated[
        float,
        typer.Option(
            min=0,
            help="only work begun at least this many seconds ago (younger work may still be "
            "running in another process)",
        ),
    ] = 60.0,
    list_only: Annotated[
        bool, typer.Option("--list", help="only list what waits, with its age; change nothing")
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Finish what a crash or a store outage cut short (either store): card activations that
    hand over (the activation audited, the wallet tokens' PAN updates sent, the old card
    retired) and disputes whose provisional credit was posted but which were never recorded.
    A running server does this itself every few minutes."""
    if list_only:
        _run(_config(config, store), lambda s: s.unfinished())
        return
    _run(_config(config, store), lambda s: s.finish_unfinished(older_than))


@store_app.command("late-reversals")
def store_late_reversals(
    window: Annotated[
        float | None,
        typer.Option(
            help="seconds a reversal that found no original waits for it (default: \\[auth] "
            "late_reversal_window_s)",
        ),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Reverse the originals approved after their reversal came (either store): what a
    running server does itself every \\[auth] late_reversal_every_s. Each once, however many
    run it at once; prints those reversed, and how many still wait."""
    # 0 would forget every reversal still waiting; nan or inf would never forget one
    if window is not None and not (window > 0 and math.isfinite(window)):
        raise typer.BadParameter("must be above 0 and finite", param_hint="--window")
    cfg = _config(config, store)
    window_s = cfg.auth.late_reversal_window_s if window is None else window

    async def work(service: Any) -> dict[str, object]:
        run = await apply_late_reversals(service.store, time.time(), window_s)
        return run.as_dict()

    _run(cfg, work)


@store_app.command("prune-idempotency")
def store_prune_idempotency(
    keep_days: Annotated[
        int,
        typer.Option(
            help="keep this many days of idempotency results (at least 30); delete the rest"
        ),
    ],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete the results of requests made with an Idempotency-Key more than --keep-days ago
    (either store; audited): a repeat of one of them is a new request from then on. Markers
    stay, whatever their age (a closed account's, the demo's). A running server does this
    daily (\\[admin] idempotency_keep_days, 90 by default)."""
    _run(_config(config, store), lambda s: s.prune_idempotency(keep_days))


@store_app.command("raise-counters")
def store_raise_counters(
    journal: Annotated[
        int, typer.Option(help="the highest journal id a feed consumer has read (0: leave it)")
    ] = 0,
    fraud_reports: Annotated[
        int, typer.Option(help="the highest fraud report id a consumer has read (0: leave it)")
    ] = 0,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Raise the journal id and fraud report id counters to at least these, never lower
    (either store; audited): after a Redis dump or AOF restore took them back, new entries
    would be given ids the feeds' consumers have passed and never be listed. Run it with
    the servers stopped (each keeps the block of ids it reserved). SQLite's store restore
    does it itself."""
    _run(_config(config, store), lambda s: s.raise_counters(journal, fraud_reports))


@store_app.command("link-completions")
def store_link_completions(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Link the 0220 completions journalled before authhost kept their link to the hold they
    completed (either store; SQLite's migration 43 did it on opening): where the journal
    tells the one pre-authorisation of the card at the completion's terminal, so that its
    clearing presentment is already_posted, not posted twice. Reads every account's journal;
    once after upgrading a Redis store is enough (again links nothing more)."""
    from authhost.admin.completion_links import link_completions

    _run(_config(config, store), lambda s: link_completions(s.store))


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
