"""The fast path for the layouts ``fieldcodec``'s ASCII loop does not take (BCD MTI, numeric
fields and lengths; EBCDIC text): the same pyiso8583 spec read once, the plain case handled in
one loop, anything else handed back (``Unusual``) for pyiso8583 to decide, error or not.

It covers what a jPOS ``ISO87BPackager``-style spec or an EBCDIC one uses: an MTI of 2 BCD
bytes or 4 characters, binary bitmaps, and fields that are text in a one-byte code page
(ASCII, EBCDIC), raw bytes or BCD digits (a pad nibble on one side for odd lengths), with no
length prefix or a BCD or text one.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

TEXT, BINARY, BCD_LEFT, BCD_RIGHT = 0, 1, 2, 3  # a field's data: its kind
# Text encodings with one byte per character both ways (a str's length is its byte length);
# pyiso8583 takes any codec name, the others go to it.
TEXT_CODECS = frozenset({"ascii", "cp500", "cp037", "cp1047"})
# Of those, the ones that decode every byte: a body is decoded with one of them once, and its
# text fields sliced from that (a character a byte, so the offsets agree).
_WHOLE_BODY_CODECS = frozenset({"cp500", "cp037", "cp1047"})


class Unusual(Exception):
    """Something the fast path leaves to pyiso8583."""


# One field: (key, prefix bytes, prefix in BCD, most units, kind, pad nibble, text codec of
# the data or of the length prefix).
_Plan = tuple[str, int, bool, int, int, str, str]
_CACHE_SIZE = 1024  # distinct bitmaps (and key sets) remembered; a switch sends a few dozen


def applies(spec: Mapping[str, Mapping[str, Any]]) -> bool:
    """A spec this path can take: packed somewhere, no header, binary bitmaps, every field
    plain enough for ``_plan``."""
    try:
        header, mti, primary, secondary = spec["h"], spec["t"], spec["p"], spec["1"]
    except KeyError:
        return False
    if header["max_len"] or primary["data_enc"] != "b" or secondary["data_enc"] != "b":
        return False
    if mti["data_enc"] != "b" and mti["data_enc"] not in TEXT_CODECS:
        return False
    plans = [_plan(str(n), spec.get(str(n))) for n in range(2, 129) if str(n) in spec]
    packed = mti["data_enc"] != "ascii" or any(
        p is not None and (p[2] or p[4] >= BCD_LEFT or p[6] != "ascii") for p in plans
    )  # BCD or another code page somewhere: the ASCII loop of ``fieldcodec`` does the rest
    return packed and all(p is not None for p in plans)


def _plan(key: str, field: Mapping[str, Any] | None) -> _Plan | None:
    if field is None:
        return None
    len_type, len_enc = int(field["len_type"]), field["len_enc"]
    if len_type and len_enc != "bcd" and len_enc not in TEXT_CODECS:
        return None
    nibbles = field.get("len_count", "bytes") == "nibbles"
    left, right = field.get("left_pad", "")[:1], field.get("right_pad", "")[:1]
    if field["data_enc"] == "b":
        if not nibbles:
            kind, pad = BINARY, ""
        elif left and not right:
            kind, pad = BCD_LEFT, left
        elif right and not left:
            kind, pad = BCD_RIGHT, right
        else:
            return None
    elif field["data_enc"] in TEXT_CODECS and not nibbles:
        kind, pad = TEXT, ""
    else:
        return None
    bcd_prefix = len_type > 0 and len_enc == "bcd"
    # the code page of the text, or of the length prefix of binary and BCD data
    codec = field["data_enc"] if kind == TEXT else (len_enc if len_type and not bcd_prefix else "")
    if kind == TEXT and len_type and not bcd_prefix and len_enc != codec:
        return None  # text in one code page, its length in another: rare, pyiso8583's
    return key, len_type, bcd_prefix, int(field["max_len"]), kind, pad, codec or "ascii"


class PackedPath:
    """``decode(body)`` and ``encode(doc)`` for one packed spec; Unusual for anything else."""

    def __init__(self, spec: Mapping[str, Mapping[str, Any]]) -> None:
        self._mti_bcd = spec["t"]["data_enc"] == "b"
        self._mti_codec = spec["t"]["data_enc"]
        self._plans: dict[int, _Plan] = {}
        for number in range(2, 129):
            plan = _plan(str(number), spec.get(str(number)))
            if plan is not None:
                self._plans[number] = plan
        # the length prefix bytes of every size a variable field may have
        self._prefixes: dict[tuple[int, bool, int, str], tuple[bytes, ...]] = {}
        for _, width, bcd, most, _, _, codec in self._plans.values():
            if width and (width, bcd, most, codec) not in self._prefixes:
                sizes = range(min(most, 10 ** (width * (2 if bcd else 1)) - 1) + 1)
                self._prefixes[width, bcd, most, codec] = tuple(
                    binascii.a2b_hex(f"{n:0{2 * width}d}")
                    if bcd
                    else f"{n:0{width}d}".encode(codec)
                    for n in sizes
                )
        self._layouts: dict[bytes, tuple[_Plan, ...]] = {}
        self._shapes: dict[tuple[str, ...], tuple[bytes, tuple[_Plan, ...]]] = {}
        text_codecs = {p[6] for p in self._plans.values() if p[4] == TEXT or (p[1] and not p[2])}
        only = next(iter(text_codecs)) if len(text_codecs) == 1 else ""
        self._whole = only if only in _WHOLE_BODY_CODECS else ""

    def decode(self, s: bytes) -> dict[str, str]:
        if self._mti_bcd:
            head, idx = s[:2], 2
            mti = head.hex().upper()
        else:
            head, idx = s[:4], 4
            mti = head.decode(self._mti_codec)
        if len(head) != idx:
            raise Unusual
        raw = s[idx : idx + 8]
        if len(raw) != 8:
            raise Unusual
        doc = {"t": mti, "p": raw.hex().upper()}
        idx += 8
        if raw[0] & 0x80:  # secondary bitmap
            raw2 = s[idx : idx + 8]
            if len(raw2) != 8:
                raise Unusual
            doc["1"] = raw2.hex().upper()
            idx += 8
            raw += raw2
        layout = self._layouts.get(raw)
        if layout is None:
            layout = self._layout(raw)
        whole = s.decode(self._whole) if self._whole else None
        for key, width, bcd, size, kind, pad, codec in layout:
            if width:
                if bcd:
                    text = s[idx : idx + width].hex()
                    short = len(text) != 2 * width
                else:
                    text = (s[idx : idx + width].decode(codec) if whole is None
                            else whole[idx : idx + width])  # fmt: skip
                    short = len(text) != width
                if short or not (text.isdigit() and text.isascii()):
                    raise Unusual
                most, size = size, int(text)
                if size > most:
                    raise Unusual
                idx += width
            if kind >= BCD_LEFT:
                end = idx + (size + 1) // 2
                value = s[idx:end].hex().upper()
                if len(value) != end - idx << 1:
                    raise Unusual  # cut short
                if size & 1:  # the pad nibble: the spec's, or F (never a digit) as many send
                    if kind == BCD_LEFT:
                        if value[0] != pad and value[0] != "F":
                            raise Unusual
                        value = value[1:]
                    else:
                        if value[-1] != pad and value[-1] != "F":
                            raise Unusual
                        value = value[:-1]
            else:
                end = idx + size
                if kind == BINARY:
                    value = s[idx:end].hex().upper()
                elif whole is None:
                    value = s[idx:end].decode(codec)
                else:
                    value = whole[idx:end]
            doc[key] = value
            idx = end
        if idx != len(s):  # a short field anywhere leaves idx past the end
            raise Unusual
        return doc

    def _layout(self, raw: bytes) -> tuple[_Plan, ...]:
        bits = int.from_bytes(raw, "big")
        count = len(raw) * 8
        if count > 64 and bits >> 63 & 1:
            raise Unusual  # tertiary bitmap
        layout = tuple(
            self._plans[number] for number in range(2, count + 1) if bits >> (count - number) & 1
        )
        if len(self._layouts) < _CACHE_SIZE:
            self._layouts[raw] = layout
        return layout

    def encode(self, doc: Mapping[str, str]) -> bytes:
        mti = doc["t"]
        if len(mti) != 4:
            raise Unusual
        shape = tuple(doc)
        cached = self._shapes.get(shape)
        if cached is None:
            cached = self._shape(shape)
        bitmap, layout = cached
        parts = [binascii.a2b_hex(mti) if self._mti_bcd else mti.encode(self._mti_codec), bitmap]
        for key, width, bcd, most, kind, pad, codec in layout:
            value = doc[key]
            size = len(value)
            if kind >= BCD_LEFT:
                if size & 1:
                    data = binascii.a2b_hex(pad + value if kind == BCD_LEFT else value + pad)
                else:
                    data = binascii.a2b_hex(value)
            elif kind == BINARY:
                data = binascii.a2b_hex(value)
                size = len(data)
            else:
                data = value.encode(codec)  # one byte a character (TEXT_CODECS)
            if width:
                if size > most:
                    raise Unusual
                parts.append(self._prefixes[width, bcd, most, codec][size])
            elif size != most:
                raise Unusual
            parts.append(data)
        return b"".join(parts)

    def _shape(self, shape: tuple[str, ...]) -> tuple[bytes, tuple[_Plan, ...]]:
        numbers, raw = bitmap_of(shape)
        if any(number not in self._plans for number in numbers):
            raise Unusual
        layout = tuple(self._plans[n] for n in numbers)
        if len(self._shapes) < _CACHE_SIZE:
            self._shapes[shape] = (raw, layout)
        return raw, layout


def bitmap_of(keys: tuple[str, ...]) -> tuple[list[int], bytes]:
    """The field numbers of a message's keys, in order, and its binary bitmap (with the
    secondary one for fields above 64); Unusual for a key the fast paths leave to pyiso8583
    (1, 65, above 128, not a plain number)."""
    numbers = []
    for key in keys:
        if key in ("t", "p"):
            continue
        number = int(key)
        if not 2 <= number <= 128 or number == 65 or str(number) != key:
            raise Unusual
        numbers.append(number)
    numbers.sort()
    bitmap = 0
    for number in numbers:
        bitmap |= 1 << (128 - number)
    if numbers and numbers[-1] > 64:
        return numbers, (bitmap | 1 << 127).to_bytes(16, "big")
    return numbers, (bitmap >> 64).to_bytes(8, "big")
