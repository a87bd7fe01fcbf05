"""Audited admin writes racing each other: many at once from one process and from several
processes, of different kinds, on SQLite and a single Redis; then the audit chain verifies and
every write has exactly one entry.

Real components only: SQLite files, a real redis-server, real processes
(``tests/audit_writers.py``). Nothing is timed: each writer does a fixed number of writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import trio
from audit_writers import (
    ENTRIES_PER_ROUND,
    SHARED_CHARGE,
    SHARED_DISPUTE,
    SHARED_OPENINGS,
    dispute,
)
from audited_writes import LIST, REPORTED, list_made_from, report_made_from
from test_store_card_audit import SEAL, chain_ok
from test_store_contract import (  # noqa: F401 - fixtures
    NOW,
    redis_cluster_url,
    seeded,
    store,
)

from authhost.admin.audit_verify import verify_audit_chain
from authhost.cards.model import CardState
from authhost.security.audit_chain import AuditSeal
from authhost.store.records import FraudReport

STORES = pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)
# more writers than ACCOUNT_AUDIT_TRIES (50): each loses at most one try to each of the others
AT_ONCE = 80


@STORES
async def test_many_writes_of_one_list_at_once_from_one_process_all_land(store):  # noqa: F811
    """An operator's tool putting one named list many times at once (each a different
    content): every put lands with its one entry, none refused as the store being busy
    because the process's own other puts changed the list first (the 503 after
    ACCOUNT_AUDIT_TRIES is for another process's writes, as with an account's)."""
    await seeded(store)
    async with trio.open_nursery() as nursery:
        for n in range(AT_ONCE):
            nursery.start_soon(lambda n=n: store.put_list(LIST, [f"v{n}"], list_made_from(), SEAL))
    assert len(await store.get_list(LIST)) == 1
    entries = await store.audit(limit=1000)
    assert [e.action for e in entries] == ["list.put"] * AT_ONCE
    # each entry was made from the list its write replaced: one value, but for the first
    assert sorted(json.loads(e.before)["size"] for e in entries) == [0] + [1] * (AT_ONCE - 1)
    assert (await chain_ok(store))["verified"] == AT_ONCE


@STORES
async def test_many_reports_on_one_entry_at_once_from_one_process_all_land(store):  # noqa: F811
    """Fraud reports on one journal entry, many at once from one process: each lands with
    its one entry, each entry made from the report its write replaced."""
    await seeded(store)
    async with trio.open_nursery() as nursery:
        for n in range(AT_ONCE):
            report = FraudReport(REPORTED, "card", bool(n % 2), f"s{n}", NOW, "")
            nursery.start_soon(store.put_fraud_report, report, report_made_from(), SEAL)
    entries = await store.audit(limit=1000)
    assert [e.action for e in entries] == ["journal.fraud_report"] * AT_ONCE
    replaced = [json.loads(e.before) for e in entries]
    assert replaced[0] is None and all(r is not None for r in replaced[1:])
    assert (await chain_ok(store))["verified"] == AT_ONCE


PROCESSES = 3
ROUNDS = 12  # each process's rounds, all at once: fewer other writes than ACCOUNT_AUDIT_TRIES


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_writes_of_every_kind_from_several_processes_make_one_chain(store):  # noqa: F811
    """Several processes, each with many writes of every kind at once (cards issued,
    reissued and suspended with a wallet event, one list put, accounts created, loads on one
    account, reports on one entry, disputes opened and stepped, steps of one dispute over the
    version each read, openings of one charge's dispute): all land (of the openings one),
    each with exactly its own entries, and ``audit verify``'s walk finds one unbroken chain."""
    await seeded(store, balance=0)
    await store.open_dispute(dispute(SHARED_DISPUTE, SHARED_CHARGE + 1))  # the seeding's: no entry
    key = os.urandom(32)
    url, prefix = store.reopen.args[0], store.reopen.keywords.get("prefix", "authhost")
    here = Path(__file__).parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]),
    }

    def run_all() -> list[subprocess.CompletedProcess[bytes]]:
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(here / "audit_writers.py"),
                    url,
                    prefix,
                    f"w{w}",
                    str(ROUNDS),
                    key.hex(),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )  # fmt: skip
            for w in range(PROCESSES)
        ]
        done = []
        for proc in writers:
            out, err = proc.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done

    for done in await trio.to_thread.run_sync(run_all):
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    writes = PROCESSES * ROUNDS
    entries = await store.audit(limit=100_000)
    assert len(entries) == writes * ENTRIES_PER_ROUND + SHARED_OPENINGS
    by_subject = Counter((e.subject, e.action) for e in entries)
    for w in range(PROCESSES):
        for n in range(ROUNDS):
            tag = f"w{w}-{n}"
            for action in ("card.issue", "card.reissue", "card.suspend", "card.token_suspended"):
                assert by_subject[(f"c-{tag}", action)] == 1, (tag, action)
            assert by_subject[(f"r-{tag}", "card.issue")] == 1
            assert by_subject[(f"a-{tag}", "account.create")] == 1
            assert await store.get_account(f"a-{tag}") is not None
            assert (await store.get_card(f"c-{tag}")).state is CardState.SUSPENDED
            assert (await store.find_card(f"idx-r-{tag}")).card_id == f"r-{tag}"
            for action in ("dispute.open", "dispute.chargeback", "dispute.resolve"):
                assert by_subject[(f"dsp-{tag}", action)] == 1, (tag, action)
            assert (await store.get_dispute(f"dsp-{tag}")).state == "won"
            assert by_subject[(tag, "dispute.note")] == 1, tag
    # every step of the shared dispute written, each over the one before, with its one entry
    shared = await store.get_dispute(SHARED_DISPUTE)
    assert shared.version == writes and len(shared.note.split(";")) == writes + 1
    [opened] = [e for e in entries if e.subject.startswith("dsp-open-")]
    recorded = await store.dispute_of_entry(SHARED_CHARGE)
    assert (opened.action, opened.subject) == ("dispute.open", recorded.dispute_id)
    assert [d.dispute_id for d in await store.disputes("open", 1000)] == sorted(
        [SHARED_DISPUTE, recorded.dispute_id]
    )
    assert by_subject[(LIST, "list.put")] == writes
    assert by_subject[("acc-1", "account.funds")] == writes
    assert by_subject[("card", "journal.fraud_report")] == writes
    assert (await store.get_account("acc-1")).balance == writes
    verified = await verify_audit_chain(store, AuditSeal(key), "")
    assert verified["ok"] and verified["verified"] == len(entries), verified
    if store.info().backend == "redis-cluster":  # entries made from what was read before
        return  # the write, another process's write between (README, Known limitations)
    # one list put replaced the empty list, each other one a single value
    sizes = [json.loads(e.before)["size"] for e in entries if e.action == "list.put"]
    assert sizes == [0] + [1] * (writes - 1)
    reports = [json.loads(e.before) for e in entries if e.action == "journal.fraud_report"]
    assert reports[0] is None and None not in reports[1:]
