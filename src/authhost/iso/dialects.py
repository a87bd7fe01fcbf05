"""Wire dialects as data: a name, a pyiso8583 spec dict and nothing else.

Every dialect is a pyiso8583 spec that changes only what authhost needs:

* ``ascii-binary-bitmap`` (the default): pyiso8583's ``default`` spec. ASCII fields, 8-byte
  binary bitmaps, raw binary PIN block (52), ICC data (55) and MACs (64/128).
* ``ascii-hex-bitmap``: pyiso8583's ``default_ascii`` spec. Everything is printable ASCII:
  bitmaps as 16 hex characters, PIN block, ICC data and MACs as hex text.
* ``bcd-binary-bitmap``: the packed layout of jPOS's ``ISO87BPackager``, which many switches
  and terminal hosts speak: MTI and numeric fields in BCD (odd lengths padded with a 0 nibble,
  on the left for fixed fields, on the right for LLVAR ones, as jPOS does), lengths in BCD (1
  byte for LL, 2 for LLL), text in ASCII, binary bitmap. pyiso8583 has no such spec; it is
  written here, field by field, from jPOS's table.
* ``ebcdic-binary-bitmap``: pyiso8583's ``default`` spec with every character in EBCDIC
  (code page 500): the MTI, digits, text and length prefixes, as IBM mainframe hosts encode
  them; bitmap, PIN block, ICC data and MAC stay raw bytes.

Changes from the pyiso8583 originals, in every dialect: field 53 is LLVAR ans..48 instead of
n 16, because a DUKPT key serial number is 20 (TDES) or 24 (AES) hex characters and does not
fit the 1987 numeric layout. Nothing else is changed; see docs/iso.md for the field table.
The BCD dialect changes jPOS's table in the same field 53 (LLVAR, BCD length) and in field 55,
ICC data as LLL binary (jPOS: LLL characters), and carries the x+n amounts (28-31, 97: a C/D
character and BCD digits, which a pyiso8583 spec cannot express) as raw bytes of the same size:
authhost never reads them, and the fields after them stay where they are.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from iso8583 import specs

from authhost.iso.fieldcodec import FieldCodec

SpecDict = Mapping[str, Mapping[str, Any]]

DEFAULT_DIALECT = "ascii-binary-bitmap"

# Field 53 carries a DUKPT KSN (hex) when the terminal uses DUKPT; see the module docstring.
_SECURITY_CONTROL = {
    "data_enc": "ascii",
    "len_enc": "ascii",
    "len_type": 2,
    "max_len": 48,
    "desc": "Security-Related Control Information (DUKPT KSN, hex)",
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """How field values become bytes on one listener: a pyiso8583 spec plus a name.

    ``binary_fields`` are the fields whose decoded value is hex text of raw bytes (PIN
    block, ICC data, MACs): the same text in every dialect, so the typed views never care
    which dialect a message came in.
    """

    name: str
    description: str
    spec: SpecDict = field(repr=False)
    # Visa's fields (60.8, 123, 126.9, 126.10) read and answered in field 44: a listener's
    # choice (``[[listeners]] visa_fields``), as other switches use those fields otherwise
    visa_fields: bool = False
    codec: FieldCodec = field(init=False, repr=False, compare=False)
    # track 2 is packed in BCD: its "=" separator travels as the nibble D (read per message,
    # so worked out once here)
    bcd_track2: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "codec", FieldCodec(self.spec))
        object.__setattr__(self, "bcd_track2", self.spec["35"]["data_enc"] == "b")

    @property
    def binary_fields(self) -> frozenset[str]:
        return _BINARY_FIELDS


# jPOS ISO87BPackager's fields 2-128, as (first, last, layout). Layouts: "n6" BCD digits,
# fixed (left-padded); "LLn19" BCD digits after a BCD length of digits (right-padded);
# "an12" ASCII, fixed; "LLan25" / "LLLan999" ASCII after a 1- / 2-byte BCD length; "b8" raw
# bytes, fixed; "LLLb255" raw bytes after a 2-byte BCD length.
_ISO87B_LAYOUT = (
    (2, 2, "LLn19"), (3, 3, "n6"), (4, 6, "n12"), (7, 7, "n10"), (8, 10, "n8"),
    (11, 12, "n6"), (13, 18, "n4"), (19, 24, "n3"), (25, 26, "n2"), (27, 27, "n1"),
    (28, 31, "b5"),  # x+n 8: see the module docstring
    (32, 33, "LLn11"), (34, 34, "LLan28"), (35, 35, "LLn37"), (36, 36, "LLLan104"),
    (37, 37, "an12"), (38, 38, "an6"), (39, 39, "an2"), (40, 40, "an3"), (41, 41, "an8"),
    (42, 42, "an15"), (43, 43, "an40"), (44, 44, "LLan25"), (45, 45, "LLan76"),
    (46, 48, "LLLan999"), (49, 51, "an3"), (52, 52, "b8"),
    (53, 53, "LLan48"),  # jPOS: n 16; a DUKPT KSN does not fit (see the module docstring)
    (54, 54, "LLLan120"),
    (55, 55, "LLLb255"),  # jPOS: LLL characters; authhost reads raw ICC data
    (56, 63, "LLLan999"), (64, 64, "b8"), (65, 65, "b1"), (66, 66, "n1"), (67, 67, "n2"),
    (68, 70, "n3"), (71, 72, "n4"), (73, 73, "n6"), (74, 81, "n10"), (82, 85, "n12"),
    (86, 89, "n16"), (90, 90, "n42"), (91, 91, "an1"), (92, 92, "an2"), (93, 93, "an6"),
    (94, 94, "an7"), (95, 95, "an42"), (96, 96, "b16"),
    (97, 97, "b9"),  # x+n 16
    (98, 98, "an25"), (99, 100, "LLn11"), (101, 101, "LLan17"), (102, 103, "LLan28"),
    (104, 104, "LLLan100"), (105, 127, "LLLan999"), (128, 128, "b8"),
)  # fmt: skip
_LAYOUT = re.compile(r"(L*)(n|an|b)(\d+)")


def _iso87b_field(layout: str, desc: str) -> dict[str, Any]:
    """One pyiso8583 field spec from a layout code of ``_ISO87B_LAYOUT``."""
    match = _LAYOUT.fullmatch(layout)
    if match is None:
        raise ValueError(f"bad layout {layout!r}")
    prefix, kind, size = match.groups()
    field: dict[str, Any] = {
        "data_enc": "ascii" if kind == "an" else "b",
        "len_enc": "bcd" if prefix else "ascii",
        "len_type": (len(prefix) + 1) // 2,  # LL: one BCD byte, LLL: two
        "max_len": int(size),
        "desc": desc,
    }
    if kind == "n":
        field["len_count"] = "nibbles"
        field["right_pad" if prefix else "left_pad"] = "0"
    return field


def _iso87b_spec() -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {
        key: dict(specs.default[key])
        for key in ("h", "p", "1")  # no header, binary bitmaps
    }
    spec["t"] = {**specs.default["t"], "data_enc": "b", "max_len": 2}  # 4 BCD digits
    for first, last, layout in _ISO87B_LAYOUT:
        for number in range(first, last + 1):
            key = str(number)
            spec[key] = _iso87b_field(layout, specs.default[key]["desc"])
    spec["53"]["desc"] = _SECURITY_CONTROL["desc"]
    return spec


def _build(base: SpecDict, text: str = "ascii") -> dict[str, dict[str, Any]]:
    """``base`` with field 53 as documented and, for another ``text`` code page, every ASCII
    character (data and length prefixes) in that one."""
    spec: dict[str, dict[str, Any]] = copy.deepcopy(dict(base))  # type: ignore[arg-type]
    spec["53"] = dict(_SECURITY_CONTROL)
    for layout in spec.values():
        for key in ("data_enc", "len_enc"):
            if layout.get(key) == "ascii":
                layout[key] = text
    return spec


# Fields whose decoded value is hex text standing for raw bytes, in every authhost dialect.
_BINARY_FIELDS = frozenset({"52", "55", "64", "128"})

DIALECTS: dict[str, Dialect] = {
    "ascii-binary-bitmap": Dialect(
        name="ascii-binary-bitmap",
        description="ASCII fields, 8-byte binary bitmap, binary PIN block (pyiso8583 default)",
        spec=_build(specs.default),
    ),
    "ascii-hex-bitmap": Dialect(
        name="ascii-hex-bitmap",
        description="ASCII fields, 16-character hex bitmap, hex PIN block (pyiso8583 "
        "default_ascii)",
        spec=_build(specs.default_ascii),
    ),
    "bcd-binary-bitmap": Dialect(
        name="bcd-binary-bitmap",
        description="BCD numeric fields and lengths, ASCII text, 8-byte binary bitmap (jPOS "
        "ISO87BPackager)",
        spec=_iso87b_spec(),
    ),
    "ebcdic-binary-bitmap": Dialect(
        name="ebcdic-binary-bitmap",
        description="EBCDIC (code page 500) characters, 8-byte binary bitmap, binary PIN block",
        spec=_build(specs.default, text="cp500"),
    ),
}


def get_dialect(name: str, *, visa_fields: bool = False) -> Dialect:
    """The dialect called ``name`` (reading Visa's fields with ``visa_fields``); ValueError
    naming the known ones otherwise."""
    try:
        dialect = DIALECTS[name]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown ISO 8583 dialect {name!r}; known dialects: {known}") from None
    return replace(dialect, visa_fields=True) if visa_fields else dialect
