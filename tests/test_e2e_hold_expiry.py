"""The running server releases authorisation holds nobody completed or reversed within
auth.hold_days, on its own schedule, on both stores; a fresh hold is left alone."""

from __future__ import annotations

import time

import trio
from test_e2e_auth import start_host, store_url  # noqa: F401 (fixture)

import authhost.runtime
from authhost.store import opened_store
from authhost.store.interface import Commit, MoneyMove, Movement
from authhost.store.records import JournalEntry


def hold_commit(card, account_id: str, ts: float, amount: int, n: int) -> Commit:
    entry = JournalEntry(
        ts=ts, mti="0100", message_class="authorisation", response_code="00",
        card_id=card.card_id, pan_masked=card.masked_pan, pan_index=card.pan_index,
        account_id=account_id, amount_minor=amount, currency="978", approval_code="E00001",
        stan=f"{n:06d}", dedupe_key=f"expiry-{n}-{ts}", match_key=f"expiry-match-{n}-{ts}",
    )  # fmt: skip
    return Commit(journal=entry, movement=Movement(account_id, MoneyMove.HOLD, amount),
                  card_id=card.card_id)  # fmt: skip


async def test_the_server_expires_old_holds_by_itself(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setattr(authhost.runtime, "HOLD_EXPIRY_INTERVAL_S", 0.05)
    host = await start_host(nursery, tmp_path, store_url)
    async with opened_store(store_url) as store:
        accounts = {a.account_id: a for a in await store.list_accounts()}
        account = accounts["restricted-acc"]
        card = (await store.list_cards(account_id=account.account_id))[0]
        days = host.config.auth.hold_days
        now = time.time()
        await store.commit(hold_commit(card, account.account_id, now - (days + 1) * 86400, 700, 1))
        await store.commit(hold_commit(card, account.account_id, now - 60, 300, 2))
        assert (await store.get_account(account.account_id)).holds == account.holds + 1000
        with trio.fail_after(10):
            while (await store.get_account(account.account_id)).holds != account.holds + 300:
                await trio.sleep(0.05)  # the old hold goes; the fresh one stays
        await trio.sleep(0.2)  # a few more rounds of the task change nothing
        assert (await store.get_account(account.account_id)).holds == account.holds + 300
