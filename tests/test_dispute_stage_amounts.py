"""The network stages' amounts carry into a dispute's outcome, and a withdrawal after the
chargeback is told to the network (README, "Disputes").

For a dispute of D charged back for CB and represented for R (pre-arbitrated for P): won keeps
CB (less R - P the issuer conceded by pre-arbitrating less), lost keeps what the acquirer
accepted, CB - R, withdrawn nothing; what was not charged back (D - CB) is taken back. A
dispute never charged back settles as before. The expected balances are worked out here from
the inputs by those rules; the host moves the money at the resolution (a credit or a forced
post of the difference from the provisional credit), on both stores, audited once, and a
withdrawn dispute whose chargeback was filed is a recall line of the chargebacks file."""

from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import replace
from typing import Any

import pytest
from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import balances_of, store_url  # noqa: F401 - fixture
from test_e2e_dispute_stages import _audit_actions, _charged, _charged_rrn, _dispute, _opened
from test_e2e_disputes import CreditFaults

from authhost.admin.dispute_stages import (
    DisputeLimits,
    amounts,
    cardholder_keeps,
    chargeback_row,
    lowered_chargeback,
    partial_recall_rows,
    pre_arbitrate,
    recalls_after_closing,
    with_partial_recall,
)
from authhost.admin.errors import ConflictError
from authhost.store import codec
from authhost.store.records import Dispute


def _keeps(outcome: str, disputed: int, cb: int = 0, r: int | None = None, p: int | None = None):
    """What the cardholder keeps by the rules of the module's docstring, written out again
    from them (not from the host's code): the oracle of the tests below."""
    if outcome == "withdrawn":
        return 0
    if not cb:
        return disputed if outcome == "won" else 0
    represented = r or 0
    if outcome == "won":
        conceded = represented - p if p is not None else 0
        return cb - conceded
    return cb - represented if r is not None else 0


@pytest.mark.parametrize(
    ("outcome", "disputed", "cb", "r", "p"),
    [
        pytest.param("won", 5_000, 0, None, None, id="never charged back, won -> all"),
        pytest.param("lost", 5_000, 0, None, None, id="never charged back, lost -> none"),
        pytest.param("won", 5_000, 3_000, None, None, id="partial chargeback, won -> it"),
        pytest.param("lost", 5_000, 3_000, None, None, id="chargeback unanswered, lost -> none"),
        pytest.param("lost", 5_000, 3_000, 1_000, None, id="partial representment, lost -> rest"),
        pytest.param("won", 5_000, 3_000, 1_000, None, id="represented, won -> chargeback"),
        pytest.param("won", 5_000, 5_000, 4_000, 2_500, id="partial pre-arbitration, won"),
        pytest.param("lost", 5_000, 5_000, 4_000, 2_500, id="partial pre-arbitration, lost"),
        pytest.param("withdrawn", 5_000, 5_000, 1_000, None, id="withdrawn -> none"),
    ],
)
def test_what_the_cardholder_keeps_by_outcome_and_stage(outcome, disputed, cb, r, p) -> None:  # noqa: ANN001
    stage = "pre_arbitration" if p is not None else "represented" if r else "chargeback"
    dispute = Dispute("dsp-1", 1, "card", "acct", "other", disputed, "978", 1.0)
    if cb:
        dispute = replace(dispute, stage=stage, chargeback_minor=cb, charged_back_at=2.0)
    if r is not None:
        dispute = replace(dispute, represented_minor=r, represented_at=3.0)
    if p is not None:
        dispute = replace(dispute, pre_arbitration_minor=p, pre_arbitration_at=4.0)
    assert cardholder_keeps(dispute, outcome) == _keeps(outcome, disputed, cb, r, p)
    # a reversal that left less than that disputed caps it
    assert cardholder_keeps(dispute, outcome, owed=100) == min(
        100, _keeps(outcome, disputed, cb, r, p)
    )


async def _step(port: int, dispute_id: str, step: str, body: dict | None = None) -> dict[str, Any]:
    reply = await call(port, "POST", f"/v1/disputes/{dispute_id}/{step}", payload=body)
    assert reply.status == 200, (step, body, reply)
    return reply.json


