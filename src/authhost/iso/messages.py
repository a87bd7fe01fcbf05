"""Typed views of ISO 8583 messages: what the decision core sees instead of a field dict.

A request is filled from a decoded pyiso8583 dict in one place (``iso.views``); the core
never looks at field numbers. ``fields`` keeps the decoded dict so that the response can echo
what the standard expects; it is not for the core to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# money to the card, not spent with it: a refund (20), a cash deposit (21), a Visa original
# credit (26), a Mastercard payment transaction (28). No spending limit applies to them and
# they are no velocity events: a refund or a transfer received must not use up the
# cardholder's daily limits, nor look like spending to a model
CREDIT_TYPES = frozenset({"20", "21", "26", "28"})


class MessageClass(StrEnum):
    """What a request asks for, from its MTI (positions 2-3)."""

    AUTHORISATION = "authorisation"  # x1xx request (0100)
    FINANCIAL = "financial"  # x2xx request (0200)
    AUTHORISATION_ADVICE = "authorisation_advice"  # 0120/0121
    FINANCIAL_ADVICE = "financial_advice"  # 0220/0221
    REVERSAL = "reversal"  # 0400/0401
    REVERSAL_ADVICE = "reversal_advice"  # 0420/0421
    NETWORK_MANAGEMENT = "network_management"  # 0800
    UNKNOWN = "unknown"


class Channel(StrEnum):
    """Where the card was used, derived from entry mode, condition code, MCC, processing code."""

    POS = "pos"
    ATM = "atm"
    ECOMMERCE = "ecommerce"
    CONTACTLESS = "contactless"
    MOTO = "moto"


@dataclass(frozen=True, slots=True)
class TokenData:
    """The payment token a de-tokenised payment was made with (field 48 SE 33): a number the
    wallet holds in place of the PAN, never shown whole."""

    number: str = field(repr=False)
    expiry: str = ""  # YYMM
    requestor_id: str = ""  # 11 digits: the wallet or merchant that holds it
    kind: str = ""  # the account number indicator (C secure element, H cloud, E card on file)


@dataclass(frozen=True, slots=True)
class AvsData:
    """The billing address a card-not-present merchant asks the issuer to verify (field 48
    subelement 82 "52", the address in field 120): personal data, never logged or stored."""

    postcode: str = field(default="", repr=False)
    street: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A financial request (auth, financial, advice, reversal) as the decision core sees it.

    Amounts are integers in minor units of ``currency`` (ISO 4217 numeric). Absent fields are
    None. ``pan`` comes from field 2, or from track 2 (else track 1) when field 2 is absent.
    """

    mti: str
    message_class: MessageClass
    pan: str | None = None  # 2 (or track 2)
    processing_code: str | None = None  # 3, six digits: tx type(2), from acct(2), to acct(2)
    amount_minor: int | None = None  # 4, in ``currency``: what the merchant charged
    transmission_time: str | None = None  # 7, MMDDhhmmss
    stan: str | None = None  # 11
    local_time: str | None = None  # 12, hhmmss
    local_date: str | None = None  # 13, MMDD
    expiry: str | None = None  # 14, YYMM
    mcc: str | None = None  # 18
    country: str | None = None  # 19, acquiring institution country (ISO 3166 numeric)
    pos_entry_mode: str | None = None  # 22
    card_sequence: str | None = None  # 23
    pos_condition_code: str | None = None  # 25
    acquirer_id: str | None = None  # 32
    forwarding_id: str | None = None  # 33
    track2: str | None = None  # 35 (or chip track-2 equivalent data)
    # 45, read only without field 35: its CVV is the stripe's, as track 2's (never logged)
    track1: str | None = None
    rrn: str | None = None  # 37
    terminal_id: str | None = None  # 41
    merchant_id: str | None = None  # 42
    merchant_name_location: str | None = None  # 43
    cvv2: str | None = None  # 48 subelement 92 (Mastercard DE 48 SE 92 layout: TTLLvalue)
    # Visa's 126.10 presence indicator 2 or 9: the merchant says the card's CVV2 is illegible
    # or not on the card, which every card authhost issues has (answered S in 44.10)
    cvv2_withheld: bool = False
    # 48 subelement 61, first position "1": the terminal can take a partial approval (10)
    partial_approval_supported: bool = False
    # 48 subelement 62 of a completion (0220): (its number, how many completions the merchant
    # sends) when the pre-authorisation is completed in parts; None: one completion, the last
    completion_sequence: tuple[int, int] | None = None
    # 48 subelement 42 (e-commerce indicators): how the cardholder was authenticated,
    # "authenticated", "attempted", "exempt", "none"; "" when the message does not say
    authentication: str = ""
    # 48 subelement 43 (UCAF): the 3-D Secure authentication value (CAVV, base64) that proves
    # the claim of subelement 42; checked when the card's product has a CAVV key
    authentication_value: str | None = None
    # 48 subelement 22 subfield 05: the stored credential indicator, "C101".."C104" (the
    # cardholder uses a card kept on file), "M101".."M208" (the merchant charges it without the
    # cardholder: a subscription, an instalment, a no-show); "" when the message does not say
    stored_credential: str = ""
    # 48 subelement 33: the token the network de-tokenised (field 2 is then the card's PAN)
    payment_token: TokenData | None = None
    # 48 subelement 82 "52" with field 120: the billing address to verify (cards.avs)
    avs: AvsData | None = None
    currency: str | None = None  # 49
    # 6 and 51: the amount in the cardholder's billing currency, when the network converted it
    # (a card used abroad); the issuer moves and limits this amount, not field 4's
    billing_amount_minor: int | None = None  # 6
    billing_currency: str | None = None  # 51
    pin_block: bytes | None = None  # 52, 8 bytes (16 for ISO format 4)
    security_control: str | None = None  # 53 (DUKPT KSN, hex, when the terminal uses DUKPT)
    # 125 in a PIN change (processing code 92): the new PIN, encrypted like field 52's
    new_pin_block: bytes | None = None
    icc_data: bytes | None = None  # 55
    original_data: str | None = None  # 90: orig MTI(4) STAN(6) tx time(10) acq(11) fwd(11)
    replacement_amounts: str | None = None  # 95: actual amount (12) first, for partial reversal
    # What an advice or reversal reports was already decided (e.g. by stand-in): 39 and 38.
    reported_response_code: str | None = None  # 39 in an 0120/0220/0400/0420
    reported_approval_code: str | None = None  # 38 in an 0120/0220/0400/0420
    # a clearing file's presentment the host posts itself (admin.clearing), never a switch's
    # message: journalled as such (advice.presentment), so that a later presentment under the
    # same approval code is not taken for one the network approved and posted already
    presentment: bool = False
    fields: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)
    # Derived from the fields above once, when the request is built: the pipeline reads them
    # several times per request. Not constructor arguments; ``dataclasses.replace`` recomputes.
    transaction_type: str = field(init=False, repr=False, compare=False)  # 00, 01, 20, 31...
    channel: Channel = field(init=False, repr=False, compare=False)
    dedupe_key: str = field(init=False, repr=False, compare=False)  # STAN, RRN, terminal, time
    # what the cardholder's account sees: fields 6/51 when present, else 4/49
    cardholder_amount_minor: int | None = field(init=False, repr=False, compare=False)
    cardholder_currency: str | None = field(init=False, repr=False, compare=False)
    # field 43 without its padding: what the journal keeps and the rules read
    merchant_name: str = field(init=False, repr=False, compare=False)

    def __repr__(self) -> str:  # never print a PAN, track or PIN block
        from authhost.security.masking import mask_pan

        return (
            f"AuthRequest(mti={self.mti!r}, pan={mask_pan(self.pan)!r}, "
            f"processing_code={self.processing_code!r}, amount_minor={self.amount_minor!r}, "
            f"currency={self.currency!r}, stan={self.stan!r}, rrn={self.rrn!r}, "
            f"terminal_id={self.terminal_id!r})"
        )

    __str__ = __repr__

    @property
    def is_card_present(self) -> bool:
        return self.channel not in _CARD_NOT_PRESENT

    @property
    def merchant_initiated(self) -> bool:
        """The merchant charges a card it keeps on file, the cardholder absent (an MIT)."""
        return self.stored_credential[:1] == "M"

    @property
    def is_account_verification(self) -> bool:
        """A zero-amount 0100 purchase with POS condition 51 (request for account verification):
        a merchant checking a card (and its CVV2 or PIN) before keeping it on file. Nothing is
        held; the answer is 85, not 00."""
        return (
            self.amount_minor == 0
            and self.pos_condition_code == VERIFICATION_CONDITION
            and self.transaction_type == "00"
            and self.message_class is MessageClass.AUTHORISATION
        )

    @property
    def more_completions_follow(self) -> bool:
        """A completion that is not the last of its pre-authorisation (48 SE 62): it releases
        only what it posts, the rest stays held for the ones to come."""
        sequence = self.completion_sequence
        return sequence is not None and sequence[0] < sequence[1]

    def __post_init__(self) -> None:
        transaction_type, channel, dedupe_key = _derived(self)
        set_ = object.__setattr__  # the class is frozen
        set_(self, "transaction_type", transaction_type)
        set_(self, "channel", channel)
        set_(self, "dedupe_key", dedupe_key)
        billed = self.billing_amount_minor is not None
        set_(
            self,
            "cardholder_amount_minor",
            self.billing_amount_minor if billed else self.amount_minor,
        )
        set_(self, "cardholder_currency", self.billing_currency if billed else self.currency)
        set_(self, "merchant_name", (self.merchant_name_location or "").rstrip())


