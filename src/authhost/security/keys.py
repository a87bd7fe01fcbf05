"""Working keys as values: type, algorithm, key check value, and material that never prints.

A ``WorkingKey`` hides its material from ``repr``/``str`` so a key can be passed around, logged
by accident or shown in a traceback without leaking. The KCV is what operators compare.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from authhost.security.blockcipher import aes_cmac, tdes_ecb_encrypt
from authhost.security.errors import WeakKey


class KeyAlgorithm(StrEnum):
    TDES = "tdes"
    AES = "aes"
    HMAC = "hmac"


class KeyType(StrEnum):
    """What a key is for; the TR-31 key usage and the default algorithm follow from it."""

    ZPK = "zpk"  # zone PIN key: PIN blocks from an acquirer
    BDK = "bdk"  # DUKPT base derivation key (TDES or AES)
    PVK = "pvk"  # PIN verification key (PVV / IBM 3624)
    CVK = "cvk"  # card verification key pair A|B
    IMK_AC = "imk-ac"  # EMV issuer master key for application cryptograms (ARQC/ARPC)
    IMK_SMI = "imk-smi"  # EMV issuer master key for secure messaging integrity (issuer scripts)
    IMK_SMC = "imk-smc"  # EMV issuer master key for secure messaging confidentiality (new PINs)
    MAK = "mak"  # message authentication key (ISO 9797-1 alg 3, fields 64/128)
    KEK = "kek"  # key encryption key (TR-31 key block protection key)
    PAN_HASH = "pan-hash"  # HMAC-SHA-256 key of the PAN index
    PAN_DATA = "pan-data"  # AES-256-GCM key of the stored PAN (versioned)


# default algorithm and length (bytes) of a newly generated key of each type
KEY_SHAPES: dict[KeyType, tuple[KeyAlgorithm, int]] = {
    KeyType.ZPK: (KeyAlgorithm.TDES, 16),
    KeyType.BDK: (KeyAlgorithm.TDES, 16),
    KeyType.PVK: (KeyAlgorithm.TDES, 16),
    KeyType.CVK: (KeyAlgorithm.TDES, 16),
    KeyType.IMK_AC: (KeyAlgorithm.TDES, 16),
    KeyType.IMK_SMI: (KeyAlgorithm.TDES, 16),
    KeyType.IMK_SMC: (KeyAlgorithm.TDES, 16),
    KeyType.MAK: (KeyAlgorithm.TDES, 16),
    KeyType.KEK: (KeyAlgorithm.AES, 32),
    KeyType.PAN_HASH: (KeyAlgorithm.HMAC, 32),
    KeyType.PAN_DATA: (KeyAlgorithm.AES, 32),
}

ALLOWED_LENGTHS = {
    KeyAlgorithm.TDES: (16, 24),
    KeyAlgorithm.AES: (16, 24, 32),
    KeyAlgorithm.HMAC: (32, 64),
}


# What each key type may be: the algorithms (and lengths, bytes) the operations that use it
# take. A key of another algorithm or length would be used as something it is not (a TDES key
# as an AES-GCM PAN key, an AES key as a CVK pair), or fail on every message (a MAC key of
# 24 bytes): refused when the key is saved, whatever brought it (generate, components,
# TR-31 import, a switch's key change).
TYPE_SHAPES: dict[KeyType, dict[KeyAlgorithm, tuple[int, ...]]] = {
    KeyType.ZPK: {KeyAlgorithm.TDES: (16, 24), KeyAlgorithm.AES: (16, 24, 32)},
    KeyType.BDK: {KeyAlgorithm.TDES: (16,), KeyAlgorithm.AES: (16, 24, 32)},
    KeyType.PVK: {KeyAlgorithm.TDES: (16, 24)},
    KeyType.CVK: {KeyAlgorithm.TDES: (16,)},  # the pair CVK A | CVK B
    KeyType.IMK_AC: {KeyAlgorithm.TDES: (16,)},
    KeyType.IMK_SMI: {KeyAlgorithm.TDES: (16,)},
    KeyType.IMK_SMC: {KeyAlgorithm.TDES: (16,)},
    KeyType.MAK: {KeyAlgorithm.TDES: (16,)},  # ISO 9797-1 algorithm 3: a double-length key
    KeyType.KEK: {KeyAlgorithm.TDES: (16, 24), KeyAlgorithm.AES: (16, 24, 32)},
    KeyType.PAN_HASH: {KeyAlgorithm.HMAC: (32, 64)},
    KeyType.PAN_DATA: {KeyAlgorithm.AES: (32,)},  # AES-256-GCM
}


def check_key_material(
    name: str, key_type: KeyType, algorithm: KeyAlgorithm, material: bytes
) -> None:
    """Refuse (``WeakKey``) a key that does not suit its type or is weak.

    TDES keys must have distinct parts (ANSI X9.52 / PCI PIN: a double- or triple-length key
    with K1 = K2, or K2 = K3, is single DES), keys must not be all zeros (nor all zeros but
    the DES parity bits), and the algorithm and length must be ones the type is used with.
    """
    key_type, algorithm = KeyType(key_type), KeyAlgorithm(algorithm)
    shapes = TYPE_SHAPES[key_type]
    if algorithm not in shapes:
        allowed = " or ".join(a.value for a in shapes)
        raise WeakKey(f"key {name!r}: a {key_type.value} key is {allowed}, not {algorithm.value}")
    if len(material) not in shapes[algorithm]:
        raise WeakKey(
            f"key {name!r}: a {algorithm.value} {key_type.value} key is "
            f"{' or '.join(str(n) for n in shapes[algorithm])} bytes, not {len(material)}"
        )
    stripped = bytes(b & 0xFE for b in material) if algorithm is KeyAlgorithm.TDES else material
    if not any(stripped):
        raise WeakKey(f"key {name!r} is all zeros")
    if algorithm is KeyAlgorithm.TDES:
        parts = [stripped[i : i + 8] for i in range(0, len(stripped), 8)]
        # K1 = K2 (or, triple length, K2 = K3) is single DES; K1 = K3 is two-key TDES
        if parts[0] == parts[1] or parts[-1] == parts[-2]:
            raise WeakKey(f"key {name!r}: its TDES parts repeat (single DES strength)")


def strength_bits(algorithm: KeyAlgorithm, length: int) -> int:
    """Effective strength of a key in bits (NIST SP 800-57, PCI PIN Annex C): double-length
    TDES 80, triple-length 112, AES its length, HMAC its length up to SHA-256's 256. A key
    may only be wrapped under a key at least as strong (PCI PIN requirement 19): wrapped under
    a weaker one it is only as safe as that one."""
    if algorithm is KeyAlgorithm.TDES:
        return 80 if length <= 16 else 112
    if algorithm is KeyAlgorithm.AES:
        return 8 * length
    return min(8 * length, 256)


def check_wrapping_strength(
    name: str, algorithm: KeyAlgorithm, length: int, kek: WorkingKey
) -> None:
    """Refuse (``WeakKey``) to carry a key (its name, algorithm and length in bytes) under a
    weaker key-encryption key."""
    needed = strength_bits(algorithm, length)
    offered = strength_bits(kek.algorithm, len(kek.material))
    if offered < needed:
        raise WeakKey(
            f"key {name!r} ({algorithm.value}, {needed} bits) cannot be carried under "
            f"{kek.name!r} ({kek.algorithm.value}, {offered} bits): a key is only wrapped under "
            "a key-encryption key at least as strong"
        )


def adjust_des_parity(key: bytes) -> bytes:
    """Set odd parity on every byte of a DES/TDES key (the low bit is the parity bit)."""
    out = bytearray()
    for byte in key:
        high = byte & 0xFE
        out.append(high | (bin(high).count("1") % 2 == 0))
    return bytes(out)


def kcv(material: bytes, algorithm: KeyAlgorithm) -> str:
    """Key check value, 6 hex digits.

    TDES: the key encrypts a zero block (the classic KCV). AES: AES-CMAC of a zero block
    (ANSI X9.24-1:2017). HMAC: HMAC-SHA-256 of a zero block. Only ever the first 3 bytes.
    """
    return _check_block(material, algorithm)[:3].hex().upper()


# hex digits of check value a key sent to authhost is taken with: fewer would let almost any
# key through; 16 is a TDES key's whole encrypted zero block, as some HSMs print it
KCV_DIGITS = range(6, 17)


def kcv_matches(material: bytes, algorithm: KeyAlgorithm, expected: str) -> bool:
    """Whether ``expected`` (hex, 6 to 16 digits, either case) begins the key's check value:
    a partner's 16-digit KCV is compared over all 16, not refused for differing from the 6
    ``kcv`` shows. Nothing beyond those 6 digits is ever returned."""
    value = expected.upper()
    if len(value) not in KCV_DIGITS or not value.isascii():
        return False
    found = _check_block(material, algorithm, keep=False).hex().upper()[: len(value)]
    return hmac.compare_digest(found, value)


def has_odd_parity(material: bytes) -> bool:
    """Every byte of a DES/TDES key with odd parity, as a key from an HSM or switch has."""
    return adjust_des_parity(material) == material


def _check_block(material: bytes, algorithm: KeyAlgorithm, *, keep: bool = True) -> bytes:
    if algorithm is KeyAlgorithm.TDES:
        return tdes_ecb_encrypt(material, bytes(8), keep=keep)
    if algorithm is KeyAlgorithm.AES:
        return aes_cmac(material, bytes(16))
    return hmac.new(material, bytes(16), hashlib.sha256).digest()


def generate_material(algorithm: KeyAlgorithm, length: int) -> bytes:
    """Fresh random key material (DES parity adjusted for TDES)."""
    if length not in ALLOWED_LENGTHS[algorithm]:
        raise ValueError(f"a {algorithm} key is {ALLOWED_LENGTHS[algorithm]} bytes long")
    material = secrets.token_bytes(length)
    return adjust_des_parity(material) if algorithm is KeyAlgorithm.TDES else material


@dataclass(frozen=True, slots=True)
class WorkingKey:
    """One clear working key in memory; ``repr`` shows name, type, algorithm and KCV only."""

    name: str
    key_type: KeyType
    algorithm: KeyAlgorithm
    material: bytes = field(repr=False)
    version: int = 1
    kcv: str = ""

    def __post_init__(self) -> None:
        if len(self.material) not in ALLOWED_LENGTHS[self.algorithm]:
            raise ValueError(f"key {self.name}: wrong length for {self.algorithm}")
        if not self.kcv:
            object.__setattr__(self, "kcv", kcv(self.material, self.algorithm))

    def __repr__(self) -> str:
        return (
            f"WorkingKey(name={self.name!r}, type={self.key_type.value}, "
            f"algorithm={self.algorithm.value}, version={self.version}, kcv={self.kcv})"
        )

    __str__ = __repr__
