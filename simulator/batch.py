"""Transactions under construction: parallel numpy columns, coded as small integers.

The generator works on integer codes (card index, category index, country index...) so that
tens of millions of values are cheap; ``simulator.traffic`` turns them into the journal's
text columns at the very end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

CHANNELS = ("pos", "atm", "ecommerce", "contactless", "moto")
POS, ATM, ECOMMERCE, CONTACTLESS, MOTO = range(5)
ENTRY_MODES = ("051", "071", "812", "901", "010")  # chip, contactless, e-commerce, stripe, keyed
CHIP, TAP, ONLINE, STRIPE, KEYED = range(5)
# purchase, cash, refund, balance inquiry, a transfer to the card (Visa's original credit)
TX_TYPES = ("00", "01", "20", "31", "26")
PURCHASE, CASH, REFUND, INQUIRY, TRANSFER_IN = range(5)
CREDITS = (REFUND, TRANSFER_IN)  # money to the card
SCENARIOS = (
    "normal",
    "travel",
    "card_testing",
    "compromised_merchant",
    "stolen_card",
    "account_takeover",
    "bin_attack",  # rows of unknown card numbers (scenarios.bin_attack): no card index
    "money_mule",
    "wallet_fraud",
)
NORMAL, TRAVEL, CARD_TESTING, COMPROMISED, STOLEN, TAKEOVER, BIN_ATTACK, MULE, WALLET_FRAUD = range(
    9
)
FORCED_CODES = ("", "55", "N7", "43")  # decided by the scenario, not by the funds check
FREE, WRONG_PIN, WRONG_CVV2, REPORTED_STOLEN = range(4)


@dataclass(slots=True)
class TxBatch:
    """Columns of a set of transactions (one element per transaction)."""

    card: np.ndarray  # int64 card index
    ts: np.ndarray  # float64 epoch seconds (UTC)
    category: np.ndarray  # int64 index into habits.CATEGORIES
    country: np.ndarray  # int64 index into geography.COUNTRIES
    merchant: np.ndarray  # int64 merchant index
    terminal: np.ndarray  # int64 terminal index
    channel: np.ndarray  # int8 index into CHANNELS
    entry: np.ndarray  # int8 index into ENTRY_MODES
    tx_type: np.ndarray  # int8 index into TX_TYPES
    amount: np.ndarray  # int64 minor units (EUR cents)
    pin_present: np.ndarray  # bool
    forced: np.ndarray  # int8 index into FORCED_CODES
    label: np.ndarray  # int8, 1 = fraud
    scenario: np.ndarray  # int8 index into SCENARIOS

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray) -> TxBatch:
        """The rows at ``index`` (an integer or boolean array), as a new batch."""
        return TxBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, batches: Sequence[TxBatch]) -> TxBatch:
        return cls(
            **{f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls)}
        )
