"""Layouts inside single fields: 48 (private subelements), 54 (additional amounts), 90, 95.

pyiso8583 splits a message into fields; these few fields have an inner layout that it does
not know. Each layout is read and written here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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


# Field 44 (additional response data) of an answer, after Visa's layout: position 13 is the
# CAVV results code (security.cavv); the positions before it are left blank
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
    record = record or ""
    if len(record) > AVS_POSTCODE_LENGTH + AVS_STREET_MAX:
        raise ValueError(
            f"field 120: the address is a postcode ({AVS_POSTCODE_LENGTH}) and a street "
            f"address (up to {AVS_STREET_MAX})"
        )
    return AvsData(record[:AVS_POSTCODE_LENGTH].strip(), record[AVS_POSTCODE_LENGTH:].strip())


def build_avs_data(avs: AvsData) -> str:
    """Field 120 for ``avs`` (the simulator's side of ``parse_avs_data``)."""
    return (
        avs.postcode[:AVS_POSTCODE_LENGTH].ljust(AVS_POSTCODE_LENGTH) + avs.street[:AVS_STREET_MAX]
    )


def format_additional_response(*, cavv_result: str) -> str:
    """Field 44 of an answer carrying the CAVV results code (see CAVV_RESULT_POSITION)."""
    return " " * (CAVV_RESULT_POSITION - 1) + cavv_result


def parse_additional_response(value: str | None) -> str:
    """The CAVV results code of an answer's field 44; "" when it carries none."""
    return (value or "")[CAVV_RESULT_POSITION - 1 : CAVV_RESULT_POSITION].strip()


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
