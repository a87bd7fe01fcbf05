"""Disputes over a running host, on both stores: a provisional credit gives the posted
charge back at once, a lost dispute takes it back, a won one without a credit gives it then;
each movement is journalled (the account's statement shows it), a retried step moves nothing
twice, and what cannot be disputed is refused with the reason."""

from __future__ import annotations

import json
import time

import pytest
import trio
from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import (  # noqa: F401 - fixture
    balances_of,
    field_90,
    purchase,
    store_url,
)

from authhost.admin import disputes as dispute_steps
from authhost.admin.errors import InvalidRequest
from authhost.admin.requests import DisputeOpen
from authhost.admin.service import CardService
from authhost.cli.admin_support import open_card_service
from authhost.config import load_config
from authhost.store import opened_store
from authhost.store.interface import JournalQuery, StoreError, StoreUnavailable
from authhost.store.records import JournalEntry
from authhost.store.redis import RedisCardStore
from authhost.store.sqlite import SqliteCardStore

DAY = 86_400


async def test_a_dispute_gives_the_money_back_and_a_lost_one_takes_it_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa, card_id = at.port, at.switch, at.visa, at.card_id
    charged = await switch.send(purchase(visa, amount=5_000, t="0200"))  # posted at once
    held = await switch.send(purchase(visa, amount=1_000))  # only held
    other = await switch.send(purchase(visa, amount=2_000, t="0200"))
    assert charged["39"] == held["39"] == other["39"] == "00"
    async with opened_store(store_url) as store:
        entries = {e.stan: e for e in await store.journal(JournalQuery(card_id=card_id))}
    charge, hold, second = (entries[r["11"]] for r in (charged, held, other))
    ledger, available = await balances_of(switch, visa)

    url = f"/v1/cards/{card_id}/journal/{charge.journal_id}/dispute"
    opened = await call(port, "POST", url, payload={"reason": "fraud", "note": "not me"})
    assert opened.status == 200, opened
    dispute = opened.json
    assert (dispute["state"], dispute["amount_minor"], dispute["credited_minor"]) == (
        "open", 5_000, 5_000
    )  # fmt: skip
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)
    again = await call(port, "POST", url, payload={"reason": "amount"})
    assert again.status == 409  # one dispute per charge
    report = await call(port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    assert [(r["journal_id"], r["source"]) for r in report.json["reports"]] == [
        (charge.journal_id, "chargeback")
    ]  # the fraud dispute labels the charge for training  # fmt: skip

    lost = await call(port, "POST", f"/v1/disputes/{dispute['dispute_id']}/resolve",
                      payload={"outcome": "lost"})  # fmt: skip
    assert lost.status == 200 and lost.json["state"] == "lost" and lost.json["credited_minor"] == 0
    assert await balances_of(switch, visa) == (ledger, available)  # taken back
    closed = await call(port, "POST", f"/v1/disputes/{dispute['dispute_id']}/resolve",
                        payload={"outcome": "won"})  # fmt: skip
    assert closed.status == 409

    # without a provisional credit: nothing moves until it is won (from the CLI)
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli(
        "disputes", "open", card_id, str(second.journal_id), "--reason", "not_received",
        "--no-credit", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    quiet = json.loads(output)
    assert quiet["credited_minor"] == 0
    assert await balances_of(switch, visa) == (ledger, available)
    won = await call(port, "POST", f"/v1/disputes/{quiet['dispute_id']}/resolve",
                     payload={"outcome": "won"})  # fmt: skip
    assert won.status == 200 and won.json["credited_minor"] == 2_000
    assert await balances_of(switch, visa) == (ledger + 2_000, available + 2_000)

    # a step tried again (say the dispute's update failed after the post) is a retransmission
    async with open_card_service(load_config(config), "test", pipeline=True) as service:
        stored = await service.store.get_dispute(quiet["dispute_id"])
        assert stored is not None
        for _ in range(2):
            await service._dispute_move(stored, "", dispute_steps.FINAL_CREDIT, 2_000)
    assert await balances_of(switch, visa) == (ledger + 2_000, available + 2_000)

    # the movements are journalled: the account's statement lists them
    statement = await call(
        port, "GET", f"/v1/accounts/{visa['account']}/statement?since=0&until=9999999999",
        token=AUDITOR_TOKEN,
    )  # fmt: skip
    disputed = [(ln["mti"], ln["movement"], ln["amount_minor"]) for ln in statement.json["lines"]
                if ln["mti"] == "0220"]  # fmt: skip
    assert disputed == [("0220", "credit", 5_000), ("0220", "post", 5_000),
                        ("0220", "credit", 2_000)]  # fmt: skip
    listed = await call(port, "GET", "/v1/disputes?state=won", token=AUDITOR_TOKEN)
    assert [d["dispute_id"] for d in listed.json["disputes"]] == [quiet["dispute_id"]]
    code, output = await run_cli("disputes", "list", "--config", str(config))
    assert code == 0 and [d["state"] for d in json.loads(output)] == ["lost", "won"]

    # what cannot be disputed
    held_url = f"/v1/cards/{card_id}/journal/{hold.journal_id}/dispute"
    refused = await call(port, "POST", held_url, payload={"reason": "fraud"})
    assert refused.status == 422 and "posted" in refused.json["error"]
    # a reader disputing the authorisation a presentment cleared is told where the charge is
    assert "not charged yet: dispute its completion (0220)" in refused.json["error"]
    too_much = await call(port, "POST", f"/v1/cards/{card_id}/journal/{charge.journal_id}/dispute",
                          payload={"reason": "amount", "amount_minor": 9_999_999})  # fmt: skip
    assert too_much.status in (409, 422)  # disputed already, or more than was posted
    missing = await call(port, "POST", f"/v1/cards/{card_id}/journal/999999/dispute",
                         payload={"reason": "fraud"})  # fmt: skip
    assert missing.status == 404
    bad = await call(port, "POST", url, payload={"reason": "bored"})
    assert bad.status == 422
    assert (await call(port, "GET", "/v1/disputes/dsp-none", token=AUDITOR_TOKEN)).status == 404
    # 120 days on, a charge can no longer be charged back
    fresh = await switch.send(purchase(visa, amount=300, t="0200"))
    async with opened_store(store_url) as store:
        [late_charge] = [e for e in await store.journal(JournalQuery(card_id=card_id, limit=1000))
                         if e.stan == fresh["11"]]  # fmt: skip
    async with open_card_service(load_config(config), "test") as service:
        late = CardService(service.store, service.security, clock=lambda: time.time() + 121 * DAY)
        with pytest.raises(InvalidRequest, match="120 days"):
            await late.open_dispute(
                card_id,
                late_charge.journal_id,
                DisputeOpen(reason="fraud", provisional_credit=False),
            )
    audit = await call(port, "GET", f"/v1/audit?subject={dispute['dispute_id']}",
                       token=AUDITOR_TOKEN)  # fmt: skip
    assert [a["action"] for a in audit.json["audit"]] == ["dispute.open", "dispute.resolve"]


class CreditFaults:
    """The provisional credit's 0220, posted through the host's own pipeline, failing once as
    asked: ``refused``: the host answers that it did not post it; ``store_failed``: the store
    fails its write (nothing moved); ``answer_lost``: it is written, then the admin service
    loses the store before it hears so."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.next = ""
        real = dispute_steps.post_presentments

        async def post(presentments, store, pan_index, decide_many, *args):  # noqa: ANN001
            fault, self.next = self.next, ""
            if fault == "refused":
                row = {"line": 0, "outcome": "refused", "response_code": "96"}
                return {"presentments": 1, "outcomes": {"refused": 1}, "rows": [row]}
            if fault == "store_failed":

                async def failing(requests, now):  # noqa: ANN001
                    return [StoreError("the store is unavailable") for _ in requests]

                return await real(presentments, store, pan_index, failing, *args)
            result = await real(presentments, store, pan_index, decide_many, *args)
            if fault == "answer_lost":
                raise StoreError("connection to the store lost")
            return result

        monkeypatch.setattr(dispute_steps, "post_presentments", post)


async def _charged(at, amount: int, url: str):  # noqa: ANN001
    """A posted charge (0200) of ``amount`` on the Visa: its journal entry."""
    answer = await at.switch.send(purchase(at.visa, amount=amount, t="0200"))
    assert answer["39"] == "00"
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(card_id=at.card_id, limit=1000))
    return next(e for e in entries if e.stan == answer["11"] and e.mti == "0200")


async def test_a_dispute_whose_credit_fails_is_not_opened_and_a_retry_credits_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Both the dispute and its provisional credit, or neither: a credit the host refused
    (409) or the store failed on (503) leaves no dispute, and the charge can be disputed
    again; a credit written whose answer was lost leaves none either, and the retry with the
    same Idempotency-Key opens it without crediting twice (its 0220 is the same
    transmission, answered from the journal)."""
    faults = CreditFaults(monkeypatch)
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    charge = await _charged(at, 5_000, store_url)
    url = f"/v1/cards/{at.card_id}/journal/{charge.journal_id}/dispute"
    ledger, available = await balances_of(switch, visa)

    async def disputes() -> list[dict]:
        listed = await call(port, "GET", "/v1/disputes", token=AUDITOR_TOKEN)
        return listed.json["disputes"]

    for fault, status, words in (
        ("refused", 409, "nothing was credited"),
        ("store_failed", 503, "same Idempotency-Key"),
    ):
        faults.next = fault
        failed = await call(port, "POST", url, payload={"reason": "fraud"})
        assert await disputes() == []
        assert failed.status == status, failed
        assert "not opened" in failed.json["error"] and words in failed.json["error"]
        assert await balances_of(switch, visa) == (ledger, available)
    reports = await call(port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    assert reports.json["reports"] == []  # no label without the dispute either

    faults.next = "answer_lost"
    key = {"Idempotency-Key": "dispute-7"}
    lost = await call(port, "POST", url, payload={"reason": "fraud"}, headers=key)
    assert lost.status == 503, lost
    assert "same Idempotency-Key" in lost.json["error"]
    assert await disputes() == []  # not opened (its credit is in the journal: the retry's)
    retried = await call(port, "POST", url, payload={"reason": "fraud"}, headers=key)
    assert retried.status == 200, retried
    assert (retried.json["state"], retried.json["credited_minor"]) == ("open", 5_000)
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)  # once
    again = await call(port, "POST", url, payload={"reason": "fraud"}, headers=key)
    assert again.status == 200 and again.json == retried.json  # the stored answer
    other = await call(port, "POST", url, payload={"reason": "amount"}, headers=key)
    assert other.status == 409 and "different request" in other.json["error"]
    assert [d["dispute_id"] for d in await disputes()] == [retried.json["dispute_id"]]
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)

    # won: the provisional credit becomes final, nothing more is given
    dispute_id = retried.json["dispute_id"]
    won = await call(port, "POST", f"/v1/disputes/{dispute_id}/resolve",
                     payload={"outcome": "won"})  # fmt: skip
    assert won.status == 200 and won.json["credited_minor"] == 5_000
    assert await balances_of(switch, visa) == (ledger + 5_000, available + 5_000)
    audit = await call(port, "GET", f"/v1/audit?subject={dispute_id}", token=AUDITOR_TOKEN)
    assert [a["action"] for a in audit.json["audit"]] == ["dispute.open", "dispute.resolve"]

    # retried without the key and for more: the dispute says what the first try credited
    second = await _charged(at, 8_000, store_url)
    url = f"/v1/cards/{at.card_id}/journal/{second.journal_id}/dispute"
    ledger, available = await balances_of(switch, visa)
    faults.next = "answer_lost"
    lost = await call(port, "POST", url, payload={"reason": "amount", "amount_minor": 3_000})
    assert lost.status == 503, lost
    retried = await call(port, "POST", url, payload={"reason": "amount"})
    assert retried.status == 200, retried
    assert (retried.json["amount_minor"], retried.json["credited_minor"]) == (8_000, 3_000)
    assert await balances_of(switch, visa) == (ledger + 3_000, available + 3_000)
    won = await call(port, "POST", f"/v1/disputes/{retried.json['dispute_id']}/resolve",
                     payload={"outcome": "won"})  # fmt: skip
    assert won.status == 200 and won.json["credited_minor"] == 8_000
    assert await balances_of(switch, visa) == (ledger + 8_000, available + 8_000)


async def test_a_credit_posted_for_a_dispute_never_recorded_is_recorded_by_store_finish(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """A provisional credit written whose dispute was never recorded (the store lost, the
    operator never sends the request again): the money is back with the cardholder and no
    dispute says so. ``authhost store finish`` (and the server, now and then) records the
    dispute with the credit the journal has, once; an opening whose credit was refused is
    dropped, nothing recorded."""
    faults = CreditFaults(monkeypatch)
    at = await visa_at_host(nursery, tmp_path, store_url)
    charge = await _charged(at, 5_000, store_url)
    other = await _charged(at, 2_000, store_url)
    ledger, _ = await balances_of(at.switch, at.visa)
    faults.next = "answer_lost"
    url = f"/v1/cards/{at.card_id}/journal/{charge.journal_id}/dispute"
    lost = await call(at.port, "POST", url, payload={"reason": "fraud", "note": "not me"})
    assert lost.status == 503, lost.json
    faults.next = "refused"
    url = f"/v1/cards/{at.card_id}/journal/{other.journal_id}/dispute"
    refused = await call(at.port, "POST", url, payload={"reason": "amount"})
    assert refused.status == 409, refused.json
    assert (await call(at.port, "GET", "/v1/disputes", token=AUDITOR_TOKEN)).json["disputes"] == []
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 5_000  # credited, no dispute

    config = cli_config(tmp_path, store_url)
    finish = ("store", "finish", "--config", str(config))
    code, output = await run_cli(*finish)
    assert code == 0, output
    assert json.loads(output)["dispute_openings"] == {"recorded": [], "dropped": 0}  # too young
    code, output = await run_cli(*finish, "--older-than", "0")
    assert code == 0, output
    done = json.loads(output)["dispute_openings"]
    assert done["dropped"] == 1  # the refused one: nothing moved
    [recorded] = done["recorded"]
    assert (recorded["journal_id"], recorded["reason"], recorded["credited_minor"]) == (
        charge.journal_id, "fraud", 5_000
    )  # fmt: skip
    code, output = await run_cli(*finish, "--older-than", "0")
    assert json.loads(output)["dispute_openings"] == {"recorded": [], "dropped": 0}

    listed = await call(at.port, "GET", "/v1/disputes", token=AUDITOR_TOKEN)
    assert [d["dispute_id"] for d in listed.json["disputes"]] == [recorded["dispute_id"]]
    reports = await call(at.port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    assert [r["journal_id"] for r in reports.json["reports"]] == [charge.journal_id]
    audit = await call(at.port, "GET", f"/v1/audit?subject={recorded['dispute_id']}",
                       token=AUDITOR_TOKEN)  # fmt: skip
    [entry] = audit.json["audit"]
    assert entry["action"] == "dispute.open"
    assert json.loads(entry["after"])["finished_after_a_failure"] is True
    resolved = await call(at.port, "POST", f"/v1/disputes/{recorded['dispute_id']}/resolve",
                          payload={"outcome": "lost"})  # fmt: skip
    assert resolved.status == 200, resolved.json
    assert (await balances_of(at.switch, at.visa))[0] == ledger  # the credit taken back


async def test_a_dispute_whose_fraud_label_failed_is_labelled_by_store_finish(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """The dispute and its credit were recorded with the opening's entry (one write), then
    the store failed the fraud label (503): ``authhost store finish`` labels the charge, and
    writes no second entry (before, the entry was a write of its own after the dispute's,
    which this failure could cut off)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    charge = await _charged(at, 3_000, store_url)
    failing = [True]
    classes = (SqliteCardStore, RedisCardStore)
    for cls in classes:
        put = cls.put_fraud_report

        async def label_failing_once(self, report, *args, _put=put):  # noqa: ANN001, ANN202
            if failing:
                failing.clear()
                raise StoreUnavailable("the store is unavailable")
            return await _put(self, report, *args)

        monkeypatch.setattr(cls, "put_fraud_report", label_failing_once)
    url = f"/v1/cards/{at.card_id}/journal/{charge.journal_id}/dispute"
    failed = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert failed.status == 503, failed.json
    [dispute] = (await call(at.port, "GET", "/v1/disputes", token=AUDITOR_TOKEN)).json["disputes"]
    audit_url = f"/v1/audit?subject={dispute['dispute_id']}"
    [entry] = (await call(at.port, "GET", audit_url, token=AUDITOR_TOKEN)).json["audit"]
    assert entry["action"] == "dispute.open"
    reports = await call(at.port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    assert reports.json["reports"] == []

    finish = (
        "store",
        "finish",
        "--older-than",
        "0",
        "--config",
        str(cli_config(tmp_path, store_url)),
    )
    code, output = await run_cli(*finish)
    assert code == 0, output
    assert json.loads(output)["dispute_openings"] == {"recorded": [], "dropped": 0}
    assert [e["action"] for e in (await call(at.port, "GET", audit_url,
            token=AUDITOR_TOKEN)).json["audit"]] == ["dispute.open"]  # fmt: skip
    reports = await call(at.port, "GET", "/v1/fraud-reports", token=AUDITOR_TOKEN)
    assert [r["journal_id"] for r in reports.json["reports"]] == [charge.journal_id]
    code, output = await run_cli(*finish)
    assert json.loads(output)["dispute_openings"] == {"recorded": [], "dropped": 0}  # once


async def test_two_operators_opening_one_dispute_at_once_move_its_money_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Two operators open a dispute on the same charge at the same moment, one with a
    provisional credit and one without: one dispute is opened, the other refused (409), and
    the account has moved by what the opened one says it credited."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    for amount in (4_000, 6_000, 7_000):
        charge = await _charged(at, amount, store_url)
        url = f"/v1/cards/{at.card_id}/journal/{charge.journal_id}/dispute"
        ledger, _ = await balances_of(switch, visa)
        replies: list = []

        async def open_one(body: dict, replies: list = replies, url: str = url) -> None:
            replies.append(await call(port, "POST", url, payload=body))

        async with trio.open_nursery() as both:
            both.start_soon(open_one, {"reason": "fraud"})
            both.start_soon(open_one, {"reason": "other", "provisional_credit": False})
        assert sorted(r.status for r in replies) == [200, 409], replies
        [opened] = [r.json for r in replies if r.status == 200]
        assert (await balances_of(switch, visa))[0] == ledger + opened["credited_minor"]


async def test_a_credit_whose_answer_was_lost_is_recorded_by_the_dispute_opened_instead(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    monkeypatch,
):
    """The first try's provisional credit is written but its answer lost (503, no dispute);
    another operator then opens the dispute without asking for a credit. That dispute records
    the credit the cardholder has, so losing it takes the money back (before: the credit
    was left behind, and a won dispute would have paid it a second time)."""
    faults = CreditFaults(monkeypatch)
    at = await visa_at_host(nursery, tmp_path, store_url)
    charge = await _charged(at, 5_000, store_url)
    url = f"/v1/cards/{at.card_id}/journal/{charge.journal_id}/dispute"
    ledger, _ = await balances_of(at.switch, at.visa)
    faults.next = "answer_lost"
    first = {"reason": "fraud"}
    lost = await call(at.port, "POST", url, payload=first, headers={"Idempotency-Key": "k1"})
    assert lost.status == 503, lost.json
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 5_000  # the credit is there
    other = await call(at.port, "POST", url,
                       payload={"reason": "other", "provisional_credit": False})  # fmt: skip
    assert other.status == 200 and other.json["credited_minor"] == 5_000, other.json
    retry = await call(at.port, "POST", url, payload=first, headers={"Idempotency-Key": "k1"})
    assert retry.status == 409, retry.json
    assert (await balances_of(at.switch, at.visa))[0] == ledger + 5_000  # nothing more moved
    dispute_id = other.json["dispute_id"]
    resolved = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/resolve",
                          payload={"outcome": "lost"})  # fmt: skip
    assert resolved.status == 200, resolved.json
    assert (await balances_of(at.switch, at.visa))[0] == ledger  # taken back


async def test_resolutions_of_one_dispute_sent_at_once_resolve_it_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Four operators resolve one dispute at the same moment (won, withdrawn, lost, lost):
    one is answered 200, the others 409 with the reason, one audit entry is written, and the
    stored state and the account's money agree with the one that won. (Before, all four
    answered 200, each was audited, the state was the last write's, and a losing lost could
    take the provisional credit back under a won dispute.)"""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    for amount in (5_000, 6_000, 7_000):
        charge = await _charged(at, amount, store_url)
        ledger, _ = await balances_of(switch, visa)
        url = f"/v1/cards/{at.card_id}/journal/{charge.journal_id}/dispute"
        opened = await call(port, "POST", url, payload={"reason": "fraud"})
        assert opened.status == 200 and opened.json["credited_minor"] == amount, opened
        dispute_id = opened.json["dispute_id"]
        replies: dict[str, list] = {}

        async def resolve(outcome: str, n: int, replies: dict = replies, dispute_id=dispute_id):
            reply = await call(port, "POST", f"/v1/disputes/{dispute_id}/resolve",
                               payload={"outcome": outcome})  # fmt: skip
            replies[f"{outcome}-{n}"] = reply

        async with trio.open_nursery() as together:
            for n, outcome in enumerate(("won", "withdrawn", "lost", "lost")):
                together.start_soon(resolve, outcome, n)
        statuses = sorted(r.status for r in replies.values())
        assert statuses == [200, 409, 409, 409], replies
        [(winner, done)] = [(k, r) for k, r in replies.items() if r.status == 200]
        for reply in replies.values():
            if reply.status == 409:
                assert "dispute" in reply.json["error"] and dispute_id in reply.json["error"]
        outcome = winner.split("-")[0]
        stored = (await call(port, "GET", f"/v1/disputes/{dispute_id}", token=AUDITOR_TOKEN)).json
        assert stored == done.json and (stored["state"], stored["resolving"]) == (outcome, "")
        audit = await call(port, "GET", f"/v1/audit?subject={dispute_id}", token=AUDITOR_TOKEN)
        assert [a["action"] for a in audit.json["audit"]] == ["dispute.open", "dispute.resolve"]
        kept = amount if outcome == "won" else 0
        assert stored["credited_minor"] == kept
        assert (await balances_of(switch, visa))[0] == ledger + kept, (outcome, amount)


async def test_a_resolution_the_store_failed_under_is_finished_only_as_begun(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """The take-back of a lost dispute fails in the store (503): the dispute stays open with
    ``resolving`` lost, a won resolution is refused (409: the money may have moved), and
    lost again finishes it, taking the credit back once."""
    faults = CreditFaults(monkeypatch)
    at = await visa_at_host(nursery, tmp_path, store_url)
    charge = await _charged(at, 5_000, store_url)
    ledger, _ = await balances_of(at.switch, at.visa)
    url = f"/v1/cards/{at.card_id}/journal/{charge.journal_id}/dispute"
    opened = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert opened.status == 200 and opened.json["resolving"] == "", opened
    resolve = f"/v1/disputes/{opened.json['dispute_id']}/resolve"
    faults.next = "answer_lost"  # the take-back is written, its answer lost
    failed = await call(at.port, "POST", resolve, payload={"outcome": "lost"})
    assert failed.status == 503 and "the same way" in failed.json["error"], failed
    stored = await call(at.port, "GET", f"/v1/disputes/{opened.json['dispute_id']}",
                        token=AUDITOR_TOKEN)  # fmt: skip
    assert (stored.json["state"], stored.json["resolving"]) == ("open", "lost"), stored
    other = await call(at.port, "POST", resolve, payload={"outcome": "won"})
    assert other.status == 409 and "being resolved as lost" in other.json["error"], other
    finished = await call(at.port, "POST", resolve, payload={"outcome": "lost"})
    assert finished.status == 200, finished
    assert (finished.json["state"], finished.json["resolving"]) == ("lost", "")
    assert (await balances_of(at.switch, at.visa))[0] == ledger  # taken back, once


async def test_a_reversed_charge_or_a_refund_cannot_be_disputed_for_more_than_it_took(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A posted purchase the acquirer reversed gave the money back already: disputing it
    (and crediting it a second time) is refused; one reversed in part is disputed for what
    it still takes, at most. A refund, a decline and a dispute's own take-back are no
    charge of the cardholder's to dispute."""
    from iso_client import next_stan
    from test_e2e_auth import field_90

    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa, card_id = at.port, at.switch, at.visa, at.card_id
    full = purchase(visa, amount=4_000, t="0200")
    part = purchase(visa, amount=6_000, t="0200")
    refund = purchase(visa, amount=500, t="0200", **{"3": "200000"})
    for fields in (full, part, refund):
        assert (await switch.send(fields))["39"] == "00"
    undo = {**full, "t": "0400", "11": next_stan(), "90": field_90(full)}
    assert (await switch.send(undo))["39"] == "00"
    kept = {
        **part,
        "t": "0400",
        "11": next_stan(),
        "90": field_90(part),
        "95": "000000002500" + "0" * 30,
    }
    assert (await switch.send(kept))["39"] == "00"  # 25.00 of the 60.00 stays charged
    declined = await switch.send(purchase(at.host.cards["lost"], amount=400, t="0200"))
    assert declined["39"] != "00"
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(since=0, limit=1000))
    by_stan = {(e.stan, e.mti): e for e in entries}
    charge, partial, credit = (by_stan[(f["11"], "0200")] for f in (full, part, refund))
    ledger, available = await balances_of(switch, visa)

    def url(entry_id: int, card: str = card_id) -> str:
        return f"/v1/cards/{card}/journal/{entry_id}/dispute"

    refused = await call(port, "POST", url(charge.journal_id), payload={"reason": "fraud"})
    assert refused.status == 422 and "reversed" in refused.json["error"], refused.json
    too_much = await call(port, "POST", url(partial.journal_id),
                          payload={"reason": "amount", "amount_minor": 3_000})  # fmt: skip
    assert too_much.status == 422 and "2500" in too_much.json["error"], too_much.json
    assert await balances_of(switch, visa) == (ledger, available)  # nothing credited
    opened = await call(port, "POST", url(partial.journal_id), payload={"reason": "amount"})
    assert opened.status == 200 and opened.json["amount_minor"] == 2_500, opened.json
    assert await balances_of(switch, visa) == (ledger + 2_500, available + 2_500)
    assert (
        await call(port, "POST", url(credit.journal_id), payload={"reason": "other"})
    ).status == 422
    lost = await call(port, "POST", f"/v1/disputes/{opened.json['dispute_id']}/resolve",
                      payload={"outcome": "lost"})  # fmt: skip
    assert lost.status == 200
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(card_id=card_id, since=0, limit=1000))
    [take_back] = [e for e in entries if e.terminal_id == "DISPUTE" and e.movement == "post"]
    again = await call(port, "POST", url(take_back.journal_id), payload={"reason": "other"})
    assert again.status == 422, again.json  # resolve the dispute's case, not its take-back
    assert await balances_of(switch, visa) == (ledger, available)


async def test_a_dispute_of_a_hold_names_the_entry_that_charged_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A clearing import's line names the authorisation it matched (``journal_id``), and a
    reader disputes that id: the refusal names the 0220 that posted it, the entry to dispute,
    and a hold not charged yet is said to be so (before, both were told to read the journal);
    a hold a switch's completion charged under a code of its own is never called uncharged."""
    at = await visa_at_host(nursery, tmp_path, store_url)

    async def entry_of(answer: dict) -> JournalEntry:
        async with opened_store(store_url) as store:
            entries = await store.journal(JournalQuery(card_id=at.card_id, limit=1000))
        return next(e for e in entries if e.stan == answer["11"])

    held = await at.switch.send(purchase(at.visa, amount=4_000))
    assert held["39"] == "00"
    hold = await entry_of(held)
    url = f"/v1/cards/{at.card_id}/journal/{hold.journal_id}/dispute"
    early = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert early.status == 422
    assert "this hold still holds 4000, not charged yet" in early.json["error"]

    csv = (
        "pan,approval_code,amount_minor,currency,presented_at,arn\n"
        f"{at.visa['pan']},{held['38']},4000,978,{int(time.time())},70000000000000000000425\n"
    )
    cleared = await call(at.port, "POST", "/v1/clearing", payload={"csv": csv})
    assert cleared.status == 200, cleared
    [row] = cleared.json["rows"]
    assert (row["outcome"], row["journal_id"]) == ("matched", hold.journal_id)
    async with opened_store(store_url) as store:
        [posted] = [e for e in await store.journal(JournalQuery(card_id=at.card_id, limit=1000))
                    if e.mti == "0220" and e.movement == "post"]  # fmt: skip
    refused = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert refused.status == 422
    assert (
        f"it was charged by journal entry {posted.journal_id} (0220, 4000)"
        in (refused.json["error"])
    )
    charge_url = f"/v1/cards/{at.card_id}/journal/{posted.journal_id}/dispute"
    opened = await call(at.port, "POST", charge_url, payload={"reason": "fraud"})
    assert opened.status == 200 and opened.json["amount_minor"] == 4_000

    # a pre-authorisation completed by the switch (its 0220 answered under another code)
    preauth = purchase(at.visa, amount=2_000)
    assert (await at.switch.send(preauth))["39"] == "00"
    completion = purchase(at.visa, amount=1_500, t="0220", **{"90": field_90(preauth)})
    assert (await at.switch.send(completion))["39"] == "00"
    completed = await entry_of(preauth)
    url = f"/v1/cards/{at.card_id}/journal/{completed.journal_id}/dispute"
    refused = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert refused.status == 422 and "not charged yet" not in refused.json["error"]
    assert "charged by its completion (0220) or clearing presentment" in refused.json["error"]
