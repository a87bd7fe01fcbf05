"""A pyiso8583 spec compiled for speed, with pyiso8583 itself as the authority.

pyiso8583's ``decode``/``encode`` are general (headers, BCD, nibbles, tertiary bitmaps) and
build a second dict of raw bytes on every call; on the server's hot path that generality
costs more than the rest of the wire path. ``FieldCodec`` reads the same spec dict once and
handles the plain case (ASCII MTI, primary/secondary bitmap, ASCII-length fields with ASCII or
binary data) in one tight loop; ``packed`` does the same for BCD layouts. Anything else, and
every error, is handed to pyiso8583, so results and error messages are pyiso8583's: the fast
path may only ever agree with it (the tests check that on random messages).

With one exception: pyiso8583 reads a text length prefix with ``int()`` and a hex bitmap
with ``bytes.fromhex``, which take ``" 6"``, ``"+6"``, ``"1_0"`` (EBCDIC ``40 F6``...) as
numbers and skip spaces in hex. The fast paths never did; what pyiso8583 read that way is
refused here after it (``_strictness_error``), on the slow path only, so a length prefix is
exactly digits and a bitmap exactly hex in every dialect, whichever path read the message.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

import iso8583

from authhost.iso import packed


class FieldDecodeError(ValueError):
    """pyiso8583 could not decode a body. ``partial`` holds the fields read before ``field``."""

    def __init__(self, message: str, partial: Mapping[str, str], field: str | None) -> None:
        super().__init__(message)
        self.partial = partial
        self.field = field


class FieldEncodeError(ValueError):
    """pyiso8583 could not encode a dict (the message names the field, not its value)."""


# Distinct bitmaps whose field layout is remembered; a switch sends a few dozen at most.
_LAYOUT_CACHE_SIZE = 1024


class _Unusual(Exception):
    """The fast path met something it leaves to pyiso8583."""


# (len_type, max_len, binary) for one field; None where the fast path does not apply.
_FieldPlan = tuple[int, int, bool]
# The fields of one bitmap in order: (key, len_type, max_len, binary) each.
_Layout = tuple[tuple[str, int, int, bool], ...]
# The same for encoding: (key, max_len, binary, length prefixes by size or None if fixed).
_EncodeLayout = tuple[tuple[str, int, bool, tuple[str, ...] | None], ...]


class FieldCodec:
    """Decode bodies to ``{"t": mti, "p": bitmap, "2": ..., ...}`` and encode such dicts."""

    def __init__(self, spec: Mapping[str, Mapping[str, Any]]) -> None:
        self.spec = spec
        self._fast = _fast_path_applies(spec)
        if packed.applies(spec):  # BCD somewhere: the packed layout's own fast path
            path = packed.PackedPath(spec)
            self._fast = True
            self._decode_fast = path.decode  # type: ignore[method-assign]
            self._encode_fast = path.encode  # type: ignore[method-assign]
        self._binary_bitmap = spec["p"]["data_enc"] == "b"
        # What the slow path checks pyiso8583 read strictly: the code page of each hex
        # bitmap, and of each length prefix
        self._hex_bitmaps = {
            key: spec[key]["data_enc"]
            for key in ("p", "1")
            if key in spec and spec[key]["data_enc"] != "b"
        }
        self._prefix_codecs = {
            key: field["len_enc"]
            for key, field in spec.items()
            if key not in ("h", "t", "p", "1") and field.get("len_type")
        }
        self._plans: dict[int, _FieldPlan] = {}
        for number in range(2, 129):
            plan = _plan(spec.get(str(number)))
            if plan is not None:
                self._plans[number] = plan
        self._keys = {number: str(number) for number in range(129)}
        # The length prefix text of every size a variable field may have, per prefix width
        # and longest field: "%0*d" once here rather than per field per message.
        self._prefixes: dict[tuple[int, int], tuple[str, ...]] = {}
        for len_type, max_len, _ in self._plans.values():
            if len_type and (len_type, max_len) not in self._prefixes:
                sizes = range(max_len + 1)
                self._prefixes[len_type, max_len] = tuple(f"{n:0{len_type}d}" for n in sizes)
        self._layouts: dict[bytes, _Layout] = {}  # primary (+ secondary) bitmap -> layout
        # keys -> bitmap, layout
        self._shapes: dict[tuple[str, ...], tuple[bytes, _EncodeLayout]] = {}

    # decoding

    def decode(self, body: bytes) -> dict[str, str]:
        if self._fast:
            try:
                return self._decode_fast(body)
            except Exception:
                pass  # pyiso8583 below gives the authoritative answer, error or not
        return self._decode_slow(body)

    def _decode_slow(self, body: bytes) -> dict[str, str]:
        try:
            doc, encoded = iso8583.decode(bytes(body), self.spec)
        except iso8583.DecodeError as error:
            # a field pyiso8583 read leniently before it failed is the first thing wrong
            lenient = self._strictness_error(error.doc_dec, error.doc_enc)
            if lenient is not None:
                raise lenient from None
            # Extra bytes after the last field leave every field readable, that one included.
            failed = None if error.msg.startswith("Extra data") else error.field
            raise FieldDecodeError(str(error), error.doc_dec, failed) from None
        except Exception as error:  # e.g. a bitmap bit for a field the spec lacks
            raise FieldDecodeError(
                f"undecodable message ({type(error).__name__})", {}, None
            ) from None
        lenient = self._strictness_error(doc, encoded)
        if lenient is not None:
            raise lenient
        return doc

    def _strictness_error(
        self, decoded: Mapping[str, str], encoded: Mapping[str, Mapping[str, bytes]]
    ) -> FieldDecodeError | None:
        """The error for the first field pyiso8583 read leniently, or None.

        A length prefix must be digits and a hex bitmap hex digits, nothing else: a prefix
        pyiso8583 took as a number (a space, a sign, an underscore) or a bitmap it read around
        spaces places every later field where the sender did not put it. The error keeps the
        fields before that one (the MTI, and the STAN when it came first) for the 30 answer.
        """
        for key, raw in encoded.items():  # in the order pyiso8583 read them
            codec = self._hex_bitmaps.get(key)
            if codec is not None:
                if not _is_text_of(raw["data"], codec, _HEX_DIGITS):
                    return _refused(decoded, key, "not hex digits")
                continue
            codec = self._prefix_codecs.get(key)
            if codec is not None and not _is_length_prefix(raw["len"], codec):
                return _refused(decoded, key, "length prefix is not digits")
        return None

    def _decode_fast(self, s: bytes) -> dict[str, str]:
        mti = s[:4].decode("ascii")
        if len(mti) != 4:
            raise _Unusual
        if self._binary_bitmap:
            raw = s[4:12]
            if len(raw) != 8:
                raise _Unusual
            doc = {"t": mti, "p": raw.hex().upper()}
            idx = 12
        else:
            text = s[4:20].decode("ascii")
            raw = binascii.a2b_hex(text)
            if len(raw) != 8:
                raise _Unusual
            doc = {"t": mti, "p": text}
            idx = 20
        if raw[0] & 0x80:  # secondary bitmap
            if self._binary_bitmap:
                raw2 = s[idx : idx + 8]
                if len(raw2) != 8:
                    raise _Unusual
                doc["1"] = raw2.hex().upper()
                idx += 8
            else:
                text2 = s[idx : idx + 16].decode("ascii")
                raw2 = binascii.a2b_hex(text2)
                if len(raw2) != 8:
                    raise _Unusual
                doc["1"] = text2
                idx += 16
            raw = raw + raw2
        layout = self._layouts.get(raw)
        if layout is None:
            layout = self._layout(raw)
        # Text fields are sliced from one latin-1 decoding of the body (a character per byte,
        # so offsets agree), and each run of them between binary fields is checked to be
        # ASCII at once: the same answer as decoding every field as ASCII, in fewer calls.
        text = s.decode("latin-1")
        start = idx  # where the current run of text fields (and length prefixes) began
        for key, len_type, size, binary in layout:
            if len_type:
                head = s[idx : idx + len_type]
                if not head.isdigit():
                    raise _Unusual
                max_len = size
                size = int(head)
                if size > max_len:
                    raise _Unusual
                idx += len_type
            end = idx + size
            if binary:
                if not s[start:idx].isascii():
                    raise _Unusual
                doc[key] = s[idx:end].hex().upper()
                start = end
            else:
                doc[key] = text[idx:end]
            idx = end
        # A short field anywhere leaves idx past the end: one check covers truncation.
        if idx != len(s) or not s[start:].isascii():
            raise _Unusual
        return doc

    def _layout(self, raw: bytes) -> _Layout:
        """The fields a bitmap announces, in order, with their plans (cached per bitmap)."""
        bits = format(int.from_bytes(raw, "big"), f"0{len(raw) * 8}b")
        if len(bits) > 64 and bits[64] == "1":
            raise _Unusual  # tertiary bitmap
        layout = tuple(
            (self._keys[number], *self._plans[number])
            for number in range(2, len(bits) + 1)
            if bits[number - 1] == "1"
        )
        if len(self._layouts) < _LAYOUT_CACHE_SIZE:
            self._layouts[raw] = layout
        return layout

    # encoding

    def encode(self, doc: Mapping[str, str]) -> bytes:
        if self._fast:
            try:
                return self._encode_fast(doc)
            except Exception:
                pass  # pyiso8583 below gives the authoritative answer, error or not
        return self._encode_slow(doc)

    def _encode_slow(self, doc: Mapping[str, str]) -> bytes:
        try:
            body, _ = iso8583.encode(dict(doc), self.spec)
        except iso8583.EncodeError as error:
            raise FieldEncodeError(str(error)) from None
        except Exception as error:
            raise FieldEncodeError(f"unencodable message ({type(error).__name__})") from None
        return bytes(body)

    def _encode_fast(self, doc: Mapping[str, str]) -> bytes:
        mti = doc["t"].encode("ascii")
        if len(mti) != 4:
            raise _Unusual
        shape = tuple(doc)
        cached = self._shapes.get(shape)
        if cached is None:
            cached = self._shape(shape)
        bitmap, layout = cached
        parts = [mti, bitmap]
        # Text fields and length prefixes are joined and encoded as ASCII once per run between
        # binary fields. A str's length is its ASCII length; a non-ASCII one fails the encode.
        text: list[str] = []
        for key, max_len, binary, prefixes in layout:
            value = doc[key]
            if binary:
                data = binascii.a2b_hex(value)
                size = len(data)
            else:
                size = len(value)
            if prefixes is not None:
                if size > max_len:
                    raise _Unusual
                text.append(prefixes[size])
            elif size != max_len:
                raise _Unusual
            if binary:
                parts.append("".join(text).encode("ascii"))
                parts.append(data)
                text = []
            else:
                text.append(value)
        parts.append("".join(text).encode("ascii"))
        return b"".join(parts)

    def _shape(self, shape: tuple[str, ...]) -> tuple[bytes, _EncodeLayout]:
        """Bitmap bytes and ordered field plans for one set of keys (cached per key set)."""
        numbers, raw = packed.bitmap_of(shape)
        if not self._binary_bitmap:
            raw = raw.hex().upper().encode("ascii")
        layout = tuple(self._encode_plan(n) for n in numbers)
        if len(self._shapes) < _LAYOUT_CACHE_SIZE:
            self._shapes[shape] = (raw, layout)
        return raw, layout

    def _encode_plan(self, number: int) -> tuple[str, int, bool, tuple[str, ...] | None]:
        len_type, max_len, binary = self._plans[number]
        prefixes = self._prefixes[len_type, max_len] if len_type else None
        return self._keys[number], max_len, binary, prefixes


_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789ABCDEFabcdef")  # either case, as pyiso8583 and jPOS read


def _is_text_of(raw: bytes, codec: str, allowed: frozenset[str]) -> bool:
    """``raw`` in the code page ``codec`` is made of ``allowed`` characters only."""
    try:
        return set(raw.decode(codec)) <= allowed
    except (UnicodeDecodeError, LookupError):
        return False


def _is_length_prefix(raw: bytes, codec: str) -> bool:
    """A length prefix as the spec writes it: text digits (ASCII 30-39, EBCDIC F0-F9), BCD
    nibbles 0-9, or any binary bytes."""
    if codec == "b":
        return True
    if codec == "bcd":
        return set(raw.hex()) <= _DIGITS
    return _is_text_of(raw, codec, _DIGITS)


def _refused(decoded: Mapping[str, str], key: str, why: str) -> FieldDecodeError:
    """A FieldDecodeError for field ``key`` keeping the fields decoded before it."""
    partial: dict[str, str] = {}
    for number, value in decoded.items():
        if number == key:
            break
        partial[number] = value
    name = {"p": "primary bitmap", "1": "secondary bitmap"}.get(key, f"field {key}")
    return FieldDecodeError(f"{name}: {why}", partial, key)


def _fast_path_applies(spec: Mapping[str, Mapping[str, Any]]) -> bool:
    """The plain layout the fast path knows: no header, ASCII MTI, b or ASCII-hex bitmaps."""
    try:
        header, mti, primary, secondary = spec["h"], spec["t"], spec["p"], spec["1"]
    except KeyError:
        return False
    return (
        header["max_len"] == 0
        and mti["data_enc"] == "ascii"
        and primary["data_enc"] == secondary["data_enc"]
        and primary["data_enc"] in ("b", "ascii")
    )


def _plan(field: Mapping[str, Any] | None) -> _FieldPlan | None:
    if field is None:
        return None
    if field.get("len_count", "bytes") != "bytes" or field["data_enc"] not in ("ascii", "b"):
        return None
    if field["len_type"] and field["len_enc"] != "ascii":
        return None
    return (int(field["len_type"]), int(field["max_len"]), field["data_enc"] == "b")
