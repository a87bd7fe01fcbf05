"""The pure pipeline steps, one row per rule they enforce (no I/O: values in, decline out)."""

from __future__ import annotations

import calendar
import dataclasses

import pytest

from authhost.auth.approval import ApprovalCodes
from authhost.auth.decision import Decline
from authhost.auth.issuer_scripts import DueScripts, due_scripts, script_report
from authhost.auth.keys import match_key, original_key, replacement_amount
from authhost.auth.pipeline import Pipeline
from authhost.auth.steps.card_status import card_status, is_past_expiry
from authhost.auth.steps.controls import controls
from authhost.auth.steps.funds import Funds, post_advice
from authhost.auth.steps.validate import validate
from authhost.auth.transaction import Transaction
from authhost.cards.model import Account, Card, CardKind, CardState, Limits, Product
from authhost.cards.track2 import Track2Error, build_track2, parse_track2
from authhost.cards.velocity import Velocity
from authhost.iso.codes import ResponseCode as RC
from authhost.iso.messages import AuthRequest, MessageClass
from authhost.security.emv_scripts import ScriptCommand
from authhost.store.interface import Hold, MoneyMove, Snapshot

NOW = calendar.timegm((2026, 11, 25, 12, 0, 0))
PAN = "4761739001010010"  # Luhn-valid test PAN (Visa test BIN 476173)


def request(**changes) -> AuthRequest:
    base = dict(
        mti="0100",
        message_class=MessageClass.AUTHORISATION,
        pan=PAN,
        processing_code="000000",
        amount_minor=1000,
        currency="978",
        stan="000001",
        transmission_time="1125120000",
        acquirer_id="123456",
        terminal_id="TERM0001",
        merchant_id="MERCHANT0000001",
        mcc="5411",
        country="276",
        pos_entry_mode="051",
    )
    base.update(changes)
    return AuthRequest(**base)


PRODUCT = Product(
    product_id="p1",
    issuer_id="i1",
    name="Test debit",
    bin="476173",
    limits=Limits(
        per_transaction=50_000,
        daily_amount=100_000,
        daily_count=10,
        monthly_amount=500_000,
        monthly_count=100,
        atm_per_transaction=20_000,
        atm_daily_amount=40_000,
        atm_daily_count=3,
    ),
    blocked_mccs=frozenset({"7995"}),
    blocked_countries=frozenset({"408"}),
    channels=frozenset({"pos", "atm", "contactless"}),
)
ACCOUNT = Account(account_id="a1", currency="978", kind=CardKind.DEBIT, balance=30_000, holds=5_000)
CARD = Card(
    card_id="c1",
    pan_index="idx",
    bin="476173",
    last4="0010",
    pan_length=16,
    product_id="p1",
    account_id="a1",
    state=CardState.ACTIVE,
    expiry="2812",
    service_code="201",
)


def tx_for(req: AuthRequest, card: Card | None = CARD, velocity: Velocity | None = None):
    snapshot = Snapshot(
        card=card,
        account=ACCOUNT if card else None,
        product=PRODUCT if card else None,
        velocity=velocity or Velocity(),
    )
    return Transaction(request=req, snapshot=snapshot, now=NOW)


VALIDATE_CASES = [
    ("valid purchase passes", {}, None),
    ("missing PAN -> 30", {"pan": None}, "30"),
    ("short processing code -> 30", {"processing_code": "00"}, "30"),
    ("missing STAN -> 30", {"stan": None}, "30"),
    ("unsupported transaction type -> 12", {"processing_code": "400000"}, "12"),
    ("zero amount -> 13", {"amount_minor": 0}, "13"),
    ("converted amount passes", {"currency": "840", "billing_amount_minor": 920, "billing_currency": "978"}, None),
    ("converted amount of 0 for a purchase -> 13", {"currency": "840", "billing_amount_minor": 0, "billing_currency": "978"}, "13"),
    ("unknown billing currency -> 12", {"currency": "840", "billing_amount_minor": 920, "billing_currency": "999"}, "12"),
    ("account verification (0 with condition 51) passes", {"amount_minor": 0, "pos_condition_code": "51"}, None),
    ("zero-amount 0200 with condition 51 -> 13", {"amount_minor": 0, "pos_condition_code": "51", "mti": "0200", "message_class": MessageClass.FINANCIAL}, "13"),
    ("zero-amount cash with condition 51 -> 13", {"amount_minor": 0, "pos_condition_code": "51", "processing_code": "010000"}, "13"),
    ("negative amount -> 13", {"amount_minor": -5}, "13"),
    ("amount over 12 digits -> 13", {"amount_minor": 10**12}, "13"),
    ("missing amount -> 30", {"amount_minor": None}, "30"),
    ("balance inquiry without amount passes", {"processing_code": "310000", "amount_minor": None}, None),
    ("unknown currency -> 12", {"currency": "999"}, "12"),
    ("amount without a currency -> 30", {"currency": None}, "30"),
    ("balance inquiry without amount or currency passes", {"processing_code": "310000", "amount_minor": None, "currency": None}, None),
    ("non-digit PAN -> 14", {"pan": "4761ABCD01010010"}, "14"),
    ("Luhn failure -> 14", {"pan": "4761739001010011"}, "14"),
    ("expiry month 13 -> 30", {"expiry": "2813"}, "30"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "changes", "code"), VALIDATE_CASES, ids=[c[0] for c in VALIDATE_CASES]
)
def test_validate(case, changes, code):
    decline = validate(tx_for(request(**changes)))
    assert (decline.response_code if decline else None) == code


