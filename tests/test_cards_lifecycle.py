"""The card lifecycle as a table: every event from every state, legal or refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from authhost.cards import lifecycle
from authhost.cards.lifecycle import Event, IllegalTransition
from authhost.cards.model import Card, CardControls, CardState, Limits, PinMethod, StopPayment
from authhost.cards.tokens import PaymentToken, TokenState

S = CardState
NOW = 1_780_000_000.0  # 2026-05-28

CARD = Card(
    card_id="crd_1",
    pan_index="ab" * 32,
    bin="400000",
    last4="1234",
    pan_length=16,
    product_id="p1",
    account_id="acc-1",
    state=S.CREATED,
    expiry="2812",
    service_code="201",
    pin_method=PinMethod.IBM3624,
    pin_reference="1234",
    pin_tries=2,
    limits=Limits(daily_amount=5000),
    sequence="00",
    version=4,
)

LEGAL = {
    (S.CREATED, Event.SHIP): S.ISSUED,
    (S.ISSUED, Event.ACTIVATE): S.ACTIVE,
    (S.ACTIVE, Event.SUSPEND): S.SUSPENDED,
    (S.SUSPENDED, Event.RESUME): S.ACTIVE,
    (S.ISSUED, Event.REPORT_LOST): S.LOST,
    (S.ACTIVE, Event.REPORT_LOST): S.LOST,
    (S.SUSPENDED, Event.REPORT_LOST): S.LOST,
    (S.ISSUED, Event.REPORT_STOLEN): S.STOLEN,
    (S.ACTIVE, Event.REPORT_STOLEN): S.STOLEN,
    (S.SUSPENDED, Event.REPORT_STOLEN): S.STOLEN,
    (S.ACTIVE, Event.REPORT_DAMAGED): S.DAMAGED,
    (S.ISSUED, Event.EXPIRE): S.EXPIRED,
    (S.ACTIVE, Event.EXPIRE): S.EXPIRED,
    (S.SUSPENDED, Event.EXPIRE): S.EXPIRED,
    (S.CREATED, Event.CANCEL): S.CLOSED,
    (S.ISSUED, Event.CANCEL): S.CLOSED,
    (S.ACTIVE, Event.CANCEL): S.CLOSED,
    (S.SUSPENDED, Event.CANCEL): S.CLOSED,
}
ALL = [(state, event) for state in S for event in Event]


@pytest.mark.parametrize(
    ("state", "event"), list(LEGAL), ids=[f"{s.value} -{e.value}->" for s, e in LEGAL]
)
def test_legal_transition(state, event):
    card = replace(CARD, state=state)
    after = lifecycle.transition(card, event, now=NOW)
    assert after.state is LEGAL[(state, event)]
    # the time it happened, for activation and closure; a suspension a report keeps for the
    # replacement (suspension_at_report); nothing else changed
    assert (after.closed_at == NOW) is (event is lifecycle.Event.CANCEL)
    keeps = state is CardState.SUSPENDED and event in lifecycle.KEEPS_SUSPENSION_EVENTS
    assert (after.suspension_at_report == "") is keeps
    unchanged = replace(after, state=state, activated_at=None, closed_at=None)
    assert replace(unchanged, suspension_at_report=None) == card


@pytest.mark.parametrize(
    ("state", "event"),
    [pair for pair in ALL if pair not in LEGAL],
    ids=[f"{s.value} -{e.value}-> refused" for s, e in ALL if (s, e) not in LEGAL],
)
def test_illegal_transition_is_refused_with_a_clear_message(state, event):
    card = replace(CARD, state=state)
    with pytest.raises(IllegalTransition) as excinfo:
        lifecycle.transition(card, event, now=NOW)
    message = str(excinfo.value)
    assert state.value in message and event.value in message and "allowed only from" in message
    assert card.state is state  # the value is untouched (frozen), nothing to undo


def test_every_final_state_accepts_no_event():
    for state in lifecycle.FINAL_STATES:
        assert lifecycle.allowed_events(replace(CARD, state=state)) == []


def test_activation_records_the_time():
    assert (
        lifecycle.transition(replace(CARD, state=S.ISSUED), "activate", now=NOW).activated_at == NOW
    )


def test_unknown_event_names_the_known_ones():
    with pytest.raises(IllegalTransition, match="unknown lifecycle event 'explode'.*activate"):
        lifecycle.transition(CARD, "explode", now=NOW)


def test_renewal_keeps_pan_and_pin_with_new_expiry():
    old = replace(CARD, state=S.ACTIVE)
    kept, new = lifecycle.renew(old, now=NOW, validity_months=36, new_card_id="crd_2")
    assert kept.state is S.ACTIVE and kept.replaced_by == "crd_2"  # works until new is active
    assert new.card_id == "crd_2" and new.replaces == "crd_1" and new.state is S.CREATED
    assert (new.pan_index, new.last4, new.bin) == (old.pan_index, old.last4, old.bin)
    # a full validity beyond the old card (2812), not from today (2905): a renewal adds one
    assert new.expiry == "3112" and new.sequence == "01"
    assert (new.account_id, new.limits, new.pin_method, new.pin_reference) == (
        old.account_id,
        old.limits,
        old.pin_method,
        old.pin_reference,
    )
    assert new.pin_tries == 0 and new.version == 0 and new.created_at == NOW


@pytest.mark.parametrize("make", [lifecycle.renew, lifecycle.reissue])
def test_a_successor_keeps_the_cardholders_instructions_but_not_the_old_chips_scripts(make):
    """Controls, travel notices and stop payments are the cardholder's and go on; issuer
    scripts were queued for the old plastic's chip, and the new plastic has another."""
    old = replace(
        CARD,
        state=S.ACTIVE,
        controls=CardControls(blocked_channels=frozenset({"ecommerce"})),
        stop_payments=(StopPayment("MERCHANT0000001"),),
        chip_scripts=("application_unblock",),
    )
    _, new = make(old, now=NOW, validity_months=36, new_card_id="crd_9")
    assert (new.controls, new.stop_payments) == (old.controls, old.stop_payments)
    assert new.chip_scripts == ()


