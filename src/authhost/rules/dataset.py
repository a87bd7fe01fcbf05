"""Reading labelled journal exports (CSV or Parquet) for backtests, with pyarrow, in time order.

Column types come from ``store.records.JournalEntry``, so codes such as ``processing_code``
``000000`` or ``mcc`` ``0742`` stay text instead of being guessed as numbers. Only the
columns the replay and the report read are loaded.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from authhost.store import labelled
from authhost.store.labelled import COLUMN_TYPES, DatasetError, iter_rows

__all__ = ["COLUMN_TYPES", "USED_COLUMNS", "DatasetError", "iter_rows", "read_labelled"]

# what replay_contexts, the velocity events, the report and models.scored read
USED_COLUMNS = (
    "ts",
    "message_class",
    "response_code",
    "card_id",
    "pan_masked",
    "pan_index",
    "product_id",
    "processing_code",
    "amount_minor",
    "currency",
    "transaction_currency",
    "mcc",
    "country",
    "channel",
    "pos_entry_mode",
    "terminal_id",
    "merchant_id",
    "acquirer_id",
    "fraud_score",
    "model_score",
    "pin_present",
    "pin_failed",
    "cvv_failed",
    "home_country",
    "card_age_days",
    "available_before",
    "authentication",
    "stored_credential",
    "cavv_result",
    "avs_result",
    "cvv2_result",
    "wallet",
    "token_age_hours",
    "merchant_name",
    "travel_notice",  # card.travel_notice
    "movement",  # with reason_codes: which approvals spent (models.context.is_approved_spending)
    "reason_codes",
    # with response_code and reason_codes: was the request declined before the fraud step,
    # i.e. never seen by a rule (models.scored.row_declined_before_fraud)
    "rule_matches",
    "challenger_score",
    "model_skipped",
    "label",
    "scenario",
)


def read_labelled(path: str | Path) -> pa.Table:
    """The labelled rows a backtest reads, typed and sorted by ``ts``."""
    return labelled.read_labelled(path, required=("ts", "label"), columns=USED_COLUMNS)
