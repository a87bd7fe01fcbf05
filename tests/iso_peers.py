"""Independent ISO 8583 peers for the tests: encoders and decoders that share no code with
authhost's, so a test that passes means a switch following docs/iso.md is understood.

The ASCII dialects use pyiso8583's own specs (field 53 as docs/iso.md describes it), the
EBCDIC one the same with every character in code page 500. The BCD
dialect is packed and unpacked by hand below, field by field from jPOS's ISO87BPackager, the
way a jPOS switch puts the bytes on the wire (not with pyiso8583, which authhost uses). Binary
fields are hex text both ways; track 2's separator nibble D reads back as "=", as jPOS reads
it.
(This module holds no tests of its own.)
"""

from __future__ import annotations

import copy
from typing import Any

import iso8583
import iso8583.specs

_KSN_FIELD = {"data_enc": "ascii", "len_enc": "ascii", "len_type": 2, "max_len": 48, "desc": "KSN"}
PEER_SPECS: dict[str, dict[str, Any]] = {
    "ascii-binary-bitmap": {**copy.deepcopy(iso8583.specs.default), "53": _KSN_FIELD},
    "ascii-hex-bitmap": {**copy.deepcopy(iso8583.specs.default_ascii), "53": _KSN_FIELD},
}
# The EBCDIC dialect: the binary-bitmap one with every character in code page 500.
PEER_SPECS["ebcdic-binary-bitmap"] = {
    key: {name: "cp500" if value == "ascii" else value for name, value in field.items()}
    for key, field in PEER_SPECS["ascii-binary-bitmap"].items()
}
BCD_DIALECT = "bcd-binary-bitmap"
PEER_DIALECTS = sorted([*PEER_SPECS, BCD_DIALECT])

# jPOS ISO87BPackager, one entry per field: IFB_NUMERIC -> ("N", digits),
# IFB_LLNUM -> ("LLN", most digits), IF_CHAR -> ("C", chars), IFB_LLCHAR / IFB_LLLCHAR ->
# ("LLC", most) / ("LLLC", most), IFB_BINARY -> ("B", bytes). authhost's documented changes:
# 53 is ("LLC", 48), 55 is ("LLLB", 255), and the IFB_AMOUNTs (28-31, 97) are raw bytes.
_JPOS_87B: dict[int, tuple[str, int]] = {2: ("LLN", 19), 3: ("N", 6), 7: ("N", 10), 11: ("N", 6),
    12: ("N", 6), 27: ("N", 1), 34: ("LLC", 28), 35: ("LLN", 37), 36: ("LLLC", 104),
    37: ("C", 12), 38: ("C", 6), 39: ("C", 2), 40: ("C", 3), 41: ("C", 8), 42: ("C", 15),
    43: ("C", 40), 44: ("LLC", 25), 45: ("LLC", 76), 52: ("B", 8), 53: ("LLC", 48),
    54: ("LLLC", 120), 55: ("LLLB", 255), 64: ("B", 8), 65: ("B", 1), 66: ("N", 1),
    67: ("N", 2), 73: ("N", 6), 90: ("N", 42), 91: ("C", 1), 92: ("C", 2), 93: ("C", 6),
    94: ("C", 7), 95: ("C", 42), 96: ("B", 16), 97: ("B", 9), 98: ("C", 25), 101: ("LLC", 17),
    104: ("LLLC", 100), 128: ("B", 8)}  # fmt: skip
_JPOS_87B.update({n: ("N", 12) for n in (4, 5, 6, 82, 83, 84, 85)})
_JPOS_87B.update({n: ("N", 8) for n in (8, 9, 10)})
_JPOS_87B.update({n: ("N", 4) for n in (13, 14, 15, 16, 17, 18, 71, 72)})
_JPOS_87B.update({n: ("N", 3) for n in (19, 20, 21, 22, 23, 24, 68, 69, 70)})
_JPOS_87B.update({n: ("N", 2) for n in (25, 26)})
_JPOS_87B.update({n: ("B", 5) for n in (28, 29, 30, 31)})
_JPOS_87B.update({n: ("LLN", 11) for n in (32, 33, 99, 100)})
_JPOS_87B.update({n: ("LLLC", 999) for n in [46, 47, 48, *range(56, 64), *range(105, 128)]})
_JPOS_87B.update({n: ("C", 3) for n in (49, 50, 51)})
_JPOS_87B.update({n: ("N", 10) for n in range(74, 82)})
_JPOS_87B.update({n: ("N", 16) for n in range(86, 90)})
_JPOS_87B.update({n: ("LLC", 28) for n in (102, 103)})


