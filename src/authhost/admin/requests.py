"""What an operator may ask the card service to do: validated request values.

One definition serves the HTTP API (JSON bodies), the CLI (options and bulk CSV rows) and the
OpenAPI document (the JSON schemas come from these models), so a field is checked the same
way wherever it arrives. Models forbid unknown fields: a typo is an error, not a silent no-op.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from authhost.admin.business_day import DAY_PATTERN
from authhost.cards.cardholder_pass import DEFAULT_MINUTES as DEFAULT_PASS_MINUTES
from authhost.cards.cardholder_pass import MAX_MINUTES as MAX_PASS_MINUTES
from authhost.cards.luhn import is_luhn_valid
from authhost.cards.model import CardKind, PinMethod
from authhost.cards.travel import MAX_DAYS as MAX_TRAVEL_DAYS
from authhost.cards.travel import MAX_NOTICES as MAX_TRAVEL_NOTICES
from authhost.security.masking import ascii_digits, mask_pans_in_note

# [0-9], never \d: pydantic's patterns take any script's digits for \d ("٤٧٦١٧٣" as a BIN)
Digits3 = Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")]


def _country_code(value: object) -> object:
    """A country as field 19 carries it. An agent told "Japan" types JP; pydantic's own
    message ("String should match pattern '^[0-9]{3}$'") did not say what a code is."""
    if isinstance(value, str) and not (len(value) == 3 and value.isascii() and value.isdigit()):
        raise ValueError(
            "a country is its ISO 3166 numeric code, 3 digits, as field 19 carries it "
            "(Japan 392, United States 840, United Kingdom 826, Germany 276), not a letter code"
        )
    return value


# a country: ISO 3166 numeric (the pattern stays for the OpenAPI document)
CountryCode = Annotated[
    str, BeforeValidator(_country_code), StringConstraints(pattern=r"^[0-9]{3}$")
]
Identifier = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", strip_whitespace=True)
]
# a fraud rules' list's name (the path of /v1/lists/{name}, a store key)
LIST_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _json_integer(value: object) -> object:
    """The bank's money and cursors as JSON integers only: lax parsing took "100.00" and
    250.0 (major units, as a core system or a spreadsheet writes them) for 100 and 250 minor
    units, and true for 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{value!r} is not a whole number (no decimal point, no quotes; in minor units, "
            "100.00 of a currency with cents is 10000)"
        )
    return value


Amount = Annotated[int, BeforeValidator(_json_integer), Field(ge=0, le=10**15)]

SignedMinor = Annotated[int, BeforeValidator(_json_integer), Field(ge=-(10**15), le=10**15)]
# an amount that must be there and above 0 (a dispute's stages, a cardholder's pass)
PositiveAmount = Annotated[int, BeforeValidator(_json_integer), Field(gt=0, le=10**15)]

# digits, perhaps grouped as a PAN is written: by blanks, dashes, dots, slashes, underscores
# or apostrophes, up to 3 together ("4761 7307 ...", "4761.7307...", "4761. 7307",
# "4761 - 7307": a name's pattern allows dots, slashes and apostrophes)
_DIGIT_GROUPS = re.compile(r"\d(?:[\s._/'-]{0,3}\d)*")
_GROUP_SEPARATORS = re.compile(r"[\s._/'-]")


def _no_card_number(text: str | None) -> str | None:
    """Refuse free text holding a card number (13-19 digits passing the Luhn check): the
    field is stored and shown in clear, where a PAN must never be. The value is not echoed."""
    for found in _DIGIT_GROUPS.finditer(text or ""):
        digits = _GROUP_SEPARATORS.sub("", found.group())
        if 13 <= len(digits) <= 19 and is_luhn_valid(ascii_digits(digits)):
            raise ValueError("must not hold a card number (13-19 digits passing the Luhn check)")
    return text


NoCardNumber = AfterValidator(_no_card_number)
# a note or a reason is only audited or stored masked: a card number in it is masked, however
# it was split (security.masking.mask_pans_in_note), not refused
MaskedNote = AfterValidator(mask_pans_in_note)
CardholderName = Annotated[
    str,
    StringConstraints(max_length=26, pattern=r"^[A-Za-z0-9 .'/-]*$", strip_whitespace=True),
    NoCardNumber,
]
AddressRef = Annotated[str, StringConstraints(max_length=64), NoCardNumber]
ProductName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True), NoCardNumber
]


