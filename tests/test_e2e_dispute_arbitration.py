"""The acquirer's answer to a pre-arbitration and arbitration over a running host, on both
stores: an answer accepted in part leaves the cardholder what was accepted; a declined one is
taken to arbitration, whose ruling resolves the dispute with a resolution's money movement;
each step audited once, asked again answered as it stands, refused (409/422, nothing changed)
out of order, late or with an amount that does not fit; from the admin API and the CLI."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_dispute_stage_amounts import _step
from test_e2e_auth import balances_of, store_url  # noqa: F401 - fixture
from test_e2e_dispute_stages import (
    _audit_actions,
    _charged,
    _dispute,
    _opened,
    another_write_first,
    refused_unchanged,
)

from authhost.admin.dispute_stages import DAY, DisputeLimits, day_start
from authhost.admin.errors import ConflictError
from authhost.admin.requests import DisputeArbitration, DisputePreArbitrationAnswer
from authhost.admin.service import CardService
from authhost.cli.admin_support import open_card_service
from authhost.config import load_config
from authhost.store.interface import StoreError
from authhost.store.redis import RedisCardStore
from authhost.store.sqlite import SqliteCardStore

DISPUTED, REPRESENTED, PRE_ARBITRATED = 5_000, 4_000, 3_000
CONCEDED = REPRESENTED - PRE_ARBITRATED  # what the issuer accepted of the representment


async def _pre_arbitrated(at: Any) -> str:
    """A dispute of 5,000 (credited) charged back whole, represented for 4,000 and
    pre-arbitrated for 3,000: its id."""
    charge = await _charged(at, at.visa, DISPUTED)
    dispute_id = (await _opened(at, charge, "not_received"))["dispute_id"]
    await _step(at.port, dispute_id, "chargeback")
    body = {"reference": "REP-9", "amount_minor": REPRESENTED}
    await _step(at.port, dispute_id, "represented", body)
    await _step(at.port, dispute_id, "pre-arbitration", {"amount_minor": PRE_ARBITRATED})
    return dispute_id


async def test_an_answer_accepted_in_part_leaves_the_cardholder_what_was_accepted(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Recorded from the CLI with its time, moving no money; the amounts view says what
    each outcome leaves; won then keeps the chargeback less the representment plus the part
    the acquirer accepted, the provisional credit above that taken back."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    config = str(cli_config(tmp_path, store_url))
    ledger, available = await balances_of(switch, visa)
    dispute_id = await _pre_arbitrated(at)
    credited = (ledger, available)  # charged 5,000, given it back as the provisional credit
    assert await balances_of(switch, visa) == credited

    answer = (
        "disputes", "pre-arbitration-answer", dispute_id, "--answer", "accepted_in_part",
        "--amount-minor", "1200", "--note", "partial", "--config", config,
    )  # fmt: skip
    code, output = await run_cli(*answer)
    assert code == 0, output
    answered = json.loads(output)
    assert (answered["stage"], answered["pre_arbitration_answer"]) == (
        "pre_arbitration_accepted", "accepted_in_part"
    )  # fmt: skip
    assert answered["pre_arbitration_accepted_minor"] == 1_200
    assert answered["pre_arbitration_answered_at"] >= answered["pre_arbitration_at"]
    keeps = DISPUTED - REPRESENTED + 1_200
    shown = answered["amounts"]
    assert shown["pre_arbitration_accepted_minor"] == 1_200
    assert shown["accepted_by_acquirer_minor"] == keeps
    assert (shown["if_won_minor"], shown["if_lost_minor"]) == (keeps, keeps)
    action = answered["next_action"]  # the rest may go to arbitration; or resolve it now
    assert (action["owner"], action["action"]) == ("issuer", "arbitration")
    assert f"disputes arbitration {dispute_id}" in action["todo"]
    assert f"disputes resolve {dispute_id} --outcome lost" in action["todo"]
    assert await balances_of(switch, visa) == credited

    # the same again: as it stands, audited once; another answer: 409, nothing changed
    code, output = await run_cli(*answer)
    assert code == 0 and json.loads(output) == answered, output
    url = f"/v1/disputes/{dispute_id}/pre-arbitration-answer"
    for body in ({"answer": "declined"}, {"answer": "accepted_in_part", "amount_minor": 1_000}):
        other = await call(port, "POST", url, payload=body)
        assert other.status == 409 and "answered the pre-arbitration already" in other.json["error"]
    assert await _dispute(port, dispute_id) == answered
    due = await call(port, "GET", "/v1/disputes?due_within_days=10", token=AUDITOR_TOKEN)
    assert dispute_id in [d["dispute_id"] for d in due.json["disputes"]]

    won = await _step(port, dispute_id, "resolve", {"outcome": "won"})
    assert won["credited_minor"] == won["amounts"]["cardholder_keeps_minor"] == keeps
    taken = DISPUTED - keeps  # the provisional credit above what was accepted
    assert await balances_of(switch, visa) == (ledger - taken, available - taken)
    assert await _audit_actions(port, dispute_id) == [
        "dispute.open", "dispute.chargeback", "dispute.represented", "dispute.pre_arbitration",
        "dispute.pre_arbitration_answer", "dispute.resolve",
    ]  # fmt: skip
    timeline = await call(port, "GET", f"/v1/cards/{answered['card_id']}/timeline",
                          token=AUDITOR_TOKEN)  # fmt: skip
    summaries = [e["summary"] for e in timeline.json["events"]
                 if e["kind"] == "dispute.pre_arbitration_answer"]  # fmt: skip
    assert len(summaries) == 1 and "accepted in part" in summaries[0], summaries


@pytest.mark.parametrize("ruling", ["won", "lost"])
async def test_a_declined_pre_arbitration_goes_to_arbitration_and_the_ruling_resolves_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    ruling,
):
    """Declined: the issuer files arbitration (the CLI), the network rules: won keeps the
    chargeback less what the issuer conceded, lost what the representment left (the
    provisional credit above it taken back), one movement, audited as the ruling; the same
    ruling again answers as it stands, another is refused."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    config = str(cli_config(tmp_path, store_url))
    ledger, available = await balances_of(switch, visa)
    dispute_id = await _pre_arbitrated(at)

    declined = await _step(port, dispute_id, "pre-arbitration-answer", {"answer": "declined"})
    assert (declined["stage"], declined["pre_arbitration_accepted_minor"]) == (
        "pre_arbitration_declined", 0
    )  # fmt: skip
    action = declined["next_action"]
    assert (action["owner"], action["action"]) == ("issuer", "arbitration")
    assert action["deadline"] == declined["pre_arbitration_answered_at"] + 10 * DAY
    code, output = await run_cli("disputes", "arbitration", dispute_id, "--config", config)
    assert code == 0, output
    filed = json.loads(output)
    assert filed["stage"] == "arbitration" and filed["arbitration_at"] > 0
    assert filed["next_action"]["owner"] == "network"
    assert filed["next_action"]["action"] == "arbitration_ruling"
    code, output = await run_cli("disputes", "arbitration", dispute_id, "--config", config)
    assert code == 0 and json.loads(output) == filed, output
    assert await balances_of(switch, visa) == (ledger, available)  # charged, credited back

    code, output = await run_cli(
        "disputes", "arbitration-ruling", dispute_id, "--ruling", ruling, "--config", config
    )
    assert code == 0, output
    ruled = json.loads(output)
    keeps = DISPUTED - CONCEDED if ruling == "won" else DISPUTED - REPRESENTED
    assert (ruled["state"], ruled["arbitration_ruling"], ruled["stage"]) == (
        ruling, ruling, "arbitration"
    )  # fmt: skip
    assert ruled["credited_minor"] == ruled["amounts"]["cardholder_keeps_minor"] == keeps
    taken = DISPUTED - keeps
    assert await balances_of(switch, visa) == (ledger - taken, available - taken)

    url = f"/v1/disputes/{dispute_id}/arbitration-ruling"
    again = await call(port, "POST", url, payload={"ruling": ruling})
    assert again.status == 200 and again.json == ruled, again
    other = await call(port, "POST", url, payload={"ruling": "lost" if ruling == "won" else "won"})
    assert other.status == 409 and f"ruled {ruling} already" in other.json["error"], other
    resolve = await call(port, "POST", f"/v1/disputes/{dispute_id}/resolve",
                         payload={"outcome": ruling})  # fmt: skip
    assert resolve.status == 409  # a ruling's: the 409 names the retry that is answered
    assert f"disputes arbitration-ruling {dispute_id} --ruling {ruling}" in resolve.json["error"]
    assert await balances_of(switch, visa) == (ledger - taken, available - taken)
    assert await _audit_actions(port, dispute_id) == [
        "dispute.open", "dispute.chargeback", "dispute.represented", "dispute.pre_arbitration",
        "dispute.pre_arbitration_answer", "dispute.arbitration", "dispute.arbitration_ruling",
    ]  # fmt: skip


