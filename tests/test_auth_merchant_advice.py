"""The merchant advice code of each kind of decline (auth.merchant_advice)."""

from __future__ import annotations

import pytest

from authhost.auth.merchant_advice import merchant_advice_code


@pytest.mark.parametrize(
    ("code", "reasons", "advice"),
    [
        ("00", [], None),
        ("10", [], None),
        ("59", ["R-CT"], None),  # suspected fraud: nothing a fraudster could use
        ("62", ["card.replaced"], "01"),  # the account updater has the new card
        ("62", ["card.suspended"], "02"),
        ("62", ["card.closed"], "03"),
        ("51", ["funds.insufficient"], "02"),
        ("91", ["deadline"], "02"),
        ("78", ["card.not_activated"], "02"),
        ("14", ["card.unknown"], "03"),
        ("R1", ["stop_payment.merchant"], "21"),
        ("R3", ["stop_payment.all_merchants"], "21"),
        ("05", [], None),
    ],
)
def test_each_decline_says_whether_to_try_again(code, reasons, advice) -> None:
    assert merchant_advice_code(code, reasons) == advice
