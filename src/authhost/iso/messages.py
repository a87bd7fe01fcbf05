"""Typed views of ISO 8583 messages: what the decision core sees instead of a field dict.

A request is filled from a decoded pyiso8583 dict in one place (``iso.views``); the core
never looks at field numbers. ``fields`` keeps the decoded dict so that the response can echo
what the standard expects; it is not for the core to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


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
class AuthRequest:
    """A financial request (auth, financial, advice, reversal) as the decision core sees it.

    Amounts are integers in minor units of ``currency`` (ISO 4217 numeric). Absent fields are
    None. ``pan`` comes from field 2, or from track 2 when field 2 is absent.
    """

    mti: str
    message_class: MessageClass
    pan: str | None = None  # 2 (or track 2)
    processing_code: str | None = None  # 3, six digits: tx type(2), from acct(2), to acct(2)
    amount_minor: int | None = None  # 4
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
    rrn: str | None = None  # 37
    terminal_id: str | None = None  # 41
    merchant_id: str | None = None  # 42
    merchant_name_location: str | None = None  # 43
    cvv2: str | None = None  # 48 subelement 92 (Mastercard DE 48 SE 92 layout: TTLLvalue)
    currency: str | None = None  # 49
    pin_block: bytes | None = None  # 52, 8 bytes (16 for ISO format 4)
    security_control: str | None = None  # 53 (DUKPT KSN, hex, when the terminal uses DUKPT)
    icc_data: bytes | None = None  # 55
    original_data: str | None = None  # 90: orig MTI(4) STAN(6) tx time(10) acq(11) fwd(11)
    replacement_amounts: str | None = None  # 95: actual amount (12) first, for partial reversal
    # What an advice or reversal reports was already decided (e.g. by stand-in): 39 and 38.
    reported_response_code: str | None = None  # 39 in an 0120/0220/0400/0420
    reported_approval_code: str | None = None  # 38 in an 0120/0220/0400/0420
    fields: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

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
    def transaction_type(self) -> str:
        """First two digits of the processing code: 00 purchase, 01 cash, 20 refund, 31 inquiry."""
        return (self.processing_code or "000000")[:2]

    @property
    def is_card_present(self) -> bool:
        return self.channel not in (Channel.ECOMMERCE, Channel.MOTO)

    @property
    def channel(self) -> Channel:
        """Channel from field 22 (entry mode), 25 (condition), 18 (MCC) and 3 (processing)."""
        entry = (self.pos_entry_mode or "")[:2]
        if self.mcc == "6011" or (self.transaction_type == "01" and self.mcc in (None, "6011")):
            return Channel.ATM
        if entry in ("07", "91"):
            return Channel.CONTACTLESS
        if entry == "81" or self.pos_condition_code == "59":
            return Channel.ECOMMERCE
        if self.pos_condition_code == "08":
            return Channel.MOTO
        return Channel.POS

    @property
    def dedupe_key(self) -> str:
        """Identity of a transmission: retransmissions share it (STAN, RRN, terminal, time)."""
        return "|".join(
            (
                self.mti[:3],  # 0200 and its repeat 0201 are the same transmission
                self.stan or "",
                self.rrn or "",
                self.terminal_id or "",
                self.transmission_time or "",
            )
        )


@dataclass(frozen=True, slots=True)
class NetworkRequest:
    """An 0800 network management request: sign-on 001, sign-off 002, echo 301, key change 161."""

    mti: str
    code: str | None  # field 70
    stan: str | None
    transmission_time: str | None
    fields: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Balance:
    """One additional amount (field 54): account type, amount type, currency, signed amount."""

    account_type: str  # "00" default, "10" savings, "20" cheque, "30" credit
    amount_type: str  # "01" ledger balance, "02" available balance
    currency: str  # ISO 4217 numeric
    amount_minor: int  # negative = debit balance
