"""The card lifecycle: which state changes are allowed, and what a successor card carries.

::

    created --ship--> issued --activate--> active <--suspend/resume--> suspended
    issued | active | suspended --report-lost/-stolen--> lost | stolen   (final, 41 / 43)
    active | suspended --report-damaged--> damaged                      (final)
    issued | active | suspended --expire--> expired                     (final)
    any non-final state --cancel--> closed                              (final)
    lost | stolen | damaged --replace--> successor card (old keeps its state)
    issued | active | suspended --renew--> successor card (old stays usable)
    issued | active | suspended --reissue--> successor card, new PAN (old stays usable)
    successor --activate--> old becomes replaced (retire)

A lost/stolen card is replaced under a new PAN; a damaged card and a renewal keep the PAN with
a new expiry (and therefore new card values). A renewed card keeps working until the cardholder
activates its successor (renewals are issued weeks before expiry; the old plastic must not
stop at the issuer's convenience); activating the successor retires it. A successor carries
the account, the limits and the PIN method; it carries the PIN reference only when it keeps
the PAN, because a PVV or IBM 3624 offset is computed from the PAN and means nothing for
another one. Until its activation a successor also takes what changes on the card it succeeds
(``CARRIED_FIELDS``: the cardholder's name, limits, controls, PIN...), and a renewal is
withdrawn when the card's number is exposed (``withdrawn_with``). Wallet tokens are mapped to
the PAN: a successor that keeps it carries them; one under a new PAN takes the live ones over
at its activation (``take_tokens``), as the networks' token services do on the issuer's PAN
update, so the cardholder's phone pays on with the new card. Every function here is
pure: it returns new values or raises ``IllegalTransition`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace as _replace
from enum import StrEnum

from authhost.cards.model import Card, CardState
from authhost.cards.production import expiry_from, is_past_expiry, months_after
from authhost.cards.tokens import (
    LOST_CARD_RECENT_S,
    HandedOver,
    end_tokens,
    given_up,
    hand_over,
    suspend_tokens,
)

S = CardState


class IllegalTransition(ValueError):
    """A lifecycle change the card's state does not allow; the message says which and why."""


class Event(StrEnum):
    """Lifecycle events; values are the operator-facing action names."""

    SHIP = "ship"
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    RESUME = "resume"
    REPORT_LOST = "report-lost"
    REPORT_STOLEN = "report-stolen"
    REPORT_DAMAGED = "report-damaged"
    EXPIRE = "expire"
    CANCEL = "cancel"


FINAL_STATES: frozenset[CardState] = frozenset(
    {S.LOST, S.STOLEN, S.DAMAGED, S.EXPIRED, S.CLOSED, S.REPLACED}
)
LIVE_STATES: frozenset[CardState] = frozenset({S.CREATED, S.ISSUED, S.ACTIVE, S.SUSPENDED})

