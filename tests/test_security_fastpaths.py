"""The hot-path shortcuts of the security module agree with the plain algorithms.

Each shortcut (table decimalisation, cached HMAC state, cached ECB contexts, int-nibble PIN
block decoding) is checked against the straightforward version it replaced.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.security import blockcipher, pan_protection, pinblock
from authhost.security.decimalise import visa_digits

MANY = settings(max_examples=500, deadline=None)


def fresh_context_tdes(key: bytes) -> bytes:
    """TDES of a zero block with a context built for it (what the cache must reproduce)."""
    encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
    return encryptor.update(bytes(8)) + encryptor.finalize()


def reference_visa_digits(block: bytes, count: int) -> str:
    text = block.hex().upper()
    digits = [c for c in text if c.isdigit()]
    letters = [str(int(c, 16) - 10) for c in text if not c.isdigit()]
    return "".join((digits + letters)[:count])


@MANY
@given(st.binary(min_size=8, max_size=8), st.sampled_from([3, 4]))
def test_visa_digits_matches_the_nibble_loop(block: bytes, count: int) -> None:
    assert visa_digits(block, count) == reference_visa_digits(block, count)


@pytest.mark.parametrize(
    "text", ["DDDBAFCEE4DADCAE", "ABCDEFABCDEFABCD", "0123456789ABCDEF", "FFFFFFFFFFFFFF12"]
)
def test_visa_digits_fills_up_with_letters(text: str) -> None:
    for count in (3, 4):
        block = bytes.fromhex(text)
        assert visa_digits(block, count) == reference_visa_digits(block, count)


@MANY
@given(st.binary(max_size=80), st.text(alphabet="0123456789 ", max_size=21))
def test_pan_index_is_hmac_sha256(key: bytes, pan: str) -> None:
    expected = hmac.new(key, pan.strip().encode(), hashlib.sha256).hexdigest()
    assert pan_protection.pan_index(key, pan) == expected


def test_pan_index_state_cache_follows_the_key_and_stays_bounded() -> None:
    pan = "4761739001010119"
    old, new = b"\x01" * 32, b"\x02" * 32
    for _ in range(3):  # a rotated key never answers with its predecessor's state
        for key in (old, new):
            assert pan_protection.pan_index(key, pan) == (
                hmac.new(key, pan.encode(), hashlib.sha256).hexdigest()
            )
    for i in range(50):
        pan_protection.pan_index(bytes([i]) * 32, pan)
    assert len(pan_protection._index_macs) <= pan_protection._INDEX_MACS_MAX


def test_a_rejected_partial_block_leaves_the_cached_context_intact() -> None:
    key = bytes(range(16))
    assert blockcipher.tdes_ecb_encrypt(key, bytes(8)) == fresh_context_tdes(key)
    for bad in (b"", bytes(5), bytes(12)):
        with pytest.raises(ValueError, match="multiple of 8"):
            blockcipher.tdes_ecb_encrypt(key, bad)
        with pytest.raises(ValueError, match="multiple of 8"):
            blockcipher.des_encrypt(key[:8], bad)
    with pytest.raises(ValueError, match="multiple of 16"):
        blockcipher.aes_ecb_encrypt(key, bytes(8))
    assert blockcipher.tdes_ecb_encrypt(key, bytes(8)) == fresh_context_tdes(key)


def test_ecb_context_cache_follows_the_key_and_stays_bounded() -> None:
    old, new = bytes(range(16)), bytes(range(1, 17))  # a ZPK and its replacement
    for _ in range(3):
        for key in (old, new):
            assert blockcipher.tdes_ecb_encrypt(key, bytes(8)) == fresh_context_tdes(key)
            clear = blockcipher.tdes_ecb_decrypt(key, fresh_context_tdes(key))
            assert clear == bytes(8)
    for i in range(200):
        blockcipher.aes_ecb_encrypt(bytes([i]) * 16, bytes(16))
    assert len(blockcipher._local.contexts) <= blockcipher._CONTEXTS_PER_THREAD


# --- PIN block decoding against the text-based reference ----------------------------------


def reference_decode(block: bytes, pan: str | None) -> str:
    """The previous decode (format read from the control nibble), on uppercase hex text."""

    def from_field(text: str, fill: str | None) -> str:
        length = int(text[1], 16)
        if not pinblock.MIN_PIN <= length <= pinblock.MAX_PIN:
            raise pinblock.PinBlockError("length")
        pin = text[2 : 2 + length]
        if not pin.isdigit():
            raise pinblock.PinBlockError("digits")
        if fill is not None and any(ch not in fill for ch in text[2 + length : 16]):
            raise pinblock.PinBlockError("fill")
        return pin

    if len(block) == 16:
        text = block.hex().upper()
        if text[0] != "4":
            raise pinblock.PinBlockError("control")
        return from_field(text, "A")
    control = block[0] >> 4
    if control == 1:
        return from_field(block.hex().upper(), None)
    if control not in (0, 3):
        raise pinblock.PinBlockError("format")
    pan_field = bytes.fromhex("0000" + (pan or "")[-13:-1])
    text = blockcipher.xor(block, pan_field).hex().upper()
    return from_field(text, "F" if control == 0 else "ABCDEF")


def outcome(decode, block: bytes, pan: str) -> str:
    try:
        return decode(block, pan)
    except pinblock.PinBlockError:
        return "error"


# Near-valid PIN fields: a plausible control nibble and length, then digits and fill mixed.
pin_fields = st.tuples(
    st.sampled_from("01234"),
    st.sampled_from("3456789ABCD"),
    st.text(alphabet="0123456789ABCDEF", min_size=14, max_size=14),
    st.text(alphabet="0123456789ABCDEF", min_size=16, max_size=16),
).map(lambda parts: bytes.fromhex("".join(parts)))


@MANY
@given(pin_fields, st.sampled_from([8, 16]), st.from_regex(r"\A[0-9]{13,19}\Z"))
def test_decode_matches_the_text_reference(field: bytes, size: int, pan: str) -> None:
    if size == 8:  # formats 0 and 3 carry the PAN field XORed in
        field = blockcipher.xor(field[:8], bytes.fromhex("0000" + pan[-13:-1]))
    assert outcome(pinblock.decode, field, pan) == outcome(reference_decode, field, pan)


@pytest.mark.parametrize("fill", ["F", "A", "B", "E", "0"])
def test_decode_fill_rules(fill: str) -> None:
    pan = "4761739001010119"
    for control, allowed in (("0", "F"), ("3", "ABCDEF"), ("1", "0123456789ABCDEF")):
        field = bytes.fromhex(f"{control}41234".ljust(16, fill))
        if control != "1":
            field = blockcipher.xor(field, bytes.fromhex("0000" + pan[-13:-1]))
        expected = "1234" if fill in allowed else "error"
        assert outcome(pinblock.decode, field, pan) == expected
