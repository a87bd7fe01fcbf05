"""A statement walks the balance back from the balance now through the changes it read: a
change landing between those reads makes them disagree. Read again 3 times at most; a
balance that moved during every read is said (``balances_settled`` false), where the
statement gave balances off by what landed with nothing to tell them from exact ones. On
both stores (real SQLite file, real redis-server; the changes are real writes, made while
the statement reads)."""

from __future__ import annotations

from test_admin_support import demo_security
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.store import opened_store

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


async def test_a_statement_says_when_the_balance_moved_during_every_read(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    now = [START]
    async with opened_store(store_url) as store:
        service = CardService(store, demo_security(tmp_path), "test", clock=lambda: now[0])
        await service.create_account(rq.NewAccount(account_id="acc-busy", balance=10_000))
        reads, landing = [0], [0]
        real_export = store.export_journal

        async def busy_export(query):  # a load lands right after each of the first reads
            async for entry in real_export(query):
                yield entry
            reads[0] += 1
            if reads[0] <= landing[0]:
                now[0] += 1
                await service.change_funds("acc-busy", rq.FundsChange(amount_minor=100))

        store.export_journal = busy_export  # type: ignore[method-assign]
        period = {"since": START, "until": START + 86_400}

        landing[0] = 2  # the third read finds the balance still: exact
        calm = await service.account_statement("acc-busy", **period)
        assert calm["balances_settled"] is True
        assert (calm["opening_balance_minor"], calm["closing_balance_minor"]) == (0, 10_200)

        reads[0], landing[0] = 0, 3  # moved during all three: said
        busy = await service.account_statement("acc-busy", **period)
        assert busy["balances_settled"] is False
