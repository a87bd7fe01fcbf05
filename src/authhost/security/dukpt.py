"""DUKPT: ANSI X9.24-1 (TDES) and ANSI X9.24-3 (AES), host side and terminal side.

The host derives the transaction PIN key from the BDK and the KSN that arrives in field 53:
TDES KSNs are 10 bytes (20 hex: key set id, device id, 21-bit counter), AES KSNs are 12 bytes
(24 hex: 8-byte initial key id, 32-bit counter). The first step (BDK -> initial key) depends
only on the KSN *base* (the KSN with the counter cleared), which is why ``TdesDukptHost`` and
``AesDukptHost`` cache it per base, together with the intermediate keys of the derivation
tree: the next transaction of the same terminal usually needs one or two tree steps.
Terminal-side helpers encrypt a PIN block as a PED would.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from enum import IntEnum

from authhost.security.blockcipher import aes_ecb_encrypt, des_encrypt, tdes_ecb_encrypt, xor
from authhost.security.pinblock import PinBlockFormat, encrypt_pin_block

TDES_KSN_BYTES = 10
AES_KSN_BYTES = 12
TDES_COUNTER_BITS = 21
_TDES_COUNTER_MASK = (1 << TDES_COUNTER_BITS) - 1
_KEY_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")
_PIN_VARIANT = bytes.fromhex("00000000000000FF00000000000000FF")
_DEFAULT_CACHE = 10_000


class DukptError(ValueError):
    """A KSN or BDK DUKPT cannot use (wrong length, exhausted or invalid counter)."""


def parse_ksn(ksn: str | bytes, size: int) -> bytes:
    """The KSN as bytes, from hex text or bytes, checked for length."""
    if isinstance(ksn, str):
        try:
            ksn = bytes.fromhex(ksn.strip())
        except ValueError:
            raise DukptError("KSN is not hex") from None
    if len(ksn) != size:
        raise DukptError(f"KSN must be {size} bytes ({size * 2} hex digits)")
    return ksn


# --- TDES DUKPT (ANSI X9.24-1:2009, annex A) ---------------------------------------------


def tdes_ksn_base(ksn: bytes) -> bytes:
    """The KSN with its 21-bit transaction counter cleared (what the IPEK depends on)."""
    value = int.from_bytes(ksn, "big") & ~_TDES_COUNTER_MASK
    return value.to_bytes(TDES_KSN_BYTES, "big")


def tdes_counter(ksn: bytes) -> int:
    return int.from_bytes(ksn, "big") & _TDES_COUNTER_MASK


def tdes_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """Initial PIN encryption key of the device: BDK and BDK-variant encrypt the KSN base."""
    if len(bdk) != 16:
        raise DukptError("a TDES BDK is 16 bytes")
    base8 = tdes_ksn_base(ksn)[:8]
    return tdes_ecb_encrypt(bdk, base8) + tdes_ecb_encrypt(xor(bdk, _KEY_MASK), base8, keep=False)


def _non_reversible(key: bytes, register: bytes) -> bytes:
    """The standard's non-reversible key generation process (one tree step)."""

    def half(k: bytes) -> bytes:
        return xor(des_encrypt(k[:8], xor(register, k[8:]), keep=False), k[8:])

    return half(xor(key, _KEY_MASK)) + half(key)


def tdes_future_key(ipek: bytes, ksn: bytes) -> bytes:
    """The transaction key for ``ksn``: one tree step per set bit of the counter, high first."""
    counter = tdes_counter(ksn)
    if counter == 0 or counter.bit_count() > 10:
        raise DukptError("KSN counter is not a valid TDES DUKPT counter")
    register = int.from_bytes(tdes_ksn_base(ksn)[2:], "big")
    key = ipek
    bit = 1 << (TDES_COUNTER_BITS - 1)
    while bit:
        if counter & bit:
            register |= bit
            key = _non_reversible(key, register.to_bytes(8, "big"))
        bit >>= 1
    return key


def tdes_pin_key(bdk: bytes, ksn: str | bytes) -> bytes:
    """The PIN encryption key (PIN variant of the transaction key) for a TDES KSN."""
    ksn = parse_ksn(ksn, TDES_KSN_BYTES)
    return xor(tdes_future_key(tdes_ipek(bdk, ksn), ksn), _PIN_VARIANT)


# --- AES DUKPT (ANSI X9.24-3:2017) ---------------------------------------------------------


class AesKeyType(IntEnum):
    TDES2 = 0
    TDES3 = 1
    AES128 = 2
    AES192 = 3
    AES256 = 4


class AesKeyUsage(IntEnum):
    KEY_ENCRYPTION = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH = 0x3002
    KEY_DERIVATION = 0x8000
    KEY_DERIVATION_INITIAL = 0x8001


