"""Which card a PAN means once a successor ends before its activation, and when the card it
was to succeed is unlinked from it (cards.lifecycle)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from authhost.cards import lifecycle
from authhost.cards.model import Card, CardState

S = CardState
NOW = 1_800_000_000.0


def _pair() -> tuple[Card, Card]:
    """An active card and its renewal, not yet activated."""
    old = Card(
        card_id="crd_old", pan_index="idx", bin="476173", last4="0001", pan_length=16,
        product_id="p", account_id="acc", state=S.ACTIVE, expiry="2812", service_code="201",
        activated_at=NOW - 1e7,
    )  # fmt: skip
    old, new = lifecycle.renew(old, now=NOW, validity_months=36, new_card_id="crd_new")
    return old, new


@pytest.mark.parametrize("event", ["cancel", "expire"])
def test_a_renewal_ended_before_activation_never_outranks_the_card_it_renews(event):
    old, new = _pair()
    if event == "expire":
        new = lifecycle.transition(new, "ship", now=NOW)
    ended = lifecycle.transition(new, event, now=NOW)
    assert not lifecycle.is_current_over(ended, old, candidate_is_newer=True)
    assert lifecycle.is_current_over(old, ended, candidate_is_newer=False)
    unlinked = lifecycle.withdrawn_successor(old, ended)
    assert unlinked is not None and unlinked.replaced_by is None
    assert unlinked.state is S.ACTIVE
    lifecycle.renew(unlinked, now=NOW, validity_months=36, new_card_id="crd_again")


def test_a_renewal_activated_then_cancelled_keeps_the_pan_and_the_link():
    old, new = _pair()
    for event in ("ship", "activate", "cancel"):
        new = lifecycle.transition(new, event, now=NOW)
    assert lifecycle.is_current_over(new, lifecycle.retire(old), candidate_is_newer=True)
    assert lifecycle.withdrawn_successor(lifecycle.retire(old), new) is None


def test_a_card_stored_without_activated_at_counts_as_activated_by_its_state():
    old, new = _pair()
    legacy = replace(old, activated_at=None)
    ended = lifecycle.transition(new, "cancel", now=NOW)
    assert not lifecycle.is_current_over(ended, legacy, candidate_is_newer=True)


def test_a_live_renewal_is_not_withdrawn():
    old, new = _pair()
    assert lifecycle.withdrawn_successor(old, new) is None
    with pytest.raises(lifecycle.IllegalTransition, match="already replaced"):
        lifecycle.check_successor_allowed(old)
