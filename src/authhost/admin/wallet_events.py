"""Wallet events for the cardholder notification service and the network's token service: a
card put in a phone (or asked for and refused), its tokens suspended, resumed or deleted, and
each token moved to the card that succeeds it under a new PAN (the token service's PAN update,
so that the wallet pays on with the new card).

"Your card was added to Google Pay on a phone. Not you? Call us" is how a cardholder stops
wallet fraud before the first payment. The events are the audit log's token entries (every
token change is audited, ``CardService.add_token`` and the rest), read in audit order after
the service's cursor, each once. The view names the card, the token's last four digits,
wallet and device: never a number (a PAN update names the old and the new card by id and
masked PAN, and the new card's expiry).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from authhost.admin.totals import iso_time
from authhost.store.records import AuditEntry

EVENT_KINDS = {
    "card.token_add": "token_added",
    "card.token_request": "token_requested",  # approved, waiting for a code, or declined
    "card.token_active": "token_activated",
    "card.token_suspended": "token_suspended",
    "card.token_deleted": "token_deleted",
    "card.token_pan_update": "token_pan_updated",  # moved to the card's successor (new PAN)
}
PAGE = 500  # audit entries read at a time (most are not wallet events)

AuditReader = Callable[[str, int, int], Awaitable[list[AuditEntry]]]


async def wallet_events(audit: AuditReader, after_id: int, limit: int) -> dict[str, Any]:
    """Up to ``limit`` events after audit id ``after_id`` and the cursor to poll with next
    (the last audit id read, so entries that are not events are not read again)."""
    events: list[dict[str, Any]] = []
    cursor = after_id
    while len(events) < limit:
        page = await audit("", PAGE, cursor)
        for entry in page:
            cursor = entry.audit_id
            kind = EVENT_KINDS.get(entry.action)
            if kind is not None:
                events.append(event_view(entry, kind))
                if len(events) == limit:
                    break
        if len(page) < PAGE:
            break
    return {"events": events, "next_after_id": cursor}


def event_view(entry: AuditEntry, kind: str) -> dict[str, Any]:
    """The event: which card and token (last four, wallet, device, state), and for a token
    request, the issuer's decision."""
    before = json.loads(entry.before) if entry.before else {}
    after = json.loads(entry.after) if entry.after else {}
    view: dict[str, Any] = {
        "audit_id": entry.audit_id,
        "time": iso_time(entry.ts),
        "card_id": entry.subject,
        "event": kind,
        "pan": after.get("pan", before.get("pan", "")),  # masked, as the card view shows it
        "token": _changed_token(before.get("tokens", []), after.get("tokens", [])),
    }
    if "decision" in after:  # a token request: what the issuer answered
        view["decision"], view["reasons"] = after["decision"], after.get("reasons", [])
    if "from_card_id" in after:  # a PAN update: the card the token was on, and the new expiry
        view["previous_card_id"] = after["from_card_id"]
        view["previous_pan"] = after.get("from_pan", "")
        view["card_expiry"] = after.get("expiry", "")
    return view


def _changed_token(before: list[dict], after: list[dict]) -> dict[str, Any] | None:
    """The token the change added or moved: last four, wallet, device, state."""
    seen = {t["token_ref"]: t for t in before}
    for token in after:
        old = seen.get(token["token_ref"])
        if old is None or old.get("state") != token.get("state"):
            keep = ("token_ref", "last4", "wallet", "device", "state", "requestor_id")
            return {k: token.get(k) for k in keep}
    return None