async def test_steps_out_of_order_late_or_that_do_not_fit_are_refused_and_change_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """An answer with no pre-arbitration, arbitration with no declined one (unanswered or
    accepted), a ruling with no arbitration: 409 with the reason; an amount that does not fit
    the answer: 422; an answer past the acquirer's limit (the issuer won) and arbitration past
    the issuer's: 409 naming the limit. The dispute, its audit and the balance as they were;
    the CLI says it in one line."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, visa = at.port, at.visa
    config = cli_config(tmp_path, store_url)
    represented = (await _opened(at, await _charged(at, visa, 2_000), "fraud"))["dispute_id"]
    await _step(port, represented, "chargeback")
    await _step(port, represented, "represented", {"reference": "R-1", "amount_minor": 2_000})
    pre_arbitrated = await _pre_arbitrated(at)
    accepted = await _pre_arbitrated(at)
    await _step(port, accepted, "pre-arbitration-answer", {"answer": "accepted"})

    answer = "pre-arbitration-answer"
    cases: list[tuple[str, str, dict | None, int, str]] = [
        (represented, answer, {"answer": "declined"}, 409,
         "at stage represented: the acquirer's answer follows a pre-arbitration"),
        (represented, "arbitration", None, 409, "arbitration follows a pre-arbitration declined"),
        (represented, "arbitration-ruling", {"ruling": "won"}, 409,
         "a ruling answers an arbitration, and none was filed"),
        (pre_arbitrated, "arbitration", None, 409, "at stage pre_arbitration: arbitration"),
        (pre_arbitrated, "arbitration-ruling", {"ruling": "lost"}, 409, "a ruling answers"),
        (pre_arbitrated, answer, {"answer": "accepted_in_part"}, 422,
         "gives the amount accepted"),
        (pre_arbitrated, answer, {"answer": "accepted", "amount_minor": 10}, 422,
         "is not the 3000 pre-arbitrated"),
        (pre_arbitrated, answer, {"answer": "declined", "amount_minor": 10}, 422,
         "a declined answer accepts nothing"),
        (pre_arbitrated, answer, {"answer": "maybe"}, 422, "answer"),
        (accepted, "arbitration", None, 409, "the acquirer accepted the pre-arbitration"),
        (accepted, answer, {"answer": "declined"}, 409, "answered the pre-arbitration already"),
    ]  # fmt: skip
    for ident, step, body, status, words in cases:
        await refused_unchanged(at, ident, step, body, status, words)
    code, output = await run_cli("disputes", "arbitration", represented, "--config", str(config))
    assert code == 1 and output.startswith("error: dispute ") and output.count("\n") == 1, output
    code, output = await run_cli(
        "disputes", "pre-arbitration-answer", pre_arbitrated, "--answer", "perhaps",
        "--config", str(config),
    )  # fmt: skip
    assert code == 1 and output.startswith("error: ") and output.count("\n") == 1, output

    async with open_card_service(load_config(config), "test") as service:
        stored = await service.store.get_dispute(pre_arbitrated)
        assert stored is not None

        def at_time(ts: float) -> CardService:
            return CardService(service.store, service.security, "test", clock=lambda: ts,
                               dispute_limits=DisputeLimits())  # fmt: skip

        late = at_time(stored.pre_arbitration_at + 31 * DAY)
        with pytest.raises(ConflictError, match="answer came after its limit.*the issuer won"):
            await late.answer_pre_arbitration(
                pre_arbitrated, DisputePreArbitrationAnswer(answer="accepted")
            )
        await service.answer_pre_arbitration(
            pre_arbitrated, DisputePreArbitrationAnswer(answer="declined")
        )
        declined = await service.store.get_dispute(pre_arbitrated)
        assert declined is not None
        later = at_time(declined.pre_arbitration_answered_at + 11 * DAY)
        with pytest.raises(ConflictError, match="too late for arbitration"):
            await later.arbitrate_dispute(pre_arbitrated, DisputeArbitration())
        shown = await later.get_dispute(pre_arbitrated)
        assert shown["stage"] == "pre_arbitration_declined"
        overdue = shown["next_action"]
        assert (overdue["action"], overdue["overdue"]) == ("resolve", True)


async def test_the_same_answer_twice_at_once_is_answered_as_recorded(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Two requests with the same answer at once: the one that lost the compare-and-set finds
    it recorded as asked (audited once); with another answer it is refused 409."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    dispute_id = await _pre_arbitrated(at)
    async with open_card_service(load_config(cli_config(tmp_path, store_url)), "test") as service:
        store = service.store
        spec = DisputePreArbitrationAnswer(answer="accepted_in_part", amount_minor=500)
        store.update_dispute = another_write_first(
            store, lambda: service.answer_pre_arbitration(dispute_id, spec)
        )
        answered = await service.answer_pre_arbitration(dispute_id, spec)
        assert answered == await _dispute(at.port, dispute_id)
        assert answered["pre_arbitration_accepted_minor"] == 500
        actions = await _audit_actions(at.port, dispute_id)
        assert actions.count("dispute.pre_arbitration_answer") == 1

        other = await _pre_arbitrated(at)
        declined = DisputePreArbitrationAnswer(answer="declined")
        store.update_dispute = another_write_first(
            store, lambda: service.answer_pre_arbitration(other, declined)
        )
        with pytest.raises(ConflictError, match="changed by another request meanwhile"):
            await service.answer_pre_arbitration(
                other, DisputePreArbitrationAnswer(answer="accepted")
            )
    assert (await _dispute(at.port, other))["pre_arbitration_answer"] == "declined"


async def test_a_ruling_the_store_failed_after_its_claim_is_finished_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """The store fails on the ruling's final write (the money moved under its claim): 503,
    the dispute open with the ruling claimed (``resolving``, ``arbitration_ruling``); the
    ruling sent again finishes it, the money moved once, audited once as the ruling."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    ledger, available = await balances_of(switch, visa)
    dispute_id = await _pre_arbitrated(at)
    await _step(port, dispute_id, "pre-arbitration-answer", {"answer": "declined"})
    await _step(port, dispute_id, "arbitration")

    failed: list[str] = []
    for cls in (SqliteCardStore, RedisCardStore):
        update = cls.update_dispute

        async def fails_once(self: Any, dispute: Any, *args: Any, _u: Any = update) -> None:
            if dispute.state != "open" and not failed:
                failed.append(dispute.dispute_id)
                raise StoreError("connection to the store lost")
            await _u(self, dispute, *args)

        monkeypatch.setattr(cls, "update_dispute", fails_once)

    url = f"/v1/disputes/{dispute_id}/arbitration-ruling"
    first = await call(port, "POST", url, payload={"ruling": "lost"})
    assert first.status == 503 and failed == [dispute_id], first
    stuck = await _dispute(port, dispute_id)
    assert (stuck["state"], stuck["resolving"], stuck["arbitration_ruling"]) == (
        "open", "lost", "lost"
    )  # fmt: skip
    other = await call(port, "POST", url, payload={"ruling": "won"})
    assert other.status == 409 and "being resolved as lost" in other.json["error"], other
    finished = await call(port, "POST", url, payload={"ruling": "lost"})
    assert finished.status == 200 and finished.json["state"] == "lost", finished
    taken = REPRESENTED  # lost: the cardholder keeps the chargeback less the representment
    assert await balances_of(switch, visa) == (ledger - taken, available - taken)
    assert (await _audit_actions(port, dispute_id)).count("dispute.arbitration_ruling") == 1


