"""Labelled traffic: a seeded, reproducible stream of journal rows with fraud scenarios.

``generate(TrafficConfig(...))`` simulates a card population over a period and returns a
``Traffic`` whose columns are exactly the journal export's (``JOURNAL_COLUMNS``) plus ``label``
(1 = fraud) and ``scenario``. Rules backtests and model training read it like a real export.

Scenario rates are shares of cards: ``stolen_card=0.003`` means 0.3% of the cards are stolen
at some point of the period (each victim then makes several fraudulent transactions). All
amounts are in the account currency (EUR, as the demo issuer's accounts), as a scheme converts
them before they reach the issuer; ``currency`` and ``per_euro`` give the cards another
currency (yen, dinars), every amount converted at that rate into its minor units.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from authhost.admin.journal_export import journal_schema
from authhost.auth.currencies import EXPONENTS
from simulator import geography, habits, scenarios
from simulator.batch import (
    ATM,
    CHANNELS,
    CONTACTLESS,
    CREDITS,
    ECOMMERCE,
    ENTRY_MODES,
    PURCHASE,
    SCENARIOS,
    TX_TYPES,
    WALLET_FRAUD,
    TxBatch,
)
from simulator.population import DAY, PRODUCTS, Cards, make_cards, make_merchants
from simulator.settle import APPROVED, REASONS, RESPONSE_CODES, settle
from simulator.spending import everyday, transfers_in

CURRENCY = "978"
DEFAULT_START = 1767225600.0  # 2026-01-01T00:00:00Z: a fixed start keeps seeds reproducible
FORMATS = ("csv", "parquet")


@dataclass(frozen=True, slots=True)
class ScenarioRates:
    """Share of cards each scenario touches during the period (0.004 = 0.4% of cards)."""

    card_testing: float = 0.004
    compromised_merchant: float = 0.006
    stolen_card: float = 0.003
    account_takeover: float = 0.003
    travel: float = 0.08  # genuine: label 0
    bin_attack: float = 0.0  # attacks a day (unknown card numbers at one merchant), not cards
    money_mule: float = 0.0  # cards paid by transfer and emptied at ATMs within hours
    # genuine transfers to the card, as a share of everyday transactions (0.01: about one a
    # card a quarter): with mules, so that a transfer received is no proof
    transfers_in: float = 0.0
    # genuine cardholders who pay with a phone wallet token (most taps, some in-app payments)
    wallets: float = 0.0
    # cards whose stolen number a fraudster puts in a wallet and spends within hours
    wallet_fraud: float = 0.0

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"the {name} rate must be between 0 and 1, got {value}")
        fraud = self.card_testing + self.compromised_merchant
        fraud += self.stolen_card + self.account_takeover + self.money_mule + self.wallet_fraud
        if fraud > 0.9:
            raise ValueError("the fraud scenario rates add up to more than 90% of the cards")


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    cards: int = 5000
    days: int = 90
    seed: int = 7
    start: float = DEFAULT_START  # epoch seconds, UTC
    rates: ScenarioRates = field(default_factory=ScenarioRates)
    # the cards' currency (ISO 4217 numeric) and its units to a euro: the population spends
    # in euros, converted at this rate into that currency's minor units (its own exponent)
    currency: str = CURRENCY
    per_euro: float = 1.0

    def __post_init__(self) -> None:
        # each names the option of authhost-sim traffic that sets it ("the period must be at
        # least 3 days" left the reader to find that the period is --days)
        if self.cards < 1:
            raise ValueError("--cards: the population needs at least one card")
        if self.days < 3:
            raise ValueError("--days: the period must be at least 3 days")
        if self.seed < 0:
            raise ValueError("--seed: the seed is a number of 0 or more")
        if not 0 <= self.start < math.inf:  # NaN fails too
            raise ValueError("--start: the start is epoch seconds, 0 or more")
        if self.currency not in EXPONENTS:
            raise ValueError(f"--currency: {self.currency!r} is not an ISO 4217 numeric code")
        if not 0 < self.per_euro < math.inf:
            raise ValueError("--per-euro: the rate is a number above 0 (160 yen to a euro)")


@dataclass(frozen=True, slots=True)
class Traffic:
    """Generated rows in time order, as Arrow columns (journal columns, then label, scenario)."""

    columns: dict[str, pa.Array]
    config: TrafficConfig

    def __len__(self) -> int:
        return len(self.columns["ts"])

    def table(self) -> pa.Table:
        schema = labelled_schema()
        arrays = [self.columns[name].cast(schema.field(name).type) for name in schema.names]
        return pa.Table.from_arrays(arrays, schema=schema)

    def rows(self) -> list[dict[str, object]]:
        """Row dicts (what ``authhost.models.context.replay_contexts`` takes)."""
        return self.table().to_pylist()

    def write(self, path: Path, fmt: str | None = None) -> int:
        """Write CSV or Parquet (from ``fmt`` or the file suffix); return the row count."""
        fmt = (fmt or path.suffix.lstrip(".")).lower()
        if fmt not in FORMATS:
            raise ValueError(f"output format must be one of {', '.join(FORMATS)} (got {fmt!r})")
        table = self.table()
        if fmt == "csv":
            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path)
        return len(self)

    def summary(self) -> dict[str, object]:
        """Counts for a person to sanity-check: rows, fraud rows, cards per scenario."""
        scenario = self.columns["scenario"].to_numpy(zero_copy_only=False)
        card = self.columns["card_id"].to_numpy(zero_copy_only=False)
        codes = self.columns["response_code"].to_numpy(zero_copy_only=False)
        return {
            "rows": len(self),
            "cards": self.config.cards,
            "days": self.config.days,
            "seed": self.config.seed,
            "fraud_rows": int(pc.sum(self.columns["label"]).as_py() or 0),
            "rows_by_scenario": dict(Counter(scenario.tolist())),
            "cards_by_scenario": {  # issued cards: a BIN attack's unknown numbers are none
                name: len(np.unique(card[(scenario == name) & (card != "")])) for name in SCENARIOS
            },
            "response_codes": dict(Counter(codes.tolist())),
        }


def labelled_schema() -> pa.Schema:
    """The journal export schema plus ``label`` (int8, 1 = fraud) and ``scenario`` (text)."""
    schema = journal_schema()
    return schema.append(pa.field("label", pa.int8())).append(pa.field("scenario", pa.string()))


def generate(config: TrafficConfig | None = None) -> Traffic:
    """Simulate ``config.cards`` cards over ``config.days`` days; same config, same rows."""
    config = config or TrafficConfig()
    rng = np.random.default_rng(config.seed)
    rates, n, days, start = config.rates, config.cards, config.days, config.start
    end = start + days * DAY
    cards = make_cards(n, start, rng)
    merchants = make_merchants(n, rng)
    daily = everyday(cards, merchants, start, days, rng)

    travellers = rng.choice(n, size=round(rates.travel * n), replace=False)
    daily, trips = scenarios.travel(cards, merchants, daily, travellers, start, days, rng)

    order = rng.permutation(n)
    sizes = [round(r * n) for r in (rates.card_testing, rates.stolen_card, rates.account_takeover)]
    cuts = np.cumsum([0, *sizes])
    testing_victims, stolen_victims, takeover_victims = (
        order[cuts[i] : cuts[i + 1]] for i in range(3)
    )
    compromised = scenarios.compromised_merchant(
        cards, merchants, daily, round(rates.compromised_merchant * n), order[: cuts[-1]],
        start, days, rng,
    )  # fmt: skip
    testing = scenarios.card_testing(cards, merchants, testing_victims, start, days, rng)
    stolen, blocked_from, blocked_to = scenarios.stolen_card(
        cards, merchants, stolen_victims, start, days, rng
    )
    takeover = scenarios.account_takeover(cards, merchants, takeover_victims, start, days, rng)
    # money to the card is drawn from a stream of its own, after the rest: without it, a seed
    # gives the rows it gave before transfers were simulated
    money = np.random.default_rng([config.seed, 26])
    taken = np.concatenate([order[: cuts[-1]], compromised.card])  # no card in two scenarios
    free = np.setdiff1d(np.arange(n), taken)
    mules = money.choice(free, size=min(round(rates.money_mule * n), len(free)), replace=False)
    mule = scenarios.money_mule(cards, merchants, mules, start, days, money)

    genuine = TxBatch.concat([daily, trips])
    genuine = genuine.take(
        np.flatnonzero(~_blocked(genuine, stolen_victims, blocked_from, blocked_to, n))
    )
    received = transfers_in(genuine, rates.transfers_in, end, money)
    # wallets from a stream of their own too: without them, a seed's rows are as before
    phones = np.random.default_rng([config.seed, 27])
    unused = np.setdiff1d(free, mules)
    victims = phones.choice(unused, size=min(round(rates.wallet_fraud * n), len(unused)),
                            replace=False)  # fmt: skip
    wallet_theft, stolen_at = scenarios.wallet_fraud(cards, merchants, victims, start, days, phones)
    wallets = _wallet_plan(n, rates.wallets, victims, stolen_at, start, days, phones)
    parts = [genuine, received, compromised, testing, stolen, takeover, mule, wallet_theft]
    unknown = None
    if rates.bin_attack:  # drawn last: the other scenarios' rows stay what they were
        unknown, hits = scenarios.bin_attack(cards, merchants, rates.bin_attack, start, days, rng)
        parts += [hits] if hits is not None else []
    batch = TxBatch.concat(parts)
    batch = batch.take(np.flatnonzero((batch.ts >= start) & (batch.ts < end)))
    batch = batch.take(np.argsort(batch.ts, kind="stable"))
    columns = _columns(batch, cards, start, rng)
    columns.update(_wallet_columns(batch, wallets, phones))
    # address verification from a stream of its own, drawn last: a seed's other columns stay
    columns["avs_result"] = _avs_results(batch, columns, np.random.default_rng([config.seed, 28]))
    # a withheld CVV2 (S) from a stream of its own, drawn last: a seed's other columns stay
    columns["cvv2_result"] = _cvv2_results(batch, columns, np.random.default_rng([config.seed, 29]))
    columns["arn"] = _text(np.full(len(batch), ""))  # requests: no clearing ARN
    columns["completes"] = _text(np.full(len(batch), ""))  # requests: no completion
    if unknown is not None and len(unknown.ts):
        columns = _merged(columns, _attack_columns(unknown, len(batch)))
    if config.currency != CURRENCY or config.per_euro != 1.0:
        columns = _in_currency(columns, config.currency, config.per_euro)
    return Traffic(columns, config)


MONEY_COLUMNS = ("amount_minor", "transaction_amount_minor", "available_before", "hold_amount",
                 "balance_delta")  # fmt: skip


def _in_currency(
    columns: dict[str, pa.Array], currency: str, per_euro: float
) -> dict[str, pa.Array]:
    """The euro cent columns as minor units of ``currency`` at ``per_euro`` units a euro."""
    factor = per_euro * 10 ** EXPONENTS[currency] / 100.0
    out = dict(columns)
    for name in MONEY_COLUMNS:
        cents = columns[name].to_numpy(zero_copy_only=False)
        out[name] = pa.array(np.rint(cents * factor).astype(np.int64))
    for name in ("currency", "transaction_currency"):
        out[name] = _text(np.full(len(columns[name]), currency))
    return out


@dataclass(frozen=True, slots=True)
class WalletPlan:
    """Which cards are in a phone wallet, which wallet, and since when (per card index;
    -1: none)."""

    wallet: np.ndarray  # int index into WALLET_NAMES, -1 none
    since: np.ndarray  # epoch seconds the token was registered
    fraud: np.ndarray  # bool: the wallet is a fraudster's


WALLET_NAMES = ("apple_pay", "google_pay", "samsung_pay")
WALLET_TAPS = 0.8  # of a wallet holder's contactless payments, the share made with the phone
WALLET_IN_APP = 0.3  # of their e-commerce payments, the share paid in-app with the wallet


def _wallet_plan(
    n: int,
    share: float,
    victims: np.ndarray,
    stolen_at: np.ndarray,
    start: float,
    days: int,
    rng: np.random.Generator,
) -> WalletPlan:
    """Genuine holders registered their token up to a year before the period, a tenth of them
    during it (a new phone); a fraud victim's wallet is the fraudster's, from the theft on."""
    wallet = np.full(n, -1, dtype=np.int64)
    since = np.zeros(n)
    holders = rng.choice(n, size=round(share * n), replace=False)
    wallet[holders] = rng.choice(len(WALLET_NAMES), size=len(holders), p=(0.45, 0.45, 0.10))
    before = start - rng.uniform(1, 365, size=len(holders)) * DAY
    during = start + rng.uniform(0, days, size=len(holders)) * DAY
    since[holders] = np.where(rng.random(len(holders)) < 0.1, during, before)
    fraud = np.zeros(n, dtype=bool)
    wallet[victims] = rng.choice(len(WALLET_NAMES), size=len(victims), p=(0.45, 0.45, 0.10))
    since[victims] = stolen_at
    fraud[victims] = True
    return WalletPlan(wallet, since, fraud)


def _wallet_columns(
    batch: TxBatch, plan: WalletPlan, rng: np.random.Generator
) -> dict[str, pa.Array]:
    """The wallet, token and token age of each row: a holder's taps and some of their in-app
    payments after the token was registered, and every row of a wallet fraud."""
    n = len(batch)
    card = batch.card
    wallet = plan.wallet[card]
    draw = rng.random(n)
    used = (wallet >= 0) & (batch.ts >= plan.since[card])
    used &= ((batch.channel == CONTACTLESS) & (draw < WALLET_TAPS)) | (
        (batch.channel == ECOMMERCE) & (draw < WALLET_IN_APP)
    )
    used &= batch.tx_type == PURCHASE
    used = np.where(batch.scenario == WALLET_FRAUD, True, used)
    used &= batch.label == plan.fraud[card]  # a victim's own payments are not the thief's
    names = _lookup(["", *WALLET_NAMES], np.where(used, wallet + 1, 0))
    last4 = _lookup(["", *(f"{d:04d}" for d in range(10_000))],
                    np.where(used, (card * 7919 + 13) % 10_000 + 1, 0))  # fmt: skip
    age = np.where(used, (batch.ts - plan.since[card]) / 3600.0, -1.0)
    return {"wallet": names, "token_last4": last4, "token_age_hours": pa.array(age)}


def _attack_columns(attack: scenarios.BinAttack, first_row: int) -> dict[str, pa.Array]:
    """A BIN attack's rows: unknown numbers, answered 14 before any other check, so no card,
    account, product or CVV result; numbered after the cards' rows."""
    n = len(attack.ts)
    empty = _text(np.full(n, ""))
    zeros = pa.array(np.zeros(n, dtype=np.int64))
    no = pa.array(np.zeros(n, dtype=bool))
    stan, transmission, rrn = _identifiers(attack.ts, first_row)
    terminal = _text(attack.terminal_id)
    acquirer = _join("1", _text(attack.country), "01")
    return {
        "ts": pa.array(attack.ts),
        "mti": _text(np.full(n, "0100")),
        "message_class": _text(np.full(n, "authorisation")),
        "response_code": _text(np.full(n, "14")),
        "card_id": empty,
        "pan_masked": _text(attack.pan_masked),
        "pan_index": _text(attack.pan_index),
        "account_id": empty,
        "product_id": empty,
        "processing_code": _text(np.full(n, "000000")),
        "amount_minor": pa.array(attack.amount),
        "currency": _text(np.full(n, CURRENCY)),
        "mcc": _text(attack.mcc),
        "country": _text(attack.country),
        "channel": _text(np.full(n, "ecommerce")),
        "pos_entry_mode": _text(np.full(n, "812")),
        "terminal_id": terminal,
        "merchant_id": _text(attack.merchant_id),
        "acquirer_id": acquirer,
        "stan": stan,
        "rrn": rrn,
        "transmission_time": transmission,
        "approval_code": empty,
        "reason_codes": _text(np.full(n, "card.unknown")),
        "rule_matches": empty,
        "review": no,
        "fraud_score": pa.array(np.full(n, -1, dtype=np.int64)),
        "challenger_score": pa.array(np.full(n, -1, dtype=np.int64)),
        "model_skipped": no,
        "pin_present": no,
        "pin_failed": no,
        "cvv_failed": no,
        "home_country": empty,
        "card_age_days": pa.array(np.full(n, -1.0)),
        "available_before": zeros,
        "hold_amount": zeros,
        "latency_us": pa.array(np.full(n, 300, dtype=np.int64)),
        **_transmission_keys(
            _text(np.full(n, "0100")), stan, rrn, transmission, acquirer, terminal
        ),
        "transaction_amount_minor": pa.array(attack.amount),
        "transaction_currency": _text(np.full(n, CURRENCY)),
        "authentication": _text(np.full(n, "none")),  # a fraudster's shop asks for none
        "merchant_name": _text([f"SIM WEB SHOP {m[-7:]}" for m in attack.merchant_id]),
        "model_reasons": empty,  # the simulated host ran no model
        "movement": empty,  # every one declined: nothing moved
        "travel_notice": no,  # a fraudster sends none
        "atc": pa.array(np.full(n, -1, dtype=np.int64)),  # card-not-present: no cryptogram
        "stored_credential": empty,  # a card number tried, not one kept on file
        "cavv_result": empty,  # no 3-D Secure claim, no value
        "wallet": empty,  # card numbers typed in, not tokens
        "token_last4": empty,
        "token_age_hours": pa.array(np.full(n, -1.0)),
        "balance_delta": zeros,  # every one declined: nothing moved
        "avs_result": empty,  # no address asked for
        "cvv2_result": empty,  # an unknown card: declined (14) before its CVV2 is checked
        "arn": empty,  # requests: no clearing ARN
        "completes": empty,  # requests: no completion
        "model_score": pa.array(np.full(n, -1, dtype=np.int64)),  # the simulated host ran none
        "journal_id": pa.array(np.arange(first_row + 1, first_row + n + 1, dtype=np.int64)),
        "label": pa.array(np.ones(n, dtype=np.int8)),
        "scenario": _text(np.full(n, "bin_attack")),
    }