def _bcd(digits: str, left_pad: bool, pad: str = "0") -> bytes:
    """jPOS's BCDInterpreter: two digits a byte, "=" as nibble D, odd lengths padded with 0
    (or ``pad``: many other switches pad with F)."""
    nibbles = digits.replace("=", "D")
    if len(nibbles) % 2:
        nibbles = pad + nibbles if left_pad else nibbles + pad
    return bytes.fromhex(nibbles)


def _unbcd(data: bytes, digits: int, left_pad: bool) -> str:
    text = data.hex().upper()
    return text[len(text) - digits :] if left_pad else text[:digits]


def _bcd_length(value: int, width: int) -> bytes:
    return bytes.fromhex(f"{value:0{2 * width}d}")


def bcd_encode(fields: dict[str, Any], pad: str = "0") -> bytes:
    """jPOS's ISO87BPackager; ``pad`` is the nibble after an odd count of LLNUM digits."""
    numbers = sorted(int(key) for key in fields if key not in ("t", "p", "1"))
    bitmap = 0
    for number in numbers:
        bitmap |= 1 << (128 - number)
    if numbers and numbers[-1] > 64:
        bitmap |= 1 << 127
        bitmaps = bitmap.to_bytes(16, "big")
    else:
        bitmaps = (bitmap >> 64).to_bytes(8, "big")
    out = bytearray(_bcd(fields["t"], left_pad=True) + bitmaps)
    for number in numbers:
        kind, size = _JPOS_87B[number]
        value = fields[str(number)]
        if kind == "N":
            out += _bcd(value.rjust(size, "0"), left_pad=True)
        elif kind == "LLN":
            out += _bcd_length(len(value), 1) + _bcd(value, left_pad=False, pad=pad)
        elif kind == "C":
            out += value.ljust(size).encode("ascii")
        elif kind in ("LLC", "LLLC"):
            out += _bcd_length(len(value), len(kind) - 2) + value.encode("ascii")
        else:
            data = value if isinstance(value, bytes) else bytes.fromhex(value)
            out += data if kind == "B" else _bcd_length(len(data), 2) + data
    return bytes(out)


def bcd_decode(body: bytes) -> dict[str, str]:
    doc = {"t": body[:2].hex()}
    bitmap = int.from_bytes(body[2:10], "big")
    pos, count = 10, 64
    if bitmap >> 63:
        bitmap = bitmap << 64 | int.from_bytes(body[10:18], "big")
        pos, count = 18, 128
    for number in range(2, count + 1):
        if not bitmap >> (count - number) & 1:
            continue
        kind, size = _JPOS_87B[number]
        if kind == "N":
            width = (size + 1) // 2
            doc[str(number)] = _unbcd(body[pos : pos + width], size, left_pad=True)
        elif kind == "LLN":
            digits = int(body[pos : pos + 1].hex())
            width = (digits + 1) // 2
            value = _unbcd(body[pos + 1 : pos + 1 + width], digits, left_pad=False)
            doc[str(number)] = value.replace("D", "=") if number == 35 else value  # track 2
            pos += 1
        elif kind == "C":
            width = size
            doc[str(number)] = body[pos : pos + width].decode("ascii")
        elif kind == "B":
            width = size
            doc[str(number)] = body[pos : pos + width].hex().upper()
        else:
            prefix = 1 if kind == "LLC" else 2
            width = int(body[pos : pos + prefix].hex())
            pos += prefix
            data = body[pos : pos + width]
            doc[str(number)] = data.hex().upper() if kind == "LLLB" else data.decode("ascii")
        pos += width
    assert pos == len(body), f"{len(body) - pos} bytes after the last field"
    return doc


def peer_encode(fields: dict[str, Any], dialect: str) -> bytes:
    """How the independent peer puts binary fields: raw hex text in every dialect."""
    if dialect == BCD_DIALECT:
        return bcd_encode(fields)
    body, _ = iso8583.encode(copy.deepcopy(fields), PEER_SPECS[dialect])
    return bytes(body)


def peer_decode(body: bytes, dialect: str) -> dict[str, str]:
    if dialect == BCD_DIALECT:
        return bcd_decode(body)
    decoded, _ = iso8583.decode(body, PEER_SPECS[dialect])
    return decoded
