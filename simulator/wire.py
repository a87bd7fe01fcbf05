"""Fast paths for the load generator: request templates patched in place, and a reader that
pulls only the matching key (fields 11 and 37) and the response code (39) out of a response.

A full encode or decode costs tens of microseconds in Python; at tens of thousands of messages
a second that would make the load generator, not the server, the bottleneck. A template is a
message encoded once with marker values in fields 11 and 37; each request copies it and writes
a new STAN and RRN over the markers. The reader walks the bitmap up to field 39, using the
dialect's spec for each field's length, and slices the three values out.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

from authhost.iso.codec import encode_request
from authhost.iso.dialects import Dialect

_STAN_MARK = b"314159"
_RRN_MARK = b"927182818284"
_PRINTABLE = bytes(range(32, 127))
NO_CODE = "--"  # an answer without field 39 (echo server, network management)


def _to_wire(codec: str) -> bytes | None:
    """A ``bytes.translate`` table from ASCII to a text code page (None: ASCII itself)."""
    if codec == "ascii":
        return None
    return bytes.maketrans(_PRINTABLE, _PRINTABLE.decode("ascii").encode(codec))


def _from_wire(codec: str) -> bytes | None:
    """The table back from a text code page to ASCII (None: ASCII itself)."""
    if codec == "ascii":
        return None
    return bytes.maketrans(_PRINTABLE.decode("ascii").encode(codec), _PRINTABLE)


class TemplateError(ValueError):
    """A message that cannot be used as a template (its markers are not unique)."""


class Template:
    """One request, encoded once; ``body(stan, rrn)`` returns a copy with new numbers."""

    __slots__ = ("_body", "_stan_at", "_stan_bcd", "_stan_table", "_rrn_at", "_rrn_table")

    def __init__(self, fields: Mapping[str, Any], dialect: Dialect) -> None:
        marked = dict(fields)
        marked["11"] = _STAN_MARK.decode()
        if "37" in marked:
            marked["37"] = _RRN_MARK.decode()
        body = encode_request(marked, dialect)
        self._body = body
        spec = dialect.spec
        self._stan_bcd = spec["11"]["data_enc"] == "b"  # 3 BCD bytes, not 6 digits
        self._stan_table = None if self._stan_bcd else _to_wire(spec["11"]["data_enc"])
        self._rrn_table = _to_wire(spec["37"]["data_enc"])
        if self._stan_bcd:
            stan_mark = binascii.a2b_hex(_STAN_MARK)
        else:
            stan_mark = _STAN_MARK.translate(self._stan_table)  # type: ignore[arg-type]
        self._stan_at = _unique(body, stan_mark, "11")
        rrn_mark = _RRN_MARK.translate(self._rrn_table)  # type: ignore[arg-type]
        self._rrn_at = _unique(body, rrn_mark, "37") if "37" in marked else -1

    def body(self, stan: bytes, rrn: bytes) -> bytearray:
        """``stan`` is 6 ASCII digits, ``rrn`` 12 ASCII characters (ignored without field 37)."""
        out = bytearray(self._body)
        if self._stan_bcd:
            out[self._stan_at : self._stan_at + 3] = binascii.a2b_hex(stan)
        else:
            out[self._stan_at : self._stan_at + 6] = stan.translate(self._stan_table)  # type: ignore[arg-type]
        if self._rrn_at >= 0:
            out[self._rrn_at : self._rrn_at + 12] = rrn.translate(self._rrn_table)  # type: ignore[arg-type]
        return out

    @property
    def has_rrn(self) -> bool:
        return self._rrn_at >= 0


def _unique(body: bytes, mark: bytes, number: str) -> int:
    at = body.find(mark)
    if at < 0 or body.find(mark, at + 1) >= 0:
        raise TemplateError(f"field {number} marker is not unique in the encoded message")
    return at


class ResponseReader:
    """Reads (STAN, RRN, response code) from a message body in one dialect; b"" for absent.

    The STAN comes back as 6 ASCII digits whatever the dialect (BCD ones are unpacked)."""

    def __init__(self, dialect: Dialect) -> None:
        spec = dialect.spec
        self._hex_bitmap = spec["p"]["data_enc"] == "ascii"
        self._bitmap_size = 16 if self._hex_bitmap else 8
        self._mti_size = 2 if spec["t"]["data_enc"] == "b" else 4
        self._stan_bcd = spec["11"]["data_enc"] == "b"
        # what 11, 37 and 39 are read back through (None: ASCII already)
        self._tables = [
            None if spec[n]["data_enc"] == "b" else _from_wire(spec[n]["data_enc"])
            for n in ("11", "37", "39")
        ]
        # per field 2..39: (fixed size in bytes, 0, False, False, None) or
        # (0, length prefix bytes, prefix in BCD, length counts nibbles, prefix table)
        self._layout: list[tuple[int, int, bool, bool, bytes | None]] = [
            (0, 0, False, False, None)
        ] * 2
        for number in range(2, 40):
            field = spec[str(number)]
            nibbles = field.get("len_count", "bytes") == "nibbles"
            kind = field["len_type"]
            if kind == 0:
                size = field["max_len"]
                fixed = (size + 1) // 2 if nibbles else size
                self._layout.append((fixed, 0, False, False, None))
            elif field["len_enc"] == "bcd":
                self._layout.append((0, kind, True, nibbles, None))
            else:
                table = _from_wire(field["len_enc"])  # LookupError: not a text code page
                self._layout.append((0, kind, False, nibbles, table))
        for number in ("37", "39"):
            if spec[number]["data_enc"] == "b":
                raise ValueError(f"field {number} is not text in dialect {dialect.name}")
        self._plans: dict[bytes, tuple[int, list[tuple[int, int, bool, bool, Any, int]]]] = {}

    def read(self, body: bytes) -> tuple[bytes, bytes, bytes]:
        start = self._mti_size
        bitmap = body[start : start + self._bitmap_size]
        plan = self._plans.get(bitmap)
        if plan is None:
            plan = self._plans[bitmap] = self._plan(bitmap)
        pos, steps = plan
        found = [b"", b"", b""]
        for fixed, digits, bcd, nibbles, table, slot in steps:
            if digits:
                head = body[pos : pos + digits]
                fixed = int(head.hex() if bcd else head.translate(table))
                if nibbles:
                    fixed = (fixed + 1) // 2
                pos += digits
            if slot >= 0:
                found[slot] = body[pos : pos + fixed]
            pos += fixed
        if self._stan_bcd and found[0]:
            found[0] = binascii.b2a_hex(found[0])
        for slot, table in enumerate(self._tables):
            if table is not None and found[slot]:
                found[slot] = found[slot].translate(table)
        return found[0], found[1], found[2]

    def _plan(self, bitmap: bytes) -> tuple[int, list[tuple[int, int, bool, bool, Any, int]]]:
        """Where the fields start (after the bitmaps) and the fields up to 39 to step over."""
        value = int(bitmap, 16) if self._hex_bitmap else int.from_bytes(bitmap, "big")
        pos = self._mti_size + self._bitmap_size * (2 if value >> 63 & 1 else 1)
        slots = {11: 0, 37: 1, 39: 2}
        steps = [
            (*self._layout[number], slots.get(number, -1))
            for number in range(2, 40)
            if value >> (64 - number) & 1
        ]
        return pos, steps