# event -> (states it may start from, state it leads to)
TRANSITIONS: dict[Event, tuple[frozenset[CardState], CardState]] = {
    Event.SHIP: (frozenset({S.CREATED}), S.ISSUED),
    Event.ACTIVATE: (frozenset({S.ISSUED}), S.ACTIVE),
    Event.SUSPEND: (frozenset({S.ACTIVE}), S.SUSPENDED),
    Event.RESUME: (frozenset({S.SUSPENDED}), S.ACTIVE),
    Event.REPORT_LOST: (frozenset({S.ISSUED, S.ACTIVE, S.SUSPENDED}), S.LOST),
    Event.REPORT_STOLEN: (frozenset({S.ISSUED, S.ACTIVE, S.SUSPENDED}), S.STOLEN),
    # not from suspended: its same-PAN replacement would be activated active, lifting the
    # bank's block; a suspended card is renewed instead (the renewal keeps the suspension)
    Event.REPORT_DAMAGED: (frozenset({S.ACTIVE}), S.DAMAGED),
    Event.EXPIRE: (frozenset({S.ISSUED, S.ACTIVE, S.SUSPENDED}), S.EXPIRED),
    Event.CANCEL: (LIVE_STATES, S.CLOSED),
}
# events that put a plastic in the cardholder's hands or in use: never one past its expiry
PUTS_IN_USE: frozenset[Event] = frozenset({Event.SHIP, Event.ACTIVATE})
REPLACEABLE: frozenset[CardState] = frozenset({S.LOST, S.STOLEN, S.DAMAGED})
RENEWABLE: frozenset[CardState] = frozenset({S.ISSUED, S.ACTIVE, S.SUSPENDED})
KEEPS_PAN_ON_REPLACE: frozenset[CardState] = frozenset({S.DAMAGED})
# states after which no payment is made with the card's number again, nor with its wallet
# tokens: they end with it (a damaged card's go on with its replacement, which keeps the PAN)
ENDS_TOKENS: frozenset[CardState] = frozenset({S.EXPIRED, S.CLOSED})
# A lost or stolen card's tokens wait for its replacement (the phone was not lost with the
# plastic), which takes them over at its activation; meanwhile they are declined with the card
# (41, 43). A stolen card's are suspended (the thief may have put the card in a wallet of
# their own: the cardholder names their phones and the bank resumes those), and so are a lost
# card's registered in the day before the report (a finder's phone).
SUSPENDS_TOKENS: frozenset[CardState] = frozenset({S.LOST, S.STOLEN})
# reports that stop a card but not the bank's block on it: a suspended card reported so keeps
# its suspension (Card.suspension_at_report) for its replacement (keeps_suspension)
KEEPS_SUSPENSION_EVENTS: frozenset[Event] = frozenset({Event.REPORT_LOST, Event.REPORT_STOLEN})


def _names(states: frozenset[CardState]) -> str:
    return ", ".join(sorted(s.value for s in states))


def allowed_events(card: Card) -> list[Event]:
    """The events the card's current state accepts (for help texts and the API)."""
    return [event for event, (sources, _) in TRANSITIONS.items() if card.state in sources]


def transition(card: Card, event: Event | str, *, now: float, suspension_reason: str = "") -> Card:
    """``card`` after ``event``, or IllegalTransition naming the states that allow it. A
    suspended card reported lost or stolen keeps its suspension (``suspension_reason``, the
    bank's reason for it) for its replacement (``keeps_suspension``)."""
    try:
        event = Event(event)
    except ValueError:
        known = ", ".join(e.value for e in Event)
        raise IllegalTransition(f"unknown lifecycle event {event!r}; known: {known}") from None
    sources, target = TRANSITIONS[event]
    if card.state not in sources:
        hint = ""
        if event is Event.REPORT_DAMAGED and card.state is S.SUSPENDED:
            hint = "; renew it for a new plastic with the same PAN (it keeps the suspension)"
        raise IllegalTransition(
            f"card {card.card_id} is {card.state.value}: '{event.value}' is allowed only from "
            f"{_names(sources)}{hint}"
        )
    if event in PUTS_IN_USE and is_past_expiry(card.expiry, now):
        instead = (
            "cancel it and issue a new card"
            if event is Event.SHIP
            else "renew it for a new expiry, or mark it expired"
        )
        raise IllegalTransition(
            f"card {card.card_id} expired at the end of {card.expiry[2:]}/{card.expiry[:2]}: "
            f"it cannot be {'shipped' if event is Event.SHIP else 'activated'} (every payment "
            f"would be declined 54); {instead}"
        )
    if target in ENDS_TOKENS and card.tokens:
        card = _replace(card, tokens=end_tokens(card.tokens, now))
    elif target in SUSPENDS_TOKENS and card.tokens:
        lately = now - LOST_CARD_RECENT_S if target is S.LOST else None
        card = _replace(card, tokens=suspend_tokens(card.tokens, now, lately))
    if event in KEEPS_SUSPENSION_EVENTS and card.state is S.SUSPENDED:
        card = _replace(card, suspension_at_report=suspension_reason)
    if event is Event.ACTIVATE:
        return _replace(card, state=target, activated_at=now)
    if event is Event.CANCEL:
        return _replace(card, state=target, closed_at=now)
    return _replace(card, state=target)