def _needs(field: str, other: str) -> dict[str, Any]:
    """JSON schema: ``field`` given non-empty needs ``other`` non-empty (a model validator
    checks it; this says it in the OpenAPI document)."""
    given = {"required": [field], "properties": {field: {"minLength": 1}}}
    return {"if": given, "then": {"required": [other], "properties": {other: {"minLength": 1}}}}


def _one_of_fields(schema: dict[str, Any], *besides: str) -> None:
    """JSON schema: at least one of the model's fields other than ``besides`` is given."""
    schema["anyOf"] = [{"required": [name]} for name in schema["properties"] if name not in besides]


# fields that hold a card number, a PIN block or a card code: never shown by repr() or str()
# (a request object in a log line, an assertion message or a debugger must not carry them)
SECRET_FIELDS = frozenset({"pan", "pans", "token_pan", "pin_block", "new_pin_block", "cvv2"})


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr_args__(self):  # type: ignore[override]
        for name, value in super().__repr_args__():
            if name in SECRET_FIELDS:
                hidden = f"<{len(value)} hidden>" if isinstance(value, list) else "<hidden>"
                yield name, hidden
            else:
                yield name, value


class LimitsSpec(_Request):
    """Spending limits in minor units; a missing value means no limit."""

    per_transaction: Amount | None = None
    daily_amount: Amount | None = None
    daily_count: Annotated[int, Field(ge=0)] | None = None
    monthly_amount: Amount | None = None
    monthly_count: Annotated[int, Field(ge=0)] | None = None
    atm_per_transaction: Amount | None = None
    atm_daily_amount: Amount | None = None
    atm_daily_count: Annotated[int, Field(ge=0)] | None = None
    max_balance: Amount | None = Field(
        None,
        description="debit/prepaid: the most the account may hold after a transfer to the card "
        "(original credit 26, payment transaction 28); 0: no transfers",
    )


Channel = Literal["pos", "atm", "ecommerce", "contactless", "moto"]
CHANNELS: tuple[str, ...] = get_args(Channel)


class NewProduct(_Request):
    """A card programme. ``product_id`` defaults to a generated one."""

    product_id: Identifier | None = None
    issuer_id: Identifier
    name: ProductName
    bin: Annotated[str, StringConstraints(pattern=r"^([0-9]{6}|[0-9]{8})$")] = Field(
        description="issuer identification number, 6 or 8 digits"
    )
    pan_length: Annotated[int, Field(ge=13, le=19)] = 16
    kind: CardKind = CardKind.DEBIT
    currency: Digits3 = Field("978", description="ISO 4217 numeric")
    home_country: CountryCode = Field("276", description="ISO 3166 numeric")
    validity_months: Annotated[int, Field(ge=1, le=120)] = 36
    service_code: Digits3 = "201"
    limits: LimitsSpec = LimitsSpec()
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS))
    blocked_mccs: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]] = []
    blocked_countries: list[CountryCode] = []
    pin_method: PinMethod = PinMethod.VISA_PVV
    pvk_name: Identifier = "pvk"
    cvk_name: Identifier = "cvk"
    pvki: Annotated[str, StringConstraints(pattern=r"^[0-9]$")] = "1"
    imk_ac_name: Identifier | Literal[""] = Field(
        "", description="key name of the EMV issuer master key for ARQCs; empty: not checked"
    )
    chip_cvn: Literal[10, 16, 17, 18, 20, 21, 22] = Field(
        18,
        description="cryptogram version of the chip: Visa 10, 18 or 22, Mastercard 16, 17, 20 "
        "or 21",
    )
    imk_smi_name: Identifier | Literal[""] = Field(
        "",
        description="key name of the EMV issuer master key for secure messaging integrity: "
        "answers to chip cards may carry issuer scripts (needs imk_ac_name); empty: none",
    )
    imk_smc_name: Identifier | Literal[""] = Field(
        "",
        description="key name of the EMV issuer master key for secure messaging "
        "confidentiality: a PIN change's answer changes the chip's offline PIN too (needs "
        "imk_smi_name); empty: the chip's PIN is not changed",
    )

    @field_validator("imk_smi_name", "imk_smc_name")
    @classmethod
    def _chip_keys_in_order(cls, name: str, info: ValidationInfo) -> str:
        """Each chip key needs the one before it: an issuer script goes only to a chip whose
        cryptogram the host checked, and a new offline PIN only in an issuer script."""
        needs = "imk_ac_name" if info.field_name == "imk_smi_name" else "imk_smi_name"
        if name and not info.data.get(needs):
            raise ValueError(f"{info.field_name} needs {needs}")
        return name

    cavv_key_name: Identifier | Literal[""] = Field(
        "",
        description="key name of the CAVV key pair (type cvk) the issuer's 3-D Secure access "
        "control server makes authentication values with: e-commerce requests carrying one "
        "(field 48 SE 43) are checked and a forged one declined; empty: not checked",
    )
    atc_jump_limit: Annotated[int, Field(ge=0, le=65_535)] | None = Field(
        None,
        description="how far ahead of a card's newest chip counter (ATC) a cryptogram's may "
        "be (0: no limit); null: the host's [auth] atc_jump_limit",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [  # _chip_keys_in_order, for the document
                _needs("imk_smi_name", "imk_ac_name"),
                _needs("imk_smc_name", "imk_smi_name"),
            ]
        }
    )

    @model_validator(mode="after")
    def _consistent(self) -> NewProduct:
        if self.pan_length < len(self.bin) + 4:
            raise ValueError("pan_length leaves too few digits after the BIN")
        return self