async def test_an_answer_given_in_time_and_recorded_late_is_in_time_by_its_date(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The acquirer answered on its last day; the back office records it two days later with
    that date: recorded (dated that day, the arbitration limit counting from it), audited
    once; undated it would have been refused (the issuer won). A date in the future is 422
    from the admin API, nothing changed."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    dispute_id = await _pre_arbitrated(at)
    future = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * DAY))
    await refused_unchanged(
        at, dispute_id, "pre-arbitration-answer", {"answer": "declined", "date": future}, 422,
        "is in the future",
    )  # fmt: skip
    async with open_card_service(load_config(cli_config(tmp_path, store_url)), "test") as service:
        stored = await service.store.get_dispute(dispute_id)
        assert stored is not None
        later = CardService(
            service.store, service.security, "test", dispute_limits=DisputeLimits(),
            clock=lambda: stored.pre_arbitration_at + 32 * DAY,
        )  # fmt: skip
        with pytest.raises(ConflictError, match="answer came after its limit"):
            await later.answer_pre_arbitration(
                dispute_id, DisputePreArbitrationAnswer(answer="declined")
            )
        last_day = time.strftime("%Y-%m-%d", time.gmtime(stored.pre_arbitration_at + 30 * DAY))
        spec = DisputePreArbitrationAnswer(answer="declined", date=last_day)
        answered = await later.answer_pre_arbitration(dispute_id, spec)
    day = day_start(last_day)
    assert (answered["stage"], answered["pre_arbitration_answered_at"]) == (
        "pre_arbitration_declined", day
    )  # fmt: skip
    shown = await _dispute(at.port, dispute_id)
    assert shown["pre_arbitration_answered_at"] == day
    assert shown["next_action"]["deadline"] == day + 10 * DAY
    assert (await _audit_actions(at.port, dispute_id)).count("dispute.pre_arbitration_answer") == 1


