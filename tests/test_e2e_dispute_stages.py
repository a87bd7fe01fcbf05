"""The network side of a dispute over a running host, on both stores: chargeback, the
acquirer's representment, pre-arbitration, then won or lost (whose money movements are the
cardholder's side, as before); each step audited, a repeat with the same values changing
nothing, each refusal (out of order, past its limit, more than disputed, a reason code that
does not fit) changing nothing; what is due within N days; the chargebacks file written for
the networks (masked PANs only) and a representments file read back, a bad line refused on
its own."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import balances_of, purchase, store_url  # noqa: F401 - fixture

from authhost.admin.dispute_stages import DisputeLimits, day_start
from authhost.admin.errors import ConflictError
from authhost.admin.requests import (
    DisputeChargeback,
    DisputePreArbitration,
    DisputeRepresentment,
)
from authhost.admin.service import CardService
from authhost.cli.admin_support import open_card_service
from authhost.config import load_config
from authhost.store import codec, opened_store
from authhost.store.interface import JournalQuery

DAY = 86_400


def _day_end(ts: float) -> float:
    """The last second of the UTC day of ``ts``: the acquirer's limit to represent."""
    return ts - ts % DAY + DAY - 1


async def _charged(at, card: dict[str, Any], amount: int):  # noqa: ANN001
    """A posted charge (0200) of ``amount`` on ``card``: its journal entry."""
    answer = await at.switch.send(purchase(card, amount=amount, t="0200"))
    assert answer["39"] == "00", answer
    async with opened_store(at.host.store_url) as store:
        entries = await store.journal(JournalQuery(since=0, limit=1000))
    return next(e for e in entries if e.stan == answer["11"] and e.mti == "0200")


async def _charged_rrn(at, card: dict[str, Any], amount: int, rrn: str):  # noqa: ANN001
    """``_charged`` with the acquirer's retrieval reference number (field 37) as given."""
    answer = await at.switch.send(purchase(card, amount=amount, t="0200", **{"37": rrn}))
    assert answer["39"] == "00", answer
    async with opened_store(at.host.store_url) as store:
        entries = await store.journal(JournalQuery(since=0, limit=1000))
    return next(e for e in entries if e.stan == answer["11"] and e.mti == "0200")


async def _opened(at, entry, reason: str, credit: bool = True) -> dict[str, Any]:  # noqa: ANN001
    url = f"/v1/cards/{entry.card_id}/journal/{entry.journal_id}/dispute"
    opened = await call(at.port, "POST", url,
                        payload={"reason": reason, "provisional_credit": credit})  # fmt: skip
    assert opened.status == 200, opened
    return opened.json


async def _dispute(port: int, dispute_id: str) -> dict[str, Any]:
    got = await call(port, "GET", f"/v1/disputes/{dispute_id}", token=AUDITOR_TOKEN)
    assert got.status == 200, got
    return got.json


async def _audit_actions(port: int, dispute_id: str) -> list[str]:
    audit = await call(port, "GET", f"/v1/audit?subject={dispute_id}", token=AUDITOR_TOKEN)
    return [a["action"] for a in audit.json["audit"]]


async def refused_unchanged(
    at: Any, ident: str, step: str, body: dict | None, status: int, words: str
) -> None:
    """``step`` on dispute ``ident`` refused with ``status`` and ``words`` in its reason, the
    dispute, its audit and the Visa card's balances as they were."""
    port = at.port
    before = (await _dispute(port, ident), await _audit_actions(port, ident))
    money = await balances_of(at.switch, at.visa)
    reply = await call(port, "POST", f"/v1/disputes/{ident}/{step}", payload=body)
    assert reply.status == status, (step, body, reply)
    assert words in reply.json["error"], (words, reply.json)
    assert (await _dispute(port, ident), await _audit_actions(port, ident)) == before
    assert await balances_of(at.switch, at.visa) == money


