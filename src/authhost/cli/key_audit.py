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
from authhost.security.audit_chain import AuditSeal
from authhost.security.keys import WorkingKey
from authhost.security.keystore import KeyStore
from authhost.store.interface import CardStore
from authhost.store.records import AuditEntry


def audit_key_change(
    config_file: Path | None, keys: KeyStore, action: str, subject: str, after: dict[str, Any]
) -> None:
    """Append the entry to the configured store's audit log. A SQLite store not created yet
    (the first keys of a new installation come before it) is said and skipped; a store that
    fails exits 1, saying the key change itself was made."""
    try:
        config = load_config(config_file)
    except ConfigError as exc:  # read once already by the command: not expected here
        typer.echo(f"authhost: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    url = config.store.url
    configured = Path(keys.path).resolve() == Path(config.security.key_store).resolve()
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

    async def append() -> bool:
        from authhost.store import open_store

        seal = keys.audit_seal()
        store = await open_store(url)
        try:
            if not await _chain_is_this_key_stores(store, seal, configured=configured):
                return False
            await store.append_audit(entry, seal)
        finally:
            await store.close()
        return True

    try:
        appended = trio.run(append)
    except Exception as exc:  # noqa: BLE001 - the key is saved: say so, and that this is not
        typer.echo(
            f"authhost keys: {action} {subject} was made, but its audit entry could not be "
            f"written: {exc}",
            err=True,
        )
        raise typer.Exit(1) from None
    if not appended:
        typer.echo(
            f"authhost keys: not audited: the store's audit log is chained under another key "
            f"store's audit key than {keys.path}'s (a key store apart from the store's, given "
            "with --key-store, or a store that is not this key store's: an entry under it would "
            "break the chain; keep this output with the ceremony's records)",
            err=True,
        )


async def _chain_is_this_key_stores(store: CardStore, seal: AuditSeal, *, configured: bool) -> bool:
    """Whether the store's newest audit entry was sealed under this key store's audit key:
    a key store given with --key-store (a partner's KEK made apart, or any file after a master
    key rotation, whose audit key is the old master key's) has its own, and its entry broke the
    configured store's chain (`audit verify`: changed). A log with no chain yet takes the
    configured key store's entry only."""
    newest = await store.audit(limit=2, newest_first=True)
    if not newest or not newest[0].chain:
        return configured
    previous = newest[1].chain if len(newest) > 1 else ""
    return seal.holds(newest[0].chain, previous, newest[0].sealed_fields())


def key_facts(key: WorkingKey) -> dict[str, Any]:
    """What an entry says of a working key: never its material."""
    return {
        "name": key.name,
        "version": key.version,
        "type": str(key.key_type),
        "algorithm": str(key.algorithm),
        "kcv": key.kcv,
    }