class ProductChange(_Request):
    """What may change on a product whose cards are out: its name, limits, channels, blocked
    merchant categories and countries, the validity of cards issued from now on, the chip
    counter jump limit and the 3-D Secure CAVV key. Each field given replaces the product's,
    but ``limits``: the limits it names are set (null: that limit removed), the product's
    others kept (``"limits": null`` removes them all; ``PUT .../limits`` sets the whole set);
    fields left out stay as they are.
    The BIN, PAN length, kind, currency, home country, service code, PIN method and the card
    keys are fixed: the cards already issued carry them (the CAVV key is the issuer ACS's,
    not the cards')."""

    name: ProductName = ""
    limits: LimitsSpec | None = Field(
        None,
        description="the limits named are set (null: removed), the product's others kept; "
        "null: every limit removed; left out: unchanged",
    )
    # null is refused below (it would mean no channel at all): not in the document
    channels: list[Channel] | SkipJsonSchema[None] = None
    blocked_mccs: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]] | None = None
    blocked_countries: list[CountryCode] | None = None
    validity_months: Annotated[int, Field(ge=1, le=120)] | None = None
    atc_jump_limit: Annotated[int, Field(ge=0, le=65_535)] | None = Field(
        None, description="null (given): the host's [auth] atc_jump_limit; left out: unchanged"
    )
    cavv_key_name: Identifier | Literal[""] | None = Field(
        None,
        description="the CAVV key pair 3-D Secure authentication values are checked with "
        "(the issuer's ACS started signing, or moved to a new key); '': stop checking; "
        "left out: unchanged",
    )
    version: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="the product's version the change was made on (its view's `version`): "
        "refused with 409 if someone changed it since; left out: changed whatever it is now",
    )
    model_config = ConfigDict(json_schema_extra=lambda schema: _one_of_fields(schema, "version"))

    @model_validator(mode="after")
    def _something(self) -> ProductChange:
        if not self.model_fields_set - {"version"}:
            raise ValueError("nothing to change: give at least one field")
        if self.limits is not None and not self.limits.model_fields_set:
            # {} replaced every limit with none before 2026-11-29; now it would change nothing:
            # refused rather than taken silently from a client written for the old meaning
            raise ValueError(
                "limits: name the limits to set (null removes one); every limit off is "
                '"limits": null, a whole set is PUT /v1/products/{id}/limits'
            )
        if "channels" in self.model_fields_set and self.channels is None:
            # null would mean no channel at all (every request 57), not "unchanged"
            raise ValueError("channels: give the list of channels (left out: unchanged)")
        return self


class NewAccount(_Request):
    """An account; ``balance`` is the opening funds (debit/prepaid) in minor units,
    ``credit_limit`` a credit account's limit or a debit account's arranged overdraft."""

    account_id: Identifier | None = None
    currency: Digits3 = "978"
    kind: CardKind = CardKind.DEBIT
    balance: Amount = 0
    credit_limit: Amount = 0
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["kind"], "properties": {"kind": {"const": "prepaid"}}},
            "then": {"properties": {"credit_limit": {"const": 0}}},
        }
    )

    @model_validator(mode="after")
    def _prepaid_owes_nothing(self) -> NewAccount:
        if self.kind is CardKind.PREPAID and self.credit_limit:
            raise ValueError("a prepaid account has no credit limit or overdraft")
        return self


