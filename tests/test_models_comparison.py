"""Champion against challenger (models.comparison): alerts at each threshold, the reported
frauds each catches and for how much, agreement, and the frauds only one catches."""

from __future__ import annotations

from authhost.models.comparison import ScoredPair, compare


def test_each_model_is_judged_at_its_own_threshold_on_the_same_requests():
    pairs = [
        ScoredPair(1, 900, 950, 5_000, True, "978"),  # both catch this fraud
        ScoredPair(2, 100, 800, 2_000, True, "978"),  # only the challenger
        ScoredPair(3, 700, 300, 1_000, True, "978"),  # only the champion
        ScoredPair(4, 50, 40, 9_000, True, "978"),  # neither
        ScoredPair(5, 650, 10, 300, False, "978"),  # the champion alerts on a genuine one
        ScoredPair(6, 20, 30, 100, None, "978"),
    ]
    report = compare(pairs, champion_threshold=600, challenger_threshold=700)
    assert report["scored_by_both"] == 6
    assert (report["reported_frauds"], report["reported_fraud_amount_minor"]) == (
        4,
        {"978": 17_000},
    )
    assert report["reported_genuine"] == 1
    assert report["champion"] == {
        "threshold": 600, "alerts": 3, "alert_rate": 0.5, "frauds_caught": 2,
        "fraud_amount_caught_minor": {"978": 6_000}, "alerts_reported_genuine": 1,
    }  # fmt: skip
    assert report["challenger"]["alerts"] == 2
    assert report["challenger"]["frauds_caught"] == 2
    assert report["challenger"]["fraud_amount_caught_minor"] == {"978": 7_000}
    assert report["agreement"] == {
        "both_alert": 1, "champion_only": 2, "challenger_only": 1, "neither": 2
    }  # fmt: skip
    assert report["frauds_only_challenger_catches"] == [2]
    assert report["frauds_only_champion_catches"] == [3]
    assert 0 < report["score_correlation"] < 1


def test_no_requests_and_constant_scores_give_no_correlation():
    empty = compare([], 500, 500)
    assert empty["scored_by_both"] == 0 and empty["champion"]["alert_rate"] == 0.0
    assert empty["score_correlation"] is None
    flat = compare([ScoredPair(i, 10, i, 1, None) for i in range(5)], 500, 500)
    assert flat["score_correlation"] is None and flat["agreement"]["neither"] == 5


def test_amounts_of_two_currencies_are_never_added():
    """10,000 yen and 100.00 dollars are both 10,000 minor units: summed, 20,000 of nothing."""
    pairs = [
        ScoredPair(1, 900, 900, 10_000, True, "392"),
        ScoredPair(2, 900, 100, 10_000, True, "840"),
        ScoredPair(3, 100, 100, 500, True, "048"),
    ]
    report = compare(pairs, champion_threshold=600, challenger_threshold=600)
    assert report["reported_fraud_amount_minor"] == {"048": 500, "392": 10_000, "840": 10_000}
    assert report["champion"]["fraud_amount_caught_minor"] == {"392": 10_000, "840": 10_000}
    assert report["challenger"]["fraud_amount_caught_minor"] == {"392": 10_000}
