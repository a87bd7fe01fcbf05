"""Visa CVV / Mastercard CVC: one algorithm for CVV (track), CVV2 (000) and iCVV (999).

Input is PAN + expiry (YYMM, as the algorithm defines it) + service code, zero padded to 32
digits, run through single-DES CBC with CVK A and a final TDES step with CVK B, then
decimalised. Pure function over a clear CVK pair (16 bytes: A then B).
"""

from __future__ import annotations

from authhost.security.blockcipher import des_encrypt, tdes_ecb_encrypt, xor
from authhost.security.decimalise import visa_digits

CVV2_SERVICE_CODE = "000"
ICVV_SERVICE_CODE = "999"


class CardValueError(ValueError):
    """Inputs a card verification value cannot be computed from (messages hold no secrets)."""


def visa_cvv(cvk: bytes, pan: str, expiry_yymm: str, service_code: str) -> str:
    """The 3-digit CVV for a PAN, expiry YYMM and service code under the CVK pair."""
    if len(cvk) != 16:
        raise CardValueError("a CVK pair is 16 bytes (CVK A then CVK B)")
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise CardValueError("PAN must be 12 to 19 decimal digits")
    if not (expiry_yymm.isascii() and expiry_yymm.isdigit() and len(expiry_yymm) == 4):
        raise CardValueError("expiry must be 4 digits (YYMM)")
    if not (service_code.isascii() and service_code.isdigit() and len(service_code) == 3):
        raise CardValueError("service code must be 3 digits")
    data = bytes.fromhex((pan + expiry_yymm + service_code).ljust(32, "0"))
    step = des_encrypt(cvk[:8], data[:8])
    return visa_digits(tdes_ecb_encrypt(cvk, xor(step, data[8:16])), 3)
