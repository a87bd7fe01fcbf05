"""Cardholder alerts: what the bank's notification service (SMS, push) tells a cardholder.

The notification service polls ``GET /v1/journal/alerts`` with the last ``journal_id`` it read
(``admin.journal_feed``) and gets each alert once, in journal order. Some alerts are always
raised, because the cardholder must hear of them at once: a payment blocked as suspected
fraud (59), an attempt with a card reported lost or stolen (41, 43), the PIN locked (75),
money received, a payment from a wallet token registered in the last day (the card was put
in a phone: the cardholder's, or a fraudster's). Others follow the service's own policy,
given with each poll: approvals at or above an amount, without the card present, or abroad.
The host keeps no cardholder contact data; the service finds the cardholder by ``card_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authhost.admin.totals import iso_time
from authhost.iso.codes import APPROVED_CODES
from authhost.iso.messages import CREDIT_TYPES
from authhost.store.records import JournalEntry

ALWAYS = {
    "59": "suspected_fraud_declined",
    "41": "lost_card_used",
    "43": "stolen_card_used",
    "75": "pin_locked",
}
_ANSWERED = ("authorisation", "financial")  # what the cardholder did (not advices, reversals)
_CARD_NOT_PRESENT = ("ecommerce", "moto")
NEW_TOKEN_HOURS = 24.0  # a wallet token this young that pays is always an alert


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Which approvals the notification service wants to hear of, besides the ALWAYS ones."""

    amount_minor: int = 0  # approvals at or above this amount (0: none for the amount)
    card_not_present: bool = False  # approved e-commerce and mail/telephone orders
    abroad: bool = False  # approved where the acquirer's country is not the card's home


def alert_kinds(entry: JournalEntry, policy: AlertPolicy) -> list[str]:
    """Why ``entry`` is an alert (empty: it is not one)."""
    if not entry.card_id or entry.message_class not in _ANSWERED:
        return []
    always = ALWAYS.get(entry.response_code)
    if always is not None:
        return [always]
    if entry.response_code not in APPROVED_CODES:
        return []
    if entry.processing_code[:2] in CREDIT_TYPES:
        return ["money_received"]
    kinds = []
    if entry.wallet and 0 <= entry.token_age_hours < NEW_TOKEN_HOURS:
        kinds.append("new_wallet_token")
    if policy.amount_minor and entry.amount_minor >= policy.amount_minor:
        kinds.append("large_amount")
    if policy.card_not_present and entry.channel in _CARD_NOT_PRESENT:
        kinds.append("card_not_present")
    abroad = entry.country and entry.home_country and entry.country != entry.home_country
    if policy.abroad and abroad:
        kinds.append("abroad")
    return kinds


def alert_view(entry: JournalEntry, kinds: list[str]) -> dict[str, Any]:
    """What the notification service needs to word the message (no full PAN)."""
    return {
        "journal_id": entry.journal_id,
        "time": iso_time(entry.ts),
        "card_id": entry.card_id,
        "account_id": entry.account_id,
        "pan": entry.pan_masked,
        "alerts": kinds,
        "response_code": entry.response_code,
        "rrn": entry.rrn,  # the reference the cardholder quotes to customer service
        "amount_minor": entry.amount_minor,
        "currency": entry.currency,
        "merchant_name": entry.merchant_name,
        "mcc": entry.mcc,
        "country": entry.country,
        "channel": entry.channel,
        "wallet": entry.wallet,  # "" the card itself; which wallet's token paid
    }
