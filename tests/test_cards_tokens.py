"""A card's payment tokens (cards.tokens): who holds them, and the states they may move
between."""

from __future__ import annotations

import pytest

from authhost.cards.model import Card, CardState
from authhost.cards.provisioning import TokenRequestFacts, decide_token_request
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


NOW = 2_000_000_000.0


def _facts(**changes) -> TokenRequestFacts:
    card = Card("crd_1", "ab" * 32, "476173", "0119", 16, "p1", "acc-1", CardState.ACTIVE,
                "3012", "201", created_at=NOW - 400 * 86400)  # fmt: skip
    base = {"card": card, "expiry_matches": True, "cvv2_matches": True, "device_score": 5,
            "account_score": 5, "now": NOW}  # fmt: skip
    return TokenRequestFacts(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "decision", "reasons"),
    [
        ({}, "approved", ()),
        ({"device_score": None, "account_score": None}, "approved", ()),  # not given
        ({"device_score": 2}, "authentication_required", ("provisioning.low_device_score",)),
        ({"account_score": 3}, "approved", ()),
        ({"cvv2_matches": None}, "authentication_required", ("provisioning.no_cvv2",)),
        ({"cvv2_matches": False}, "declined", ("provisioning.cvv2_failed",)),
        ({"expiry_matches": False, "device_score": 1}, "declined",
         ("provisioning.expiry_mismatch", "provisioning.device_score")),
        ({"account_score": 1, "cvv2_matches": None}, "declined", ("provisioning.account_score",)),
    ],
)  # fmt: skip
def test_a_token_request_is_green_yellow_or_red(changes, decision, reasons) -> None:
    answer = decide_token_request(_facts(**changes))
    assert (answer.decision.value, answer.reasons) == (decision, reasons)
    expected = {"approved": TokenState.ACTIVE, "authentication_required": TokenState.SUSPENDED}
    assert answer.token_state is expected.get(decision)


@pytest.mark.parametrize("state", [s for s in CardState if s is not CardState.ACTIVE])
def test_only_an_active_card_gets_a_token(state: CardState) -> None:
    card = Card("crd_1", "ab" * 32, "476173", "0119", 16, "p1", "acc-1", state, "3012", "201")
    answer = decide_token_request(_facts(card=card))
    assert answer.decision.value == "declined"
    assert answer.reasons == (f"provisioning.card_{state.value}",)


def test_a_card_put_in_phones_one_after_another_needs_its_holder() -> None:
    today = (PHONE.__class__(**{**_fields(PHONE), "created_at": NOW - 3600}),)
    card = _facts().card
    once = decide_token_request(_facts(card=Card(**{**_card_fields(card), "tokens": today})))
    assert once.decision.value == "approved"  # one phone today: the cardholder's new one
    twice = today + (PaymentToken(**{**_fields(WATCH), "created_at": NOW - 60}),)
    again = decide_token_request(_facts(card=Card(**{**_card_fields(card), "tokens": twice})))
    assert again.reasons == ("provisioning.recent_tokens",)
    old = tuple(PaymentToken(**{**_fields(t), "created_at": NOW - 2 * 86400}) for t in twice)
    later = decide_token_request(_facts(card=Card(**{**_card_fields(card), "tokens": old})))
    assert later.decision.value == "approved"


def _card_fields(card: Card) -> dict:
    return {name: getattr(card, name) for name in Card.__slots__}