def _next_sequence(sequence: str) -> str:
    return f"{(int(sequence) + 1) % 100:02d}" if sequence.isascii() and sequence.isdigit() else "01"


def _successor(old: Card, *, now: float, expiry: str, keep_pan: bool, card_id: str) -> Card:
    new = _replace(
        old,
        card_id=card_id,
        state=S.CREATED,
        expiry=expiry,
        sequence=_next_sequence(old.sequence) if keep_pan else "00",
        pin_reference=old.pin_reference if keep_pan else None,
        pin_tries=0,
        pin_change_key="",  # the old plastic's PIN change is the old plastic's to undo
        previous_pin_reference=None,
        created_at=now,
        activated_at=None,
        closed_at=None,
        replaces=old.card_id,
        replaced_by=None,
        previous_expiry=old.expiry if keep_pan else "",
        chip_scripts=(),  # queued for the old plastic's chip; the new one has its own
        chip_scripts_sent=(),
        chip_scripts_sent_key="",
        # a wallet's token follows the card when the PAN stays (the network's vault still maps
        # it); under a new PAN the live ones move when the new card is activated (take_tokens)
        tokens=old.tokens if keep_pan else (),
        suspension_at_report=None,  # the old card's (keeps_suspension reads it there)
        version=0,
    )
    if not keep_pan:  # the caller produces a new PAN and fills these in
        new = _replace(new, pan_index="", last4="")
    return new


def replace(
    old: Card, *, now: float, validity_months: int, new_card_id: str = ""
) -> tuple[Card, Card]:
    """Replacement of a lost, stolen or damaged card: ``(old, new)``.

    ``old`` keeps its state (a lost card still answers 41) and links to the new card. A damaged
    card's successor keeps the PAN (same ``pan_index``, next sequence number); a lost or stolen
    card's successor has an empty ``pan_index``/``last4`` that the caller fills from a new PAN.
    """
    if old.state not in REPLACEABLE:
        raise IllegalTransition(
            f"card {old.card_id} is {old.state.value}: only a card that is "
            f"{_names(REPLACEABLE)} can be replaced (renew a live card instead)"
        )
    if old.replaced_by:
        raise IllegalTransition(f"card {old.card_id} was already replaced by {old.replaced_by}")
    keep_pan = old.state in KEEPS_PAN_ON_REPLACE
    # a plastic with the PAN of the one it replaces must not expire with it (the same card
    # values) nor before it: at least a month after the old card
    expiry = expiry_from(now, validity_months)
    if keep_pan:
        expiry = max(expiry, months_after(old.expiry, 1))
    new = _successor(old, now=now, expiry=expiry, keep_pan=keep_pan, card_id=new_card_id)
    return _replace(old, replaced_by=new_card_id or None), new


def renew(
    old: Card, *, now: float, validity_months: int, new_card_id: str = ""
) -> tuple[Card, Card]:
    """Renewal before expiry: ``(old, new)`` with the same PAN and a new expiry. ``old`` keeps
    its state and links to ``new``; it is retired (``retire``) when ``new`` is activated, and
    until then the PAN finds ``old`` (stores prefer a PAN's newest activated card)."""
    _check_live_successor(old, "renewed")
    # a full validity beyond the card it renews, however early the renewal: never the old
    # card's expiry again (the same PAN and expiry would give the same card values)
    expiry = max(expiry_from(now, validity_months), months_after(old.expiry, validity_months))
    new = _successor(old, now=now, expiry=expiry, keep_pan=True, card_id=new_card_id)
    return _replace(old, replaced_by=new_card_id or None), new


def reissue(
    old: Card, *, now: float, validity_months: int, new_card_id: str = ""
) -> tuple[Card, Card]:
    """A live card whose number was exposed (a breach at a merchant or processor): ``(old,
    new)``, the new card under a new PAN (the caller fills ``pan_index`` and ``last4``) with a
    full validity from today. As with a renewal, ``old`` keeps working until ``new`` is
    activated, and is retired then: the cardholder is never without a card."""
    _check_live_successor(old, "reissued (replace a lost or stolen one)")
    expiry = expiry_from(now, validity_months)
    new = _successor(old, now=now, expiry=expiry, keep_pan=False, card_id=new_card_id)
    return _replace(old, replaced_by=new_card_id or None), new


