"""What the issuer answered: replays the generated stream in time order against each card's
open-to-buy, the way the host's funds check would, and fills the decision columns.

Scenario-forced answers (wrong PIN, CVV2 failure, card reported stolen) come first; then a
purchase or withdrawal above the open-to-buy is declined with 51; a refund or a transfer to
the card adds to it. Open-to-buy is restored at
the start of each card's 30-day cycle (salary, or the credit card bill paid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.batch import CASH, CREDITS, FORCED_CODES, FREE, PURCHASE, TxBatch
from simulator.population import DAY, Cards

CYCLE_S = 30 * DAY
RESPONSE_CODES = ("00", "51", *FORCED_CODES[1:])  # what the simulated issuer answers
APPROVED, NO_FUNDS = 0, 1
REASONS = {
    "55": "pin.wrong",
    "N7": "cvv.cvv2_failed",
    "43": "card.stolen",
    "51": "funds.insufficient",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """Decision columns, one element per transaction of the (time-ordered) batch."""

    response_code: np.ndarray  # int8 index into RESPONSE_CODES
    available_before: np.ndarray  # int64
    hold_amount: np.ndarray  # int64


def settle(batch: TxBatch, cards: Cards, start: float) -> Outcome:
    n = len(batch)
    codes = np.zeros(n, dtype=np.int8)
    available_before = np.zeros(n, dtype=np.int64)
    hold = np.zeros(n, dtype=np.int64)
    available = (cards.budget * 0.6).astype(np.int64).tolist()
    budget = cards.budget.tolist()
    # which 30-day cycle each card is in: resets when this number changes
    cycle_of = np.floor((batch.ts - start + cards.cycle[batch.card]) / CYCLE_S).astype(np.int64)
    current_cycle = [0] * len(cards)
    forced_code = [RESPONSE_CODES.index(c) if c else APPROVED for c in FORCED_CODES]
    for i, (card, forced, tx_type, amount, cycle) in enumerate(
        zip(
            batch.card.tolist(),
            batch.forced.tolist(),
            batch.tx_type.tolist(),
            batch.amount.tolist(),
            cycle_of.tolist(),
            strict=True,
        )
    ):
        if cycle != current_cycle[card]:
            current_cycle[card] = cycle
            available[card] = budget[card]
        open_to_buy = available[card]
        available_before[i] = open_to_buy
        if forced != FREE:
            codes[i] = forced_code[forced]
        elif tx_type in (PURCHASE, CASH) and amount > open_to_buy:
            codes[i] = NO_FUNDS
        else:
            if tx_type in (PURCHASE, CASH):
                available[card] = open_to_buy - amount
                hold[i] = amount
            elif tx_type in CREDITS:
                available[card] = open_to_buy + amount
    return Outcome(codes, available_before, hold)
