"""What the simulator shows of a message: card data masked, codes in words."""

from __future__ import annotations

from simulator.display import shown


def test_field_48_hides_the_cvv2_and_says_what_the_merchant_advice_means() -> None:
    assert shown("48", "9203123") == "92:***"
    assert shown("48", "840221") == "84:21 (payment cancelled by the cardholder)"
    assert shown("48", "840203") == "84:03 (do not try again)"
    assert shown("39", "R1").startswith("R1 (revocation of authorisation")
    assert shown("2", "4761739001010010") == "476173******0010"