class FundsChange(_Request):
    """Load funds (positive) or take them off / record a credit payment (negative)."""

    amount_minor: Annotated[SignedMinor, Field(json_schema_extra={"not": {"const": 0}})]
    reason: Annotated[str, StringConstraints(max_length=200), MaskedNote] = ""

    @model_validator(mode="after")
    def _not_zero(self) -> FundsChange:
        if self.amount_minor == 0:
            raise ValueError("amount_minor must not be 0")
        return self


class LedgerBalance(_Request):
    """The bank's ledger balance of the account, which has every movement of the host's
    journal up to ``through_journal_id`` in it (the movements feed's cursor it has posted)."""

    ledger_balance_minor: SignedMinor
    through_journal_id: Annotated[int, BeforeValidator(_json_integer), Field(ge=0, le=10**15)]
    reason: Annotated[str, StringConstraints(max_length=200), MaskedNote] = ""


class CreditLimitChange(_Request):
    credit_limit: Amount


class IssueCard(_Request):
    """Produce a new card on a product, linked to an account (state ``created``)."""

    product_id: Identifier
    account_id: Identifier
    cardholder_name: CardholderName = ""
    address_ref: AddressRef = ""
    limits: LimitsSpec | None = None
    home_country: CountryCode | None = None


class Personalise(_Request):
    """Cardholder data as embossed; only the given fields change."""

    # null is taken as left out; the document says what to send: the fields to change
    cardholder_name: CardholderName | SkipJsonSchema[None] = None
    account_id: Identifier | SkipJsonSchema[None] = None
    address_ref: AddressRef | SkipJsonSchema[None] = None
    # the billing address for address verification (AVS): kept only as keyed hashes of the
    # postcode and house number, never stored, logged or shown; both together ("" clears it)
    billing_postcode: Annotated[str, StringConstraints(max_length=16)] | SkipJsonSchema[None] = None
    billing_street: Annotated[str, StringConstraints(max_length=64)] | SkipJsonSchema[None] = None
    model_config = ConfigDict(json_schema_extra=lambda schema: _personalise_schema(schema))

    @model_validator(mode="after")
    def _billing_address_whole(self) -> Personalise:
        if (self.billing_postcode is None) != (self.billing_street is None):
            raise ValueError("give billing_postcode and billing_street together")
        return self


def _personalise_schema(schema: dict[str, Any]) -> None:
    """Something to change, and the billing address whole (the service and the validator
    above check both)."""
    _one_of_fields(schema)
    schema["dependentRequired"] = {
        "billing_postcode": ["billing_street"],
        "billing_street": ["billing_postcode"],
    }


class NoFields(_Request):
    """No body, or an empty JSON object: the path and query say it all. A body that is not
    JSON, not an object or has a field is refused (400, 422) as on every other route, rather
    than ignored."""


class CardAction(_Request):
    """Optional reason recorded in the audit log with a lifecycle action."""

    reason: Annotated[str, StringConstraints(max_length=200), MaskedNote] = ""


class PinChange(_Request):
    """A new PIN as an encrypted PIN block, exactly as a terminal or PIN mailer sends it.

    The block is encrypted under the zone PIN key, or under a DUKPT key when ``ksn`` is given.
    The PIN itself never travels or is stored in clear: only its PVV / IBM 3624 offset is kept.
    """

    pin_block: Annotated[str, StringConstraints(pattern=r"^([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32})$")]
    # 20 hex digits: a TDES DUKPT device's KSN; 24: an AES DUKPT device's (ISO format 4 block)
    ksn: (
        Annotated[str, StringConstraints(pattern=r"^([0-9A-Fa-f]{20}|[0-9A-Fa-f]{24})$")] | None
    ) = None
    acquirer_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,11}$")] | None = None


