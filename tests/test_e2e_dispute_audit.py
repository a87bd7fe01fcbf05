"""A dispute's every step is written with its audit entry (PCI DSS 10: no change without its
record), over a running host on both stores: an entry appended after its write fails the test
(on SQLite and a single Redis the entry is in the write: the dispute's transaction, its
script), and each step still has its one entry and the chain verifies."""

from __future__ import annotations

from typing import Any

import pytest
from test_admin_support import AUDITOR_TOKEN, call
from test_dispute_stage_amounts import _step
from test_e2e_auth import store_url  # noqa: F401 - fixture
from test_e2e_dispute_reversals import _disputed, _host_that_waits, _reversal

from authhost.store.records import AuditEntry
from authhost.store.redis import RedisCardStore
from authhost.store.sqlite import SqliteCardStore


class AppendedAfter(Exception):
    """A dispute's entry appended after its write: the two writes this test rules out."""


@pytest.fixture
def no_dispute_entry_after_its_write(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (SqliteCardStore, RedisCardStore):
        append = cls.append_audit

        async def refused(self: Any, entry: AuditEntry, seal: Any = None, _a: Any = append) -> None:
            if entry.action.startswith("dispute."):
                raise AppendedAfter(entry.action)
            await _a(self, entry, seal)

        monkeypatch.setattr(cls, "append_audit", refused)


async def _actions(at: Any, dispute_id: str) -> list[str]:
    audit = await call(at.port, "GET", f"/v1/audit?subject={dispute_id}", token=AUDITOR_TOKEN)
    return [e["action"] for e in audit.json["audit"]]


async def test_every_dispute_step_is_written_with_its_entry(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
    no_dispute_entry_after_its_write,
):
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    _, reversed_, first, second = await _disputed(at, store_url, 5_000, 3_000)
    dispute_id = first["dispute_id"]

    async def step(path: str, **body: Any) -> dict[str, Any]:
        done = await call(at.port, "POST", f"/v1/disputes/{dispute_id}/{path}", payload=body)
        assert done.status == 200, done
        return done.json

    await step("chargeback")
    lines = f"dispute_id,reference,amount_minor\n{dispute_id},REP-1,2000\n"
    imported = await call(at.port, "POST", "/v1/disputes/representments", payload={"csv": lines})
    assert imported.status == 200 and imported.json["recorded"] == 1, imported
    await step("pre-arbitration")
    assert (await step("resolve", outcome="won"))["state"] == "won"

    assert (await at.switch.send(_reversal(reversed_, amount_left=1_000)))["39"] == "00"
    done = await call(at.port, "POST", f"/v1/disputes/{second['dispute_id']}/reconcile")
    assert done.status == 200 and done.json["amount_minor"] == 1_000, done

    assert await _actions(at, dispute_id) == [
        "dispute.open", "dispute.chargeback", "dispute.represented",
        "dispute.pre_arbitration", "dispute.resolve",
    ]  # fmt: skip
    assert await _actions(at, second["dispute_id"]) == ["dispute.open", "dispute.reconcile"]
    verified = await call(at.port, "GET", "/v1/audit/verify", token=AUDITOR_TOKEN)
    assert verified.status == 200 and verified.json["ok"], verified


async def test_the_answer_arbitration_and_ruling_are_written_with_their_entries(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
    no_dispute_entry_after_its_write,
):
    """The acquirer's answer, the arbitration and the network's ruling (a resolution's final
    write) each with its one entry in the write, the chain verified."""
    at = await _host_that_waits((nursery, tmp_path, store_url), monkeypatch)
    _, _, first, _ = await _disputed(at, store_url, 5_000, 3_000)
    dispute_id = first["dispute_id"]
    for path, body in (
        ("chargeback", None), ("represented", {"reference": "REP-2", "amount_minor": 2_000}),
        ("pre-arbitration", None), ("pre-arbitration-answer", {"answer": "declined"}),
        ("arbitration", None),
    ):  # fmt: skip
        await _step(at.port, dispute_id, path, body)
    ruled = await _step(at.port, dispute_id, "arbitration-ruling", {"ruling": "won"})
    assert ruled["state"] == "won"
    assert await _actions(at, dispute_id) == [
        "dispute.open", "dispute.chargeback", "dispute.represented",
        "dispute.pre_arbitration", "dispute.pre_arbitration_answer", "dispute.arbitration",
        "dispute.arbitration_ruling",
    ]  # fmt: skip
    verified = await call(at.port, "GET", "/v1/audit/verify", token=AUDITOR_TOKEN)
    assert verified.status == 200 and verified.json["ok"], verified
