"""Payment tokens: the numbers a wallet (Apple Pay, Google Pay...) or a merchant keeps in place
of the card's PAN, issued by the network's token service with the issuer's consent.

The network de-tokenises a payment on the issuer's behalf: field 2 carries the card's PAN and
field 48 SE 33 the token it was paid with. The issuer keeps each token of a card (its keyed
index and last four digits, never the number) with who asked for it and its state, so that a
phone reported lost stops paying while the plastic works on, and rules can tell a wallet
payment from a typed card number. Pure: the store keeps the tokens on the card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum


class TokenState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # the device is lost, or the cardholder paused it: resumable
    DELETED = "deleted"  # final: the wallet removed it, or the issuer did


# what may follow what: a deleted token never pays again
TOKEN_TRANSITIONS: dict[TokenState, frozenset[TokenState]] = {
    TokenState.ACTIVE: frozenset({TokenState.SUSPENDED, TokenState.DELETED}),
    TokenState.SUSPENDED: frozenset({TokenState.ACTIVE, TokenState.DELETED}),
    TokenState.DELETED: frozenset(),
}

# Token requestor IDs (11 digits, field 48 SE 33 SF 06) of the best-known wallets; any other
# requestor is named when the token is registered, or "other"
WALLETS_BY_REQUESTOR = {
    "50110030273": "apple_pay",
    "50120834693": "google_pay",
    "50139059239": "samsung_pay",
}
WALLETS = ("apple_pay", "google_pay", "samsung_pay", "merchant", "other")
MAX_TOKENS_PER_CARD = 50
# a token registered this shortly before its card was reported lost may be the finder's: it is
# suspended with the card (the cardholder's older ones wait for the replacement as they are)
LOST_CARD_RECENT_S = 86400.0


class TokenError(ValueError):
    """A token change that cannot be made (messages never contain a token number)."""


@dataclass(frozen=True, slots=True)
class PaymentToken:
    """One token of a card, as the issuer keeps it."""

    token_ref: str  # keyed hash (HMAC-SHA-256, the PAN index key) of the token number, hex
    last4: str
    requestor_id: str  # 11 digits: the wallet or merchant the network issued it to
    wallet: str  # one of WALLETS
    expiry: str = ""  # the token's own expiry, YYMM
    device: str = ""  # what the wallet said it runs on (phone, watch...), for people
    state: TokenState = TokenState.ACTIVE
    created_at: float = 0.0
    changed_at: float = 0.0


def wallet_of(requestor_id: str, named: str = "") -> str:
    """The wallet a token belongs to: as named, else from the well-known requestor IDs."""
    if named:
        if named not in WALLETS:
            raise TokenError(f"wallet must be one of {', '.join(WALLETS)}")
        return named
    return WALLETS_BY_REQUESTOR.get(requestor_id, "other")


def add_token(tokens: tuple[PaymentToken, ...], token: PaymentToken) -> tuple[PaymentToken, ...]:
    """The card's tokens with a new one; refused when the card has it already."""
    if any(t.token_ref == token.token_ref for t in tokens):
        raise TokenError(f"the card has token ...{token.last4} already")
    live = [t for t in tokens if t.state is not TokenState.DELETED]
    if len(live) >= MAX_TOKENS_PER_CARD:
        raise TokenError(f"a card has at most {MAX_TOKENS_PER_CARD} live tokens")
    return (*tokens, token)


def change_state(
    tokens: tuple[PaymentToken, ...], token_ref: str, state: TokenState, now: float
) -> tuple[PaymentToken, ...]:
    """The card's tokens with one moved to ``state`` (TOKEN_TRANSITIONS); the same state again
    changes nothing."""
    found = find_token(tokens, token_ref)
    if found is None:
        raise LookupError(f"the card has no token {token_ref}")
    if found.state is state:
        return tokens
    if state not in TOKEN_TRANSITIONS[found.state]:
        raise TokenError(f"token ...{found.last4} is {found.state.value}: it cannot be {state}")
    changed = replace(found, state=state, changed_at=now)
    return tuple(changed if t.token_ref == token_ref else t for t in tokens)


def end_tokens(tokens: tuple[PaymentToken, ...], now: float) -> tuple[PaymentToken, ...]:
    """The tokens of a card that pays no more (closed, lost...): every one not deleted yet
    is, as of ``now``."""
    return tuple(
        t if t.state is TokenState.DELETED else replace(t, state=TokenState.DELETED, changed_at=now)
        for t in tokens
    )


def suspend_tokens(
    tokens: tuple[PaymentToken, ...], now: float, registered_after: float | None = None
) -> tuple[PaymentToken, ...]:
    """The tokens with every active one suspended as of ``now`` (only those registered after
    ``registered_after`` when given): a stolen card's tokens may be the thief's, and go on
    with its replacement suspended until the cardholder says which phones are theirs."""
    return tuple(
        replace(t, state=TokenState.SUSPENDED, changed_at=now)
        if t.state is TokenState.ACTIVE
        and (registered_after is None or t.created_at > registered_after)
        else t
        for t in tokens
    )


@dataclass(frozen=True, slots=True)
class HandedOver:
    """The tokens a card under a new PAN takes over from the cards it succeeds."""

    tokens: tuple[PaymentToken, ...]  # the successor's tokens, the moved ones added
    moved: tuple[tuple[PaymentToken, int], ...]  # each moved token and which card it came from
    refs: frozenset[str]  # every live token reference the predecessors give up


def hand_over(
    own: tuple[PaymentToken, ...], predecessors: Sequence[tuple[PaymentToken, ...]]
) -> HandedOver:
    """What a successor under a new PAN takes from the tokens of the cards it succeeds
    (``predecessors``, nearest first: one card, or a chain of copies of the same tokens): each
    token reference once, as its most recently changed copy has it (nearest first on a tie),
    with its reference, state and dates, when that copy is live (active or suspended); a
    deleted token stays behind. A reference the successor has already (registered on the new
    PAN itself) is its own and is not taken, though the predecessors give it up too."""
    newest: dict[str, tuple[PaymentToken, int]] = {}
    for index, tokens in enumerate(predecessors):
        for token in tokens:
            seen = newest.get(token.token_ref)
            if seen is None or token.changed_at > seen[0].changed_at:
                newest[token.token_ref] = (token, index)
    has = {t.token_ref for t in own}
    moved = tuple(
        (token, index)
        for token, index in newest.values()
        if token.state is not TokenState.DELETED and token.token_ref not in has
    )
    refs = frozenset(
        t.token_ref for tokens in predecessors for t in tokens if t.state is not TokenState.DELETED
    )
    return HandedOver((*own, *(t for t, _ in moved)), moved, refs)


def given_up(tokens: tuple[PaymentToken, ...], refs: frozenset[str]) -> tuple[PaymentToken, ...]:
    """A predecessor's tokens without the live ones in ``refs`` (handed over to its successor
    under a new PAN); deleted tokens stay, as its history."""
    return tuple(t for t in tokens if t.state is TokenState.DELETED or t.token_ref not in refs)


def token_age_hours(token: PaymentToken | None, now: float) -> float:
    """Hours since ``token`` was registered; -1 without one. A token put in a wallet minutes
    before it spends is how a stolen card number is cashed out."""
    if token is None:
        return -1.0
    return max(0.0, (now - token.created_at) / 3600.0)


def find_token(tokens: tuple[PaymentToken, ...], token_ref: str) -> PaymentToken | None:
    for token in tokens:
        if token.token_ref == token_ref:
            return token
    return None
