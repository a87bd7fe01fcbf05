"""The running server releases authorisation holds nobody completed or reversed within
auth.hold_days, on its own schedule, on both stores; a fresh hold is left alone."""

from __future__ import annotations

import time

import trio
from iso_client import Switch
from test_e2e_auth import balances_of, purchase, start_host, store_url  # noqa: F401 (fixture)

import authhost.runtime
from authhost.auth.hold_life import EXTENDED_AUTHORISATION
from authhost.config import AuthConfig
from authhost.store import opened_store
from authhost.store.interface import Commit, MoneyMove, Movement
from authhost.store.records import JournalEntry

# the expiry service runs every 50 ms ([auth] hold_expiry_every_s), not every 5 minutes
EVERY_50_MS = AuthConfig(hold_expiry_every_s=0.05)


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
    host = await start_host(nursery, tmp_path, store_url, auth=EVERY_50_MS)
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


class _Clock:
    """runtime's view of the time, moved forward (the hold expiry service reads it)."""

    def __init__(self, ahead_s: float) -> None:
        self.ahead_s = ahead_s

    def time(self) -> float:
        return time.time() + self.ahead_s


async def settles_at(switch: Switch, card: dict, balances: tuple[int, int]) -> None:
    """The card's (ledger, available) reach ``balances`` as the expiry service runs, and more
    rounds of it change nothing."""
    with trio.fail_after(10):
        while await balances_of(switch, card) != balances:
            await trio.sleep(0.05)
    await trio.sleep(0.2)
    assert await balances_of(switch, card) == balances


async def test_a_hotels_hold_outlives_a_shops(nursery, tmp_path, store_url, monkeypatch):  # noqa: F811
    """Two pre-authorisations over TCP, at a supermarket (5411) and a hotel (7011): eight days
    on, the expiry service has released the supermarket's (hold_days 7) and not the hotel's
    (31 days, hold_days_by_mcc); 32 days on, the hotel's goes too."""
    clock = _Clock(0.0)
    monkeypatch.setattr(authhost.runtime, "time", clock)
    host = await start_host(nursery, tmp_path, store_url, auth=EVERY_50_MS)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    ledger, available = await balances_of(switch, card)
    assert (await switch.send(purchase(card, amount=2_000, **{"18": "5411"})))["39"] == "00"
    assert (await switch.send(purchase(card, amount=30_000, **{"18": "7011"})))["39"] == "00"
    assert await balances_of(switch, card) == (ledger, available - 32_000)

    for days, still_held in ((8, 30_000), (32, 0)):
        clock.ahead_s = days * 86_400
        await settles_at(switch, card, (ledger, available - still_held))


async def test_a_fuel_pumps_hold_goes_within_hours(nursery, tmp_path, store_url, monkeypatch):  # noqa: F811
    """With '5542=2h', a fuel pump's pre-authorisation nobody completed is released three hours
    on, while a supermarket's of the same minute stays held."""
    clock = _Clock(0.0)
    monkeypatch.setattr(authhost.runtime, "time", clock)
    auth = AuthConfig(
        hold_days_by_mcc=["5542=2h", *EXTENDED_AUTHORISATION], hold_expiry_every_s=0.05
    )
    host = await start_host(nursery, tmp_path, store_url, auth=auth)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    ledger, available = await balances_of(switch, card)
    assert (await switch.send(purchase(card, amount=15_000, **{"18": "5542"})))["39"] == "00"
    assert (await switch.send(purchase(card, amount=2_000, **{"18": "5411"})))["39"] == "00"
    clock.ahead_s = 3 * 3_600
    await settles_at(switch, card, (ledger, available - 2_000))
