"""ISO 8583 response codes (field 39) used by authhost: the one table, imported everywhere."""

from __future__ import annotations

from enum import StrEnum


class ResponseCode(StrEnum):
    """Field 39 values; the member name says what the code means."""

    APPROVED = "00"
    PARTIAL_APPROVAL = "10"  # approved for less than asked: field 4 of the answer says how much
    DO_NOT_HONOUR = "05"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD_NUMBER = "14"
    FORMAT_ERROR = "30"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED_TO_CARDHOLDER = "57"
    SUSPECTED_FRAUD = "59"
    SECURITY_VIOLATION = "63"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    PIN_TRIES_EXCEEDED = "75"
    CARD_NOT_ACTIVE = "78"
    CVV_FAILED = "82"
    NO_REASON_TO_DECLINE = "85"  # an account verification passed every check
    ISSUER_UNAVAILABLE = "91"
    DUPLICATE_TRANSMISSION = "94"
    SYSTEM_MALFUNCTION = "96"
    CVV2_FAILED = "N7"
    # Visa's stop payment service: the cardholder revoked a merchant's recurring charges (R1),
    # or every merchant's (R3); the merchant must not try again
    REVOCATION_OF_AUTHORISATION = "R1"
    REVOCATION_OF_ALL_AUTHORISATIONS = "R3"


MEANINGS: dict[str, str] = {
    "00": "approved",
    "10": "approved for partial amount",
    "05": "do not honour",
    "12": "invalid transaction",
    "13": "invalid amount",
    "14": "invalid card number",
    "30": "format error",
    "41": "lost card, pick up",
    "43": "stolen card, pick up",
    "51": "insufficient funds",
    "54": "expired card",
    "55": "incorrect PIN",
    "57": "transaction not permitted to cardholder",
    "59": "suspected fraud",
    "63": "security violation (MAC failed)",
    # ISO 8583 says "withdrawal"; authhost answers 61 and 65 to purchases too (a card's or
    # product's limits), and a support agent reads this text to a cardholder at a till
    "61": "exceeds amount limit",
    "62": "restricted card",
    "65": "exceeds frequency limit",
    "75": "allowable number of PIN tries exceeded",
    "78": "card not active",
    "82": "CVV failed",
    "85": "no reason to decline (account verified)",
    "91": "issuer unavailable",
    "94": "duplicate transmission",
    "96": "system malfunction",
    "N7": "CVV2 failed",
    "R1": "revocation of authorisation order (stop payment)",
    "R3": "revocation of all authorisations order (stop payment)",
}


def meaning(code: str) -> str:
    """Human text for a response code, for the simulator and logs."""
    return MEANINGS.get(code, "unknown response code")


# what money was approved under: a full or a partial approval (the velocity counters, the
# approval code and the answer's balances treat both alike)
APPROVED_CODES = frozenset({ResponseCode.APPROVED.value, ResponseCode.PARTIAL_APPROVAL.value})
