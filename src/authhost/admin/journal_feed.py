"""A feed over the journal for a system that polls it: the entries of one kind after the last
``journal_id`` it read, in journal order, each once.

The core ledger reads money movements this way (``admin.movements``), the cardholder
notification service its alerts (``admin.alerts``), analysts the review queue (the flagged
entries, read from the store's review index). An entry is listed only once it is
``SETTLE_S`` old: journal ids are taken before a write lands (Redis reserves them a block at a
time), so a poller that moved past a young entry could miss an older id committed a moment
later; none lands that late (a block of ids is used within half a second of its reservation,
``store.redis.ID_BLOCK_LIFE_S``, and a write that has begun is finished within the request's
deadline).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from authhost.store.interface import JournalQuery
from authhost.store.records import JournalEntry

SETTLE_S = 2.0
PAGE = 1000
# what the review queue reads of the rest of the journal a poll, at most (past_settled)
SKIP_PAGES = 10


async def next_in_feed(
    read: Callable[[JournalQuery], Awaitable[list[JournalEntry]]],
    pick: Callable[[JournalEntry], dict[str, Any] | None],
    after_id: int,
    limit: int,
    now: float,
    query: JournalQuery = JournalQuery(),
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` views ``pick`` makes of the entries ``query`` selects after
    ``after_id`` (None: not one of the feed's), and the id to ask after next time (past
    entries that made none, never past a young one)."""
    found: list[dict[str, Any]] = []
    cursor = after_id
    while len(found) < limit:
        page = await read(replace(query, after_id=cursor, limit=PAGE))
        for entry in page:
            if entry.ts > now - SETTLE_S:
                return found, cursor
            view = pick(entry)
            if view is not None:
                found.append(view)
            cursor = entry.journal_id
            if len(found) == limit:
                break
        if len(page) < PAGE:
            break
    return found, cursor


async def past_settled(
    read: Callable[[JournalQuery], Awaitable[list[JournalEntry]]],
    cursor: int,
    now: float,
    pages: int = SKIP_PAGES,
) -> int:
    """``cursor`` moved over the whole journal's settled entries after it (never past a young
    one), ``pages`` pages at most a call: for a feed over a part of the journal (the review
    queue) once its part has ended, so that its cursor follows the journal and a prune of the
    entries it never lists does not leave it behind the retention cut (refused 409)."""
    for _ in range(pages):
        page = await read(JournalQuery(after_id=cursor, limit=PAGE))
        for entry in page:
            if entry.ts > now - SETTLE_S:
                return cursor
            cursor = entry.journal_id
        if len(page) < PAGE:
            break
    return cursor
