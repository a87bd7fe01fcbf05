"""A retention batch gathered for one audited script (``redis_lua.AUDITED_BATCH``).

A retention run deletes in batches; on a single Redis each batch goes with its audit entry in
one script, its counts made from what was read. The checks (``HAS``, ``OLDER``) make the
script refuse a batch another run changed meanwhile, so an entry never counts what it did
not delete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from authhost.store.interface import BatchAudit
from authhost.store.records import AuditEntry

AUDIT_KEYS = 5  # AUDITED_BATCH's KEYS[1..5]: the audit log's (APPEND_AUDIT_CHAINED's)


@dataclass
class AuditedBatch:
    """The keys and steps of one batch, and how many of each kind it deletes."""

    keys: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def step(self, command: str, key: str, args: Sequence[str] = ()) -> None:
        """One command on one key (its arguments after the key)."""
        self.keys.append(key)
        self.steps += [command, str(AUDIT_KEYS + len(self.keys)), str(len(args)), *args]

    def count(self, kind: str, deleted: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + deleted

    @property
    def size(self) -> int:
        """What the batch deletes, all kinds together."""
        return sum(self.counts.values())

    def argv(self) -> list[str]:
        """AUDITED_BATCH's ARGV after the entry's: how many steps (one key each), then the
        steps."""
        return [str(len(self.keys)), *self.steps]


@dataclass
class FollowingEntries:
    """A retention run's entries where no script spans its writes and the audit log (a Redis
    Cluster): one after the writes each time what they deleted since the last entry reaches
    ``every``, one for the rest at the end. A process dying between writes and their entry
    leaves at most those since the last one without it. No entry without ``audit``."""

    audit: BatchAudit | None
    append: Callable[[AuditEntry], Awaitable[None]]
    every: int
    total: dict[str, int] = field(default_factory=dict)
    since: dict[str, int] = field(default_factory=dict)

    async def add(self, deleted: dict[str, int]) -> None:
        """What one write (or one account's or index's writes) deleted, by kind."""
        for kind, count in deleted.items():
            self.total[kind] = self.total.get(kind, 0) + count
            self.since[kind] = self.since.get(kind, 0) + count
        if sum(self.since.values()) >= self.every:
            await self.end()

    appending: bool = False  # inside ``append``: a failure there may have written it

    async def end(self) -> None:
        """The entry of what was deleted since the last one, if anything was."""
        if self.audit is not None and any(self.since.values()):
            self.appending = True
            await self.append(self.audit(dict(self.since)))
            self.appending = False
        self.since = {kind: 0 for kind in self.since}

    async def failed(self) -> None:
        """A write that failed mid-run: the entry of what the writes before it deleted, as
        ``end``, unless the failure was the entry's own append (its script may have run, and
        a second entry would count those deletions twice) or this entry fails too (the
        run's own failure is the one that is raised)."""
        if self.appending:
            return
        with contextlib.suppress(Exception):
            await self.end()
