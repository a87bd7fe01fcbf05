"""Everyday spending: each cardholder's genuine transactions over the period, vectorised.

How many transactions a card makes comes from its rate; each one's category and local hour
come from its persona; merchants are mostly the cardholder's usual ones; the amount is the
category's typical ticket scaled to the cardholder; the channel (chip, contactless, online,
ATM) follows the category and the cardholder's taste for shopping online.
"""

from __future__ import annotations

import numpy as np

from simulator import geography, habits
from simulator.batch import (
    ATM,
    CASH,
    CHIP,
    CONTACTLESS,
    ECOMMERCE,
    FREE,
    INQUIRY,
    KEYED,
    NORMAL,
    ONLINE,
    POS,
    PURCHASE,
    REFUND,
    STRIPE,
    TAP,
    TRANSFER_IN,
    WRONG_CVV2,
    WRONG_PIN,
    TxBatch,
)
from simulator.population import DAY, Cards, Merchants

CONTACTLESS_LIMIT = 5_000  # 50.00 EUR without PIN
PIN_SHARE_CHIP = 0.75  # chip purchases verified by PIN (the rest by signature / no CVM)
STRIPE_SHARE = 0.004  # card-present purchases falling back to the magnetic stripe
REFUND_SHARE = 0.008
INQUIRY_SHARE = 0.06  # ATM visits that only ask for the balance
PIN_SLIP_SHARE = 0.012  # genuine PIN entries mistyped
CVV2_SLIP_SHARE = 0.006  # genuine online purchases with a mistyped CVV2


