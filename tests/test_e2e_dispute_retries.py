"""Dispute steps sent again, over a running host on both stores: a resolution (or the
network's arbitration ruling, which is one) after the store failed under it takes back the
acquirer's reversals that came after its plan each once, however many came between the tries;
a chargeback a partial reversal lowered is the one filed when sent again as filed; and the
chargebacks file recalls what a charge reversed whole before its resolution leaves the issuer
holding twice on the day the dispute was resolved; a ruling written on Redis Cluster without
its entry names the retry that audits it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from test_admin_support import AUDITOR_TOKEN, call
from test_dispute_stage_amounts import _step
from test_e2e_auth import balances_of, store_url  # noqa: F401 - fixture
from test_e2e_dispute_reversals import _disputed, _host_that_waits, _reversal
from test_e2e_dispute_stages import _audit_actions, _dispute
from test_store_contract import redis_cluster_url  # noqa: F401 - a fixture

from authhost.store.interface import StoreError
from authhost.store.redis import RedisCardStore
from authhost.store.sqlite import SqliteCardStore

DISPUTED, REPRESENTED, PRE_ARBITRATED = 5_000, 4_000, 3_000


async def _in_arbitration(at: Any, store_url: str) -> tuple[dict[str, Any], str]:  # noqa: F811
    """A charge of 5,000 disputed (credited), charged back, represented for 4,000,
    pre-arbitrated for 3,000, declined and taken to arbitration: its fields, the dispute's id."""
    fields, opened = await _disputed(at, store_url, DISPUTED)
    dispute_id = opened["dispute_id"]
    for path, body in (
        ("chargeback", None), ("represented", {"reference": "REP-7", "amount_minor": REPRESENTED}),
        ("pre-arbitration", {"amount_minor": PRE_ARBITRATED}),
        ("pre-arbitration-answer", {"answer": "declined"}), ("arbitration", None),
    ):  # fmt: skip
        await _step(at.port, dispute_id, path, body)
    return fields, dispute_id


async def test_reversals_between_a_failed_ruling_and_its_retry_are_taken_back_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Ruled won: the cardholder keeps the chargeback less the 1,000 conceded (4,000). A
    reversal of 1,500 comes after the ruling's claim (its plan counted none), the final write
    fails (503); another of 1,000 comes before the ruling is sent again. The charge then takes
    2,500: the cardholder ends with 2,500 of credit, each reversal's part taken back once (not
    the first one's again with the second's)."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    fields, dispute_id = await _in_arbitration(at, store_url)
    ledger, _ = await balances_of(at.switch, at.visa)  # charged 5,000, credited 5,000

    sent: list[str] = []
    for cls in (SqliteCardStore, RedisCardStore):
        update = cls.update_dispute

        async def held(self: Any, dispute: Any, *args: Any, _u: Any = update) -> None:
            if dispute.state != "open" and "final" not in sent:  # the ruling's last write
                sent.append("final")
                raise StoreError("connection to the store lost")
            await _u(self, dispute, *args)
            if dispute.resolving and not sent:  # claimed: a reversal lands after its plan
                sent.append("first")
                reply = await at.switch.send(_reversal(fields, amount_left=3_500))
                assert reply["39"] == "00"

        monkeypatch.setattr(cls, "update_dispute", held)

    url = f"/v1/disputes/{dispute_id}/arbitration-ruling"
    first = await call(at.port, "POST", url, payload={"ruling": "won"})
    assert first.status == 503 and sent == ["first", "final"], first
    assert (await at.switch.send(_reversal(fields, amount_left=2_500)))["39"] == "00"
    ruled = await call(at.port, "POST", url, payload={"ruling": "won"})
    assert ruled.status == 200 and ruled.json["state"] == "won", ruled
    assert ruled.json["credited_minor"] == 2_500
    # given back: 1,000 conceded, 1,500 for the first reversal and 1,000 for the second; the
    # reversals released 2,500: the ledger is where it was, the cardholder paid nothing
    assert (await balances_of(at.switch, at.visa))[0] == ledger
    assert (await _dispute(at.port, dispute_id))["credited_minor"] == 2_500
    audit = await call(at.port, "GET", f"/v1/audit?subject={dispute_id}", token=AUDITOR_TOKEN)
    actions = [entry["action"] for entry in audit.json["audit"]]
    assert actions.count("dispute.arbitration_ruling") == 1


