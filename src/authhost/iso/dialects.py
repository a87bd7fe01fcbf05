"""Wire dialects as data: a name, a pyiso8583 spec dict and nothing else.

Both dialects start from a pyiso8583 spec and change only what authhost needs:

* ``ascii-binary-bitmap`` (the default): pyiso8583's ``default`` spec. ASCII fields, 8-byte
  binary bitmaps, raw binary PIN block (52), ICC data (55) and MACs (64/128).
* ``ascii-hex-bitmap``: pyiso8583's ``default_ascii`` spec. Everything is printable ASCII:
  bitmaps as 16 hex characters, PIN block, ICC data and MACs as hex text.

Changes from the pyiso8583 originals, in both dialects: field 53 is LLVAR ans..48 instead of
n 16, because a DUKPT key serial number is 20 (TDES) or 24 (AES) hex characters and does not
fit the 1987 numeric layout. Nothing else is changed; see docs/iso.md for the field table.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    block, ICC data, MACs): the same text in both dialects, so the typed views never care
    which dialect a message came in.
    """

    name: str
    description: str
    spec: SpecDict = field(repr=False)
    codec: FieldCodec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "codec", FieldCodec(self.spec))

    @property
    def binary_fields(self) -> frozenset[str]:
        return _BINARY_FIELDS


def _build(base: SpecDict) -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = copy.deepcopy(dict(base))  # type: ignore[arg-type]
    spec["53"] = dict(_SECURITY_CONTROL)
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
}


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; ValueError naming the known ones otherwise."""
    try:
        return DIALECTS[name]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown ISO 8583 dialect {name!r}; known dialects: {known}") from None
