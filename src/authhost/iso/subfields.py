"""Layouts inside single fields: 48 (private subelements), 54 (additional amounts), 90, 95,
and Visa's 44, 60, 123 and 126 (VisaNet Base I; docs/iso.md, "Visa's fields").

pyiso8583 splits a message into fields; these few fields have an inner layout that it does
not know. Each layout is read and written here and nowhere else.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from authhost.iso.messages import AvsData, Balance, TokenData

CVV2_SUBELEMENT = "92"
# Mastercard DE 48 SE 61, POS data extended condition codes: its first position is the partial
# approval terminal support indicator ("1": the terminal can take a partial approval)
POS_EXTENDED_CONDITIONS_SUBELEMENT = "61"
# authhost's field 48 subelement 62, after Visa's multiple clearing sequence number and count:
# "NNCC", this completion's number and how many the merchant will send (a split shipment,
# an order delivered in parts). Only the last of them releases what the hold has left
MULTIPLE_COMPLETION_SUBELEMENT = "62"


# Mastercard DE 48 SE 42, electronic commerce indicators: the security level indicator, three
# digits (security protocol, cardholder authentication, UCAF collection indicator), alone or in
# Mastercard's subfield form "0103" + the three digits. The last digit says how the cardholder
# was authenticated (3-D Secure): AUTHENTICATION_BY_UCAF
ECOMMERCE_INDICATORS_SUBELEMENT = "42"
AUTHENTICATION_BY_UCAF = {"2": "authenticated", "1": "attempted", "6": "exempt"}  # else "none"
# Mastercard DE 48 SE 43, universal cardholder authentication field (UCAF): the 3-D Secure
# authentication value the issuer's access control server made, base64 (security.cavv)
AUTHENTICATION_VALUE_SUBELEMENT = "43"


# Mastercard DE 48 SE 22, multi-purpose merchant indicator, subfield 05: the stored credential
# (credential-on-file) indicator, "C1nn" a cardholder-initiated transaction with a stored card
# (C101 ad hoc, C102 standing order, C103 subscription, C104 instalment: the first of a series),
# "Mnnn" one the merchant initiates without the cardholder (M101 unscheduled, M102 standing
# order, M103 subscription, M104 instalment; M205 partial shipment, M206 delayed charge, M207
# no-show, M208 resubmission). The subelement is subfields: id (2), length (2), value
MULTI_PURPOSE_MERCHANT_SUBELEMENT = "22"
STORED_CREDENTIAL_SUBFIELD = "05"

# Mastercard DE 48 SE 33, PAN mapping file information: the network de-tokenised a payment
# (field 2 is the card's PAN) and says which token paid. Subfields as SE 22: 01 account
# number indicator (what kind of token: C a device's secure element, H cloud-based, E a
# merchant's card on file...), 02 the token number, 03 its expiry (YYMM), 06 the token
# requestor ID (11 digits: which wallet or merchant holds it)
PAN_MAPPING_SUBELEMENT = "33"


# Mastercard DE 48 SE 84 of an answer, the merchant advice code: may the merchant try again
# (``auth.merchant_advice``)
MERCHANT_ADVICE_SUBELEMENT = "84"

# Mastercard DE 48 SE 82, address verification service request: "52" asks the issuer to verify
# the billing address of DE 120 (record data: the postcode, 9 characters left-justified and
# space-filled, then the street address, up to 20) with the authorisation; the answer's SE 83
# carries the result (cards.avs.AvsResult)
AVS_REQUEST_SUBELEMENT = "82"
AVS_AND_AUTHORISATION = "52"
AVS_RESULT_SUBELEMENT = "83"
AVS_POSTCODE_LENGTH = 9
AVS_STREET_MAX = 20


# Field 48 subelement 11 of an 0800 key change (field 70 = 161), after Mastercard's key exchange
# block data for double-length keys: key class (2, "PK" a PIN key), key index (2 digits), key
# cycle (2 digits), the new key encrypted under the zone master key (32 hex), check value (6-16
# hex: the new key's encryption of a zero block, as much of it as the sender gives)
KEY_EXCHANGE_SUBELEMENT = "11"


# Field 44 (additional response data) of an answer: one result code a position (1-based),
# blanks where there is none. Position 13 carries the CAVV results code (security.cavv) of a
# value that came in field 48 SE 43, as authhost has always answered it; an answer to Visa's
# fields takes Visa's positions (VISA_*_POSITION, after Visa's 44.1-44.14: 44.13 is position 15)
CAVV_RESULT_POSITION = 13


class SubfieldError(ValueError):
    """A field whose inner layout is wrong (the message never contains the field's value)."""


@dataclass(frozen=True, slots=True)
class KeyExchangeBlock:
    """A new working key as a key change carries it: encrypted, never clear."""

    key_class: str
    key_index: str
    key_cycle: str
    encrypted_key: bytes = field(repr=False)
    check_value: str


def parse_key_exchange(field_48: str | None) -> KeyExchangeBlock:
    """Subelement 11 of a key change's field 48 (see KEY_EXCHANGE_SUBELEMENT)."""
    value = parse_additional_data(field_48 or "").get(KEY_EXCHANGE_SUBELEMENT)
    if value is None:
        raise SubfieldError("field 48: a key change needs subelement 11 (the key exchange block)")
    head, key_hex, check = value[:6], value[6:38], value[38:]
    if not (len(head) == 6 and head.isascii() and head[:2].isalpha() and head[2:].isdigit()):
        raise SubfieldError("field 48: subelement 11 starts with key class, index and cycle")
    if len(key_hex) != 32 or not _is_hex(key_hex):
        raise SubfieldError("field 48: subelement 11 carries a 32-hex-digit encrypted key")
    if not 6 <= len(check) <= 16 or not _is_hex(check):
        raise SubfieldError("field 48: subelement 11 ends with a 6 to 16 hex digit check value")
    return KeyExchangeBlock(head[:2].upper(), head[2:4], head[4:6], bytes.fromhex(key_hex),
                            check.upper())  # fmt: skip


def _is_hex(text: str) -> bool:
    return text.isascii() and all(c in "0123456789abcdefABCDEF" for c in text)


def parse_authentication(value: str | None) -> str:
    """How an e-commerce cardholder was authenticated, from subelement 42: "authenticated" (3-D
    Secure, UCAF/AAV present), "attempted", "exempt" (the merchant claims an exemption from
    strong customer authentication) or "none"; "" when the subelement is absent."""
    if value is None:
        return ""
    level = value[4:] if len(value) == 7 and value.startswith("0103") else value
    if len(level) != 3 or not (level.isdigit() and level.isascii()):
        raise SubfieldError("field 48: subelement 42 must be the 3-digit security level indicator")
    return AUTHENTICATION_BY_UCAF.get(level[2], "none")


def _subfields(value: str, subelement: str) -> dict[str, str]:
    """A subelement made of subfields: each an id (2 digits), a length (2) and the value."""
    found: dict[str, str] = {}
    at = 0
    while at < len(value):
        head = value[at : at + 4]
        if len(head) < 4 or not (head.isdigit() and head.isascii()):
            raise SubfieldError(
                f"field 48: subelement {subelement} must be subfields (id, length, value)"
            )
        length = int(head[2:])
        data = value[at + 4 : at + 4 + length]
        if len(data) != length:
            raise SubfieldError(
                f"field 48: subelement {subelement} subfield {head[:2]} is cut short"
            )
        found[head[:2]] = data
        at += 4 + length
    return found


def parse_pan_mapping(value: str | None) -> TokenData | None:
    """The token of a de-tokenised payment from subelement 33 (PAN_MAPPING_SUBELEMENT);
    None when absent. Refused when it carries no token number, or not a number."""
    if value is None:
        return None
    parts = _subfields(value, PAN_MAPPING_SUBELEMENT)
    number = parts.get("02", "")
    if not (number.isascii() and number.isdigit() and 12 <= len(number) <= 19):
        raise SubfieldError("field 48: subelement 33 subfield 02 must be the token, 12-19 digits")
    expiry, requestor = parts.get("03", ""), parts.get("06", "")
    if expiry and not (expiry.isascii() and expiry.isdigit() and len(expiry) == 4):
        raise SubfieldError("field 48: subelement 33 subfield 03 must be the token's YYMM")
    if requestor and not (requestor.isascii() and requestor.isdigit() and len(requestor) == 11):
        raise SubfieldError("field 48: subelement 33 subfield 06 must be an 11-digit requestor")
    return TokenData(number, expiry, requestor, parts.get("01", ""))


def build_pan_mapping(token: TokenData) -> str:
    """Subelement 33 as the network writes it (the simulator's)."""
    parts = {"01": token.kind, "02": token.number, "03": token.expiry, "06": token.requestor_id}
    return "".join(f"{k}{len(v):02d}{v}" for k, v in parts.items() if v)


def parse_stored_credential(value: str | None) -> str:
    """Subfield 05 of subelement 22 (see MULTI_PURPOSE_MERCHANT_SUBELEMENT): "C101"...
    "M208", or "" when absent."""
    if value is None:
        return ""
    found = _subfields(value, MULTI_PURPOSE_MERCHANT_SUBELEMENT).get(STORED_CREDENTIAL_SUBFIELD, "")
    if found and not (
        len(found) == 4 and found[0] in "CM" and found[1:].isdigit() and found.isascii()
    ):
        raise SubfieldError(
            "field 48: subelement 22 subfield 05 must be C or M and three digits (e.g. M103)"
        )
    return found


def parse_avs_data(service: str | None, record: str | None) -> AvsData | None:
    """The billing address to verify: field 48 SE 82 (``service``) and field 120 (``record``);
    None when the request asks for no verification. A record longer than a postcode and a
    street address is a format error."""
    if service is None:
        return None
    if service != AVS_AND_AUTHORISATION:
        raise ValueError(f"field 48: subelement 82 must be {AVS_AND_AUTHORISATION}")
    return _address_record(record or "", "120")


def _address_record(record: str, number: str) -> AvsData:
    """A postcode (9 characters, left-justified, space-filled) and a street address (up to
    20): Mastercard's DE 120 record and Visa's field 123 share the layout."""
    if len(record) > AVS_POSTCODE_LENGTH + AVS_STREET_MAX:
        raise SubfieldError(
            f"field {number}: the address is a postcode ({AVS_POSTCODE_LENGTH}) and a street "
            f"address (up to {AVS_STREET_MAX})"
        )
    return AvsData(record[:AVS_POSTCODE_LENGTH].strip(), record[AVS_POSTCODE_LENGTH:].strip())


def build_avs_data(avs: AvsData) -> str:
    """Field 120 for ``avs`` (the simulator's side of ``parse_avs_data``)."""
    return (
        avs.postcode[:AVS_POSTCODE_LENGTH].ljust(AVS_POSTCODE_LENGTH) + avs.street[:AVS_STREET_MAX]
    )


def format_additional_response(results: Mapping[int, str]) -> str:
    """Field 44 of an answer: each one-character result code at its position (1-based), blank
    positions between them, nothing after the last."""
    text = [" "] * max(results)
    for position, code in results.items():
        text[position - 1] = code
    return "".join(text)


def parse_additional_response(value: str | None, position: int = CAVV_RESULT_POSITION) -> str:
    """The result code at ``position`` of an answer's field 44 (the CAVV result of a field 48
    request by default); "" when it carries none."""
    return (value or "")[position - 1 : position].strip()


def parse_completion_sequence(value: str | None) -> tuple[int, int] | None:
    """(number, count) of subelement 62, or None when absent."""
    if value is None:
        return None
    if len(value) != 4 or not (value.isdigit() and value.isascii()):
        raise SubfieldError("field 48: subelement 62 must be 4 digits (number and count)")
    number, count = int(value[:2]), int(value[2:])
    if not 0 < number <= count:
        raise SubfieldError("field 48: subelement 62 needs 0 < completion number <= count")
    return number, count


# Field 48: Mastercard DE 48 layout, an optional one-letter transaction category code (TCC)
# followed by subelements, each tag (2 digits), length (2 digits), value.


def category_code(text: str | None) -> str | None:
    """The transaction category code that leads a request's field 48 (one ASCII letter), or
    None. An answer's field 48 starts with it, as Mastercard's DE 48 in an 0110 does: a switch
    that reads the TCC first would read the answer's first subelement out of step without it."""
    first = text[:1] if text else ""
    return first if first.isalpha() and first.isascii() else None


def parse_additional_data(text: str) -> dict[str, str]:
    """Subelements of field 48 by tag; a leading TCC letter is skipped."""
    pos = 1 if text[:1].isalpha() and text[:1].isascii() else 0
    end = len(text)
    elements: dict[str, str] = {}
    while pos < end:
        head = text[pos : pos + 4]
        if len(head) < 4 or not (head.isdigit() and head.isascii()):  # "²" is a digit to Python
            raise SubfieldError(f"field 48: bad subelement header at position {pos}")
        size = int(head[2:])
        value_end = pos + 4 + size
        if value_end > end:
            raise SubfieldError(f"field 48: subelement {head[:2]} runs past the end")
        elements[head[:2]] = text[pos + 4 : value_end]
        pos = value_end
    return elements


def build_additional_data(elements: Mapping[str, str], tcc: str | None = None) -> str:
    """Field 48 text from subelements (tags in ascending order), optional TCC first."""
    parts = [tcc or ""]
    for tag in sorted(elements):
        value = elements[tag]
        if len(tag) != 2 or not (tag.isdigit() and tag.isascii()):
            raise SubfieldError(f"field 48: subelement tag {tag!r} is not two digits")
        if len(value) > 99:
            raise SubfieldError(f"field 48: subelement {tag} is longer than 99 characters")
        parts.append(f"{tag}{len(value):02d}{value}")
    return "".join(parts)


# Field 54: additional amounts, 20 characters each: account type (2), amount type (2),
# currency (3), sign C (credit) or D (debit) (1), amount in minor units (12).

_AMOUNT_SIZE = 20
ADDITIONAL_AMOUNT_LIMIT = 10**12  # 12 digits of minor units


def fits_additional_amounts(balance: Balance) -> bool:
    """Whether field 54 can carry this amount. An answer leaves out one that cannot rather
    than fail: the decision is already committed, and a balance is only information."""
    return -ADDITIONAL_AMOUNT_LIMIT < balance.amount_minor < ADDITIONAL_AMOUNT_LIMIT


def format_additional_amounts(balances: list[Balance]) -> str:
    parts = []
    for b in balances:
        sign = "D" if b.amount_minor < 0 else "C"
        amount = abs(b.amount_minor)
        if amount >= ADDITIONAL_AMOUNT_LIMIT:
            raise SubfieldError("field 54: amount does not fit 12 digits")
        parts.append(
            f"{b.account_type:0>2.2}{b.amount_type:0>2.2}{b.currency:0>3.3}{sign}{amount:012d}"
        )
    return "".join(parts)


def parse_additional_amounts(text: str) -> list[Balance]:
    if len(text) % _AMOUNT_SIZE:
        raise SubfieldError("field 54: length is not a multiple of 20")
    balances = []
    for pos in range(0, len(text), _AMOUNT_SIZE):
        item = text[pos : pos + _AMOUNT_SIZE]
        sign, digits = item[7], item[8:]
        if sign not in "CD" or not (digits.isdigit() and digits.isascii()):
            raise SubfieldError(f"field 54: amount {pos // _AMOUNT_SIZE + 1} is malformed")
        amount = int(digits)
        balances.append(Balance(item[:2], item[2:4], item[4:7], -amount if sign == "D" else amount))
    return balances


# Field 90: original data elements, n 42.


@dataclass(frozen=True, slots=True)
class OriginalData:
    """What a reversal points back to (field 90)."""

    mti: str
    stan: str
    transmission_time: str
    acquirer_id: str
    forwarding_id: str

    def to_field(self) -> str:
        return (
            f"{self.mti:0>4}{self.stan:0>6}{self.transmission_time:0>10}"
            f"{self.acquirer_id:0>11}{self.forwarding_id:0>11}"
        )


def parse_original_data(text: str) -> OriginalData:
    if len(text) != 42 or not (text.isdigit() and text.isascii()):
        raise SubfieldError("field 90: original data elements must be 42 digits")
    return OriginalData(text[:4], text[4:10], text[10:20], text[20:31], text[31:42])


# Field 95: replacement amounts, an 42: actual transaction amount (12), actual settlement
# amount (12), actual transaction fee (x+n 8), actual settlement fee (x+n 8).


def replacement_amounts_field(actual_amount_minor: int) -> str:
    """Field 95 for a partial reversal: the amount that remains; settlement and fees zero."""
    if not 0 <= actual_amount_minor < 10**12:
        raise SubfieldError("field 95: amount does not fit 12 digits")
    return f"{actual_amount_minor:012d}{0:012d}C{0:08d}C{0:08d}"


def parse_replacement_amount(text: str) -> int:
    """The actual transaction amount (first 12 digits) of field 95."""
    head = text[:12]
    if len(head) != 12 or not (head.isdigit() and head.isascii()):
        raise SubfieldError("field 95: the actual amount must be 12 digits")
    return int(head)


def check_replacement_amounts(text: str) -> None:
    """SubfieldError unless ``text`` is field 95's layout: 42 characters, the two actual
    amounts 24 ASCII digits, each fee a C, D or digit then 8 digits (x+n 8, or Mastercard's
    all-digit n 42). A reversal reads the remaining amount from it, and one it cannot read
    must be refused at the wire rather than taken as a full reversal."""
    amounts, fees = text[:24], text[24:]
    if len(text) != 42 or not (amounts.isdigit() and amounts.isascii()):
        raise SubfieldError("field 95: 42 characters, starting with two 12-digit amounts")
    for fee in (fees[:9], fees[9:]):
        digits = fee[1:]
        if fee[0] not in "CD0123456789" or not (digits.isdigit() and digits.isascii()):
            raise SubfieldError("field 95: each fee is C, D or a digit, then 8 digits")


# Visa's fields, in the VisaNet Base I layout (docs/iso.md, "Visa's fields": the sources it
# follows and what it simplifies). Each is a text field in every authhost dialect, so what
# Visa sends as raw bytes (field 126's bitmap, 126.8, 126.9) travels as hex text, two
# characters a byte, as the ascii-hex-bitmap dialect carries a bitmap or a PIN block.

# Field 60, additional POS information: up to 12 digits (60.1-60.10). Positions 9-10 are 60.8,
# the mail/phone/electronic commerce and payment indicator (ECI), whose e-commerce values mean
# what field 48 SE 42's UCAF collection indicator means (AUTHENTICATION_BY_UCAF). 00 (not
# e-commerce) and 01-04 (a mail or telephone order) report no e-commerce authentication: "",
# as a Mastercard request without SE 42; any other value "none", as SE 42's other digits
VISA_POS_INFORMATION_DIGITS = 12
VISA_ECI_POSITION = 9
AUTHENTICATION_BY_ECI = {"05": "authenticated", "06": "attempted", "07": "none", "08": "none"}
NOT_ECOMMERCE_ECI = frozenset({"00", "01", "02", "03", "04"})

# Field 123, address verification data: the postcode (9 characters, left-justified,
# space-filled) and the street address (up to 20), the record of Mastercard's DE 120

# Field 126, Visa private-use fields: a bitmap of its subfields (Visa: 8 bytes, here 16 hex
# characters; bit 1 is the leftmost and names 126.1, there is no secondary bitmap), then the
# subfields it names, in order. authhost uses 126.9 (the CAVV: 20 bytes, security.cavv's
# layout, which field 48 SE 43 carries as base64) and 126.10 (CVV2 request data: presence
# indicator, response type, the CVV2 right-justified in 4 characters, space-filled); 126.1 to
# 126.8 are read past by their layout, so that the bitmap is honoured and 126.9 and 126.10
# found where they are; whatever follows 126.10 is left unread, and data no subfield accounts
# for is refused
VISA_PRIVATE_BITMAP_LENGTH = 16
VISA_XID_SUBFIELD, VISA_CAVV_SUBFIELD, VISA_CVV2_SUBFIELD = 8, 9, 10


class PrivateSubfield(NamedTuple):
    """One of field 126's subfields authhost reads: its length in characters (what Visa sends
    as bytes travels as hex text, two characters a byte, and is checked to be hex)."""

    length: int
    hex: bool = False


# The layouts, and where they come from (docs/iso.md, "Visa's fields": the public sources
# disagree on 126.4 to 126.7, and this is the reading most of them share):
# - 126.1 customer name (25), 126.2 customer address (57), 126.3 biller address (57), 126.4
#   biller telephone number (18): bill payment data, EBCDIC text in BASE I, here the dialect's
#   characters. jPOS's Base1Packager (F126Packager) and packagers derived from it; one
#   transcribed configuration has 16 for 126.4, not followed.
# - 126.5 Visa merchant identifier (8 characters): a jPOS-derived VSDC packager (which
#   replaces Base1Packager's 6-character "process by date"), a Java and a JavaScript Base I
#   parser and the transcribed configuration; Base1Packager's older 6 is not followed.
# - 126.6 and 126.7, the cardholder's and merchant's SET certificate serial numbers: 17 bytes
#   each (a byte giving the number of significant digits, then 16 bytes), as iso8583tools'
#   fields_visa.frm, the Java parser and the transcribed configuration have them; here 34
#   hex characters. Base1Packager's IFB_LLNUM 17 (a variable BCD number) is not followed.
# - 126.8 the 3-D Secure transaction id (XID), 126.9 the CAVV: 20 bytes each (Base1Packager,
#   iso8583tools), 40 hex characters; 126.10 CVV2 request data, 6 characters (both).
VISA_PRIVATE_SUBFIELDS: dict[int, PrivateSubfield] = {
    1: PrivateSubfield(25),
    2: PrivateSubfield(57),
    3: PrivateSubfield(57),
    4: PrivateSubfield(18),
    5: PrivateSubfield(8),
    6: PrivateSubfield(34, hex=True),
    7: PrivateSubfield(34, hex=True),
    VISA_XID_SUBFIELD: PrivateSubfield(40, hex=True),
    VISA_CAVV_SUBFIELD: PrivateSubfield(40, hex=True),
    VISA_CVV2_SUBFIELD: PrivateSubfield(6),
}
_LAST_PRIVATE_READ = max(VISA_PRIVATE_SUBFIELDS)
_AFTER_LAST_READ = (1 << (64 - _LAST_PRIVATE_READ)) - 1  # bitmap bits of 126.11-126.64
# 126.10.1, the CVV2 presence indicator: 0 not provided, 1 present, 2 on the card but not
# legible, 9 not on the card; only 1 carries a value to check
CVV2_PRESENCE = frozenset("0129")
CVV2_PRESENT = "1"
CVV2_NOT_ON_CARD = "9"
CVV2_WITHHELD = frozenset("2" + CVV2_NOT_ON_CARD)  # the merchant cannot give the card's CVV2
# 126.10.2, the response type: 1 the acquirer wants the CVV2 result in field 44.10, 0 not
CVV2_RESPONSE_TYPES = frozenset("01")
CVV2_RESULT_WANTED = "1"

# Field 44 of an answer to Visa's fields (Visa's 44.1-44.14; positions 1-based): 44.2 the
# address verification result (cards.avs: Y, A, Z, N, U), 44.10 the CVV2 result (M match,
# N no match, P not processed: a card-present request, S should be on the card: the merchant
# said it is not), 44.13 the CAVV results code (security.cavv). 44.1 (response source) and the
# other positions stay blank
VISA_AVS_RESULT_POSITION = 2
VISA_CVV2_RESULT_POSITION = 11
VISA_CAVV_RESULT_POSITION = 15
CVV2_MATCH = "M"
CVV2_NO_MATCH = "N"
CVV2_NOT_PROCESSED = "P"  # sent with a card-present request, whose stripe or chip is checked
CVV2_SHOULD_BE_PRESENT = "S"  # the merchant says the card has none or it cannot be read
CVV2_RESULTS = {
    CVV2_MATCH: "match",
    CVV2_NO_MATCH: "no match",
    CVV2_NOT_PROCESSED: "not processed",
    CVV2_SHOULD_BE_PRESENT: "should be on the card",
}


def parse_visa_eci(value: str | None) -> str | None:
    """How an e-commerce cardholder was authenticated, from field 60 position 9-10 (60.8; see
    AUTHENTICATION_BY_ECI); None when the request carries no 60.8 (no field 60, or one of
    fewer than 10 digits)."""
    if value is None:
        return None
    digits = value.isdigit() and value.isascii() and len(value) <= VISA_POS_INFORMATION_DIGITS
    if not digits or len(value) == VISA_ECI_POSITION:  # 9 digits: half of 60.8
        raise SubfieldError(
            "field 60: Visa's additional POS information is up to 12 digits, 60.8 two of them"
        )
    eci = value[VISA_ECI_POSITION - 1 : VISA_ECI_POSITION + 1]
    if not eci:
        return None
    if eci in NOT_ECOMMERCE_ECI:
        return ""
    return AUTHENTICATION_BY_ECI.get(eci, "none")


def build_visa_pos_information(eci: str) -> str:
    """Field 60 of a web purchase with this ECI (the simulator's): terminal type 0, no terminal
    used (1), the positions before 60.8 zero, 60.9 and 60.10 zero."""
    return "01000000" + eci + "00"


def parse_visa_address(value: str | None) -> AvsData | None:
    """The billing address to verify, from field 123; None when absent."""
    return None if value is None else _address_record(value, "123")


@dataclass(frozen=True, slots=True)
class VisaPrivate:
    """What field 126 carries for authhost (see VISA_PRIVATE_SUBFIELDS): its CAVV in base64,
    field 48 SE 43's form, and its CVV2, never shown."""

    cavv: str | None = field(default=None, repr=False)  # 126.9
    cvv2_request: bool = False  # 126.10 is present, whatever its presence indicator says
    cvv2: str | None = field(default=None, repr=False)  # 126.10.3, when 126.10.1 is 1
    cvv2_result_wanted: bool = False  # 126.10.2 is 1
    cvv2_withheld: bool = False  # 126.10.1 is 2 (illegible) or 9 (not on the card)


def parse_visa_private(text: str) -> VisaPrivate:
    """Field 126's bitmap and subfields 1 to 10 (see VISA_PRIVATE_SUBFIELDS): 126.9 and
    126.10 kept, the others checked and read past."""
    head = text[:VISA_PRIVATE_BITMAP_LENGTH]
    if len(head) < VISA_PRIVATE_BITMAP_LENGTH or not _is_hex(head):
        raise SubfieldError("field 126: it starts with its bitmap, 16 hex characters")
    bits = int(head, 16)
    found: dict[int, str] = {}
    at = VISA_PRIVATE_BITMAP_LENGTH
    for number, (size, is_hex) in VISA_PRIVATE_SUBFIELDS.items():
        if not bits >> (64 - number) & 1:
            continue
        value = text[at : at + size]
        if len(value) != size:
            raise SubfieldError(f"field 126: subfield {number} is cut short")
        if is_hex and not _is_hex(value):
            raise SubfieldError(
                f"field 126: subfield {number} is {size} hex characters ({size // 2} bytes)"
            )
        found[number] = value
        at += size
    if at < len(text) and not bits & _AFTER_LAST_READ:
        raise SubfieldError("field 126: data after the subfields its bitmap names")
    cavv = found.get(VISA_CAVV_SUBFIELD)
    request = found.get(VISA_CVV2_SUBFIELD)
    if request is None:
        return VisaPrivate(cavv=_base64_of_hex(cavv))
    presence, response, value = request[0], request[1], request[2:]
    if presence not in CVV2_PRESENCE or response not in CVV2_RESPONSE_TYPES:
        raise SubfieldError(
            "field 126: subfield 10 starts with the CVV2 presence indicator (0, 1, 2 or 9) "
            "and the response type (0 or 1)"
        )
    cvv2 = None
    if presence == CVV2_PRESENT:
        cvv2 = value.lstrip(" ")
        if not (3 <= len(cvv2) <= 4 and cvv2.isdigit() and cvv2.isascii()):
            raise SubfieldError(
                "field 126: subfield 10 ends with the CVV2, 3 or 4 digits right-justified"
            )
    return VisaPrivate(
        cavv=_base64_of_hex(cavv),
        cvv2_request=True,
        cvv2=cvv2,
        cvv2_result_wanted=response == CVV2_RESULT_WANTED,
        cvv2_withheld=presence in CVV2_WITHHELD,
    )


def _base64_of_hex(text: str | None) -> str | None:
    return None if text is None else base64.b64encode(bytes.fromhex(text)).decode("ascii")


def build_visa_private(*, cavv: str | None = None, cvv2: str | None = None) -> str:
    """Field 126 with 126.9 (``cavv``, in base64 as field 48 SE 43 carries it) and 126.10
    (``cvv2``, present, its result asked for in field 44.10; ``""``: not on the card, presence
    9): the simulator's side."""
    bits, parts = 0, []
    if cavv is not None:
        bits |= 1 << (64 - VISA_CAVV_SUBFIELD)
        parts.append(base64.b64decode(cavv, validate=True).hex().upper())
    if cvv2 is not None:
        bits |= 1 << (64 - VISA_CVV2_SUBFIELD)
        presence = CVV2_PRESENT if cvv2 else CVV2_NOT_ON_CARD
        parts.append(presence + CVV2_RESULT_WANTED + cvv2.rjust(4))
    return f"{bits:0{VISA_PRIVATE_BITMAP_LENGTH}X}" + "".join(parts)


class VisaAsked(NamedTuple):
    """Which results a request asked for in Visa's fields: they are answered at Visa's
    positions of field 44, the others where field 48's layout answers them."""

    avs: bool = False  # field 123: 44.2
    cvv2: bool = False  # 126.10 with response type 1: 44.10
    cavv: bool = False  # 126.9: 44.13


NOTHING_ASKED = VisaAsked()


def visa_results_asked(fields: Mapping[str, object]) -> VisaAsked:
    """What a decoded request (its field dict, already checked) asked for in Visa's fields."""
    address, private = fields.get("123"), fields.get("126")
    if private is None:
        return NOTHING_ASKED if address is None else VisaAsked(avs=True)
    found = parse_visa_private(str(private))
    return VisaAsked(address is not None, found.cvv2_result_wanted, found.cavv is not None)


def parse_visa_additional_response(value: str | None) -> dict[str, str]:
    """The results of an answer's field 44 at Visa's positions (the simulator's display):
    "avs", "cvv2", "cavv", those it carries."""
    return {
        name: code
        for name, position in (
            ("avs", VISA_AVS_RESULT_POSITION),
            ("cvv2", VISA_CVV2_RESULT_POSITION),
            ("cavv", VISA_CAVV_RESULT_POSITION),
        )
        if (code := parse_additional_response(value, position))
    }
