"""Step 7: open-to-buy, and what money movement the commit will make.

The store re-checks the same condition atomically in the commit, so two concurrent requests
can never both spend the last funds; this step only declines early what is already short.
"""

from __future__ import annotations

from authhost.auth.decision import Decline
from authhost.auth.hold_life import HoldLives
from authhost.auth.keys import looked_up_original, names_original
from authhost.auth.steps.validate import MONEYLESS_TYPES
from authhost.auth.transaction import Transaction
from authhost.iso.codes import ResponseCode as RC
from authhost.iso.messages import CREDIT_TYPES, MessageClass
from authhost.store.interface import MoneyMove, Movement

HOLDING_CLASSES = frozenset({MessageClass.AUTHORISATION, MessageClass.AUTHORISATION_ADVICE})
ADVICE_CLASSES = frozenset({MessageClass.AUTHORISATION_ADVICE, MessageClass.FINANCIAL_ADVICE})
DECLINED_BY_NETWORK = "advice.declined_by_network"  # an advice of a decline: nothing approved


class Funds:
    def __init__(
        self,
        post_processing_codes: frozenset[str] = frozenset(),
        hold_lives: HoldLives | None = None,
    ) -> None:
        self._post_codes = post_processing_codes
        self._hold_lives = hold_lives

    def movement_kind(self, tx: Transaction) -> MoneyMove | None:
        request = tx.request
        kind = request.transaction_type
        if kind in MONEYLESS_TYPES or request.amount_minor == 0:  # + account verification
            return None
        if kind in CREDIT_TYPES:
            return MoneyMove.CREDIT
        holds = request.message_class in HOLDING_CLASSES and kind not in self._post_codes
        return MoneyMove.HOLD if holds else MoneyMove.POST

    def __call__(self, tx: Transaction) -> Decline | None:
        request, account = tx.request, tx.snapshot.account
        assert account is not None
        amount = request.cardholder_amount_minor or 0
        if amount and request.cardholder_currency != account.currency:
            return Decline(RC.INVALID_TRANSACTION, "funds.currency_mismatch")
        kind = self.movement_kind(tx)
        if kind is None:
            return None
        advice = request.message_class in ADVICE_CLASSES
        debit = kind in (MoneyMove.HOLD, MoneyMove.POST)
        if debit and not advice and amount > account.open_to_buy:
            if not _can_approve_part(tx, account.open_to_buy):
                return Decline(RC.INSUFFICIENT_FUNDS, "funds.insufficient")
            amount = tx.partial_amount_minor = account.open_to_buy  # the rest: another tender
            tx.reasons.append("funds.partial")
        holds = kind is MoneyMove.HOLD
        lives = self._hold_lives
        tx.movement = Movement(
            account_id=account.account_id,
            kind=kind,
            amount_minor=amount,
            require_funds=debit and not advice,
            extends=_extended_hold(tx) if holds and not advice else "",
            extra_life_s=lives.extra_seconds(request.mcc) if holds and lives else 0.0,
        )
        return None


def _can_approve_part(tx: Transaction, open_to_buy: int) -> bool:
    """A purchase the funds do not cover may be approved for what they do (response 10) when
    the terminal says it can take a partial approval (field 48 subelement 61) and collect the
    rest another way: a prepaid or debit card at a till. Not for cash, refunds or inquiries,
    and not for an amount the network converted (its field 4 would have to be converted back)."""
    request = tx.request
    return (
        request.partial_approval_supported
        and open_to_buy > 0
        and request.transaction_type == "00"
        and request.billing_amount_minor is None
    )


def _extended_hold(tx: Transaction) -> str:
    """An 0100 whose field 90 names a pre-authorisation (a hotel extending a stay, a car hire
    kept longer) is an incremental authorisation: its amount is added to that hold, so the
    completion, a reversal or the expiry of the pre-authorisation releases it too. The match
    key of the hold to extend (the root of a chain of increments), or "" when the request
    names none, or one that is posted, released, or on another account: then it is held on
    its own, as any authorisation."""
    if tx.request.original_data is None or not looked_up_original(tx.request):
        return ""
    original = tx.snapshot.original
    account = tx.snapshot.account
    if (
        original is None
        or original.posted
        or original.amount_minor <= 0
        or account is None
        or original.account_id != account.account_id
    ):
        tx.reasons.append("incremental.original_not_open")
        return ""
    tx.reasons.append("incremental")
    return original.parent or original.match_key


def post_advice(tx: Transaction, hold_lives: HoldLives | None = None) -> Decline | None:
    """Advices (0120/0220) report a stand-in approval already given by the network: post it
    whatever the card's state now, without a funds check; never decline. A 0220 whose field 90
    names a pre-authorisation (0100) that holds funds on the account is its completion (so is
    one repeating the pre-authorisation's own identifiers); an advice repeating the identifiers
    of a request the host approved and held or posted moves nothing again."""
    account = tx.snapshot.account
    request = tx.request
    amount = request.cardholder_amount_minor
    if account is None or not amount or request.transaction_type == "31":
        return None
    if request.reported_response_code not in (None, "00"):
        tx.reasons.append(DECLINED_BY_NETWORK)  # nothing was approved: nothing moves
        return None
    if request.cardholder_currency != account.currency:
        # an amount in another currency, without the network's conversion (fields 6 and 51):
        # acknowledged and journalled for the back office, never posted as if it were ours
        tx.reasons.append("advice.currency_mismatch")
        return None
    kind = (
        MoneyMove.CREDIT
        if request.transaction_type in CREDIT_TYPES
        else (
            MoneyMove.HOLD
            if request.message_class is MessageClass.AUTHORISATION_ADVICE
            else MoneyMove.POST
        )
    )
    completes = ""
    original = tx.snapshot.original
    if original is not None and original.account_id != account.account_id:
        original = None
    if (
        original is not None
        and kind is not MoneyMove.CREDIT
        and not names_original(request)
        and (kind is MoneyMove.HOLD or original.posted)
    ):
        # the network's stand-in advice of a request the host approved itself (its answer came
        # too late, say): the same identifiers, the money already moved. Nothing moves again
        tx.reasons.append("advice.already_approved")  # models.context.ALREADY_APPROVED
        return None
    if kind is MoneyMove.POST and original is not None and not original.posted:
        # a completion (hotel, car hire, fuel): the final amount is posted and what the
        # pre-authorisation still holds is released in the same write, so the cardholder's
        # funds are not counted twice until the hold expires
        completes = original.parent or original.match_key  # an increment's: its chain's
        if original.amount_minor <= 0:
            tx.reasons.append("advice.completion_nothing_held")
        elif request.more_completions_follow:  # one part of a split shipment: more to come
            tx.reasons.append("advice.completion_partial")
        else:
            tx.reasons.append("advice.completion")
    tx.movement = Movement(
        account.account_id,
        kind,
        amount,
        require_funds=False,
        completes=completes,
        completes_in_part=bool(completes) and request.more_completions_follow,
        extra_life_s=hold_lives.extra_seconds(request.mcc)
        if hold_lives is not None and kind is MoneyMove.HOLD
        else 0.0,
    )
    return None
