"""Step 3: CVV from the stripe, iCVV from the chip's track-2 equivalent, CVV2 for card-not-present.

Values are recomputed from the product's CVK pair by the security module and compared; no
verification value is ever stored.
"""

from __future__ import annotations

from authhost.auth.decision import Decline
from authhost.auth.transaction import Transaction
from authhost.cards.track2 import Track2Error, parse_track2
from authhost.iso.codes import ResponseCode as RC

CHIP_ENTRY_MODES = frozenset({"05", "07"})  # chip read, contactless chip: iCVV
CVV2_SERVICE_CODE = "000"
ICVV_SERVICE_CODE = "999"


class CardVerification:
    def __init__(self, security) -> None:  # SecurityModule
        self._security = security

    def __call__(self, tx: Transaction) -> Decline | None:
        request, card, product = tx.request, tx.snapshot.card, tx.snapshot.product
        assert card is not None and product is not None and request.pan is not None
        if request.track2:
            try:
                track = parse_track2(request.track2)
            except Track2Error:
                return Decline(RC.FORMAT_ERROR, "cvv.track2_format")
            if track.pan != request.pan:
                return Decline(RC.INVALID_CARD_NUMBER, "cvv.track2_pan_mismatch")
            chip = (request.pos_entry_mode or "")[:2] in CHIP_ENTRY_MODES
            service_code = ICVV_SERVICE_CODE if chip else track.service_code
            if not self._security.verify_card_value(
                request.pan, track.expiry, service_code, track.verification_value, product.cvk_name
            ):
                tx.cvv_failed = True
                return Decline(RC.CVV_FAILED, "cvv.icvv_failed" if chip else "cvv.cvv_failed")
        elif request.cvv2 is not None and not request.is_card_present:
            valid = self._security.verify_card_value(
                request.pan, card.expiry, CVV2_SERVICE_CODE, request.cvv2, product.cvk_name
            )
            if not valid:
                tx.cvv_failed = True
                return Decline(RC.CVV2_FAILED, "cvv.cvv2_failed")
        return None
