"""The cardholder's answer to a fraud alert: "it was me" lets the payment through on a retry.

A payment declined as suspected fraud (59) is an alert to the cardholder (admin.alerts). When
they answer that it was them, the card gets a pass: for a while, at that merchant, up to that
amount, what the fraud step would decline as suspected fraud is approved instead (journalled
with the rule's reason and ``fraud.cardholder_pass``). The pass lifts nothing else: the card's
state, PIN, CVV, the controls, limits and funds decide as always, and a rule that declines with
another response code (a policy, not a suspicion) still declines. A narrow pass is the point:
whoever holds the card details may also hold the phone the question went to.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_MINUTES = 24 * 60  # a pass is for a retry, not a standing exemption
DEFAULT_MINUTES = 60
PASS_REASON = "fraud.cardholder_pass"


@dataclass(frozen=True, slots=True)
class CardholderPass:
    journal_id: int  # the payment the cardholder confirmed
    merchant_id: str  # field 42 of the payments it covers; "" any merchant
    max_amount_minor: int  # in the account's currency, as the journal's amount_minor
    until: float  # epoch seconds, excluded


def pass_covers(
    cardholder_pass: CardholderPass | None, merchant_id: str, amount_minor: int, now: float
) -> bool:
    """Whether the card's pass covers a payment at ``merchant_id`` of ``amount_minor`` (the
    cardholder's currency) at ``now``."""
    if cardholder_pass is None or now >= cardholder_pass.until:
        return False
    if cardholder_pass.merchant_id and merchant_id != cardholder_pass.merchant_id:
        return False
    return amount_minor <= cardholder_pass.max_amount_minor
