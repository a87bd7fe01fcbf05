"""A small labelled-traffic generator for tests, benchmarks and trying ``authhost train`` quickly.

It writes journal-export rows (``store.records.JOURNAL_COLUMNS``) plus ``label`` and
``scenario``, with a few fraud patterns the features can see: card testing (bursts of tiny
e-commerce payments), a card-not-present spree (large, foreign, at night), cloned-card cash
withdrawals abroad, and colluding merchants (fraud concentrated on a few terminals). It is
not the simulator's traffic generator (``simulator/traffic.py``), which models the full
host; it exists so that the models area can be tested on its own, fast and deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from authhost.store.records import JOURNAL_COLUMNS, JournalEntry

DAY = 86400.0
START_TS = 1_767_225_600.0  # 2026-01-01 00:00 UTC
SCENARIOS = ("card_testing", "cnp_spree", "cloned_atm", "colluding_merchant")


@dataclass(frozen=True)
class _Merchant:
    merchant_id: str
    terminal_id: str
    mcc: str
    country: str
    channel: str
    entry_mode: str


_LOCAL_MCCS = ("5411", "5541", "5812", "5814", "4111", "5912", "5311", "5691", "5999", "5732")
_FOREIGN = ("250", "724", "380", "840", "566", "643", "356")


def _merchants(rng: np.random.Generator, count: int) -> list[_Merchant]:
    out = []
    for i in range(count):
        channel = rng.choice(["pos", "contactless", "ecommerce"], p=[0.45, 0.35, 0.2])
        entry = {"pos": "05", "contactless": "07", "ecommerce": "81"}[str(channel)]
        out.append(
            _Merchant(
                merchant_id=f"M{i:06d}",
                terminal_id=f"T{i:07d}",
                mcc=str(rng.choice(_LOCAL_MCCS)),
                country="276",
                channel=str(channel),
                entry_mode=entry,
            )
        )
    return out


def _row(
    ts: float,
    card: int,
    merchant: _Merchant,
    amount: int,
    *,
    label: int,
    scenario: str,
    card_created: float,
    available: int,
    response: str = "00",
    processing: str = "000000",
    pin_failed: bool = False,
) -> dict[str, object]:
    entry = JournalEntry(
        ts=round(ts, 3),
        mti="0100",
        message_class="authorisation",
        response_code=response,
        card_id=f"C{card:06d}",
        pan_masked="400000******" + f"{card % 10000:04d}",
        pan_index=f"idx{card:06d}",
        account_id=f"A{card:06d}",
        product_id="classic",
        processing_code=processing,
        amount_minor=int(amount),
        currency="978",
        mcc=merchant.mcc,
        country=merchant.country,
        channel=merchant.channel,
        pos_entry_mode=merchant.entry_mode + "1",
        terminal_id=merchant.terminal_id,
        merchant_id=merchant.merchant_id,
        acquirer_id="123456",
        pin_present=merchant.channel in ("pos", "atm"),
        pin_failed=pin_failed,
        home_country="276",
        card_age_days=round((ts - card_created) / DAY, 3),
        available_before=available,
    )
    row = {name: getattr(entry, name) for name in JOURNAL_COLUMNS}  # asdict deep-copies: slow
    row["label"] = label
    row["scenario"] = scenario
    return row


def generate_rows(
    cards: int = 300,
    days: int = 30,
    *,
    seed: int = 0,
    fraud_card_share: float = 0.04,
    start_ts: float = START_TS,
) -> list[dict[str, object]]:
    """Labelled journal rows sorted by ``ts``: ``cards`` cards over ``days`` days."""
    rng = np.random.default_rng(seed)
    local = _merchants(rng, max(20, cards // 4))
    colluding = [_Merchant(f"X{i:05d}", f"TX{i:06d}", "5999", "276", "pos", "90") for i in range(3)]
    rows: list[dict[str, object]] = []
    end_ts = start_ts + days * DAY
    for card in range(cards):
        created = start_ts - float(rng.uniform(30, 1500)) * DAY
        typical = float(rng.lognormal(mean=8.0, sigma=0.6))  # minor units, about 30 EUR
        per_day = float(rng.uniform(0.5, 3.0))
        favourites = [local[i] for i in rng.choice(len(local), size=6, replace=False)]
        available = int(rng.uniform(50_000, 500_000))
        n = int(rng.poisson(per_day * days))
        times = np.sort(rng.uniform(start_ts, end_ts, size=n))
        for ts in times:
            day_start = start_ts + np.floor((ts - start_ts) / DAY) * DAY
            hour = float(rng.integers(7, 23))
            ts = day_start + hour * 3600 + float(rng.uniform(0, 3600))
            merchant = favourites[int(rng.integers(len(favourites)))]
            if rng.random() < 0.03:  # travel
                merchant = _Merchant(
                    merchant.merchant_id + "F",
                    merchant.terminal_id + "F",
                    merchant.mcc,
                    str(rng.choice(_FOREIGN[:3])),
                    merchant.channel,
                    merchant.entry_mode,
                )
            amount = max(100, int(rng.lognormal(np.log(typical), 0.5)))
            rows.append(
                _row(
                    ts,
                    card,
                    merchant,
                    amount,
                    label=0,
                    scenario="",
                    card_created=created,
                    available=available,
                )
            )
        if rng.random() >= fraud_card_share:
            continue
        scenario = str(rng.choice(SCENARIOS))
        onset = float(
            rng.uniform(start_ts + min(3.0, days / 2) * DAY, end_ts - min(1.0, days / 4) * DAY)
        )
        rows.extend(_fraud_rows(rng, scenario, card, onset, typical, created, available, colluding))
    rows.sort(key=lambda r: r["ts"])  # type: ignore[arg-type, return-value]
    return rows


def _fraud_rows(
    rng: np.random.Generator,
    scenario: str,
    card: int,
    onset: float,
    typical: float,
    created: float,
    available: int,
    colluding: list[_Merchant],
) -> list[dict[str, object]]:
    out = []
    common = {"label": 1, "scenario": scenario, "card_created": created, "available": available}
    if scenario == "card_testing":
        shop = _Merchant(f"D{card:05d}", f"TD{card:06d}", "5816", "840", "ecommerce", "81")
        ts = onset
        for _ in range(int(rng.integers(3, 9))):
            ts += float(rng.uniform(20, 300))
            declined = rng.random() < 0.4
            out.append(
                _row(
                    ts,
                    card,
                    shop,
                    int(rng.integers(100, 400)),
                    response="05" if declined else "00",
                    **common,
                )  # type: ignore[arg-type]
            )
        ts += float(rng.uniform(600, 3600))
        out.append(_row(ts, card, shop, int(typical * rng.uniform(8, 20)), **common))  # type: ignore[arg-type]
    elif scenario == "cnp_spree":
        ts = onset - (onset % DAY) + float(rng.uniform(0, 5)) * 3600  # at night
        for _ in range(int(rng.integers(2, 6))):
            ts += float(rng.uniform(120, 1800))
            shop = _Merchant(
                f"E{int(rng.integers(1e5)):05d}",
                f"TE{int(rng.integers(1e6)):06d}",
                str(rng.choice(["5732", "5944", "4829"])),
                str(rng.choice(_FOREIGN)),
                "ecommerce",
                "81",
            )
            out.append(_row(ts, card, shop, int(typical * rng.uniform(5, 25)), **common))  # type: ignore[arg-type]
    elif scenario == "cloned_atm":
        country = str(rng.choice(_FOREIGN[3:]))
        ts = onset
        for i in range(int(rng.integers(2, 5))):
            ts += float(rng.uniform(600, 7200))
            atm = _Merchant(f"A{country}{i}", f"TA{country}{i:03d}", "6011", country, "atm", "90")
            out.append(
                _row(
                    ts,
                    card,
                    atm,
                    int(rng.choice([20_000, 40_000, 50_000])),
                    processing="010000",
                    pin_failed=rng.random() < 0.3,
                    **common,
                )  # type: ignore[arg-type]
            )
    else:  # colluding_merchant
        merchant = colluding[int(rng.integers(len(colluding)))]
        ts = onset
        for _ in range(int(rng.integers(1, 3))):
            ts += float(rng.uniform(3600, 2 * DAY))
            out.append(_row(ts, card, merchant, int(typical * rng.uniform(3, 10)), **common))  # type: ignore[arg-type]
    return out
