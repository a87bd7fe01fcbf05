"""Step 4: PIN verification through the security module, with the card's try counter.

The PIN block is translated and checked inside the security module against the card's PVV or
IBM 3624 offset; the clear PIN never leaves it. Wrong PINs count up to the limit (75), a good
PIN resets the counter. The counting is the store's, in the commit's write: wrong PINs sent
together each count, and a right one among them is refused (75) once they reached the limit.

A PIN change (processing code 92, Mastercard's) checks the PIN in field 52 as any request
does, then makes the new PIN's reference from field 125 (encrypted under the same key) for the
commit to store; the clear PIN never leaves the security module here either.

A PIN unblock (processing code 91, Mastercard's) is how a cardholder who locked the PIN
unlocks it at an ATM with the right one: it is checked even though the card is locked. Its
wrong tries count on, and UNBLOCK_TRIES past the limit only the bank can unlock the PIN
(``authhost pin unlock``), so the unblock cannot be used to go on guessing.
"""

from __future__ import annotations

from authhost.auth.decision import Decline
from authhost.auth.steps.validate import PIN_CHANGE
from authhost.auth.transaction import Transaction
from authhost.iso.codes import ResponseCode as RC
from authhost.iso.messages import Channel
from authhost.security.errors import KeyNotFound, SecurityError
from authhost.security.module import PinCheck

PIN_UNBLOCK = "91"  # processing code type of a PIN unblock
UNBLOCK_TRIES = 2  # wrong PINs an unblock may add to a locked card's count


class PinVerification:
    def __init__(self, security, try_limit: int = 3) -> None:  # SecurityModule
        self._security = security
        self._try_limit = try_limit

    def __call__(self, tx: Transaction) -> Decline | None:
        request, card, product = tx.request, tx.snapshot.card, tx.snapshot.product
        assert card is not None and product is not None and request.pan is not None
        unblock = request.transaction_type == PIN_UNBLOCK
        change = request.transaction_type == PIN_CHANGE
        cash = request.channel is Channel.ATM and request.transaction_type == "01"
        required = unblock or change or cash
        if request.pin_block is None:
            return Decline(RC.INCORRECT_PIN, "pin.missing") if required else None
        tx.pin_checked = True
        limit = self._try_limit + UNBLOCK_TRIES if unblock else self._try_limit
        if card.pin_tries >= limit:
            return Decline(
                RC.PIN_TRIES_EXCEEDED, "pin.unblock_exhausted" if unblock else "pin.locked"
            )
        if card.pin_reference is None:
            return Decline(RC.INCORRECT_PIN, "pin.not_set")
        source = self._security.pin_source(request.security_control, request.acquirer_id)
        check = self._security.verify_pin(
            request.pin_block,
            request.pan,
            source,
            card.pin_method,
            product.pvk_name,
            product.pvki,
            card.pin_reference,
        )
        if check is PinCheck.OK:
            # the commit resets the counter, or refuses this PIN if wrong ones sent with it
            # reached the limit first (store: Commit.pin_limit)
            tx.pin_limit = limit
            if card.pin_tries and unblock:
                tx.reasons.append("pin.unblocked")
            if change and request.new_pin_block is not None:
                try:
                    tx.new_pin_reference = self._security.pin_reference(
                        request.new_pin_block, request.pan, source, card.pin_method,
                        product.pvk_name, product.pvki,
                    )  # fmt: skip
                except KeyNotFound:
                    raise  # the issuer's configuration, not the cardholder's PIN: 96
                except SecurityError:  # not a PIN block, or a PIN the method cannot take
                    return Decline(RC.INVALID_TRANSACTION, "pin.new_pin_refused")
                tx.reasons.append("pin.changed")
            return None
        if check is PinCheck.WRONG:
            tx.pin_failed = True  # the commit counts it, in the write (Commit.pin_wrong)
            tries = card.pin_tries + 1
            if tries >= limit:
                return Decline(RC.PIN_TRIES_EXCEEDED, "pin.tries_exhausted")
            return Decline(RC.INCORRECT_PIN, "pin.wrong")
        return Decline(RC.INCORRECT_PIN, "pin.bad_block")