@pytest.mark.parametrize("ruling", ["won", "lost"])
async def test_an_answer_accepted_in_part_goes_to_arbitration_for_the_rest_with_its_fee(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    ruling,
):
    """Accepted 1,200 of the 3,000 pre-arbitrated: arbitration for the 1,800 left (it was
    refused: "nothing is left to arbitrate"). Ruled won, the cardholder keeps the chargeback
    less the 1,000 conceded; lost, the 1,000 not represented and the 1,200 accepted; the
    credit above it taken back. The network's fee is recorded with the ruling, borne by the
    loser: given on the ruling (won), or the configured default (lost, from the CLI); the
    dispute list's table shows it; the cardholder's money never counts it."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    config = cli_config(tmp_path, store_url)
    config.write_text(config.read_text() + "[admin]\narbitration_fee_minor = 50000\n")
    ledger, available = await balances_of(switch, visa)
    dispute_id = await _pre_arbitrated(at)
    body = {"answer": "accepted_in_part", "amount_minor": 1_200}
    await _step(port, dispute_id, "pre-arbitration-answer", body)
    code, output = await run_cli("disputes", "arbitration", dispute_id, "--config", str(config))
    assert code == 0, output
    filed = json.loads(output)
    assert (filed["stage"], filed["amounts"]["arbitration_minor"]) == ("arbitration", 1_800)
    assert filed["next_action"]["action"] == "arbitration_ruling"

    if ruling == "won":
        keeps, fee, payer = DISPUTED - CONCEDED, (25_000, "978"), "acquirer"
        body = {"ruling": "won", "fee_minor": 25_000, "fee_currency": "978"}
        resolved = await _step(port, dispute_id, "arbitration-ruling", body)
    else:
        keeps, fee, payer = DISPUTED - REPRESENTED + 1_200, (50_000, "840"), "issuer"
        code, output = await run_cli(
            "disputes", "arbitration-ruling", dispute_id, "--ruling", "lost",
            "--config", str(config),
        )  # fmt: skip
        assert code == 0, output
        resolved = json.loads(output)
    assert (resolved["state"], resolved["arbitration_ruling"]) == (ruling, ruling)
    assert resolved["credited_minor"] == resolved["amounts"]["cardholder_keeps_minor"] == keeps
    assert (resolved["arbitration_fee_minor"], resolved["arbitration_fee_currency"]) == fee
    assert resolved["arbitration_fee_payer"] == payer
    assert resolved["amounts"]["arbitration_fee_minor"] == fee[0]
    taken = DISPUTED - keeps
    assert await balances_of(switch, visa) == (ledger - taken, available - taken)
    assert await _dispute(port, dispute_id) == resolved
    assert (await _audit_actions(port, dispute_id)).count("dispute.arbitration_ruling") == 1
    code, table = await run_cli("disputes", "list", "--output", "table", "--config", str(config))
    assert code == 0 and "arbitration fee" in table and payer in table, table


async def test_a_ruling_that_finishes_a_plain_resolution_records_its_fee(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """A plain resolution (won, at the bank's cost) of a dispute in arbitration fails on its
    final write; the network's ruling, won with its fee, comes before it is sent again and
    finishes that claim as the ruling: the fee it gives is recorded (the claim held none to
    keep), the money moved once."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    ledger, available = await balances_of(switch, visa)
    dispute_id = await _pre_arbitrated(at)
    await _step(port, dispute_id, "pre-arbitration-answer", {"answer": "declined"})
    await _step(port, dispute_id, "arbitration")

    failed: list[str] = []
    for cls in (SqliteCardStore, RedisCardStore):
        update = cls.update_dispute

        async def fails_once(self: Any, dispute: Any, *args: Any, _u: Any = update) -> None:
            if dispute.state != "open" and not failed:
                failed.append(dispute.dispute_id)
                raise StoreError("connection to the store lost")
            await _u(self, dispute, *args)

        monkeypatch.setattr(cls, "update_dispute", fails_once)

    resolve = await call(port, "POST", f"/v1/disputes/{dispute_id}/resolve",
                         payload={"outcome": "won"})  # fmt: skip
    assert resolve.status == 503 and failed == [dispute_id], resolve
    body = {"ruling": "won", "fee_minor": 25_000, "fee_currency": "978"}
    ruled = await call(port, "POST", f"/v1/disputes/{dispute_id}/arbitration-ruling", payload=body)
    assert ruled.status == 200, ruled
    assert (ruled.json["state"], ruled.json["arbitration_ruling"]) == ("won", "won")
    fee = ruled.json["arbitration_fee_minor"], ruled.json["arbitration_fee_currency"]
    assert (fee, ruled.json["arbitration_fee_payer"]) == ((25_000, "978"), "acquirer")
    taken = CONCEDED  # won: the chargeback less what the issuer conceded
    assert await balances_of(switch, visa) == (ledger - taken, available - taken)
    assert (await _audit_actions(port, dispute_id)).count("dispute.arbitration_ruling") == 1
