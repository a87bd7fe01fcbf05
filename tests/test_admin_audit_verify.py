"""The audit chain's walk on a real SQLite store, for the tampering the end-to-end tests do
not make: a chain value edited, an entry slipped in without one, several breaks at once, and
the audit key itself (one per master key, never shown)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from authhost.admin.audit_verify import verify_audit_chain
from authhost.security.audit_chain import AuditSeal
from authhost.security.keystore import KeyStore
from authhost.store import opened_store
from authhost.store.records import AuditEntry

SEAL = AuditSeal(os.urandom(32))


async def _log(path: Path, count: int) -> str:
    url = f"sqlite:///{path}"
    async with opened_store(url) as store:
        for n in range(count):
            entry = AuditEntry(1_800_000_000.0 + n, "op", "card.suspend", f"crd_{n}", "", "{}")
            await store.append_audit(entry, SEAL)
    return url


def _sql(path: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(sql, args)


async def _verify(url: str, seal: AuditSeal = SEAL, head: str = "") -> dict:
    async with opened_store(url) as store:
        return await verify_audit_chain(store, seal, head)


async def test_an_edited_chain_value_names_its_own_entry(tmp_path):
    url = await _log(tmp_path / "a.db", 6)
    _sql(tmp_path / "a.db", "UPDATE audit SET chain = ? WHERE audit_id = 3", "ab" * 32)
    result = await _verify(url)
    assert not result["ok"] and result["break_count"] == 1, result
    assert result["breaks"][0]["audit_id"] == 3 and result["breaks"][0]["problem"] == "changed"
    assert "chain value" in result["breaks"][0]["detail"]


async def test_an_entry_without_a_chain_value_after_it_began_is_unsealed(tmp_path):
    url = await _log(tmp_path / "b.db", 3)
    async with opened_store(url) as store:  # written by something without the audit key
        await store.append_audit(AuditEntry(1_800_000_100.0, "op", "card.resume", "crd_x"))
    result = await _verify(url)
    assert [(b["audit_id"], b["problem"]) for b in result["breaks"]] == [(4, "unsealed")]


async def test_two_changes_are_both_named_and_another_key_is_a_mismatch(tmp_path):
    url = await _log(tmp_path / "c.db", 8)
    for audit_id in (2, 6):
        _sql(tmp_path / "c.db", "UPDATE audit SET subject = 'x' WHERE audit_id = ?", audit_id)
    result = await _verify(url)
    assert [(b["audit_id"], b["problem"]) for b in result["breaks"]] == [
        (2, "changed"),
        (6, "changed"),
    ], result
    assert result["verified"] == 6  # every other link holds

    other = await _verify(url, AuditSeal(os.urandom(32)))
    assert other["key_mismatch"] and not other["ok"] and other["breaks"] == [], other
    elsewhere = await _verify(url, head="cd" * 32)  # a head this log never had
    assert elsewhere["error"].startswith("no entry has the expected head"), elsewhere


def test_the_audit_key_is_the_master_keys_own_and_never_shown(tmp_path):
    master, other = os.urandom(32), os.urandom(32)
    store = KeyStore.create(tmp_path / "keys.json", master)
    again = KeyStore.create(tmp_path / "again.json", master)
    elsewhere = KeyStore.create(tmp_path / "elsewhere.json", other)
    fields = (1.0, "op", "card.issue", "crd_1", "", "{}")
    value = store.audit_seal().seal("", fields)
    assert again.audit_seal().seal("", fields) == value  # every process under one master key
    assert elsewhere.audit_seal().seal("", fields) != value
    assert store.audit_seal().seal("", (*fields[:-1], '{"x":1}')) != value
    assert master.hex() not in repr(store.audit_seal()) and "hidden" in repr(store.audit_seal())
