"""Card products, accounts and cards: plain values, no I/O.

A card never holds its PAN in clear: ``pan_index`` is the keyed hash the store indexes by,
``bin`` and ``last4`` are what may be shown, and the encrypted PAN lives beside the card in
the store. Sensitive authentication data (PIN, CVV) is never a field here; ``pin_reference``
is the PVV or IBM 3624 offset, which is what an issuer keeps to verify a PIN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from authhost.cards.cardholder_pass import CardholderPass
from authhost.cards.tokens import PaymentToken
from authhost.cards.travel import TravelNotice


class CardKind(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"
    PREPAID = "prepaid"


class PinMethod(StrEnum):
    IBM3624 = "ibm3624"  # IBM 3624 PIN offset
    VISA_PVV = "visa_pvv"  # Visa PIN verification value


class CardState(StrEnum):
    CREATED = "created"  # produced, not yet shipped
    ISSUED = "issued"  # shipped to the cardholder, awaiting activation
    ACTIVE = "active"
    SUSPENDED = "suspended"  # temporary block by the cardholder or the bank
    LOST = "lost"  # final; pick-up code 41
    STOLEN = "stolen"  # final; pick-up code 43
    DAMAGED = "damaged"  # final; replaced with the same PAN and a new expiry
    EXPIRED = "expired"  # final
    CLOSED = "closed"  # cancelled; final
    REPLACED = "replaced"  # superseded by a renewal or replacement card; final


@dataclass(frozen=True, slots=True)
class CardControls:
    """What the cardholder (or the bank for them) switched off on one card, on top of its
    product's controls: channels (pos, atm, ecommerce, contactless, moto), merchant
    categories and acquirer countries. Declined 57, as the product's own blocks."""

    blocked_channels: frozenset[str] = frozenset()
    blocked_mccs: frozenset[str] = frozenset()
    blocked_countries: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StopPayment:
    """The cardholder told the bank to stop a merchant's recurring charges (a subscription
    cancelled that keeps charging): merchant-initiated requests from ``merchant_id`` (field
    42; ``ALL_MERCHANTS`` for every merchant) are declined R1 (R3) through ``until``."""

    merchant_id: str
    until: str = ""  # last UTC day in force, YYYY-MM-DD; "" until withdrawn


ALL_MERCHANTS = "*"


@dataclass(frozen=True, slots=True)
class Limits:
    """Spending limits in minor units of the account currency; None means no limit."""

    per_transaction: int | None = None
    daily_amount: int | None = None
    daily_count: int | None = None
    monthly_amount: int | None = None
    monthly_count: int | None = None
    atm_per_transaction: int | None = None
    atm_daily_amount: int | None = None
    atm_daily_count: int | None = None
    # the most a debit or prepaid account may hold after a transfer to the card (26, 28): a
    # prepaid programme's limit (e-money rules), or 0 for a card that takes no transfers
    max_balance: int | None = None

    def overridden_by(self, other: Limits | None) -> Limits:
        """These limits, with every non-None value of ``other`` (card overrides) winning."""
        if other is None:
            return self
        merged = {
            name: getattr(other, name) if getattr(other, name) is not None else getattr(self, name)
            for name in self.__slots__
        }
        return Limits(**merged)


@dataclass(frozen=True, slots=True)
class Product:
    """A card programme: BIN range, kind, validity, limits, channels and key names."""

    product_id: str
    issuer_id: str
    name: str
    bin: str  # 6 or 8 digits
    pan_length: int = 16
    kind: CardKind = CardKind.DEBIT
    currency: str = "978"  # ISO 4217 numeric
    home_country: str = "276"  # ISO 3166 numeric
    validity_months: int = 36
    service_code: str = "201"  # chip card, normal authorisation, no restrictions
    limits: Limits = field(default_factory=Limits)
    channels: frozenset[str] = frozenset({"pos", "atm", "ecommerce", "contactless", "moto"})
    blocked_mccs: frozenset[str] = frozenset()
    blocked_countries: frozenset[str] = frozenset()
    pin_method: PinMethod = PinMethod.VISA_PVV
    pvk_name: str = "pvk"  # key store names of the product's keys
    cvk_name: str = "cvk"
    pvki: str = "1"  # PVV key index (Visa PVV)
    # EMV chip: the issuer master key for application cryptograms ("" = ARQCs not checked) and
    # the cryptogram version of the product's chip application (Visa CVN 10 or 18, Mastercard 16)
    imk_ac_name: str = ""
    chip_cvn: int = 18
    # the issuer master key for secure messaging integrity ("" = no issuer scripts): the
    # answer to a chip card may carry commands for it (block, unblock, PIN unblock)
    imk_smi_name: str = ""
    # the issuer master key for secure messaging confidentiality ("" = the chip's offline PIN
    # is not changed with the host's): a PIN change's answer carries the new PIN for the chip
    imk_smc_name: str = ""
    # how far ahead of a card's newest chip counter a cryptogram's may be; None: the host's
    # [auth] atc_jump_limit. A programme whose cards make many offline transactions between
    # online ones (transit, vending) needs more room than one whose cards go online each time
    atc_jump_limit: int | None = None
    # the key store name of the CAVV key pair the issuer's 3-D Secure access control server
    # signs authentications with ("" = e-commerce authentication values are not checked: the
    # merchant's claim in field 48 SE 42 stands, as the network passed it)
    cavv_key_name: str = ""
    version: int = 0  # optimistic concurrency: a change is written only over the one it read