class CompromiseAlert(_Request):
    """A network's compromise alert: the exposed PANs (in a body, never a URL), or the ids of
    the cards an analyst found exposed (the cards at risk of a common point of purchase
    report, which shows no PAN), and what to do with this issuer's live cards among them."""

    pans: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{12,19}$")]] = Field(
        default_factory=list, max_length=100_000
    )
    card_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=100_000,
        description="cards by id, instead of or beside the PANs",
    )
    action: Literal["watch", "suspend", "reissue"] = "watch"
    list_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = (
        "compromised_cards"
    )

    @model_validator(mode="after")
    def _names_cards(self) -> CompromiseAlert:
        if not self.pans and not self.card_ids:
            raise ValueError("name the exposed cards: pans, card_ids or both")
        return self

    def __repr_args__(self):  # type: ignore[override]
        yield "pans", f"<{len(self.pans)} hidden>"
        yield "card_ids", len(self.card_ids)
        yield "action", self.action


class CardSearch(_Request):
    """Find a card by its PAN (sent in a body, never in a URL, so it stays out of access logs)."""

    pan: Annotated[str, StringConstraints(pattern=r"^[0-9]{12,19}$")]

    def __repr_args__(self):  # type: ignore[override]
        yield "pan", "<hidden>"


class FraudReportSpec(_Request):
    """What became known about a transaction: fraud (the default) or genuine, and from whom."""

    fraud: bool = True
    source: Literal["chargeback", "cardholder", "analyst"] = Field(
        description="a chargeback the acquirer received, the cardholder's word, or a fraud "
        "analyst's review"
    )
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class CardholderAnswer(_Request):
    """The cardholder's answer to an alert about one of their card's payments."""

    was_cardholder: bool = Field(
        description="true: it was them (labelled genuine; the card gets a pass to retry); "
        "false: it was not (labelled fraud; the card is suspended)"
    )
    pass_minutes: Annotated[int, Field(ge=0, le=MAX_PASS_MINUTES)] = Field(
        DEFAULT_PASS_MINUTES,
        description="how long the pass lasts (0: none, and any earlier pass ends); "
        "only with was_cardholder",
    )
    any_merchant: bool = Field(
        False, description="the pass covers every merchant, not only the payment's"
    )
    max_amount_minor: PositiveAmount | None = Field(
        None,
        description="the most the pass lets through, in the account's currency (default: the "
        "payment's amount)",
    )
    reissue: bool = Field(
        False, description="with was_cardholder false: also reissue the card under a new PAN"
    )
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""
    model_config = ConfigDict(
        json_schema_extra={  # _one_answer, for the document
            "if": {
                "required": ["was_cardholder"],
                "properties": {"was_cardholder": {"const": True}},
            },
            "then": {"properties": {"reissue": {"const": False}}},
        }
    )

    @model_validator(mode="after")
    def _one_answer(self) -> CardholderAnswer:
        if self.was_cardholder and self.reissue:
            raise ValueError("reissue goes with was_cardholder false: the card is not at risk")
        return self


class DisputeOpen(_Request):
    """A cardholder disputes a posted transaction."""

    reason: Literal["fraud", "not_received", "not_as_described", "duplicate", "amount", "other"]
    amount_minor: PositiveAmount | None = Field(
        None, description="the part disputed (default: all that was posted)"
    )
    provisional_credit: bool = Field(True, description="give the amount back now")
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class DisputeResolution(_Request):
    """How a dispute ended: won (the money stays with the cardholder), lost or withdrawn (a
    provisional credit is taken back); once charged back, for the network stages' amounts
    (``dispute_stages.cardholder_keeps``)."""

    outcome: Literal["won", "lost", "withdrawn"]
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class ClearingImport(_Request):
    """A clearing file's presentments as CSV text (README, "Clearing"), to post or to match."""

    csv: Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)] = Field(
        description="header pan,approval_code,amount_minor,currency,presented_at,arn "
        "(and optionally merchant_id,terminal_id), one presentment a line"
    )
    dry_run: bool = False
    dispute_duplicates: bool = Field(
        True,
        description="open a dispute (reason duplicate, no provisional credit) on each "
        "suspected duplicate presentment posted",
    )


class ChipScriptsSpec(_Request):
    """The issuer script commands to send to the card's chip with its next online request
    (all of them: an empty list withdraws what was waiting)."""

    commands: list[Literal["application_block", "application_unblock", "pin_unblock"]] = []


