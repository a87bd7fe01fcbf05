"""Step 2: does the card exist, may it be used, and is it within its validity?"""

from __future__ import annotations

import time

from authhost.auth.decision import Decline
from authhost.auth.transaction import Transaction
from authhost.cards.model import CardState
from authhost.cards.track2 import Track2Error, read_track
from authhost.iso.codes import ResponseCode as RC

STATE_DECLINES: dict[CardState, Decline] = {
    CardState.CREATED: Decline(RC.CARD_NOT_ACTIVE, "card.not_issued"),
    CardState.ISSUED: Decline(RC.CARD_NOT_ACTIVE, "card.not_activated"),
    CardState.SUSPENDED: Decline(RC.RESTRICTED_CARD, "card.suspended"),
    CardState.LOST: Decline(RC.LOST_CARD, "card.lost"),
    CardState.STOLEN: Decline(RC.STOLEN_CARD, "card.stolen"),
    CardState.DAMAGED: Decline(RC.RESTRICTED_CARD, "card.damaged"),
    CardState.CLOSED: Decline(RC.RESTRICTED_CARD, "card.closed"),
    CardState.REPLACED: Decline(RC.RESTRICTED_CARD, "card.replaced"),
    CardState.EXPIRED: Decline(RC.EXPIRED_CARD, "card.expired"),
}

# states in which a refund (processing code 20) is still credited: the card may not spend, but
# the account lives on and the merchant's money belongs to the cardholder (declining it would
# leave the victim of a stolen card without the refund); a closed card's account may be gone
# and a card never activated was never used
REFUNDABLE_STATES: dict[CardState, str] = {
    CardState.SUSPENDED: "card.refund_when_suspended",
    CardState.LOST: "card.refund_when_lost",
    CardState.STOLEN: "card.refund_when_stolen",
    CardState.DAMAGED: "card.refund_when_damaged",
    CardState.REPLACED: "card.refund_when_replaced",
    CardState.EXPIRED: "card.refund_when_expired",
}
REFUND = "20"


def is_past_expiry(expiry: str, now: float) -> bool:
    """A card is valid through the last day of its expiry month (YYMM)."""
    tm = time.gmtime(now)
    year, month = 2000 + int(expiry[:2]), int(expiry[2:])
    return (tm.tm_year, tm.tm_mon) > (year, month)


def card_status(tx: Transaction) -> Decline | None:
    card, product, account = tx.snapshot.card, tx.snapshot.product, tx.snapshot.account
    if card is None or product is None or account is None:
        return Decline(RC.INVALID_CARD_NUMBER, "card.unknown")
    request = tx.request
    refund = request.transaction_type == REFUND
    decline = STATE_DECLINES.get(card.state)
    if decline is not None:
        if not (refund and card.state in REFUNDABLE_STATES):
            return decline
        tx.reasons.append(REFUNDABLE_STATES[card.state])
    if is_past_expiry(card.expiry, tx.now):
        if not refund:
            return Decline(RC.EXPIRED_CARD, "card.past_expiry")
        tx.reasons.append("card.refund_past_expiry")
    if request.track2 or request.track1:
        # the stripe or chip read: it must be this card's, whatever field 14 says (a renewed
        # card's old plastic keeps its PAN, and its CVV checks against its own track)
        try:
            track = read_track(request.track2, request.track1)
        except Track2Error:
            return Decline(RC.FORMAT_ERROR, "card.track2_format")
        assert track is not None
        read = track.expiry
        if read != card.expiry and not _refund_to_renewed(refund, read, card.previous_expiry):
            return Decline(RC.EXPIRED_CARD, "card.expiry_mismatch")
    presented = request.expiry
    if presented is not None and presented != card.expiry:
        # a merchant charging the card it keeps on file, with the expiry of the card this one
        # renewed (same PAN): the networks expect the issuer to honour it, as the cardholder's
        # subscription or instalment would otherwise fail on the day the new plastic arrives;
        # and a refund of a purchase made with that card; and a wallet payment, which the
        # network de-tokenises with the expiry its token vault keeps for the PAN (the old one:
        # authhost tells the token service of a new PAN, not of a renewal's new expiry), so
        # the cardholder's phone stopped paying (54) when the new plastic was activated. The
        # token itself must still be one of the card's, active (card_verification)
        renewed = bool(card.previous_expiry) and presented == card.previous_expiry
        tokenised = request.payment_token is not None
        if not (renewed and (request.merchant_initiated or refund or tokenised)):
            return Decline(RC.EXPIRED_CARD, "card.expiry_mismatch")
        tx.reasons.append("card.previous_expiry")
    tx.limits = product.limits.overridden_by(card.limits)
    return None


def _refund_to_renewed(refund: bool, expiry: str, previous_expiry: str | None) -> bool:
    """A refund of a purchase made with the card this one renewed (same PAN) carries the old
    expiry, on the old plastic's track or in field 14: it is still the cardholder's money."""
    return refund and bool(previous_expiry) and expiry == previous_expiry
