"""ISO 9797-1 MAC algorithm 3 (the ANSI X9.19 retail MAC) for ISO 8583 fields 64 and 128.

Single-DES CBC-MAC under the left key half over the padded message, then the last block is
decrypted under the right half and encrypted again under the left: a double-length key's
strength at the cost of one extra DES pair per message.
"""

from __future__ import annotations

from authhost.security.blockcipher import des_decrypt, des_encrypt, tdes_cbc_encrypt


def pad(data: bytes, method: int = 1) -> bytes:
    """ISO 9797-1 padding method 1 (zeros; an empty message becomes one zero block) or 2
    (0x80 then zeros, always at least one byte added)."""
    if method == 2:
        data = data + b"\x80"
    elif method != 1:
        raise ValueError("ISO 9797-1 padding method is 1 or 2")
    if not data or len(data) % 8:
        data = data + bytes(8 - len(data) % 8)
    return data


def retail_mac(
    key: bytes, data: bytes, padding: int = 1, length: int = 8, *, keep: bool = True
) -> bytes:
    """The ISO 9797-1 algorithm 3 MAC of ``data`` under a 16-byte key, ``length`` bytes.
    ``keep=False`` for a one-time key (an EMV session key), which would only push the
    long-lived keys' cipher contexts out of the cache."""
    if len(key) != 16:
        raise ValueError("a retail MAC key is 16 bytes")
    if not 4 <= length <= 8:
        raise ValueError("a retail MAC is 4 to 8 bytes")
    chained = tdes_cbc_encrypt(key[:8], bytes(8), pad(data, padding))[-8:]
    return des_encrypt(key[:8], des_decrypt(key[8:], chained, keep=keep), keep=keep)[:length]