# How e-commerce cardholders were authenticated (field 48 SE 42): most genuine purchases pass
# 3-D Secure or an exemption; fraudsters mostly shop where nobody asks
AUTHENTICATIONS = ("authenticated", "exempt", "attempted", "none")
GENUINE_AUTHENTICATION = (0.75, 0.10, 0.10, 0.05)
FRAUD_AUTHENTICATION = (0.10, 0.05, 0.20, 0.65)


def _authentication(batch: TxBatch, rng: np.random.Generator) -> pa.Array:
    """The authentication column: "" unless e-commerce, else drawn by label."""
    n = len(batch)
    genuine = rng.choice(len(AUTHENTICATIONS), size=n, p=GENUINE_AUTHENTICATION)
    fraud = rng.choice(len(AUTHENTICATIONS), size=n, p=FRAUD_AUTHENTICATION)
    drawn = np.where(batch.label == 1, fraud, genuine)
    drawn = np.where(batch.channel == ECOMMERCE, drawn, len(AUTHENTICATIONS))
    return _lookup([*AUTHENTICATIONS, ""], drawn)


# Address verification (cards.avs): of the web shops' card-number payments, the share whose
# checkout asks the issuer to verify the billing address; the results by who typed it. A
# cardholder types their own (a typo now and then, a card without an address on file); a
# fraudster with a card number bought in bulk does not know it; one who took over the account
# (and the cardholder's identity with it) does
AVS_ASKED = 0.6
AVS_RESULTS = ("Y", "A", "Z", "N", "U")
GENUINE_AVS = (0.90, 0.03, 0.04, 0.01, 0.02)
FRAUD_AVS = (0.15, 0.05, 0.15, 0.60, 0.05)
BEFORE_AVS = ("14", "30", "41", "43", "54", "62", "N7")  # declined before the address is read


