"""Walking the audit log's hash chain: is every entry as it was written, and none missing?

An entry whose fields were edited no longer matches its own chain value, while the entry
after it still matches that value (it was sealed after it): the entry is reported
``changed``. Entries deleted leave a gap in the ids (both stores number entries without
gaps), and the entry after the gap does not follow the one before it: ``removed``. An entry
without a chain value after the chain began was put there by something without the audit
key: ``unsealed``. If no chained entry verifies at all, the audit key is not the one the log
was written under (another installation's master key): ``key_mismatch``, not tampering.

The newest entries deleted leave no trace inside the log; the chain value of the newest
entry (``head``), recorded somewhere else now and then, proves later that everything up to
it is still there (``expect_head``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authhost.security.audit_chain import AuditSeal
from authhost.store.interface import CardStore
from authhost.store.records import AuditEntry

PAGE = 1_000
SHOWN_BREAKS = 20  # the first breaks listed; the count covers all


@dataclass
class _Walk:
    seal: AuditSeal
    entries: int = 0
    unchained_before: int = 0  # entries written before the chain existed
    chained: int = 0
    verified: int = 0
    breaks: list[dict[str, Any]] = field(default_factory=list)
    break_count: int = 0
    previous: AuditEntry | None = None
    head: str = ""
    head_id: int = 0
    suspect: AuditEntry | None = None  # failed its link: changed, if the next follows it

    def add(self, entry: AuditEntry) -> None:
        self.entries += 1
        previous, self.previous = self.previous, entry
        lost_link = False  # the value this entry was sealed after is not known any more
        if self.suspect is not None:
            changed, self.suspect = self.suspect, None
            follows = bool(entry.chain) and self.seal.holds(
                entry.chain, changed.chain, entry.sealed_fields()
            )
            if follows:
                self._break(changed, "changed", "its fields are not those it was sealed with")
            else:
                self._break(changed, "changed", "its chain value is not the one it was sealed with")
                lost_link = True
        if not entry.chain:
            if self.chained:
                self._break(entry, "unsealed", "written without a chain value after it began")
            else:
                self.unchained_before += 1
            return
        self.chained += 1
        self.head, self.head_id = entry.chain, entry.audit_id
        if lost_link:
            return  # unchecked: a change of its own fields as well would go unseen
        before = previous.chain if previous is not None else ""
        if self.seal.holds(entry.chain, before, entry.sealed_fields()):
            self.verified += 1
            return
        if previous is not None and entry.audit_id != previous.audit_id + 1:
            missing = f"ids {previous.audit_id + 1}-{entry.audit_id - 1}"
            self._break(entry, "removed", f"entries before it are missing ({missing})")
        elif previous is None and entry.audit_id != 1:
            self._break(
                entry, "removed", f"entries before it are missing (ids 1-{entry.audit_id - 1})"
            )
        else:
            self.suspect = entry  # changed, or the one after a changed chain value

    def finish(self) -> None:
        if self.suspect is not None:  # the newest entry: nothing after it to tell
            self._break(self.suspect, "changed", "it does not match its chain value")
            self.suspect = None

    def _break(self, entry: AuditEntry, problem: str, detail: str) -> None:
        self.break_count += 1
        if len(self.breaks) < SHOWN_BREAKS:
            self.breaks.append(
                {"audit_id": entry.audit_id, "action": entry.action, "problem": problem,
                 "detail": detail}
            )  # fmt: skip


@dataclass
class AuditWatch:
    """The server's last walk of the chain, for its metrics (``store.metrics``), and the head
    its last good walk saw: the next walk expects it, so that the newest entries deleted, or
    every chain value blanked (the log then reads as written before the chain existed), break
    the chain for the server though what is left verifies by itself."""

    checked_at: float = 0.0  # epoch seconds; 0 until the first walk
    ok: bool = True
    breaks: int = 0
    entries: int = 0
    head: str = ""  # the newest chain value of the last walk that verified

    def record(self, result: dict[str, Any], now: float) -> None:
        self.checked_at, self.ok = now, bool(result["ok"])
        self.breaks, self.entries = int(result["break_count"]), int(result["entries"])
        if self.ok and result["head"]:
            self.head = str(result["head"])


async def verify_audit_chain(
    store: CardStore, seal: AuditSeal, expect_head: str = ""
) -> dict[str, Any]:
    """The chain walked from the oldest entry to the newest, page by page."""
    walk = _Walk(seal)
    seen_head = not expect_head
    after = 0
    while page := await store.audit(limit=PAGE, after_id=after):
        for entry in page:
            walk.add(entry)
            seen_head = seen_head or entry.chain == expect_head
        after = page[-1].audit_id
    walk.finish()
    key_mismatch = walk.chained > 1 and walk.verified == 0
    result: dict[str, Any] = {
        "ok": walk.break_count == 0 and seen_head and not key_mismatch,
        "entries": walk.entries,
        "unchained_before": walk.unchained_before,
        "chained": walk.chained,
        "verified": walk.verified,
        "breaks": [] if key_mismatch else walk.breaks,
        "break_count": 0 if key_mismatch else walk.break_count,
        "key_mismatch": key_mismatch,
        "head": walk.head,
        "head_id": walk.head_id,
    }
    if key_mismatch:
        result["error"] = (
            f"none of the {walk.chained} chained entries verifies under this master key: the "
            "log was written under another one (check [security] master key and key store)"
        )
    if not seen_head:
        result["error"] = (
            "no entry has the expected head value: the entries up to it were removed or "
            "changed since it was recorded"
        )
    return result
