"""The issuer's answer when a wallet asks the network's token service for a token of one of its
cards: approve (green), ask the cardholder to prove it is them first (yellow: a one-time code,
the banking app), or decline (red).

This is where wallet fraud starts: a fraudster with a stolen card number and a phone asks for a
token. The wallet sends what it knows of the device and the account behind it (scores 1-5, 5
the most trusted, as the token services pass them), and the issuer adds what it knows of the
card. Pure: the admin service gathers the facts and registers the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from authhost.cards.model import Card, CardState
from authhost.cards.tokens import PaymentToken, TokenState

DAY_S = 86400.0
# a card that got this many tokens in the last day is being put in phones one after another
RECENT_TOKENS_YELLOW = 2
LOW_SCORE = 2  # a wallet score (1-5) at or below this: ask the cardholder
RED_SCORE = 1  # the wallet itself says the device or account is bad
# wrong CVV2s in the card's token requests of the last day after which every request is
# declined, the right CVV2 too: else a token request is a CVV2 oracle (1,000 tries at most)
CVV2_TRIES = 3


class ProvisioningDecision(StrEnum):
    APPROVED = "approved"  # green: the token is active at once
    AUTHENTICATION_REQUIRED = "authentication_required"  # yellow: inactive until verified
    DECLINED = "declined"  # red: no token


@dataclass(frozen=True, slots=True)
class TokenRequestFacts:
    """What the issuer weighs: the card, whether the card data the wallet sent matched, the
    wallet's own scores, and how many tokens the card got lately."""

    card: Card
    expiry_matches: bool
    cvv2_matches: bool | None  # None: the wallet sent none (a card on file, say)
    device_score: int | None = None  # 1-5 from the wallet: 5 most trusted; None not given
    account_score: int | None = None
    now: float = 0.0
    recent_cvv2_failures: int = 0  # the card's token requests of the last day a CVV2 failed


@dataclass(frozen=True, slots=True)
class ProvisioningAnswer:
    decision: ProvisioningDecision
    reasons: tuple[str, ...]

    @property
    def token_state(self) -> TokenState | None:
        """The state the token starts in; None: no token."""
        if self.decision is ProvisioningDecision.APPROVED:
            return TokenState.ACTIVE
        if self.decision is ProvisioningDecision.AUTHENTICATION_REQUIRED:
            return TokenState.SUSPENDED  # until the cardholder's one-time code is verified
        return None


def decide_token_request(facts: TokenRequestFacts) -> ProvisioningAnswer:
    """Red for a card that cannot pay or card data that does not match, or a wallet that says
    it is bad; yellow for anything that makes a thief likelier than the cardholder; else
    green. Every reason found is given."""
    card = facts.card
    red: list[str] = []
    if card.state is not CardState.ACTIVE:
        red.append(f"provisioning.card_{card.state.value}")
    if not facts.expiry_matches:
        red.append("provisioning.expiry_mismatch")
    if facts.cvv2_matches is False:
        red.append("provisioning.cvv2_failed")
    if facts.recent_cvv2_failures >= CVV2_TRIES:
        red.append("provisioning.cvv2_tries")
    for name, score in (("device", facts.device_score), ("account", facts.account_score)):
        if score is not None and score <= RED_SCORE:
            red.append(f"provisioning.{name}_score")
    if red:
        return ProvisioningAnswer(ProvisioningDecision.DECLINED, tuple(red))
    yellow: list[str] = []
    for name, score in (("device", facts.device_score), ("account", facts.account_score)):
        if score is not None and score <= LOW_SCORE:
            yellow.append(f"provisioning.low_{name}_score")
    if facts.cvv2_matches is None:
        yellow.append("provisioning.no_cvv2")
    if _recent_tokens(card.tokens, facts.now) >= RECENT_TOKENS_YELLOW:
        yellow.append("provisioning.recent_tokens")
    if yellow:
        return ProvisioningAnswer(ProvisioningDecision.AUTHENTICATION_REQUIRED, tuple(yellow))
    return ProvisioningAnswer(ProvisioningDecision.APPROVED, ())


def _recent_tokens(tokens: tuple[PaymentToken, ...], now: float) -> int:
    return sum(1 for t in tokens if now - t.created_at < DAY_S)
