"""An account's open holds with the authorisations behind them: the support desk's answer to
"why can I not spend my money".

The store lists the holds still holding money (``CardStore.open_holds``); the account's journal
says which authorisation placed each (the entry whose ``match_key`` it is, a hold), with its
card, merchant and approval code. Together they are the account's ``holds``. A hold's life
runs ``[auth] hold_days`` from when it was placed or last extended, plus its own extra life (a
hotel's longer, a fuel pump's shorter); then the expiry job releases it.
"""

from __future__ import annotations

from typing import Any

from authhost.admin.totals import iso_time
from authhost.store.interface import CardStore, JournalQuery, OpenHold
from authhost.store.records import JournalEntry

# how far before a hold's (possibly extended) start its authorisation is looked for: an
# incremental authorisation moves the start on, up to the longest life a hold may have
LOOKBACK_S = 62 * 86_400.0
HOLDS_LISTED = 1000  # the oldest listed; held_minor and the count cover them all


async def open_holds_view(
    store: CardStore, account: dict[str, Any], hold_days: float | None
) -> dict[str, Any]:
    every = await store.open_holds(account["account_id"])
    holds = every[:HOLDS_LISTED]
    origins: dict[str, JournalEntry] = {}
    if holds:
        wanted = {hold.match_key for hold in holds}
        since = holds[0].created_at - LOOKBACK_S  # oldest first
        query = JournalQuery(account_id=account["account_id"], since=since)
        async for entry in store.export_journal(query):
            if entry.match_key in wanted and entry.match_key not in origins and _placed(entry):
                origins[entry.match_key] = entry
    return {
        "account": account,
        "held_minor": sum(hold.amount_minor for hold in every),
        "open_holds": len(every),
        "holds_listed_in_part": len(every) > len(holds),
        "holds": [_view(hold, origins.get(hold.match_key), hold_days) for hold in holds],
    }


def _placed(entry: JournalEntry) -> bool:
    """The entry that placed a hold (a reversal or completion shares its match key)."""
    if entry.movement:
        return entry.movement == "hold"
    return entry.hold_amount > 0 and entry.message_class.startswith("authorisation")


def _view(hold: OpenHold, origin: JournalEntry | None, hold_days: float | None) -> dict[str, Any]:
    expires = (
        iso_time(hold.created_at + hold_days * 86_400 + hold.extra_life_s)
        if hold_days is not None
        else None
    )
    view: dict[str, Any] = {
        "held_minor": hold.amount_minor,
        "held_since": iso_time(hold.created_at),
        "extra_life_s": hold.extra_life_s,
        "expires_at": expires,
    }
    if origin is None:  # its journal entry was pruned (older than the retention)
        return {**view, "journal_id": None}
    return {
        **view,
        "journal_id": origin.journal_id,
        "authorised_at": iso_time(origin.ts),
        "authorised_minor": origin.hold_amount,
        "currency": origin.currency,
        "card_id": origin.card_id,
        "pan": origin.pan_masked,
        "merchant_id": origin.merchant_id,
        "merchant_name": origin.merchant_name,
        "mcc": origin.mcc,
        "approval_code": origin.approval_code,
    }
