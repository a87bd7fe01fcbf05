"""Cardholders' disputes of posted transactions: the money each step moves.

A dispute is opened on one posted journal entry (what the account was charged), usually with a
provisional credit so that the cardholder is not out of pocket while the bank pursues the
chargeback. It ends won (the credit becomes final; one not yet given is given now), lost or
withdrawn (a provisional credit is taken back); once charged back, for the amounts of the
network stages (``dispute_stages.cardholder_keeps``): one movement of the difference. Each
movement is posted as the advice a switch would send (a 0220, through the server's own
pipeline and store, as clearing posts presentments): a refund for a credit, a forced post
for taking it back. So it is journalled,
shows in the account's statement and the day's totals, and its STAN and RRN come from the
dispute's id and a fixed time, so a retried step is a retransmission and moves nothing twice.

The provisional credit is posted before the dispute is recorded (a dispute is recorded with
its credit, or not at all), so its STAN, RRN and time come from the disputed charge instead
(``charge_reference``): one per charge, whichever try posts it. A try that failed after its
credit was written leaves no dispute, and the next try's credit is that same transmission:
answered from the journal, it moves nothing again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from authhost.admin.clearing import Presentment, post_presentments
from authhost.admin.errors import ConflictError
from authhost.iso.codes import ResponseCode as RC
from authhost.store.interface import CardStore
from authhost.store.records import Dispute, JournalEntry

CREDIT, TAKE_BACK, FINAL_CREDIT = "1", "2", "3"  # the last digit of each movement's reference
# what takes back the part of a provisional credit that an acquirer's reversal of the charge
# gave back meanwhile (named after that reversal's journal entry: done once per reversal)
REVERSED = "4"
POSTED = {"refund", "forced", "duplicate"}  # a duplicate: posted by an earlier try
TERMINAL = "DISPUTE"  # field 41 of every movement
# what each movement is, for the people reading it (the timeline, a statement): the bank's
# money on a dispute, not a merchant's refund or charge
STEP_NAMES = {
    CREDIT: "provisional credit",
    TAKE_BACK: "credit taken back",
    FINAL_CREDIT: "final credit",
    REVERSED: "credit taken back (charge reversed)",
}


def step_name(entry: JournalEntry) -> str:
    """The dispute movement ``entry`` is ("" for any other entry): field 41 ``TERMINAL``, the
    step the last digit of its RRN (``_reference``, ``charge_reference``)."""
    return step_of(entry.terminal_id, entry.rrn)


def step_of(terminal_id: str, rrn: str) -> str:
    """``step_name`` from an entry's field 41 and RRN (a JSON row's, for ``journal show``)."""
    if terminal_id != TERMINAL:
        return ""
    return STEP_NAMES.get(rrn[-1:], "")


def new_dispute_id(now: float) -> str:
    """``dsp-YYYYMMDD-HHMMSS-micros-nnn``, UTC: ids sort by age, and no run of digits is long
    enough to be taken for a card number (texts are masked for those)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"dsp-{stamp}-{int(now * 1_000_000) % 1_000_000:06d}-{secrets.randbelow(1000):03d}"


def _reference(dispute: Dispute, step: str) -> str:
    """The acquirer reference of one movement: the id's digits, then the step."""
    return "8" + "".join(ch for ch in dispute.dispute_id if ch.isdigit()) + step


def charge_reference(journal_id: int, step: str) -> str:
    """The acquirer reference of a movement named after the disputed charge (its journal
    id) rather than a dispute: the provisional credit, and what takes it back when another
    dispute of the charge was recorded first. Twelve digits: the 0220's RRN (its STAN the
    last six)."""
    return f"9{journal_id % 10**10:010d}{step}"


def charge_time(charge_ts: float, step: str) -> float:
    """The fixed transmission time of a movement named after the charge."""
    return float(int(charge_ts) + int(step))


def opened_since(ts: float) -> str:
    """A dispute id below every id of a dispute opened at ``ts`` or later (``after`` of
    ``CardStore.disputes``: ids sort by opening time)."""
    return "dsp-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(ts))


async def move(
    store: CardStore,
    pan_index: Callable[[str], str],
    decide_many: Any,
    dispute: Dispute,
    pan: str,
    merchant_id: str,
    step: str,
    amount_minor: int,
    *,
    charge: tuple[int, float] | None = None,
    merchant_name: str = "",
) -> dict[str, Any]:
    """Post one of the dispute's movements (``step``: CREDIT, TAKE_BACK or FINAL_CREDIT);
    the report row of the 0220 (PAN masked). ``charge``: the disputed charge's journal id
    and time, to name the movement after (``charge_reference``) instead of the dispute.
    ConflictError when the host refused it, NotPosted when it could not tell (the store
    failed): the movement may have been written. ``merchant_name``: the charge's field 43,
    so the timeline and the statement name the merchant the cardholder knows, not its id."""
    if charge is None:
        # a fixed time per step: a retry is the same transmission, answered from the journal
        arn, at = _reference(dispute, step), dispute.opened_at + int(step)
    else:
        arn, at = charge_reference(charge[0], step), charge_time(charge[1], step)
    presentment = Presentment(
        line=0,
        pan=pan,
        approval_code="",
        amount_minor=amount_minor,
        currency=dispute.currency,
        presented_at=at,
        arn=arn,
        merchant_id=merchant_id,
        terminal_id=TERMINAL,
        merchant_name=merchant_name,
        kind="purchase" if step in (TAKE_BACK, REVERSED) else "refund",
    )
    result = await post_presentments([presentment], store, pan_index, decide_many)
    row = result["rows"][0]
    if row["outcome"] == "refused" and row.get("response_code") == RC.DUPLICATE_TRANSMISSION:
        # the step was posted by an earlier try for another amount (a provisional credit
        # asked again for more): that one stands, as the journal has it
        row = {**row, "outcome": "duplicate"}
    if row["outcome"] == "error":
        raise NotPosted(
            f"dispute {dispute.dispute_id}: the store failed while the {amount_minor} was "
            f"posted ({row.get('error', '-')})"
        )
    if row["outcome"] not in POSTED:
        raise ConflictError(
            f"dispute {dispute.dispute_id}: the host did not post the {amount_minor} "
            f"({row['outcome']}, {row.get('response_code', '-')})"
        )
    return {**row, "rrn": arn[-12:]}


class NotPosted(Exception):
    """A movement whose write failed in the store: it may or may not have been written."""
