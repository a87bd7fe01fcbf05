"""No clear PAN anywhere a store writes: the SQLite file (and its WAL), Redis keys and values."""

from __future__ import annotations

import secrets

import pytest
from test_store_contract import DATA_KEY, NOW, PRODUCT, entry, make_card

from authhost.cards.model import Account, CardKind, CardState
from authhost.security.pan_protection import seal_pan
from authhost.store import open_store
from authhost.store.interface import Commit, MoneyMove, Movement, SnapshotQuery
from authhost.store.records import AuditEntry


async def fill(store) -> list[str]:
    """Cards, commits, a renewal and an audit entry; returns the clear PANs used."""
    await store.put_product(PRODUCT)
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=10**6))
    pans = []
    for n in range(5):
        card, pan, blob = make_card(state=CardState.ACTIVE)
        pans.append(pan)
        await store.create_card(card, blob)
        commit = Commit(
            journal=entry(card, n, 100),
            movement=Movement("acc-1", MoneyMove.HOLD, 100),
            card_id=card.card_id,
        )
        await store.commit(commit)
        await store.snapshot(SnapshotQuery(card.pan_index, NOW + 10))
        await store.append_audit(AuditEntry(NOW, "op", "card.issue", card.card_id, "{}", "{}"))
    from authhost.cards import lifecycle

    old, new = lifecycle.renew(card, now=NOW, validity_months=36, new_card_id="crd_renewed")
    await store.replace_card(old, new, seal_pan(DATA_KEY, 1, pan, new.card_id))
    return pans


def assert_no_pan(blob: bytes, pans: list[str]) -> None:
    for pan in pans:
        assert pan.encode() not in blob, "clear PAN found"
        assert pan[6:].encode() not in blob, "PAN digits after the BIN found"


async def test_sqlite_file_holds_no_clear_pan(tmp_path):
    path = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        pans = await fill(store)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("cards.db")]
        assert any(p.name.endswith("-wal") for p in files)  # WAL mode, and scanned too
        for file in files:
            assert_no_pan(file.read_bytes(), pans)
    finally:
        await store.close()
    assert_no_pan(path.read_bytes(), pans)  # after the checkpoint at close


async def test_redis_keys_and_values_hold_no_clear_pan(redis_url):
    store = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        pans = await fill(store)
        client = store.client
        dump = bytearray()
        count = 0
        async for key in client.scan_iter(match=f"{store.prefix}:*"):
            count += 1
            dump += key
            kind = (await client.type(key)).decode().lower()
            if kind == "string":
                dump += await client.get(key)
            elif kind == "hash":
                for field, value in (await client.hgetall(key)).items():
                    dump += field + value
            elif kind == "zset":
                for member in await client.zrange(key, 0, -1):
                    dump += member
            elif kind == "set":
                for member in await client.smembers(key):
                    dump += member
            elif kind == "list":
                for member in await client.lrange(key, 0, -1):
                    dump += member
            else:
                pytest.fail(f"unexpected key type {kind} for {key!r}")
        assert count > 20
        assert_no_pan(bytes(dump), pans)
    finally:
        await store.drop_all()
        await store.close()
