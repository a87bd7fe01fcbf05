"""The labelled traffic generator: journal format, reproducibility, scenario rates, semantics."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from authhost.cards.luhn import is_luhn_valid
from authhost.models.context import replay_contexts
from authhost.store.records import JOURNAL_COLUMNS, LABEL_COLUMNS
from simulator.cli import app
from simulator.traffic import ScenarioRates, TrafficConfig, generate

FRAUD = {"card_testing", "compromised_merchant", "stolen_card", "account_takeover", "money_mule"}
RATES = ScenarioRates(
    card_testing=0.02, compromised_merchant=0.02, stolen_card=0.015, account_takeover=0.01,
    travel=0.1, money_mule=0.01, transfers_in=0.01,
)  # fmt: skip


@pytest.fixture(scope="module")
def rich_traffic():
    """1,500 cards over 30 days with generous fraud rates: enough victims to measure."""
    return generate(TrafficConfig(cards=1500, days=30, seed=11, rates=RATES))


@pytest.fixture(scope="module")
def rows(rich_traffic):
    return rich_traffic.rows()


def column(traffic, name: str) -> np.ndarray:
    return traffic.columns[name].to_numpy(zero_copy_only=False)


def test_columns_are_the_journal_export_plus_label_and_scenario(rich_traffic):
    assert tuple(rich_traffic.table().column_names) == JOURNAL_COLUMNS + LABEL_COLUMNS


def test_same_seed_same_rows_other_seed_other_rows():
    config = TrafficConfig(cards=200, days=10, seed=5, rates=RATES)
    first, again = generate(config), generate(config)
    assert first.table().equals(again.table())
    other = generate(TrafficConfig(cards=200, days=10, seed=6, rates=RATES))
    assert not first.table().equals(other.table())


@pytest.mark.parametrize(
    "scenario",
    [
        "card_testing",
        "compromised_merchant",
        "stolen_card",
        "account_takeover",
        "travel",
        "money_mule",
    ],  # fmt: skip
)
def test_share_of_cards_per_scenario_is_as_configured(rich_traffic, scenario):
    configured = getattr(RATES, scenario)
    measured = rich_traffic.summary()["cards_by_scenario"][scenario] / 1500
    assert measured == pytest.approx(configured, rel=0.15)


def test_label_is_one_exactly_on_fraud_scenarios(rich_traffic):
    scenario, label = column(rich_traffic, "scenario"), column(rich_traffic, "label")
    assert set(np.unique(scenario)) == FRAUD | {"normal", "travel"}
    assert np.array_equal(label == 1, np.isin(scenario, list(FRAUD)))


def test_zero_rates_give_no_fraud():
    none = ScenarioRates(0, 0, 0, 0, 0, money_mule=0)
    traffic = generate(TrafficConfig(cards=300, days=10, rates=none))
    assert set(column(traffic, "scenario")) == {"normal"}
    assert column(traffic, "label").sum() == 0


def test_rows_are_in_time_order_within_the_period(rich_traffic):
    ts = column(rich_traffic, "ts")
    config = rich_traffic.config
    assert np.all(np.diff(ts) >= 0)
    assert ts[0] >= config.start and ts[-1] < config.start + 30 * 86400


def test_cards_show_only_masked_test_bin_pans(rich_traffic):
    for masked in np.unique(column(rich_traffic, "pan_masked")):
        assert masked[:6] in {"476173", "541333", "400000"}
        assert masked[6:12] == "******" and len(masked) == 16


def test_pans_behind_the_masks_are_luhn_valid():
    from simulator.population import _pans

    pans = _pans(np.array(["476173"] * 50), np.random.default_rng(1))
    assert all(is_luhn_valid(p) and p.startswith("476173") for p in pans)


def by_scenario(rows, name):
    return [r for r in rows if r["scenario"] == name]


def test_card_testing_is_bursts_of_tiny_online_amounts(rows):
    tests = [r for r in by_scenario(rows, "card_testing") if r["amount_minor"] < 600]
    assert len(tests) > 0.6 * len(by_scenario(rows, "card_testing"))
    assert {r["channel"] for r in tests} == {"ecommerce"}
    assert any(r["response_code"] == "N7" and r["cvv_failed"] for r in tests)


def test_stolen_cards_fail_pins_at_atms_and_meet_a_blocked_card(rows):
    stolen = by_scenario(rows, "stolen_card")
    wrong_pins = [r for r in stolen if r["pin_failed"]]
    assert wrong_pins and {r["channel"] for r in wrong_pins} == {"atm"}
    assert {r["response_code"] for r in wrong_pins} == {"55"}
    assert any(r["response_code"] == "43" for r in stolen)


def test_account_takeover_is_high_online_spend(rows):
    takeover = by_scenario(rows, "account_takeover")
    normal = [r["amount_minor"] for r in by_scenario(rows, "normal")]
    assert {r["channel"] for r in takeover} == {"ecommerce"}
    assert np.median([r["amount_minor"] for r in takeover]) > 5 * np.median(normal)


def test_compromised_cards_visited_a_common_merchant_before_the_fraud(rows):
    fraud = by_scenario(rows, "compromised_merchant")
    first_fraud = {}
    for r in fraud:
        first_fraud.setdefault(r["card_id"], r["ts"])
    visited = {}
    for r in rows:
        card = r["card_id"]
        if r["label"] == 0 and card in first_fraud and r["ts"] < first_fraud[card]:
            visited.setdefault(r["merchant_id"], set()).add(card)
    # most victims share a merchant with other victims (the point of compromise)
    shared = set().union(*(cards for cards in visited.values() if len(cards) >= 2))
    assert len(shared) >= 0.8 * len(first_fraud)


def test_travel_is_genuine_foreign_spending(rows):
    abroad = [r for r in by_scenario(rows, "travel") if r["country"] != r["home_country"]]
    assert abroad and all(r["label"] == 0 for r in abroad)
    assert {"atm", "pos"} <= {r["channel"] for r in abroad}


def test_genuine_cardholders_also_mistype_pins(rows):
    assert any(r["pin_failed"] and r["label"] == 0 for r in rows)


def test_rows_replay_into_transaction_contexts_with_velocity(rows):
    contexts = [ctx for _, ctx in replay_contexts(rows[:5000])]
    assert len(contexts) == 5000
    assert max(ctx.velocity.count_24h for ctx in contexts) > 1


def test_cli_writes_csv_and_parquet(tmp_path):
    runner = CliRunner()
    for name in ("t.csv", "t.parquet"):
        out = tmp_path / name
        result = runner.invoke(app, ["traffic", "--cards", "100", "--days", "5", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rows"] > 100
    with (tmp_path / "t.csv").open() as file:
        header = next(csv.reader(file))
    assert tuple(header) == JOURNAL_COLUMNS + LABEL_COLUMNS
    assert pq.read_table(tmp_path / "t.parquet").num_rows == json.loads(result.stdout)["rows"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.txt"], "output format"),
        (["-o", "x.csv", "--stolen-card", "1.5"], "between 0 and 1"),
        (["-o", "x.csv", "--days", "1"], "--days: the period must be at least 3 days"),
        (["-o", "x.csv", "--cards", "0"], "--cards: the population needs at least one card"),
    ],
    ids=["unknown suffix", "rate above 1", "period too short", "no cards"],
)
def test_cli_refuses_bad_options_with_a_message(tmp_path, args, message):
    result = CliRunner().invoke(app, ["traffic", *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert message in result.output


def test_a_bin_attack_tries_unknown_numbers_at_one_terminal_and_hits_some_cards():
    """Unknown numbers in the issuer's BINs, seconds apart at one web shop's terminal, each
    answered 14; the few that are real cards are fraud at the same terminal."""
    rates = ScenarioRates(0, 0, 0, 0, 0, bin_attack=0.5)
    traffic = generate(TrafficConfig(cards=400, days=10, seed=3, rates=rates))
    rows = traffic.rows()
    attack = by_scenario(rows, "bin_attack")
    unknown = [r for r in attack if not r["card_id"]]
    hits = [r for r in attack if r["card_id"]]
    assert len(unknown) >= 20 and hits
    assert {r["response_code"] for r in unknown} == {"14"}
    assert all(r["label"] == 1 for r in attack)
    assert {r["pan_masked"][:6] for r in unknown} <= {"476173", "541333", "400000"}
    assert len({r["pan_index"] for r in unknown}) == len(unknown)  # every number a new one
    assert {r["channel"] for r in attack} == {"ecommerce"}
    places = {(r["merchant_id"], r["terminal_id"]) for r in unknown}
    assert {(r["merchant_id"], r["terminal_id"]) for r in hits} <= places
    assert {r["response_code"] for r in hits} <= {"00", "N7", "51"}
    ts = [r["ts"] for r in rows]
    assert ts == sorted(ts)
    assert len({r["journal_id"] for r in rows}) == len(rows)
    # each attack shows at its terminal, not on any card: the replay counts the numbers there
    last = [ctx for row, ctx in replay_contexts(rows) if row in unknown][-1]
    assert last.terminal_velocity.unknown_card_count_10m >= 3
    assert traffic.summary()["cards_by_scenario"]["bin_attack"] == len({r["card_id"] for r in hits})
    without = generate(
        TrafficConfig(cards=400, days=10, seed=3, rates=replace(rates, bin_attack=0))
    )
    assert "bin_attack" not in set(column(without, "scenario"))


def test_web_purchases_say_how_the_cardholder_was_authenticated(rows):
    """Field 48 SE 42 as the journal keeps it: only e-commerce says, and fraudsters shop where
    nobody asks far more often than cardholders do."""
    web = [r for r in rows if r["channel"] == "ecommerce"]
    assert {r["authentication"] for r in rows if r["channel"] != "ecommerce"} == {""}
    assert {r["authentication"] for r in web} == {"authenticated", "exempt", "attempted", "none"}

    def share_none(label: int) -> float:
        chosen = [r for r in web if r["label"] == label]
        return sum(r["authentication"] == "none" for r in chosen) / len(chosen)

    assert share_none(1) > 5 * share_none(0)


def test_mules_are_paid_by_transfer_and_emptied_at_atms_within_hours(rows):
    """A mule's card receives a transfer (26, credited) and most of it leaves as ATM cash in
    the next hours; genuine cardholders receive transfers too, so a transfer alone proves
    nothing."""
    mule = by_scenario(rows, "money_mule")
    paid = [r for r in mule if r["processing_code"] == "260000"]
    cash = [r for r in mule if r["processing_code"] == "010000"]
    assert paid and cash and len(paid) + len(cash) == len(mule)
    assert all(r["movement"] == "credit" and r["mti"] == "0200" for r in paid)
    assert {r["channel"] for r in cash} == {"atm"} and all(r["pin_present"] for r in cash)
    for transfer in paid:
        after = [r for r in cash if r["card_id"] == transfer["card_id"]
                 and 0 < r["ts"] - transfer["ts"] < 6 * 3600]  # fmt: skip
        taken = sum(r["amount_minor"] for r in after if r["response_code"] == "00")
        assert taken >= 0.5 * transfer["amount_minor"], transfer
    genuine = [r for r in rows if r["processing_code"] == "260000" and r["label"] == 0]
    assert len(genuine) > len(paid)


def test_money_to_the_card_leaves_the_other_rows_of_a_seed_as_they_were():
    """Transfers and mules are drawn from a stream of their own: a seed without them gives
    the rows it gave before they were simulated, and with them, the same rows plus theirs."""
    config = TrafficConfig(cards=300, days=10, seed=4)
    plain = generate(config).rows()
    rates = replace(config.rates, money_mule=0.02, transfers_in=0.01)
    added = generate(replace(config, rates=rates)).rows()
    kept = [r for r in added if r["scenario"] != "money_mule" and r["processing_code"] != "260000"]
    key = ("ts", "card_id", "amount_minor", "merchant_id", "processing_code")
    assert [tuple(r[k] for k in key) for r in kept] == [tuple(r[k] for k in key) for r in plain]
    assert len(added) > len(plain)


def test_wallets_leave_the_other_rows_of_a_seed_as_they_were_and_fraud_is_young():
    """Wallet holders and wallet fraud come from a stream of their own: the rows of a seed stay
    (only the wallet columns of some are filled) plus the frauds' own. A fraudster's token
    spends within hours of being registered; a holder's wallet pays their taps for months."""
    config = TrafficConfig(cards=600, days=20, seed=5)
    plain = generate(config).rows()
    rates = replace(config.rates, wallets=0.4, wallet_fraud=0.02)
    added = generate(replace(config, rates=rates)).rows()
    kept = [r for r in added if r["scenario"] != "wallet_fraud"]
    key = ("ts", "card_id", "amount_minor", "merchant_id", "label")  # (a victim's funds go)
    assert [tuple(r[k] for k in key) for r in kept] == [tuple(r[k] for k in key) for r in plain]
    assert all(r["wallet"] == "" and r["token_age_hours"] == -1 for r in plain)

    fraud = [r for r in added if r["scenario"] == "wallet_fraud"]
    assert len({r["card_id"] for r in fraud}) == 12 and all(r["label"] == 1 for r in fraud)
    assert all(r["wallet"] and 0 <= r["token_age_hours"] < 15 for r in fraud)
    assert {r["channel"] for r in fraud} == {"contactless", "ecommerce"}
    genuine = [r for r in kept if r["wallet"]]
    assert genuine and all(r["label"] == 0 and r["token_age_hours"] >= 0 for r in genuine)
    assert {r["channel"] for r in genuine} == {"contactless", "ecommerce"}
    taps = [r for r in kept if r["channel"] == "contactless" and r["label"] == 0]
    assert 0.2 < len([r for r in taps if r["wallet"]]) / len(taps) < 0.5  # 0.4 x 0.8 of them
    assert np.median([r["token_age_hours"] for r in genuine]) > 24 * 30
    contexts = [ctx for _, ctx in replay_contexts(fraud)]
    assert all(ctx.wallet and 0 <= ctx.token_age_hours < 15 for ctx in contexts)


