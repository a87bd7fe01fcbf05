"""How money moves on an account: one definition of spending, refunds and releases.

Debit and prepaid accounts hold the cardholder's money in ``balance``; credit accounts hold the
debt. Spending therefore lowers a debit balance and raises a credit balance. The SQLite backend
calls these functions inside its transaction; the Redis backend's Lua commit mirrors it (and
the shared test suite holds both to the same results).
"""

from __future__ import annotations

from authhost.cards.model import CardKind

# The most an account's balance may be either way (funds, or a credit account's debt; a credit
# balance, or a debit account's overdraft), and the most its holds may add up to, in minor
# units: 10^15, ten trillion euros in cents, what a single request may carry already. Every
# write that moves money refuses a change that would go beyond it, in the write itself: SQLite
# stores integers in 64 bits and turns a sum past them into a float (the balance then stuck
# at 9.2e18, every later change lost), and Redis's Lua scripts compute in doubles, exact only
# below 2^53 (about 9.007e15), so with every value within 10^15 each sum they make is exact.
BALANCE_BOUND = 10**15


def beyond_bound(now: int, change: int) -> bool:
    """``now + change`` would be beyond BALANCE_BOUND either way, further from zero than
    ``now`` (a change back towards zero is always let through: from a value written before
    the bound, say)."""
    after = now + change
    return abs(after) > BALANCE_BOUND and abs(after) > abs(now)


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
