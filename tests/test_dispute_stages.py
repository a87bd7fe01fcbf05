"""The network stages' rules without a store (admin.dispute_stages): the card's network from its
BIN, the reason code a chargeback goes under, and who acts next by when at each stage."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from authhost.admin.dispute_stages import (
    DAY,
    Charge,
    DisputeLimits,
    charge_back,
    network_of,
    next_action,
    pre_arbitrate,
    represented,
    with_partial_recall,
)
from authhost.admin.errors import ConflictError, InvalidRequest
from authhost.store.records import Dispute

T0 = 1_800_000_000.0  # the charge
LIMITS = DisputeLimits()


def dispute(reason: str = "fraud", **changes: object) -> Dispute:
    opened = Dispute("dsp-1", 7, "c1", "a1", reason, 5_000, "978", T0 + 60, charged_at=T0)
    return replace(opened, **changes)


def charge(bin6: str = "476173", channel: str = "pos") -> Charge:
    return Charge(T0, f"{bin6}******0010", "000000123456", channel)


@pytest.mark.parametrize(
    ("bin6", "network"),
    [
        ("476173", "visa"),
        ("400000", "visa"),
        ("541333", "mastercard"),
        ("510000", "mastercard"),
        ("222100", "mastercard"),
        ("272099", "mastercard"),
        ("272100", ""),
        ("601100", ""),
        ("", ""),
    ],
    ids=lambda v: v or "none",
)
def test_the_network_is_read_from_the_bin(bin6: str, network: str) -> None:
    assert network_of(f"{bin6}******0010" if bin6 else "") == network


@pytest.mark.parametrize(
    ("reason", "bin6", "channel", "asked", "code"),
    [
        ("fraud", "476173", "pos", "", "10.3"),  # card present
        ("fraud", "476173", "ecommerce", "", "10.4"),  # card absent
        ("fraud", "541333", "pos", "", "4837"),
        ("not_received", "476173", "pos", "", "13.1"),
        ("not_received", "541333", "pos", "", "4853"),
        ("not_as_described", "541333", "pos", "", "4853"),
        ("duplicate", "476173", "pos", "", "12.6.1"),
        ("amount", "541333", "pos", "", "4834"),
        ("other", "476173", "pos", "13.7", "13.7"),  # other takes any code but fraud's
        ("other", "601100", "pos", "4841", "4841"),  # a BIN of no known network: any network
        ("not_received", "541333", "pos", "4855", "4855"),  # Mastercard's code before 2017
    ],
)
def test_the_reason_code_defaults_to_the_reasons_usual_one(reason, bin6, channel, asked, code):  # noqa: ANN001
    filed = charge_back(dispute(reason), charge(bin6, channel), code=asked, amount_minor=None,
                        limits=LIMITS, now=T0 + DAY)  # fmt: skip
    assert (filed.stage, filed.reason_code, filed.chargeback_minor) == ("chargeback", code, 5_000)


@pytest.mark.parametrize(
    ("reason", "bin6", "asked", "words"),
    [
        ("other", "476173", "", "give the network reason code"),
        ("fraud", "476173", "13.1", "does not fit the dispute's reason (fraud)"),
        ("other", "476173", "10.4", "does not fit the dispute's reason (other)"),
        ("fraud", "476173", "4837", "4837 is mastercard's; the card is a visa card"),
        ("fraud", "476173", "10.9", "not a network reason code"),
    ],
)
def test_a_reason_code_that_does_not_fit_is_refused(reason, bin6, asked, words) -> None:  # noqa: ANN001
    with pytest.raises(InvalidRequest, match=re.escape(words)):
        charge_back(dispute(reason), charge(bin6), code=asked, amount_minor=None, limits=LIMITS,
                    now=T0 + DAY)  # fmt: skip


def test_each_stage_names_who_acts_next_and_by_when() -> None:
    opened = dispute()
    steps = [(opened, "issuer", "chargeback", T0 + 120 * DAY)]
    filed = charge_back(opened, charge(), code="", amount_minor=None, limits=LIMITS, now=T0 + DAY)
    # the acquirer's limit is a day's end: a representment is dated by its UTC day
    steps.append((filed, "acquirer", "representment", T0 - T0 % DAY + 47 * DAY - 1))
    answered = represented(filed, received_at=T0 + 10 * DAY, reference="R", amount_minor=5_000,
                           limits=LIMITS, now=T0 + 11 * DAY)  # fmt: skip
    steps.append((answered, "issuer", "pre_arbitration", T0 + 40 * DAY))
    pre_arb = pre_arbitrate(answered, limits=LIMITS, now=T0 + 12 * DAY)
    steps.append((pre_arb, "acquirer", "pre_arbitration_answer", T0 + 42 * DAY))
    for stage, owner, action, due in steps:
        waiting = next_action(stage, LIMITS, due - 1)
        assert (waiting.owner, waiting.action, waiting.deadline, waiting.overdue) == (
            owner, action, due, False
        )  # fmt: skip
        late = next_action(stage, LIMITS, due + 1)  # the limit passed: the issuer resolves
        assert (late.owner, late.action, late.deadline, late.overdue) == (
            "issuer",
            "resolve",
            due,
            True,
        )
        if owner == "acquirer":
            assert "the issuer won; resolve it won" in late.todo
    assert next_action(replace(pre_arb, state="won"), LIMITS, T0).owner == ""
    # each step again with its values: the same dispute; with others, or out of order: 409
    assert charge_back(filed, charge(), code="10.3", amount_minor=5_000, limits=LIMITS,
                       now=T0 + 200 * DAY) is filed  # fmt: skip
    assert pre_arbitrate(pre_arb, limits=LIMITS, now=T0 + 300 * DAY) is pre_arb
    with pytest.raises(ConflictError, match="charged back already"):
        charge_back(filed, charge(), code="10.4", amount_minor=None, limits=LIMITS, now=T0)
    with pytest.raises(ConflictError, match="stage opened: a representment answers a chargeback"):
        represented(opened, received_at=None, reference="R", amount_minor=1, limits=LIMITS,
                    now=T0)  # fmt: skip


def test_a_representment_on_the_acquirers_last_day_is_in_time_dated_or_not() -> None:
    """The acquirer's limit is the UTC day representment_days after the chargeback, to its
    end: a representment recorded undated late on that day is taken as one dated that day is,
    the dispute is not shown overdue (the issuer won) while one may still come, and the next
    day it is refused."""
    filed = charge_back(dispute(), charge(), code="", amount_minor=None, limits=LIMITS,
                        now=T0 + DAY)  # fmt: skip
    last_day = T0 - T0 % DAY + 46 * DAY  # T0 + DAY + 45 days, at 00:00 UTC
    late_that_day = last_day + DAY - 60  # 23:59 UTC, hours after T0 + 46 days
    assert late_that_day > filed.charged_back_at + 45 * DAY
    waiting = next_action(filed, LIMITS, late_that_day)
    assert (waiting.owner, waiting.overdue) == ("acquirer", False)
    for received in (None, last_day):
        taken = represented(filed, received_at=received, reference="R", amount_minor=5_000,
                            limits=LIMITS, now=late_that_day)  # fmt: skip
        assert taken.stage == "represented"
    assert next_action(filed, LIMITS, last_day + DAY).overdue
    with pytest.raises(ConflictError, match="came after the acquirer's limit"):
        represented(filed, received_at=None, reference="R", amount_minor=5_000, limits=LIMITS,
                    now=last_day + DAY)  # fmt: skip


def test_a_representment_recorded_undated_is_the_same_as_that_day_dated() -> None:
    """Recorded by hand without a date (now), then the acquirer's file with that day's date:
    the same representment, answered as it stands, not refused as a second one."""
    filed = charge_back(dispute(), charge(), code="", amount_minor=None, limits=LIMITS,
                        now=T0 + DAY)  # fmt: skip
    now = T0 + 3 * DAY + 3_600
    taken = represented(filed, received_at=None, reference="R", amount_minor=5_000,
                        limits=LIMITS, now=now)  # fmt: skip
    assert represented(taken, received_at=now - now % DAY, reference="R", amount_minor=5_000,
                       limits=LIMITS, now=now + 60) is taken  # fmt: skip
    with pytest.raises(ConflictError, match="represented already"):
        represented(taken, received_at=now - now % DAY - DAY, reference="R", amount_minor=5_000,
                    limits=LIMITS, now=now + 60)  # fmt: skip


def test_a_dispute_left_half_resolved_is_due_now() -> None:
    from authhost.admin.dispute_stages import due_order, issuer_due_by

    stuck = dispute(resolving="lost")
    assert issuer_due_by(stuck, LIMITS, T0 + DAY, T0 + DAY)
    assert not issuer_due_by(dispute(), LIMITS, T0 + DAY, T0 + DAY)
    assert due_order(stuck, LIMITS) < due_order(dispute(), LIMITS)


def test_a_chargeback_lowered_by_a_partial_reversal_is_the_one_filed_when_asked_again() -> None:
    """Filed for 4,000 of 5,000, then lowered to 2,500 (a partial reversal shrank the dispute
    to 2,500): asked again for the 4,000 filed, for what it claims now, or with no amount (all
    of what is disputed now), it is the chargeback as recorded; another amount is refused,
    naming the one filed."""
    filed = charge_back(
        dispute(), charge(), code="10.3", amount_minor=4_000, limits=LIMITS, now=T0 + DAY
    )
    lowered = with_partial_recall(replace(filed, amount_minor=2_500), 1_500, T0 + 2 * DAY)
    for amount in (4_000, 2_500, None):
        again = charge_back(
            lowered, charge(), code="10.3", amount_minor=amount, limits=LIMITS, now=T0 + 3 * DAY
        )
        assert again is lowered, amount
    with pytest.raises(ConflictError, match=r"charged back already \(10.3, 4000 on"):
        charge_back(
            lowered, charge(), code="10.3", amount_minor=3_000, limits=LIMITS, now=T0 + 3 * DAY
        )
    # never lowered: no amount is all of the disputed 5,000, not the 4,000 filed
    with pytest.raises(ConflictError, match="charged back already"):
        charge_back(filed, charge(), code="10.3", amount_minor=None, limits=LIMITS, now=T0 + DAY)