STATUS_CASES = [
    ("active card passes", CardState.ACTIVE, {}, {}, None),
    ("unknown card -> 14", None, {}, {}, "14"),
    ("created -> 78", CardState.CREATED, {}, {}, "78"),
    ("issued, not activated -> 78", CardState.ISSUED, {}, {}, "78"),
    ("suspended -> 62", CardState.SUSPENDED, {}, {}, "62"),
    ("lost -> 41", CardState.LOST, {}, {}, "41"),
    ("stolen -> 43", CardState.STOLEN, {}, {}, "43"),
    ("closed -> 62", CardState.CLOSED, {}, {}, "62"),
    ("expired state -> 54", CardState.EXPIRED, {}, {}, "54"),
    ("past expiry date -> 54", CardState.ACTIVE, {"expiry": "2610"}, {}, "54"),
    ("message expiry differs -> 54", CardState.ACTIVE, {}, {"expiry": "2901"}, "54"),
    ("message expiry matches passes", CardState.ACTIVE, {}, {"expiry": "2812"}, None),
    ("track 2 expiry differs -> 54", CardState.ACTIVE, {},
     {"track2": build_track2(PAN, "2901", "201", "123")}, "54"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "state", "card_changes", "req_changes", "code"),
    STATUS_CASES,
    ids=[c[0] for c in STATUS_CASES],
)
def test_card_status(case, state, card_changes, req_changes, code):
    card = None if state is None else dataclasses.replace(CARD, state=state, **card_changes)
    decline = card_status(tx_for(request(**req_changes), card))
    assert (decline.response_code if decline else None) == code


def test_expiry_is_valid_through_the_last_day_of_the_month():
    end_of_month = calendar.timegm((2026, 11, 30, 23, 59, 59))
    assert not is_past_expiry("2611", end_of_month)
    assert is_past_expiry("2611", end_of_month + 1)


CONTROL_CASES = [
    ("within limits passes", {}, Velocity(), None),
    ("channel not allowed -> 57", {"pos_entry_mode": "812"}, Velocity(), "57"),
    ("blocked MCC -> 57", {"mcc": "7995"}, Velocity(), "57"),
    ("blocked country -> 57", {"country": "408"}, Velocity(), "57"),
    ("over per-transaction limit -> 61", {"amount_minor": 50_001}, Velocity(), "61"),
    ("at per-transaction limit passes", {"amount_minor": 50_000}, Velocity(), None),
    ("daily amount exceeded -> 61", {"amount_minor": 2_000}, Velocity(amount_24h=99_000), "61"),
    ("daily count exceeded -> 65", {}, Velocity(approved_count_24h=10), "65"),
    ("monthly amount exceeded -> 61", {}, Velocity(amount_30d=499_500), "61"),
    ("monthly count exceeded -> 65", {}, Velocity(approved_count_30d=100), "65"),
    ("ATM per-transaction limit -> 61",
     {"processing_code": "010000", "mcc": "6011", "amount_minor": 20_001}, Velocity(), "61"),
    ("ATM daily amount -> 61",
     {"processing_code": "010000", "mcc": "6011", "amount_minor": 10_000},
     Velocity(cash_amount_24h=35_000), "61"),
    ("ATM daily count -> 65",
     {"processing_code": "010000", "mcc": "6011"}, Velocity(cash_count_24h=3), "65"),
    ("refund ignores spending limits", {"processing_code": "200000", "amount_minor": 90_000},
     Velocity(), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "changes", "velocity", "code"), CONTROL_CASES, ids=[c[0] for c in CONTROL_CASES]
)
def test_controls(case, changes, velocity, code):
    tx = tx_for(request(**changes), velocity=velocity)
    assert card_status(tx) is None  # sets the effective limits
    decline = controls(tx)
    assert (decline.response_code if decline else None) == code


