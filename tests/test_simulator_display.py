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


def test_a_partial_approval_is_shown_in_its_currencys_decimals() -> None:
    """Field 4 of a partial approval (10) is what was approved, in field 49's currency: 15,000
    yen were shown as 150.00 approved, 1.250 dinars as 12.50."""
    from simulator.display import outcome

    yen = outcome({"39": "10", "4": "000000015000", "49": "392"})
    assert "15,000 approved" in yen and "150.00" not in yen
    assert "1.250 approved" in outcome({"39": "10", "4": "000000001250", "49": "048"})
    assert "12.50 approved" in outcome({"39": "10", "4": "000000001250", "49": "978"})


def test_the_terminals_cards_show_what_is_available_in_their_currencys_decimals() -> None:
    """The terminal's card list showed a yen card's 150,000 yen available as 1,500.00."""
    from rich.console import Console

    from simulator.demo_cards import DemoFile, SimCard
    from simulator.terminal_command import card_table

    def card(currency: str, available: int) -> SimCard:
        return SimCard("", "3012", "201", "", "", None, "active", f"acc-{currency}", currency,
                       available)  # fmt: skip

    demo = DemoFile((card("392", 150_000), card("048", 1_250), card("978", 1_250)), b"", b"")
    console = Console(width=200, record=True)
    console.print(card_table(demo))
    text = console.export_text()
    assert "150,000" in text and "1,500.00" not in text
    assert "1.250" in text and "12.50" in text