def test_a_wallet_token_goes_with_the_new_card_only_when_the_pan_stays():
    """The network's vault maps a token to the PAN: a renewal (or a damaged card's
    replacement) keeps it from the start; a successor under a new PAN (a lost or stolen
    card's replacement, a reissue) starts without: it takes the live tokens over when it is
    activated (``take_tokens``)."""
    token = PaymentToken("cd" * 32, "7721", "50120834693", "google_pay")
    old = replace(CARD, state=S.ACTIVE, tokens=(token,))
    assert lifecycle.renew(old, now=NOW, validity_months=36)[1].tokens == (token,)
    damaged = replace(old, state=S.DAMAGED)
    assert lifecycle.replace(damaged, now=NOW, validity_months=36)[1].tokens == (token,)
    for gone in (replace(old, state=S.LOST), replace(old, state=S.STOLEN)):
        assert lifecycle.replace(gone, now=NOW, validity_months=36)[1].tokens == ()
    assert lifecycle.reissue(old, now=NOW, validity_months=36)[1].tokens == ()


@pytest.mark.parametrize(
    ("event", "ends"),
    [
        (Event.CANCEL, True),
        (Event.EXPIRE, True),
        (Event.REPORT_DAMAGED, False),  # its replacement keeps the PAN and the tokens
        (Event.SUSPEND, False),
        (Event.REPORT_LOST, False),  # they wait for the replacement (suspended or not: below)
        (Event.REPORT_STOLEN, False),
    ],
)
def test_a_card_that_pays_no_more_ends_its_tokens(event: Event, ends: bool):
    live = PaymentToken("cd" * 32, "7721", "50120834693", "google_pay", changed_at=1.0)
    gone = PaymentToken("ef" * 32, "5511", "50110030273", "apple_pay", changed_at=2.0,
                        state=TokenState.DELETED)  # fmt: skip
    card = replace(CARD, state=S.ACTIVE, tokens=(live, gone))
    after = lifecycle.transition(card, event, now=NOW)
    if not ends:
        assert TokenState.DELETED not in {t.state for t in after.tokens[:1]}
        assert after.tokens[1] == gone
        return
    assert [t.state for t in after.tokens] == [TokenState.DELETED, TokenState.DELETED]
    assert after.tokens[0].changed_at == NOW and after.tokens[1] == gone