@dataclass(frozen=True, slots=True)
class Account:
    """Funds behind one or more cards.

    For debit and prepaid, ``balance`` is the money on the account (positive = funds), and on a
    debit account ``credit_limit`` is the arranged overdraft (how far below zero it may go; a
    prepaid account has none). For credit, ``balance`` is what is owed (positive = debt) and
    ``credit_limit`` bounds it. ``holds`` is the sum of open authorisation holds.
    """

    account_id: str
    currency: str
    kind: CardKind
    balance: int = 0
    credit_limit: int = 0
    holds: int = 0
    version: int = 0

    @property
    def open_to_buy(self) -> int:
        """What may still be spent: limit - balance - holds (credit), balance + overdraft -
        holds (debit and prepaid, whose overdraft is 0)."""
        if self.kind is CardKind.CREDIT:
            return self.credit_limit - self.balance - self.holds
        return self.balance + self.credit_limit - self.holds


def name_matches(card: Card, name: str) -> bool:
    """Whether the cardholder name holds ``name``, ASCII letters in either case (embossed
    names are ASCII capitals; SQLite's upper() folds ASCII only, so both stores agree)."""
    return not name or _ascii_upper(name) in _ascii_upper(card.cardholder_name)


def _ascii_upper(text: str) -> str:
    return text.translate(_ASCII_UPPER)


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class Card:
    """One plastic (or token): state, expiry, links and the PIN reference, never the PAN."""

    card_id: str
    pan_index: str  # keyed hash (HMAC-SHA-256) of the PAN, hex
    bin: str  # first 6 (or 8) digits, for display and BIN rules
    last4: str
    pan_length: int
    product_id: str
    account_id: str
    state: CardState
    expiry: str  # YYMM
    service_code: str
    cardholder_name: str = ""
    address_ref: str = ""  # delivery address reference for the card bureau
    sequence: str = "00"  # card sequence number (field 23): 00 first plastic, 01 next...
    pin_method: PinMethod = PinMethod.VISA_PVV
    pin_reference: str | None = None  # PVV (4 digits) or IBM 3624 offset; None = no PIN set
    pin_tries: int = 0  # consecutive wrong PIN tries
    # the last PIN change made at a terminal (processing code 92): its match key and the
    # reference it replaced, so that the terminal's reversal of it (the chip never got the new
    # PIN, the cardholder was told it failed) puts the old PIN back. "" / None: none to undo
    pin_change_key: str = ""
    previous_pin_reference: str | None = None
    limits: Limits | None = None  # card-level overrides of the product limits
    home_country: str = ""  # ISO 3166 numeric; empty = the product's
    created_at: float = 0.0  # epoch seconds
    activated_at: float | None = None
    closed_at: float | None = None  # when it was cancelled (the account updater reports it)
    replaces: str | None = None  # card_id of the card this one replaced or renewed
    replaced_by: str | None = None
    # a renewal under the same PAN: the expiry the card before it had (YYMM), which merchants
    # keeping the card on file still send until the networks' account updater reaches them
    previous_expiry: str = ""
    # where the cardholder said they will be (cards.travel): rules read card.travel_notice
    travel_notices: tuple[TravelNotice, ...] = ()
    controls: CardControls | None = None  # the card's own blocks (None: only the product's)
    # issuer script commands waiting for the chip's next online request (ScriptCommand values)
    chip_scripts: tuple[str, ...] = ()
    # the queued commands the last answer carrying them took off the queue, and that answer's
    # match key: its reversal (the answer may never have reached the chip) queues them again
    chip_scripts_sent: tuple[str, ...] = ()
    chip_scripts_sent_key: str = ""
    # merchants whose recurring (merchant-initiated) charges the cardholder revoked
    stop_payments: tuple[StopPayment, ...] = ()
    # the payment tokens wallets and merchants hold for this card (cards.tokens)
    tokens: tuple[PaymentToken, ...] = ()
    # the billing address for address verification (cards.avs), as keyed hashes of the
    # normalised postcode and house number: the address itself is never stored ("" none)
    avs_postcode_ref: str = ""
    avs_street_ref: str = ""
    # the cardholder answered a fraud alert "it was me" (cards.cardholder_pass): None none
    cardholder_pass: CardholderPass | None = None
    # a card the bank had suspended when it was reported lost or stolen: that suspension's
    # reason, so that its replacement is activated suspended as a renewal is (None: it was
    # not suspended; stored only when set, so older processes and cards read it)
    suspension_at_report: str | None = None
    version: int = 0  # optimistic concurrency for lifecycle updates

    @property
    def masked_pan(self) -> str:
        return self.bin[:6] + "*" * (self.pan_length - 10) + self.last4
