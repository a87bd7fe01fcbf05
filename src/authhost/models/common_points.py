"""Common point of purchase: where the cards that turned up with fraud had all shopped before.

When several cards show fraud, the merchant (or terminal) most of them visited in the weeks
before their first fraud, far more than other cards did, is the likely point of compromise (a
skimmer, a breached web shop); the cards that visited it and show no fraud yet are the ones
to watch or reissue. Pure: the caller gives each fraud card's first fraud time and streams
the journal entries of the window; nothing here reads a store or a clock.

A visit (``is_visit``) is an approved purchase, cash withdrawal or verification, card present
or not (an authorisation, a financial request or their advices; no refund or other credit,
no reversal), at an acceptor the entry names. A fraud card's visits count when they fall in
the ``lookback`` before its first fraud (strictly before: the fraud itself and what followed
are no exposure); any other card's count anywhere in the window. For each acceptor:

- ``fraud_cards``: fraud cards with a counted visit there; ``cards``: every card with one;
- ``share`` = fraud_cards / cards, and ``lift`` = share / the base rate (fraud cards among all
  cards with a counted visit anywhere): 1.0 is a merchant every card visits (a supermarket),
  well above it a merchant the fraud cards have in common;
- ``first_visit`` and ``last_visit``: of the fraud cards' counted visits (the compromise's
  likely span).

Ranked by fraud cards, then lift, with at least ``min_cards`` fraud cards (one card is
coincidence, not a common point).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from authhost.iso.codes import APPROVED_CODES
from authhost.iso.messages import CREDIT_TYPES, Channel, MessageClass
from authhost.store.records import JournalEntry

__all__ = [
    "BY",
    "AtRiskCard",
    "CommonPoint",
    "CommonPoints",
    "first_frauds",
    "is_visit",
]

BY = ("merchant", "terminal")  # what an acceptor is: field 42, or fields 42 and 41

# the requests that are a card's use at an acceptor, card present or not
VISIT_CLASSES = frozenset(
    c.value
    for c in (
        MessageClass.AUTHORISATION,
        MessageClass.FINANCIAL,
        MessageClass.AUTHORISATION_ADVICE,
        MessageClass.FINANCIAL_ADVICE,
    )
)
VISIT_CHANNELS = frozenset(c.value for c in Channel)

Acceptor = tuple[str, str]  # merchant id, terminal id ("" when ranked by merchant)


def is_visit(entry: JournalEntry) -> bool:
    """An approved use of the card at a named acceptor (module docstring)."""
    return (
        entry.response_code in APPROVED_CODES
        and entry.message_class in VISIT_CLASSES
        and entry.channel in VISIT_CHANNELS
        and entry.processing_code[:2] not in CREDIT_TYPES
        and bool(entry.merchant_id)
    )


def first_frauds(entries: Iterable[JournalEntry], fraud_ids: set[int]) -> dict[str, float]:
    """Each card's first fraud: the earliest time of its entries among ``fraud_ids`` (the
    journal ids the fraud reports say were fraud)."""
    first: dict[str, float] = {}
    for entry in entries:
        if entry.journal_id in fraud_ids and entry.card_id:
            first[entry.card_id] = min(entry.ts, first.get(entry.card_id, entry.ts))
    return first


@dataclass(slots=True)
class _Visits:
    """One card's counted visits to one acceptor."""

    pan_masked: str
    first: float
    last: float
    count: int = 1

    def add(self, ts: float) -> None:
        self.first, self.last = min(self.first, ts), max(self.last, ts)
        self.count += 1


@dataclass(slots=True)
class _Acceptor:
    merchant_name: str = ""
    mcc: str = ""
    country: str = ""
    fraud: dict[str, _Visits] = field(default_factory=dict)
    other: dict[str, _Visits] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommonPoint:
    """One acceptor's row of the ranking (module docstring); times are epoch seconds."""

    merchant_id: str
    terminal_id: str
    merchant_name: str
    mcc: str
    country: str
    fraud_cards: int
    cards: int
    share: float
    lift: float | None  # None: no base rate (no card visited anything)
    first_visit: float
    last_visit: float


@dataclass(frozen=True, slots=True)
class AtRiskCard:
    """A card that visited a common point in the window and shows no fraud (yet)."""

    merchant_id: str
    terminal_id: str
    card_id: str
    pan_masked: str
    first_visit: float
    last_visit: float
    visits: int
    # it visited between the fraud cards' first and last visit there: when the compromise
    # most likely was
    in_fraud_span: bool


