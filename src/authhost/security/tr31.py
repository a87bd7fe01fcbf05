"""TR-31 / ANSI X9.143 key blocks, versions B (TDES key block protection key) and D (AES).

A key block carries one key with its attributes (usage, algorithm, mode of use, version,
exportability) in a clear header that is bound to the encrypted key by a CMAC. Both versions
derive an encryption key (KBEK) and an authentication key (KBAK) from the KBPK with CMAC
(NIST SP 800-108 counter mode); the CMAC over header + clear payload is also the CBC IV. The
older variant versions A and C are not produced or accepted.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from authhost.security.blockcipher import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_cmac,
    tdes_cbc_decrypt,
    tdes_cbc_encrypt,
    tdes_cmac,
)

HEADER_LENGTH = 16


class KeyBlockError(ValueError):
    """A key block that is malformed, unsupported or fails its MAC (wrong KBPK, tampered)."""


@dataclass(frozen=True, slots=True)
class KeyBlockHeader:
    """The clear attributes of a key block (ANSI X9.143 table 1 codes)."""

    version: str = "D"  # B: TDES KBPK, D: AES KBPK
    key_usage: str = "P0"  # e.g. P0 PIN encryption, B0 BDK, V2 Visa PVK, C0 CVK, M3 MAC
    algorithm: str = "T"  # T TDES, A AES, H HMAC
    mode_of_use: str = "B"  # B both, E encrypt, D decrypt, C generate+verify, X derive, N none
    key_version: str = "00"
    exportability: str = "N"  # E exportable under a KEK, N not exportable, S sensitive
    optional_blocks: tuple[tuple[str, str], ...] = field(default=())

    def encode(self, total_length: int) -> str:
        blocks = "".join(_encode_optional(bid, data) for bid, data in self.optional_blocks)
        return (
            f"{self.version}{total_length:04d}{self.key_usage}{self.algorithm}"
            f"{self.mode_of_use}{self.key_version}{self.exportability}"
            f"{len(self.optional_blocks):02d}00{blocks}"
        )


def _encode_optional(block_id: str, data: str) -> str:
    length = 4 + len(data)
    if length > 0xFF:
        return f"{block_id}0002{length + 6:04X}{data}"
    return f"{block_id}{length:02X}{data}"


def parse_header(block: str) -> tuple[KeyBlockHeader, int]:
    """The header and its length in characters (including optional blocks)."""
    if len(block) < HEADER_LENGTH or not block.isascii():
        raise KeyBlockError("key block is shorter than its header")
    version = block[0]
    if not block[1:5].isdigit() or int(block[1:5]) != len(block):
        raise KeyBlockError("key block length field does not match the block")
    if not block[12:14].isdigit():
        raise KeyBlockError("key block optional block count is not a number")
    count = int(block[12:14])
    pos = HEADER_LENGTH
    optional = []
    try:
        for _ in range(count):
            block_id = block[pos : pos + 2]
            length = int(block[pos + 2 : pos + 4], 16)
            start = pos + 4
            if length == 0:  # extended length: the length of the length in bytes (2 hex
                # digits: 02 means 4 hex digits follow), then the length of the whole block
                size = 2 * int(block[pos + 4 : pos + 6], 16)
                digits = block[pos + 6 : pos + 6 + size]
                if size == 0 or len(digits) != size:
                    raise KeyBlockError("key block optional block length is malformed")
                length = int(digits, 16)
                start = pos + 6 + size
            if length < start - pos or pos + length > len(block):
                raise KeyBlockError("key block optional block runs past the block")
            optional.append((block_id, block[start : pos + length]))
            pos += length
    except ValueError:
        raise KeyBlockError("key block optional block length is not hex") from None
    header = KeyBlockHeader(
        version, block[5:7], block[7], block[8], block[9:11], block[11], tuple(optional)
    )
    return header, pos


def _derive_tdes(kbpk: bytes) -> tuple[bytes, bytes]:
    if len(kbpk) not in (16, 24):
        raise KeyBlockError("a version B KBPK is a 16 or 24 byte TDES key")
    algorithm, bits, blocks = (b"\x00\x00", 128, 2) if len(kbpk) == 16 else (b"\x00\x01", 192, 3)

    def derive(usage: bytes) -> bytes:
        out = b""
        for counter in range(1, blocks + 1):
            data = bytes([counter]) + usage + b"\x00" + algorithm + bits.to_bytes(2, "big")
            out += tdes_cmac(kbpk, data)
        return out

    return derive(b"\x00\x00"), derive(b"\x00\x01")


def _derive_aes(kbpk: bytes) -> tuple[bytes, bytes]:
    if len(kbpk) not in (16, 24, 32):
        raise KeyBlockError("a version D KBPK is a 16, 24 or 32 byte AES key")
    algorithm = {16: 2, 24: 3, 32: 4}[len(kbpk)].to_bytes(2, "big")
    bits = len(kbpk) * 8

    def derive(usage: bytes) -> bytes:
        out = b""
        for counter in range(1, -(-len(kbpk) // 16) + 1):
            data = bytes([counter]) + usage + b"\x00" + algorithm + bits.to_bytes(2, "big")
            out += aes_cmac(kbpk, data)
        return out[: len(kbpk)]

    return derive(b"\x00\x00"), derive(b"\x00\x01")


def _scheme(version: str, kbpk: bytes):
    """(KBEK, KBAK, block size, MAC function, CBC encrypt, CBC decrypt) for a version."""
    if version == "B":
        kbek, kbak = _derive_tdes(kbpk)
        return kbek, kbak, 8, tdes_cmac, tdes_cbc_encrypt, tdes_cbc_decrypt
    if version == "D":
        kbek, kbak = _derive_aes(kbpk)
        return kbek, kbak, 16, aes_cmac, aes_cbc_encrypt, aes_cbc_decrypt
    raise KeyBlockError(f"key block version {version!r} is not supported (B and D are)")


def wrap(
    kbpk: bytes,
    header: KeyBlockHeader,
    key: bytes,
    *,
    masked_length: int | None = None,
    padding: bytes | None = None,
) -> str:
    """A key block for ``key`` under ``kbpk``.

    ``masked_length`` pads the key as if it were that long (hides a 16-byte key among
    24-byte ones); ``padding`` fixes the random pad (only for reproducing published examples).
    """
    kbek, kbak, size, cmac, encrypt, _ = _scheme(header.version, kbpk)
    body = (len(key) * 8).to_bytes(2, "big")
    target = max(masked_length or 0, len(key))
    pad_length = (2 + target + size - 1) // size * size - 2 - len(key)
    if padding is None:
        padding = secrets.token_bytes(pad_length)
    elif len(padding) != pad_length:
        raise KeyBlockError(f"padding must be {pad_length} bytes")
    payload = body + key + padding
    mac_length = 8 if header.version == "B" else 16
    header_text = header.encode(0)
    total = len(header_text) + 2 * len(payload) + 2 * mac_length
    if len(header_text) % size:
        raise KeyBlockError("key block header must be a multiple of the block size")
    header_text = header.encode(total)
    mac = cmac(kbak, header_text.encode("ascii") + payload)[:mac_length]
    return header_text + encrypt(kbek, mac, payload).hex().upper() + mac.hex().upper()


def unwrap(kbpk: bytes, block: str) -> tuple[KeyBlockHeader, bytes]:
    """The header and the key from a key block; KeyBlockError if anything is wrong."""
    block = block.strip()
    header, header_length = parse_header(block)
    kbek, kbak, size, cmac, _, decrypt = _scheme(header.version, kbpk)
    mac_length = 8 if header.version == "B" else 16
    body_hex = block[header_length : len(block) - 2 * mac_length]
    try:
        encrypted = bytes.fromhex(body_hex)
        mac = bytes.fromhex(block[len(block) - 2 * mac_length :])
    except ValueError:
        raise KeyBlockError("key block body is not hex") from None
    if not encrypted or len(encrypted) % size or header_length % size:
        raise KeyBlockError("key block body is not a multiple of the block size")
    payload = decrypt(kbek, mac, encrypted)
    expected = cmac(kbak, block[:header_length].encode("ascii") + payload)[:mac_length]
    if not hmac.compare_digest(expected, mac):
        raise KeyBlockError("key block MAC does not verify (wrong KBPK or tampered block)")
    bits = int.from_bytes(payload[:2], "big")
    if bits % 8 or bits // 8 > len(payload) - 2 or bits == 0:
        raise KeyBlockError("key block key length is invalid")
    return header, payload[2 : 2 + bits // 8]
