"""The audit log's keyed hash chain: what makes an edited or removed audit entry visible.

Each new audit entry carries ``chain`` = HMAC-SHA-256 under the audit key of the entry before
it's chain value and this entry's fields (PCI DSS 10.3.4: changes to audit logs must be
detected). Whoever can write the card store but does not hold the master key cannot make a
changed entry's value, nor those of every entry after it. The audit key is derived from the
master key for this purpose alone (``keystore.AUDIT_KEY_INFO``) and never leaves this object.

The first chained entry follows ``GENESIS``; entries written before the chain existed carry
no value (``""``), and a verification counts them rather than calling them changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

GENESIS = "0" * 64  # what the first chained entry follows


def chain_input(previous: str, fields: Sequence[object]) -> bytes:
    """The bytes a chain value covers: the previous value and the entry's fields, in one
    unambiguous encoding (a JSON array: no field can run into the next)."""
    encoded = json.dumps([previous, *fields], separators=(",", ":"), ensure_ascii=False)
    return encoded.encode()


class AuditSeal:
    """The audit key, able to seal and check chain values; it never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the audit key must be 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "AuditSeal(<key hidden>)"

    def seal(self, previous: str, fields: Sequence[object]) -> str:
        """The chain value of an entry with ``fields`` after one whose value is ``previous``
        ("" for none: the first entry, or one written before the chain existed)."""
        data = chain_input(previous or GENESIS, fields)
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def holds(self, chain: str, previous: str, fields: Sequence[object]) -> bool:
        """Whether ``chain`` is the value this key gives the entry after ``previous``."""
        return hmac.compare_digest(chain, self.seal(previous, fields))