def test_reissue_gives_a_new_pan_and_keeps_the_old_card_working():
    old = replace(CARD, state=S.ACTIVE)
    kept, new = lifecycle.reissue(old, now=NOW, validity_months=36, new_card_id="crd_4")
    assert kept.state is S.ACTIVE and kept.replaced_by == "crd_4"  # works until new is active
    assert (new.pan_index, new.last4) == ("", "") and new.pin_reference is None  # a new PAN
    assert new.state is S.CREATED and new.replaces == "crd_1" and new.expiry == "2905"
    assert (new.account_id, new.limits) == (old.account_id, old.limits)
    with pytest.raises(IllegalTransition, match="already replaced"):
        lifecycle.reissue(kept, now=NOW, validity_months=36)
    with pytest.raises(IllegalTransition, match="can be reissued"):
        lifecycle.reissue(replace(CARD, state=S.LOST), now=NOW, validity_months=36)


def test_retire_ends_a_live_predecessor_and_leaves_a_final_one_alone():
    assert lifecycle.retire(replace(CARD, state=S.ACTIVE)).state is S.REPLACED
    assert lifecycle.retire(replace(CARD, state=S.SUSPENDED)).state is S.REPLACED
    damaged = replace(CARD, state=S.DAMAGED)
    assert lifecycle.retire(damaged) is damaged


@pytest.mark.parametrize(
    ("candidate", "other", "newer", "expected"),
    [
        (S.CREATED, S.ACTIVE, True, False),  # a renewal not yet activated: the old card
        (S.ISSUED, S.SUSPENDED, True, False),
        (S.ACTIVE, S.ACTIVE, True, True),  # both activated: the newest
        (S.ACTIVE, S.REPLACED, True, True),
        (S.ACTIVE, S.CREATED, False, True),  # an activated card over a newer waiting one
        (S.CREATED, S.CREATED, True, True),  # none activated: the newest
        (S.CREATED, S.CREATED, False, False),
    ],
)
def test_which_card_a_pan_means(candidate, other, newer, expected):
    assert (
        lifecycle.is_current_over(
            replace(CARD, state=candidate), replace(CARD, state=other), candidate_is_newer=newer
        )
        is expected
    )


@pytest.mark.parametrize(
    "state", [S.CREATED, *sorted(lifecycle.FINAL_STATES)], ids=lambda s: s.value
)
def test_renewal_refused_outside_live_issued_states(state):
    with pytest.raises(IllegalTransition, match="can be renewed"):
        lifecycle.renew(replace(CARD, state=state), now=NOW, validity_months=36)


def test_damaged_replacement_keeps_pan_new_expiry_and_links():
    old = replace(CARD, state=S.DAMAGED)
    kept, new = lifecycle.replace(old, now=NOW, validity_months=24, new_card_id="crd_3")
    assert kept.state is S.DAMAGED and kept.replaced_by == "crd_3"
    # 24 months from today (2805) would expire before the card it replaces (2812): a month
    # after it instead, never the same expiry (the same PAN and expiry give the same CVV)
    assert new.pan_index == old.pan_index and new.expiry == "2901" and new.replaces == "crd_1"
    assert new.pin_reference == old.pin_reference and new.limits == old.limits


@pytest.mark.parametrize("state", [S.LOST, S.STOLEN], ids=lambda s: s.value)
def test_lost_or_stolen_replacement_needs_a_new_pan(state):
    old = replace(CARD, state=state)
    kept, new = lifecycle.replace(old, now=NOW, validity_months=36)
    assert kept.state is state  # keeps answering 41 / 43
    assert new.pan_index == "" and new.last4 == ""  # the caller produces a new PAN
    assert new.account_id == old.account_id and new.limits == old.limits
    assert new.pin_method is old.pin_method
    assert new.pin_reference is None  # a PVV/offset is bound to the old PAN
    linked_old, linked_new = lifecycle.link(kept, replace(new, card_id="crd_9"))
    assert linked_old.replaced_by == "crd_9" and linked_new.replaces == "crd_1"


