"""Cardholders' disputes of posted transactions: the money each step moves.

A dispute is opened on one posted journal entry (what the account was charged), usually with a
provisional credit so that the cardholder is not out of pocket while the bank pursues the
chargeback. It ends won (the credit becomes final; one not yet given is given now), lost or
withdrawn (a provisional credit is taken back). Each movement is posted as the advice a
switch would send (a 0220, through the server's own pipeline and store, as clearing posts
presentments): a refund for a credit, a forced post for taking it back. So it is journalled,
shows in the account's statement and the day's totals, and its STAN and RRN come from the
dispute's id and a fixed time, so a retried step is a retransmission and moves nothing twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from authhost.admin.clearing import Presentment, post_presentments
from authhost.admin.errors import ConflictError
from authhost.store.interface import CardStore
from authhost.store.records import Dispute

# the networks' usual time limit for a chargeback (Visa and Mastercard: 120 days from the
# transaction for most reasons): a dispute opened later could not be pursued
WINDOW_DAYS = 120
CREDIT, TAKE_BACK, FINAL_CREDIT = "1", "2", "3"  # the last digit of each movement's reference
POSTED = {"refund", "forced", "duplicate"}  # a duplicate: posted by an earlier try


def new_dispute_id(now: float) -> str:
    """``dsp-YYYYMMDD-HHMMSS-micros-nnn``, UTC: ids sort by age, and no run of digits is long
    enough to be taken for a card number (texts are masked for those)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"dsp-{stamp}-{int(now * 1_000_000) % 1_000_000:06d}-{secrets.randbelow(1000):03d}"


def _reference(dispute: Dispute, step: str) -> str:
    """The acquirer reference of one movement: the id's digits, then the step."""
    return "8" + "".join(ch for ch in dispute.dispute_id if ch.isdigit()) + step


async def move(
    store: CardStore,
    pan_index: Callable[[str], str],
    decide_many: Any,
    dispute: Dispute,
    pan: str,
    merchant_id: str,
    step: str,
    amount_minor: int,
) -> dict[str, Any]:
    """Post one of the dispute's movements (``step``: CREDIT, TAKE_BACK or FINAL_CREDIT);
    the report row of the 0220 (PAN masked). ConflictError when the host refused it."""
    presentment = Presentment(
        line=0,
        pan=pan,
        approval_code="",
        amount_minor=amount_minor,
        currency=dispute.currency,
        # a fixed time per step: a retry is the same transmission, answered from the journal
        presented_at=dispute.opened_at + int(step),
        arn=_reference(dispute, step),
        merchant_id=merchant_id,
        terminal_id="DISPUTE",
        kind="purchase" if step == TAKE_BACK else "refund",
    )
    result = await post_presentments([presentment], store, pan_index, decide_many)
    row = result["rows"][0]
    if row["outcome"] not in POSTED:
        raise ConflictError(
            f"dispute {dispute.dispute_id}: the host did not post the {amount_minor} "
            f"({row['outcome']}, {row.get('response_code', '-')})"
        )
    return row
