"""3-D Secure CAVVs (security.cavv): the layout the ACS writes, the CVV-with-ATN output, and
that a value verifies only for the card, result and authentication it was made for."""

from __future__ import annotations

import base64

import pytest

from authhost.security.cardvalues import visa_cvv
from authhost.security.cavv import (
    CAVV_ERRONEOUS,
    CAVV_FAILED,
    CAVV_FAILED_ATTEMPT,
    CAVV_PASSED,
    CAVV_PASSED_ATTEMPT,
    CavvError,
    check_cavv,
    make_cavv,
    parse_cavv,
)

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PAN = "4761739001010119"  # Visa's test BIN
ATN = "0000123456789012"


def test_the_layout_is_the_20_bytes_the_acs_writes() -> None:
    cavv = make_cavv(KEY, PAN, atn=ATN, unpredictable="4321", second_factor=0x05)
    raw = cavv.to_bytes()
    assert len(raw) == 20 and len(cavv.to_text()) == 28
    assert raw[0] == 0x00  # authenticated
    assert raw[1] == 0x05  # second factor authentication code
    assert raw[2] == 0x01  # key indicator
    assert raw[3:5].hex() == "0" + cavv.output  # 3 digits, left-padded BCD
    assert raw[5:7].hex() == "4321"
    assert raw[7:15].hex() == ATN
    assert raw[15:] == bytes(5)
    assert parse_cavv(cavv.to_text()) == cavv
    attempt = make_cavv(KEY, PAN, atn=ATN, attempt=True)
    assert attempt.to_bytes()[0] == 0x07 and attempt.attempt


def test_the_output_is_the_cvv_algorithm_over_the_atn_and_the_result() -> None:
    """CVV with ATN: the ATN's last four digits stand for the expiry, the results code and
    the second factor code for the service code."""
    for attempt, second_factor, service_code in ((False, 0x01, "001"), (True, 0x12, "712")):
        cavv = make_cavv(KEY, PAN, atn=ATN, attempt=attempt, second_factor=second_factor)
        assert cavv.output == visa_cvv(KEY, PAN, ATN[-4:], service_code)


def test_a_genuine_value_passes_and_any_change_fails() -> None:
    genuine = make_cavv(KEY, PAN, atn=ATN)
    assert check_cavv(KEY, PAN, genuine.to_text()).result == CAVV_PASSED
    attempt = make_cavv(KEY, PAN, atn=ATN, attempt=True)
    assert check_cavv(KEY, PAN, attempt.to_text()).result == CAVV_PASSED_ATTEMPT
    other_key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    assert check_cavv(other_key, PAN, genuine.to_text()) == (CAVV_FAILED, "")  # no ATN
    assert check_cavv(KEY, PAN, genuine.to_text()).atn == ATN  # what an approval uses up
    assert check_cavv(KEY, "4761739001010127", genuine.to_text()).result == CAVV_FAILED
    raw = bytearray(genuine.to_bytes())
    # an attempt passed off as an authentication, and the other way round
    promoted = bytearray(attempt.to_bytes())
    promoted[0] = 0x00
    assert check_cavv(KEY, PAN, _text(promoted)).result == CAVV_FAILED
    raw[0] = 0x07
    assert check_cavv(KEY, PAN, _text(raw)).result == CAVV_FAILED_ATTEMPT
    # another authentication's number, another second factor, an output off by one
    assert check_cavv(
        KEY, PAN, _text(_with(genuine.to_bytes(), 14, lambda b: b ^ 0x01))
    ).result == (CAVV_FAILED)
    assert check_cavv(KEY, PAN, _text(_with(genuine.to_bytes(), 1, lambda b: 0x02))).result == (
        CAVV_FAILED
    )
    assert (
        check_cavv(KEY, PAN, _text(_with(genuine.to_bytes(), 4, _next_digit))).result == CAVV_FAILED
    )


def _with(raw: bytes, position: int, change) -> bytearray:
    tampered = bytearray(raw)
    tampered[position] = change(tampered[position])
    return tampered


def _next_digit(byte: int) -> int:
    """The output's last digit plus one (BCD): a CAVV whose output is off by one."""
    high, low = divmod(byte, 16)
    return high * 16 + (low + 1) % 10


def _text(raw: bytes | bytearray) -> str:
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        base64.b64encode(bytes(19)).decode(),  # a byte short
        base64.b64encode(bytes(21)).decode(),
        base64.b64encode(bytes([0, 1, 1, 0x0A, 0xBC]) + bytes(15)).decode(),  # output not BCD
        base64.b64encode(bytes([0x03, 1, 1]) + bytes(17)).decode(),  # results code no ACS gives
        "",
    ],
)
def test_what_is_not_a_cavv_is_erroneous_data(text: str) -> None:
    assert check_cavv(KEY, PAN, text).result == CAVV_ERRONEOUS


def test_the_acs_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(CavvError):
        make_cavv(KEY, PAN, atn="123")
    with pytest.raises(CavvError):
        make_cavv(KEY, PAN, atn=ATN, unpredictable="12a4")
    with pytest.raises(CavvError):
        parse_cavv(base64.b64encode(bytes(10)).decode())
