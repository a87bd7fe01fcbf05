"""Cross-checks against independent implementations (psec, pyemv) on random keys/PANs/PINs.

psec and pyemv are test-only oracles: authhost never imports them at run time.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.security import cardvalues, mac, pinblock, pinverify
from authhost.security.keys import KeyAlgorithm, kcv
from authhost.security.pinblock import PinBlockFormat

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import psec
    import pyemv

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
]

TEST_BINS = ("400000", "541333", "476173")
MANY = settings(max_examples=400, deadline=None)  # ~4,000 random cases in all


def luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return body + str((10 - total % 10) % 10)


@st.composite
def pans(draw) -> str:
    length = draw(st.integers(min_value=13, max_value=19))
    bin_ = draw(st.sampled_from(TEST_BINS))
    body = draw(st.text("0123456789", min_size=length - 7, max_size=length - 7))
    return luhn_complete(bin_ + body)


pins = st.text("0123456789", min_size=4, max_size=12)
pins4 = st.text("0123456789", min_size=4, max_size=4)
tdes_keys = st.binary(min_size=16, max_size=16)
aes_keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@MANY
@given(pin=pins, pan=pans())
def test_format0_matches_psec(pin: str, pan: str) -> None:
    block = pinblock.encode(pin, pan, PinBlockFormat.ISO0)
    assert block == psec.pinblock.encode_pinblock_iso_0(pin, pan)
    assert pinblock.decode(block, pan) == pin


@MANY
@given(pin=pins, pan=pans())
def test_format3_decodes_psec_and_psec_decodes_ours(pin: str, pan: str) -> None:
    theirs = psec.pinblock.encode_pinblock_iso_3(pin, pan)
    assert pinblock.decode(theirs, pan, PinBlockFormat.ISO3) == pin
    ours = pinblock.encode(pin, pan, PinBlockFormat.ISO3)
    assert psec.pinblock.decode_pinblock_iso_3(ours, pan) == pin


@settings(max_examples=300, deadline=None)
@given(key=aes_keys, pin=pins, pan=pans())
def test_format4_round_trips_with_psec(key: bytes, pin: str, pan: str) -> None:
    theirs = psec.pinblock.encipher_pinblock_iso_4(key, pin, pan)
    assert pinblock.decrypt_pin_block(key, theirs, pan) == pin
    ours = pinblock.encrypt_pin_block(key, pin, pan, PinBlockFormat.ISO4)
    assert psec.pinblock.decipher_pinblock_iso_4(key, ours, pan) == pin


@settings(max_examples=300, deadline=None)
@given(key=tdes_keys, pin=pins, pan=pans(), fmt=st.sampled_from([0, 1, 3]))
def test_encrypted_tdes_blocks_decrypt_with_psec(key, pin, pan, fmt) -> None:
    block = pinblock.encrypt_pin_block(key, pin, pan, PinBlockFormat(fmt))
    clear = psec.des.decrypt_tdes_ecb(key, block)
    if fmt == 0:
        assert psec.pinblock.decode_pinblock_iso_0(clear, pan) == pin
    elif fmt == 3:
        assert psec.pinblock.decode_pinblock_iso_3(clear, pan) == pin
    assert pinblock.decrypt_pin_block(key, block, pan) == pin


@MANY
@given(pvk=tdes_keys, pvki=st.sampled_from("0123456789"), pin=pins4, pan=pans())
def test_visa_pvv_matches_psec(pvk, pvki, pin, pan) -> None:
    assert pinverify.visa_pvv(pvk, pvki, pin, pan) == psec.pin.generate_visa_pvv(
        pvk, pvki, pin, pan
    )


@MANY
@given(
    pvk=tdes_keys,
    pin=pins,
    pan=pans(),
    table=st.text("0123456789", min_size=16, max_size=16),
)
def test_ibm3624_offset_matches_psec(pvk, pin, pan, table) -> None:
    params = pinverify.Ibm3624Params(decimalisation=table)  # rightmost 12 excl. check digit
    ours = pinverify.ibm3624_offset(pvk, pin, pan, params)
    theirs = psec.pin.generate_ibm3624_offset(pvk, table, pin, pan, len(pan) - 13, 12, "F")
    assert ours == theirs
    natural = psec.pin.generate_ibm3624_pin(pvk, table, ours, pan, len(pan) - 13, 12, "F")
    assert natural == pin


@MANY
@given(
    cvk=tdes_keys,
    pan=pans(),
    expiry=st.text("0123456789", min_size=4, max_size=4),
    service_code=st.text("0123456789", min_size=3, max_size=3),
)
def test_cvv_matches_psec(cvk, pan, expiry, service_code) -> None:
    ours = cardvalues.visa_cvv(cvk, pan, expiry, service_code)
    theirs = psec.cvv.generate_cvv(cvk, pan, expiry, service_code)
    if len(theirs) < 3:  # psec stops when the block has under 3 digits (about 1 in 20,000)
        assert len(ours) == 3 and ours.startswith(theirs)
    else:
        assert ours == theirs


def test_cvv_of_a_block_with_one_digit_takes_the_rest_from_the_letters() -> None:
    """The result block DDDBAFCEE4DADCAE has one decimal digit (4): the Visa method takes the
    other two from the letters, A-F as 0-5, in order (D, D -> 3, 3). psec returns "4" here."""
    cvk = bytes.fromhex("C2C93CEFB1AD506632320879386582B8")
    assert cardvalues.visa_cvv(cvk, "4999988887777000", "2912", "101") == "433"


@MANY
@given(key=tdes_keys, data=st.binary(max_size=300), padding=st.sampled_from([1, 2]))
def test_retail_mac_matches_pyemv_and_psec(key, data, padding) -> None:
    ours = mac.retail_mac(key, data, padding)
    assert ours == pyemv.mac.mac_iso9797_3(key[:8], key[8:], data, padding)
    assert ours == psec.mac.generate_retail_mac(key[:8], key[8:], data, padding)


@MANY
@given(key=tdes_keys)
def test_tdes_kcv_matches_psec(key) -> None:
    assert kcv(key, KeyAlgorithm.TDES) == psec.des.generate_kcv(key, 3).hex().upper()