def test_card_limit_override_wins_over_product():
    card = dataclasses.replace(CARD, limits=Limits(per_transaction=500))
    tx = tx_for(request(amount_minor=501), card)
    assert card_status(tx) is None
    assert controls(tx).reason == "limits.per_transaction"


FUNDS_CASES = [
    ("0100 purchase holds", {}, MoneyMove.HOLD, None),
    ("0200 purchase posts", {"mti": "0200", "message_class": MessageClass.FINANCIAL}, MoneyMove.POST, None),
    ("refund credits", {"processing_code": "200000"}, MoneyMove.CREDIT, None),
    ("balance inquiry moves nothing", {"processing_code": "310000", "amount_minor": None}, None, None),
    ("more than open-to-buy -> 51", {"amount_minor": 25_001}, None, "51"),
    ("exactly open-to-buy passes", {"amount_minor": 25_000}, MoneyMove.HOLD, None),
    ("other currency -> 12", {"currency": "840"}, None, "12"),
    ("a card used abroad holds the converted amount", {"currency": "840", "amount_minor": 99_999, "billing_amount_minor": 920, "billing_currency": "978"}, MoneyMove.HOLD, None),
    ("converted into another currency than the account's -> 12", {"currency": "840", "billing_amount_minor": 920, "billing_currency": "826"}, None, "12"),
    ("the converted amount is what must be available -> 51", {"currency": "840", "amount_minor": 100, "billing_amount_minor": 25_001, "billing_currency": "978"}, None, "51"),
    ("account verification moves nothing", {"amount_minor": 0, "pos_condition_code": "51"}, None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "changes", "kind", "code"), FUNDS_CASES, ids=[c[0] for c in FUNDS_CASES]
)
def test_funds(case, changes, kind, code):
    tx = tx_for(request(**changes))
    decline = Funds()(tx)
    assert (decline.response_code if decline else None) == code
    assert (tx.movement.kind if tx.movement else None) == kind


PARTIAL = {"partial_approval_supported": True, "amount_minor": 40_000}
PARTIAL_CASES = [
    ("a terminal that takes part gets what is there", PARTIAL, 25_000),
    ("a 0200 purchase posts what is there", {**PARTIAL, "mti": "0200", "message_class": MessageClass.FINANCIAL}, 25_000),
    ("covered in full: no partial approval", {**PARTIAL, "amount_minor": 25_000}, None),
    ("a terminal that cannot -> 51", {**PARTIAL, "partial_approval_supported": False}, "51"),
    ("cash is all or nothing -> 51", {**PARTIAL, "processing_code": "010000"}, "51"),
    ("a converted amount is not split -> 51", {**PARTIAL, "currency": "840", "billing_amount_minor": 40_000, "billing_currency": "978"}, "51"),
    ("an empty account -> 51", {**PARTIAL, "amount_minor": 1}, "empty"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "changes", "outcome"), PARTIAL_CASES, ids=[c[0] for c in PARTIAL_CASES]
)
def test_partial_approval(case, changes, outcome):
    tx = tx_for(request(**changes))
    if outcome == "empty":
        tx.snapshot = dataclasses.replace(
            tx.snapshot, account=dataclasses.replace(ACCOUNT, balance=5_000)
        )
        outcome = "51"
    decline = Funds()(tx)
    if outcome == "51":
        assert decline.response_code == "51" and tx.partial_amount_minor is None
        return
    assert decline is None
    assert tx.partial_amount_minor == outcome
    assert tx.movement.amount_minor == (outcome or changes["amount_minor"])
    assert ("funds.partial" in tx.reasons) is (outcome is not None)


def test_the_movement_is_in_the_cardholders_currency():
    tx = tx_for(request(currency="840", amount_minor=10_000, billing_amount_minor=9_215,
                        billing_currency="978"))  # fmt: skip
    assert Funds()(tx) is None
    assert tx.movement.amount_minor == 9_215


