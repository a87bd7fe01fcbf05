"""PAN protection for the store: a keyed hash index and AES-256-GCM encryption.

``pan_index`` is HMAC-SHA-256 under the PAN hash key: the same PAN always gives the same
index, so the store can look a card up without holding the PAN, and without the key nobody
can test guesses against it. ``seal_pan`` encrypts the PAN with the card id as associated data
(a blob copied to another card does not decrypt) and prefixes the key version, so after a
rotation old blobs still open under their old key while new blobs use the new one.
"""

from __future__ import annotations

import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC

BLOB_FORMAT = 1
_HEADER = struct.Struct(">BH")  # format byte, key version
NONCE_BYTES = 12


class PanProtectionError(ValueError):
    """A PAN blob that cannot be opened (wrong card id, unknown key version, tampered)."""


# Keyed HMAC-SHA-256 states by hash key: copying one skips the key schedule (the two padded
# key blocks) that a fresh HMAC computes for every PAN. Keyed by the key bytes, so a rotated
# key gets its own state; held in memory only, never by PAN, and bounded (cleared when full).
_INDEX_MACS_MAX = 8
_index_macs: dict[bytes, HMAC] = {}


def _index_mac(hash_key: bytes) -> HMAC:
    mac = _index_macs.get(hash_key)
    if mac is None:
        if len(_index_macs) >= _INDEX_MACS_MAX:
            _index_macs.clear()
        mac = _index_macs[hash_key] = HMAC(hash_key, hashes.SHA256())
    return mac


def pan_index(hash_key: bytes, pan: str) -> str:
    """The keyed hash of the PAN (hex), the store's card index."""
    mac = _index_mac(bytes(hash_key)).copy()
    mac.update(pan.strip().encode())
    return mac.finalize().hex()


def blob_version(blob: bytes) -> int:
    """The key version a blob was sealed under."""
    if len(blob) < _HEADER.size + NONCE_BYTES + 16:
        raise PanProtectionError("encrypted PAN is too short")
    fmt, version = _HEADER.unpack_from(blob)
    if fmt != BLOB_FORMAT:
        raise PanProtectionError("encrypted PAN has an unknown format")
    return version


def seal_pan(data_key: bytes, version: int, pan: str, card_id: str) -> bytes:
    """format(1) | key version(2) | nonce(12) | AES-GCM(PAN, aad=card id + header)."""
    header = _HEADER.pack(BLOB_FORMAT, version)
    nonce = secrets.token_bytes(NONCE_BYTES)
    aad = header + card_id.encode()
    return header + nonce + AESGCM(data_key).encrypt(nonce, pan.strip().encode(), aad)


def open_pan(data_key: bytes, blob: bytes, card_id: str) -> str:
    """The PAN from a blob; PanProtectionError if the card id or the blob does not match."""
    version = blob_version(blob)
    header = blob[: _HEADER.size]
    nonce = blob[_HEADER.size : _HEADER.size + NONCE_BYTES]
    try:
        clear = AESGCM(data_key).decrypt(
            nonce, blob[_HEADER.size + NONCE_BYTES :], header + card_id.encode()
        )
    except InvalidTag:
        # the reason in words: a store written with another installation's key store (a
        # shared Redis, a store file moved, the wrong key_store configured) said only this
        raise PanProtectionError(
            f"encrypted PAN does not open for this card: it was not sealed under this key "
            f"store's PAN data key version {version} (a store written with another key "
            "store?) or not for this card"
        ) from None
    return clear.decode()
