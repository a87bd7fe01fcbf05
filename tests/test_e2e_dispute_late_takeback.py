"""Taking back what a reversal after a dispute's resolution paid twice (``disputes reconcile
ID`` of a dispute resolved won or lost), over a running host: on Redis Cluster, whose audit
entry follows the write, a take-back whose entry failed is audited by the retry the 503 names;
and a dispute an older authhost resolved under older rules (won keeping more than the stages
leave it today) shows no excess and takes nothing back until a reversal comes, and then no
more than that reversal gave back."""

from __future__ import annotations

import uuid
from dataclasses import replace

from test_admin_support import call
from test_dispute_stage_amounts import _step
from test_e2e_auth import balances_of, store_url  # noqa: F401 - fixture
from test_e2e_dispute_retries import _append_fails_once
from test_e2e_dispute_reversals import _disputed, _host_that_waits, _reversal
from test_e2e_dispute_stages import _audit_actions, _dispute
from test_store_contract import redis_cluster_url  # noqa: F401 - a fixture

from authhost.store import opened_store

DISPUTED = 5_000


async def test_a_late_take_back_the_cluster_wrote_without_its_entry_is_audited_when_sent_again(
    nursery,
    tmp_path,
    redis_cluster_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """Won for 5,000, then 2,000 of the charge reversed: the take-back's entry failing after
    its write is a 503 that says to reconcile it again; that retry moves nothing and writes
    the one ``dispute.reconcile`` entry (it answered 200 and never wrote it)."""
    monkeypatch.chdir(tmp_path)
    url = f"{redis_cluster_url}?prefix=e2e-{uuid.uuid4().hex[:8]}"
    at = await _host_that_waits((nursery, tmp_path, url), monkeypatch)
    fields, opened = await _disputed(at, url, DISPUTED)
    dispute_id = opened["dispute_id"]
    await _step(at.port, dispute_id, "resolve", {"outcome": "won"})
    assert (await at.switch.send(_reversal(fields, amount_left=3_000)))["39"] == "00"
    failed = _append_fails_once(monkeypatch, "dispute.reconcile")
    reconcile = f"/v1/disputes/{dispute_id}/reconcile"
    first = await call(at.port, "POST", reconcile)
    assert first.status == 503 and failed, first
    assert f"disputes reconcile {dispute_id}" in first.json["error"]
    assert (await _dispute(at.port, dispute_id))["late_taken_back_minor"] == 2_000
    assert "dispute.reconcile" not in await _audit_actions(at.port, dispute_id)
    money = await balances_of(at.switch, at.visa)
    again = await call(at.port, "POST", reconcile)
    assert again.status == 200 and again.json["late_taken_back_minor"] == 2_000, again
    assert (await _audit_actions(at.port, dispute_id)).count("dispute.reconcile") == 1
    assert await balances_of(at.switch, at.visa) == money
    third = await call(at.port, "POST", reconcile)
    assert third.status == 200, third
    assert (await _audit_actions(at.port, dispute_id)).count("dispute.reconcile") == 1


async def test_a_dispute_won_under_older_rules_takes_back_only_what_a_reversal_gave(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    """An authhost before the stages' amounts resolved a dispute charged back for 3,000 of
    its 5,000 won keeping all 5,000 (today's rules keep the 3,000 charged back). No reversal
    came: the cardholder holds nothing twice, so it shows none and a reconcile writes
    nothing. Then the acquirer reverses 1,000: the cardholder holds those 1,000 twice, and
    only those are taken back (not the 2,000 today's rules would not have given)."""
    monkeypatch.chdir(tmp_path)
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    fields, opened = await _disputed(at, store_url, DISPUTED)
    dispute_id = opened["dispute_id"]
    await _step(at.port, dispute_id, "chargeback", {"amount_minor": 3_000})
    async with opened_store(store_url) as store:
        stored = await store.get_dispute(dispute_id)
        assert stored is not None and stored.credited_minor == DISPUTED
        old = replace(stored, state="won", closed_at=stored.charged_back_at + 1,
                      version=stored.version + 1)  # fmt: skip
        await store.update_dispute(old, expected_version=stored.version)
    shown = await _dispute(at.port, dispute_id)
    assert "late_reversals" not in shown, shown["late_reversals"]
    actions = await _audit_actions(at.port, dispute_id)
    done = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/reconcile")
    assert done.status == 200 and done.json["late_taken_back_minor"] == 0, done
    assert await _audit_actions(at.port, dispute_id) == actions  # nothing written
    assert await _dispute(at.port, dispute_id) == shown

    held = await balances_of(at.switch, at.visa)
    assert (await at.switch.send(_reversal(fields, amount_left=4_000)))["39"] == "00"
    late = (await _dispute(at.port, dispute_id))["late_reversals"]
    assert (late["cardholder_excess_minor"], late["recalls"]) == (1_000, [])
    done = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/reconcile")
    assert done.status == 200, done
    assert (done.json["late_taken_back_minor"], done.json["credited_minor"]) == (1_000, 4_000)
    assert await balances_of(at.switch, at.visa) == held  # the reversal's 1,000, taken back
    assert (await _audit_actions(at.port, dispute_id)).count("dispute.reconcile") == 1