@pytest.mark.parametrize(
    "state",
    [S.CREATED, S.ISSUED, S.ACTIVE, S.SUSPENDED, S.EXPIRED, S.CLOSED, S.REPLACED],
    ids=lambda s: s.value,
)
def test_replacement_refused_for_cards_not_lost_stolen_or_damaged(state):
    with pytest.raises(IllegalTransition, match="can be replaced"):
        lifecycle.replace(replace(CARD, state=state), now=NOW, validity_months=36)


def test_a_card_is_replaced_only_once():
    old = replace(CARD, state=S.LOST, replaced_by="crd_2")
    with pytest.raises(IllegalTransition, match="already replaced"):
        lifecycle.replace(old, now=NOW, validity_months=36)


@pytest.mark.parametrize(
    ("old_expiry", "validity", "expected"),
    [("2612", 36, "2912"), ("2911", 36, "3211"), ("2606", 1, "2607")],
    ids=["months ahead", "years early", "short validity"],
)  # fmt: skip
def test_a_renewal_never_expires_with_or_before_the_card_it_renews(old_expiry, validity, expected):
    old = replace(CARD, state=S.ACTIVE, expiry=old_expiry)
    _, new = lifecycle.renew(old, now=NOW, validity_months=validity)
    assert new.expiry == expected and new.expiry > old.expiry


def _renewed(state: CardState = S.ACTIVE) -> tuple[Card, Card]:
    return lifecycle.renew(replace(CARD, state=state), now=NOW, validity_months=36,
                           new_card_id="crd_2")  # fmt: skip


def test_a_change_of_the_renewed_card_is_carried_to_its_pending_successor():
    old, new = _renewed()
    changed = replace(old, cardholder_name="NEW NAME", pin_reference="9999", chip_scripts=("x",))
    carried, fields = lifecycle.carried_changes(old, changed, new)
    assert fields == ["cardholder_name", "pin_reference"]  # chip scripts are the plastic's
    assert carried.cardholder_name == "NEW NAME" and carried.pin_reference == "9999"
    assert carried.chip_scripts == () and carried.state is S.CREATED


def test_nothing_is_carried_to_an_activated_or_other_pan_successor():
    old, new = _renewed()
    changed = replace(old, pin_reference="9999", limits=None)
    active = replace(new, state=S.ACTIVE, activated_at=NOW)
    assert lifecycle.carried_changes(old, changed, active) == (active, [])
    other_pan = replace(new, pan_index="cd" * 32)
    carried, fields = lifecycle.carried_changes(old, changed, other_pan)
    assert fields == ["limits"] and carried.pin_reference == new.pin_reference


def test_only_a_lost_or_stolen_card_withdraws_its_same_pan_renewal():
    old, new = _renewed()
    assert lifecycle.withdrawn_with(replace(old, state=S.LOST), new)
    assert lifecycle.withdrawn_with(replace(old, state=S.STOLEN), replace(new, state=S.ISSUED))
    assert not lifecycle.withdrawn_with(replace(old, state=S.DAMAGED), new)
    assert not lifecycle.withdrawn_with(replace(old, state=S.LOST), replace(new, pan_index="c"))


@pytest.mark.parametrize("state, event", [(S.CREATED, Event.SHIP), (S.ISSUED, Event.ACTIVATE)])
def test_a_card_past_its_expiry_is_not_put_in_use(state, event):
    card = replace(CARD, state=state, expiry="2604")  # NOW is in 2026-05
    with pytest.raises(IllegalTransition, match="expired at the end of 04/26"):
        lifecycle.transition(card, event, now=NOW)
    assert lifecycle.transition(card, Event.CANCEL, now=NOW).state is S.CLOSED