class CardControlsSpec(_Request):
    """What to switch off on one card (all of it: lists left empty switch nothing off)."""

    blocked_channels: list[Channel] = []
    blocked_mccs: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]] = []
    blocked_countries: list[CountryCode] = []


def _calendar_day(text: str) -> str:
    """A day that exists (2026-99-99 has the shape of one), 2000-2099 as every report's."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text} is not a day of the calendar") from None
    if not 2000 <= day.year <= 2099:
        raise ValueError(f"{text} is not between 2000 and 2099")
    return text


Day = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    AfterValidator(_calendar_day),
    WithJsonSchema({"type": "string", "pattern": DAY_PATTERN, "format": "date"}),
]


class DisputeChargeback(_Request):
    """The issuer charges an open dispute back through the network (README, "Disputes")."""

    reason_code: Annotated[str, StringConstraints(max_length=12, strip_whitespace=True)] = Field(
        "",
        description="the network reason code: Visa 10.1-13.9 (10.4, 13.1, 12.6.1), Mastercard "
        "4808-4871 (4837, 4853, 4834); one that fits the dispute's reason and the card's "
        "network (by its BIN). Default: the dispute's reason's usual code on that network",
    )
    amount_minor: PositiveAmount | None = Field(
        None, description="charged back, at most the disputed amount (default: all of it)"
    )
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class DisputeRepresentment(_Request):
    """The acquirer's representment (second presentment) of a charged-back dispute."""

    reference: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$", strip_whitespace=True),
        NoCardNumber,
    ] = Field(description="the acquirer's reference of the representment")
    amount_minor: PositiveAmount = Field(description="represented, at most the amount charged back")
    date: Day | None = Field(
        None, description="the representment's date, a UTC day (default: today, now)"
    )
    currency: Digits3 | Literal[""] = Field(
        "", description="the amount's currency: when given, it must be the dispute's"
    )
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class DisputePreArbitration(_Request):
    """The issuer answers a representment with pre-arbitration."""

    amount_minor: PositiveAmount | None = Field(
        None,
        description="pre-arbitrated, at most the amount represented (default: all of it); "
        "the rest of the representment is accepted",
    )
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class DisputePreArbitrationAnswer(_Request):
    """The acquirer's answer to the issuer's pre-arbitration, as its dispute system tells it."""

    answer: Literal["accepted", "accepted_in_part", "declined"] = Field(
        description="accepted (all of the amount pre-arbitrated), accepted_in_part (the "
        "amount_minor given) or declined (the issuer may file arbitration)"
    )
    amount_minor: PositiveAmount | None = Field(
        None,
        description="accepted_in_part: what the acquirer accepted, less than the amount "
        "pre-arbitrated; accepted: all of it (default); declined: none",
    )
    date: Day | None = Field(
        None,
        description="the answer's date as the network's dispute system gives it, a UTC day "
        "(default: now): an answer in time is recorded in time however late it is recorded",
    )
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class DisputeArbitration(_Request):
    """The issuer files arbitration with the network after a declined pre-arbitration."""

    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class DisputeArbitrationRuling(_Request):
    """The network's ruling on an arbitration: it resolves the dispute won or lost, the money
    moving as a resolution's (``dispute_stages.cardholder_keeps``)."""

    ruling: Literal["won", "lost"] = Field(description="won: for the issuer; lost: the acquirer")
    fee_minor: Annotated[int, Field(ge=0, le=10**9)] | None = Field(
        None,
        description="the network's arbitration fee, in minor units of fee_currency, borne by "
        "the losing party (default: [admin] arbitration_fee_minor; 0: none)",
    )
    fee_currency: Digits3 | Literal[""] = Field(
        "",
        description="the fee's currency, ISO 4217 numeric (default: [admin] "
        "arbitration_fee_currency, 840)",
    )
    note: Annotated[str, StringConstraints(max_length=500), MaskedNote] = ""


class RepresentmentsImport(_Request):
    """The acquirers' representments as CSV text, one line per dispute (README, "Disputes")."""

    csv: Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)] = Field(
        description="header reference,amount_minor (and dispute_id or arn, optionally date, "
        "currency, note), one representment a line"
    )


