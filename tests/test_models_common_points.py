"""The common point of purchase ranking on hand-built journal entries: which visits count
(approved, before the card's first fraud, within its lookback), the lift against the base
rate, minimum support, and the cards at risk."""

from __future__ import annotations

from dataclasses import replace

import pytest

from authhost.models.common_points import CommonPoints, first_frauds, is_visit
from authhost.store.records import JOURNAL_COLUMNS, JournalEntry
from simulator.traffic import ScenarioRates, TrafficConfig, generate

DAY = 86_400.0
T0 = 1_780_000_000.0
LOOKBACK = 30 * DAY
WINDOW = (T0 - LOOKBACK, T0 + 10 * DAY)


def visit(card: str, merchant: str, ts: float, **changes: object) -> JournalEntry:
    """An approved chip purchase of ``card`` at ``merchant`` (terminal T + its id)."""
    fields: dict[str, object] = {
        "ts": ts,
        "mti": "0100",
        "message_class": "authorisation",
        "response_code": "00",
        "card_id": card,
        "pan_masked": f"476173******{card[-4:]}",
        "processing_code": "000000",
        "mcc": "5411",
        "country": "276",
        "channel": "pos",
        "merchant_id": merchant,
        "terminal_id": f"T{merchant}",
        "merchant_name": f"{merchant} BERLIN DE",
    }
    fields.update(changes)
    return JournalEntry(**fields)  # type: ignore[arg-type]


def ranked(entries, first, **options):
    points = CommonPoints(first, LOOKBACK, WINDOW, **options)
    points.add_all(entries)
    return points


def test_the_merchant_the_fraud_cards_share_ranks_first_by_lift_over_a_supermarket():
    cards = [f"crd_{i:04d}" for i in range(10)]
    entries = [visit(c, "SUPERMARKET", T0 - 5 * DAY) for c in cards]
    entries += [visit(c, "SKIMMED", T0 - 3 * DAY + i) for i, c in enumerate(cards[:5])]
    first = {c: T0 for c in cards[:3]}
    points = ranked(entries, first)
    top, supermarket = points.ranking()
    assert (top.merchant_id, top.fraud_cards, top.cards) == ("SKIMMED", 3, 5)
    assert top.share == pytest.approx(0.6) and top.lift == pytest.approx(2.0)
    assert (supermarket.merchant_id, supermarket.fraud_cards, supermarket.cards) == (
        "SUPERMARKET",
        3,
        10,
    )
    assert supermarket.lift == pytest.approx(1.0)
    assert points.base_rate == pytest.approx(0.3)
    assert (top.first_visit, top.last_visit) == (T0 - 3 * DAY, T0 - 3 * DAY + 2)
    assert top.merchant_name == "SKIMMED BERLIN DE" and top.mcc == "5411"
    at_risk = points.at_risk(top)
    assert [c.card_id for c in at_risk] == cards[3:5]
    assert at_risk[0].pan_masked == "476173******0003" and at_risk[0].visits == 1
    assert not at_risk[0].in_fraud_span  # visited after the last fraud card did


def test_visits_after_the_first_fraud_declines_and_old_visits_do_not_count():
    entries = [
        # the fraud itself and what followed, at the fraudster's shop: not an exposure
        visit("crd_0001", "FRAUDSHOP", T0),
        visit("crd_0001", "FRAUDSHOP", T0 + 60),
        visit("crd_0002", "FRAUDSHOP", T0 + 3600),
        # declined at the merchant: the card was not used there
        visit("crd_0001", "DECLINER", T0 - DAY, response_code="05"),
        visit("crd_0002", "DECLINER", T0 - DAY, response_code="51"),
        # before the lookback
        visit("crd_0001", "LONGAGO", T0 - LOOKBACK - 1),
        visit("crd_0002", "LONGAGO", T0 + 3600 - LOOKBACK - 1),
        # a refund and a reversal are no purchase
        visit("crd_0001", "REFUNDER", T0 - DAY, processing_code="200000"),
        visit("crd_0002", "REFUNDER", T0 - DAY, message_class="reversal", mti="0400"),
    ]
    points = ranked(entries, {"crd_0001": T0, "crd_0002": T0 + 3600})
    assert points.ranking(min_cards=1) == []
    assert points.visits == 0 and points.entries == len(entries)


def test_one_fraud_card_is_below_the_minimum_support():
    entries = [
        visit("crd_0001", "ONLYONE", T0 - DAY),
        visit("crd_0001", "BOTH", T0 - DAY),
        visit("crd_0002", "BOTH", T0 - 2 * DAY),
        visit("crd_0003", "ONLYONE", T0 - DAY),
    ]
    first = {"crd_0001": T0, "crd_0002": T0}
    assert [p.merchant_id for p in ranked(entries, first).ranking()] == ["BOTH"]
    assert [p.merchant_id for p in ranked(entries, first).ranking(min_cards=3)] == []
    assert [p.merchant_id for p in ranked(entries, first).ranking(min_cards=1)] == [
        "BOTH",
        "ONLYONE",
    ]


