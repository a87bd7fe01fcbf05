"""Hold lives by merchant category: parsing the setting, and the life a hold gets."""

from __future__ import annotations

import pytest

from authhost.auth.hold_life import DAY_S, EXTENDED_AUTHORISATION, HoldLifeError, HoldLives
from authhost.config import AuthConfig, ConfigError


def test_the_networks_extended_authorisation_categories_live_31_days() -> None:
    lives = HoldLives.parse(7, EXTENDED_AUTHORISATION)
    for mcc in ("7011", "3501", "3999", "3351", "3500", "7512", "7513", "4411"):
        assert lives.life_seconds(mcc) == 31 * DAY_S, mcc
    for mcc in ("5411", "3350", "4000", "7010", "5542", None, "", "abcd"):
        assert lives.life_seconds(mcc) == 7 * DAY_S, mcc
    assert lives.extra_seconds("7011") == 24 * DAY_S and lives.extra_seconds("5411") == 0
    assert lives.shortest_shift == 0  # nothing lives shorter than the default


def test_a_fuel_pumps_hold_can_live_hours() -> None:
    lives = HoldLives.parse(7, ["5542=2h", "7011=31d", "4111=3"])
    assert lives.life_seconds("5542") == 7_200 and lives.extra_seconds("5542") == 7_200 - 7 * DAY_S
    assert lives.life_seconds("7011") == 31 * DAY_S and lives.life_seconds("4111") == 3 * DAY_S
    assert lives.shortest_shift == 7 * DAY_S - 7_200  # how far past the cutoff to look


def test_a_single_category_and_the_first_matching_range_win() -> None:
    lives = HoldLives.parse(5, ["7011=10", "7000-7099=20"])
    days = [lives.life_seconds(mcc) / DAY_S for mcc in ("7011", "7012", "7100")]
    assert days == [10, 20, 5]
    extras = [lives.extra_seconds(mcc) for mcc in ("7011", "7012", "7100", None)]
    assert extras == [5 * DAY_S, 15 * DAY_S, 0.0, 0.0]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [("7011", "is not"), ("701=31", "is not"), ("7011=x", "is not"), ("7099-7000=31", "backwards"),
     ("5542=0h", "is not"), ("5542=2m", "is not")],
    ids=["no days", "short MCC", "days not a number", "range backwards", "no life", "minutes"],
)  # fmt: skip
def test_a_bad_entry_is_refused_with_its_reason(entry: str, reason: str) -> None:
    with pytest.raises(HoldLifeError, match=reason) as raised:
        HoldLives.parse(7, [entry])
    assert entry in str(raised.value)
    with pytest.raises(ConfigError, match=r"\[auth\]"):
        AuthConfig(hold_days_by_mcc=[entry])
