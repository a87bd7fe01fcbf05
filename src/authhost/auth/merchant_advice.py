"""Mastercard's merchant advice code: whether a merchant may try a declined request again.

A merchant charging a card on file retries declines, and networks charge issuers and
merchants for retries that could never succeed. The advice code (DE 48 subelement 84 of the
answer) says which: new account information is available (the card was replaced: ask the
account updater), try again later (funds, limits, the issuer unreachable), do not try again
(the card is lost, stolen, closed or not this issuer's), or the cardholder cancelled the
payments (a stop payment). A listener sends it when configured to (``merchant_advice``).
"""

from __future__ import annotations

from collections.abc import Sequence

NEW_ACCOUNT_INFORMATION = "01"
TRY_AGAIN_LATER = "02"
DO_NOT_TRY_AGAIN = "03"
PAYMENT_CANCELLATION = "21"

# a reason says more than its response code: a replaced card's 62 is new account information
# (the account updater has it), a suspended card's 62 may work again
_BY_REASON = {
    "card.replaced": NEW_ACCOUNT_INFORMATION,
    "card.suspended": TRY_AGAIN_LATER,
    "stop_payment.merchant": PAYMENT_CANCELLATION,
    "stop_payment.all_merchants": PAYMENT_CANCELLATION,
}
_BY_CODE = {
    "51": TRY_AGAIN_LATER,
    "61": TRY_AGAIN_LATER,
    "65": TRY_AGAIN_LATER,
    "78": TRY_AGAIN_LATER,  # not activated yet: the cardholder may activate it
    "91": TRY_AGAIN_LATER,
    "96": TRY_AGAIN_LATER,
    "14": DO_NOT_TRY_AGAIN,
    "41": DO_NOT_TRY_AGAIN,
    "43": DO_NOT_TRY_AGAIN,
    "54": DO_NOT_TRY_AGAIN,
    "57": DO_NOT_TRY_AGAIN,
    "62": DO_NOT_TRY_AGAIN,
    "R1": PAYMENT_CANCELLATION,
    "R3": PAYMENT_CANCELLATION,
}


def merchant_advice_code(response_code: str, reasons: Sequence[str]) -> str | None:
    """The advice for an answer (None: none to give, as for approvals and suspected fraud,
    whose decline says nothing a fraudster could use)."""
    for reason in reasons:
        advice = _BY_REASON.get(reason)
        if advice is not None:
            return advice
    return _BY_CODE.get(response_code)