def test_the_cvv2_result_is_the_hosts_for_card_number_web_payments(rows):
    """N for a failed CVV2 (N7), M or S (the merchant said the card has none) for the
    card-number web payments the host checked, "" for card-present and wallet payments and
    for those declined before the CVV2. S is a fraudster's with a bought card number far more
    often than a cardholder's; one who took over the account has the CVV2."""
    web = [r for r in rows if r["channel"] == "ecommerce" and not r["wallet"]]
    assert all(r["cvv2_result"] == "" for r in rows if r not in web)
    before = ("14", "30", "41", "43", "54", "62")
    assert {r["cvv2_result"] for r in web if r["response_code"] == "N7"} == {"N"}
    assert {r["cvv2_result"] for r in web if r["response_code"] in before} <= {""}
    checked = [r for r in web if r["response_code"] not in (*before, "N7")]
    assert checked and {r["cvv2_result"] for r in checked} == {"M", "S"}
    takeover = [r for r in checked if r["scenario"] == "account_takeover"]
    assert takeover and {r["cvv2_result"] for r in takeover} == {"M"}
    bought = [r for r in checked if r["label"] == 1 and r not in takeover]
    genuine = [r for r in checked if r["label"] == 0]

    def withheld(group: list[dict]) -> float:
        return sum(r["cvv2_result"] == "S" for r in group) / len(group)

    assert withheld(bought) > 20 * withheld(genuine) > 0


