"""A period's totals from the journal: what the issuer's back office reconciles each day.

Finance closes a business day by comparing what the host approved and moved with what the
networks settle: the holds placed, the amounts posted (0200 purchases, 0220 completions and
clearing presentments), the refunds and transfers credited, the reversals released (among
them the postings reversed, money the acquirer is no longer owed, unlike a released hold; and
the credits reversed, taken back from the cardholder), per currency (the
account's: a converted transaction counts in the cardholder's currency, as it was charged), and
per acquiring institution (field 32), whose settlement the postings are reconciled against.
Declines are counted by response code, the figure an operations desk watches; the requests
answered per message class and verdict (a late reversal's entry, written by the host's sweep
after the reversal itself was answered, counts its money only).

Every figure comes from the journal entries alone: ``movement`` says which way the money went
and ``hold_amount`` how much the store actually moved (0 when its funds re-check refused the
hold, or a reversal found nothing left to release). Entries written before the movement was
journalled (SQLite schema 18 and earlier) are classified by message class and processing code,
as the pipeline would have moved them by default. A completion's post releases its
pre-authorisation's hold in the same write; that release, and holds that expire, are not
entries, so ``authorised`` is the holds placed, not the holds still open.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authhost.auth.currencies import exponent_of
from authhost.auth.late_reversals import LATE_REASON
from authhost.iso.codes import APPROVED_CODES
from authhost.iso.messages import CREDIT_TYPES
from authhost.store.records import JournalEntry

MOVEMENTS = ("hold", "post", "credit", "release", "take_back")
_HOLDING_CLASSES = ("authorisation", "authorisation_advice")


@dataclass
class _Sum:
    count: int = 0
    amount_minor: int = 0

    def add(self, amount: int) -> None:
        self.count += 1
        self.amount_minor += amount

    def view(self) -> dict[str, int]:
        return {"count": self.count, "amount_minor": self.amount_minor}


@dataclass
class MovementSums:
    """The movements of one currency, acquirer or account: count and amount of each."""

    sums: dict[str, _Sum] = field(default_factory=lambda: {m: _Sum() for m in MOVEMENTS})
    # the releases that gave posted money back (a purchase or completion reversed after it
    # posted), among the released: no longer owed to the acquirer, unlike a released hold
    reversed_posted: _Sum = field(default_factory=_Sum)

    def add(self, entry: JournalEntry) -> str:
        """Count ``entry``'s movement (``movement_of``); returns it ("" for none)."""
        movement = movement_of(entry)
        if movement:
            self.sums[movement].add(abs(entry.hold_amount))
        if movement == "release" and entry.balance_delta:  # the store gave money back
            self.reversed_posted.add(abs(entry.hold_amount))
        return movement

    def view(self) -> dict[str, Any]:
        posted, credited = self.sums["post"], self.sums["credit"]
        return {
            "authorised": self.sums["hold"].view(),
            "posted": posted.view(),
            "credited": credited.view(),
            "released": self.sums["release"].view(),
            "taken_back": self.sums["take_back"].view(),
            "reversed_posted": self.reversed_posted.view(),
            # what the issuer owes the acquirers for the period's postings, less those
            # reversed and the refunds and transfers credited, plus those reversed (taken
            # back from the cardholder)
            "net_posted_minor": posted.amount_minor
            - self.reversed_posted.amount_minor
            - credited.amount_minor
            + self.sums["take_back"].amount_minor,
        }


@dataclass
class _Currency:
    money: MovementSums = field(default_factory=MovementSums)
    approved: int = 0
    declined: Counter[str] = field(default_factory=Counter)
    acquirers: defaultdict[str, MovementSums] = field(
        default_factory=lambda: defaultdict(MovementSums)
    )


def movement_of(entry: JournalEntry) -> str:
    """Which way ``entry`` moved money ("" for none): the journalled movement, or for an
    entry from before it was journalled, the pipeline's default for its class and code."""
    return _movement(entry.hold_amount, entry.movement, entry.processing_code, entry.message_class)


def movement_in_row(row: Mapping[str, Any]) -> str:
    """``movement_of`` for a journal entry as its JSON row (``journal show``'s table reads
    rows): a refund's reversal is ``take_back`` there too, not the journal's ``release``."""
    return _movement(
        row.get("hold_amount") or 0,
        row.get("movement") or "",
        str(row.get("processing_code") or ""),
        str(row.get("message_class") or ""),
    )


def _movement(hold_amount: int, movement: str, processing_code: str, message_class: str) -> str:
    if hold_amount == 0:
        return ""
    if movement == "release" and processing_code[:2] in CREDIT_TYPES:
        return "take_back"  # a refund's or a transfer's reversal: the money goes back out
    if movement:
        return movement
    if hold_amount < 0:
        return "release"
    if processing_code[:2] == "20":
        return "credit"
    return "hold" if message_class in _HOLDING_CLASSES else "post"


class Totals:
    """Add entries with ``add``; ``view()`` is the report (plain JSON types)."""

    def __init__(self, since: float, until: float) -> None:
        self.since, self.until = since, until
        self.entries = 0
        self._currencies: defaultdict[str, _Currency] = defaultdict(_Currency)
        self._classes: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def add(self, entry: JournalEntry) -> None:
        self.entries += 1
        currency = self._currencies[entry.currency or entry.transaction_currency]
        # a late reversal's entry (the host's sweep wrote it, not a message: the reversal's
        # own was answered and counted) counts the money it released, not a second answer
        if LATE_REASON not in entry.reason_codes.split(";"):
            approved = entry.response_code in APPROVED_CODES
            self._classes[entry.message_class]["approved" if approved else "declined"] += 1
            if approved:
                currency.approved += 1
            else:
                currency.declined[entry.response_code] += 1
        if currency.money.add(entry):
            currency.acquirers[entry.acquirer_id].add(entry)

    def add_all(self, entries: Iterable[JournalEntry]) -> None:
        for entry in entries:
            self.add(entry)

    def view(self) -> dict[str, Any]:
        return {
            "since": iso_time(self.since),
            "until": iso_time(self.until),
            "entries": self.entries,
            "by_message_class": {
                name: {"approved": counts["approved"], "declined": counts["declined"]}
                for name, counts in sorted(self._classes.items())
            },
            "currencies": [
                {
                    "currency": code,
                    **totals.money.view(),
                    "approved": totals.approved,
                    "declined": sum(totals.declined.values()),
                    "declined_by_code": dict(sorted(totals.declined.items())),
                    "acquirers": [
                        {"acquirer_id": acquirer, **money.view()}
                        for acquirer, money in sorted(totals.acquirers.items())
                    ],
                }
                for code, totals in sorted(self._currencies.items())
            ],
        }


def iso_time(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with a Z."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def amount_text(minor: int | None, currency: str | None) -> str:
    """Minor units in the currency's own exponent, with its numeric code: 1,234.50 978 (the
    CLI's tables and the card timeline's summaries write amounts so)."""
    if minor is None:
        return ""
    text = major_text(minor, currency)
    return f"{text} {currency}" if currency else text


def major_text(minor: int, currency: str | None) -> str:
    """Minor units as the major amount in the currency's own decimals: 1,234.50 (euros),
    1,234 (yen), 1.234 (dinars); two decimals for a code not known."""
    exponent = exponent_of(currency)
    return f"{minor / 10**exponent:,.{exponent}f}" if exponent else f"{minor:,}"
