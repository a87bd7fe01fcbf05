"""Why a journal feed refuses a consumer's cursor, in words it can act on.

A feed (movements, alerts, reviews) lists the entries after a journal id. Two cursors would
be answered silently wrong: one behind the retention cut (``journal prune`` deleted entries
after it that the consumer never read: a page would list what comes after them as if nothing
were missing) and one beyond the newest entry (another store's cursor, or one kept across a
Redis dump restore that took the id counter back: empty pages for ever, then the ids handed
out again). Cursor 0 is a consumer starting fresh: it gets what retention left, unrefused.
"""

from __future__ import annotations

# what a consumer of each feed does about entries it lost to the cut
LOST = {
    "movements": (
        "their money movements never reached the ledger: re-sync the balance of each account "
        "with the ledger (POST /v1/accounts/{{id}}/ledger-balance with through_journal_id "
        "{cut}, CLI: authhost accounts ledger-balance ID B --through {cut}), then poll on "
        "with after_id={cut}"
    ),
    "alerts": "their cardholder alerts were never sent: poll on with after_id={cut}",
    "reviews": "the reviews among them were never seen: poll on with after_id={cut}",
}


def behind_cut(feed: str, after_id: int, cut: int) -> str:
    """The 409 of a cursor retention pruned past: what was lost and what to do."""
    return (
        f"after_id {after_id} is behind the journal's retention cut: entries after it up to "
        f"journal id {cut} were deleted (journal prune) before this feed listed them; "
        + LOST[feed].format(cut=cut)
    )


def beyond_newest_report(after_id: int, newest: int) -> str:
    """The 422 of a fraud reports cursor beyond the last report id handed out."""
    said = f"{after_id}" if after_id < 10**12 else f"{after_id:,}"
    return (
        f"after_id {said} is beyond the fraud reports: the last report id handed out is "
        f"{newest} (the cursor of another store, or one kept across a store restore that took "
        f"the counter back: raise it with authhost store raise-counters --fraud-reports "
        f"{said} before the servers start, docs/store.md)"
    )


def beyond_newest(after_id: int, newest: int) -> str:
    """The 422 of a cursor no entry of this store reaches (a cursor of 13 digits or more,
    which no store reaches, in thousands: the error scrubber would mask it as a PAN)."""
    said = f"{after_id}" if after_id < 10**12 else f"{after_id:,}"
    return (
        f"after_id {said} is beyond the journal: its newest entry is {newest} (the "
        "cursor of another store, or one kept across a store restore that took the journal "
        "id counter back: raise it with authhost store raise-counters --journal "
        f"{said} before the servers start, docs/store.md); a consumer starting "
        "afresh polls with after_id=0"
    )
