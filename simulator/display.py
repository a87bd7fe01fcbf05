"""Messages shown field by field for a person, with cardholder data masked.

The PAN and track 2 show first six and last four digits, the PIN blocks (field 52, and a PIN
change's new one in field 125), the CVV2 and the CAVV (field 48 or Visa's field 126) never
show, and the response code comes with its meaning from ``authhost.iso.codes``.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from authhost.admin.totals import major_text
from authhost.cards.avs import AvsResult
from authhost.iso.codes import meaning
from authhost.iso.dialects import Dialect
from authhost.iso.subfields import (
    AUTHENTICATION_VALUE_SUBELEMENT,
    AVS_RESULT_SUBELEMENT,
    CVV2_RESULTS,
    CVV2_SUBELEMENT,
    MERCHANT_ADVICE_SUBELEMENT,
    PAN_MAPPING_SUBELEMENT,
    SubfieldError,
    category_code,
    parse_additional_amounts,
    parse_additional_data,
    parse_additional_response,
    parse_pan_mapping,
    parse_visa_additional_response,
    parse_visa_eci,
    parse_visa_private,
)
from authhost.security.cavv import CAVV_RESULTS
from authhost.security.emv import ChipDataError, parse_tlv
from authhost.security.emv_scripts import SCRIPT_TEMPLATE_2, describe_template
from authhost.security.masking import mask_pan, mask_pans_in_text

# Mastercard's merchant advice codes (field 48 SE 84 of an answer: may the merchant retry)
_ADVICE = {
    "01": "new account information available",
    "02": "try again later",
    "03": "do not try again",
    "21": "payment cancelled by the cardholder",
}


def shown(number: str, value: object) -> str:
    """The value of a field as it may be displayed."""
    text = value.hex().upper() if isinstance(value, bytes) else str(value)
    if number == "2":
        return mask_pan(text) or ""
    if number == "35":
        pan, _, rest = text.partition("=") if "=" in text else text.partition("D")
        return f"{mask_pan(pan)}={rest[:7]}*** (verification value hidden)"
    if number == "52":
        return f"<encrypted PIN block, {len(text) // 2} bytes>"
    if number == "125":  # a PIN change's new PIN block (authhost.iso.codec)
        return f"<encrypted new PIN block, {len(text) // 2} bytes>"
    if number == "48":
        try:
            elements = parse_additional_data(text)
        except SubfieldError:
            return "<additional data>"
        tcc = category_code(text)  # Mastercard's transaction category code leads
        return " ".join(
            ([f"TCC:{tcc}"] if tcc else [])
            + [
                f"{tag}:{_subelement(tag, value)}"
                + (
                    f" ({_ADVICE.get(value, 'advice')})"
                    if tag == MERCHANT_ADVICE_SUBELEMENT
                    else ""
                )
                for tag, value in elements.items()
            ]
        )
    if number == "39":
        return f"{text} ({meaning(text)})"
    if number == "44":
        return _additional_response(text)
    if number == "60":
        try:
            eci = parse_visa_eci(text)
        except SubfieldError:
            return text
        return f"{text} (e-commerce: {eci or 'not e-commerce'})" if eci is not None else text
    if number == "126":
        return _visa_private(text)
    if number == "55":
        return _chip_answer(text)
    if number == "54":
        try:
            balances = parse_additional_amounts(text)
        except (SubfieldError, ValueError):
            return "<additional amounts>"
        kinds = {"01": "ledger", "02": "available"}
        return "; ".join(
            f"{kinds.get(b.amount_type, b.amount_type)} {major_text(b.amount_minor, b.currency)} "
            f"({b.currency})"
            for b in balances
        )
    return mask_pans_in_text(text)


def _subelement(tag: str, value: str) -> str:
    """A field 48 subelement as shown: the CVV2 and the CAVV hidden, a token number masked."""
    if tag == CVV2_SUBELEMENT:
        return "***"
    if tag == AUTHENTICATION_VALUE_SUBELEMENT:
        return "<CAVV, hidden>"
    if tag == PAN_MAPPING_SUBELEMENT:
        try:
            token = parse_pan_mapping(value)
        except SubfieldError:
            return "<token data>"
        assert token is not None
        return f"token {mask_pan(token.number)} (requestor {token.requestor_id or '?'})"
    return value


def _visa_private(text: str) -> str:
    """Visa's field 126 as shown: which of 126.9 and 126.10 it carries, their values hidden."""
    try:
        found = parse_visa_private(text)
    except SubfieldError:
        return "<Visa private-use fields>"
    parts = ["126.9 CAVV <hidden>"] if found.cavv is not None else []
    if found.cvv2_request:
        cvv2 = "***" if found.cvv2 is not None else "none"
        asked = "result asked" if found.cvv2_result_wanted else "no result asked"
        parts.append(f"126.10 CVV2 {cvv2} ({asked})")
    return "; ".join(parts) or "<no subfield authhost reads>"


