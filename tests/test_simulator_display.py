"""What the simulator shows of a message: card data masked, codes in words."""

from __future__ import annotations

from simulator.display import shown


def test_field_48_hides_the_cvv2_and_says_what_the_merchant_advice_means() -> None:
    assert shown("48", "9203123") == "92:***"
    assert shown("48", "840221") == "84:21 (payment cancelled by the cardholder)"
    assert shown("48", "840203") == "84:03 (do not try again)"
    assert shown("39", "R1").startswith("R1 (revocation of authorisation")
    assert shown("2", "4761739001010010") == "476173******0010"


def test_visas_fields_hide_the_cvv2_and_cavv_and_say_what_field_44_means() -> None:
    cavv_hex = "00010102620000" + "1234567890123456" + "00" + "00000000"
    private = shown("126", "00C0000000000000" + cavv_hex + "11 123")
    assert private == "126.9 CAVV <hidden>; 126.10 CVV2 *** (result asked)"
    assert "123" not in private and shown("126", "0040000000000000" + "90    ").endswith(
        "CVV2 none (no result asked)"
    )
    assert shown("126", "not a field 126") == "<Visa private-use fields>"
    assert shown("48", "4328" + "A" * 28) == "43:<CAVV, hidden>"
    assert shown("60", "010000000500") == "010000000500 (e-commerce: authenticated)"
    assert shown("44", " Y        M   2") == (
        "address Y (street and postcode match); CVV2 M (match); "
        "CAVV result 2 (passed: authenticated)"
    )
    assert shown("44", " " * 12 + "1") == "CAVV result 1 (failed: authentication)"


def test_balances_in_field_54_are_shown_in_their_currencys_decimals() -> None:
    """A yen card's 150,000 yen were shown as 1,500.00 and a dinar card's 1.250 as 12.50."""
    from simulator.display import outcome

    yen = "0002392C000000150000"  # available, 392, credit, 150,000 minor units
    dinar = "0002048C000000001250"
    assert "150,000 (392)" in shown("54", yen)
    assert "1.250 (048)" in shown("54", dinar)
    assert "available 150,000 (392)" in outcome({"39": "00", "54": yen})