def test_web_shops_ask_for_address_verification_and_fraudsters_rarely_know_it(rows):
    """The AVS result: only on card-number web payments the host read that far, about 60% of
    them; a cardholder's own address matches, a fraudster with a bought card number mostly
    does not, one who took over the account does as the cardholder."""
    web = [r for r in rows if r["channel"] == "ecommerce" and not r["wallet"]]
    others = [r for r in rows if r["channel"] != "ecommerce" or r["wallet"]]
    assert all(r["avs_result"] == "" for r in others)
    assert all(r["avs_result"] == "" for r in web if r["response_code"] == "N7")
    read = [r for r in web if r["response_code"] not in ("14", "30", "41", "43", "54", "62", "N7")]
    asked = [r for r in read if r["avs_result"]]
    assert 0.5 < len(asked) / len(read) < 0.7

    def share(scenario_rows: list[dict], result: str) -> float:
        return sum(r["avs_result"] == result for r in scenario_rows) / len(scenario_rows)

    genuine = [r for r in asked if r["label"] == 0]
    takeover = [r for r in asked if r["scenario"] == "account_takeover"]
    testing = [r for r in asked if r["scenario"] == "card_testing"]
    assert genuine and takeover and testing
    assert share(genuine, "Y") > 0.85 and share(genuine, "N") < 0.03
    assert share(testing, "N") > 0.45 and share(testing, "Y") < 0.3
    assert share(takeover, "Y") > 0.7  # the cardholder's identity came with the account


