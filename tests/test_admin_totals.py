"""Totals from journal entries (admin.totals): each movement counted once, where the store
really moved money, in the account's currency; entries from before the movement was
journalled classified by class and processing code."""

from __future__ import annotations

import pytest

from authhost.admin.totals import Totals, movement_of
from authhost.store.records import JournalEntry


def entry(mti: str, klass: str, code: str, held: int, movement: str = "", **more) -> JournalEntry:
    return JournalEntry(
        ts=1.0, mti=mti, message_class=klass, response_code=code, hold_amount=held,
        movement=movement, currency=more.pop("currency", "978"),
        acquirer_id=more.pop("acquirer_id", "123456"), **more,
    )  # fmt: skip


def test_each_movement_is_added_up_per_currency_and_acquirer():
    totals = Totals(0.0, 86_400.0)
    totals.add_all([
        entry("0100", "authorisation", "00", 10_000, "hold"),
        entry("0100", "authorisation", "10", 4_000, "hold"),  # partly approved: what it held
        # an 0100 the host posts ([auth] post_processing_codes): by its movement, not its class
        entry("0100", "authorisation", "00", 2_500, "post", processing_code="010000"),
        entry("0200", "financial", "00", 700, "post", acquirer_id="654321"),
        entry("0200", "financial", "00", 500, "credit", processing_code="200000"),
        entry("0400", "reversal", "00", -3_000, "release"),
        entry("0400", "reversal", "00", 0, "release"),  # nothing left to release
        # the funds re-check at commit refused it: journalled 51, nothing moved
        entry("0100", "authorisation", "51", 0, "hold"),
        entry("0100", "authorisation", "55", 0),
        entry("0200", "financial", "00", 900, "post", currency="840", acquirer_id="654321"),
    ])  # fmt: skip
    view = totals.view()
    assert view["entries"] == 10
    assert view["by_message_class"]["authorisation"] == {"approved": 3, "declined": 2}
    dollars, euros = view["currencies"]
    assert (dollars["currency"], euros["currency"]) == ("840", "978")
    assert euros["authorised"] == {"count": 2, "amount_minor": 14_000}
    assert euros["posted"] == {"count": 2, "amount_minor": 3_200}
    assert euros["credited"] == {"count": 1, "amount_minor": 500}
    assert euros["released"] == {"count": 1, "amount_minor": 3_000}
    assert euros["net_posted_minor"] == 2_700
    assert (euros["approved"], euros["declined"]) == (7, 2)
    assert euros["declined_by_code"] == {"51": 1, "55": 1}
    acquirers = {a["acquirer_id"]: a for a in euros["acquirers"]}
    assert acquirers["654321"]["posted"] == {"count": 1, "amount_minor": 700}
    assert acquirers["123456"]["posted"] == {"count": 1, "amount_minor": 2_500}
    assert dollars["posted"] == {"count": 1, "amount_minor": 900}


@pytest.mark.parametrize(
    ("mti", "klass", "processing_code", "held", "expected"),
    [
        ("0100", "authorisation", "000000", 1_000, "hold"),
        ("0120", "authorisation_advice", "000000", 1_000, "hold"),
        ("0200", "financial", "000000", 1_000, "post"),
        ("0220", "financial_advice", "000000", 1_000, "post"),
        ("0200", "financial", "200000", 1_000, "credit"),
        ("0420", "reversal_advice", "000000", -1_000, "release"),
        ("0100", "authorisation", "310000", 0, ""),  # a balance inquiry moves nothing
    ],
)  # fmt: skip
def test_entries_journalled_before_the_movement_are_classified(
    mti, klass, processing_code, held, expected
):
    old = entry(mti, klass, "00", held, processing_code=processing_code)
    assert movement_of(old) == expected


def test_a_reversed_posting_is_not_owed_to_the_acquirer():
    """A purchase reversed after it posted (a 0400 on an 0200) gives the money back: the
    acquirer is owed nothing for it, whereas a released hold was never owed."""
    totals = Totals(0.0, 86_400.0)
    totals.add_all([
        entry("0200", "financial", "00", 2_000, "post", balance_delta=-2_000),
        entry("0400", "reversal", "00", -2_000, "release", balance_delta=2_000),
        entry("0200", "financial", "00", 1_000, "post", balance_delta=-1_000),
        entry("0400", "reversal", "00", -400, "release", balance_delta=400),  # in part
        entry("0100", "authorisation", "00", 3_000, "hold"),
        entry("0400", "reversal", "00", -3_000, "release"),  # a hold: nothing was owed
        # a credit account's debt: a reversed posting lowers it, still posted money back
        entry("0400", "reversal", "00", -500, "release", balance_delta=-500, currency="840"),
    ])  # fmt: skip
    dollars, euros = totals.view()["currencies"]
    assert euros["released"] == {"count": 3, "amount_minor": 5_400}
    assert euros["reversed_posted"] == {"count": 2, "amount_minor": 2_400}
    assert euros["net_posted_minor"] == 3_000 - 2_400
    [acquirer] = euros["acquirers"]
    assert acquirer["net_posted_minor"] == 600
    assert dollars["reversed_posted"] == {"count": 1, "amount_minor": 500}
    assert dollars["net_posted_minor"] == -500
