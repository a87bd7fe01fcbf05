"""Step 3: the payment token a wallet paid with (field 48 SE 33) is one of the card's and
active; CVV from the stripe, iCVV from the chip's track-2 equivalent, CVV2 for card-not-present,
the 3-D Secure authentication value (CAVV, field 48 SE 43) when the product has a CAVV key, the
billing address a merchant asks to verify (AVS: its result only, never a decline) and the
chip's ARQC (field 55) when the product has an issuer master key for it.

Values are recomputed from the product's keys by the security module and compared; no
verification value is ever stored.
"""

from __future__ import annotations

from authhost.auth.decision import Decline
from authhost.auth.steps.card_status import is_past_expiry
from authhost.auth.transaction import Transaction
from authhost.cards.avs import verify_address
from authhost.cards.tokens import TokenState, find_token
from authhost.cards.track2 import Track2Error, read_track
from authhost.iso.codes import ResponseCode as RC
from authhost.iso.messages import CREDIT_TYPES, AuthRequest
from authhost.iso.subfields import (
    CVV2_MATCH,
    CVV2_NO_MATCH,
    CVV2_NOT_PROCESSED,
    CVV2_SHOULD_BE_PRESENT,
)
from authhost.security.cavv import FAILED_RESULTS
from authhost.security.emv import (
    AMOUNT,
    ARQC,
    CURRENCY,
    DATE,
    PSN,
    ChipDataError,
    Cryptogram,
    days_from,
    pan_sequence_number,
    parse_tlv,
)

CHIP_ENTRY_MODES = frozenset({"05", "07"})  # chip read, contactless chip: iCVV
# a cryptogram dated further from today than this is another day's, replayed (terminals and
# hosts in other time zones are within a day of each other)
CHIP_DATE_TOLERANCE_DAYS = 1
CVV2_SERVICE_CODE = "000"
ICVV_SERVICE_CODE = "999"