class StopPaymentSpec(_Request):
    """Stop one merchant's recurring charges (field 42 as the merchant sends it; "*" for every
    merchant), through ``until`` (a UTC day; empty until withdrawn)."""

    # the document states the ASCII of field 42 (ans 15); _printable takes any printable text
    merchant_id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=15),
        Field(json_schema_extra={"pattern": r"^[!-~]([ -~]{0,13}[!-~])?$"}),
    ]
    until: Day | Literal[""] = ""

    @model_validator(mode="after")
    def _printable(self) -> StopPaymentSpec:
        if not self.merchant_id.isprintable() or self.merchant_id != self.merchant_id.strip():
            raise ValueError("merchant_id must be printable, without leading or trailing blanks")
        return self


class NewToken(_Request):
    """A payment token the network's token service issued for the card with the issuer's
    consent (a wallet on a phone, a merchant's card on file): kept as its keyed index and last
    four digits, never the number."""

    token_pan: Annotated[str, StringConstraints(pattern=r"^[0-9]{12,19}$")] = Field(
        description="the token number (the wallet's DPAN), sent in the body only"
    )
    requestor_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")] = Field(
        description="the token requestor ID: which wallet or merchant holds it (SE 33 SF 06)"
    )
    expiry: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] | Literal[""] = Field(
        "", description="the token's own expiry, YYMM"
    )
    wallet: Literal["apple_pay", "google_pay", "samsung_pay", "merchant", "other", ""] = Field(
        "", description="'': from the well-known requestor IDs, else 'other'"
    )
    device: Annotated[
        str, StringConstraints(max_length=40, strip_whitespace=True), NoCardNumber
    ] = Field("", description="what it runs on (phone, watch...), for people")

    def __repr_args__(self):  # type: ignore[override]
        yield "token_pan", "<hidden>"
        yield "requestor_id", self.requestor_id


class TokenRequest(NewToken):
    """A wallet asks the network's token service for a token of a card, and the service asks
    the issuer (``cards.provisioning``): the card's number and expiry as the cardholder typed
    them (CVV2 too when the wallet asked for it), the token the service would issue, and the
    wallet's scores of the device and the account (1-5, 5 the most trusted)."""

    pan: Annotated[str, StringConstraints(pattern=r"^[0-9]{12,19}$")]
    card_expiry: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] = Field(
        description="the card's expiry as entered, YYMM"
    )
    cvv2: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] | Literal[""] = ""
    device_score: Annotated[int, Field(ge=1, le=5)] | None = None
    account_score: Annotated[int, Field(ge=1, le=5)] | None = None

    def __repr_args__(self):  # type: ignore[override]
        yield "pan", "<hidden>"
        yield "token_pan", "<hidden>"
        yield "requestor_id", self.requestor_id


class TokenChange(_Request):
    """A token's new state: suspended (a lost phone; resumable), active again, or deleted
    (final)."""

    state: Literal["active", "suspended", "deleted"]
    reason: Annotated[str, StringConstraints(max_length=200), MaskedNote] = ""


class StopPayments(_Request):
    """The card's stop payments, all of them (an empty list withdraws every one)."""

    stops: Annotated[list[StopPaymentSpec], Field(max_length=100)] = []


class TravelNoticeSpec(_Request):
    """A trip: the countries (ISO 3166 numeric, as field 19) and the UTC days, both included."""

    countries: Annotated[list[CountryCode], Field(min_length=1, max_length=20)]
    start: Day
    end: Day

    @model_validator(mode="after")
    def _span(self) -> TravelNoticeSpec:
        try:
            first, last = dt.date.fromisoformat(self.start), dt.date.fromisoformat(self.end)
        except ValueError as exc:
            raise ValueError(f"start and end must be dates: {exc}") from None
        if last < first:
            raise ValueError("end is before start")
        if (last - first).days >= MAX_TRAVEL_DAYS:
            raise ValueError(f"a trip is at most {MAX_TRAVEL_DAYS} days")
        return self


class TravelNotices(_Request):
    """A card's travel notices, all of them (an empty list removes them)."""

    notices: Annotated[list[TravelNoticeSpec], Field(max_length=MAX_TRAVEL_NOTICES)]


class RenewalRun(_Request):
    """The monthly renewal run: every live card expiring in one month gets its successor."""

    expiry: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}(0[1-9]|1[0-2])$")] = Field(
        description="the month the cards expire, YYMM as on the card"
    )
    dry_run: bool = False


class ListValues(_Request):
    """A named list (used by fraud rules): the full new content."""

    values: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]]
