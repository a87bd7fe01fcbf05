"""An account's closure cut short after its marker and ``account.close`` were written (a card's
cancel refused, another writer having changed it): the error says the account is closed and
that closing it again finishes; closing again cancels the cards left live, whatever money
reached the account meanwhile, and writes no second ``account.close``.

Real components only: a SQLite file and a real redis-server; the other writer is another store
opened on the same data, as another process would be.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_admin_support import demo_security
from test_store_contract import (  # noqa: F401 - fixtures
    redis_cluster_url,
    store,
)

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError
from authhost.admin.service import CardService
from authhost.cards.model import CardState

STORES = pytest.mark.parametrize("store", ["sqlite", "redis"], indirect=True)


@STORES
async def test_a_closure_cut_short_is_said_and_finished_by_closing_again(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    service = CardService(store, demo_security(tmp_path), "ops1")
    await service.create_account(rq.NewAccount(account_id="a1", balance=0))
    await service.create_product(rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit",
                                               bin="476173"))  # fmt: skip
    cards = [await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1"))
             for _ in range(2)]  # fmt: skip
    other = await store.reopen()
    update = store.update_card
    raced = []

    async def another_writer_first(card, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        """The first cancel finds its card changed by another operator, and a refund reaches
        the account meanwhile (an authorisation's, which no closure refuses)."""
        if card.state is CardState.CLOSED and not raced:
            raced.append(card.card_id)
            current = await other.get_card(card.card_id)
            await other.update_card(replace(current, cardholder_name="A N OTHER"))
            await other.change_funds("a1", 300)
        return await update(card, *args, **kwargs)

    try:
        monkeypatch.setattr(store, "update_card", another_writer_first)
        with pytest.raises(ConflictError) as cut:
            await service.close_account("a1", "customer left")
        said = cut.value.message
        assert "account a1 is closed" in said and "close it again" in said, said
        assert raced[0] in said
        monkeypatch.undo()
        live = [c for c in await store.list_cards("a1") if c.state is not CardState.CLOSED]
        assert len(live) == 2  # the first cancel was the one refused

        again = await service.close_account("a1", "customer left")
        assert again["cancelled_cards"] == sorted(c["card_id"] for c in cards)
        assert {c.state for c in await store.list_cards("a1")} == {CardState.CLOSED}
        actions = [e["action"] for e in await service.audit(subject="a1")]
        assert actions.count("account.close") == 1
        assert (await service.close_account("a1"))["cancelled_cards"] == []
        verified = await service.verify_audit()
        assert verified["ok"], verified
    finally:
        await other.close()
