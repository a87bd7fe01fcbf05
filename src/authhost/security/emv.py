"""EMV chip cryptograms: the ARQC a card sends with an online request, and the ARPC it gets back.

The card proves it is genuine (not a copy of its magnetic stripe) by a MAC over the
transaction data under a key only it and the issuer can derive from the issuer master key for
application cryptograms (IMK-AC). The issuer recomputes it; the answer carries an ARPC the card
checks in turn, so a forged approval is refused by the card. Three cryptogram versions:

* CVN 10: ICC master key by option A, no session key, Visa padding (zeros), and the 4 bytes
  of card verification results from the issuer application data; ARPC method 1 (8 bytes,
  with the 2-byte authorisation response code).
* CVN 18: ICC master key by option B, the EMV common session key from the ATC, EMV padding
  (0x80), the whole issuer application data; ARPC method 2 (4 bytes, with the 4-byte card
  status update).
* Visa CVN 22: as CVN 18 for the ARQC and the ARPC (its issuer scripts differ).
* Mastercard CVN 16 (M/Chip 4): ICC master key by option A, the session key from the ATC and
  the unpredictable number, EMV padding, the 6 bytes of card verification results from the
  issuer application data; ARPC method 1 under the ICC master key.
* Mastercard CVN 17: as CVN 16, with the card's offline counters (the 8 bytes of the issuer
  application data after the CVR and the 2-byte dynamic number) in the cryptogram too.
* Mastercard CVN 20 and 21: as CVN 16 and 17, but the session key is the EMV common session
  key from the ATC alone, and the ARPC (method 1) is made under that session key.

EMV Book 2 (A1.4, A1.3), Visa's VIS and Mastercard's M/Chip define them;
``tests/test_security_oracles.py`` checks every derivation and MAC against pyemv, an
independent implementation, on random keys and data, and against the published CVN 18 example.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from dataclasses import dataclass, field

from authhost.security.blockcipher import tdes_ecb_encrypt, xor
from authhost.security.keys import adjust_des_parity
from authhost.security.mac import retail_mac

SUPPORTED_CVNS = (10, 16, 17, 18, 20, 21, 22)
ARPC_METHOD_2 = frozenset({18, 22})  # the others: method 1
MASTERCARD_CVNS = frozenset({16, 17, 20, 21})

# tags of field 55 this module reads by name
ARQC = "9F26"
AMOUNT = "9F02"
CURRENCY = "5F2A"
DATE = "9A"
ATC = "9F36"
UNPREDICTABLE = "9F37"
IAD = "9F10"
PSN = "5F34"
# the tags the cryptogram covers (CDOL1 of every supported version), in order, with lengths
_COVERED = (
    ("9F02", 6),  # amount, authorised
    ("9F03", 6),  # amount, other
    ("9F1A", 2),  # terminal country
    ("95", 5),  # terminal verification results
    ("5F2A", 2),  # transaction currency
    ("9A", 3),  # transaction date
    ("9C", 1),  # transaction type
    ("9F37", 4),  # unpredictable number
    ("82", 2),  # application interchange profile
    ("9F36", 2),  # application transaction counter
)
_CSU_APPROVED = bytes.fromhex("00800000")  # card status update: issuer approves online
_CSU_DECLINED = bytes(4)


class ChipDataError(ValueError):
    """Field 55 does not hold what a cryptogram check needs (the message is safe to log)."""


def parse_tlv(data: bytes) -> dict[str, bytes]:
    """BER-TLV of field 55 as {tag hex: value}; constructed tags are not descended into."""
    tags: dict[str, bytes] = {}
    i, n = 0, len(data)
    while i < n:
        if data[i] in (0x00, 0xFF):  # padding between objects
            i += 1
            continue
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:  # multi-byte tag
            while i < n and data[i] & 0x80:
                i += 1
            i += 1
        if i > n:
            raise ChipDataError("field 55: a tag runs past the end")
        tag = data[start:i].hex().upper()
        if i >= n:
            raise ChipDataError(f"field 55: tag {tag} has no length")
        length = data[i]
        i += 1
        if length & 0x80:
            size = length & 0x7F
            if not 1 <= size <= 2 or i + size > n:
                raise ChipDataError(f"field 55: tag {tag} has a bad length")
            length = int.from_bytes(data[i : i + size], "big")
            i += size
        if i + length > n:
            raise ChipDataError(f"field 55: tag {tag} runs past the end")
        tags[tag] = data[i : i + length]
        i += length
    return tags


def icc_master_key_a(imk: bytes, pan: str, psn: str) -> bytes:
    """EMV option A: the rightmost 16 digits of PAN || PSN, and their complement, under IMK."""
    y = bytes.fromhex((pan + psn)[-16:].zfill(16))
    return adjust_des_parity(tdes_ecb_encrypt(imk, y + xor(y, b"\xff" * 8)))


def icc_master_key_b(imk: bytes, pan: str, psn: str) -> bytes:
    """EMV option B: option A for PANs of up to 16 digits; else 16 decimal digits of the
    SHA-1 of PAN || PSN (digits first, then letters a-f as 0-5)."""
    if len(pan) <= 16:
        return icc_master_key_a(imk, pan, psn)
    digits = pan + psn
    digest = hashlib.sha1(bytes.fromhex(("0" + digits) if len(digits) % 2 else digits)).hexdigest()
    decimal = "".join(d for d in digest if d.isdigit())[:16]
    if len(decimal) < 16:
        letters = "".join(d for d in digest if not d.isdigit())[: 16 - len(decimal)]
        decimal += letters.translate(str.maketrans("abcdef", "012345"))
    y = bytes.fromhex(decimal)
    return adjust_des_parity(tdes_ecb_encrypt(imk, y + xor(y, b"\xff" * 8)))


def common_session_key(icc_mk: bytes, r: bytes) -> bytes:
    """EMV common session key derivation (Book 2, A1.3) from the 8-byte diversifier ``r``:
    ATC || 00 * 6 (Visa CVN 18), ATC || 00 00 || unpredictable number (Mastercard)."""
    left = r[:2] + b"\xf0" + r[3:]
    right = r[:2] + b"\x0f" + r[3:]
    return adjust_des_parity(tdes_ecb_encrypt(icc_mk, left + right, keep=False))


@dataclass(frozen=True, slots=True)
class Cryptogram:
    """A checked ARQC and what answering it takes (the ARPC key stays in this object, in
    memory, for the few microseconds until the ARPC is made; it is never stored)."""

    cvn: int
    arqc: bytes
    valid: bool
    _arpc_key: bytes = field(repr=False)  # never in a log line or an error
    atc: int = 0  # the card's application transaction counter (9F36): never used twice

    def issuer_authentication_data(self, approved: bool, response_code: str) -> bytes:
        """Tag 91's value: ARPC || ARC (CVN 10) or ARPC || CSU (CVN 18)."""
        if self.cvn not in ARPC_METHOD_2:  # method 1
            arc = response_code.encode("ascii")[:2].rjust(2, b"0")
            arpc = tdes_ecb_encrypt(self._arpc_key, xor(self.arqc, arc + bytes(6)), keep=False)
            return arpc + arc
        csu = _CSU_APPROVED if approved else _CSU_DECLINED
        mac = retail_mac(self._arpc_key, self.arqc + csu, padding=2, length=4, keep=False)
        return mac + csu