async def _resolve_once(port: int, dispute_id: str, outcome: str) -> dict[str, Any]:
    """Resolve the dispute ``outcome``; the same resolution again is answered as it stands
    (no second entry: ``_resolve_audited``), another refused, both having moved nothing."""
    resolved = await _step(port, dispute_id, "resolve", {"outcome": outcome})
    url = f"/v1/disputes/{dispute_id}/resolve"
    again = await call(port, "POST", url, payload={"outcome": outcome})
    assert again.status == 200 and again.json == resolved, again
    other = "withdrawn" if outcome != "withdrawn" else "won"
    refused = await call(port, "POST", url, payload={"outcome": other})
    assert refused.status == 409 and "already" in refused.json["error"], refused
    return resolved


async def _resolve_audited(port: int, dispute_id: str, keeps: int) -> None:
    """One resolution audited, its after view saying what the cardholder keeps."""
    assert (await _audit_actions(port, dispute_id)).count("dispute.resolve") == 1
    audit = await call(port, "GET", f"/v1/audit?subject={dispute_id}", token=AUDITOR_TOKEN)
    entry = next(a for a in audit.json["audit"] if a["action"] == "dispute.resolve")
    assert json.loads(entry["after"])["amounts"]["cardholder_keeps_minor"] == keeps


@pytest.mark.parametrize("outcome", ["won", "lost"])
async def test_a_partial_chargeback_then_won_or_lost(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    outcome: str,
):
    """Opened with a provisional credit of D, charged back for CB < D, represented for R < CB:
    won leaves the cardholder CB, lost CB - R (what the acquirer accepted); D - CB, not
    charged back, is taken back either way. The stages' amounts are in the view and the
    resolution's answer, and the resolution is audited once."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    disputed = 6_000
    cb, r = disputed * 2 // 3, disputed // 4
    charge = await _charged(at, visa, disputed)
    ledger, available = await balances_of(switch, visa)
    dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
    assert await balances_of(switch, visa) == (ledger + disputed, available + disputed)

    filed = await _step(port, dispute_id, "chargeback", {"amount_minor": cb})
    assert filed["amounts"]["charged_back_minor"] == cb
    assert filed["amounts"]["not_charged_back_minor"] == disputed - cb
    shown = await _step(port, dispute_id, "represented", {"reference": "REP-9", "amount_minor": r})
    amounts = shown["amounts"]
    assert (amounts["represented_minor"], amounts["accepted_by_acquirer_minor"]) == (r, cb - r)
    assert (amounts["if_won_minor"], amounts["if_lost_minor"], amounts["if_withdrawn_minor"]) == (
        _keeps("won", disputed, cb, r), _keeps("lost", disputed, cb, r), 0
    )  # fmt: skip
    assert amounts["cardholder_keeps_minor"] is None
    # the network stages moved no money
    assert await balances_of(switch, visa) == (ledger + disputed, available + disputed)

    resolved = await _resolve_once(port, dispute_id, outcome)
    keeps = _keeps(outcome, disputed, cb, r)
    assert (resolved["state"], resolved["credited_minor"]) == (outcome, keeps)
    assert resolved["amounts"]["cardholder_keeps_minor"] == keeps
    assert resolved["amounts"]["if_won_minor"] is None
    assert await balances_of(switch, visa) == (ledger + keeps, available + keeps)
    assert (await _dispute(port, dispute_id))["amounts"] == resolved["amounts"]
    await _resolve_audited(port, dispute_id, keeps)


async def test_a_partial_chargeback_won_keeps_it_alone(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Charged back for part and never represented, won: the cardholder keeps the chargeback,
    and the part not charged back is taken back (a forced post of the difference)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    disputed = 4_000
    cb = disputed - 1_500
    charge = await _charged(at, visa, disputed)
    ledger, available = await balances_of(switch, visa)
    dispute_id = (await _opened(at, charge, "not_as_described"))["dispute_id"]
    await _step(port, dispute_id, "chargeback", {"amount_minor": cb})
    resolved = await _resolve_once(port, dispute_id, "won")
    keeps = _keeps("won", disputed, cb)
    assert resolved["amounts"]["cardholder_keeps_minor"] == keeps == resolved["credited_minor"]
    assert await balances_of(switch, visa) == (ledger + keeps, available + keeps)
    await _resolve_audited(port, dispute_id, keeps)


async def test_a_partial_take_back_whose_answer_was_lost_is_finished_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Lost after a partial representment, the forced post taking back all but what the
    acquirer accepted is written and its answer lost (503): the dispute stays claimed, and
    resolving it lost again finishes it without taking anything back twice."""
    faults = CreditFaults(monkeypatch)
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    disputed = 3_600
    cb, r = disputed, disputed // 3
    charge = await _charged(at, visa, disputed)
    ledger, available = await balances_of(switch, visa)
    dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
    await _step(port, dispute_id, "chargeback")
    await _step(port, dispute_id, "represented", {"reference": "REP-4", "amount_minor": r})
    faults.next = "answer_lost"
    resolve = f"/v1/disputes/{dispute_id}/resolve"
    failed = await call(port, "POST", resolve, payload={"outcome": "lost"})
    assert failed.status == 503 and "the same way" in failed.json["error"], failed
    assert (await _dispute(port, dispute_id))["resolving"] == "lost"
    keeps = _keeps("lost", disputed, cb, r)
    assert await balances_of(switch, visa) == (ledger + keeps, available + keeps)
    finished = await _resolve_once(port, dispute_id, "lost")
    assert finished["amounts"]["cardholder_keeps_minor"] == keeps
    assert await balances_of(switch, visa) == (ledger + keeps, available + keeps)
    await _resolve_audited(port, dispute_id, keeps)