def _avs_results(
    batch: TxBatch, columns: dict[str, pa.Array], rng: np.random.Generator
) -> pa.Array:
    """The avs_result column: "" unless a card-number web payment whose shop asked."""
    n = len(batch)
    asked = (batch.channel == ECOMMERCE) & (rng.random(n) < AVS_ASKED)
    asked &= _is(columns["wallet"], "")  # in-app wallet payments carry no typed address
    # as the host: checked in the card verification step, after the card's state and its CVV2
    codes = columns["response_code"].to_numpy(zero_copy_only=False)
    asked &= ~np.isin(codes, BEFORE_AVS)
    genuine = rng.choice(len(AVS_RESULTS), size=n, p=GENUINE_AVS)
    fraud = rng.choice(len(AVS_RESULTS), size=n, p=FRAUD_AVS)
    knows = (batch.label == 0) | (batch.scenario == SCENARIOS.index("account_takeover"))
    drawn = np.where(knows, genuine, fraud)
    return _lookup([*AVS_RESULTS, ""], np.where(asked, drawn, len(AVS_RESULTS)))


BEFORE_CVV2 = ("14", "30", "41", "43", "54", "62")  # declined before the CVV2 is checked
# Of the card-number web payments that reach the CVV2 check without failing it, the share
# whose merchant says the card has no CVV2 (Visa's 126.10 presence 9 or 2: answered S): a
# fraudster with a card number bought without the card often has none to give; a cardholder's
# shop rarely leaves it out (a legacy checkout). One who took over the account has it
GENUINE_WITHHELD = 0.003
FRAUD_WITHHELD = 0.25