def check_arqc(imk_ac: bytes, pan: str, psn: str, tags: dict[str, bytes], cvn: int) -> Cryptogram:
    """Recompute the ARQC of field 55's ``tags`` and compare it with the card's."""
    arqc = tags.get(ARQC)
    if arqc is None or len(arqc) != 8:
        raise ChipDataError("field 55: no 8-byte ARQC (9F26)")
    expected, key = _application_cryptogram(imk_ac, pan, psn, tags, cvn)
    atc = int.from_bytes(tags[ATC], "big")
    return Cryptogram(cvn, arqc, hmac.compare_digest(expected, arqc), key, atc)


def make_arqc(imk_ac: bytes, pan: str, psn: str, tags: dict[str, bytes], cvn: int) -> bytes:
    """The ARQC a genuine card would send with ``tags`` (the simulator's chip cards)."""
    return _application_cryptogram(imk_ac, pan, psn, tags, cvn)[0]


def _application_cryptogram(
    imk_ac: bytes, pan: str, psn: str, tags: dict[str, bytes], cvn: int
) -> tuple[bytes, bytes]:
    """(the cryptogram over the covered tags, the key its ARPC is made with)."""
    if cvn not in SUPPORTED_CVNS:
        raise ChipDataError(f"cryptogram version {cvn} is not supported")
    missing = [tag for tag, _ in _COVERED if tag not in tags] + ([IAD] if IAD not in tags else [])
    if missing:
        raise ChipDataError(f"field 55 lacks tag(s) {', '.join(missing)}")
    for tag, size in _COVERED:
        if len(tags[tag]) != size:
            raise ChipDataError(f"field 55: tag {tag} is {len(tags[tag])} bytes, not {size}")
    iad = tags[IAD]
    covered = b"".join(tags[tag] for tag, _ in _COVERED)
    if cvn == 10:
        if len(iad) < 7:
            raise ChipDataError("field 55: the issuer application data (9F10) is too short")
        key = icc_master_key_a(imk_ac, pan, psn)
        return retail_mac(key, covered + iad[3:7], padding=1, keep=False), key
    if cvn in MASTERCARD_CVNS:
        counted = cvn in (17, 21)  # the offline counters after the CVR and the dynamic number
        if len(iad) < (18 if counted else 8):
            raise ChipDataError("field 55: the issuer application data (9F10) is too short")
        master = icc_master_key_a(imk_ac, pan, psn)
        if cvn in (16, 17):  # Mastercard's session key, from the ATC and the unpredictable number
            session = common_session_key(master, tags[ATC] + bytes(2) + tags[UNPREDICTABLE])
            arpc_key = master
        else:  # the EMV common session key from the ATC, which the ARPC is made under too
            session = arpc_key = common_session_key(master, tags[ATC] + bytes(6))
        data = covered + iad[2:8] + (iad[10:18] if counted else b"")
        return retail_mac(session, data, padding=2, keep=False), arpc_key
    key = common_session_key(icc_master_key_b(imk_ac, pan, psn), tags[ATC] + bytes(6))
    return retail_mac(key, covered + iad, padding=2, keep=False), key