FIELD_90 = "0100000007112511590012345600000000000000000"
ROOT = Hold("7|1125115900|123456|TERM0001", "a1", 30_000, posted=False)
INCREMENTAL_CASES = [
    ("an open pre-authorisation is extended", ROOT, {}, ROOT.match_key, "incremental"),
    ("an increment named: its chain's first", dataclasses.replace(ROOT, match_key="8|x", parent=ROOT.match_key), {}, ROOT.match_key, "incremental"),
    ("a posted original is not", dataclasses.replace(ROOT, posted=True), {}, "", "incremental.original_not_open"),
    ("a released one is not", dataclasses.replace(ROOT, amount_minor=0, reversed_minor=30_000), {}, "", "incremental.original_not_open"),
    ("another account's is not", dataclasses.replace(ROOT, account_id="a2"), {}, "", "incremental.original_not_open"),
    ("one not found is not", None, {}, "", "incremental.original_not_open"),
    ("field 90 of zeros names nothing", None, {"original_data": "0" * 42}, "", None),
    ("an 0120 advice is not an increment", ROOT, {"mti": "0120", "message_class": MessageClass.AUTHORISATION_ADVICE}, "", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "original", "changes", "extends", "reason"),
    INCREMENTAL_CASES,
    ids=[c[0] for c in INCREMENTAL_CASES],
)
def test_an_0100_naming_a_preauthorisation_extends_it(case, original, changes, extends, reason):
    req = request(**{"original_data": FIELD_90, **changes})
    tx = tx_for(req)
    tx.snapshot = dataclasses.replace(tx.snapshot, original=original)
    step = post_advice if req.message_class is MessageClass.AUTHORISATION_ADVICE else Funds()
    assert step(tx) is None
    assert tx.movement.kind is MoneyMove.HOLD
    assert tx.movement.extends == extends
    assert [r for r in tx.reasons if r.startswith("incremental")] == ([reason] if reason else [])


def test_configured_processing_code_makes_0100_post():
    tx = tx_for(request())
    Funds(frozenset({"00"}))(tx)
    assert tx.movement.kind is MoneyMove.POST


def test_advice_posts_even_for_a_lost_card_without_funds_check():
    lost = dataclasses.replace(CARD, state=CardState.LOST)
    tx = tx_for(
        request(mti="0220", message_class=MessageClass.FINANCIAL_ADVICE, amount_minor=10**6), lost
    )
    assert post_advice(tx) is None
    assert tx.movement.kind is MoneyMove.POST
    assert tx.movement.amount_minor == 10**6
    assert tx.movement.require_funds is False


def test_pipeline_stops_at_first_decline_and_times_each_step():
    ran = []

    def step(name, result=None):
        def run(tx):
            ran.append(name)
            return result

        return name, run

    decline = validate(tx_for(request(pan=None)))
    pipeline = Pipeline([step("a"), step("b", decline), step("c")])
    result = pipeline.run(tx_for(request()))
    assert ran == ["a", "b"]
    assert result.decline is decline
    assert set(result.timings_us) == {"a", "b"}


def test_reversal_finds_original_through_field_90():
    original = request(stan="000123", transmission_time="1125101010", acquirer_id="4567")
    field90 = "0100" + "000123" + "1125101010" + "00000004567" + "00000000000"
    reversal = request(mti="0400", message_class=MessageClass.REVERSAL, stan="000999",
                       transmission_time="1125101111", original_data=field90)  # fmt: skip
    assert original_key(reversal) == match_key(original)


def test_reversal_without_field_90_uses_its_own_identifiers():
    original = request()
    reversal = request(mti="0400", message_class=MessageClass.REVERSAL)
    assert original_key(reversal) == match_key(original)
    other_terminal = request(mti="0400", message_class=MessageClass.REVERSAL, terminal_id="T2")
    assert original_key(other_terminal) != match_key(original)


def test_partial_reversal_amount_from_field_95():
    reversal = request(replacement_amounts="000000000400" + "0" * 30)
    assert replacement_amount(reversal) == 400
    assert replacement_amount(request()) is None
    # a converted original: 40.00 USD of 100.00 USD stays, of 92.15 EUR billed -> 36.86 EUR
    abroad = request(currency="840", amount_minor=10_000, billing_amount_minor=9_215,
                     billing_currency="978", replacement_amounts="000000004000" + "0" * 30)  # fmt: skip
    assert replacement_amount(abroad) == 3_686


