"""A statement of a period the journal's retention has cut into (``journal prune``): its
card lines are gone, so the balances walked back from now would be off by what they moved,
with nothing said. It is refused, naming the cut; an account opened after the cut is whole.
On both stores (real SQLite file, real redis-server)."""

from __future__ import annotations

import pytest
from test_admin_support import demo_security
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.admin import requests as rq
from authhost.admin.errors import InvalidRequest
from authhost.admin.service import CardService
from authhost.store import opened_store
from authhost.store.interface import Commit, MoneyMove, Movement
from authhost.store.records import JournalEntry

DAY = 86_400.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


async def _post(store, account_id: str, ts: float, amount: int, stan: str) -> None:
    entry = JournalEntry(
        ts=ts, mti="0200", response_code="00", message_class="financial", stan=stan,
        account_id=account_id, amount_minor=amount, currency="978", movement="post",
    )  # fmt: skip
    await store.commit(
        Commit(journal=entry, movement=Movement(account_id, MoneyMove.POST, amount, False))
    )


async def test_a_statement_before_the_journal_retention_cut_is_refused_not_wrong(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    now = [START]
    async with opened_store(store_url) as store:
        service = CardService(store, demo_security(tmp_path), "test", clock=lambda: now[0])
        await service.create_account(rq.NewAccount(account_id="acc-ret", balance=10_000))
        await _post(store, "acc-ret", START + DAY, 2_000, "000001")
        day_two = {"since": START + DAY, "until": START + 2 * DAY}
        now[0] = START + 3 * DAY
        before = await service.account_statement("acc-ret", **day_two)
        assert (before["opening_balance_minor"], before["closing_balance_minor"]) == (
            10_000, 8_000,
        )  # fmt: skip

        now[0] = START + 40 * DAY
        await service.prune_journal(35)  # the day's post is deleted
        with pytest.raises(InvalidRequest, match="pruned before 2026-01-06T00:00:00Z"):
            await service.account_statement("acc-ret", **day_two)  # before: 8,000 to 8,000
        after_cut = await service.account_statement("acc-ret", since=START + 6 * DAY)
        assert after_cut["opening_balance_minor"] == 8_000  # from the cut on: whole

        # an account opened after the cut lost nothing: any period of it is told
        await service.create_account(rq.NewAccount(account_id="acc-new", balance=500))
        whole = await service.account_statement("acc-new", since=START, until=now[0] + 1)
        assert (whole["opening_balance_minor"], whole["closing_balance_minor"]) == (0, 500)