def pan_sequence_number(tag_5f34: bytes | None, field_23: str | None) -> str:
    """The PAN sequence number, 2 digits: tag 5F34 (BCD), else field 23's last two, else 00.
    The card's keys are derived from PAN and PSN, so the wrong one fails every cryptogram."""
    if tag_5f34:
        return tag_5f34[:1].hex()
    if field_23 and field_23.isdigit():
        return field_23[-2:].zfill(2)
    return "00"


def days_from(tag_9a: bytes, now: float) -> int | None:
    """How many days the terminal's transaction date (9A, YYMMDD) is from ``now`` (UTC); None
    when it is not a date."""
    try:
        text = tag_9a.hex()
        day = datetime.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None
    today = datetime.datetime.fromtimestamp(now, datetime.UTC).date()
    return abs((day - today).days)


def encode_tlv(tags: dict[str, bytes]) -> bytes:
    """BER-TLV of {tag hex: value} (values under 128 bytes: all that field 55 carries here)."""
    out = bytearray()
    for tag, value in tags.items():
        if len(value) > 127:
            raise ChipDataError(f"tag {tag}: values of 128 bytes or more are not encoded")
        out += bytes.fromhex(tag) + bytes([len(value)]) + value
    return bytes(out)


def issuer_authentication_tlv(value: bytes) -> bytes:
    """Field 55 of the answer: tag 91 (issuer authentication data)."""
    return encode_tlv({"91": value})
