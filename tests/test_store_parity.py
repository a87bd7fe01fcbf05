"""The two stores side by side: cases where SQLite and Redis once answered differently (found by
running the same random operations on both)."""

from __future__ import annotations

from dataclasses import replace

from test_store_contract import (  # noqa: F401 - fixtures
    CREDIT,
    NOW,
    PRODUCT,
    entry,
    hold,
    make_card,
    redis_cluster_url,
    seeded,
    store,
)

from authhost.store.interface import (
    Commit,
)


async def test_a_right_pin_refused_for_a_used_3ds_value_keeps_the_wrong_tries(store):  # noqa: F811
    """A refused request (here: its 3-D Secure value was used already) is no proof that the
    cardholder is there: its right PIN resets the wrong-PIN counter on neither store, as a
    refused chip counter's does not (SQLite reset it before looking at the value)."""
    card, _ = await seeded(store)
    await store.commit(replace(hold(card, 1, 100), cavv_atn="0000000000000001"))
    await store.commit(Commit(entry(card, 2, 0, response_code="55"), card_id=card.card_id,
                              pin_wrong=True))  # fmt: skip
    again = await store.commit(replace(hold(card, 3, 100), cavv_atn="0000000000000001",
                                       pin_limit=3))  # fmt: skip
    assert again.cavv_reused and again.journal.response_code == "05"
    assert (await store.get_card(card.card_id)).pin_tries == 1
    right = await store.commit(replace(hold(card, 4, 100), pin_limit=3))
    assert right.journal.response_code == "00"
    assert (await store.get_card(card.card_id)).pin_tries == 0


async def test_issuer_scripts_sent_with_a_right_pin_leave_the_card(store):  # noqa: F811
    """A chip answer that carries the card's queued issuer script commands empties the queue,
    also when its right PIN resets a wrong-PIN count in the same write (SQLite reset the count
    first, which moved the card's version, and then kept the commands queued)."""
    card, _ = await seeded(store, chip_scripts=("application_unblock",))
    await store.commit(Commit(entry(card, 1, 0, response_code="55"), card_id=card.card_id,
                              pin_wrong=True))  # fmt: skip
    seen = await store.get_card(card.card_id)
    assert seen.pin_tries == 1 and seen.chip_scripts
    delivered = replace(hold(card, 2, 100), pin_limit=3,
                        delivered_card=replace(seen, chip_scripts=()))  # fmt: skip
    assert (await store.commit(delivered)).journal.response_code == "00"
    now = await store.get_card(card.card_id)
    assert (now.pin_tries, now.chip_scripts) == (0, ())


async def test_a_pin_change_over_a_changed_card_moves_no_money(store):  # noqa: F811
    """A PIN change refused because the card changed since its snapshot (96) moves none of
    its money either (SQLite moved it, then refused the change)."""
    card, _ = await seeded(store, balance=5_000)
    seen = await store.get_card(card.card_id)
    await store.commit(Commit(entry(card, 1, 0, response_code="55"), card_id=card.card_id,
                              pin_wrong=True))  # fmt: skip
    late = replace(hold(card, 2, 1_000), changed_card=replace(seen, pin_reference="7531"))
    done = await store.commit(late)
    assert done.pin_change_conflict and done.journal.response_code == "96"
    assert (await store.get_account("acc-1")).holds == 0
    assert (await store.get_card(card.card_id)).pin_reference == seen.pin_reference