class CardVerification:
    def __init__(self, security) -> None:  # SecurityModule
        self._security = security

    def __call__(self, tx: Transaction) -> Decline | None:
        request, card, product = tx.request, tx.snapshot.card, tx.snapshot.product
        assert card is not None and product is not None and request.pan is not None
        if request.payment_token is not None:
            # the network paid the card with a token: one the issuer consented to, still live
            token = find_token(card.tokens, self._security.pan_index(request.payment_token.number))
            if token is None:
                return Decline(RC.RESTRICTED_CARD, "token.unknown")
            tx.token = token
            if token.state is not TokenState.ACTIVE:
                return Decline(RC.RESTRICTED_CARD, f"token.{token.state.value}")
            if token.expiry and is_past_expiry(token.expiry, tx.now):  # the wallet's own date
                return Decline(RC.EXPIRED_CARD, "token.expired")
        stripe = request.track2 or request.track1  # track 1 (field 45) only without 35
        if stripe:
            try:
                track = read_track(request.track2, request.track1)
            except Track2Error:
                return Decline(RC.FORMAT_ERROR, "cvv.track2_format")
            assert track is not None
            if track.pan != request.pan:
                return Decline(RC.INVALID_CARD_NUMBER, "cvv.track2_pan_mismatch")
            chip = (request.pos_entry_mode or "")[:2] in CHIP_ENTRY_MODES
            service_code = ICVV_SERVICE_CODE if chip else track.service_code
            if not self._security.verify_card_value(
                request.pan, track.expiry, service_code, track.verification_value, product.cvk_name
            ):
                tx.cvv_failed = True
                return Decline(RC.CVV_FAILED, "cvv.icvv_failed" if chip else "cvv.cvv_failed")
        if request.cvv2 is not None:
            # the stripe or chip, when read and checked, was the check; a key-entered or stored
            # card (field 22 01x, 10x) has only its CVV2, whatever the channel: Mastercard sends
            # a mail or telephone order without field 25 (its DE 61 says so), which reads as a
            # shop's. Field 55 alone vouches for nothing: anyone can add one. Not checked
            # either: a token's (SE 33: the merchant held the token, whose code is not the
            # card's) nor a refund's or credit's (money to the cardholder, never refused for a
            # CVV2, nor an answer telling a guesser which one is right)
            if (
                stripe
                or request.payment_token is not None
                or request.transaction_type in CREDIT_TYPES
                or _chip_is_checked(request.icc_data, product.imk_ac_name)
            ):
                tx.cvv2_result = CVV2_NOT_PROCESSED
            else:
                valid = self._security.verify_card_value(
                    request.pan, card.expiry, CVV2_SERVICE_CODE, request.cvv2, product.cvk_name
                )
                tx.cvv2_result = CVV2_MATCH if valid else CVV2_NO_MATCH
                if not valid:
                    tx.cvv_failed = True
                    return Decline(RC.CVV2_FAILED, "cvv.cvv2_failed")
        elif request.cvv2_withheld and not request.is_card_present:
            # every card authhost issues has a CVV2: a merchant without it may not hold the
            # card (a rule decides what to do: ``cvv2_result == 'S'``)
            tx.cvv2_result = CVV2_SHOULD_BE_PRESENT
        if request.avs is not None:  # the merchant decides what to do with it; rules may too
            avs = request.avs
            tx.avs_result = verify_address(
                self._security.address_ref, card, avs.postcode, avs.street
            ).value
        if request.authentication_value is not None and product.cavv_key_name:
            # the merchant says the cardholder was authenticated; the CAVV says whether the
            # issuer's access control server did. A forged or borrowed one is fraud: 05
            # an approval uses up the authentication of one that passed (tx.cavv_atn: the store)
            tx.cavv_result, tx.cavv_atn = self._security.check_cavv(
                request.pan, request.authentication_value, product.cavv_key_name
            )
            if tx.cavv_result in FAILED_RESULTS:
                return Decline(RC.DO_NOT_HONOUR, "3ds.cavv_failed")
        if request.icc_data is not None and product.imk_ac_name:
            return self._cryptogram(tx, request.icc_data, product.imk_ac_name, product.chip_cvn)
        return None

    def _cryptogram(
        self, tx: Transaction, icc: bytes, imk_ac_name: str, cvn: int
    ) -> Decline | None:
        """The chip's ARQC: a copy of the card cannot make one. 82 (Visa: negative CAM)
        when it is wrong; 30 when field 55 cannot be checked."""
        request = tx.request
        try:
            found = checked_cryptogram(self._security, request, icc, imk_ac_name, cvn)
        except ChipDataError:
            return Decline(RC.FORMAT_ERROR, "chip.data")
        if found is None:
            return None  # chip data without a cryptogram (some contactless profiles)
        cryptogram, tags = found
        if not cryptogram.valid:
            tx.cvv_failed = True
            return Decline(RC.CVV_FAILED, "chip.arqc_failed")
        # a genuine cryptogram of another transaction (a smaller amount, another currency,
        # another day) must not vouch for this one
        if tags[AMOUNT].hex() != f"{request.amount_minor or 0:012d}" or tags[CURRENCY].hex() != (
            request.currency or ""
        ).zfill(4):
            tx.cvv_failed = True
            return Decline(RC.CVV_FAILED, "chip.amount_mismatch")
        days = days_from(tags[DATE], tx.now)
        if days is None or days > CHIP_DATE_TOLERANCE_DAYS:
            tx.cvv_failed = True
            return Decline(RC.CVV_FAILED, "chip.date")
        tx.cryptogram = cryptogram
        return None


def _chip_is_checked(icc: bytes | None, imk_ac_name: str | None) -> bool:
    """Whether field 55 carries a cryptogram this step checks (``_cryptogram``): chip data
    without an ARQC, or unreadable, or for a product whose cryptograms are not checked, proves
    nothing (anyone can add it), and a CVV2 beside it is the only check. Parsed only for a
    request with both a CVV2 and chip data (rare); ``_cryptogram`` answers unreadable data 30
    afterwards."""
    if icc is None or not imk_ac_name:
        return False
    try:
        return ARQC in parse_tlv(icc)
    except ChipDataError:
        return False


def checked_cryptogram(
    security, request: AuthRequest, icc: bytes, imk_ac_name: str, cvn: int
) -> tuple[Cryptogram, dict[str, bytes]] | None:
    """Field 55's ARQC checked under the product's IMK-AC, with the parsed tags; None when
    the chip data carries no cryptogram. Raises ``ChipDataError`` on unusable data."""
    assert request.pan is not None
    tags = parse_tlv(icc)
    if ARQC not in tags:
        return None
    psn = pan_sequence_number(tags.get(PSN), request.card_sequence)
    return security.check_arqc(request.pan, psn, tags, imk_ac_name, cvn), tags
