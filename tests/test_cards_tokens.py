"""A card's payment tokens (cards.tokens): who holds them, and the states they may move
between."""

from __future__ import annotations

import pytest

from authhost.cards.tokens import (
    MAX_TOKENS_PER_CARD,
    PaymentToken,
    TokenError,
    TokenState,
    add_token,
    change_state,
    find_token,
    wallet_of,
)

PHONE = PaymentToken("aa" * 32, "1111", "50110030273", "apple_pay", created_at=1.0)
WATCH = PaymentToken("bb" * 32, "2222", "50110030273", "apple_pay", created_at=2.0)


def test_the_wallet_comes_from_the_requestor_unless_named() -> None:
    assert wallet_of("50110030273") == "apple_pay"
    assert wallet_of("50120834693") == "google_pay"
    assert wallet_of("50139059239") == "samsung_pay"
    assert wallet_of("40010075001") == "other"
    assert wallet_of("40010075001", "merchant") == "merchant"
    with pytest.raises(TokenError, match="wallet must be one of"):
        wallet_of("40010075001", "paypal")


@pytest.mark.parametrize(
    ("start", "to", "allowed"),
    [
        (TokenState.ACTIVE, TokenState.SUSPENDED, True),
        (TokenState.ACTIVE, TokenState.DELETED, True),
        (TokenState.SUSPENDED, TokenState.ACTIVE, True),
        (TokenState.SUSPENDED, TokenState.DELETED, True),
        (TokenState.DELETED, TokenState.ACTIVE, False),
        (TokenState.DELETED, TokenState.SUSPENDED, False),
    ],
)
def test_token_states(start: TokenState, to: TokenState, allowed: bool) -> None:
    tokens = (PaymentToken(**{**_fields(PHONE), "state": start}), WATCH)
    if not allowed:
        with pytest.raises(TokenError, match="cannot be"):
            change_state(tokens, PHONE.token_ref, to, 9.0)
        return
    changed = change_state(tokens, PHONE.token_ref, to, 9.0)
    phone = find_token(changed, PHONE.token_ref)
    assert phone is not None and phone.state is to and phone.changed_at == 9.0
    assert find_token(changed, WATCH.token_ref) == WATCH  # the other token is left alone


def test_the_same_state_again_changes_nothing_and_an_unknown_token_is_not_found() -> None:
    tokens = (PHONE,)
    assert change_state(tokens, PHONE.token_ref, TokenState.ACTIVE, 9.0) is tokens
    with pytest.raises(LookupError):
        change_state(tokens, "cc" * 32, TokenState.SUSPENDED, 9.0)


def test_a_token_is_added_once_and_a_card_has_a_bounded_number_live() -> None:
    assert add_token((PHONE,), WATCH) == (PHONE, WATCH)
    with pytest.raises(TokenError, match="already"):
        add_token((PHONE,), PHONE)
    many = tuple(PaymentToken(f"{i:064x}", "0000", "1" * 11, "other")
                 for i in range(MAX_TOKENS_PER_CARD))  # fmt: skip
    with pytest.raises(TokenError, match="at most"):
        add_token(many, WATCH)
    deleted = tuple(PaymentToken(**{**_fields(t), "state": TokenState.DELETED}) for t in many)
    assert add_token(deleted, WATCH)[-1] == WATCH  # deleted ones do not count


def _fields(token: PaymentToken) -> dict:
    return {name: getattr(token, name) for name in PaymentToken.__slots__}