async def test_a_dispute_goes_through_the_networks_stages_to_won_and_to_lost(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """open (credit) -> chargeback -> represented -> pre_arbitration -> won keeps the credit;
    the same path on the Mastercard ending lost takes it back. The network stages move no
    money; each names who acts next and by when, is audited once, and asked again with the
    same values answers the dispute as it stands."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    charge = await _charged(at, visa, 5_000)
    ledger, available = await balances_of(switch, visa)
    config = str(cli_config(tmp_path, store_url))

    dispute = await _opened(at, charge, "fraud")
    dispute_id = dispute["dispute_id"]
    assert (dispute["stage"], dispute["charged_at"]) == ("opened", charge.ts)
    assert dispute["next_action"] == {
        "owner": "issuer", "action": "chargeback", "deadline": charge.ts + 120 * DAY,
        "overdue": False, "todo": dispute["next_action"]["todo"],
    }  # fmt: skip
    assert f"disputes chargeback {dispute_id}" in dispute["next_action"]["todo"]
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)

    # chargeback: a chip-read fraud on a Visa card goes under 10.3 unless told otherwise
    url = f"/v1/disputes/{dispute_id}/chargeback"
    charged_back = await call(port, "POST", url, payload={"note": "filed"})
    assert charged_back.status == 200, charged_back
    filed = charged_back.json
    assert [filed[k] for k in ("stage", "network", "reason_code")] == ["chargeback", "visa", "10.3"]
    assert (filed["chargeback_minor"], filed["arn"]) == (5_000, charge.rrn)
    assert filed["pan_masked"] == charge.pan_masked and visa["pan"] not in json.dumps(filed)
    assert filed["next_action"]["owner"] == "acquirer"
    assert filed["next_action"]["deadline"] == _day_end(filed["charged_back_at"] + 45 * DAY)
    assert filed["note"].endswith("chargeback: filed")
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)
    again = await call(port, "POST", url, payload={"reason_code": "10.3"})
    assert again.status == 200 and again.json == filed  # the same values: nothing changes

    # the acquirer's representment, recorded from the CLI, dated today
    today = time.strftime("%Y-%m-%d", time.gmtime())
    represent = (
        "disputes", "represented", dispute_id, "--reference", "REP-0001", "--amount-minor",
        "5000", "--date", today, "--config", config,
    )  # fmt: skip
    code, output = await run_cli(*represent)
    assert code == 0, output
    represented = json.loads(output)
    assert represented["stage"] == "represented"
    assert represented["represented_at"] == day_start(today)
    assert represented["representment_reference"] == "REP-0001"
    assert represented["next_action"]["owner"] == "issuer"
    assert represented["next_action"]["action"] == "pre_arbitration"
    assert represented["next_action"]["deadline"] == day_start(today) + 30 * DAY
    code, output = await run_cli(*represent)
    assert code == 0 and json.loads(output) == represented
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)

    # pre-arbitration: the acquirer answers next
    pre_arb = await call(port, "POST", f"/v1/disputes/{dispute_id}/pre-arbitration")
    assert pre_arb.status == 200, pre_arb
    assert pre_arb.json["stage"] == "pre_arbitration"
    assert pre_arb.json["next_action"]["owner"] == "acquirer"
    assert pre_arb.json["next_action"]["action"] == "pre_arbitration_answer"
    assert pre_arb.json["next_action"]["deadline"] == pre_arb.json["pre_arbitration_at"] + 30 * DAY
    again = await call(port, "POST", f"/v1/disputes/{dispute_id}/pre-arbitration")
    assert again.status == 200 and again.json == pre_arb.json
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)

    # won: the provisional credit stays; the stage reached is kept, nothing is due
    won = await call(port, "POST", f"/v1/disputes/{dispute_id}/resolve", payload={"outcome": "won"})
    assert won.status == 200, won
    assert (won.json["state"], won.json["stage"], won.json["next_action"]) == (
        "won", "pre_arbitration", None
    )  # fmt: skip
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)
    assert await _audit_actions(port, dispute_id) == [
        "dispute.open", "dispute.chargeback", "dispute.represented", "dispute.pre_arbitration",
        "dispute.resolve",
    ]  # fmt: skip

    # the same path on the Mastercard, lost: the credit is taken back at the end only
    mastercard = at.host.cards["active-3624"]
    charge = await _charged(at, mastercard, 3_000)
    ledger, available = await balances_of(switch, mastercard)
    dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
    assert await balances_of(switch, mastercard) == (ledger + 3_000, available + 3_000)
    code, output = await run_cli(
        "disputes", "chargeback", dispute_id, "--amount-minor", "2500", "--config", config
    )
    assert code == 0, output
    filed = json.loads(output)
    assert (filed["network"], filed["reason_code"], filed["chargeback_minor"]) == (
        "mastercard", "4853", 2_500
    )  # fmt: skip
    represented = await call(port, "POST", f"/v1/disputes/{dispute_id}/represented",
                             payload={"reference": "MC-77", "amount_minor": 2_500})  # fmt: skip
    assert represented.status == 200, represented
    code, output = await run_cli("disputes", "pre-arbitration", dispute_id, "--config", config)
    assert code == 0 and json.loads(output)["stage"] == "pre_arbitration", output
    assert await balances_of(switch, mastercard) == (ledger + 3_000, available + 3_000)
    lost = await call(port, "POST", f"/v1/disputes/{dispute_id}/resolve",
                      payload={"outcome": "lost"})  # fmt: skip
    assert lost.status == 200 and lost.json["credited_minor"] == 0, lost
    assert await balances_of(switch, mastercard) == (ledger, available)

    # the card's timeline tells the stages
    timeline = await call(port, "GET", f"/v1/cards/{charge.card_id}/timeline", token=AUDITOR_TOKEN)
    kinds = [e["kind"] for e in timeline.json["events"] if e["dispute_id"] == dispute_id]
    assert kinds == ["dispute.resolve", "dispute.pre_arbitration", "dispute.represented",
                     "dispute.chargeback", "dispute.open"]  # fmt: skip


async def test_each_refused_step_says_why_and_changes_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Out of order, with a reason code that is unknown, another network's or does not fit
    the cardholder's reason, for more than was disputed or charged back, dated before the
    chargeback, filed twice with other values, on a closed dispute: 409 or 422 with the
    reason, the dispute, its audit and the balance as they were."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, visa = at.port, at.visa
    charge = await _charged(at, visa, 4_000)
    dispute_id = (await _opened(at, charge, "fraud"))["dispute_id"]
    closed_charge = await _charged(at, visa, 1_000)
    closed_id = (await _opened(at, closed_charge, "other", credit=False))["dispute_id"]
    resolve = f"/v1/disputes/{closed_id}/resolve"
    assert (await call(port, "POST", resolve, payload={"outcome": "withdrawn"})).status == 200

    async def refused(step: str, body: dict | None, status: int, words: str, ident: str = ""):
        await refused_unchanged(at, ident or dispute_id, step, body, status, words)

    cases: list[tuple[str, dict | None, int, str]] = [
        ("represented", {"reference": "R1", "amount_minor": 100}, 409, "stage opened"),
        ("pre-arbitration", None, 409, "stage opened"),
        ("chargeback", {"reason_code": "99.9"}, 422, "not a network reason code"),
        ("chargeback", {"reason_code": "4837"}, 422, "4837 is mastercard's; the card is a visa"),
        ("chargeback", {"reason_code": "13.1"}, 422, "does not fit the dispute's reason (fraud)"),
        ("chargeback", {"amount_minor": 4_001}, 422, "more than the 4000 disputed"),
        ("chargeback", {"reason_code": "bored"}, 422, "not a network reason code"),
        # an amount in major units, as a spreadsheet writes it, is not taken for minor units
        ("chargeback", {"amount_minor": "30.00"}, 422, "'30.00' is not a whole number"),
        ("chargeback", {"amount_minor": 30.0}, 422, "30.0 is not a whole number"),
    ]
    for step, body, status, words in cases:
        await refused(step, body, status, words)

    assert (await call(port, "POST", f"/v1/disputes/{dispute_id}/chargeback",
                       payload={"reason_code": "10.4", "amount_minor": 3_000})).status == 200  # fmt: skip
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * DAY))
    cases = [
        ("chargeback", {"reason_code": "10.3"}, 409, "charged back already (10.4, 3000"),
        ("chargeback", None, 409, "charged back already"),  # the default is all of it
        ("pre-arbitration", None, 409, "stage chargeback"),
        ("represented", {"reference": "R1", "amount_minor": 3_001}, 422, "3000 charged back"),
        ("represented", {"reference": "R1", "amount_minor": 10, "date": yesterday}, 422,
         "before the chargeback"),
        ("represented", {"reference": "R1", "amount_minor": 10, "currency": "840"}, 422,
         "not the dispute's (978)"),
    ]  # fmt: skip
    for step, body, status, words in cases:
        await refused(step, body, status, words)
    await refused("chargeback", None, 409, "is withdrawn already", closed_id)
    await refused("represented", {"reference": "R", "amount_minor": 1}, 409, "withdrawn", closed_id)
    missing = await call(port, "POST", "/v1/disputes/dsp-none/chargeback")
    assert missing.status == 404
    bad = await call(port, "POST", f"/v1/disputes/{dispute_id}/represented",
                     payload={"reference": "R", "amount_minor": 0})  # fmt: skip
    assert bad.status == 422

    # the CLI says it in one line, exit 1
    config = str(cli_config(tmp_path, store_url))
    code, output = await run_cli("disputes", "pre-arbitration", dispute_id, "--config", config)
    assert code == 1 and output.startswith("error: dispute ") and output.count("\n") == 1, output


async def test_time_limits_refuse_late_steps_and_list_what_is_due(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A chargeback past chargeback_days of the charge, a representment dated past the
    acquirer's limit (the issuer won: resolve it won) and a pre-arbitration past its limit
    are refused with the limit; ``disputes list --due-within DAYS`` (and ``due_within_days``)
    lists the open disputes the issuer must act on by then, overdue ones first."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, visa = at.port, at.visa
    config = cli_config(tmp_path, store_url)
    now = time.time()
    opened = [(await _opened(at, await _charged(at, visa, 1_000 + n), "fraud"))["dispute_id"]
              for n in range(6)]  # fmt: skip
    fresh, unanswered, represented, waiting, closed, later = opened

    async with open_card_service(load_config(config), "test") as service:

        def at_time(ts: float, limits: DisputeLimits | None = None) -> CardService:
            return CardService(service.store, service.security, "test", clock=lambda: ts,
                               dispute_limits=limits or DisputeLimits())  # fmt: skip

        # 121 days after the charge: too late, whatever is asked; 200 days allowed: in time
        with pytest.raises(ConflictError, match=r"too late to charge back.*120 days"):
            await at_time(now + 121 * DAY).charge_back_dispute(fresh, DisputeChargeback())
        assert (await _dispute(port, fresh))["stage"] == "opened"
        # charged back 50 days ago (a host whose clock says so): the acquirer's 45 passed
        await at_time(now - 50 * DAY).charge_back_dispute(unanswered, DisputeChargeback())
        # charged back 26 days ago and represented the next day: pre-arbitration due in 5
        await at_time(now - 26 * DAY).charge_back_dispute(represented, DisputeChargeback())
        day = time.strftime("%Y-%m-%d", time.gmtime(now - 25 * DAY))
        await service.record_representment(
            represented, DisputeRepresentment(reference="R-25", amount_minor=1_002, date=day)
        )
        await service.charge_back_dispute(waiting, DisputeChargeback())  # the acquirer's turn
        # [admin] chargeback_days: 150 days after the charge is in time under 200
        longer = at_time(now + 150 * DAY, DisputeLimits(chargeback_days=200))
        assert (await longer.charge_back_dispute(later, DisputeChargeback()))["stage"] == (
            "chargeback"
        )
    assert (await call(port, "POST", f"/v1/disputes/{closed}/resolve",
                       payload={"outcome": "won"})).status == 200  # fmt: skip

    # a representment dated today, 50 days after the chargeback: too late, the issuer won
    late = await call(port, "POST", f"/v1/disputes/{unanswered}/represented",
                      payload={"reference": "LATE", "amount_minor": 10})  # fmt: skip
    assert late.status == 409, late
    assert "after the acquirer's limit" in late.json["error"]
    assert "the issuer won; resolve it won" in late.json["error"]
    shown = await _dispute(port, unanswered)
    assert shown["stage"] == "chargeback"
    action = shown["next_action"]
    assert (action["owner"], action["action"], action["overdue"]) == ("issuer", "resolve", True)
    assert action["deadline"] == _day_end(shown["charged_back_at"] + 45 * DAY) < now
    assert f"disputes resolve {unanswered} --outcome won" in action["todo"]
    # the representment 25 days ago is answered in time; one 31 days ago would not be
    in_time = await _dispute(port, represented)
    assert in_time["next_action"]["deadline"] == day_start(day) + 30 * DAY

    async def due(days: int) -> list[str]:
        listed = await call(port, "GET", f"/v1/disputes?due_within_days={days}",
                            token=AUDITOR_TOKEN)  # fmt: skip
        assert listed.status == 200, listed
        return [d["dispute_id"] for d in listed.json["disputes"]]

    assert await due(0) == [unanswered]
    assert await due(7) == [unanswered, represented]
    assert await due(200) == [unanswered, represented, fresh]  # never the acquirer's turn
    code, output = await run_cli(
        "disputes", "list", "--due-within", "7", "--output", "json", "--config", str(config)
    )
    assert code == 0 and [d["dispute_id"] for d in json.loads(output)] == [unanswered, represented]
    both = await call(port, "GET", "/v1/disputes?due_within_days=7&state=won", token=AUDITOR_TOKEN)
    assert both.status == 422 and "due_within_days lists open disputes" in both.json["error"]
    code, output = await run_cli("disputes", "list", "--due-within", "-1", "--config", str(config))
    assert code == 1 and "--due-within must be 0 to 3,650" in output

    resolved = await call(port, "POST", f"/v1/disputes/{unanswered}/resolve",
                          payload={"outcome": "won"})  # fmt: skip
    assert resolved.status == 200 and await due(0) == []

    # pre-arbitration 31 days after a representment: too late, the representment stands
    async with open_card_service(load_config(config), "test") as service:
        late_pre_arb = CardService(service.store, service.security, "test",
                                   clock=lambda: day_start(day) + 31 * DAY)  # fmt: skip
        with pytest.raises(ConflictError, match="too late for pre-arbitration"):
            await late_pre_arb.pre_arbitrate_dispute(represented, DisputePreArbitration())
    assert (await _dispute(port, represented))["stage"] == "represented"


async def test_the_chargebacks_file_and_a_representments_file(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """``disputes chargebacks --since ... --out FILE`` writes the chargebacks filed (ARN as
    journalled, masked PAN, never the full one); ``disputes representments FILE`` reads the
    acquirers' answers back by dispute id or ARN: a bad line (more than charged back, an
    unknown dispute, a dispute named twice, no id) is reported with its line and reason and
    writes nothing, the others are recorded; the same file again changes nothing."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, visa = at.port, at.visa
    config = str(cli_config(tmp_path, store_url))
    since = str(int(time.time()) - 1)
    charges = [await _charged(at, visa, 2_000 + n) for n in range(3)]
    ids = []
    for charge in charges:
        dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
        filed = await call(port, "POST", f"/v1/disputes/{dispute_id}/chargeback")
        assert filed.status == 200, filed
        ids.append(dispute_id)
    not_charged_back = (await _opened(at, await _charged(at, visa, 900), "fraud"))["dispute_id"]

    out = tmp_path / "chargebacks.csv"
    code, output = await run_cli(
        "disputes", "chargebacks", "--since", since, "--out", str(out), "--config", config
    )
    assert code == 0 and "wrote 3 chargebacks" in output, output
    text = out.read_text()
    assert visa["pan"] not in text
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["dispute_id"] for r in rows] == ids and not_charged_back not in text
    assert list(rows[0]) == ["dispute_id", "arn", "pan", "amount_minor", "currency", "network",
                             "reason_code", "charged_back_at", "journal_id", "action",
                             "recalled_at", "withdrawn_at_stage"]  # fmt: skip
    assert {(r["action"], r["recalled_at"], r["withdrawn_at_stage"]) for r in rows} == {
        ("chargeback", "", "")
    }
    for row, charge in zip(rows, charges, strict=True):
        assert (row["arn"], row["pan"], row["amount_minor"]) == (
            charge.rrn, charge.pan_masked, str(charge.hold_amount)
        )  # fmt: skip
        assert re.fullmatch(r"[0-9]{6}\*+[0-9]{4}", row["pan"])
        assert (row["network"], row["reason_code"], row["currency"]) == ("visa", "13.1", "978")
    api = await call(port, "GET", f"/v1/disputes/chargebacks?since={since}", token=AUDITOR_TOKEN)
    assert api.status == 200 and [r["dispute_id"] for r in api.json["chargebacks"]] == ids
    code, output = await run_cli("disputes", "chargebacks", "--since", since, "--out",
                                 str(tmp_path), "--config", config)  # fmt: skip
    assert code == 1 and "is a folder" in output

    first, second, third = rows
    file = tmp_path / "representments.csv"
    file.write_text(
        "dispute_id,arn,date,reference,amount_minor\n"
        f"{first['dispute_id']},,,REP-1,{first['amount_minor']}\n"  # by id: recorded
        f",{second['arn']},,REP-2,1500\n"  # by ARN: recorded
        f"{third['dispute_id']},,,REP-3,999999\n"  # more than charged back
        "dsp-20000101-000000-000000-000,,,REP-4,10\n"  # no such dispute
        f"{first['dispute_id']},,,REP-5,10\n"  # named on line 2 already
        ",,,REP-6,10\n"  # no id
        f",00000000{second['arn']},,REP-7,10\n"  # a longer ARN ending in one: line 3's
    )
    represent = ("disputes", "representments", str(file), "--config", config)
    before_third = await _dispute(port, third["dispute_id"])
    code, output = await run_cli(*represent)
    assert code == 1, output
    assert f"{file}:4: amount_minor 999999 is more than the {third['amount_minor']}" in output
    assert f"{file}:5: dispute dsp-20000101-000000-000000-000 not found" in output
    assert f"{file}:6: dispute {first['dispute_id']} is on line 2 too" in output
    assert f"{file}:7: give the dispute_id or the arn" in output
    assert f"{file}:8: dispute {second['dispute_id']} is on line 3 too" in output
    assert "7 row(s): 2 recorded, 5 failed" in output
    assert (await _dispute(port, third["dispute_id"])) == before_third  # nothing half-applied
    for dispute_id, reference in ((ids[0], "REP-1"), (ids[1], "REP-2")):
        shown = await _dispute(port, dispute_id)
        assert (shown["stage"], shown["representment_reference"]) == ("represented", reference)
    # again: the recorded lines change nothing (no second audit entry), the others still fail
    code, output = await run_cli(*represent)
    assert code == 1 and "7 row(s): 2 recorded, 5 failed" in output
    assert (await _audit_actions(port, ids[0])).count("dispute.represented") == 1

    # the admin API takes the file's text: the whole of it unreadable is refused, nothing done
    body = ("dispute_id,reference,amount_minor\n"
            f"{third['dispute_id']},REP-3,{third['amount_minor']}\n"
            f"{not_charged_back},REP-8,10\n")  # fmt: skip
    imported = await call(port, "POST", "/v1/disputes/representments", payload={"csv": body})
    assert imported.status == 200, imported
    assert (imported.json["recorded"], imported.json["failed"]) == (1, 1)
    [ok, refused] = imported.json["rows"]
    assert (ok["line"], ok["stage"], ok["error"]) == (2, "represented", "")
    assert refused["line"] == 3 and "stage opened" in refused["error"]
    unreadable = await call(port, "POST", "/v1/disputes/representments",
                            payload={"csv": "dispute_id,amount\nx,1\n"})  # fmt: skip
    assert unreadable.status == 422 and "missing column(s) reference" in unreadable.json["error"]