async def test_a_partial_representment_then_lost_from_the_cli(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Charged back whole and represented for part, on the Mastercard with no provisional
    credit: lost gives the cardholder what the acquirer accepted (a credit at the
    resolution); the CLI's answers show the amounts, and its list the stages' columns."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch = at.port, at.switch
    card = at.host.cards["active-3624"]
    config = str(cli_config(tmp_path, store_url))
    disputed = 3_000
    r = disputed - 700
    charge = await _charged(at, card, disputed)
    ledger, available = await balances_of(switch, card)
    dispute_id = (await _opened(at, charge, "not_received", credit=False))["dispute_id"]
    code, output = await run_cli("disputes", "chargeback", dispute_id, "--config", config)
    assert code == 0 and json.loads(output)["amounts"]["charged_back_minor"] == disputed, output
    code, output = await run_cli(
        "disputes", "represented", dispute_id, "--reference", "MC-1", "--amount-minor", str(r),
        "--config", config,
    )  # fmt: skip
    assert code == 0, output
    assert json.loads(output)["amounts"]["accepted_by_acquirer_minor"] == disputed - r
    code, output = await run_cli("disputes", "list", "--output", "table", "--config", config)
    assert code == 0 and "charged back" in output and "represented" in output, output
    assert await balances_of(switch, card) == (ledger, available)

    code, output = await run_cli(
        "disputes", "resolve", dispute_id, "--outcome", "lost", "--config", config
    )
    assert code == 0, output
    resolved = json.loads(output)
    keeps = _keeps("lost", disputed, disputed, r)
    assert resolved["amounts"]["cardholder_keeps_minor"] == keeps == resolved["credited_minor"]
    assert await balances_of(switch, card) == (ledger + keeps, available + keeps)
    code, output = await run_cli("disputes", "show", dispute_id, "--config", config)
    assert code == 0 and json.loads(output)["amounts"]["cardholder_keeps_minor"] == keeps
    await _resolve_audited(port, dispute_id, keeps)


async def test_a_partial_pre_arbitration_then_won(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Represented whole and pre-arbitrated for part: the issuer accepted the rest of the
    representment, so won leaves the cardholder the chargeback less that part. A
    pre-arbitration for more than was represented is refused (422), and asked again for
    another amount (409), changing nothing."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    disputed = 5_000
    r, p = disputed, disputed * 3 // 5
    charge = await _charged(at, visa, disputed)
    ledger, available = await balances_of(switch, visa)
    dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
    await _step(port, dispute_id, "chargeback")
    await _step(port, dispute_id, "represented", {"reference": "REP-2", "amount_minor": r})
    url = f"/v1/disputes/{dispute_id}/pre-arbitration"
    too_much = await call(port, "POST", url, payload={"amount_minor": r + 1})
    assert too_much.status == 422 and f"the {r} represented" in too_much.json["error"]
    filed = await _step(port, dispute_id, "pre-arbitration", {"amount_minor": p})
    assert filed["pre_arbitration_minor"] == p
    assert filed["amounts"]["conceded_by_issuer_minor"] == r - p
    assert await _step(port, dispute_id, "pre-arbitration", {"amount_minor": p}) == filed
    other = await call(port, "POST", url, payload={"amount_minor": p - 1})
    assert other.status == 409 and "pre-arbitration already" in other.json["error"]
    assert await _dispute(port, dispute_id) == filed

    resolved = await _resolve_once(port, dispute_id, "won")
    keeps = _keeps("won", disputed, disputed, r, p)
    assert resolved["amounts"]["cardholder_keeps_minor"] == keeps == resolved["credited_minor"]
    assert await balances_of(switch, visa) == (ledger + keeps, available + keeps)


async def test_a_withdrawal_after_the_chargeback_is_a_recall_in_the_chargebacks_file(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Charged back, represented for part, then withdrawn by the cardholder: the provisional
    credit is taken back whole, and the chargebacks file has, after the dispute's chargeback
    line, a recall line for what goes back to the acquirer (the chargeback less the
    representment), with the masked PAN, when and at which stage it was withdrawn, and a
    formula-like ARN written as text. A dispute withdrawn before its chargeback has none."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    config = str(cli_config(tmp_path, store_url))
    since = str(int(time.time()) - 1)
    disputed = 2_400
    cb, r = disputed - 400, 500
    rrn = "=CMD(1)ABCDE"
    charge = await _charged_rrn(at, visa, disputed, rrn)
    ledger, available = await balances_of(switch, visa)
    dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
    await _step(port, dispute_id, "chargeback", {"amount_minor": cb})
    await _step(port, dispute_id, "represented", {"reference": "REP-3", "amount_minor": r})
    other = 800  # charged, disputed with a credit and withdrawn before any chargeback
    never_charged = (await _opened(at, await _charged(at, visa, other), "other"))["dispute_id"]
    await _resolve_once(port, never_charged, "withdrawn")
    withdrawn = await _resolve_once(port, dispute_id, "withdrawn")
    keeps = _keeps("withdrawn", disputed, cb, r)
    assert withdrawn["amounts"]["cardholder_keeps_minor"] == keeps
    assert await balances_of(switch, visa) == (ledger - other + keeps, available - other + keeps)

    out = tmp_path / "chargebacks.csv"
    code, output = await run_cli(
        "disputes", "chargebacks", "--since", since, "--out", str(out), "--config", config
    )
    assert code == 0 and "wrote 1 chargeback and 1 recall" in output, output
    text = out.read_text()
    assert visa["pan"] not in text and never_charged not in text
    filed, recall = list(csv.DictReader(text.splitlines()))
    assert (filed["action"], filed["amount_minor"], filed["recalled_at"]) == (
        "chargeback", str(cb), ""
    )  # fmt: skip
    assert recall["action"] == "recall" and recall["dispute_id"] == dispute_id
    assert recall["amount_minor"] == str(cb - r)
    assert recall["withdrawn_at_stage"] == "represented"
    assert recall["pan"] == charge.pan_masked and re.fullmatch(
        r"[0-9]{6}\*+[0-9]{4}", recall["pan"]
    )
    assert recall["arn"] == "'" + rrn  # a spreadsheet shows it as text
    assert (recall["reason_code"], recall["charged_back_at"]) == (
        filed["reason_code"], filed["charged_back_at"]
    )  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", recall["recalled_at"])

    api = await call(port, "GET", f"/v1/disputes/chargebacks?since={since}", token=AUDITOR_TOKEN)
    assert api.status == 200, api
    assert [(row["dispute_id"], row["action"]) for row in api.json["chargebacks"]] == [
        (dispute_id, "chargeback"), (dispute_id, "recall")
    ]  # fmt: skip
    assert api.json["chargebacks"][1]["arn"] == rrn


def test_a_pre_arbitration_for_all_after_one_for_part_is_refused_not_taken_for_it() -> None:
    """No amount means all of the representment, on a repeat as on the first try: asking for
    all of it after a partial pre-arbitration was answered 200 as if it were that one (the
    back office believed it had pre-arbitrated everything, and won would keep less). Asked
    again with its amount it is the same filing; a whole one asked again without is too."""
    represented = Dispute(
        "dsp-1", 1, "card", "acct", "other", 5_000, "978", 1.0, stage="represented",
        chargeback_minor=5_000, charged_back_at=2.0, represented_minor=4_000, represented_at=3.0,
    )  # fmt: skip
    limits, now = DisputeLimits(), 4.0
    partial = pre_arbitrate(represented, amount_minor=2_500, limits=limits, now=now)
    assert pre_arbitrate(partial, amount_minor=2_500, limits=limits, now=now) is partial
    with pytest.raises(ConflictError, match="pre-arbitration already, for 2500"):
        pre_arbitrate(partial, limits=limits, now=now)
    whole = pre_arbitrate(represented, limits=limits, now=now)
    assert pre_arbitrate(whole, limits=limits, now=now) is whole
    assert pre_arbitrate(whole, amount_minor=4_000, limits=limits, now=now) is whole
    # one recorded before its amount was kept (0) was for the whole representment
    older = replace(whole, pre_arbitration_minor=0)
    assert pre_arbitrate(older, limits=limits, now=now) is older


@pytest.mark.parametrize(("outcome", "credit"), [("lost", True), ("won", False)])
async def test_a_reversal_between_a_lost_answer_and_its_retry_is_not_kept_twice(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
    outcome: str,
    credit: bool,
):
    """Charged back whole, represented for part, resolved lost: the take-back of all but what
    the acquirer accepted is written and its answer lost (503). The acquirer then reverses
    half of the charge (the reconcile leaves a claimed dispute to its resolution). The retry
    finishes the resolution: the cardholder ends with the charge's money back once (the
    reversal's half, and of the dispute no more than the charge still takes), and
    credited_minor is what it kept. The retry counted the reversal in its amount, but its
    take-back was a retransmission of the first try's smaller one: the cardholder kept the
    reversal and the credit for the same part, 1000 above where it was before the charge,
    and credited_minor said 3000 of the 4000 it kept. The same for won without a provisional
    credit: the final credit of the whole chargeback, then the reversal's half, was 3000
    above."""
    from iso_client import next_stan
    from test_e2e_auth import field_90, purchase

    faults = CreditFaults(monkeypatch)
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    disputed, r, still = 6_000, 2_000, 3_000
    fields = purchase(visa, amount=disputed, t="0200")
    assert (await switch.send(fields))["39"] == "00"
    before_charge = await balances_of(switch, visa)
    charge = next(
        e for e in await _journal(at) if e.stan == fields["11"] and e.mti == "0200"
    )  # fmt: skip
    dispute_id = (await _opened(at, charge, "not_received", credit))["dispute_id"]
    await _step(port, dispute_id, "chargeback")
    if outcome == "lost":
        await _step(port, dispute_id, "represented", {"reference": "REP-7", "amount_minor": r})
    faults.next = "answer_lost"
    failed = await call(port, "POST", f"/v1/disputes/{dispute_id}/resolve",
                        payload={"outcome": outcome})  # fmt: skip
    assert failed.status == 503, failed
    kept = {**fields, "t": "0400", "11": next_stan(), "90": field_90(fields),
            "95": f"{still:012d}" + "0" * 30}  # fmt: skip
    assert (await switch.send(kept))["39"] == "00"  # the acquirer gives half back
    resolved = await _resolve_once(port, dispute_id, outcome)
    represented = r if outcome == "lost" else None
    keeps = min(still, _keeps(outcome, disputed, disputed, represented))
    ledger, _ = await balances_of(switch, visa)
    # the charge took 6000; the reversal gave 3000 back; the dispute leaves at most the 3000
    # the charge still takes: the cardholder is where it was before the charge, not above
    assert ledger == before_charge[0] + disputed, (ledger, before_charge)
    assert resolved["credited_minor"] == keeps


async def _journal(at):  # noqa: ANN001, ANN202
    """Every journal entry of the host's store."""
    from authhost.store import opened_store
    from authhost.store.interface import JournalQuery

    async with opened_store(at.host.store_url) as store:
        return await store.journal(JournalQuery(since=0, limit=1000))


async def test_a_chargeback_given_up_by_a_loss_before_any_representment_is_recalled(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Charged back, then resolved lost before the acquirer represented: the cardholder keeps
    none of it, so the chargeback's money is the acquirer's again and the chargebacks file
    recalls it (it had no line: the issuer held the chargeback for nobody). Lost after a
    representment needs none: the representment took back what the cardholder gives up."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    since = int(time.time()) - 1
    disputed, cb = 3_000, 2_000
    charge = await _charged(at, visa, disputed)
    ledger, available = await balances_of(switch, visa)
    given_up = (await _opened(at, charge, "not_received"))["dispute_id"]
    await _step(port, given_up, "chargeback", {"amount_minor": cb})
    lost = await _resolve_once(port, given_up, "lost")
    assert lost["amounts"]["cardholder_keeps_minor"] == 0
    assert await balances_of(switch, visa) == (ledger, available)
    answered = (await _opened(at, await _charged(at, visa, 900), "not_received"))["dispute_id"]
    await _step(port, answered, "chargeback")
    await _step(port, answered, "represented", {"reference": "REP-8", "amount_minor": 900})
    await _resolve_once(port, answered, "lost")

    api = await call(port, "GET", f"/v1/disputes/chargebacks?since={since}", token=AUDITOR_TOKEN)
    assert api.status == 200, api
    rows = [(r["dispute_id"], r["action"], r["amount_minor"]) for r in api.json["chargebacks"]]
    assert (given_up, "recall", cb) in rows, rows
    assert [r for r in rows if r[0] == answered] == [(answered, "chargeback", 900)], rows
    recall = next(r for r in api.json["chargebacks"] if r["action"] == "recall")
    assert recall["withdrawn_at_stage"] == "chargeback" and recall["recalled_at"]


def test_a_partial_reversal_lowers_the_chargeback_to_what_the_charge_still_takes() -> None:
    """The issuer holds CB - R of the acquirer's money and may hold no more than the charge
    still takes: a chargeback is lowered by what it holds above that, and not at all before
    it is filed or for a whole reversal (its full recall line gives it back); the dispute
    keeps what it was filed for, for the file's chargeback line."""
    opened = Dispute("dsp-1", 7, "crd-1", "acc-1", "fraud", 6_000, "978", 1_000.0)
    charged = replace(opened, stage="chargeback", chargeback_minor=6_000, charged_back_at=2_000.0)
    assert lowered_chargeback(opened, 4_000) == 0  # not filed: nothing to lower
    assert lowered_chargeback(charged, 0) == 0  # reversed whole: the full recall's
    assert lowered_chargeback(charged, 6_000) == 0
    assert lowered_chargeback(charged, 4_000) == 2_000
    contested = replace(charged, represented_at=3_000.0, represented_minor=1_000)
    assert lowered_chargeback(contested, 4_000) == 1_000  # holds 5_000 of what takes 4_000
    assert lowered_chargeback(contested, 5_000) == 0

    lowered = with_partial_recall(charged, 2_000, 4_000.0)
    assert (lowered.chargeback_minor, lowered.recalls) == (4_000, ((4_000.0, 2_000),))
    assert amounts(lowered)["recalled_minor"] == 2_000
    assert cardholder_keeps(lowered, "won") == 4_000  # by the lowered chargeback
    assert chargeback_row(lowered)["amount_minor"] == 6_000  # as filed
    [line] = partial_recall_rows(lowered, 4_000.0, 4_001.0)
    assert (line["action"], line["amount_minor"], line["withdrawn_at_stage"]) == (
        "recall",
        2_000,
        "",
    )
    assert partial_recall_rows(lowered, 4_001.0, 9_000.0) == []
    # read back equal; one never lowered is stored without the field (an older authhost,
    # which refuses keys it does not know, still reads it)
    assert codec.dispute_from_json(codec.dispute_to_json(lowered)) == lowered
    assert "recalls" not in json.loads(codec.dispute_to_json(charged))


def test_a_won_pre_arbitration_counts_only_what_the_issuer_conceded() -> None:
    """Charged back 5_000, represented 2_000 and pre-arbitrated 1_500, then reversed to 3_000:
    open (or lost) the issuer holds 5_000 - 2_000, no more than the 3_000 the charge still
    takes; won, the acquirer gave the 1_500 pre-arbitrated back and the issuer holds 4_500,
    so the chargeback is lowered by 1_500 and it holds 3_000 again (not the reversed part
    twice); what the cardholder keeps is unchanged by the lowering."""
    base = Dispute("dsp-1", 7, "crd-1", "acc-1", "fraud", 3_000, "978", 1_000.0)
    arbitrated = replace(
        base, stage="pre_arbitration", chargeback_minor=5_000, charged_back_at=2_000.0,
        represented_at=3_000.0, represented_minor=2_000, pre_arbitration_at=4_000.0,
        pre_arbitration_minor=1_500,
    )  # fmt: skip
    assert lowered_chargeback(arbitrated, 3_000) == 0
    assert lowered_chargeback(arbitrated, 3_000, "lost") == 0
    assert lowered_chargeback(arbitrated, 3_000, "won") == 1_500
    after = with_partial_recall(arbitrated, 1_500, 5_000.0)
    held = after.chargeback_minor - after.represented_minor + after.pre_arbitration_minor
    assert held == 3_000
    assert cardholder_keeps(after, "won") == cardholder_keeps(arbitrated, "won") == 3_000
    # without a pre-arbitration a won representment stays with the acquirer (the bank bears it)
    represented = replace(arbitrated, stage="represented", pre_arbitration_at=0.0)
    assert lowered_chargeback(represented, 3_000, "won") == 0


def _charged_back_whole(**changes: Any) -> Dispute:
    """A dispute of 6_000 on a charge of 6_000, charged back whole; ``changes`` on top."""
    opened = Dispute("dsp-1", 7, "crd-1", "acc-1", "fraud", 6_000, "978", 1_000.0)
    return replace(
        opened, stage="chargeback", chargeback_minor=6_000, charged_back_at=2_000.0, **changes
    )


def test_reversals_after_the_resolution_owe_the_part_the_issuer_holds_twice() -> None:
    """Resolved won with a chargeback of 6_000 on a charge of 6_000: reversals of 1_000 and
    then 2_000 after it owe the acquirer each its part back; a reversal the resolution counted
    (it lowered the chargeback for it) owes nothing, and a dispute whose chargeback was
    recalled whole (withdrawn), or never filed, owes no more."""
    won = _charged_back_whole(state="won", closed_at=3_000.0)
    assert recalls_after_closing(won, 6_000, [(4_000.0, 1_000), (5_000.0, 2_000)]) == (
        (4_000.0, 1_000), (5_000.0, 2_000)
    )  # fmt: skip
    counted = with_partial_recall(won, 1_000, 3_000.0)  # the resolution lowered it for the first
    assert recalls_after_closing(counted, 6_000, [(2_500.0, 1_000), (5_000.0, 2_000)]) == (
        (5_000.0, 2_000),
    )
    lost = replace(won, state="lost", represented_at=2_500.0, represented_minor=4_000)
    assert recalls_after_closing(lost, 6_000, [(4_000.0, 6_000)]) == ((4_000.0, 2_000),)
    never = Dispute("dsp-1", 7, "crd-1", "acc-1", "fraud", 6_000, "978", 1_000.0, state="won")
    for done in (replace(won, state="withdrawn"), never):
        assert recalls_after_closing(done, 6_000, [(4_000.0, 6_000)]) == ()


def test_a_whole_reversal_a_resolution_counts_lowers_the_chargeback_it_leaves() -> None:
    """Resolved won or lost on a charge the acquirer reversed whole (before any reconcile):
    the chargeback stands, so the resolution lowers it to what the acquirer holds (a partial
    recall line on its day); one recalled whole by its full recall line (closed reversed,
    withdrawn, lost before a representment) is not lowered as well."""
    charged = _charged_back_whole()
    represented = replace(
        charged, stage="represented", represented_at=2_500.0, represented_minor=4_000
    )
    assert lowered_chargeback(charged, 0, "won") == 6_000
    assert lowered_chargeback(represented, 0, "lost") == 6_000 - 4_000
    assert lowered_chargeback(represented, 0, "won") == 6_000 - 4_000  # the bank bears it
    for outcome in ("", "withdrawn", "lost"):
        assert lowered_chargeback(charged, 0, outcome) == 0


def test_a_reversal_the_resolution_did_not_count_is_recalled_from_the_resolution() -> None:
    """A reversal approved before the resolution wrote it but after its look at the journal
    owes its part from the resolution on: the file of the reversal's day may be written
    before the dispute was closed, and the next day's has only what came in it."""
    won = _charged_back_whole(state="won", closed_at=3_000.0)
    assert recalls_after_closing(won, 6_000, [(2_900.0, 1_000), (4_000.0, 500)]) == (
        (3_000.0, 1_000), (4_000.0, 500)
    )  # fmt: skip
