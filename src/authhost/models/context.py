"""The transaction context: the one flat view of a request and its card that rules and models read.

Built online from a request and its store snapshot (``context_from_request``) and offline from
journal export rows replayed in time order (``replay_contexts``), with the same velocity code
(``cards.velocity``). Rules variables and model features are both derived from this value, so
a backtest or a training run sees exactly what the server would have seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from authhost.cards.acceptor_velocity import (
    NO_ACCEPTOR,
    WINDOW_LONG_S,
    AcceptorCounters,
    AcceptorEvent,
    AcceptorVelocity,
    acceptor_event,
    terminal_key,
)
from authhost.cards.sliding import SlidingVelocity
from authhost.cards.tokens import PaymentToken, token_age_hours
from authhost.cards.travel import covers
from authhost.cards.velocity import EMPTY, Velocity, VelocityEvent
from authhost.frozen import quick_constructor
from authhost.iso.codes import APPROVED_CODES
from authhost.iso.messages import CREDIT_TYPES, AuthRequest
from authhost.store.interface import Snapshot
from authhost.store.records import JournalEntry, journal_dict

CASH_TYPES = frozenset({"01"})
# the message classes whose journal entries are velocity events
VELOCITY_CLASSES = frozenset(
    {"authorisation", "financial", "authorisation_advice", "financial_advice"}
)
# Within about 3,000 years of 1970 integer arithmetic gives gmtime's hour and weekday (tested);
# beyond, gmtime itself answers (or raises) as it always did.
_ARITHMETIC_TS = 1e11


def hour_and_weekday(ts: float) -> tuple[int, int]:
    """UTC hour and weekday (0 Monday) of ``ts``, as ``time.gmtime(ts)`` gives them.

    gmtime floors ``ts`` to whole seconds and POSIX time has no leap seconds, so the hour
    is ``seconds // 3600 % 24`` and, 1970-01-01 being a Thursday, the weekday
    ``(days + 3) % 7``: a few integer operations instead of building a ``struct_time``.
    """
    if -_ARITHMETIC_TS < ts < _ARITHMETIC_TS:
        seconds = math.floor(ts)
        return seconds // 3600 % 24, (seconds // 86400 + 3) % 7
    tm = time.gmtime(ts)
    return tm.tm_hour, tm.tm_wday


@dataclass(frozen=True, slots=True)
class TxContext:
    """What is known about one transaction at authorisation time (no PAN, no SAD)."""

    ts: float
    amount_minor: int
    currency: str
    mcc: str
    country: str
    channel: str
    entry_mode: str
    terminal: str
    merchant: str
    acquirer: str
    tx_type: str  # processing code positions 1-2
    card_id: str
    bin: str
    product: str
    home_country: str
    card_age_days: float  # -1 when unknown
    available: int  # open-to-buy before this request, minor units
    pin_present: bool
    velocity: Velocity
    transaction_currency: str = ""  # the merchant's (field 49); ``currency`` is the card's
    # every card's requests at this merchant, and at this terminal of it (cards.acceptor_velocity)
    merchant_velocity: AcceptorVelocity = NO_ACCEPTOR
    terminal_velocity: AcceptorVelocity = NO_ACCEPTOR
    # e-commerce cardholder authentication (3-D Secure): authenticated, attempted, exempt,
    # none; "" when the request did not say
    authentication: str = ""
    # the stored credential indicator (field 48 SE 22 SF 05): C101..C104 the cardholder uses a
    # card on file, M101..M208 the merchant charges it alone; "" when the request did not say
    stored_credential: str = ""
    # the CAVV results code of the 3-D Secure value the host checked (security.cavv): 2 or 3
    # passed, 1 or 4 failed, 0 not a CAVV; "" none checked
    cavv_result: str = ""
    # the billing address the merchant asked to verify, as the host found it (cards.avs): Y,
    # A, Z, N, U; "" none asked for
    avs_result: str = ""
    # the CVV2 as the host found it (iso.subfields): M matched, S the merchant said the card
    # has none, P sent with a card-present request; "" none sent (N is declined before)
    cvv2_result: str = ""
    # the wallet whose token paid (cards.tokens: apple_pay, google_pay...); "" the card itself
    wallet: str = ""
    token_age_hours: float = -1.0  # since that token was registered; -1 no token
    merchant_name: str = ""  # field 43: the card acceptor's name and location
    # a travel notice of the card covers the request's country today (cards.travel)
    travel_notice: bool = False
    hour: int = field(init=False)
    weekday: int = field(init=False)  # 0 Monday .. 6 Sunday

    def __post_init__(self) -> None:
        hour, weekday = hour_and_weekday(self.ts)
        object.__setattr__(self, "hour", hour)
        object.__setattr__(self, "weekday", weekday)

    @property
    def cross_border(self) -> bool:
        return bool(self.country and self.home_country and self.country != self.home_country)

    @property
    def cash(self) -> bool:
        return self.tx_type in CASH_TYPES

    @property
    def time_since_last_s(self) -> float:
        since = self.velocity.seconds_since_last
        return math.inf if since is None else since


# TxContext(...) without the frozen __init__'s cost (authhost.frozen): both builders below run
# once per request or journal row.
_new_context = quick_constructor(TxContext)


def context_from_request(
    request: AuthRequest,
    snapshot: Snapshot,
    now: float,
    cavv_result: str = "",
    token: PaymentToken | None = None,
    avs_result: str = "",
    cvv2_result: str = "",
) -> TxContext:
    """Online: the context of a live request, from the request, its snapshot and what the
    pipeline's steps before the fraud step found (``cavv_result``, the card's ``token`` that
    paid)."""
    card, product, account = snapshot.card, snapshot.product, snapshot.account
    home = (card.home_country if card else "") or (product.home_country if product else "")
    age = (now - card.created_at) / 86400.0 if card and card.created_at else -1.0
    return _new_context(
        ts=now,
        # the cardholder's amount, as journalled (what the replays of the journal see)
        amount_minor=request.cardholder_amount_minor or 0,
        currency=request.cardholder_currency or "",
        mcc=request.mcc or "",
        country=request.country or "",
        channel=str(request.channel),
        entry_mode=(request.pos_entry_mode or "")[:2],
        terminal=request.terminal_id or "",
        merchant=request.merchant_id or "",
        acquirer=request.acquirer_id or "",
        tx_type=request.transaction_type,
        card_id=card.card_id if card else "",
        bin=card.bin if card else (request.pan or "")[:6],
        product=card.product_id if card else "",
        home_country=home,
        card_age_days=age,
        available=account.open_to_buy if account else 0,
        pin_present=request.pin_block is not None,
        velocity=snapshot.velocity,
        transaction_currency=request.currency or "",
        merchant_velocity=snapshot.merchant_velocity,
        terminal_velocity=snapshot.terminal_velocity,
        authentication=request.authentication,
        stored_credential=request.stored_credential,
        cavv_result=cavv_result,
        avs_result=avs_result,
        cvv2_result=cvv2_result,
        wallet=token.wallet if token is not None else "",
        token_age_hours=token_age_hours(token, now),
        merchant_name=request.merchant_name,
        travel_notice=covers(card.travel_notices, request.country or "", now) if card else False,
    )


def _text(row: Mapping[str, object], key: str) -> str:
    value = row.get(key, "")
    if value.__class__ is str:  # the common case first: replay calls this ~20 times a row
        return value  # type: ignore[return-value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _number(row: Mapping[str, object], key: str, missing: float) -> float:
    """A number column, ``missing`` for none or NaN (never for 0)."""
    value = row.get(key)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return missing
    return float(value)  # type: ignore[arg-type]


def _flag(row: Mapping[str, object], key: str) -> bool:
    value = row.get(key, False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def is_velocity_event(card: str, message_class: str) -> bool:
    """A journal entry counts in its card's velocity: it has a card and is an authorisation,
    a financial request or an advice (not a reversal, not a refused frame). A credit to the
    card (``CREDIT_TYPES``) is an event too, counted as money received and never as spending
    (``VelocityEvent.credit``)."""
    return bool(card) and message_class in VELOCITY_CLASSES


def event_from_entry(entry: JournalEntry) -> VelocityEvent | None:
    """The velocity event a journal entry is (None: not one), by the same rule as a replay of
    the exported journal; the Redis store records it at commit (SQLite reads its journal with
    the same rule in SQL, ``store.sqlite_velocity``)."""
    if not is_velocity_event(entry.card_id, entry.message_class):
        return None
    return event_from_row(journal_dict(entry))


ADVICE_CLASSES = frozenset({"authorisation_advice", "financial_advice"})
PARTIAL_APPROVAL = "10"
COMPLETION_REASON = "advice.completion"  # and its _partial, _nothing_held
PRESENTMENT = "advice.presentment"  # a clearing file's row the host posted itself
ALREADY_APPROVED = "advice.already_approved"  # a stand-in advice of a request the host approved
BALANCE_INQUIRY = "31"


def is_approved_spending(row: Mapping[str, object]) -> bool:
    """The row approved new spending, which limits and velocity count: an approval, but not
    a completion (its pre-authorisation counted when it was approved: a hotel stay, or any
    cleared purchase, would count twice), not an advice that moved nothing (the network
    declined it, or an unconverted amount in another currency), not a balance inquiry."""
    if _text(row, "response_code") not in APPROVED_CODES:
        return False
    if _text(row, "processing_code")[:2] == BALANCE_INQUIRY:
        return False
    if _text(row, "message_class") in ADVICE_CLASSES:
        return bool(_text(row, "movement")) and COMPLETION_REASON not in _text(row, "reason_codes")
    return True


def event_from_row(row: Mapping[str, object]) -> VelocityEvent:
    """The velocity event a journal row leaves behind (what the store's commit records)."""
    return VelocityEvent(
        ts=float(row["ts"]),  # type: ignore[arg-type]
        amount_minor=int(row.get("amount_minor", 0) or 0),  # type: ignore[arg-type]
        approved=is_approved_spending(row),
        merchant_id=_text(row, "merchant_id"),
        country=_text(row, "country"),
        cash=_text(row, "processing_code")[:2] in CASH_TYPES,
        pin_failed=_flag(row, "pin_failed"),
        cvv_failed=_flag(row, "cvv_failed"),
        credit=_text(row, "processing_code")[:2] in CREDIT_TYPES,
    )


def acceptor_event_from_entry(entry: JournalEntry) -> AcceptorEvent | None:
    """The event a committed journal entry leaves at its merchant and terminal, by the same
    rule as ``acceptor_event_from_row`` (the Redis store records it after the commit)."""
    if entry.message_class not in VELOCITY_CLASSES:
        return None
    return acceptor_event(
        entry.ts,
        entry.merchant_id,
        entry.terminal_id,
        entry.card_id,
        entry.pan_index,
        entry.response_code in APPROVED_CODES,
        entry.cvv_failed,
    )


def acceptor_event_from_row(row: Mapping[str, object]) -> AcceptorEvent | None:
    """The event a journal row leaves at its merchant and terminal (None: not a velocity
    request, or neither named), by the rule the stores apply to their journals."""
    if (_text(row, "message_class") or "authorisation") not in VELOCITY_CLASSES:
        return None
    return acceptor_event(
        float(row["ts"]),  # type: ignore[arg-type]
        _text(row, "merchant_id"),
        _text(row, "terminal_id"),
        _text(row, "card_id"),
        _text(row, "pan_index"),
        _text(row, "response_code") in APPROVED_CODES,
        _flag(row, "cvv_failed"),
    )


def context_from_row(
    row: Mapping[str, object],
    velocity: Velocity,
    merchant_velocity: AcceptorVelocity = NO_ACCEPTOR,
    terminal_velocity: AcceptorVelocity = NO_ACCEPTOR,
) -> TxContext:
    """Offline: the context of a journal row, given the velocity computed from earlier rows."""
    processing = _text(row, "processing_code")
    amount = int(row.get("amount_minor", 0) or 0)  # type: ignore[call-overload]
    if _text(row, "response_code") == PARTIAL_APPROVAL:
        # the journal keeps what was approved; the server scored what was asked, which a
        # partial approval (never converted) has in field 4
        amount = int(row.get("transaction_amount_minor", 0) or 0) or amount  # type: ignore[call-overload]
    return _new_context(
        ts=float(row["ts"]),  # type: ignore[arg-type]
        amount_minor=amount,
        currency=_text(row, "currency"),
        mcc=_text(row, "mcc"),
        country=_text(row, "country"),
        channel=_text(row, "channel"),
        entry_mode=_text(row, "pos_entry_mode")[:2],
        terminal=_text(row, "terminal_id"),
        merchant=_text(row, "merchant_id"),
        acquirer=_text(row, "acquirer_id"),
        tx_type=processing[:2] if processing else "00",
        card_id=_text(row, "card_id") or _text(row, "pan_index"),
        bin=_text(row, "pan_masked")[:6],
        product=_text(row, "product_id"),
        home_country=_text(row, "home_country"),
        card_age_days=_number(row, "card_age_days", -1.0),  # 0.0: a card issued today
        available=int(row.get("available_before", 0) or 0),  # type: ignore[arg-type]
        pin_present=_flag(row, "pin_present"),
        velocity=velocity,
        # journals before fields 6/51 were read: the merchant's currency was the card's
        transaction_currency=_text(row, "transaction_currency") or _text(row, "currency"),
        merchant_velocity=merchant_velocity,
        terminal_velocity=terminal_velocity,
        authentication=_text(row, "authentication"),
        stored_credential=_text(row, "stored_credential"),
        cavv_result=_text(row, "cavv_result"),
        avs_result=_text(row, "avs_result"),
        cvv2_result=_text(row, "cvv2_result"),
        wallet=_text(row, "wallet"),
        token_age_hours=_number(row, "token_age_hours", -1.0),  # 0.0 is a token made now
        merchant_name=_text(row, "merchant_name"),
        travel_notice=_flag(row, "travel_notice"),
    )


def replay_contexts(
    rows: Iterable[Mapping[str, object]],
    since: float = -math.inf,
) -> Iterator[tuple[Mapping[str, object], TxContext]]:
    """Replay journal rows (sorted by ts) and yield each with the context it had when it arrived.

    Each card number's velocity is computed from its earlier rows only, exactly as the store's
    snapshot computes it from the journal entries of the cards with that PAN, and each
    merchant's and terminal's from the earlier rows there, as the store's counters do. The
    counters are kept incrementally (``cards.sliding``, proven equal to ``compute_velocity``),
    so a replay costs O(1) per row however long a card's history is.

    Rows before ``since`` only warm the counters up (``JournalReplay``): they are not yielded.
    """
    replay = JournalReplay(since)
    for row in rows:
        ctx = replay.step(row)
        if ctx is not None:
            yield row, ctx


class JournalReplay:
    """``replay_contexts`` one row at a time, for a caller that reads its rows from a store
    as they come (``step`` takes the next row).

    Rows before ``since`` only warm the counters up (a report of a period replays the 30 days
    before it): no context is built for them, and the merchant and terminal counters skip
    those more than their hour before ``since``, which no later row counts. The rows from
    ``since`` on get the contexts a replay of every row gives them (tested).
    """

    __slots__ = ("_history", "_acceptors", "_since", "_acceptors_from")

    def __init__(self, since: float = -math.inf) -> None:
        self._history: dict[str, SlidingVelocity] = {}
        self._acceptors = AcceptorCounters()
        self._since = since
        self._acceptors_from = since - WINDOW_LONG_S

    def step(self, row: Mapping[str, object]) -> TxContext | None:
        """The row's context (None before ``since``), computed before the row itself is
        counted; then count it."""
        ts = float(row["ts"])  # type: ignore[arg-type]
        # velocity is the card number's, as the stores count it: a renewal (the same PAN)
        # goes on with its predecessor's history
        card = _text(row, "pan_index") or _text(row, "card_id")
        history = self._history
        window = history.get(card) if card else None
        ctx = None
        if ts >= self._acceptors_from:
            acceptors = self._acceptors
            merchant = _text(row, "merchant_id")
            at_merchant, at_terminal = acceptors.at(
                ts, merchant, terminal_key(merchant, _text(row, "terminal_id"))
            )
            if ts >= self._since:
                velocity = window.at(ts) if window is not None else EMPTY
                ctx = context_from_row(row, velocity, at_merchant, at_terminal)
            acceptor = acceptor_event_from_row(row)
            if acceptor is not None:
                acceptors.add(acceptor)
        kind = _text(row, "message_class") or "authorisation"
        if is_velocity_event(card, kind):
            if window is None:
                window = history[card] = SlidingVelocity()
            window.add(event_from_row(row))
        return ctx