def ticket(category: np.ndarray, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Amounts in minor units: the category's log-normal ticket, scaled to the cardholder."""
    eur = habits.MEDIAN_EUR[category] * scale * rng.lognormal(0.0, habits.SPREAD[category])
    cents = np.maximum(np.round(eur * 100), 50).astype(np.int64)
    cash = category == habits.ATM
    cents[cash] = np.clip(np.round(eur[cash] / 20) * 2000, 2000, 100_000).astype(np.int64)
    return cents


def transactions(
    cards: Cards,
    merchants: Merchants,
    card: np.ndarray,
    ts: np.ndarray,
    category: np.ndarray,
    country: np.ndarray,
    rng: np.random.Generator,
    *,
    online: np.ndarray | None = None,
    amount: np.ndarray | None = None,
    merchant: np.ndarray | None = None,
    scenario: int = NORMAL,
    label: int = 0,
) -> TxBatch:
    """A batch of transactions with channel, entry mode, PIN and merchant filled in the way
    genuine cards are used. Arguments left as None are drawn."""
    n = len(card)
    if online is None:
        share = np.clip(habits.ONLINE[category] * cards.online[card], 0.0, 1.0)
        online = rng.random(n) < share
    online = online & (category != habits.ATM)
    if amount is None:
        amount = ticket(category, cards.scale[card], rng)
    if merchant is None:
        rank = rng.geometric(0.35, size=n) - 1
        merchant = merchants.local(country, category, cards.locality[card], rank)
    atm = category == habits.ATM
    tap = ~online & ~atm & (rng.random(n) < habits.CONTACTLESS[category])
    tap &= amount <= CONTACTLESS_LIMIT
    stripe = ~online & ~atm & ~tap & (rng.random(n) < STRIPE_SHARE)
    channel = np.full(n, POS, dtype=np.int8)
    channel[online] = ECOMMERCE
    channel[tap] = CONTACTLESS
    channel[atm] = ATM
    entry = np.full(n, CHIP, dtype=np.int8)
    entry[online] = ONLINE
    entry[tap] = TAP
    entry[stripe] = STRIPE
    pin = atm | ((entry == CHIP) & (rng.random(n) < PIN_SHARE_CHIP))
    tx_type = np.where(atm, CASH, PURCHASE).astype(np.int8)
    inquiry = atm & (rng.random(n) < INQUIRY_SHARE)
    tx_type[inquiry] = INQUIRY
    amount = np.where(inquiry, 0, amount)
    return TxBatch(
        card=card.astype(np.int64),
        ts=ts.astype(np.float64),
        category=category.astype(np.int64),
        country=country.astype(np.int64),
        merchant=merchant.astype(np.int64),
        terminal=merchants.terminal(merchant, cards.locality[card] + rng.integers(0, 3, n)),
        channel=channel,
        entry=entry,
        tx_type=tx_type,
        amount=amount.astype(np.int64),
        pin_present=pin,
        forced=np.full(n, FREE, dtype=np.int8),
        label=np.full(n, label, dtype=np.int8),
        scenario=np.full(n, scenario, dtype=np.int8),
    )


def local_times(
    cards: Cards, card: np.ndarray, day: np.ndarray, start: float, rng: np.random.Generator
) -> np.ndarray:
    """UTC timestamps on the given days at hours the cardholder's persona shops (local time)."""
    hour = habits.sample_rows(habits.HOUR_CDF, cards.persona[card], rng)
    local = start + day * DAY + hour * 3600.0 + rng.uniform(0, 3600.0, len(card))
    return local - geography.UTC_OFFSET_S[cards.home[card]]


def everyday(
    cards: Cards, merchants: Merchants, start: float, days: int, rng: np.random.Generator
) -> TxBatch:
    """Every card's genuine transactions at home over ``days`` days, plus a few refunds."""
    counts = rng.poisson(cards.rate * days)
    card = np.repeat(np.arange(len(cards)), counts)
    day = rng.integers(0, days, size=len(card))
    ts = local_times(cards, card, day, start, rng)
    category = habits.sample_rows(habits.CATEGORY_CDF, cards.persona[card], rng)
    country = cards.home[card]
    batch = transactions(cards, merchants, card, ts, category, country, rng)
    return TxBatch.concat([batch, slips(batch, rng), refunds(batch, start + days * DAY, rng)])


def slips(batch: TxBatch, rng: np.random.Generator) -> TxBatch:
    """Genuine mistakes: a mistyped PIN or CVV2, then the same purchase again a minute later
    (returns the retries; the mistakes are marked in ``batch``), so that a failed PIN or CVV2
    is a hint of fraud, not proof."""
    n = len(batch)
    wrong_pin = batch.pin_present & (rng.random(n) < PIN_SLIP_SHARE)
    wrong_cvv2 = (batch.channel == ECOMMERCE) & (rng.random(n) < CVV2_SLIP_SHARE)
    batch.forced[wrong_pin] = WRONG_PIN
    batch.forced[wrong_cvv2] = WRONG_CVV2
    retries = batch.take(np.flatnonzero(wrong_pin | wrong_cvv2))
    retries.ts = retries.ts + rng.uniform(20, 120, len(retries))
    retries.forced[:] = FREE
    return retries


def transfers_in(batch: TxBatch, share: float, end: float, rng: np.random.Generator) -> TxBatch:
    """Money sent to the card (Visa's original credit, 26) beside ``share`` of the card's
    transactions: a friend paying back, a marketplace payout, a gambling win. Genuine
    cardholders receive them too, and sometimes take cash out the same day, so money received
    is a hint of a mule, not proof."""
    chosen = rng.random(len(batch)) < share
    out = batch.take(np.flatnonzero(chosen))
    n = len(out)
    out.ts = np.minimum(out.ts + rng.uniform(-2, 2, n) * DAY, end - 60.0)
    out.amount = np.round(rng.lognormal(np.log(9_000), 0.9, n)).astype(np.int64) + 500
    out.tx_type[:] = TRANSFER_IN
    out.category[:] = habits.INDEX["4829"]
    out.channel[:] = POS  # sent by the network for the originator: no card, no terminal
    out.entry[:] = KEYED
    out.pin_present[:] = False
    out.forced[:] = FREE
    return out


def refunds(batch: TxBatch, end: float, rng: np.random.Generator) -> TxBatch:
    """Some purchases come back: a refund at the same merchant and terminal days later."""
    chosen = (batch.tx_type == PURCHASE) & (rng.random(len(batch)) < REFUND_SHARE)
    out = batch.take(np.flatnonzero(chosen))
    out.ts = np.minimum(out.ts + rng.uniform(1, 14, len(out)) * DAY, end - 60.0)
    out.amount = np.maximum((out.amount * rng.uniform(0.3, 1.0, len(out))).astype(np.int64), 1)
    out.tx_type[:] = REFUND
    out.pin_present[:] = False
    return out