def test_terminals_are_told_apart_when_asked():
    entries = [
        visit("crd_0001", "FUEL", T0 - DAY, terminal_id="PUMP01"),
        visit("crd_0002", "FUEL", T0 - DAY, terminal_id="PUMP01"),
        visit("crd_0003", "FUEL", T0 - DAY, terminal_id="PUMP02"),
        visit("crd_0004", "FUEL", T0 - DAY, terminal_id="PUMP02"),
    ]
    first = {"crd_0001": T0, "crd_0002": T0}
    [merchant] = ranked(entries, first).ranking()
    assert (merchant.terminal_id, merchant.cards, merchant.fraud_cards) == ("", 4, 2)
    points = ranked(entries, first, by="terminal")
    [pump] = points.ranking()
    assert (pump.terminal_id, pump.cards, pump.lift) == ("PUMP01", 2, pytest.approx(2.0))
    assert points.at_risk(pump) == []


def test_other_cards_count_only_in_the_window_and_ignored_cards_not_at_all():
    entries = [
        visit("crd_0001", "SHOP", T0 - DAY),
        visit("crd_0002", "SHOP", T0 - DAY),
        visit("crd_0003", "SHOP", WINDOW[0] - 1),  # before the window
        visit("crd_0004", "SHOP", WINDOW[1]),  # at its end (exclusive)
        visit("crd_0005", "SHOP", T0 - DAY),  # fraud, but first before the period
        visit("crd_0006", "SHOP", T0 - 2 * DAY),  # at risk, during the fraud cards' span
    ]
    points = ranked(entries, {"crd_0001": T0, "crd_0002": T0}, ignore={"crd_0005"})
    [shop] = points.ranking()
    assert (shop.fraud_cards, shop.cards) == (2, 3)
    [risk] = points.at_risk(shop)
    assert risk.card_id == "crd_0006" and not risk.in_fraud_span
    late = replace(entries[-1], ts=T0 - DAY, card_id="crd_0007", pan_masked="476173******0007")
    points.add(late)
    assert [c.card_id for c in points.at_risk(points.ranking()[0])] == ["crd_0007", "crd_0006"]


def test_first_fraud_is_the_earliest_labelled_entry_and_visits_need_an_acceptor():
    entries = [
        replace(visit("crd_0001", "A", T0 + 50), journal_id=7),
        replace(visit("crd_0001", "A", T0 + 10), journal_id=9),
        replace(visit("crd_0002", "A", T0), journal_id=11),
    ]
    assert first_frauds(entries, {7, 9}) == {"crd_0001": T0 + 10}
    assert not is_visit(visit("crd_0001", "", T0))
    assert not is_visit(visit("crd_0001", "A", T0, channel=""))
    assert is_visit(visit("crd_0001", "A", T0, channel="ecommerce", mti="0200",
                          message_class="financial"))  # fmt: skip
    with pytest.raises(ValueError):
        CommonPoints({}, LOOKBACK, WINDOW, by="acquirer")


def test_the_simulators_compromised_merchants_rank_first_in_its_labelled_traffic():
    """The simulator's ``compromised_merchant`` scenario (victims' cards counterfeited after
    a visit to one merchant), among its other frauds: the top merchant is one where the
    victims shopped, far above the base rate, and its other cards are not fraud cards."""
    rates = ScenarioRates(
        card_testing=0.02, compromised_merchant=0.02, stolen_card=0.015, account_takeover=0.01,
        travel=0.1, money_mule=0.01, transfers_in=0.01,
    )  # fmt: skip
    rows = generate(TrafficConfig(cards=1500, days=30, seed=11, rates=rates)).rows()
    entries = [JournalEntry(**{k: row[k] for k in JOURNAL_COLUMNS}) for row in rows]
    first = first_frauds(entries, {row["journal_id"] for row in rows if row["label"]})
    victims = {row["card_id"] for row in rows if row["scenario"] == "compromised_merchant"}
    start, end = entries[0].ts, entries[-1].ts + 1
    points = CommonPoints(first, 30 * DAY, (start, end))
    points.add_all(entries)
    top = points.ranking()[0]
    assert top.fraud_cards >= 5 and top.lift is not None and top.lift > 5
    at_risk = points.at_risk(top)
    assert at_risk and not {c.card_id for c in at_risk} & first.keys()
    assert top.fraud_cards + len(at_risk) == top.cards
    # the fraud cards there are the scenario's victims (not the card testers' or thieves')
    assert set(points.fraud_card_ids(top)) <= victims
    assert len(first) > 2 * len(victims)  # among many other fraud cards