async def test_a_whole_reversal_the_resolution_counted_is_recalled_on_its_day(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """The charge reversed whole while its dispute is open and charged back, resolved won
    before any reconcile: the credit is taken back whole, and the chargeback, standing, is
    recalled by the resolution itself (``recalls``), so the file of a period that begins
    after the reversal has the line, and the whole period's has it once."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    fields, opened = await _disputed(at, store_url, DISPUTED)
    dispute_id = opened["dispute_id"]
    await _step(at.port, dispute_id, "chargeback")
    since = time.time()
    assert (await at.switch.send(_reversal(fields)))["39"] == "00"
    after_reversal = time.time()
    won = await _step(at.port, dispute_id, "resolve", {"outcome": "won"})
    assert (won["state"], won["credited_minor"]) == ("won", 0)
    assert [r["amount_minor"] for r in won["recalls"]] == [DISPUTED]

    def recalls(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [(r["dispute_id"], r["amount_minor"]) for r in rows if r["action"] == "recall"]

    for start in (after_reversal, since - 1):
        url = f"/v1/disputes/chargebacks?since={start}"
        listed = await call(at.port, "GET", url, token=AUDITOR_TOKEN)
        assert listed.status == 200, listed
        assert recalls(listed.json["chargebacks"]) == [(dispute_id, DISPUTED)], start


async def test_a_chargeback_a_partial_reversal_lowered_is_answered_as_filed_when_sent_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Charged back for 4,000 of 5,000, then reversed to 2,500 and reconciled (the chargeback
    lowered to 2,500): the chargeback sent again as filed, for 4,000, is answered as it
    stands, nothing written or audited again; for another amount it is refused (409)."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    fields, opened = await _disputed(at, store_url, DISPUTED)
    dispute_id = opened["dispute_id"]
    filed = {"reason_code": "13.1", "amount_minor": 4_000}
    await _step(at.port, dispute_id, "chargeback", filed)
    assert (await at.switch.send(_reversal(fields, amount_left=2_500)))["39"] == "00"
    lowered = await _step(at.port, dispute_id, "reconcile")
    assert (lowered["chargeback_minor"], lowered["amounts"]["recalled_minor"]) == (2_500, 1_500)
    audit_url = f"/v1/audit?subject={dispute_id}"
    audited = (await call(at.port, "GET", audit_url, token=AUDITOR_TOKEN)).json["audit"]

    url = f"/v1/disputes/{dispute_id}/chargeback"
    again = await call(at.port, "POST", url, payload=filed)
    assert again.status == 200 and again.json == await _dispute(at.port, dispute_id), again
    assert again.json["chargeback_minor"] == 2_500
    other = await call(at.port, "POST", url, payload={**filed, "amount_minor": 3_000})
    assert other.status == 409 and "13.1, 4000 on" in other.json["error"], other
    assert (await call(at.port, "GET", audit_url, token=AUDITOR_TOKEN)).json["audit"] == audited


def _append_fails_once(monkeypatch: Any, action: str) -> list[str]:
    """The cluster store's append of the first ``action`` entry fails (after the dispute's
    write, as a lost connection would): the actions failed, filled in when it happens."""
    append = RedisCardStore.append_audit
    failed: list[str] = []

    async def fails_once(self: Any, entry: Any, *args: Any) -> None:
        if entry.action == action and not failed:
            failed.append(entry.action)
            raise StoreError("connection to the store lost")
        await append(self, entry, *args)

    monkeypatch.setattr(RedisCardStore, "append_audit", fails_once)
    return failed


async def test_a_ruling_the_cluster_wrote_without_its_entry_says_to_send_it_again(
    nursery,
    tmp_path,
    redis_cluster_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """On Redis Cluster the ruling's entry follows its final write; that append failing is a
    503 for a dispute already won. It names the retry that audits it, the ruling sent again
    (a resolution of a closed dispute is refused and writes no entry), which answers it as it
    stands with its one entry."""
    monkeypatch.chdir(tmp_path)
    url = f"{redis_cluster_url}?prefix=e2e-{uuid.uuid4().hex[:8]}"
    at = await _host_that_waits((nursery, tmp_path, url), monkeypatch)
    _, dispute_id = await _in_arbitration(at, url)
    failed = _append_fails_once(monkeypatch, "dispute.arbitration_ruling")
    ruling = f"/v1/disputes/{dispute_id}/arbitration-ruling"
    first = await call(at.port, "POST", ruling, payload={"ruling": "lost"})
    assert first.status == 503 and failed, first
    assert f"disputes arbitration-ruling {dispute_id} --ruling lost" in first.json["error"]
    assert (await _dispute(at.port, dispute_id))["state"] == "lost"
    again = await call(at.port, "POST", ruling, payload={"ruling": "lost"})
    assert again.status == 200 and again.json["state"] == "lost", again
    assert (await _audit_actions(at.port, dispute_id)).count("dispute.arbitration_ruling") == 1


async def test_a_resolution_the_cluster_wrote_without_its_entry_is_audited_when_sent_again(
    nursery,
    tmp_path,
    redis_cluster_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """A plain resolution's entry follows its final write on Redis Cluster too; that append
    failing is a 503 for a dispute already closed, and the resolution sent again the same
    way answers it as it stands and writes its one entry (it was refused 409: never
    audited). Another outcome is still refused."""
    monkeypatch.chdir(tmp_path)
    url = f"{redis_cluster_url}?prefix=e2e-{uuid.uuid4().hex[:8]}"
    at = await _host_that_waits((nursery, tmp_path, url), monkeypatch)
    _, opened = await _disputed(at, url, DISPUTED)
    dispute_id = opened["dispute_id"]
    failed = _append_fails_once(monkeypatch, "dispute.resolve")
    resolve = f"/v1/disputes/{dispute_id}/resolve"
    first = await call(at.port, "POST", resolve, payload={"outcome": "won"})
    assert first.status == 503 and failed, first
    assert (await _dispute(at.port, dispute_id))["state"] == "won"
    assert "dispute.resolve" not in await _audit_actions(at.port, dispute_id)
    money = await balances_of(at.switch, at.visa)
    again = await call(at.port, "POST", resolve, payload={"outcome": "won"})
    assert again.status == 200 and again.json["state"] == "won", again
    assert (await _audit_actions(at.port, dispute_id)).count("dispute.resolve") == 1
    assert await balances_of(at.switch, at.visa) == money
    other = await call(at.port, "POST", resolve, payload={"outcome": "lost"})
    assert other.status == 409 and "won already" in other.json["error"], other


async def test_a_resolution_sent_again_once_written_is_answered_as_it_stands(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """On SQLite and Redis the entry is in the final write: the same resolution again moves
    nothing, writes no second entry and answers the dispute as it stands."""
    monkeypatch.chdir(tmp_path)
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    _, opened = await _disputed(at, store_url, DISPUTED)
    dispute_id = opened["dispute_id"]
    resolve = f"/v1/disputes/{dispute_id}/resolve"
    first = await call(at.port, "POST", resolve, payload={"outcome": "lost"})
    assert first.status == 200, first
    money = await balances_of(at.switch, at.visa)
    again = await call(at.port, "POST", resolve, payload={"outcome": "lost"})
    assert again.status == 200 and again.json == first.json, again
    assert (await _audit_actions(at.port, dispute_id)).count("dispute.resolve") == 1
    assert await balances_of(at.switch, at.visa) == money
