"""Which journal rows the server's fraud step scored online: the one rule that training,
evaluation, the champion/challenger comparison and the rules backtest (``rules.backtest``:
online the rules run in the fraud step) use to choose their rows.

The pipeline runs validate, card (status), card_verification, pin, controls, fraud, funds
(``auth.steps``, ``[auth] steps``) and stops at the first decline. A request declined by a
step before ``fraud`` is never scored: an unknown card number answered 14 in a BIN attack, a
CVV2 failure N7, a wrong PIN 55, a blocked card 43. A model trained on such rows learns from
requests it will never see, and a scenario made mostly of them is reported as caught when
the server could not have caught it. So a row is a training and evaluation row only when:

1. its message class is one the fraud step scores (authorisation, financial; advices and
   reversals are not scored, though they still count in the velocity replay), and
2. it was not declined before the fraud step. What a journal row carries says which: its
   answer is a decline (not 00, 10 or 85), the reason it was declined for, its first reason
   code (the pipeline puts the declining step's reason first), belongs to a step before
   ``fraud`` by its prefix (``STEP_PREFIXES``) or is one the server gives outside the
   pipeline (``SERVER_REASONS``: an undecodable frame, a MAC failure, an unknown message
   type, the deadline), and the row shows no trace of the fraud step (no score, no model
   skipped for time, no rule matched: rules run only in the fraud step, so an analyst's
   rule whose reason happens to start with ``card.`` still counts as the fraud step's).

Notes a step before ``fraud`` adds to a request it lets through (``PASS_NOTES``) are not
decline reasons, so a request approved by the pipeline and refused by the store's funds
re-check (51, ``...;funds.recheck``) stays a scored row, and so does one the store's write
refused (``STORE_REFUSALS``: a replayed CAVV or chip counter, 05 / 82). A decline with no
reason code (older or hand-made exports) stays too: nothing says where it was declined. The
simulator journals the reasons the host would (``card.unknown``, ``cvv.cvv2_failed``,
``pin.wrong``, ``card.stolen``), so its traffic is filtered by the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping

from authhost.iso.codes import APPROVED_CODES, ResponseCode
from authhost.store.interface import (
    ATC_JUMP,
    ATC_REPLAY,
    CAVV_REUSED,
    PIN_CHANGE_CONFLICT,
    PIN_LOCKED_MEANWHILE,
)
from authhost.store.records import JournalEntry

__all__ = [
    "PASS_NOTES",
    "SCORED_CLASSES",
    "SERVER",
    "SERVER_REASONS",
    "STEP_PREFIXES",
    "STORE_REFUSALS",
    "declined_before_fraud",
    "entry_declined_before_fraud",
    "row_declined_before_fraud",
    "scored_online",
]

# the message classes the fraud step scores ("" : an export without the column)
SCORED_CLASSES = frozenset({"authorisation", "financial", ""})

# the steps before ``fraud`` in the pipeline's order, and the reason-code prefixes of their
# declines (auth/steps/*.py; tests/test_models_scored.py reads those files to keep this true)
STEP_PREFIXES: dict[str, tuple[str, ...]] = {
    "validate": ("validate.",),
    "card": ("card.",),
    "card_verification": ("token.", "cvv.", "3ds.", "chip."),
    "pin": ("pin.",),
    "controls": ("controls.", "card_controls.", "limits.", "stop_payment."),
}
# answers the server gives without running the pipeline (or whose decision it dropped): an
# undecodable frame (30), a MAC failure (63), an unknown message type (12), the deadline (91,
# journalled without the card or any score)
SERVER = "server"
SERVER_REASONS = frozenset({"format", "mac", "unknown_mti", "deadline"})
# reasons a step before ``fraud`` adds to a request it lets through: never a decline's reason
PASS_NOTES = frozenset(
    {"card.previous_expiry", "pin.unblocked", "pin.changed", "card.refund_past_expiry"}
    | {f"card.refund_when_{state}" for state in
       ("suspended", "lost", "stolen", "damaged", "replaced", "expired")}
)  # fmt: skip
# what the store's write refuses a request the whole pipeline approved for (a replayed CAVV or
# chip counter, a PIN locked or a card changed meanwhile): its reason comes after the
# pipeline's, so first when the pipeline had none, though the fraud step ran. (Its prefix
# names an earlier step: ``3ds.``, ``chip.``, ``pin.``.)
STORE_REFUSALS = frozenset(
    {CAVV_REUSED, ATC_REPLAY, ATC_JUMP, PIN_LOCKED_MEANWHILE, PIN_CHANGE_CONFLICT}
)

_NOT_DECLINED = APPROVED_CODES | {ResponseCode.NO_REASON_TO_DECLINE.value}
_PREFIXES = tuple((prefix, step) for step, prefixes in STEP_PREFIXES.items() for prefix in prefixes)


def declined_before_fraud(
    response_code: str,
    reason_codes: str,
    *,
    rule_matches: str = "",
    fraud_score: int = -1,
    model_score: int = -1,
    challenger_score: int = -1,
    model_skipped: bool = False,
) -> str | None:
    """The step that declined the request before the fraud step could score it (a name of
    ``STEP_PREFIXES``, or ``SERVER``), or None when the fraud step had it. See the module
    docstring for the rule."""
    if response_code in _NOT_DECLINED:
        return None
    if rule_matches or model_skipped or max(fraud_score, model_score, challenger_score) >= 0:
        return None  # the fraud step ran
    first = reason_codes.split(";", 1)[0]
    if first in SERVER_REASONS:
        return SERVER
    if first in PASS_NOTES or first in STORE_REFUSALS:
        return None
    for prefix, step in _PREFIXES:
        if first.startswith(prefix):
            return step
    return None


def row_declined_before_fraud(row: Mapping[str, object]) -> str | None:
    """``declined_before_fraud`` of a journal export row (missing columns: their default)."""
    return declined_before_fraud(
        _text(row, "response_code"),
        _text(row, "reason_codes"),
        rule_matches=_text(row, "rule_matches"),
        fraud_score=_int(row, "fraud_score"),
        model_score=_int(row, "model_score"),
        challenger_score=_int(row, "challenger_score"),
        model_skipped=bool(row.get("model_skipped") or False),
    )


def entry_declined_before_fraud(entry: JournalEntry) -> str | None:
    """``declined_before_fraud`` of a journal entry (``None`` also for a message class the
    fraud step never scores: an advice or a reversal was not declined before it)."""
    if entry.message_class not in SCORED_CLASSES:
        return None
    return declined_before_fraud(
        entry.response_code,
        entry.reason_codes,
        rule_matches=entry.rule_matches,
        fraud_score=entry.fraud_score,
        model_score=entry.model_score,
        challenger_score=entry.challenger_score,
        model_skipped=entry.model_skipped,
    )


def scored_online(row: Mapping[str, object]) -> bool:
    """The row is one the server's fraud step scores: a scored message class, not declined
    before the fraud step."""
    if _text(row, "message_class") not in SCORED_CLASSES:
        return False
    return row_declined_before_fraud(row) is None


def _text(row: Mapping[str, object], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value)


def _int(row: Mapping[str, object], name: str) -> int:
    value = row.get(name)
    return -1 if value is None or value == "" else int(value)  # type: ignore[call-overload]
