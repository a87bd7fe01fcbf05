"""A statement of a period still to come is refused: its balances are not known, and the
walk back from the balance now stated today's balance as that period's opening and closing
(a day of next year "opened and closed" at it). A period under way is stated up to now. On
both stores (real SQLite file, real redis-server)."""

from __future__ import annotations

import pytest
from test_admin_support import demo_security
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.admin import requests as rq
from authhost.admin.errors import InvalidRequest
from authhost.admin.service import CardService
from authhost.store import opened_store

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0


async def test_a_statement_of_a_period_still_to_come_is_refused(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    async with opened_store(store_url) as store:
        service = CardService(store, demo_security(tmp_path), "test", clock=lambda: START)
        await service.create_account(rq.NewAccount(account_id="acc-fut", balance=7_000))
        with pytest.raises(InvalidRequest, match="2026-01-02T00:00:00Z, still to come"):
            await service.account_statement("acc-fut", since=START + DAY, until=START + 2 * DAY)
        with pytest.raises(InvalidRequest, match="still to come"):
            await service.account_statement("acc-fut", day="2026-01-05")
        today = await service.account_statement("acc-fut", day="2026-01-01")  # under way
        assert (today["opening_balance_minor"], today["closing_balance_minor"]) == (0, 7_000)