def _check_live_successor(old: Card, done: str) -> None:
    """A live card may get one successor that it hands over to (renewed, reissued)."""
    if old.state not in RENEWABLE:
        raise IllegalTransition(
            f"card {old.card_id} is {old.state.value}: only a card that is "
            f"{_names(RENEWABLE)} can be {done}"
        )
    if old.replaced_by:
        raise IllegalTransition(f"card {old.card_id} was already replaced by {old.replaced_by}")


def retire(old: Card) -> Card:
    """The predecessor once its successor (same PAN) is activated: replaced, final. A card
    that is already final (lost, damaged, expired...) keeps its state."""
    if old.state in FINAL_STATES:
        return old
    return _replace(old, state=S.REPLACED)


# states a card reaches only through activation (a card stored before ``activated_at`` was
# kept has them without it)
_ACTIVATED_STATES: frozenset[CardState] = frozenset({S.ACTIVE, S.SUSPENDED, S.DAMAGED})


def has_been_activated(card: Card) -> bool:
    """Whether the card was ever activated. Its state alone cannot tell: closed, expired, lost
    or stolen are reached from issued too (a renewal cancelled, or lost in the post)."""
    return card.activated_at is not None or card.state in _ACTIVATED_STATES


def is_current_over(candidate: Card, other: Card, *, candidate_is_newer: bool) -> bool:
    """Which of two cards of one PAN the PAN means: the newest that has been activated, or the
    newest of all when neither has. A renewal cancelled before its activation never takes
    the PAN from the card it was to renew."""
    candidate_waits = not has_been_activated(candidate)
    other_waits = not has_been_activated(other)
    if candidate_waits != other_waits:
        return other_waits
    return candidate_is_newer


def keeps_suspension(in_use: Card, successor: Card) -> bool:
    """Whether ``successor``, being activated, takes over the suspension of ``in_use``, the
    card its activation retires: a bank's block (an investigation, arrears) is the
    cardholder's and the number's, not the plastic's, so a renewal or a damaged card's
    replacement (the same PAN) is activated suspended, and so is the replacement of a card
    the bank had suspended when it was reported lost or stolen (the report does not lift the
    block). Any other successor under a new PAN is the answer to an exposed number (a
    reissue, "it was not me") and starts active."""
    if in_use.suspension_at_report is not None:
        return True
    return in_use.state is S.SUSPENDED and in_use.pan_index == successor.pan_index


# a successor ending so was withdrawn (a lost one is replaced in turn, and hands over then)
WITHDRAWN_STATES: frozenset[CardState] = frozenset({S.CLOSED, S.EXPIRED})


def withdrawn_successor(old: Card, successor: Card) -> Card | None:
    """``old`` unlinked from ``successor`` when that successor was cancelled or expired
    without ever being activated: ``old`` was never handed over, so it may be
    renewed, reissued or replaced again. None when there is nothing to unlink."""
    if old.replaced_by != successor.card_id or successor.state not in WITHDRAWN_STATES:
        return None
    if has_been_activated(successor):
        return None
    return _replace(old, replaced_by=None)


def check_successor_allowed(old: Card, done: str = "reissued") -> None:
    """IllegalTransition unless the live card ``old`` may get a successor now (renew,
    reissue): what a caller checks before changing anything else."""
    _check_live_successor(old, done)


def link(old: Card, new: Card) -> tuple[Card, Card]:
    """``old`` and ``new`` pointing at each other (once the new card has its id)."""
    return _replace(old, replaced_by=new.card_id), _replace(new, replaces=old.card_id)