_KEY_BITS = {
    AesKeyType.TDES2: 128,
    AesKeyType.TDES3: 192,
    AesKeyType.AES128: 128,
    AesKeyType.AES192: 192,
    AesKeyType.AES256: 256,
}


def _aes_type_of(bdk: bytes) -> AesKeyType:
    types = {16: AesKeyType.AES128, 24: AesKeyType.AES192, 32: AesKeyType.AES256}
    if len(bdk) not in types:
        raise DukptError("an AES BDK is 16, 24 or 32 bytes")
    return types[len(bdk)]


def _derivation_data(usage: int, key_type: AesKeyType, id_and_counter: bytes) -> bytearray:
    data = bytearray(16)
    data[0] = 0x01  # version
    data[2:4] = usage.to_bytes(2, "big")
    data[4:6] = int(key_type).to_bytes(2, "big")
    data[6:8] = _KEY_BITS[key_type].to_bytes(2, "big")
    data[8:16] = id_and_counter
    return data


def _aes_derive(key: bytes, key_type: AesKeyType, data: bytearray) -> bytes:
    """NIST SP 800-108 counter-mode KDF with AES-ECB as the PRF, as X9.24-3 specifies."""
    out = b""
    for block in range(1, -(-_KEY_BITS[key_type] // 128) + 1):
        data[1] = block
        out += aes_ecb_encrypt(key, bytes(data), keep=False)  # derived keys are one-shot
    return out[: _KEY_BITS[key_type] // 8]


def aes_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """The device's initial key from the BDK and its 8-byte initial key id."""
    key_type = _aes_type_of(bdk)
    data = _derivation_data(AesKeyUsage.KEY_DERIVATION_INITIAL, key_type, initial_key_id)
    return _aes_derive(bdk, key_type, data)


def aes_transaction_key(initial_key: bytes, ksn: bytes) -> bytes:
    """The derivation key of ``ksn``: one derivation per set counter bit, highest first."""
    counter = int.from_bytes(ksn[8:12], "big")
    if counter == 0 or counter.bit_count() > 16:
        raise DukptError("KSN counter is not a valid AES DUKPT counter")
    key_type = _aes_type_of(initial_key)
    derivation_id = ksn[4:8]
    key = initial_key
    working = 0
    bit = 1 << 31
    while bit:
        if counter & bit:
            working |= bit
            data = _derivation_data(
                AesKeyUsage.KEY_DERIVATION, key_type, derivation_id + working.to_bytes(4, "big")
            )
            key = _aes_derive(key, key_type, data)
        bit >>= 1
    return key


def aes_working_key(
    initial_key: bytes,
    ksn: bytes,
    usage: AesKeyUsage = AesKeyUsage.PIN_ENCRYPTION,
    working_type: AesKeyType = AesKeyType.AES128,
) -> bytes:
    """A working key (PIN encryption by default) for ``ksn``, from the device's initial key."""
    data = _derivation_data(usage, working_type, ksn[4:8] + ksn[8:12])
    return _aes_derive(aes_transaction_key(initial_key, ksn), working_type, data)


def aes_pin_key(bdk: bytes, ksn: str | bytes) -> bytes:
    """The AES-128 PIN encryption key for a 12-byte AES KSN."""
    ksn = parse_ksn(ksn, AES_KSN_BYTES)
    return aes_working_key(aes_initial_key(bdk, ksn[:8]), ksn)


# --- host side with the per-base cache ----------------------------------------------------


class _LruCache:
    """A bounded map of derived keys; locked so worker threads may share a host."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            if len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"LruCache(entries={len(self._items)})"


def _set_bits_high_first(counter: int, width: int) -> list[int]:
    """The partial counters along the derivation path: set bits added highest first."""
    path, partial = [], 0
    bit = 1 << (width - 1)
    while bit:
        if counter & bit:
            partial |= bit
            path.append(partial)
        bit >>= 1
    return path


class TdesDukptHost:
    """Derives TDES DUKPT PIN keys for one BDK with the derivation tree cached.

    The IPEK is cached per KSN base, and so is every intermediate key along a counter's path
    (keyed by base + partial counter): a terminal's next transaction shares most of its path
    with the previous one, so it usually costs one or two tree steps instead of up to ten.
    The keys are the ones the standard's host algorithm computes; only the repetition goes.
    """

    def __init__(self, bdk: bytes, cache_size: int = _DEFAULT_CACHE) -> None:
        if len(bdk) != 16:
            raise DukptError("a TDES BDK is 16 bytes")
        self._bdk = bdk
        self.cache = _LruCache(cache_size)  # IPEK per KSN base
        self.tree = _LruCache(cache_size * 4)  # intermediate keys per base + partial counter

    def __repr__(self) -> str:
        return f"TdesDukptHost(cached_bases={len(self.cache)})"

    def pin_key(self, ksn: str | bytes) -> bytes:
        ksn = parse_ksn(ksn, TDES_KSN_BYTES)
        counter = tdes_counter(ksn)
        if counter == 0 or counter.bit_count() > 10:
            raise DukptError("KSN counter is not a valid TDES DUKPT counter")
        base = tdes_ksn_base(ksn)
        base_value = int.from_bytes(base, "big")
        path = _set_bits_high_first(counter, TDES_COUNTER_BITS)
        key, start = None, 0
        for depth in range(len(path), 0, -1):
            key = self.tree.get((base_value | path[depth - 1]).to_bytes(TDES_KSN_BYTES, "big"))
            if key is not None:
                start = depth
                break
        if key is None:
            key = self.cache.get(base)
            if key is None:
                key = tdes_ipek(self._bdk, ksn)
                self.cache.put(base, key)
        register_base = base_value & ((1 << 64) - 1)
        for partial in path[start:]:
            key = _non_reversible(key, (register_base | partial).to_bytes(8, "big"))
            self.tree.put((base_value | partial).to_bytes(TDES_KSN_BYTES, "big"), key)
        return xor(key, _PIN_VARIANT)


class AesDukptHost:
    """Derives AES DUKPT PIN keys for one BDK, caching the initial key per initial key id
    and the intermediate derivation keys per initial key id + partial counter."""

    def __init__(self, bdk: bytes, cache_size: int = _DEFAULT_CACHE) -> None:
        self._key_type = _aes_type_of(bdk)
        self._bdk = bdk
        self.cache = _LruCache(cache_size)
        self.tree = _LruCache(cache_size * 4)

    def __repr__(self) -> str:
        return f"AesDukptHost(cached_bases={len(self.cache)})"

    def pin_key(self, ksn: str | bytes) -> bytes:
        ksn = parse_ksn(ksn, AES_KSN_BYTES)
        counter = int.from_bytes(ksn[8:12], "big")
        if counter == 0 or counter.bit_count() > 16:
            raise DukptError("KSN counter is not a valid AES DUKPT counter")
        ikid = ksn[:8]
        path = _set_bits_high_first(counter, 32)
        key, start = None, 0
        for depth in range(len(path), 0, -1):
            key = self.tree.get(ikid + path[depth - 1].to_bytes(4, "big"))
            if key is not None:
                start = depth
                break
        if key is None:
            key = self.cache.get(ikid)
            if key is None:
                key = aes_initial_key(self._bdk, ikid)
                self.cache.put(ikid, key)
        for partial in path[start:]:
            data = _derivation_data(
                AesKeyUsage.KEY_DERIVATION, self._key_type, ksn[4:8] + partial.to_bytes(4, "big")
            )
            key = _aes_derive(key, self._key_type, data)
            self.tree.put(ikid + partial.to_bytes(4, "big"), key)
        data = _derivation_data(AesKeyUsage.PIN_ENCRYPTION, AesKeyType.AES128, ksn[4:12])
        return _aes_derive(key, AesKeyType.AES128, data)


# --- terminal side (simulator, tests) -----------------------------------------------------


def ksn_with_counter(ksn: str | bytes, counter: int) -> str:
    """The KSN (20 or 24 hex) with its transaction counter replaced, as uppercase hex."""
    raw = bytes.fromhex(ksn) if isinstance(ksn, str) else ksn
    if len(raw) == TDES_KSN_BYTES:
        if not 0 <= counter <= _TDES_COUNTER_MASK:
            raise DukptError("TDES DUKPT counter is 21 bits")
        value = int.from_bytes(tdes_ksn_base(raw), "big") | counter
        return value.to_bytes(TDES_KSN_BYTES, "big").hex().upper()
    if len(raw) == AES_KSN_BYTES:
        return (raw[:8] + counter.to_bytes(4, "big")).hex().upper()
    raise DukptError("KSN must be 10 (TDES) or 12 (AES) bytes")


def terminal_encrypt_pin_tdes(
    bdk: bytes, ksn: str | bytes, pin: str, pan: str, fmt: PinBlockFormat = PinBlockFormat.ISO0
) -> bytes:
    """The 8-byte PIN block a TDES DUKPT PED sends for ``ksn`` (format 0 by default)."""
    return encrypt_pin_block(tdes_pin_key(bdk, ksn), pin, pan, fmt)


def terminal_encrypt_pin_aes(bdk: bytes, ksn: str | bytes, pin: str, pan: str) -> bytes:
    """The 16-byte ISO format 4 PIN block an AES DUKPT PED sends for ``ksn``."""
    return encrypt_pin_block(aes_pin_key(bdk, ksn), pin, pan, PinBlockFormat.ISO4)