def _additional_response(text: str) -> str:
    """An answer's field 44 in words: Visa's 44.2, 44.10 and 44.13, or the CAVV result at
    position 13 (an answer to field 48)."""
    visa = parse_visa_additional_response(text)
    words = []
    if "avs" in visa:
        words.append(f"address {visa['avs']} ({AVS_RESULTS.get(visa['avs'], 'unknown')})")
    if "cvv2" in visa:
        words.append(f"CVV2 {visa['cvv2']} ({CVV2_RESULTS.get(visa['cvv2'], 'unknown')})")
    cavv = visa.get("cavv") or parse_additional_response(text)
    if cavv:
        words.append(f"CAVV result {cavv} ({CAVV_RESULTS.get(cavv, 'unknown')})")
    return "; ".join(words) or text


def _chip_answer(text: str) -> str:
    """An answer's field 55 in words: the ARPC (tag 91) and the issuer script's commands
    (tag 72); anything else (a request's chip data) as hex."""
    try:
        tags = parse_tlv(bytes.fromhex(text))
    except (ChipDataError, ValueError):
        return text
    if "91" not in tags and SCRIPT_TEMPLATE_2 not in tags:
        return text
    parts = [f"ARPC {tags['91'].hex().upper()}"] if "91" in tags else []
    if SCRIPT_TEMPLATE_2 in tags:
        commands = ", ".join(describe_template(tags[SCRIPT_TEMPLATE_2])) or "no command"
        parts.append(f"issuer script for the chip: {commands}")
    return "; ".join(parts)


def message_table(title: str, fields: Mapping[str, object], dialect: Dialect) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("field", justify="right")
    table.add_column("name")
    table.add_column("value")
    for number in sorted((n for n in fields if n not in ("p", "1", "h")), key=_order):
        name = "Message type" if number == "t" else str(dialect.spec[number].get("desc", ""))
        table.add_row("MTI" if number == "t" else number, name, shown(number, fields[number]))
    return table


# what each AVS result code of an answer (field 48 SE 83) says, for the person at the terminal
AVS_RESULTS = {
    AvsResult.BOTH_MATCH: "street and postcode match",
    AvsResult.ADDRESS_ONLY: "street matches, postcode does not",
    AvsResult.POSTCODE_ONLY: "postcode matches, street does not",
    AvsResult.NO_MATCH: "does not match",
    AvsResult.UNAVAILABLE: "not on file",
}


def _avs_result(field_48: str) -> str:
    try:
        return parse_additional_data(field_48).get(AVS_RESULT_SUBELEMENT, "") if field_48 else ""
    except (SubfieldError, ValueError):
        return ""


def outcome(answer: Mapping[str, str]) -> str:
    """One line for the person at the terminal."""
    code = answer.get("39", "")
    if not code:
        return f"answered {answer.get('t', '?')} without a response code"
    verdict = {"00": "APPROVED", "10": "PARTLY APPROVED", "85": "VERIFIED"}.get(code, "DECLINED")
    line = f"{verdict}: {code} {meaning(code)}"
    if code == "10" and str(answer.get("4", "")).isdigit():  # collect the rest another way
        # what was approved, in the request's currency (a partial approval is never converted)
        line += f", {major_text(int(answer['4']), answer.get('49'))} approved"
    if answer.get("38"):
        line += f", approval code {answer['38']}"
    visa = parse_visa_additional_response(str(answer.get("44", "")))
    cavv = visa.get("cavv") or parse_additional_response(str(answer.get("44", "")))
    if cavv:
        line += f", 3-D Secure value {CAVV_RESULTS.get(cavv, cavv)}"
    if "cvv2" in visa:
        line += f", CVV2 {CVV2_RESULTS.get(visa['cvv2'], visa['cvv2'])}"
    avs = visa.get("avs") or _avs_result(str(answer.get("48", "")))
    if avs:
        line += f", address {AVS_RESULTS.get(avs, avs)} ({avs})"
    try:
        balances = parse_additional_amounts(answer.get("54", ""))
    except (SubfieldError, ValueError):
        balances = []
    for balance in balances:
        if balance.amount_type == "02":
            available = major_text(balance.amount_minor, balance.currency)
            line += f", available {available} ({balance.currency})"
    return line


def _order(number: str) -> int:
    return -1 if number == "t" else int(number)
