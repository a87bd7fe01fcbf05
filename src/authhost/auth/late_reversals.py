"""Reversals that came before their original, applied once the original is written.

A reversal (0400/0420) whose original is not in the journal is acknowledged and journalled as
an unknown original: the acquirer will not send it again. When the original then arrives (a
network delay, another connection or process), it is decided as any request and may hold (or
post) money the acquirer considers reversed. So an orphan reversal also leaves an intent
(``ORPHAN_INTENT``, one store write on that rare path only: no authorisation pays for it), and
``apply_late_reversals`` (the server's sweep, ``authhost store late-reversals``) looks for the
originals of the intents younger than the window: one found is reversed by one write, named
after the orphan (its dedupe key), so two sweeps at once, or one cut short and run again,
release it once. The store's release keeps what a partial reversal's field 95 left.

Uses only the store interface: no trio, no backend.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field

from authhost.store.interface import (
    CardStore,
    Commit,
    Hold,
    Intent,
    MoneyMove,
    Movement,
    Snapshot,
    SnapshotQuery,
)
from authhost.store.records import JournalEntry, copy_entry, journal_dict

log = logging.getLogger("authhost.auth")

ORPHAN_INTENT = "late_reversal"  # an intent per reversal that found no original
UNKNOWN_ORIGINAL = "reversal.unknown_original"
LATE_REASON = "reversal.late"  # the journal entry of a reversal applied after its original
LATE_DEDUPE_PREFIX = "late-reversal|"  # its dedupe key: one per orphan, whoever writes it


@dataclass
class LateRun:
    """What one sweep did: the entries it wrote, the orphans it gave up on (their window
    passed, or their original holds nothing any more) and those still waiting."""

    applied: list[JournalEntry] = field(default_factory=list)
    expired: int = 0
    nothing_left: int = 0
    waiting: int = 0
    failed: int = 0  # their snapshot or write failed: tried again next run (logged)

    def as_dict(self) -> dict[str, object]:
        return {
            "applied": [_summary(entry) for entry in self.applied],
            "expired": self.expired,
            "nothing_left": self.nothing_left,
            "waiting": self.waiting,
            "failed": self.failed,
        }


def _summary(entry: JournalEntry) -> dict[str, object]:
    return {
        "journal_id": entry.journal_id,
        "card_id": entry.card_id,
        "account_id": entry.account_id,
        "released_minor": -entry.hold_amount,
        "stan": entry.stan,
        "rrn": entry.rrn,
    }


def is_orphan(entry: JournalEntry) -> bool:
    """A reversal journalled as an unknown original, of a known card (one of an unknown card
    has no original to wait for: it would be declined 14)."""
    return bool(entry.card_id) and UNKNOWN_ORIGINAL in entry.reason_codes.split(";")


def orphan_intent(entry: JournalEntry, keep_minor: int) -> tuple[str, str]:
    """The intent's subject (the card, the original's match key and what field 95 says it
    keeps: a repeat of the reversal, 0400 then 0420, is the same one) and its data: the
    orphan's journal entry (masked PAN, no sensitive data) and that amount (0: a full
    reversal). Two reversals of one original that keep different amounts are two intents,
    each applied once (its own dedupe key), the store's release of each clamped to what the
    hold keeps beyond its amount: the hold ends at the least of them, as when both come after
    the original (one intent per original would keep only the last one's amount)."""
    subject = f"{entry.card_id}|{entry.match_key}|{keep_minor}"
    return subject, json.dumps({"entry": journal_dict(entry), "keep_minor": keep_minor})


def reversal_release(hold: Hold, keep_minor: int) -> Movement | None:
    """A reversal's release of ``hold`` down to ``keep_minor`` (field 95's amount; 0 for a
    full reversal), or None when it holds no more than that (reversed, completed, expired)."""
    release = hold.amount_minor - keep_minor
    if release <= 0:
        return None
    return Movement(
        account_id=hold.account_id,
        kind=MoneyMove.RELEASE,
        amount_minor=release,
        require_funds=False,
        match_key=hold.match_key,
        keep_minor=keep_minor,
    )


def late_commit(
    orphan: JournalEntry, keep_minor: int, hold: Hold, snapshot: Snapshot, subject: str, now: float
) -> Commit | None:
    """The write that reverses ``hold`` as the orphan asked, or None when the hold keeps no
    more than field 95's amount (reversed, completed or expired meanwhile)."""
    movement = reversal_release(hold, keep_minor)
    if movement is None:
        return None
    entry = copy_entry(orphan)
    entry.ts = now
    entry.journal_id = 0
    entry.latency_us = 0
    entry.account_id = hold.account_id
    entry.available_before = snapshot.account.open_to_buy if snapshot.account else 0
    entry.reason_codes = f"{LATE_REASON};reversal.{'partial' if keep_minor else 'full'}"
    entry.hold_amount, entry.movement = -movement.amount_minor, movement.kind.value
    entry.dedupe_key = LATE_DEDUPE_PREFIX + subject
    entry.match_key = hold.match_key
    return Commit(journal=entry, movement=movement, card_id=orphan.card_id)


async def apply_late_reversals(store: CardStore, now: float, window_s: float) -> LateRun:
    """Reverse the originals written since their orphan reversal came, for the orphans of the
    last ``window_s`` seconds; forget older ones after one last look (an original that came
    in time, or since, is reversed even when no run looked between its answer and the end of
    the window: every server down, the store out; an original that comes later stays held
    until it expires, as before). The orphans' snapshots are read together (one round trip
    on Redis); each original found is one write named after the orphan, then its intent is
    dropped: a run cut short between them is finished by the next, which finds the write
    done (a duplicate) and drops the intent. One orphan that fails (its snapshot or its
    write) is logged and tried again at the next run; the others go on."""
    run = LateRun()
    waiting: list[tuple[Intent, JournalEntry, int]] = []
    for intent in await store.intents(ORPHAN_INTENT, math.inf):
        if (read := _read(intent)) is None:
            await store.drop_intent(ORPHAN_INTENT, intent.subject, intent.ts)
        else:
            waiting.append((intent, *read))
    queries = [SnapshotQuery(o.pan_index, now, original_key=o.match_key) for _, o, _ in waiting]
    snapshots = await store.snapshot_many(queries) if queries else []
    for (intent, orphan, keep), snapshot in zip(waiting, snapshots, strict=True):
        last_look = intent.ts < now - window_s  # its window passed: forgotten after this look
        try:
            outcome = await _apply(store, intent, orphan, keep, snapshot)
        except Exception as error:  # this one alone: the others are not held up by it
            run.failed += 1
            log.error(
                "reversal %d (intent %s) could not be applied to its original: %s; %s",
                orphan.journal_id, intent.subject, error,
                "forgotten: its window passed" if last_look else "tried again at the next run",
            )  # fmt: skip
            if last_look:
                await store.drop_intent(ORPHAN_INTENT, intent.subject, intent.ts)
            continue
        if outcome is None:  # its original has not come (or was declined: nothing held)
            if last_look:
                await store.drop_intent(ORPHAN_INTENT, intent.subject, intent.ts)
                run.expired += 1
            else:
                run.waiting += 1
            continue
        if isinstance(outcome, JournalEntry):
            run.applied.append(outcome)
        elif outcome:  # the original kept no more than field 95's amount (False: another run
            # wrote it, and counts it)
            run.nothing_left += 1
        await store.drop_intent(ORPHAN_INTENT, intent.subject, intent.ts)
    return run


async def _apply(
    store: CardStore,
    intent: Intent,
    orphan: JournalEntry,
    keep: int,
    snapshot: Snapshot | Exception,
) -> JournalEntry | bool | None:
    """Reverse one orphan's original: the entry written when it released money; True when
    it released nothing (the hold keeps no more than field 95's amount: reversed, completed,
    expired, an increment whose pre-authorisation closed); False when another run wrote it;
    None when the original is not there."""
    if isinstance(snapshot, Exception):
        raise snapshot
    if snapshot.original is None:
        return None
    # journalled at its write, not at the run's start: the movements and alerts feeds pass
    # an entry SETTLE_S old by its time, taking every lower journal id as written by then (a
    # run that read and wrote many before this one would date it seconds before its id)
    written_at = time.time()
    commit = late_commit(orphan, keep, snapshot.original, snapshot, intent.subject, written_at)
    if commit is None:
        return True
    result = await store.commit(commit)
    if result.duplicate_of is not None:
        return False
    # the write releases at most what the hold still keeps beyond field 95's amount when it
    # runs (a repeat of the reversal, or another orphan of the original, may have come first)
    return result.journal if result.journal.hold_amount else True


def _read(intent: Intent) -> tuple[JournalEntry, int] | None:
    """The orphan's journal entry and field 95's amount; None (logged) for an intent this
    version cannot read (written by another), which is dropped rather than stop every run."""
    try:
        data = json.loads(intent.data)
        return JournalEntry(**data["entry"]), int(data["keep_minor"])
    except (ValueError, TypeError, KeyError) as error:
        log.error("a reversal's intent %s cannot be read, dropped: %s", intent.subject, error)
        return None