def test_the_pan_sequence_number_of_a_cryptogram():
    """Tag 5F34 first (one BCD byte), else field 23's last two digits, else 00: the ICC
    master key is derived from PAN and PSN, so the wrong one fails every genuine ARQC."""
    from authhost.security.emv import pan_sequence_number as _psn

    assert _psn(b"\x01", "003") == "01"
    assert _psn(None, "003") == "03"
    assert _psn(None, None) == "00"
    assert _psn(None, "0A3") == "00"  # not digits: ignored


def test_approval_codes_are_unique_within_a_day_and_between_nodes():
    day_start = calendar.timegm((2026, 11, 25, 0, 0, 0))
    codes = set()
    for node in (0, 1):
        generator = ApprovalCodes(node)
        for second in (0, 1, 3600, 86399):
            for _ in range(500):
                codes.add(generator.next(day_start + second))
    assert len(codes) == 2 * 4 * 500
    assert all(len(code) == 6 and code.isalnum() for code in codes)


def test_track2_round_trip_and_errors():
    text = build_track2(PAN, "2812", "201", "123")
    track = parse_track2(text)
    assert (track.pan, track.expiry, track.service_code, track.verification_value) == (
        PAN, "2812", "201", "123",
    )  # fmt: skip
    assert PAN not in repr(track)
    assert parse_track2(f";{PAN}D2812201123?").verification_value == "123"
    with pytest.raises(Track2Error) as error:
        parse_track2(PAN + "2812")
    assert PAN not in str(error.value)


def test_advice_of_a_declined_stand_in_moves_nothing():
    advice = request(
        mti="0120", message_class=MessageClass.AUTHORISATION_ADVICE, reported_response_code="05"
    )
    tx = tx_for(advice)
    assert post_advice(tx) is None
    assert tx.movement is None
    assert tx.reasons == ["advice.declined_by_network"]


SCRIPTED = dataclasses.replace(PRODUCT, imk_ac_name="imk-ac", imk_smi_name="imk-smi")
CHIP = {"icc_data": b"\x9f\x26\x08" + bytes(8)}
BLOCK, UNBLOCK, PIN_UNBLOCK, PIN_CHANGE = (
    ScriptCommand.APPLICATION_BLOCK, ScriptCommand.APPLICATION_UNBLOCK, ScriptCommand.PIN_UNBLOCK,
    ScriptCommand.PIN_CHANGE)  # fmt: skip


