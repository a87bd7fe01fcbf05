"""Two compromise alerts putting cards on one watch list at once: each adds its cards to the
list as it is when written, not as it was read (a put made from an older read wrote the other
alert's cards off the list).

Real components only: a SQLite file, a real redis-server and a real one-node Redis Cluster;
the other alert runs inside the first's put (the store's method wrapped to run it there).
"""

from __future__ import annotations

import json

import pytest
from test_admin_support import demo_security
from test_store_contract import (  # noqa: F401 - fixtures
    redis_cluster_url,
    store,
)

from authhost.admin import requests as rq
from authhost.admin.service import CardService


@pytest.mark.parametrize("store", ["sqlite", "redis", "redis-cluster"], indirect=True)
async def test_two_watch_alerts_at_once_keep_both_cards_on_the_list(
    store,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """Two compromise alerts put their cards on one watch list at once: the second alert's
    put lands between the first's read of the list and its write. Both cards stay listed
    (the first's put was made from the list as it read it, and wrote it over the second's
    card), each put with its one list.put entry."""
    service = CardService(store, demo_security(tmp_path), "ops1")
    await service.create_account(rq.NewAccount(account_id="a1", balance=0))
    await service.create_product(rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit",
                                               bin="476173"))  # fmt: skip
    cards = []
    for _ in range(2):
        card = await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1"))
        for action in ("ship", "activate"):
            await service.apply(card["card_id"], action)
        cards.append(card["card_id"])
    put = store.put_list
    puts = []

    async def the_other_alert_first(name, values, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        puts.append(list(values))
        if len(puts) == 1:  # the first alert read the list (empty): the second lands now
            await service.compromised_cards([], "watch", card_ids=[cards[1]])
        return await put(name, values, *args, **kwargs)

    monkeypatch.setattr(store, "put_list", the_other_alert_first)
    await service.compromised_cards([], "watch", card_ids=[cards[0]])
    assert await store.get_list("compromised_cards") == set(cards)
    entries = [
        e for e in await service.audit(subject="compromised_cards") if e["action"] == "list.put"
    ]
    assert len(entries) == 2
    assert [json.loads(e["after"])["added"] for e in entries] == [[cards[1]], [cards[0]]]
    assert (await service.verify_audit())["ok"]
