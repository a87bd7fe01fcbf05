"""The acquirer's answer to a pre-arbitration and arbitration, without a store
(admin.dispute_stages): what each answer leaves the cardholder, who acts next by when, the
steps refused out of order, late or with an amount that does not fit, and a dispute that never
had them stored as before (an older authhost still reads it)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from authhost.admin.dispute_stages import (
    DAY,
    DisputeLimits,
    amounts,
    answer_pre_arbitration,
    arbitrate,
    cardholder_keeps,
    day_start,
    lowered_chargeback,
    next_action,
    recalled_minor,
    ruling_refused,
    with_arbitration_fee,
)
from authhost.admin.errors import ConflictError, InvalidRequest
from authhost.store import codec
from authhost.store.records import Dispute

T0 = 1_800_000_000.0  # the charge
PRE_ARB = T0 + 60 * DAY  # the pre-arbitration
LIMITS = DisputeLimits()
# disputed 5,000, charged back 5,000, represented 4,000, pre-arbitrated 3,000 (1,000 conceded)
D, CB, R, P = 5_000, 5_000, 4_000, 3_000


def pre_arbitrated() -> Dispute:
    return Dispute(
        "dsp-1", 7, "c1", "a1", "fraud", D, "978", T0 + 60, charged_at=T0,
        stage="pre_arbitration", network="visa", reason_code="10.4", chargeback_minor=CB,
        charged_back_at=T0 + DAY, arn="000000123456", pan_masked="476173******0010",
        represented_at=T0 + 30 * DAY, representment_reference="R-1", represented_minor=R,
        pre_arbitration_at=PRE_ARB, pre_arbitration_minor=P,
    )  # fmt: skip


def answered(answer: str, amount: int | None = None, now: float = PRE_ARB + DAY) -> Dispute:
    return answer_pre_arbitration(
        pre_arbitrated(), answer=answer, amount_minor=amount, limits=LIMITS, now=now
    )


@pytest.mark.parametrize(
    ("answer", "amount", "accepted", "won", "lost"),
    [
        # all of it: the chargeback less what the issuer conceded, whatever the outcome
        ("accepted", None, P, CB - (R - P), CB - (R - P)),
        ("accepted", P, P, CB - (R - P), CB - (R - P)),
        # a part: the cardholder keeps what the acquirer accepted, and only that
        ("accepted_in_part", 1_200, 1_200, CB - R + 1_200, CB - R + 1_200),
        # declined: won is the bank's cost (or an arbitration won), lost keeps CB - R
        ("declined", None, 0, CB - (R - P), CB - R),
    ],
)
def test_the_answer_settles_what_the_cardholder_keeps(answer, amount, accepted, won, lost):  # noqa: ANN001
    dispute = answered(answer, amount)
    assert dispute.pre_arbitration_answer == answer
    assert dispute.pre_arbitration_answered_at == PRE_ARB + DAY
    assert dispute.pre_arbitration_accepted_minor == accepted
    assert dispute.version == pre_arbitrated().version + 1
    shown = amounts(dispute)
    assert shown["pre_arbitration_accepted_minor"] == accepted
    assert (shown["if_won_minor"], shown["if_lost_minor"], shown["if_withdrawn_minor"]) == (
        won, lost, 0
    )  # fmt: skip
    assert cardholder_keeps(dispute, "won") == won
    assert cardholder_keeps(dispute, "lost") == lost
    # withdrawn: the issuer gives back what it holds of the chargeback, the accepted part too
    assert recalled_minor(dispute) == CB - R + accepted


def test_who_acts_next_after_each_answer_and_arbitration() -> None:
    now = PRE_ARB + 2 * DAY
    accepted = next_action(answered("accepted"), LIMITS, now)
    assert (accepted.owner, accepted.action, accepted.overdue) == ("issuer", "resolve", True)
    assert "disputes resolve dsp-1 --outcome won" in accepted.todo
    # accepted in part: the rest may go to arbitration, within arbitration_days of the answer
    in_part = next_action(answered("accepted_in_part", 1_200), LIMITS, now)
    assert (in_part.owner, in_part.action, in_part.overdue) == ("issuer", "arbitration", False)
    assert in_part.deadline == PRE_ARB + DAY + 10 * DAY
    assert "file arbitration for the rest" in in_part.todo
    assert "disputes arbitration dsp-1" in in_part.todo
    passed = next_action(answered("accepted_in_part", 1_200), LIMITS, PRE_ARB + 12 * DAY)
    assert (passed.action, passed.overdue) == ("resolve", True)
    assert "too late for arbitration of the rest" in passed.todo

    declined = answered("declined")
    waiting = next_action(declined, LIMITS, now)
    assert (waiting.owner, waiting.action, waiting.overdue) == ("issuer", "arbitration", False)
    assert waiting.deadline == PRE_ARB + DAY + 10 * DAY
    assert "disputes arbitration dsp-1" in waiting.todo
    late = next_action(declined, LIMITS, PRE_ARB + 12 * DAY)
    assert (late.owner, late.action, late.overdue) == ("issuer", "resolve", True)
    assert "too late for arbitration" in late.todo

    filed = arbitrate(declined, limits=LIMITS, now=now)
    assert (filed.stage, filed.arbitration_at, filed.version) == (
        "arbitration", now, declined.version + 1
    )  # fmt: skip
    ruling = next_action(filed, LIMITS, now + 300 * DAY)
    assert (ruling.owner, ruling.action, ruling.deadline, ruling.overdue) == (
        "network", "arbitration_ruling", None, False
    )  # fmt: skip
    assert "disputes arbitration-ruling dsp-1 --ruling won|lost" in ruling.todo
    assert ruling_refused(filed, LIMITS, now) is None
    # asked again: the same dispute, nothing to write
    assert arbitrate(filed, limits=LIMITS, now=now + DAY) is filed


def test_an_answer_in_part_past_its_arbitration_limit_promises_only_what_won_keeps() -> None:
    """Past the limit for arbitration of the rest, won keeps what lost keeps (what was
    accepted): the todo says so, and offers no "won at the bank's cost" that would keep more
    (as it may after a decline)."""
    dispute = answered("accepted_in_part", 1_200)
    passed = next_action(dispute, LIMITS, PRE_ARB + 12 * DAY)
    assert cardholder_keeps(dispute, "won") == cardholder_keeps(dispute, "lost") == CB - R + 1_200
    assert "bank's cost" not in passed.todo
    assert "won or lost, the cardholder keeps what was accepted" in passed.todo
    assert "disputes resolve dsp-1" in passed.todo
    declined = answered("declined")  # there, won is the bank's cost and keeps more
    assert cardholder_keeps(declined, "won") > cardholder_keeps(declined, "lost")
    assert "bank's cost" in next_action(declined, LIMITS, PRE_ARB + 12 * DAY).todo


@pytest.mark.parametrize(
    ("answer", "amount", "words"),
    [
        ("accepted", 2_000, "is not the 3000 pre-arbitrated"),
        ("accepted_in_part", None, "gives the amount accepted"),
        ("accepted_in_part", 3_000, "less than the 3000 pre-arbitrated"),
        ("declined", 100, "a declined answer accepts nothing"),
    ],
)
def test_an_answer_whose_amount_does_not_fit_is_invalid(answer, amount, words) -> None:  # noqa: ANN001
    with pytest.raises(InvalidRequest, match=words):
        answered(answer, amount)


def test_steps_out_of_order_late_or_answered_twice_are_refused() -> None:
    represented = replace(pre_arbitrated(), stage="represented", pre_arbitration_at=0.0)
    with pytest.raises(ConflictError, match="at stage represented: the acquirer's answer"):
        answer_pre_arbitration(
            represented, answer="declined", amount_minor=None, limits=LIMITS, now=PRE_ARB
        )
    with pytest.raises(ConflictError, match="arbitration follows a pre-arbitration declined"):
        arbitrate(pre_arbitrated(), limits=LIMITS, now=PRE_ARB)
    with pytest.raises(ConflictError, match="the acquirer accepted the pre-arbitration"):
        arbitrate(answered("accepted"), limits=LIMITS, now=PRE_ARB + 2 * DAY)
    refused = ruling_refused(answered("declined"), LIMITS, PRE_ARB + 2 * DAY)
    assert refused is not None and "a ruling answers an arbitration" in refused.message
    closed = replace(answered("declined"), state="lost")
    with pytest.raises(ConflictError, match="is lost already"):
        arbitrate(closed, limits=LIMITS, now=PRE_ARB + 2 * DAY)

    # the acquirer's limit passed: the issuer won; the issuer's own passed: the decline stands
    with pytest.raises(ConflictError, match="answer came after its limit.*the issuer won"):
        answered("accepted", now=PRE_ARB + 31 * DAY)
    with pytest.raises(ConflictError, match="too late for arbitration.*arbitration_days"):
        arbitrate(answered("declined"), limits=LIMITS, now=PRE_ARB + 12 * DAY)
    longer = DisputeLimits(arbitration_days=45)
    assert arbitrate(answered("declined"), limits=longer, now=PRE_ARB + 12 * DAY).arbitration_at

    # asked again as recorded: the same dispute; another answer: refused
    once = answered("accepted_in_part", 1_200)
    again = answer_pre_arbitration(
        once, answer="accepted_in_part", amount_minor=1_200, limits=LIMITS, now=PRE_ARB + 5 * DAY
    )
    assert again is once
    for answer, amount in (("accepted_in_part", 1_000), ("declined", None), ("accepted", None)):
        with pytest.raises(ConflictError, match="answered the pre-arbitration already"):
            answer_pre_arbitration(
                once, answer=answer, amount_minor=amount, limits=LIMITS, now=PRE_ARB + 5 * DAY
            )


def test_what_the_acquirer_holds_after_a_ruling_or_an_answer_lowers_the_chargeback() -> None:
    """A partial reversal leaving the charge taking 3,500: the issuer may hold no more of the
    chargeback than that beyond what the acquirer holds. Won by the network's ruling, the
    acquirer gave the pre-arbitrated part back (it holds the 1,000 conceded); won after a
    decline with no ruling (the bank's cost), it holds all it represented."""
    still = 3_500
    declined = arbitrate(answered("declined"), limits=LIMITS, now=PRE_ARB + 2 * DAY)
    ruled = replace(declined, arbitration_ruling="won")
    assert lowered_chargeback(ruled, still, "won") == CB - (R - P) - still  # 500
    assert lowered_chargeback(declined, still, "won") == 0  # 5,000 - 4,000 < 3,500
    in_part = answered("accepted_in_part", 1_200)  # the acquirer holds 2,800
    assert lowered_chargeback(in_part, 2_000) == CB - 2_800 - 2_000  # 200


def test_a_dispute_without_these_steps_is_stored_as_before() -> None:
    """None of the new fields is written until it is set (an older authhost refuses a field
    it does not know); once set they are read back as written."""
    fields = ("pre_arbitration_answer", "pre_arbitration_answered_at",
              "pre_arbitration_accepted_minor", "arbitration_at", "arbitration_ruling")  # fmt: skip
    stored = json.loads(codec.dispute_to_json(pre_arbitrated()))
    assert not set(fields) & set(stored)
    assert codec.dispute_from_json(codec.dispute_to_json(pre_arbitrated())) == pre_arbitrated()
    ruled = replace(
        arbitrate(answered("declined"), limits=LIMITS, now=PRE_ARB + 2 * DAY),
        arbitration_ruling="won",
    )
    written = json.loads(codec.dispute_to_json(ruled))
    assert set(fields) - {"pre_arbitration_accepted_minor"} <= set(written)  # declined: 0
    assert codec.dispute_from_json(codec.dispute_to_json(ruled)) == ruled


def test_an_answer_is_dated_by_its_day_and_in_time_however_late_it_is_recorded() -> None:
    """Given on the acquirer's last day and recorded two days later: in time, dated that day
    (the issuer's arbitration limit counts from it); dated past the limit: the issuer won;
    before the pre-arbitration's day or in the future: invalid. Asked again undated or with
    that day: as recorded; with another day: refused."""
    last_day = time.strftime("%Y-%m-%d", time.gmtime(PRE_ARB + 30 * DAY))
    later = PRE_ARB + 32 * DAY
    dated = answer_pre_arbitration(
        pre_arbitrated(), answer="declined", amount_minor=None, limits=LIMITS, now=later,
        received_at=day_start(last_day),
    )  # fmt: skip
    assert dated.pre_arbitration_answered_at == day_start(last_day)
    assert next_action(dated, LIMITS, later).deadline == day_start(last_day) + 10 * DAY
    for again in (None, day_start(last_day) + 0.0):
        assert answer_pre_arbitration(
            dated, answer="declined", amount_minor=None, limits=LIMITS, now=later + DAY,
            received_at=again,
        ) is dated  # fmt: skip
    with pytest.raises(ConflictError, match="answered the pre-arbitration already"):
        answer_pre_arbitration(
            dated, answer="declined", amount_minor=None, limits=LIMITS, now=later,
            received_at=day_start(last_day) - DAY,
        )  # fmt: skip
    cases = [
        (PRE_ARB + 31 * DAY, later, ConflictError, "came after its limit.*the issuer won"),
        (PRE_ARB - DAY, later, InvalidRequest, "is before the pre-arbitration"),
        (later + 2 * DAY, later, InvalidRequest, "is in the future"),
    ]
    for day, now, refusal, words in cases:
        with pytest.raises(refusal, match=words):
            answer_pre_arbitration(
                pre_arbitrated(), answer="accepted", amount_minor=None, limits=LIMITS, now=now,
                received_at=day - day % DAY,
            )  # fmt: skip


def test_an_answer_accepted_in_part_goes_to_arbitration_for_the_rest() -> None:
    """Accepted 1,200 of the 3,000 pre-arbitrated: arbitration is for the 1,800 left. Ruled
    won, the cardholder keeps the chargeback less only what the issuer conceded (the 1,200
    accepted and the 1,800 won); lost, what the acquirer accepted (CB - R + 1,200); won
    without a ruling, the bank bears the rest. The ruling's fee is the loser's."""
    in_part = answered("accepted_in_part", 1_200)
    assert amounts(in_part)["arbitration_minor"] == P - 1_200
    assert amounts(answered("declined"))["arbitration_minor"] == P
    assert amounts(answered("accepted"))["arbitration_minor"] == 0
    filed = arbitrate(in_part, limits=LIMITS, now=PRE_ARB + 2 * DAY)
    assert (filed.stage, filed.pre_arbitration_answer) == ("arbitration", "accepted_in_part")
    assert amounts(filed)["arbitration_minor"] == P - 1_200
    assert next_action(filed, LIMITS, PRE_ARB + 3 * DAY).action == "arbitration_ruling"
    assert ruling_refused(filed, LIMITS, PRE_ARB + 3 * DAY) is None
    won = replace(filed, arbitration_ruling="won")
    assert cardholder_keeps(won, "won") == CB - (R - P)  # 4,000
    assert cardholder_keeps(replace(filed, arbitration_ruling="lost"), "lost") == CB - R + 1_200
    assert cardholder_keeps(filed, "won") == CB - (R - P)  # no ruling: the bank's cost
    # what the acquirer holds: won by the ruling, only what the issuer conceded
    assert lowered_chargeback(won, 3_500, "won") == CB - (R - P) - 3_500
    assert lowered_chargeback(filed, 2_000) == CB - (R - 1_200) - 2_000
    # arbitration is filed within arbitration_days of the answer, and not for a full accept
    with pytest.raises(ConflictError, match="too late for arbitration.*accepted part of"):
        arbitrate(in_part, limits=LIMITS, now=PRE_ARB + 12 * DAY)
    with pytest.raises(ConflictError, match="accepted the pre-arbitration in full"):
        arbitrate(answered("accepted"), limits=LIMITS, now=PRE_ARB + 2 * DAY)

    fee = DisputeLimits(arbitration_fee_minor=50_000)
    charged = with_arbitration_fee(won, "won", None, "", fee)
    assert (charged.arbitration_fee_minor, charged.arbitration_fee_currency) == (50_000, "840")
    assert charged.arbitration_fee_payer == "acquirer"
    given = with_arbitration_fee(filed, "lost", 25_000, "978", fee)
    assert (given.arbitration_fee_minor, given.arbitration_fee_currency) == (25_000, "978")
    assert given.arbitration_fee_payer == "issuer"
    assert with_arbitration_fee(filed, "lost", None, "", LIMITS) is filed  # none configured
    assert with_arbitration_fee(filed, "lost", 0, "", fee) is filed  # none given
    assert amounts(given)["arbitration_fee_minor"] == 25_000
    assert cardholder_keeps(given, "lost") == cardholder_keeps(filed, "lost")
    stored = json.loads(codec.dispute_to_json(filed))
    assert not {"arbitration_fee_minor", "arbitration_fee_currency"} & set(stored)
    assert codec.dispute_from_json(codec.dispute_to_json(given)) == given
    assert DisputeLimits(arbitration_fee_currency="USD").problem()
