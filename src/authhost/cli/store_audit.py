"""The audit entry of ``authhost store backup`` and ``restore`` (and of ``authhost models``).

Both work on the SQLite file, not through the card service, so they left no entry: a copy of
every card's data could leave the store, and a restore could drop every audit entry written
after the backup's (the chain of what is left still verifies), without a trace in
``authhost audit`` (PCI DSS 10.2.1). The entry is written after the work, through the card
service, chained as any other.
"""

from __future__ import annotations

from typing import Any

import trio
import typer

from authhost.cli.admin_support import _say, actor_name, open_card_service
from authhost.config import Config


def audit_store_action(config: Config, action: str, before: Any, after: Any) -> None:
    """Append the entry; a failure (no master key here, the store gone) exits 1 saying the
    work itself was done, as a key ceremony's entry does (cli.key_audit)."""
    audit_cli_action(config, action, "store", before, after)


def audit_cli_action(config: Config, action: str, subject: str, before: Any, after: Any) -> None:
    """The entry of work a command did outside the card service (the store's file, the models
    directory), appended through it, chained as any other; a failure exits 1 saying the work
    itself was done."""

    async def append() -> None:
        async with open_card_service(config, actor_name()) as service:
            await service.record_audit(action, subject, before, after)

    try:
        trio.run(append)
    except Exception as exc:  # noqa: BLE001 - the copy is made: say so, and why no entry
        _say(f"error: {action} was done, but its audit entry could not be written: {exc}")
        raise typer.Exit(1) from None
