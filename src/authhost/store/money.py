"""How money moves on an account: one definition of spending, refunds and releases.

Debit and prepaid accounts hold the cardholder's money in ``balance``; credit accounts hold the
debt. Spending therefore lowers a debit balance and raises a credit balance. The SQLite backend
calls these functions inside its transaction; the Redis backend's Lua commit mirrors it (and
the shared test suite holds both to the same results).
"""

from __future__ import annotations

from authhost.cards.model import CardKind


def spend_delta(kind: CardKind | str, amount_minor: int) -> int:
    """Balance change when ``amount_minor`` is spent (posted) from an account of ``kind``."""
    return amount_minor if kind == CardKind.CREDIT else -amount_minor  # a StrEnum: str too


def balance_delta(kind: CardKind | str, movement: str, amount_minor: int) -> int:
    """What a movement of ``amount_minor`` adds to the balance of an account of ``kind``:
    a posting spends, a credit (a refund, a transfer in) gives back, a hold moves nothing.
    (A release's depends on what it releases: the store works it out as it releases.)"""
    if movement == "post":
        return spend_delta(kind, amount_minor)
    if movement == "credit":
        return -spend_delta(kind, amount_minor)
    return 0
