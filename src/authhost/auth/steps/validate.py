"""Step 1: is the request well formed enough to decide on?"""

from __future__ import annotations

from authhost.auth.currencies import is_known
from authhost.auth.decision import Decline
from authhost.auth.transaction import Transaction
from authhost.cards.luhn import is_luhn_valid
from authhost.iso.codes import ResponseCode as RC

# purchase, cash, cashback, an account funding transaction (Visa's AFT, 10: the card pays
# into a transfer, a wallet, a brokerage account), refund, a cash deposit at an ATM (21), an
# original credit (Visa's 26) or payment transaction (Mastercard's 28) paid to the card,
# balance inquiry, PIN unblock and PIN change (Mastercard's 91 and 92)
SUPPORTED_TYPES = frozenset({"00", "01", "09", "10", "20", "21", "26", "28", "31", "91", "92"})
CASH_DEPOSIT = "21"
INCOMING_CREDITS = frozenset({"26", "28"})  # a transfer to the card, not a refund of a sale
MONEYLESS_TYPES = frozenset({"31", "91", "92"})  # no amount needed: nothing is held or posted
PIN_CHANGE = "92"
MAX_AMOUNT = 10**12 - 1  # field 4 holds 12 digits


def validate(tx: Transaction) -> Decline | None:
    request = tx.request
    if not request.pan:
        return Decline(RC.FORMAT_ERROR, "validate.pan_missing")
    if request.processing_code is None or len(request.processing_code) != 6:
        return Decline(RC.FORMAT_ERROR, "validate.processing_code")
    if not request.stan:
        return Decline(RC.FORMAT_ERROR, "validate.stan_missing")
    if request.transaction_type not in SUPPORTED_TYPES:
        return Decline(RC.INVALID_TRANSACTION, "validate.transaction_type")
    if request.transaction_type == PIN_CHANGE and request.new_pin_block is None:
        return Decline(RC.FORMAT_ERROR, "validate.new_pin_missing")
    inquiry = request.transaction_type in MONEYLESS_TYPES
    amount = request.amount_minor
    if amount is None:
        if not inquiry:
            return Decline(RC.FORMAT_ERROR, "validate.amount_missing")
    elif (
        amount > MAX_AMOUNT
        or amount < 0
        or (amount == 0 and not inquiry and not request.is_account_verification)
    ):
        return Decline(RC.INVALID_AMOUNT, "validate.amount")
    if amount is not None and request.currency is None:  # a missing field, not a wrong one
        return Decline(RC.FORMAT_ERROR, "validate.currency_missing")
    if amount is not None and not is_known(request.currency):
        return Decline(RC.INVALID_TRANSACTION, "validate.currency")
    billing = request.billing_amount_minor
    if billing is not None:  # the network's conversion into the cardholder's currency
        if amount is None or billing > MAX_AMOUNT or billing < 0 or (billing == 0) != (amount == 0):
            return Decline(RC.INVALID_AMOUNT, "validate.billing_amount")
        if not is_known(request.billing_currency):
            return Decline(RC.INVALID_TRANSACTION, "validate.billing_currency")
    if not request.pan.isdigit() or not 12 <= len(request.pan) <= 19:
        return Decline(RC.INVALID_CARD_NUMBER, "validate.pan_format")
    if not is_luhn_valid(request.pan):
        return Decline(RC.INVALID_CARD_NUMBER, "validate.luhn")
    expiry = request.expiry
    if expiry is not None and not (
        len(expiry) == 4 and expiry.isdigit() and 1 <= int(expiry[2:]) <= 12
    ):
        return Decline(RC.FORMAT_ERROR, "validate.expiry_format")
    return None
