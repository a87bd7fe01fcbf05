"""Step 5: product and card controls: channels, MCC and country blocks, the cardholder's stop
payments, amount and count limits.

Daily and monthly limits use the store's rolling 24-hour and 30-day counters (approved amounts
and counts), so a limit can never be escaped by waiting for midnight.
"""

from __future__ import annotations

import time

from authhost.auth.decision import Decline
from authhost.auth.steps.validate import CASH_DEPOSIT, INCOMING_CREDITS
from authhost.auth.transaction import Transaction
from authhost.cards.model import ALL_MERCHANTS, CardKind, StopPayment
from authhost.iso.codes import ResponseCode as RC

# purchase, cash, cashback, account funding (Visa's AFT: the card pays into a transfer)
DEBIT_TYPES = frozenset({"00", "01", "09", "10"})


def _over(limit: int | None, value: int) -> bool:
    return limit is not None and value > limit


def controls(tx: Transaction) -> Decline | None:
    request, product = tx.request, tx.snapshot.product
    assert product is not None
    if request.transaction_type in INCOMING_CREDITS:
        # a transfer to the card is not the cardholder using it: no channel, merchant or
        # country block and no spending limit applies, only the most the account may hold
        return _within_max_balance(tx)
    if str(request.channel) not in product.channels:
        return Decline(RC.NOT_PERMITTED_TO_CARDHOLDER, f"controls.channel_{request.channel}")
    if request.mcc and request.mcc in product.blocked_mccs:
        return Decline(RC.NOT_PERMITTED_TO_CARDHOLDER, "controls.mcc_blocked")
    if request.country and request.country in product.blocked_countries:
        return Decline(RC.NOT_PERMITTED_TO_CARDHOLDER, "controls.country_blocked")
    card = tx.snapshot.card
    own = card.controls if card is not None else None
    if own is not None:  # what the cardholder switched off on this card
        if str(request.channel) in own.blocked_channels:
            return Decline(
                RC.NOT_PERMITTED_TO_CARDHOLDER, f"card_controls.channel_{request.channel}"
            )
        if request.mcc and request.mcc in own.blocked_mccs:
            return Decline(RC.NOT_PERMITTED_TO_CARDHOLDER, "card_controls.mcc_blocked")
        if request.country and request.country in own.blocked_countries:
            return Decline(RC.NOT_PERMITTED_TO_CARDHOLDER, "card_controls.country_blocked")
    if request.merchant_initiated and card is not None and card.stop_payments:
        stopped = stop_payment_of(card.stop_payments, request.merchant_id or "", tx.now)
        if stopped is not None:
            return stopped
    if request.transaction_type == CASH_DEPOSIT:  # the card used at an ATM: blocks apply
        return _within_max_balance(tx)
    if request.transaction_type not in DEBIT_TYPES:
        return None
    amount = request.cardholder_amount_minor or 0  # limits are in the account's currency
    if not amount:  # an account verification moves no money: no limit applies to it
        return None
    limits, velocity = tx.limits, tx.snapshot.velocity
    if _over(limits.per_transaction, amount):
        return Decline(RC.EXCEEDS_AMOUNT_LIMIT, "limits.per_transaction")
    if _over(limits.daily_amount, velocity.amount_24h + amount):
        return Decline(RC.EXCEEDS_AMOUNT_LIMIT, "limits.daily_amount")
    if _over(limits.daily_count, velocity.approved_count_24h + 1):
        return Decline(RC.EXCEEDS_FREQUENCY_LIMIT, "limits.daily_count")
    if _over(limits.monthly_amount, velocity.amount_30d + amount):
        return Decline(RC.EXCEEDS_AMOUNT_LIMIT, "limits.monthly_amount")
    if _over(limits.monthly_count, velocity.approved_count_30d + 1):
        return Decline(RC.EXCEEDS_FREQUENCY_LIMIT, "limits.monthly_count")
    if request.transaction_type == "01":
        if _over(limits.atm_per_transaction, amount):
            return Decline(RC.EXCEEDS_AMOUNT_LIMIT, "limits.atm_per_transaction")
        if _over(limits.atm_daily_amount, velocity.cash_amount_24h + amount):
            return Decline(RC.EXCEEDS_AMOUNT_LIMIT, "limits.atm_daily_amount")
        if _over(limits.atm_daily_count, velocity.cash_count_24h + 1):
            return Decline(RC.EXCEEDS_FREQUENCY_LIMIT, "limits.atm_daily_count")
    return None


def _within_max_balance(tx: Transaction) -> Decline | None:
    """A debit or prepaid account may not grow beyond the card's ``max_balance`` with money
    paid in (a prepaid programme's limit; 0: the card takes no transfers or deposits)."""
    limit, account = tx.limits.max_balance, tx.snapshot.account
    if limit is None or account is None or account.kind is CardKind.CREDIT:
        return None
    if account.balance + (tx.request.cardholder_amount_minor or 0) > limit:
        return Decline(RC.EXCEEDS_AMOUNT_LIMIT, "limits.max_balance")
    return None


def stop_payment_of(stops: tuple[StopPayment, ...], merchant_id: str, now: float) -> Decline | None:
    """The decline of a merchant-initiated charge the cardholder revoked: R1 for this
    merchant, R3 for every merchant; a stop is in force through its ``until`` day (UTC)."""
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    for stop in stops:
        if stop.until and stop.until < today:
            continue
        if stop.merchant_id == merchant_id.rstrip():
            return Decline(RC.REVOCATION_OF_AUTHORISATION, "stop_payment.merchant")
        if stop.merchant_id == ALL_MERCHANTS:
            return Decline(RC.REVOCATION_OF_ALL_AUTHORISATIONS, "stop_payment.all_merchants")
    return None
