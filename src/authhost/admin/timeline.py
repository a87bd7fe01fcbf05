"""A card's case timeline: everything that happened to a card, newest first, in one list.

An analyst investigating a card (a support agent answering its holder) used to read the card's
journal, the audit log, the fraud reports, the disputes and the wallet events one after the
other and put them in order by hand. Here each of those records becomes an event with the
same few keys: when (``at``, ISO 8601 UTC, and ``ts``, epoch seconds), what (``kind``),
which card (``card_id`` and its masked ``pan``: an investigation follows the cardholder
through renewals and reissues, so the events of several cards are merged), a one-line
``summary`` a person reads, who (``actor``, for a change), and the ids to drill into
(``journal_id``, ``audit_id``, ``dispute_id``).

Pure functions over the store's records (``store.records``): the service
(``admin.service.timeline``) reads them, this module turns them into events and pages them.
Nothing here prints more than the records hold, and they hold masked PANs only.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from authhost.admin import disputes as dispute_moves
from authhost.admin.dispute_stages import pre_arbitrated
from authhost.admin.totals import amount_text, iso_time, movement_of
from authhost.iso.codes import APPROVED_CODES, meaning
from authhost.store.records import AuditEntry, Dispute, FraudReport, JournalEntry

TIMELINE_LIMIT = 200  # events per page by default
TIMELINE_MAX = 2000  # events per page at most
CHAIN_MAX = 20  # cards of one chain (renewals, replacements, reissues) read at most
SUMMARY_MAX = 300  # characters of a summary (a long note or many changes are cut)

# the journal's message classes, as an analyst names them
_KINDS = {
    "authorisation": "authorisation",
    "financial": "financial",
    "authorisation_advice": "advice",
    "financial_advice": "advice",
    "reversal": "reversal",
    "reversal_advice": "reversal",
}
# field 3's transaction type (its first two digits), the common ones
_TRANSACTION_TYPES = {
    "00": "purchase",
    "01": "cash withdrawal",
    "09": "purchase with cashback",
    "10": "account funding",
    "11": "quasi-cash",
    "20": "refund",
    "21": "deposit",
    "26": "transfer received",
    "28": "payment received",
    "30": "balance enquiry",
    "31": "balance enquiry",
    "39": "account verification",
    "70": "PIN change",
    "72": "PIN unblock",
    "91": "PIN unblock",
    "92": "PIN change",
}
# what an audited action did, for a person; an action not named here is shown as it is
ACTIONS = {
    "card.issue": "card issued",
    "card.ship": "card shipped",
    "card.activate": "card activated",
    "card.activation_finished": "card's activation finished after a failure",
    "card.suspend": "card suspended",
    "card.resume": "card resumed",
    "card.report_lost": "card reported lost",
    "card.report_stolen": "card reported stolen",
    "card.report_damaged": "card reported damaged",
    "card.replace": "card replaced",
    "card.renew": "card renewed",
    "card.reissue": "card reissued under a new PAN",
    "card.cancel": "card cancelled",
    "card.expire": "card expired",
    "card.personalise": "card personalised",
    "card.limits": "card limits changed",
    "card.controls": "card controls changed",
    "card.chip_scripts": "chip scripts set",
    "card.stop_payments": "stop payments changed",
    "card.travel_notices": "travel notices changed",
    "card.retire": "card retired (its successor took over)",
    "card.tokens_moved": "wallet tokens moved to the successor",
    "card.successor_withdrawn": "successor withdrawn",
    "card.export_personalisation": "card exported to the bureau",
    "card.search": "card looked up by its PAN",
    "card.carried": "change carried over from the card it succeeds",
    "card.cardholder_answer": "cardholder answered an alert",
    "card.compromise_alert": "card named in a compromise alert",
    "card.token_add": "wallet token added",
    "card.token_request": "wallet token requested",
    "card.token_active": "wallet token activated",
    "card.token_suspended": "wallet token suspended",
    "card.token_deleted": "wallet token deleted",
    "card.token_pan_update": "wallet token moved over from the previous card",
    "pin.set": "PIN set",
    "pin.reset": "PIN reset",
    "pin.generate": "PIN generated for the mailer",
    "pin.unlock": "PIN tries reset",
    "journal.fraud_report": "fraud report",
}
FRAUD_REPORT_ACTION = "journal.fraud_report"
# keys of a card's view a summary does not list as changed: the reason is said on its own,
# tokens by the token's own line, times by the event's own time, the rest by other words
_UNLISTED = frozenset(
    {"reason", "tokens", "version", "last_used", "pan", "card_id", "created_at",
     "activated_at", "closed_at"}
)  # fmt: skip


def _cut(text: str) -> str:
    text = " ".join(text.split())  # one line: a note or a merchant's name may hold newlines
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 3] + "..."


def _event(
    ts: float,
    kind: str,
    card_id: str,
    pan: str,
    summary: str,
    *,
    actor: str = "",
    journal_id: int | None = None,
    audit_id: int | None = None,
    dispute_id: str | None = None,
    verdict: str | None = None,
) -> dict[str, Any]:
    return {
        "at": iso_time(ts),
        "ts": ts,
        "kind": kind,
        "card_id": card_id,
        "pan": pan,
        "summary": _cut(summary),
        "actor": actor,
        "journal_id": journal_id,
        "audit_id": audit_id,
        "dispute_id": dispute_id,
        "verdict": verdict,
    }


# --- the journal ------------------------------------------------------------------------------


def journal_kind(entry: JournalEntry) -> str:
    """authorisation, financial, advice or reversal (else the entry's message class)."""
    return _KINDS.get(entry.message_class, entry.message_class or "request")


def journal_summary(entry: JournalEntry, verdict: str | None = None) -> str:
    """One line: "0100 purchase 42.00 978 at SHOP PARIS (5411, FR): 05 declined (do not
    honour), reasons ..., rules velocity_burst, score 910"."""
    kind = _TRANSACTION_TYPES.get(entry.processing_code[:2], "")
    what = f"{'reversal of ' if journal_kind(entry) == 'reversal' else ''}{kind}".strip()
    dispute_step = dispute_moves.step_name(entry)
    if dispute_step:  # the bank's own movement: not a refund or a charge of the merchant's
        what = f"dispute {dispute_step}"
    parts = [entry.mti, what, amount_text(entry.amount_minor, entry.currency)]
    if entry.transaction_currency and entry.transaction_currency != entry.currency:
        charged = amount_text(entry.transaction_amount_minor, entry.transaction_currency)
        parts.append(f"(charged {charged})")
    merchant = " ".join(entry.merchant_name.split()) or entry.merchant_id
    where = ", ".join(x for x in (entry.mcc, entry.country) if x)
    if dispute_step:
        parts.append(f"by the bank on the dispute of a charge at {merchant or 'the merchant'}")
    elif merchant or where:
        parts.append(f"at {merchant or 'merchant'}" + (f" ({where})" if where else ""))
    head = " ".join(p for p in parts if p)
    approved = entry.response_code in APPROVED_CODES or entry.response_code == "85"
    outcome = f"{entry.response_code} " + (
        "approved" if approved else f"declined ({meaning(entry.response_code)})"
    )
    tail = [outcome]
    moved = movement_of(entry)
    if moved and approved:
        tail.append(f"{moved} {amount_text(abs(entry.hold_amount), entry.currency)}")
    if entry.wallet:
        tail.append(f"{entry.wallet} token ...{entry.token_last4}")
    if entry.reason_codes:
        tail.append("reasons " + " ".join(entry.reason_codes.split(";")))
    if entry.rule_matches:
        tail.append("rules " + " ".join(entry.rule_matches.split(";")))
    if entry.fraud_score >= 0:
        tail.append(f"score {entry.fraud_score}")
    if entry.review:
        tail.append("flagged for review")
    if verdict:
        tail.append(f"reported {verdict}")
    return f"{head}: {', '.join(tail)}"


def journal_event(entry: JournalEntry, verdict: str | None = None) -> dict[str, Any]:
    return _event(
        entry.ts, journal_kind(entry), entry.card_id, entry.pan_masked,
        journal_summary(entry, verdict), journal_id=entry.journal_id, verdict=verdict,
    )  # fmt: skip


# --- the audit log ----------------------------------------------------------------------------


def _loaded(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What a change of a card's view changed: "state active -> suspended", and for a
    nested part (limits, controls) each of its keys that changed."""
    changes: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key in _UNLISTED or before.get(key) == after.get(key):
            continue
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) or isinstance(new, dict):
            old, new = old or {}, new or {}
            for sub in sorted(set(old) | set(new)):
                if old.get(sub) != new.get(sub):
                    changes.append(f"{key}.{sub} {_shown(old.get(sub))} -> {_shown(new.get(sub))}")
        else:
            changes.append(f"{key} {_shown(old)} -> {_shown(new)}")
    return changes


def _token_text(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The token a change added, moved or changed: "...1234 (google_pay, watch) active"."""
    seen = {t.get("token_ref"): t for t in before.get("tokens") or [] if isinstance(t, dict)}
    for token in after.get("tokens") or []:
        if not isinstance(token, dict):
            continue
        old = seen.get(token.get("token_ref"))
        if old is None or old.get("state") != token.get("state"):
            about = ", ".join(str(token[k]) for k in ("wallet", "device") if token.get(k))
            return (
                f"token ...{token.get('last4', '')}"
                + (f" ({about})" if about else "")
                + (f" {token['state']}" if token.get("state") else "")
            )
    return ""


def audit_summary(entry: AuditEntry) -> str:
    """One line: "card suspended by ops1: reason lost wallet (state active -> suspended)"."""
    before, after = _loaded(entry.before), _loaded(entry.after)
    if entry.action == FRAUD_REPORT_ACTION:
        return fraud_report_summary(
            after.get("journal_id"), bool(after.get("fraud")), str(after.get("source", "")),
            str(after.get("note", "")), entry.actor,
        )  # fmt: skip
    text = ACTIONS.get(entry.action, entry.action)
    if entry.actor:
        text += f" by {entry.actor}"
    details: list[str] = []
    if isinstance(after.get("new"), dict):  # replace, renew, reissue: the successor
        details.append(f"successor {after['new'].get('card_id', '')} {after['new'].get('pan', '')}")
    if after.get("issued_by"):  # the successor's own first entry
        details.append(f"by {after['issued_by']} of {after.get('replaces') or 'a card'}")
    if after.get("from_card_id") or after.get("from"):  # a token moved, a change carried
        details.append(f"from card {after.get('from_card_id') or after.get('from')}")
    if "was_cardholder" in after:
        said = "it was me" if after["was_cardholder"] else "it was not me"
        details.append(f"'{said}' about journal entry {after.get('journal_id')}")
    if "decision" in after:  # a token request
        reasons = " ".join(after.get("reasons") or [])
        details.append(f"decision {after['decision']}" + (f" ({reasons})" if reasons else ""))
    token = _token_text(before, after) if entry.action.startswith("card.token_") else ""
    if token:
        details.append(token)
    # a card's view before and after (a token's change is told by the token's line)
    if "card_id" in before and "card_id" in after and not token:
        changes = changed_fields(before, after)
        if changes:
            details.append("; ".join(changes))
    reason = after.get("reason")
    if reason:
        details.insert(0, f"reason {reason}")
    return text + (": " + ", ".join(details) if details else "")


def audit_kind(entry: AuditEntry) -> str:
    return "fraud_report" if entry.action == FRAUD_REPORT_ACTION else entry.action


def audit_event(entry: AuditEntry, pan: str) -> dict[str, Any]:
    """An audited change of the card (its subject): ``pan`` is the card's masked PAN."""
    journal_id = None
    if entry.action == FRAUD_REPORT_ACTION:
        journal_id = _loaded(entry.after).get("journal_id")
    return _event(
        entry.ts, audit_kind(entry), entry.subject, pan, audit_summary(entry),
        actor=entry.actor, journal_id=journal_id, audit_id=entry.audit_id,
    )  # fmt: skip


# --- fraud reports and disputes ---------------------------------------------------------------


def fraud_report_summary(
    journal_id: Any, fraud: bool, source: str, note: str, actor: str = ""
) -> str:
    text = f"journal entry {journal_id} reported {'fraud' if fraud else 'genuine'}"
    text += f" (source {source})" if source else ""
    text += f" by {actor}" if actor else ""
    return text + (f": {note}" if note else "")


def fraud_report_event(report: FraudReport, pan: str) -> dict[str, Any]:
    """A report no audit entry tells of (a fraud dispute's chargeback label)."""
    summary = fraud_report_summary(report.journal_id, report.fraud, report.source, report.note)
    return _event(
        report.reported_at, "fraud_report", report.card_id, pan, summary,
        journal_id=report.journal_id,
    )  # fmt: skip


def reported_in_audit(entry: AuditEntry) -> tuple[int, float] | None:
    """The (journal id, reported_at) of the report an audited fraud report wrote."""
    if entry.action != FRAUD_REPORT_ACTION:
        return None
    after = _loaded(entry.after)
    try:
        return int(after["journal_id"]), float(after["reported_at"])
    except (KeyError, TypeError, ValueError):
        return None


def dispute_events(dispute: Dispute, pan: str) -> list[dict[str, Any]]:
    """Its opening, its network stages (chargeback, representment, pre-arbitration, the
    acquirer's answer, arbitration) and its
    closing when it is closed (won, lost, withdrawn, reversed)."""
    amount = amount_text(dispute.amount_minor, dispute.currency)
    opened = (
        f"dispute {dispute.dispute_id} opened on journal entry {dispute.journal_id}: "
        f"{dispute.reason}, {amount}"
    )
    if dispute.credited_minor and dispute.state == "open":
        opened += f", provisional credit {amount_text(dispute.credited_minor, dispute.currency)}"
    ids = {"journal_id": dispute.journal_id, "dispute_id": dispute.dispute_id}
    events = [_event(dispute.opened_at, "dispute.open", dispute.card_id, pan, opened, **ids)]
    ident = f"dispute {dispute.dispute_id}"
    steps = (
        (dispute.charged_back_at, "dispute.chargeback",
         f"{ident} charged back ({dispute.network} {dispute.reason_code}): "
         f"{amount_text(dispute.chargeback_minor, dispute.currency)}"),
        # a representment is dated by its day (00:00 UTC when given a date): told after the
        # chargeback it answers, with its date, not before it (or before the opening)
        (dispute.represented_at and max(dispute.represented_at, dispute.charged_back_at),
         "dispute.represented",
         f"{ident} represented by the acquirer (reference {dispute.representment_reference}, "
         f"dated {time.strftime('%Y-%m-%d', time.gmtime(dispute.represented_at))}): "
         f"{amount_text(dispute.represented_minor, dispute.currency)}"),
        (dispute.pre_arbitration_at, "dispute.pre_arbitration",
         f"{ident} taken to pre-arbitration: "
         f"{amount_text(pre_arbitrated(dispute), dispute.currency)}"),
        # dated by its day too: told after the pre-arbitration it answers
        (dispute.pre_arbitration_answered_at
         and max(dispute.pre_arbitration_answered_at, dispute.pre_arbitration_at),
         "dispute.pre_arbitration_answer",
         f"{ident} pre-arbitration {dispute.pre_arbitration_answer.replace('_', ' ')} by the "
         f"acquirer: {amount_text(dispute.pre_arbitration_accepted_minor, dispute.currency)} "
         "accepted"),
        (dispute.arbitration_at, "dispute.arbitration", f"{ident} taken to arbitration"),
    )  # fmt: skip
    for ts, kind, summary in steps:
        if ts:
            events.append(_event(ts, kind, dispute.card_id, pan, summary, **ids))
    if dispute.state != "open" and dispute.closed_at:
        closed = f"dispute {dispute.dispute_id} {dispute.state}"
        if dispute.arbitration_ruling:
            closed += " (the network's arbitration ruling)"
        closed += f": credited {amount_text(dispute.credited_minor, dispute.currency)}"
        if dispute.note:
            closed += f", {dispute.note}"
        events.append(
            _event(dispute.closed_at, "dispute.resolve", dispute.card_id, pan, closed, **ids)
        )
    return events


# --- putting them together --------------------------------------------------------------------


def _order(event: dict[str, Any]) -> tuple[float, int, int, str]:
    """Newest first; events of one instant in a fixed order (their ids)."""
    return (event["ts"], event["audit_id"] or 0, event["journal_id"] or 0, event["kind"])


@dataclass
class Newest:
    """The ``size`` newest events of those added (a heap: what a page needs, however many
    are added)."""

    size: int
    _heap: list[tuple[tuple[float, int, int, str], int, dict[str, Any]]] = field(
        default_factory=list
    )
    _added: int = 0

    def add(self, event: dict[str, Any]) -> None:
        self._added += 1
        item = (_order(event), self._added, event)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def add_all(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self.add(event)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (item[2] for item in sorted(self._heap, reverse=True))


def page(events: Iterable[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], float | None]:
    """The ``limit`` newest events, newest first, and the ``before`` of the next page (None:
    there is none: the events before it, ``before`` exclusive, are the next page). A page
    never ends inside an instant: when the first event left out has the ``ts`` of the page's
    last, the page's events of that instant go to the next page with it, unless the page
    holds nothing else (then it holds the whole instant, beyond ``limit``)."""
    ordered = sorted(events, key=_order, reverse=True)
    if len(ordered) <= limit:
        return ordered, None
    next_ts = ordered[limit]["ts"]
    kept = [e for e in ordered[:limit] if e["ts"] > next_ts]
    if not kept:  # one instant fills the page: all of it, and the next page after it
        kept = [e for e in ordered if e["ts"] >= next_ts]
        return kept, (next_ts if len(kept) < len(ordered) else None)
    return kept, kept[-1]["ts"]
