"""The networks' account updater file: which cards kept on file by merchants changed.

Merchants keep card numbers on file for subscriptions and one-click payments. When the issuer
replaces a card, the number or the expiry they keep stops working, and the cardholder's
subscription fails. Visa Account Updater and Mastercard Automatic Billing Updater carry the
issuer's changes to the merchants that ask: a new number (a lost, stolen or exposed card
replaced), a new expiry (a renewal, a damaged card replaced under the same number), or a
closed account. The issuer sends them the changes of a period; this module finds them.

A change counts when it takes effect: a successor when it is activated (until then the old
card works and the merchant's data is still good), a closure when the card is cancelled and
no successor carries it on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from authhost.cards.lifecycle import LIVE_STATES, has_been_activated
from authhost.cards.model import Card


class UpdateCode(StrEnum):
    """Visa Account Updater's response codes (Mastercard ABU's reasons say the same)."""

    NEW_ACCOUNT = "A"  # a new card number (and its expiry)
    NEW_EXPIRY = "E"  # the same number, a new expiry
    CLOSED = "C"  # the account is closed: stop charging it


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """One change, by card (the PANs are read from the store's ciphertext when written)."""

    code: UpdateCode
    old: Card
    new: Card | None  # None for a closure
    effective: float  # epoch seconds: activation of the successor, or the closure


async def account_updates(
    cards: AsyncIterator[Card],
    get_card: Callable[[str], Awaitable[Card | None]],
    since: float,
    until: float,
) -> list[AccountUpdate]:
    """The changes among ``cards`` (every card of the store) that took effect in [since,
    until), oldest first; ``get_card`` reads a predecessor or successor."""
    updates: list[AccountUpdate] = []
    async for card in cards:
        update = await _update_of(card, get_card, since, until)
        if update is not None:
            updates.append(update)
    updates.sort(key=lambda u: (u.effective, u.old.card_id))
    return updates


async def _update_of(
    card: Card,
    get_card: Callable[[str], Awaitable[Card | None]],
    since: float,
    until: float,
) -> AccountUpdate | None:
    activated = card.activated_at
    if card.replaces and activated is not None and since <= activated < until:
        old = await get_card(card.replaces)
        if old is None:
            return None
        code = UpdateCode.NEW_EXPIRY if old.pan_index == card.pan_index else UpdateCode.NEW_ACCOUNT
        if code is UpdateCode.NEW_EXPIRY and old.expiry == card.expiry:
            return None  # nothing a merchant keeps has changed
        return AccountUpdate(code, old, card, activated)
    closed = card.closed_at
    if closed is not None and since <= closed < until:
        if not has_been_activated(card):  # never used: no merchant keeps it (a renewal
            return None  # withdrawn before its activation leaves the card it renews live)
        successor = await get_card(card.replaced_by) if card.replaced_by else None
        if successor is not None and successor.state in LIVE_STATES:
            return None  # the successor carries the account on: reported when activated
        return AccountUpdate(UpdateCode.CLOSED, card, None, closed)
    return None