def test_traffic_in_yen_converts_every_amount_and_backtests_alike(tmp_path):
    """A bank issuing yen cards simulates its own traffic (--currency 392 --per-euro 160):
    every amount in yen, no decimals, and a rule on 16,000 yen catches what one on 100.00
    euros catches on the euro traffic of the same seed, reported in yen."""
    euros = tmp_path / "eur.parquet"
    yen = tmp_path / "jpy.parquet"
    common = ["traffic", "--cards", "200", "--days", "10", "--seed", "5"]
    assert CliRunner().invoke(app, [*common, "--out", str(euros)]).exit_code == 0
    made = CliRunner().invoke(
        app, [*common, "--out", str(yen), "--currency", "392", "--per-euro", "160"]
    )
    assert made.exit_code == 0, made.output
    e, j = pq.read_table(euros), pq.read_table(yen)
    for name in ("amount_minor", "available_before", "hold_amount", "balance_delta"):
        cents = np.array(e.column(name).to_pylist())
        assert np.array_equal(np.array(j.column(name).to_pylist()), np.rint(cents * 1.6)), name
    assert set(j.column("currency").to_pylist()) == {"392"}
    assert set(j.column("transaction_currency").to_pylist()) == {"392"}
    assert j.column("label").to_pylist() == e.column("label").to_pylist()

    from authhost.rules.backtest import run_backtest
    from authhost.rules.dataset import iter_rows, read_labelled
    from authhost.rules.loader import load_rule_set

    def declined(data, threshold: str):  # noqa: ANN001, ANN202
        rules = tmp_path / "r.toml"
        rules.write_text(f'[[rule]]\nname = "big"\nexpression = "amount > {threshold}"\n'
                         'action = "decline"\n')  # fmt: skip
        [s] = run_backtest(iter_rows(read_labelled(data)), [load_rule_set(rules)], {}).sets
        return s

    in_euros, in_yen = declined(euros, "100.00"), declined(yen, "16000")
    assert (in_yen.declined, in_yen.declined_fraud) == (in_euros.declined, in_euros.declined_fraud)
    assert in_euros.declined > 0 and set(in_yen.declined_genuine_amount) == {"392"}


def test_traffic_refuses_a_currency_it_does_not_know():
    made = CliRunner().invoke(app, ["traffic", "--out", "x.parquet", "--currency", "JPY"])
    assert made.exit_code != 0 and "--currency" in made.output
