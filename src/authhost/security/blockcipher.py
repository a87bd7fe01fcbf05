"""Raw block-cipher operations (TDES and AES, ECB/CBC, CMAC) on top of ``cryptography``.

Every payment algorithm in this package is built from these few calls, so the one place that
knows how ``cryptography`` spells TDES (its decrepit module, 24-byte keys) is here. Double-length
(16-byte) TDES keys are expanded to K1|K2|K1, which is the same cipher, because
``cryptography`` deprecates the 16-byte form.

Building a cipher context costs far more than using one, and ECB contexts carry no state
between whole blocks, so the ECB calls keep a small per-thread LRU of contexts by key: the
zone, PIN verification and card verification keys that every transaction uses stay ready,
while one-shot keys (DUKPT transaction keys) just pass through it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC


def _tdes(key: bytes) -> TripleDES:
    if len(key) == 8:
        return TripleDES(key * 3)
    if len(key) == 16:
        return TripleDES(key + key[:8])
    if len(key) == 24:
        return TripleDES(key)
    raise ValueError("a TDES key is 8, 16 or 24 bytes")


def _aes(key: bytes) -> algorithms.AES:
    if len(key) not in (16, 24, 32):
        raise ValueError("an AES key is 16, 24 or 32 bytes")
    return algorithms.AES(key)


_CONTEXTS_PER_THREAD = 64
_local = threading.local()

_Update = Callable[[bytes], bytes]


def _new_update(kind: str, key: bytes) -> _Update:
    cipher = Cipher(_tdes(key) if kind[0] == "t" else _aes(key), modes.ECB())
    return (cipher.encryptor() if kind[1] == "e" else cipher.decryptor()).update


def _ecb_update(kind: str, key: bytes, keep: bool = True) -> _Update:
    """The ``update`` of an ECB encryptor/decryptor ('te', 'td', 'ae', 'ad') for ``key``.

    With ``keep`` it is this thread's cached context (an LRU keyed by the key bytes, so a
    rotated key never meets its predecessor's context); without it a fresh one-shot context.
    The bound method is what is cached: the hot path is one dict hit and one C call.
    """
    if not keep:
        return _new_update(kind, key)
    try:
        cache: OrderedDict[tuple[str, bytes], _Update] = _local.contexts
    except AttributeError:
        cache = _local.contexts = OrderedDict()
    entry = (kind, key)
    update = cache.get(entry)
    if update is not None:
        cache.move_to_end(entry)
        return update
    update = cache[entry] = _new_update(kind, key)
    if len(cache) > _CONTEXTS_PER_THREAD:
        cache.popitem(last=False)
    return update


def _check_blocks(data: bytes, size: int) -> None:
    if not data or len(data) % size:
        raise ValueError(f"data must be a non-empty multiple of {size} bytes")


# The ECB calls check the length inline (not through _check_blocks): a partial block would
# stay buffered in a cached context and shift every later call's output.


def tdes_ecb_encrypt(key: bytes, data: bytes, *, keep: bool = True) -> bytes:
    """TDES (or single DES for an 8-byte key) ECB encryption of whole 8-byte blocks."""
    if not data or len(data) & 7:
        _check_blocks(data, 8)
    return _ecb_update("te", key, keep)(data)


def tdes_ecb_decrypt(key: bytes, data: bytes, *, keep: bool = True) -> bytes:
    if not data or len(data) & 7:
        _check_blocks(data, 8)
    return _ecb_update("td", key, keep)(data)


def tdes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, 8)
    enc = Cipher(_tdes(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def tdes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, 8)
    dec = Cipher(_tdes(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def des_encrypt(key8: bytes, block: bytes, *, keep: bool = True) -> bytes:
    """Single DES on one block (DUKPT and the retail MAC need it); K|K|K is single DES."""
    if len(key8) != 8:
        raise ValueError("a DES key is 8 bytes")
    if not block or len(block) & 7:
        _check_blocks(block, 8)
    return _ecb_update("te", key8, keep)(block)


def des_decrypt(key8: bytes, block: bytes, *, keep: bool = True) -> bytes:
    if len(key8) != 8:
        raise ValueError("a DES key is 8 bytes")
    return tdes_ecb_decrypt(key8, block, keep=keep)


def aes_ecb_encrypt(key: bytes, data: bytes, *, keep: bool = True) -> bytes:
    if not data or len(data) & 15:
        _check_blocks(data, 16)
    return _ecb_update("ae", key, keep)(data)


def aes_ecb_decrypt(key: bytes, data: bytes, *, keep: bool = True) -> bytes:
    if not data or len(data) & 15:
        _check_blocks(data, 16)
    return _ecb_update("ad", key, keep)(data)


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, 16)
    enc = Cipher(_aes(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, 16)
    dec = Cipher(_aes(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def tdes_cmac(key: bytes, data: bytes) -> bytes:
    """CMAC (NIST SP 800-38B) with TDES: 8 bytes."""
    mac = CMAC(_tdes(key))
    mac.update(data)
    return mac.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """CMAC (NIST SP 800-38B) with AES: 16 bytes."""
    mac = CMAC(_aes(key))
    mac.update(data)
    return mac.finalize()


_from_bytes = int.from_bytes


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two equal-length values (as two big integers: one C call each)."""
    size = len(a)
    if size != len(b):
        raise ValueError("xor operands differ in length")
    return (_from_bytes(a) ^ _from_bytes(b)).to_bytes(size)