class CommonPoints:
    """Counts visits per acceptor as the journal entries stream past (any order), then ranks.

    ``first_fraud``: the fraud cards, each with the time of its first fraud; ``window``:
    [start, end) of the entries the caller reads, where the other cards' visits count;
    ``ignore``: cards left out altogether (labelled fraud, but first outside the period
    asked about: neither one of its fraud cards nor a card at risk). Memory: one small
    record per (acceptor, card) visited."""

    def __init__(
        self,
        first_fraud: Mapping[str, float],
        lookback_s: float,
        window: tuple[float, float],
        by: str = "merchant",
        ignore: Collection[str] = frozenset(),
    ) -> None:
        if by not in BY:
            raise ValueError(f"by must be one of {', '.join(BY)}")
        self.first_fraud = first_fraud
        self.lookback_s = lookback_s
        self.window = window
        self.by = by
        self.ignore = ignore
        self.entries = 0  # read
        self.visits = 0  # counted
        self._acceptors: dict[Acceptor, _Acceptor] = {}
        self._fraud_seen: set[str] = set()
        self._other_seen: set[str] = set()

    def add(self, entry: JournalEntry) -> None:
        self.entries += 1
        if not entry.card_id or entry.card_id in self.ignore or not is_visit(entry):
            return
        fraud_at = self.first_fraud.get(entry.card_id)
        if fraud_at is not None:
            if not fraud_at - self.lookback_s <= entry.ts < fraud_at:
                return
        elif not self.window[0] <= entry.ts < self.window[1]:
            return
        self.visits += 1
        where = (entry.merchant_id, entry.terminal_id if self.by == "terminal" else "")
        acceptor = self._acceptors.get(where)
        if acceptor is None:
            acceptor = self._acceptors[where] = _Acceptor()
        if entry.merchant_name:  # the latest name and place it was sent with
            acceptor.merchant_name, acceptor.mcc = entry.merchant_name, entry.mcc
            acceptor.country = entry.country
        elif not acceptor.mcc:
            acceptor.mcc, acceptor.country = entry.mcc, entry.country
        cards = acceptor.fraud if fraud_at is not None else acceptor.other
        (self._fraud_seen if fraud_at is not None else self._other_seen).add(entry.card_id)
        visits = cards.get(entry.card_id)
        if visits is None:
            cards[entry.card_id] = _Visits(entry.pan_masked, entry.ts, entry.ts)
        else:
            visits.add(entry.ts)

    def add_all(self, entries: Iterable[JournalEntry]) -> None:
        for entry in entries:
            self.add(entry)

    @property
    def cards_seen(self) -> int:
        """Cards with a counted visit anywhere (fraud ones included)."""
        return len(self._fraud_seen) + len(self._other_seen)

    @property
    def fraud_cards_seen(self) -> int:
        """Fraud cards with a counted visit anywhere in their lookback."""
        return len(self._fraud_seen)

    @property
    def base_rate(self) -> float | None:
        return self.fraud_cards_seen / self.cards_seen if self.cards_seen else None

    def ranking(self, min_cards: int = 2, limit: int = 20, offset: int = 0) -> list[CommonPoint]:
        """The acceptors with at least ``min_cards`` fraud cards, most fraud cards first, then
        the highest lift (then the id, so that equal rows keep one order), from row
        ``offset`` on: a page of the one order, however the rows are paged."""
        base = self.base_rate
        rows = [
            self._row(where, acceptor, base)
            for where, acceptor in self._acceptors.items()
            if len(acceptor.fraud) >= max(1, min_cards)
        ]
        rows.sort(key=lambda r: (-r.fraud_cards, -(r.lift or 0.0), r.merchant_id, r.terminal_id))
        return rows[offset : offset + limit]

    def ranked(self, min_cards: int = 2) -> int:
        """How many acceptors the ranking has in all (every page)."""
        least = max(1, min_cards)
        return sum(len(acceptor.fraud) >= least for acceptor in self._acceptors.values())

    def at_risk(self, point: CommonPoint, limit: int = 1000) -> list[AtRiskCard]:
        """The cards of ``point`` that are not fraud cards: those that visited during the
        fraud cards' span first, then by their first visit."""
        acceptor = self._acceptors.get((point.merchant_id, point.terminal_id))
        if acceptor is None:
            return []
        cards = [
            AtRiskCard(
                point.merchant_id,
                point.terminal_id,
                card_id,
                visits.pan_masked,
                visits.first,
                visits.last,
                visits.count,
                visits.first <= point.last_visit and visits.last >= point.first_visit,
            )
            for card_id, visits in acceptor.other.items()
        ]
        cards.sort(key=lambda c: (not c.in_fraud_span, c.first_visit, c.card_id))
        return cards[:limit]

    def fraud_card_ids(self, point: CommonPoint) -> list[str]:
        """The fraud cards counted at ``point``, sorted."""
        acceptor = self._acceptors.get((point.merchant_id, point.terminal_id))
        return sorted(acceptor.fraud) if acceptor is not None else []

    def _row(self, where: Acceptor, acceptor: _Acceptor, base: float | None) -> CommonPoint:
        fraud, cards = len(acceptor.fraud), len(acceptor.fraud) + len(acceptor.other)
        share = fraud / cards
        return CommonPoint(
            merchant_id=where[0],
            terminal_id=where[1],
            merchant_name=acceptor.merchant_name,
            mcc=acceptor.mcc,
            country=acceptor.country,
            fraud_cards=fraud,
            cards=cards,
            share=share,
            lift=share / base if base else None,
            first_visit=min(v.first for v in acceptor.fraud.values()),
            last_visit=max(v.last for v in acceptor.fraud.values()),
        )
