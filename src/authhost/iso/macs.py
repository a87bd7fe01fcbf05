"""Where a MAC sits in a message: field 64, or field 128 when the secondary bitmap is present.

The MAC covers every byte of the message before the MAC field (MTI, bitmaps, fields), and the
MAC field is always the message's last. This module only places and finds it; computing it is
the security module's job (``SecurityModule.mac_message`` / ``verify_mac``), passed in here as
a function of the bytes to authenticate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from authhost.iso.dialects import Dialect

MacFunction = Callable[[bytes], bytes]  # the 8-byte MAC of the bytes it is given
MAC_SIZE = 8
_PLACEHOLDER = "00" * MAC_SIZE


class MacPlacementError(ValueError):
    """A message whose MAC field is not where the standard puts it."""


def mac_field(fields: Mapping[str, object]) -> str:
    """ "128" if the message has fields beyond 64 (secondary bitmap), else "64"."""
    for key in fields:
        if key.isdigit() and 64 < int(key) <= 128:
            return "128"
    return "64"


def _wire_size(number: str, dialect: Dialect) -> int:
    """Bytes the MAC takes on the wire: 8 raw bytes, or 16 hex characters."""
    return MAC_SIZE if dialect.spec[number]["data_enc"] == "b" else 2 * MAC_SIZE


def sign(fields: dict[str, str], dialect: Dialect, mac: MacFunction) -> bytes:
    """Encode ``fields`` with a MAC as the last field, computed over everything before it."""
    number = mac_field(fields)
    other = "64" if number == "128" else "128"
    fields.pop(other, None)
    fields[number] = _PLACEHOLDER
    body = dialect.codec.encode(fields)
    unsigned = body[: -_wire_size(number, dialect)]
    value = mac(unsigned)
    if len(value) != MAC_SIZE:
        raise MacPlacementError(f"a MAC is {MAC_SIZE} bytes, got {len(value)}")
    if dialect.spec[number]["data_enc"] == "b":
        return unsigned + value
    return unsigned + value.hex().upper().encode("ascii")


def split_mac(body: bytes, fields: Mapping[str, str], dialect: Dialect) -> tuple[bytes, bytes]:
    """(the bytes the MAC covers, the MAC) of a decoded message; MacPlacementError without a
    MAC in the right field (64 alone, or 128 with a secondary bitmap)."""
    number = mac_field(fields)
    value = fields.get(number)
    if value is None or (number == "128" and "64" in fields):
        raise MacPlacementError(f"the message carries no MAC in field {number}")
    try:
        received = bytes.fromhex(value)
    except ValueError:
        raise MacPlacementError(f"field {number} is not a MAC") from None
    if len(received) != MAC_SIZE:
        raise MacPlacementError(f"field {number} is not an {MAC_SIZE}-byte MAC")
    return bytes(body[: -_wire_size(number, dialect)]), received