@pytest.mark.parametrize(
    "case, card_changes, req_changes, product, decline, checked, commands, queued",
    [
        ("lost, declined 41: block", {"state": CardState.LOST}, CHIP, SCRIPTED,
         Decline(RC.LOST_CARD, "card.lost"), False, (BLOCK,), False),
        ("stolen, declined 43: block", {"state": CardState.STOLEN}, CHIP, SCRIPTED,
         Decline(RC.STOLEN_CARD, "card.stolen"), False, (BLOCK,), False),
        ("lost, declined for a format error first: nothing", {"state": CardState.LOST}, CHIP,
         SCRIPTED, Decline(RC.FORMAT_ERROR, "validate.format"), False, (), False),
        ("lost, no field 55: nothing", {"state": CardState.LOST}, {}, SCRIPTED,
         Decline(RC.LOST_CARD, "card.lost"), False, (), False),
        ("product without IMK-SMI: nothing", {"state": CardState.LOST}, CHIP, PRODUCT,
         Decline(RC.LOST_CARD, "card.lost"), False, (), False),
        ("queued, cryptogram accepted: sent", {"chip_scripts": ("application_unblock",)}, CHIP,
         SCRIPTED, None, True, (UNBLOCK,), True),
        ("queued, declined after the cryptogram was accepted: sent",
         {"chip_scripts": ("application_unblock",)}, CHIP, SCRIPTED,
         Decline(RC.INSUFFICIENT_FUNDS, "funds.insufficient"), True, (UNBLOCK,), True),
        ("queued, cryptogram not accepted: kept", {"chip_scripts": ("application_unblock",)},
         CHIP, SCRIPTED, Decline(RC.CVV_FAILED, "chip.arqc_failed"), False, (), False),
        ("queued, an advice: kept", {"chip_scripts": ("pin_unblock",)},
         {**CHIP, "mti": "0120", "message_class": MessageClass.AUTHORISATION_ADVICE}, SCRIPTED,
         None, True, (), False),
        ("PIN unblock approved: PIN UNBLOCK", {}, {**CHIP, "processing_code": "910000"},
         SCRIPTED, None, True, (PIN_UNBLOCK,), False),
        ("PIN unblock declined: nothing", {}, {**CHIP, "processing_code": "910000"}, SCRIPTED,
         Decline(RC.INCORRECT_PIN, "pin.wrong"), True, (), False),
        ("PIN change approved, product with an IMK-SMC: PIN CHANGE, no PIN UNBLOCK",
         {"chip_scripts": ("pin_unblock",)}, {**CHIP, "processing_code": "920000"},
         dataclasses.replace(SCRIPTED, imk_smc_name="imk-smc"), None, True, (PIN_CHANGE,), True),
        ("PIN change approved, no IMK-SMC: nothing", {}, {**CHIP, "processing_code": "920000"},
         SCRIPTED, None, True, (), False),
        ("PIN change queued by hand: never sent", {"chip_scripts": ("pin_change",)}, CHIP,
         dataclasses.replace(SCRIPTED, imk_smc_name="imk-smc"), None, True, (), False),
        ("queued PIN unblock and an approved PIN unblock: once",
         {"chip_scripts": ("pin_unblock", "pin_unblock", "bogus")},
         {**CHIP, "processing_code": "910000"}, SCRIPTED, None, True, (PIN_UNBLOCK,), True),
    ],
)  # fmt: skip
def test_which_issuer_script_commands_an_answer_carries(
    case, card_changes, req_changes, product, decline, checked, commands, queued
):
    card = dataclasses.replace(CARD, **card_changes)
    due = due_scripts(request(**req_changes), card, product, decline, checked)
    assert (due.commands, due.queued_sent) == (commands, queued), case
    assert due.reasons == [f"chip.script_{c.value}" for c in commands]


def test_issuer_script_results_become_reasons_and_failed_commands():
    # performed, then failed: a script of authhost's (ATC 0012, application unblock + PIN
    # unblock), then one of another issuer's (no identifier)
    report = script_report(bytes.fromhex("9F5B0F" + "2000000000" + "1100120006" + "1000000000"))
    assert report.reasons == ("chip.script_performed", "chip.script_failed", "chip.script_failed")
    assert report.failed == (UNBLOCK, PIN_UNBLOCK)
    assert script_report(bytes.fromhex("9F5B0320")).reasons == ()  # unreadable: nothing
    assert script_report(bytes.fromhex("9F2608" + "00" * 8)).reasons == ()


def test_commands_a_chip_failed_are_sent_again_or_queued():
    card = dataclasses.replace(CARD, chip_scripts=("pin_unblock",))
    again = due_scripts(request(**CHIP), card, SCRIPTED, None, True, (UNBLOCK, PIN_CHANGE))
    assert again.commands == (PIN_UNBLOCK, UNBLOCK) and again.queued_sent  # no PIN change
    advice = request(**CHIP, mti="0220", message_class=MessageClass.FINANCIAL_ADVICE)
    later = due_scripts(advice, card, SCRIPTED, None, True, (UNBLOCK,))
    assert later.commands == () and later.requeue == (UNBLOCK,)
    lost = dataclasses.replace(card, state=CardState.LOST)
    assert due_scripts(advice, lost, SCRIPTED, None, True, (UNBLOCK,)) == DueScripts(())


@pytest.mark.parametrize(
    "refusal", [{}, {"pin_change_conflict": True}, {"atc_replay": True}, {"atc_jump": True}]
)
def test_an_issuer_script_goes_only_with_an_answer_the_write_let_stand(refusal):
    """A PIN change that lost its race at the store (96) must not change the chip's offline
    PIN; a cryptogram the store refused (82) gets no script either."""
    from authhost.auth.decision import Decision
    from authhost.auth.service import settled
    from authhost.store.interface import CommitResult
    from authhost.store.records import JournalEntry

    script = b"\x72\x03\x86\x01\x00"
    decision = Decision(response_code=RC.APPROVED, issuer_script=script)
    entry = JournalEntry(ts=NOW, mti="0100", message_class="authorisation", response_code="00")
    result = CommitResult(journal=entry, **refusal)
    answered = settled(decision, result, request(), Snapshot(), "idx")
    assert (answered.icc_response == script) is (not refusal)