# What the cardholder or the bank changes on a card that is the cardholder's rather than the
# plastic's: set on the card in use while its successor waits for activation, a change goes
# on with the successor (it would be lost with the old plastic otherwise). Chip scripts and
# the state are the plastic's own; a PIN reference (computed from the PAN) and wallet tokens
# (mapped to the PAN) only go on with a successor that keeps the PAN.
CARRIED_FIELDS: tuple[str, ...] = (
    "cardholder_name",
    "address_ref",
    "avs_postcode_ref",
    "avs_street_ref",
    "account_id",
    "limits",
    "home_country",
    "controls",
    "stop_payments",
    "travel_notices",
)
SAME_PAN_FIELDS: tuple[str, ...] = ("pin_reference", "tokens")
# a successor still waiting for its activation: what it carries is still being decided
_PENDING: frozenset[CardState] = frozenset({S.CREATED, S.ISSUED})


def is_pending_successor(old: Card, successor: Card) -> bool:
    """Whether ``successor`` is ``old``'s successor and was never activated (nor withdrawn)."""
    return (
        old.replaced_by == successor.card_id
        and successor.replaces == old.card_id
        and successor.state in _PENDING
        and not has_been_activated(successor)
    )


def carried_changes(before: Card, after: Card, successor: Card) -> tuple[Card, list[str]]:
    """``successor`` with what changed from ``before`` to ``after`` on its live predecessor
    (the carried fields only, each as ``after`` has it), and the names of the fields that
    changed on it; ``(successor, [])`` when there is nothing to carry. A field the successor
    was given a value of its own for is still overwritten by a later change of the old card:
    the newest change is the cardholder's wish."""
    if after.state not in LIVE_STATES or not is_pending_successor(after, successor):
        return successor, []
    names = list(CARRIED_FIELDS)
    if successor.pan_index == after.pan_index:
        names += SAME_PAN_FIELDS
    changed = {
        name: getattr(after, name)
        for name in names
        if getattr(before, name) != getattr(after, name)
        and getattr(successor, name) != getattr(after, name)
    }
    if not changed:
        return successor, []
    return _replace(successor, **changed), sorted(changed)


def carries_its_number(old: Card, successor: Card) -> bool:
    """Whether ``successor`` is a renewal (the same PAN) of ``old`` still waiting for its
    activation: when ``old``'s number is exposed (the card lost or stolen, a breach) it must
    be withdrawn, or the exposed number lives on with a new expiry. A reissue (a new PAN)
    is the answer to an exposure already."""
    return successor.pan_index == old.pan_index and is_pending_successor(old, successor)


# states in which someone else may hold the card's number
EXPOSES_NUMBER: frozenset[CardState] = frozenset({S.LOST, S.STOLEN})


def withdrawn_with(old: Card, successor: Card) -> bool:
    """Whether ``successor`` is to be cancelled now that ``old`` is in its state: a pending
    renewal of a card reported lost or stolen carries the number the finder or thief holds;
    the card is replaced under a new PAN instead."""
    return old.state in EXPOSES_NUMBER and carries_its_number(old, successor)


def takes_tokens_from(successor: Card, old: Card) -> bool:
    """Whether ``successor``, being activated, takes over the live tokens of ``old`` (a card
    its activation hands over from): only under a new PAN (one that keeps the PAN carries
    them from the start, ``SAME_PAN_FIELDS``)."""
    return old.pan_index != successor.pan_index


def take_tokens(successor: Card, predecessors: list[Card]) -> tuple[Card, HandedOver]:
    """``successor`` (under a new PAN, being activated) with the live tokens of the cards it
    takes over from (``predecessors``, nearest first: the card it succeeds and, while that one
    was never activated, the cards before it): the issuer tells the token service of each
    (a PAN update), so that the wallet pays on with the new card; references, states and
    dates are kept, deleted tokens stay behind (``tokens.hand_over``). The predecessors give
    the tokens up (``without_tokens``) once the successor has them."""
    handed = hand_over(
        successor.tokens,
        [p.tokens if takes_tokens_from(successor, p) else () for p in predecessors],
    )
    if not handed.refs:
        return successor, handed
    return _replace(successor, tokens=handed.tokens), handed


def without_tokens(old: Card, refs: frozenset[str]) -> Card:
    """``old`` without the live tokens its successor took over (``take_tokens``); ``old``
    itself when it has none of them."""
    kept = given_up(old.tokens, refs)
    return old if len(kept) == len(old.tokens) else _replace(old, tokens=kept)
