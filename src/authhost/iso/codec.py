"""Message bodies to typed views and back: the one place where field numbers meet names.

``decode_message`` turns a frame body into an ``AuthRequest`` or a ``NetworkRequest``;
``encode_response`` builds the answer from the request and a ``Decision``. Every failure to
read a body is a ``FormatError`` that carries the MTI and STAN when they could still be read,
so that the server can answer 30 instead of dropping the link. Error messages name fields,
never their values: a PAN or PIN block never reaches a log through here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from authhost.cards.track2 import Track2Error, read_track
from authhost.frozen import quick_constructor
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import Dialect
from authhost.iso.fieldcodec import FieldDecodeError, FieldEncodeError
from authhost.iso.macs import MacFunction, sign
from authhost.iso.messages import AuthRequest, AvsData, MessageClass, NetworkRequest
from authhost.iso.subfields import (
    AUTHENTICATION_VALUE_SUBELEMENT,
    AVS_REQUEST_SUBELEMENT,
    AVS_RESULT_SUBELEMENT,
    CAVV_RESULT_POSITION,
    CVV2_SUBELEMENT,
    ECOMMERCE_INDICATORS_SUBELEMENT,
    MERCHANT_ADVICE_SUBELEMENT,
    MULTI_PURPOSE_MERCHANT_SUBELEMENT,
    MULTIPLE_COMPLETION_SUBELEMENT,
    NOTHING_ASKED,
    PAN_MAPPING_SUBELEMENT,
    POS_EXTENDED_CONDITIONS_SUBELEMENT,
    VISA_AVS_RESULT_POSITION,
    VISA_CAVV_RESULT_POSITION,
    VISA_CVV2_RESULT_POSITION,
    SubfieldError,
    build_additional_data,
    category_code,
    check_replacement_amounts,
    fits_additional_amounts,
    format_additional_amounts,
    format_additional_response,
    parse_additional_data,
    parse_authentication,
    parse_avs_data,
    parse_completion_sequence,
    parse_original_data,
    parse_pan_mapping,
    parse_stored_credential,
    parse_visa_address,
    parse_visa_eci,
    parse_visa_private,
    visa_results_asked,
)

if TYPE_CHECKING:
    from authhost.auth.decision import Decision

MESSAGE_CLASSES: dict[str, MessageClass] = {
    "0100": MessageClass.AUTHORISATION,
    "0101": MessageClass.AUTHORISATION,
    "0120": MessageClass.AUTHORISATION_ADVICE,
    "0121": MessageClass.AUTHORISATION_ADVICE,
    "0200": MessageClass.FINANCIAL,
    "0201": MessageClass.FINANCIAL,
    "0220": MessageClass.FINANCIAL_ADVICE,
    "0221": MessageClass.FINANCIAL_ADVICE,
    "0400": MessageClass.REVERSAL,
    "0401": MessageClass.REVERSAL,
    "0420": MessageClass.REVERSAL_ADVICE,
    "0421": MessageClass.REVERSAL_ADVICE,
}
NETWORK_MTIS = frozenset({"0800", "0801"})
# Fields an 0810 echoes from its 0800, its 30 answer included: an 0810 without 70 answers no
# network request; 32 (the acquirer whose key a key change changes) and 33 route it back; 63
# is Mastercard's network data, which its 0810s echo as its 0110s do
NETWORK_ECHOED_FIELDS = ("7", "11", "32", "33", "63", "70")
# Mastercard signs on and off by prefix: field 2 of the 0800 is the institution's prefix (an
# ICA or a BIN, never a card number), which the 0810 echoes; a field 2 longer than this could
# be a card number and is never echoed
NETWORK_PREFIX_MAX = 11

# Fields a response echoes from its request when present (ISO 8583:1987 convention), with
# the request view's attribute. None of them holds cardholder data, so a format-error answer
# echoes whichever of them could be read. 32 and 33 are the route back: a switch that
# forwarded the request (33) sends the answer on by them.
ECHOED_FIELDS: dict[str, str] = {
    "3": "processing_code",
    "4": "amount_minor",
    "7": "transmission_time",
    "11": "stan",
    "12": "local_time",
    "13": "local_date",
    "32": "acquirer_id",
    "33": "forwarding_id",
    "37": "rrn",
    "41": "terminal_id",
    "42": "merchant_id",
    "49": "currency",
    "6": "billing_amount_minor",
    "51": "billing_currency",
    # the original a reversal (or completion, increment) names: Mastercard's 0410 and 0430
    # must echo it ("ME"), and a switch matches the answer to the original by it
    "90": "original_data",
}
# Fields a response echoes as the request sent them, with no view attribute: 15, the
# settlement date (MMDD, checked on decode), and 63, Mastercard's network data (financial
# network code and Banknet reference number), which Mastercard's answers must echo: the
# network finds the transaction an answer belongs to by them (docs/iso.md, "Mastercard")
RAW_ECHOED_FIELDS = ("15", "63")
_FORMAT_ERROR_ECHOED = (*ECHOED_FIELDS, *RAW_ECHOED_FIELDS)
# Fields that must be all digits (ISO 8583 type n) when present, in every request (0800s too).
NUMERIC_FIELDS = (
    "2", "3", "4", "6", "7", "11", "12", "13", "14", "15", "18", "19", "22", "23", "25", "32",
    "33", "49", "51", "70",
)  # fmt: skip
_NUMERIC = frozenset(NUMERIC_FIELDS)
_AMOUNTS = ("4", "6")  # echoed as 12 digits
PIN_BLOCK_SIZE = 8  # ISO 9564 formats 0, 1 and 3 (fields 52 and 125); format 4 does not fit
_UNKNOWN_CLASS = MessageClass.UNKNOWN
# one per decoded message: AuthRequest(...) without the frozen __init__'s cost (authhost.frozen)
_new_request = quick_constructor(AuthRequest)


class FormatError(ValueError):
    """A body that is not a valid message. ``mti``/``stan`` are set when they could be read
    and are digits (they are logged); ``echo`` holds the echoed fields as sent, a STAN that is
    not digits included, for the 30 answer the switch matches by it."""

    def __init__(
        self,
        message: str,
        mti: str | None = None,
        stan: str | None = None,
        echo: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.mti = mti
        self.stan = stan
        self.echo: Mapping[str, str] = echo or {}


class ResponseReceived(FormatError):
    """A message that is itself a response (0110, 0810, ...): the host sends no requests, so
    it answers to nothing here, and is neither answered nor a reason to drop the link."""


class EncodeError(ValueError):
    """Values that cannot be encoded in the dialect (names the field, never the value)."""


def response_mti(mti: str) -> str:
    """The response MTI of a request: 0100 -> 0110, 0221 (repeat) -> 0230, 0800 -> 0810.

    ValueError for something that is not a request MTI (not 4 digits, or already a response).
    """
    known = _RESPONSE_MTIS.get(mti)
    if known is not None:
        return known
    if len(mti) != 4 or not (mti.isdigit() and mti.isascii()):
        raise ValueError("an MTI is four digits")
    function = int(mti[2])
    if function % 2:
        raise ValueError(f"MTI {mti} is a response, not a request")
    origin = int(mti[3]) & ~1  # a repeat (xxx1) is answered like its original
    response = f"{mti[:2]}{function + 1}{origin}"
    _RESPONSE_MTIS[mti] = response  # at most 5,000 request MTIs exist
    return response


_RESPONSE_MTIS: dict[str, str] = {}


def decode_fields(body: bytes, dialect: Dialect) -> dict[str, str]:
    """The decoded field dict of a body (any MTI), for the simulator and MAC checks."""
    try:
        return dialect.codec.decode(body)
    except FieldDecodeError as error:
        raise _format_error(str(error), error.partial, error.field) from None


def decode_message(body: bytes, dialect: Dialect) -> AuthRequest | NetworkRequest:
    """The typed view of a request body; FormatError if it is not a valid request
    (ResponseReceived, a FormatError, when it is a response: nothing to answer)."""
    try:
        doc = dialect.codec.decode(body)
    except FieldDecodeError as error:
        raise _format_error(str(error), error.partial, error.field) from None
    mti = doc["t"]
    if "35" in doc and dialect.bcd_track2:  # the separator travels as nibble D
        doc["35"] = doc["35"].replace("D", "=")
    failure = _check(doc, mti)
    if failure is not None:
        raise _format_error(failure, doc, None)
    if mti in NETWORK_MTIS:
        return NetworkRequest(
            mti=mti,
            code=doc.get("70"),
            stan=doc.get("11"),
            transmission_time=doc.get("7"),
            settlement_date=doc.get("15"),
            fields=doc,
        )
    try:
        return _auth_request(doc, mti, dialect.visa_fields)
    except (SubfieldError, ValueError) as error:
        raise _format_error(str(error), doc, None) from None


def _check(doc: dict[str, str], mti: str) -> str | None:
    """Why a decoded dict is not a request we can answer, or None."""
    if len(mti) != 4 or not (mti.isdigit() and mti.isascii()):  # "³" is a digit to Python
        return "the MTI is not four digits"
    if int(mti[2]) % 2:
        return f"MTI {mti} is a response, not a request"
    numeric = _NUMERIC
    for number, value in doc.items():  # a message has fewer fields than the numeric list
        if number in numeric and not (value.isdigit() and value.isascii()):
            return f"field {number} is not numeric"
    return _check_layouts(doc)


def _check_layouts(doc: dict[str, str]) -> str | None:
    """Why a field with a layout beyond digits is malformed, or None: checked in every
    request, network management included, so that what an 0800 carries is as valid as what
    an authorisation does before anything (a log line) uses it. A cutover is logged with its
    settlement date; a reversal reads the original (90) and the remaining amount (95)."""
    settlement = doc.get("15")
    if settlement is not None and not _is_month_day(settlement):
        return "field 15: the settlement date is not a date (MMDD)"
    try:
        original = doc.get("90")
        if original is not None:  # what a reversal, completion or increment names: 42 digits
            parse_original_data(original)
        replacement = doc.get("95")
        if replacement is not None:  # unreadable, a partial reversal would release everything
            check_replacement_amounts(replacement)
    except SubfieldError as error:
        return str(error)
    return None


def _is_month_day(text: str) -> bool:
    """MMDD of some year (29 February included); ``text`` is already ASCII digits."""
    if len(text) != 4:
        return False
    month, day = int(text[:2]), int(text[2:])
    return 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]


_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _auth_request(doc: dict[str, str], mti: str, visa_fields: bool = False) -> AuthRequest:
    get = doc.get
    track2, track1 = get("35"), get("45")
    pan = get("2")
    if pan is None and (track2 is not None or track1 is not None):
        try:  # Visa may send no field 2 beside a track
            track = read_track(track2, track1)
        except Track2Error:
            track = None  # the pipeline declines an unreadable track with its own reason
        pan = track.pan if track is not None else None
    amount = get("4")
    billing, billing_currency = get("6"), get("51")
    if (billing is None) != (billing_currency is None):
        raise ValueError("fields 6 and 51 (cardholder billing amount and currency) go together")
    pin_hex, new_pin_hex, icc = get("52"), get("125"), get("55")
    pin_block = _hex_bytes(pin_hex, "52", PIN_BLOCK_SIZE) if pin_hex is not None else None
    new_pin_block = (  # a PIN change's new PIN, a block like field 52's
        _hex_bytes(new_pin_hex, "125", PIN_BLOCK_SIZE) if new_pin_hex is not None else None
    )
    additional = get("48")
    subelements = parse_additional_data(additional) if additional else _NO_SUBELEMENTS
    message_class = MESSAGE_CLASSES.get(mti, _UNKNOWN_CLASS)
    cvv2 = subelements.get(CVV2_SUBELEMENT)
    authentication = parse_authentication(subelements.get(ECOMMERCE_INDICATORS_SUBELEMENT))
    authentication_value = subelements.get(AUTHENTICATION_VALUE_SUBELEMENT)
    avs = parse_avs_data(subelements.get(AVS_REQUEST_SUBELEMENT), get("120"))
    cvv2_withheld = False
    if visa_fields and ("126" in doc or "60" in doc or "123" in doc):  # Visa's fields
        cvv2, cvv2_withheld, authentication, authentication_value, avs = _with_visa_fields(
            doc, message_class, subelements, cvv2, authentication, authentication_value, avs
        )
    original, replacement = get("90"), get("95")  # checked with the other fields (_check)
    return _new_request(
        mti=mti,
        message_class=message_class,
        pan=pan,
        processing_code=get("3"),
        amount_minor=int(amount) if amount is not None else None,
        transmission_time=get("7"),
        stan=get("11"),
        local_time=get("12"),
        local_date=get("13"),
        expiry=get("14"),
        mcc=get("18"),
        country=get("19"),
        pos_entry_mode=get("22"),
        card_sequence=get("23"),
        pos_condition_code=get("25"),
        acquirer_id=get("32"),
        forwarding_id=get("33"),
        track2=track2,
        track1=track1,
        rrn=get("37"),
        terminal_id=get("41"),
        merchant_id=get("42"),
        merchant_name_location=get("43"),
        cvv2=cvv2,
        cvv2_withheld=cvv2_withheld,
        partial_approval_supported=subelements.get(POS_EXTENDED_CONDITIONS_SUBELEMENT, "")[:1]
        == "1",
        completion_sequence=parse_completion_sequence(
            subelements.get(MULTIPLE_COMPLETION_SUBELEMENT)
        ),
        authentication=authentication,
        authentication_value=authentication_value,
        stored_credential=parse_stored_credential(
            subelements.get(MULTI_PURPOSE_MERCHANT_SUBELEMENT)
        ),
        payment_token=parse_pan_mapping(subelements.get(PAN_MAPPING_SUBELEMENT)),
        avs=avs,
        currency=get("49"),
        billing_amount_minor=int(billing) if billing is not None else None,
        billing_currency=billing_currency,
        pin_block=pin_block,
        security_control=get("53"),
        new_pin_block=new_pin_block,
        icc_data=_hex_bytes(icc, "55") if icc is not None else None,
        original_data=original,
        replacement_amounts=replacement,
        reported_response_code=get("39"),
        reported_approval_code=get("38"),
        fields=doc,
    )


_NO_SUBELEMENTS: dict[str, str] = {}
# Visa's field 60 is read in authorisations, financial requests and their advices (a stand-in
# decision the network reports: its 60.8 says how that purchase was authenticated), where
# Visa's layout is the same (jPOS's Base1Packager and iso8583tools' fields_visa.frm define
# field 60 once, for every message); not in reversals, where an ECI says nothing
_VISA_POS_CLASSES = (
    MessageClass.AUTHORISATION,
    MessageClass.FINANCIAL,
    MessageClass.AUTHORISATION_ADVICE,
    MessageClass.FINANCIAL_ADVICE,
)


def _with_visa_fields(
    doc: Mapping[str, str],
    message_class: MessageClass,
    subelements: Mapping[str, str],
    cvv2: str | None,
    authentication: str,
    authentication_value: str | None,
    avs: AvsData | None,
) -> tuple[str | None, bool, str, str | None, AvsData | None]:
    """The CVV2 (and whether the merchant says it cannot give one), e-commerce
    authentication, CAVV and address to verify, each from Visa's field where the request
    carries it there (60, 123, 126: iso.subfields, docs/iso.md "Visa's fields"), else field
    48's, as given. A value sent in both layouts is refused: which one to check, and where to
    answer, would be a guess."""
    if message_class in _VISA_POS_CLASSES:
        eci = parse_visa_eci(doc.get("60"))
        if eci is not None:
            _one_layout(subelements, ECOMMERCE_INDICATORS_SUBELEMENT, "60 (60.8)")
            authentication = eci
    address = doc.get("123")
    if address is not None:
        _one_layout(subelements, AVS_REQUEST_SUBELEMENT, "123")
        avs = parse_visa_address(address)
    withheld = False
    private = doc.get("126")
    if private is not None:
        visa = parse_visa_private(private)
        if visa.cavv is not None:
            _one_layout(subelements, AUTHENTICATION_VALUE_SUBELEMENT, "126.9")
            authentication_value = visa.cavv
        if visa.cvv2_request:
            _one_layout(subelements, CVV2_SUBELEMENT, "126.10")
            cvv2, withheld = visa.cvv2, visa.cvv2_withheld
    return cvv2, withheld, authentication, authentication_value, avs


def _one_layout(subelements: Mapping[str, str], tag: str, visa_field: str) -> None:
    if tag in subelements:
        raise SubfieldError(
            f"field {visa_field} and field 48 subelement {tag} carry the same value: "
            "one layout per value"
        )


def _is_prefix(value: str) -> bool:
    """Whether an 0800's field 2 is an institution prefix the 0810 may echo: digits, at most
    NETWORK_PREFIX_MAX of them (never what could be a card number)."""
    return len(value) <= NETWORK_PREFIX_MAX and value.isdigit() and value.isascii()


def _hex_bytes(text: str, number: str, size: int = 0) -> bytes:
    """The bytes of a hex field, ``size`` of them when given. bytes.fromhex skips whitespace,
    which would make '01 23 45 67 89AB' a 6-byte PIN block: every character must be hex."""
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"field {number} is not hex data") from None
    if len(data) * 2 != len(text):
        raise ValueError(f"field {number} is not hex data")
    if size and len(data) != size:
        raise ValueError(f"field {number} is not {size} bytes")
    return data


def _format_error(message: str, partial: Mapping[str, str], failed: str | None) -> FormatError:
    """A FormatError with whatever could still be read from a partially decoded dict."""
    mti = partial.get("t") if failed != "t" else None
    if mti is not None and (len(mti) != 4 or not (mti.isdigit() and mti.isascii())):
        mti = None
    network = mti in NETWORK_MTIS
    echoed = NETWORK_ECHOED_FIELDS if network else _FORMAT_ERROR_ECHOED
    echo = {
        number: partial[number] for number in echoed if number != failed and partial.get(number)
    }
    prefix = partial.get("2") if network and failed != "2" else None
    if prefix is not None and _is_prefix(prefix):
        echo["2"] = prefix
    original = echo.get("90")
    if original is not None and not (original.isdigit() and original.isascii()):
        del echo["90"]  # matches nothing, and a BCD answer could not carry it
    stan = echo.get("11")
    if stan is not None and not (stan.isdigit() and stan.isascii()):
        stan = None  # answered as sent (echo), never logged: unchecked peer bytes
    if mti is not None and int(mti[2]) % 2:  # a response, readable or not past its MTI
        return ResponseReceived(message, mti=mti, stan=stan, echo=echo)
    return FormatError(message, mti=mti, stan=stan, echo=echo)


def encode_response(
    request: AuthRequest,
    decision: Decision,
    dialect: Dialect,
    mac: MacFunction | None = None,
    advice: Callable[[str, Sequence[str]], str | None] | None = None,
) -> bytes:
    """The response body: request MTI + 10, echoed fields, 38 on approval, 39, 44 when a
    3-D Secure value was checked (and, asked in Visa's fields, a billing address or a CVV2),
    48 SE 83 when a billing address asked in field 48's layout was, 54 (the balances that
    fit its 12 digits).

    Never carries the PAN, track data, PIN block or ICC data of the request. With ``mac``
    (the security module's MAC of the bytes it is given) the response ends in a MAC field.
    With ``advice`` (``auth.merchant_advice.merchant_advice_code``) a decline carries its
    merchant advice code in field 48 subelement 84.
    """
    doc: dict[str, str] = {"t": response_mti(request.mti)}
    for number, name in ECHOED_FIELDS.items():
        value = getattr(request, name)
        if value is not None:
            doc[number] = f"{value:012d}" if number in _AMOUNTS else value
    fields = request.fields
    for number in RAW_ECHOED_FIELDS:  # two dict lookups an answer
        raw = fields.get(number)
        if raw is not None:
            doc[number] = raw
    if decision.approved_amount_minor is not None:  # a partial approval: what was approved
        doc["4"] = f"{decision.approved_amount_minor:012d}"
    if decision.approved and decision.approval_code:
        # ans 6, space-filled: a network's shorter code (an advice's "12345 ", journalled
        # without its spaces) goes back as it came, rather than failing the answer
        doc["38"] = decision.approval_code.ljust(6)
    doc["39"] = code = str(decision.response_code)
    answered: dict[str, str] = {}  # field 48 subelements of the answer
    results: dict[int, str] = {}  # field 44: what was checked, for the merchant to rely on
    avs, cvv2, cavv = decision.avs_result, decision.cvv2_result, decision.cavv_result
    # each result is answered where it was asked: in Visa's field 44 positions for what came
    # in Visa's fields, else where field 48's layout answers it (a CVV2 result: nowhere)
    asked = dialect.visa_fields and (avs or cvv2 or cavv)
    visa = visa_results_asked(request.fields) if asked else NOTHING_ASKED
    if avs:  # the billing address was verified
        if visa.avs:
            results[VISA_AVS_RESULT_POSITION] = avs
        else:
            answered[AVS_RESULT_SUBELEMENT] = avs
    if cvv2 and visa.cvv2:
        results[VISA_CVV2_RESULT_POSITION] = cvv2
    if cavv:  # the 3-D Secure value was checked
        results[VISA_CAVV_RESULT_POSITION if visa.cavv else CAVV_RESULT_POSITION] = cavv
    if advice is not None and not decision.approved:
        advised = advice(code, decision.reason_codes)
        if advised is not None:
            answered[MERCHANT_ADVICE_SUBELEMENT] = advised
    if answered:  # led by the request's transaction category code, as Mastercard's DE 48 is
        doc["48"] = build_additional_data(answered, category_code(fields.get("48")))
    if results:
        doc["44"] = format_additional_response(results)
    if decision.balances:  # an amount past 12 digits is left out (the server logs it)
        shown = [b for b in decision.balances if fits_additional_amounts(b)]
        if shown:
            doc["54"] = format_additional_amounts(shown)
    if decision.icc_response:  # the issuer's chip data (ARPC), never the card's
        doc["55"] = decision.icc_response.hex().upper()
    return _encode(doc, dialect, mac)


def encode_network_response(
    request: NetworkRequest,
    response_code: ResponseCode | str,
    dialect: Dialect,
    mac: MacFunction | None = None,
) -> bytes:
    """The 0810 (the 0801's too) answer: echoes 7, 11, 32, 33, 63 and 70, and field 2 when it
    is a prefix (a sign-on by prefix), with 39."""
    doc: dict[str, str] = {"t": response_mti(request.mti)}
    fields = request.fields
    for number in NETWORK_ECHOED_FIELDS:
        value = fields.get(number)
        if isinstance(value, str):  # checked by decode_message: digits where they must be
            doc[number] = value
    prefix = fields.get("2")
    if isinstance(prefix, str) and _is_prefix(prefix):
        doc["2"] = prefix
    if request.transmission_time is not None:  # a view built without its field dict
        doc["7"] = request.transmission_time
    if request.stan is not None:
        doc["11"] = request.stan
    if request.code is not None:
        doc["70"] = request.code
    doc["39"] = str(response_code)
    return _encode(doc, dialect, mac)


def encode_format_error(
    error: FormatError, dialect: Dialect, mac: MacFunction | None = None
) -> bytes | None:
    """A response with 30 for a body that could not be read; None without MTI and STAN
    (a STAN that is not digits is echoed as sent: the switch matches the answer by it)."""
    stan = error.echo.get("11", error.stan)
    if error.mti is None or stan is None:
        return None
    try:
        mti = response_mti(error.mti)
    except ValueError:
        return None  # a response sent to us: there is nothing to answer
    code = str(ResponseCode.FORMAT_ERROR)
    for doc in ({"t": mti, **error.echo, "39": code}, {"t": mti, "11": stan, "39": code}):
        try:
            return _encode(doc, dialect, mac)
        except EncodeError:
            continue  # an echoed value the dialect cannot carry: answer with less
    return None


def encode_request(
    fields: Mapping[str, str | bytes], dialect: Dialect, mac: MacFunction | None = None
) -> bytes:
    """A message body from field values ("t" = MTI, "2".."128"), for the simulator.

    Binary fields (52 PIN block, 55 ICC data, 64/128 MAC) may be given as bytes or as hex
    text; other fields as str (bytes are read as ASCII). Track 2's "=" becomes the D nibble
    where the dialect packs it in BCD. With ``mac`` the message is signed
    (field 64, or 128 with a secondary bitmap).
    """
    doc: dict[str, str] = {}
    binary = dialect.binary_fields
    for number, value in fields.items():
        if isinstance(value, bytes | bytearray):
            doc[number] = value.hex().upper() if number in binary else value.decode("ascii")
        else:
            doc[number] = value
    if "35" in doc and dialect.bcd_track2:
        doc["35"] = doc["35"].replace("=", "D")  # BCD track 2: the separator is nibble D
    return _encode(doc, dialect, mac)


def _encode(doc: dict[str, str], dialect: Dialect, mac: MacFunction | None = None) -> bytes:
    try:
        if mac is not None:
            return sign(doc, dialect, mac)
        return dialect.codec.encode(doc)
    except FieldEncodeError as error:
        raise EncodeError(str(error)) from None