@pytest.mark.parametrize(
    ("state", "same_pan", "keeps"),
    [
        (S.SUSPENDED, True, True),
        (S.SUSPENDED, False, False),  # a new PAN answers an exposed number
        (S.ACTIVE, True, False),
    ],
)
def test_a_same_pan_successor_keeps_the_suspension_of_the_card_in_use(state, same_pan, keeps):
    in_use = replace(CARD, state=state)
    successor = replace(CARD, card_id="crd_new", pan_index=CARD.pan_index if same_pan else "x")
    assert lifecycle.keeps_suspension(in_use, successor) is keeps


def test_a_lost_card_suspends_its_newest_tokens_and_a_stolen_one_all():
    """A lost card's tokens wait for its replacement as they are, but one put in a wallet in
    the day before the report may be the finder's: suspended. A stolen card's may be the
    thief's: all suspended. None is deleted (a deleted one stays deleted)."""
    old = PaymentToken("cd" * 32, "7721", "50120834693", "google_pay", created_at=NOW - 9e5)
    new = PaymentToken("ef" * 32, "5511", "50110030273", "apple_pay", created_at=NOW - 3600)
    gone = replace(new, token_ref="01" * 32, state=TokenState.DELETED)
    card = replace(CARD, state=S.ACTIVE, tokens=(old, new, gone))
    lost = lifecycle.transition(card, Event.REPORT_LOST, now=NOW)
    assert [t.state for t in lost.tokens] == [
        TokenState.ACTIVE,
        TokenState.SUSPENDED,
        TokenState.DELETED,
    ]
    assert lost.tokens[1].changed_at == NOW and lost.tokens[0] == old
    stolen = lifecycle.transition(card, Event.REPORT_STOLEN, now=NOW)
    assert [t.state for t in stolen.tokens] == [TokenState.SUSPENDED] * 2 + [TokenState.DELETED]


def test_a_successor_under_a_new_pan_takes_the_live_tokens_over():
    """At its activation: each live token of the cards it takes over from (nearest first, a
    chain of copies of one token counted once, its most recently changed copy deciding), with
    its reference and state; deleted ones stay behind, and so does one the new card has
    itself. The predecessors give the live ones up; a same-PAN card gives nothing."""
    phone = PaymentToken("cd" * 32, "7721", "50120834693", "google_pay", changed_at=1.0)
    watch = PaymentToken("ef" * 32, "5511", "50110030273", "apple_pay", changed_at=1.0,
                         state=TokenState.SUSPENDED)  # fmt: skip
    gone = PaymentToken("01" * 32, "9001", "50110030273", "apple_pay", changed_at=1.0,
                        state=TokenState.DELETED)  # fmt: skip
    own = PaymentToken("23" * 32, "4242", "50110030273", "apple_pay", changed_at=5.0)
    in_use = replace(CARD, state=S.ACTIVE, activated_at=NOW, tokens=(phone, watch, gone, own))
    # a renewal of it lost in the post: the same tokens, the phone's suspended at the report
    renewal = replace(in_use, card_id="crd_2", state=S.LOST, activated_at=None,
                      tokens=(replace(phone, state=TokenState.SUSPENDED, changed_at=2.0),
                              watch, gone))  # fmt: skip
    successor = replace(CARD, card_id="crd_3", pan_index="cc" * 32, state=S.ACTIVE,
                        tokens=(own,))  # fmt: skip
    after, handed = lifecycle.take_tokens(successor, [renewal, in_use])
    assert after.tokens == (own, renewal.tokens[0], watch)
    assert [index for _, index in handed.moved] == [0, 0]
    assert handed.refs == {phone.token_ref, watch.token_ref, own.token_ref}
    for old in (renewal, in_use):
        assert lifecycle.without_tokens(old, handed.refs).tokens == (gone,)
    same_pan = replace(successor, pan_index=in_use.pan_index, tokens=())
    assert lifecycle.take_tokens(same_pan, [in_use]) == (
        same_pan,
        lifecycle.HandedOver((), (), frozenset()),
    )
    assert lifecycle.without_tokens(in_use, frozenset()) is in_use