VERIFICATION_CONDITION = "51"  # field 25: request for account number verification

# A tuple, not a set: Enum.__hash__ is Python code, tuple membership tests identity first.
_CARD_NOT_PRESENT = (Channel.ECOMMERCE, Channel.MOTO)


def _derived(request: AuthRequest) -> tuple[str, Channel, str]:
    """``transaction_type``, ``channel`` and ``dedupe_key`` of a request's fields."""
    # First two digits of the processing code: 00 purchase, 01 cash, 20 refund, 31 inquiry.
    transaction_type = (request.processing_code or "000000")[:2]
    # Channel from field 22 (entry mode), 25 (condition), 18 (MCC) and 3 (processing code).
    entry = (request.pos_entry_mode or "")[:2]
    mcc = request.mcc
    condition = request.pos_condition_code
    if mcc == "6011" or (transaction_type == "01" and mcc is None):
        channel = Channel.ATM
    elif entry in ("07", "91"):
        channel = Channel.CONTACTLESS
    elif entry == "81" or condition == "59":
        channel = Channel.ECOMMERCE
    elif condition == "08":
        channel = Channel.MOTO
    else:
        channel = Channel.POS
    # Identity of a transmission: retransmissions share it (STAN, RRN, terminal, time).
    dedupe_key = "|".join(
        (
            request.mti[:3],  # 0200 and its repeat 0201 are the same transmission
            request.stan or "",
            request.rrn or "",
            request.terminal_id or "",
            request.transmission_time or "",
        )
    )
    return transaction_type, channel, dedupe_key


@dataclass(frozen=True, slots=True)
class NetworkRequest:
    """An 0800 network management request: sign-on 001, sign-off 002, cutover 201, echo 301,
    key change 161. Its typed values are checked (digits, a date) and may be logged."""

    mti: str
    code: str | None  # field 70
    stan: str | None
    transmission_time: str | None
    settlement_date: str | None = None  # field 15, MMDD: the business day a cutover starts
    fields: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Balance:
    """One additional amount (field 54): account type, amount type, currency, signed amount."""

    account_type: str  # "00" default, "10" savings, "20" cheque, "30" credit
    amount_type: str  # "01" ledger balance, "02" available balance
    currency: str  # ISO 4217 numeric
    amount_minor: int  # negative = debit balance
