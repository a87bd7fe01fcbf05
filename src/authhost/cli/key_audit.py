"""The audit entry of an operator's key change (``authhost keys generate``, ``components``,
``import``, ``export``, ``rotate-pan-key``, ``rotate-master-key``).

These commands work on the key store file, not the store the audit log is in, so they left
no entry at all: a key ceremony (PCI PIN, PCI DSS 10.2) was invisible in ``authhost audit``
while a switch's key change was in it. The entry names the key, its version, type and KCV,
never the key; it is chained as any other, under the key store's own audit key.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import trio
import typer

from authhost.cli.admin_support import actor_name, sqlite_file_of
from authhost.config import ConfigError, load_config
from authhost.security.keys import WorkingKey
from authhost.security.keystore import KeyStore
from authhost.store.records import AuditEntry


def audit_key_change(
    config_file: Path | None, keys: KeyStore, action: str, subject: str, after: dict[str, Any]
) -> None:
    """Append the entry to the configured store's audit log. A SQLite store not created yet
    (the first keys of a new installation come before it) is said and skipped; a store that
    fails exits 1, saying the key change itself was made."""
    try:
        url = load_config(config_file).store.url
    except ConfigError as exc:  # read once already by the command: not expected here
        typer.echo(f"authhost: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    path = sqlite_file_of(url)
    if path is not None and not Path(path).exists():
        typer.echo(
            f"authhost keys: not audited: no store at {path} yet (the audit log is in the "
            "store; keep this output with the ceremony's records)",
            err=True,
        )
        return
    entry = AuditEntry(
        ts=time.time(),
        actor=actor_name(),
        action=action,
        subject=subject,
        after=json.dumps(after, sort_keys=True),
    )

    async def append() -> None:
        from authhost.store import open_store

        store = await open_store(url)
        try:
            await store.append_audit(entry, keys.audit_seal())
        finally:
            await store.close()

    try:
        trio.run(append)
    except Exception as exc:  # noqa: BLE001 - the key is saved: say so, and that this is not
        typer.echo(
            f"authhost keys: {action} {subject} was made, but its audit entry could not be "
            f"written: {exc}",
            err=True,
        )
        raise typer.Exit(1) from None


def key_facts(key: WorkingKey) -> dict[str, Any]:
    """What an entry says of a working key: never its material."""
    return {
        "name": key.name,
        "version": key.version,
        "type": str(key.key_type),
        "algorithm": str(key.algorithm),
        "kcv": key.kcv,
    }