def _cvv2_results(
    batch: TxBatch, columns: dict[str, pa.Array], rng: np.random.Generator
) -> pa.Array:
    """The cvv2_result column, as the host finds it: N for the CVV2 failures (N7), S for a
    CVV2 the merchant said the card has not (drawn: GENUINE_WITHHELD, FRAUD_WITHHELD), M for
    the other card-number web payments the card verification step reached (in-app wallet
    payments carry no CVV2), "" for the rest."""
    codes = columns["response_code"].to_numpy(zero_copy_only=False)
    typed = (batch.channel == ECOMMERCE) & _is(columns["wallet"], "")
    checked = typed & ~np.isin(codes, BEFORE_CVV2)
    failed = codes == "N7"
    lacks = (batch.label == 1) & (batch.scenario != SCENARIOS.index("account_takeover"))
    withheld = rng.random(len(batch)) < np.where(lacks, FRAUD_WITHHELD, GENUINE_WITHHELD)
    found = np.where(failed, 1, np.where(checked, np.where(withheld, 2, 0), 3))
    return _lookup(["M", "N", "S", ""], found)


def _is(column: pa.Array, value: str) -> np.ndarray:
    return pc.equal(column, value).to_numpy(zero_copy_only=False)


def _merged(first: dict[str, pa.Array], second: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """Both sets of rows in time order (stable: a tie keeps the first set's row first)."""
    joined = {
        name: pa.concat_arrays([first[name], second[name].cast(first[name].type)]) for name in first
    }
    order = pc.sort_indices(joined["ts"])  # stable
    return {name: column.take(order) for name, column in joined.items()}


def _blocked(
    batch: TxBatch, victims: np.ndarray, since: np.ndarray, until: np.ndarray, n: int
) -> np.ndarray:
    """Genuine rows of stolen cards between the theft and the replacement card's arrival."""
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    lo[victims], hi[victims] = since, until
    return (batch.ts >= lo[batch.card]) & (batch.ts < hi[batch.card])


def _text(values: np.ndarray | list[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _digits(values: np.ndarray, width: int) -> pa.Array:
    """Zero-padded decimal text of non-negative integers."""
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width=width, padding="0")


def _lookup(table: np.ndarray | list[str], index: np.ndarray) -> pa.Array:
    """``table[index]`` as an Arrow string column (a C-speed take, no Python strings)."""
    return _text(list(table)).take(pa.array(index))


def _join(*parts: pa.Array | str, separator: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, separator)


def _clock(ts: np.ndarray) -> tuple[np.ndarray, ...]:
    """(year, month, day, day of year, hour, minute, second) of UTC epoch seconds."""
    seconds = ts.astype("datetime64[s]")
    days = seconds.astype("datetime64[D]")
    months = seconds.astype("datetime64[M]")
    years = seconds.astype("datetime64[Y]")
    in_day = (seconds - days).astype(np.int64)
    return (
        years.astype(np.int64) + 1970,
        months.astype(np.int64) % 12 + 1,
        (days - months).astype(np.int64) + 1,
        (days - years).astype(np.int64) + 1,
        in_day // 3600,
        in_day // 60 % 60,
        in_day % 60,
    )


def _identifiers(ts: np.ndarray, first_row: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """STAN (the row's number from ``first_row``), transmission time (MMDDhhmmss) and RRN
    (year digit, day of year, hour, STAN) of rows at ``ts``."""
    stan = _digits((np.arange(len(ts)) + first_row) % 999_999 + 1, 6)
    year, month, day, yday, hour, minute, second = _clock(ts)
    transmission = _join(
        _digits(month, 2), _digits(day, 2), _digits(hour, 2), _digits(minute, 2),
        _digits(second, 2),
    )  # fmt: skip
    rrn = _join(_digits(year % 10, 1), _digits(yday, 3), _digits(hour, 2), stan)
    return stan, transmission, rrn


def _transmission_keys(
    mti: pa.Array,
    stan: pa.Array,
    rrn: pa.Array,
    transmission: pa.Array,
    acquirer: pa.Array,
    terminal: pa.Array,
) -> dict[str, pa.Array]:
    """The journal's dedupe key (a retransmission's identifiers) and match key (how a reversal
    finds the entry), as the host writes them."""
    return {
        "dedupe_key": _join(
            pc.utf8_slice_codeunits(mti, 0, 3), stan, rrn, terminal, transmission, separator="|"
        ),  # fmt: skip
        "match_key": _join(
            pc.utf8_ltrim(stan, characters="0"), transmission, acquirer, terminal, separator="|"
        ),  # fmt: skip
    }


def _columns(
    batch: TxBatch, cards: Cards, start: float, rng: np.random.Generator
) -> dict[str, pa.Array]:
    """The journal's columns (plus label and scenario) for a time-ordered batch."""
    n = len(batch)
    outcome = settle(batch, cards, start)
    code_index = outcome.response_code
    code = _lookup(RESPONSE_CODES, code_index)
    credit = np.isin(batch.tx_type, CREDITS)  # money to the card: 0200s, credited
    financial = ((batch.channel == ATM) | credit).astype(np.int64)
    mti = _lookup(["0100", "0200"], financial)
    stan, transmission, rrn = _identifiers(batch.ts, 0)
    country = _lookup(geography.CODES, batch.country)
    terminal = _join("T", _digits(batch.terminal, 7))
    merchant = _join("M", country, _digits(batch.merchant, 11))
    acquirer = _join("1", country, _digits(batch.merchant % 20 + 1, 2))
    approved = code_index == APPROVED
    approval = pc.if_else(pa.array(approved), _digits(rng.integers(0, 1_000_000, n), 6), "")
    card = batch.card
    empty = _text(np.full(n, ""))
    columns = {
        "ts": pa.array(batch.ts),
        "mti": mti,
        "message_class": _lookup(["authorisation", "financial"], financial),
        "response_code": code,
        "card_id": _lookup(cards.card_id, card),
        "pan_masked": _lookup(cards.pan_masked, card),
        "pan_index": _lookup(cards.pan_index, card),
        "account_id": _lookup(cards.account_id, card),
        "product_id": _lookup([p.product_id for p in PRODUCTS], cards.product[card]),
        "processing_code": _lookup([t + "0000" for t in TX_TYPES], batch.tx_type),
        "amount_minor": pa.array(batch.amount),
        "currency": _text(np.full(n, CURRENCY)),
        "mcc": _lookup(habits.MCCS, batch.category),
        "country": country,
        "channel": _lookup(CHANNELS, batch.channel),
        "pos_entry_mode": _lookup(ENTRY_MODES, batch.entry),
        "terminal_id": terminal,
        "merchant_id": merchant,
        "acquirer_id": acquirer,
        "stan": stan,
        "rrn": rrn,
        "transmission_time": transmission,
        "approval_code": approval,
        "reason_codes": _lookup([REASONS.get(c, "") for c in RESPONSE_CODES], code_index),
        "rule_matches": empty,
        "review": pa.array(np.zeros(n, dtype=bool)),
        "fraud_score": pa.array(np.full(n, -1, dtype=np.int64)),
        "challenger_score": pa.array(np.full(n, -1, dtype=np.int64)),
        "model_skipped": pa.array(np.zeros(n, dtype=bool)),
        "pin_present": pa.array(batch.pin_present),
        "pin_failed": pa.array(code_index == RESPONSE_CODES.index("55")),
        "cvv_failed": pa.array(code_index == RESPONSE_CODES.index("N7")),
        "home_country": _lookup(geography.CODES, cards.home[card]),
        "card_age_days": pa.array((batch.ts - cards.created[card]) / DAY),
        "available_before": pa.array(outcome.available_before),
        "hold_amount": pa.array(outcome.hold_amount),
        "latency_us": pa.array(np.round(rng.lognormal(np.log(800), 0.4, n)).astype(np.int64)),
        **_transmission_keys(mti, stan, rrn, transmission, acquirer, terminal),
        # the simulated cards are all used in euros: what the merchant charged is what was billed
        "transaction_amount_minor": pa.array(batch.amount),
        "transaction_currency": _text(np.full(n, CURRENCY)),
        "authentication": _authentication(batch, rng),  # drawn last: the columns above stay
        # field 43 as a simulated acquirer sends it: the category and the merchant's number
        "merchant_name": _join(
            "SIM ",
            _lookup([c.name.upper() for c in habits.CATEGORIES], batch.category),
            " ",
            _digits(batch.merchant % 10_000_000, 7),
        ),  # fmt: skip
        "model_reasons": _text(np.full(n, "")),  # the simulated host ran no model
        # an approved 0100 holds, an approved 0200 posts (the host's default per class)
        "movement": _lookup(
            ["", "hold", "post", "credit"],
            np.where(outcome.hold_amount > 0, 1 + financial, np.where(credit & approved, 3, 0)),
        ),
        "travel_notice": pa.array(np.zeros(n, dtype=bool)),  # the simulated cardholders send none
        "atc": pa.array(np.full(n, -1, dtype=np.int64)),  # the simulated host checks no chip
        "stored_credential": _text(np.full(n, "")),  # no card-on-file habits simulated
        "wallet": _text(np.full(n, "")),  # no wallets simulated
        "token_last4": _text(np.full(n, "")),
        "token_age_hours": pa.array(np.full(n, -1.0)),
        # an ATM withdrawal posts (takes), money to the card is credited (gives), a purchase
        # holds (moves no balance)
        "balance_delta": pa.array(
            np.where(
                (outcome.hold_amount > 0) & (financial == 1) & ~credit,
                -outcome.hold_amount,
                np.where(credit & approved, batch.amount, 0),
            ).astype(np.int64)
        ),
        "model_score": pa.array(np.full(n, -1, dtype=np.int64)),  # the simulated host ran none
        "journal_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "label": pa.array(batch.label),
        "scenario": _lookup(SCENARIOS, batch.scenario),
    }
    # the simulated issuer checks the ACS's CAVVs, and fraudsters who pass 3-D Secure (an
    # account taken over) pass with a genuine one: each claim verifies
    columns["cavv_result"] = _lookup(
        ["", "2", "3"],
        np.select(
            [_is(columns["authentication"], "authenticated"),
             _is(columns["authentication"], "attempted")],
            [1, 2],
            0,
        ),
    )  # fmt: skip
    return columns


def timed_generate(config: TrafficConfig) -> tuple[Traffic, float]:
    """``generate`` and the seconds it took (the CLI reports it)."""
    began = time.perf_counter()
    traffic = generate(config)
    return traffic, time.perf_counter() - began
