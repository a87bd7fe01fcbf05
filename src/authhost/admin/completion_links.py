"""The link of a completion journalled before ``JournalEntry.completes`` was, where the journal
alone tells it: what SQLite's migration 43 does in SQL, for a store without migrations (Redis).

A switch's 0220 completion named its pre-authorisation in field 90, which was never
journalled; but it named it by its own terminal (``auth.keys``), so the hold it completed is
an earlier pre-authorisation's (not an increment's) on the same card and account at that
terminal, of the ``WINDOW_DAYS`` before, that holds nothing now (a completion released it;
a split shipment's part may leave some held). A completion is linked only when exactly one
hold is such. Without the link, the clearing import posts that pre-authorisation's
presentment a second time (``admin.clearing``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from authhost.models.context import COMPLETION_REASON, PRESENTMENT
from authhost.store.interface import CardStore, JournalQuery
from authhost.store.records import JournalEntry

WINDOW_DAYS = 62
INCREMENT = "incremental"  # an incremental authorisation's reason code (auth.steps.funds)
_PARTIAL = "advice.completion_partial"
ACCOUNTS_PAGE = 500


def _codes(entry: JournalEntry) -> list[str]:
    return entry.reason_codes.split(";")


def _unlinked_completion(entry: JournalEntry) -> bool:
    codes = _codes(entry)
    return (
        not entry.completes
        and bool(entry.card_id)
        and entry.mti[:3] == "022"
        and entry.movement == "post"
        and any(code.startswith(COMPLETION_REASON) for code in codes)
        and PRESENTMENT not in codes
    )


def derived_links(entries: Sequence[JournalEntry], open_holds: Collection[str]) -> dict[int, str]:
    """The links of one account's unlinked completions (``entries``: its journal, in journal
    order; ``open_holds``: the match keys of its holds that still hold money), by journal id."""
    links: dict[int, str] = {}
    heads: list[JournalEntry] = []  # the pre-authorisations so far
    for entry in entries:
        if _unlinked_completion(entry):
            terminal = entry.terminal_id.strip()
            partial = _PARTIAL in _codes(entry)
            found = {
                h.match_key
                for h in heads
                if h.card_id == entry.card_id
                and h.ts >= entry.ts - WINDOW_DAYS * 86400.0
                and h.terminal_id.strip() == terminal
                and (partial or h.match_key not in open_holds)
            }
            if len(found) == 1:
                links[entry.journal_id] = found.pop()
        if (
            entry.movement == "hold"
            and entry.match_key
            and entry.card_id
            and INCREMENT not in _codes(entry)
        ):
            heads.append(entry)
    return links


async def link_completions(store: CardStore) -> dict[str, Any]:
    """Link every account's completions the journal tells the hold of; how many were linked,
    on how many accounts. Running it again links nothing more."""
    linked = accounts = offset = 0
    while True:
        page = await store.list_accounts(ACCOUNTS_PAGE, offset)
        for account in page:
            query = JournalQuery(account_id=account.account_id)
            entries = [e async for e in store.export_journal(query)]
            held = {h.match_key for h in await store.open_holds(account.account_id)}
            links = derived_links(entries, held)
            by_id = {e.journal_id: e for e in entries}
            for journal_id, completes in links.items():
                linked += await store.set_journal_completes(by_id[journal_id], completes)
            accounts += bool(links)
        if len(page) < ACCOUNTS_PAGE:
            return {"completions_linked": linked, "accounts": accounts}
        offset += ACCOUNTS_PAGE