async def test_a_dispute_stored_before_the_network_stages_loads_and_is_due(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A dispute written by an authhost without the network fields (its JSON has none of
    them) loads at stage opened; its chargeback limit counts from its charge, read from the
    journal, and its chargeback records it."""
    legacy = {
        "dispute_id": "dsp-20260101-000000-000000-001", "journal_id": 7, "card_id": "c1",
        "account_id": "a1", "reason": "fraud", "amount_minor": 100, "currency": "978",
        "opened_at": 1.0, "state": "open", "credited_minor": 0, "closed_at": 0.0, "note": "",
        "resolving": "", "version": 3,
    }  # fmt: skip
    loaded = codec.dispute_from_json(json.dumps(legacy))
    assert (loaded.stage, loaded.charged_at, loaded.reason_code, loaded.version) == (
        "opened", 0.0, "", 3
    )  # fmt: skip

    at = await visa_at_host(nursery, tmp_path, store_url)
    charge = await _charged(at, at.visa, 700)
    dispute_id = (await _opened(at, charge, "fraud", credit=False))["dispute_id"]
    async with opened_store(store_url) as store:
        stored = await store.get_dispute(dispute_id)
        assert stored is not None
        old = dataclasses.replace(stored, charged_at=0.0, version=stored.version + 1)
        await store.update_dispute(old, expected_version=stored.version)
    shown = await _dispute(at.port, dispute_id)  # the charge's time read from the journal
    assert (shown["charged_at"], shown["next_action"]["deadline"]) == (
        charge.ts, charge.ts + 120 * DAY
    )  # fmt: skip
    async with opened_store(store_url) as store:
        assert (await store.get_dispute(dispute_id)).charged_at == 0.0  # not written by a read
    due = await call(at.port, "GET", "/v1/disputes?due_within_days=120", token=AUDITOR_TOKEN)
    assert dispute_id in [d["dispute_id"] for d in due.json["disputes"]]
    filed = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/chargeback")
    assert filed.status == 200 and filed.json["charged_at"] == charge.ts, filed


def test_the_time_limits_are_configured_in_admin(tmp_path: Path) -> None:
    config = tmp_path / "authhost.toml"
    config.write_text("[admin]\nchargeback_days = 180\nrepresentment_days = 30\n")
    limits = load_config(config).admin.dispute_limits
    assert (limits.chargeback_days, limits.representment_days, limits.pre_arbitration_days) == (
        180, 30, 30
    )  # fmt: skip
    config.write_text("[admin]\npre_arbitration_days = 0\n")
    with pytest.raises(ValueError, match="pre_arbitration_days must be 1 to 3650"):
        load_config(config)


async def test_a_representments_line_must_name_one_dispute_and_never_echoes_a_pan(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A line whose dispute_id and arn name two disputes is refused, nothing written (the
    acquirer answered another charge, or the line is mistyped); a card number in a cell is
    masked in every answer (API rows, CLI output, results file); a representment recorded by
    hand undated is the same as the file's line dated that day (the same again: no refusal)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, visa = at.port, at.visa
    config = str(cli_config(tmp_path, store_url))
    ids, arns = [], []
    for n in range(3):
        charge = await _charged(at, visa, 1_000 + n)
        dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
        filed = await call(port, "POST", f"/v1/disputes/{dispute_id}/chargeback")
        assert filed.status == 200, filed
        ids.append(dispute_id)
        arns.append(filed.json["arn"])
    by_hand = await call(port, "POST", f"/v1/disputes/{ids[2]}/represented",
                         payload={"reference": "REP-H", "amount_minor": 1_002})  # fmt: skip
    assert by_hand.status == 200, by_hand
    today = time.strftime("%Y-%m-%d", time.gmtime())

    before = await _dispute(port, ids[0])
    file = tmp_path / "representments.csv"
    file.write_text(
        "dispute_id,arn,date,reference,amount_minor\n"
        f"{ids[0]},{arns[1]},,REP-1,1000\n"  # the first dispute, the second's ARN
        f"{visa['pan']},,,REP-2,10\n"  # a PAN where the dispute id goes
        f",{visa['pan']},,REP-3,10\n"  # and where the ARN goes
        f"{ids[1]},{arns[1]},,REP-4,1001\n"  # id and ARN agree: recorded
        f"{ids[2]},,{today},REP-H,1002\n"  # recorded by hand today, undated: the same
        "=HYPERLINK(1),,,REP-5,10\n"  # a formula where the dispute id goes
    )
    results = tmp_path / "results.csv"
    code, output = await run_cli("disputes", "representments", str(file), "--results",
                                 str(results), "--config", config)  # fmt: skip
    assert code == 1, output
    assert f"{file}:2: arn {arns[1]} is not the one dispute {ids[0]} was charged back under" in (
        output
    )
    assert "6 row(s): 2 recorded, 4 failed" in output, output
    assert await _dispute(port, ids[0]) == before
    assert (await _audit_actions(port, ids[0])).count("dispute.represented") == 0
    assert (await _dispute(port, ids[1]))["representment_reference"] == "REP-4"
    assert visa["pan"] not in output and visa["pan"] not in results.read_text()
    assert visa["pan"][:6] in results.read_text()  # masked, not dropped
    # the results file is for people: a spreadsheet opening it shows the formula as text
    assert ",'=HYPERLINK(1)," in results.read_text() and ",=HYPERLINK" not in results.read_text()

    imported = await call(port, "POST", "/v1/disputes/representments",
                          payload={"csv": file.read_text()})  # fmt: skip
    assert imported.status == 200, imported
    assert visa["pan"] not in json.dumps(imported.json)
    assert [r["error"] == "" for r in imported.json["rows"]] == [
        False, False, False, True, True, False
    ]  # fmt: skip


def another_write_first(store: Any, step: Callable[[], Awaitable[Any]]) -> Any:
    """A stand-in for ``store.update_dispute`` that lets ``step`` (another request) write the
    dispute first, once, then writes as asked: two requests at once, the other one first."""
    written = store.update_dispute

    async def update(dispute, expected_version, *audit):  # noqa: ANN001, ANN202
        store.update_dispute = written  # once: the other request's write lands first
        await step()
        return await written(dispute, expected_version, *audit)

    return update


async def test_the_same_step_twice_at_once_is_answered_as_recorded(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Two requests with the same values at once (a retry, one file imported twice at once):
    the one that lost the compare-and-set finds the step recorded as it asked and answers it
    (200, audited once), as a repeat is; with other values it is still refused 409."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    charge = await _charged(at, at.visa, 3_000)
    dispute_id = (await _opened(at, charge, "fraud"))["dispute_id"]
    config = cli_config(tmp_path, store_url)

    async with open_card_service(load_config(config), "test") as service:
        store = service.store

        def first_another(step):  # noqa: ANN001, ANN202
            return another_write_first(store, step)

        spec = DisputeChargeback(reason_code="10.3", amount_minor=3_000)
        store.update_dispute = first_another(lambda: service.charge_back_dispute(dispute_id, spec))
        answered = await service.charge_back_dispute(dispute_id, spec)
        assert answered == await _dispute(at.port, dispute_id)
        assert answered["stage"] == "chargeback"
        assert (await _audit_actions(at.port, dispute_id)).count("dispute.chargeback") == 1

        represent = DisputeRepresentment(reference="R-1", amount_minor=3_000)
        other = DisputeRepresentment(reference="R-2", amount_minor=3_000)
        store.update_dispute = first_another(
            lambda: service.record_representment(dispute_id, other)
        )
        with pytest.raises(ConflictError, match="changed by another request meanwhile"):
            await service.record_representment(dispute_id, represent)
        shown = await _dispute(at.port, dispute_id)
        assert shown["representment_reference"] == "R-2"


async def test_the_chargebacks_file_shows_a_formula_like_reference_as_text(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The ARN is the acquirer's RRN as it came on the wire: one starting with = + - or @
    is written with a leading ' so that a spreadsheet opening the file shows it as text and
    does not run it; the API's JSON keeps it as it is."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    config = str(cli_config(tmp_path, store_url))
    since = str(int(time.time()) - 1)
    rrns = ["=HYPERLINK(1", "+SUM(1,2)ABC", "@A1+B1CDEFGH", "-2+3ABCDEFGH", "000000004711"]
    for n, rrn in enumerate(rrns):
        charge = await _charged_rrn(at, at.visa, 500 + n, rrn)
        assert charge.rrn == rrn
        dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
        filed = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/chargeback")
        assert filed.status == 200 and filed.json["arn"] == rrn, filed
    out = tmp_path / "chargebacks.csv"
    code, output = await run_cli(
        "disputes", "chargebacks", "--since", since, "--out", str(out), "--config", config
    )
    assert code == 0, output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["arn"] for r in rows] == ["'" + rrn for rrn in rrns[:4]] + [rrns[4]]
    assert all(r["amount_minor"].isdigit() for r in rows)
    api = await call(at.port, "GET", f"/v1/disputes/chargebacks?since={since}",
                     token=AUDITOR_TOKEN)  # fmt: skip
    assert [r["arn"] for r in api.json["chargebacks"]] == rrns


async def test_a_dispute_left_half_resolved_is_due_at_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A resolution that failed after claiming the dispute (``resolving`` written, the money
    perhaps moved) is finished by nothing but the issuer resolving it again: ``due_within_days``
    lists it first, whatever the window, its todo naming the command."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    charges = [await _charged(at, at.visa, 600 + n) for n in range(2)]
    stuck, waiting = [(await _opened(at, c, "fraud"))["dispute_id"] for c in charges]
    async with opened_store(store_url) as store:
        read = await store.get_dispute(stuck)
        assert read is not None
        claimed = dataclasses.replace(read, resolving="lost", version=read.version + 1)
        await store.update_dispute(claimed, expected_version=read.version)

    async def due(days: int) -> list[dict[str, Any]]:
        listed = await call(at.port, "GET", f"/v1/disputes?due_within_days={days}",
                            token=AUDITOR_TOKEN)  # fmt: skip
        assert listed.status == 200, listed
        return listed.json["disputes"]

    [only] = await due(0)
    assert only["dispute_id"] == stuck and "resolve it again" in only["next_action"]["todo"]
    assert [d["dispute_id"] for d in await due(200)] == [stuck, waiting]


async def test_a_dated_representment_comes_after_its_chargeback_in_the_timeline(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A representment dated today (00:00 UTC) answers a chargeback filed later that day: the
    card's timeline tells it after the chargeback (and the opening), with its date."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    charge = await _charged(at, at.visa, 800)
    dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
    assert (await call(at.port, "POST", f"/v1/disputes/{dispute_id}/chargeback")).status == 200
    today = time.strftime("%Y-%m-%d", time.gmtime())
    represented = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/represented",
                             payload={"reference": "R-D", "amount_minor": 800, "date": today})  # fmt: skip
    assert represented.status == 200 and represented.json["represented_at"] == day_start(today)
    timeline = await call(at.port, "GET", f"/v1/cards/{charge.card_id}/timeline",
                          token=AUDITOR_TOKEN)  # fmt: skip
    events = [e for e in timeline.json["events"] if e["dispute_id"] == dispute_id]
    assert [e["kind"] for e in events] == [
        "dispute.represented", "dispute.chargeback", "dispute.open"
    ]  # fmt: skip
    assert f"dated {today}" in events[0]["summary"]
