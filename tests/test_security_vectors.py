"""Published test vectors for every algorithm of the security module.

Sources: ISO 9564-1 format 0 example; ANSI X9.24-1:2009 annex A.4 (TDES DUKPT, BDK
0123456789ABCDEFFEDCBA9876543210, KSN FFFF9876543210E0000n, PIN 1234, PAN 4012345678909);
ANSI X9.24-3:2017 supplement test vectors (AES-128 BDK FEDCBA9876543210F1F1F1F1F1F1F1F1,
initial key id 1234567890123456); the classic Visa CVV example (CVK A 0123456789ABCDEF,
CVK B FEDCBA9876543210, PAN 4123456789012345, expiry 8701, service code 101 -> 561);
ISO 9797-1 annex B ("Now is the time for all ", MAC algorithm 3, padding 1).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.security import cardvalues, dukpt, mac, pinblock, pinverify
from authhost.security.blockcipher import tdes_ecb_encrypt
from authhost.security.pinblock import PinBlockFormat

TEST_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


# --- ISO 9564-1 PIN blocks ----------------------------------------------------------------


def test_iso0_standard_example() -> None:
    # PIN field 041234FFFFFFFFFF XOR PAN field 0000987654321098
    block = pinblock.encode("1234", "43219876543210987", PinBlockFormat.ISO0)
    assert block.hex().upper() == "0412AC89ABCDEF67"
    assert pinblock.decode(block, "43219876543210987") == "1234"


@pytest.mark.parametrize(
    ("fmt", "block", "pan", "pin"),
    [
        (PinBlockFormat.ISO0, "041277CDDEEFF669", "5544332211009966", "1234"),
        (PinBlockFormat.ISO3, "341277EEEFCCB43C", "5544332211009966", "1234"),
        (PinBlockFormat.ISO1, "1C123456789012AB", None, "123456789012"),
    ],
    ids=["format 0", "format 3", "format 1 (12-digit PIN)"],
)
def test_decode_known_clear_blocks(fmt, block, pan, pin) -> None:
    assert pinblock.decode(bytes.fromhex(block), pan, fmt) == pin
    assert pinblock.decode(bytes.fromhex(block), pan) == pin  # format read from the block


def test_iso4_known_encrypted_block() -> None:
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    block = bytes.fromhex("E4BE5B623AF7E006AC319E5B93544564")
    assert pinblock.decrypt_pin_block(key, block, "1234567890123456") == "1234"


def test_iso4_pin_field_layout() -> None:
    field = pinblock.encode("1234", None, PinBlockFormat.ISO4)
    assert field.hex().upper()[:16] == "441234AAAAAAAAAA"
    assert pinblock.decode(field, None) == "1234"


@pytest.mark.parametrize(
    "pin_field",
    [
        "051234FFFFFFFFFF",  # length 5, but fill starts after 4 digits
        "031234FFFFFFFFFF",  # PIN length 3
        "D41234FFFFFFFFFF",  # PIN length 13
        "24123AFFFFFFFFFF",  # format 2 is not accepted online
        "04123AFFFFFFFFFF",  # non-decimal PIN digit
        "041234FFFFFFFFFE",  # fill digit is not F
        "34123456789ABCDE",  # format 3 fill must be A-F
    ],
)
def test_malformed_clear_blocks_are_rejected(pin_field) -> None:
    pan = "5544332211009966"
    pan_field = int("0000" + pan[-13:-1], 16)
    block = (int(pin_field, 16) ^ pan_field).to_bytes(8, "big")
    with pytest.raises(pinblock.PinBlockError):
        pinblock.decode(block, pan)


# --- DUKPT ----------------------------------------------------------------------------------

X924_1_BDK = TEST_KEY
X924_1_KSN = "FFFF9876543210E00000"


def test_tdes_dukpt_ipek() -> None:
    ipek = dukpt.tdes_ipek(X924_1_BDK, bytes.fromhex(X924_1_KSN))
    assert ipek.hex().upper() == "6AC292FAA1315B4D858AB3A3D7D5933A"


@pytest.mark.parametrize(
    ("counter", "pin_key", "encrypted_block"),
    [
        (1, "042666B49184CF5C68DE9628D0397B36", "1B9C1845EB993A7A"),
        (2, "C46551CEF9FD244FAA9AD834130D3B38", "10A01C8D02C69107"),
        (3, "0DF3D9422ACA561A47676D07AD6BAD05", "18DC07B94797B466"),
    ],
)
def test_tdes_dukpt_x9_24_1_vectors(counter, pin_key, encrypted_block) -> None:
    ksn = dukpt.ksn_with_counter(X924_1_KSN, counter)
    assert dukpt.tdes_pin_key(X924_1_BDK, ksn).hex().upper() == pin_key
    block = dukpt.terminal_encrypt_pin_tdes(X924_1_BDK, ksn, "1234", "4012345678909")
    assert block.hex().upper() == encrypted_block
    host = dukpt.TdesDukptHost(X924_1_BDK)
    key = host.pin_key(ksn)
    assert pinblock.decrypt_pin_block(key, block, "4012345678909") == "1234"


def test_tdes_dukpt_cache_reuses_the_ipek_per_ksn_base() -> None:
    host = dukpt.TdesDukptHost(X924_1_BDK)
    for counter in (1, 2, 3, 4):
        host.pin_key(dukpt.ksn_with_counter(X924_1_KSN, counter))
    assert len(host.cache) == 1
    host.pin_key("FFFF9876543211E00001")  # another device
    assert len(host.cache) == 2


@pytest.mark.parametrize("counter", [0, 0b11111111111])  # zero; eleven one-bits
def test_tdes_dukpt_rejects_counters_a_ped_never_uses(counter) -> None:
    with pytest.raises(dukpt.DukptError):
        dukpt.tdes_pin_key(X924_1_BDK, dukpt.ksn_with_counter(X924_1_KSN, counter))


AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES_IKID = bytes.fromhex("1234567890123456")


def test_aes_dukpt_initial_key() -> None:
    assert (
        dukpt.aes_initial_key(AES_BDK, AES_IKID).hex().upper() == "1273671EA26AC29AFA4D1084127652A1"
    )


@pytest.mark.parametrize(
    ("counter", "derivation_key"),
    [
        (0x00000001, "4F21B565BAD9835E112B6465635EAE44"),
        (0x00000002, "2F34D68DE10F68D38091A73B9E7C437C"),
        (0x00000008, "718EE6CF0B27E53D5F7AF99C4D8146A2"),
        (0x0001FFFE, "E21E8C8D347F8561A2BE752DAA85A111"),
        (0x00020000, "F7AE9025468A25D37B7249CFFED224C8"),
        (0xFFFF0000, "F6BA59389BD14A9855BE9727E7C52E3C"),
    ],
)
def test_aes_dukpt_x9_24_3_derivation_keys(counter, derivation_key) -> None:
    ik = dukpt.aes_initial_key(AES_BDK, AES_IKID)
    ksn = AES_IKID + counter.to_bytes(4, "big")
    assert dukpt.aes_transaction_key(ik, ksn).hex().upper() == derivation_key


@pytest.mark.parametrize(
    ("counter", "usage", "working_key"),
    [
        (1, dukpt.AesKeyUsage.PIN_ENCRYPTION, "AF8CB133A78F8DC2D1359F18527593FB"),
        (2, dukpt.AesKeyUsage.PIN_ENCRYPTION, "D30BDC73EC9714B000BEC66BDB7B6D09"),
        (1, dukpt.AesKeyUsage.MAC_GENERATION, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),
        (1, dukpt.AesKeyUsage.DATA_ENCRYPT, "A35C412EFD41FDB98B69797C02DCD08F"),
    ],
)
def test_aes_dukpt_x9_24_3_working_keys(counter, usage, working_key) -> None:
    ik = dukpt.aes_initial_key(AES_BDK, AES_IKID)
    ksn = AES_IKID + counter.to_bytes(4, "big")
    assert dukpt.aes_working_key(ik, ksn, usage).hex().upper() == working_key


def test_aes_dukpt_host_round_trip_with_format_4() -> None:
    ksn = "123456789012345600000007"
    block = dukpt.terminal_encrypt_pin_aes(AES_BDK, ksn, "987654", "4761739001010010")
    assert len(block) == 16
    host = dukpt.AesDukptHost(AES_BDK)
    assert pinblock.decrypt_pin_block(host.pin_key(ksn), block, "4761739001010010") == "987654"
    host.pin_key("123456789012345600000008")
    assert len(host.cache) == 1


@settings(max_examples=60, deadline=None)
@given(
    counters=st.lists(st.integers(min_value=1, max_value=(1 << 21) - 1), min_size=1, max_size=12),
    devices=st.lists(
        st.sampled_from(["FFFF9876543210E00000", "FFFF9876543211200000"]), min_size=12, max_size=12
    ),
)
def test_tdes_cached_host_matches_the_standard_derivation(counters, devices) -> None:
    host = dukpt.TdesDukptHost(X924_1_BDK, cache_size=8)
    for counter, device in zip(counters, devices, strict=False):
        if counter.bit_count() > 10:
            continue
        ksn = dukpt.ksn_with_counter(device, counter)
        assert host.pin_key(ksn) == dukpt.tdes_pin_key(X924_1_BDK, ksn)


@settings(max_examples=40, deadline=None)
@given(
    counters=st.lists(st.integers(min_value=1, max_value=(1 << 32) - 1), min_size=1, max_size=8),
)
def test_aes_cached_host_matches_the_standard_derivation(counters) -> None:
    host = dukpt.AesDukptHost(AES_BDK, cache_size=4)
    for counter in counters:
        if counter.bit_count() > 16:
            continue
        ksn = AES_IKID + counter.to_bytes(4, "big")
        assert host.pin_key(ksn) == dukpt.aes_pin_key(AES_BDK, ksn)


# --- PIN verification values ----------------------------------------------------------------


def test_visa_pvv_known_example() -> None:
    assert pinverify.visa_pvv(TEST_KEY, "3", "4524", "1122334455667788") == "4021"


@pytest.mark.parametrize(
    ("pvk", "pan", "natural", "pin", "offset"),
    [
        ("1313131313131313", "1234567890123456", "643085", "099764", "456789"),
        ("0123456789ABCDEF", "1234567890123445", "9046", "1234", "2298"),
    ],
    ids=["6-digit PIN, single-DES PVK", "4-digit PIN, offset on track 3"],
)
def test_ibm3624_published_examples(pvk, pan, natural, pin, offset) -> None:
    # whole PAN as validation data, decimalisation table 0123456789012345
    params = pinverify.Ibm3624Params(offset=0, length=16)
    key = bytes.fromhex(pvk)
    assert pinverify.ibm3624_natural_pin(key, pan, len(natural), params) == natural
    assert pinverify.ibm3624_offset(key, pin, pan, params) == offset
    assert pinverify.ibm3624_verify(key, pin, pan, offset, params)


def test_ibm3624_custom_decimalisation_table() -> None:
    # the table of the IBM CCA example (8351296477461538) applied to a known encryption
    table = "8351296477461538"
    key = bytes.fromhex("1313131313131313")
    params = pinverify.Ibm3624Params(decimalisation=table, offset=0, length=16)
    expected = "64DA85B3795AE4E4".translate(str.maketrans("0123456789ABCDEF", table))
    assert pinverify.ibm3624_natural_pin(key, "1234567890123456", 12, params) == expected[:12]


def test_ibm3624_known_example() -> None:
    # natural PIN 4524 with decimalisation table 1234567890123456 over the whole PAN
    params = pinverify.Ibm3624Params(
        decimalisation="1234567890123456", offset=0, length=16, pad="F"
    )
    assert pinverify.ibm3624_natural_pin(TEST_KEY, "1122334455667788", 4, params) == "4524"
    assert pinverify.ibm3624_offset(TEST_KEY, "4524", "1122334455667788", params) == "0000"
    assert pinverify.ibm3624_offset(TEST_KEY, "5525", "1122334455667788", params) == "1001"
    assert pinverify.ibm3624_verify(TEST_KEY, "5525", "1122334455667788", "1001", params)
    assert not pinverify.ibm3624_verify(TEST_KEY, "5526", "1122334455667788", "1001", params)


# --- CVV -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pan", "expiry", "service_code", "cvv"),
    [
        ("4123456789012345", "8701", "101", "561"),
        ("1234567890123456", "9912", "220", "170"),
    ],
)
def test_visa_cvv_known_examples(pan, expiry, service_code, cvv) -> None:
    assert cardvalues.visa_cvv(TEST_KEY, pan, expiry, service_code) == cvv


# --- ISO 9797-1 algorithm 3 -----------------------------------------------------------------


def test_retail_mac_iso9797_example() -> None:
    assert mac.retail_mac(TEST_KEY, b"Now is the time for all ").hex().upper() == (
        "A1C72E74EA3FA9B6"
    )


def test_cached_cipher_contexts_are_correct_across_threads_and_evictions() -> None:
    """ECB contexts are reused per thread: results must not depend on threads or eviction."""
    keys = [bytes([i]) * 8 + bytes([255 - i]) * 8 for i in range(100)]  # > cache size
    expected = [fresh_context_tdes(key) for key in keys]

    def work(_: int) -> list[bytes]:
        return [tdes_ecb_encrypt(key, b"\x00" * 8) for key in keys * 3]

    with ThreadPoolExecutor(max_workers=4) as pool:
        for result in pool.map(work, range(8)):
            assert result == expected * 3


def fresh_context_tdes(key: bytes) -> bytes:
    """TDES of a zero block with a fresh context (what the cache must reproduce)."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
    return encryptor.update(b"\x00" * 8) + encryptor.finalize()


# ISO 9564-1: "the 12 rightmost digits of the PAN excluding the check digit; if the PAN
# excluding the check digit is less than 12 digits, the digits are right justified and padded
# to the left with zeros". A 12-digit PAN (which card production makes on an 8-digit BIN) has
# 11, so its PAN field is 00000 + those 11 digits. Found by a review: it raised a bare
# ValueError building the block, and every format 0/3 block of such a card failed to decrypt.
def test_iso0_and_iso3_pad_the_pan_field_of_a_12_digit_pan() -> None:
    pan = "412345678903"
    block = pinblock.encode("1234", pan, PinBlockFormat.ISO0)
    # 041234FFFFFFFFFF XOR 0000041234567890
    assert block.hex().upper() == "041230EDCBA9876F"
    assert pinblock.decode(block, pan) == "1234"
    for fmt in (PinBlockFormat.ISO0, PinBlockFormat.ISO3):
        encrypted = pinblock.encrypt_pin_block(TEST_KEY, "123456789012", pan, fmt)
        assert pinblock.decrypt_pin_block(TEST_KEY, encrypted, pan) == "123456789012"
