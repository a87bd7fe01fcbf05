"""The money movements feed for the core banking ledger, over a running host on both stores:
every entry that moved money, once, in journal order, with which way and how much; entries
younger than the settle time are held back, and paging by next_after_id loses none."""

from __future__ import annotations

import time

from host_admin import start_host_with_admin
from iso_client import Switch, next_stan
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import field_90, purchase, store_url  # noqa: F401 - fixture
from test_e2e_credits import transfer

from authhost.admin import journal_feed
from authhost.admin.service import CardService
from authhost.security.module import SecurityModule
from authhost.store import opened_store


async def test_the_feed_lists_each_movement_once_in_order(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    monkeypatch,
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    sent = {
        "hold": purchase(card, amount=1_000),
        "post": purchase(card, amount=2_000, t="0200"),
        "credit": purchase(card, amount=300, **{"3": "200000", "t": "0200"}),
        "declined": purchase(card, amount=999_999_999),
        "transfer": transfer(card, 5_000),
    }
    for fields in sent.values():
        await switch.send(fields)
    release = {**sent["hold"], "t": "0400", "11": next_stan(), "90": field_90(sent["hold"])}
    take_back = {**sent["transfer"], "t": "0400", "11": next_stan(),
                 "90": field_90(sent["transfer"])}  # fmt: skip
    for fields in (release, take_back):
        assert (await switch.send(fields))["39"] == "00"

    young = await call(port, "GET", "/v1/journal/movements?after_id=0", token=AUDITOR_TOKEN)
    assert young.status == 200 and young.json["movements"] == []  # not settled yet
    assert young.json["next_after_id"] == 0

    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        later = CardService(store, security, clock=lambda: time.time() + 10)
        feed = await later.money_movements(0, 1000)
        first = await later.money_movements(0, 2)
        rest = await later.money_movements(first["next_after_id"], 1000)
        # read two journal entries at a time (the declined one moves nothing): the same feed
        monkeypatch.setattr(journal_feed, "PAGE", 2)
        paged = await later.money_movements(0, 1000)
    assert paged == feed
    # the requests' own movements by RRN (a reversal repeats its original's RRN: MTI 04xx)
    by_stan = {m["rrn"][-6:]: m for m in feed["movements"] if not m["mti"].startswith("04")}
    expected = {"hold": ("hold", 1_000), "post": ("post", 2_000), "credit": ("credit", 300),
                "transfer": ("credit", 5_000)}  # fmt: skip
    for name, (movement, amount) in expected.items():
        got = by_stan[sent[name]["11"]]
        assert (got["movement"], got["amount_minor"]) == (movement, amount), (name, got)
        assert got["account_id"] == "demo-acc-1" and "*" in got["pan"]
    assert sent["declined"]["11"] not in by_stan  # moved nothing
    undo = [m for m in feed["movements"] if m["movement"] in ("release", "take_back")]
    assert [(m["movement"], m["amount_minor"]) for m in undo] == [("release", 1_000),
                                                                  ("take_back", 5_000)]  # fmt: skip
    assert undo[0]["hold_ref"] == by_stan[sent["hold"]["11"]]["hold_ref"]  # paired
    ids = [m["journal_id"] for m in feed["movements"]]
    assert ids == sorted(ids) and len(ids) == 6
    assert first["movements"] + rest["movements"] == feed["movements"]  # paging loses none
    bad = await call(port, "GET", "/v1/journal/movements?limit=0", token=AUDITOR_TOKEN)
    assert bad.status == 400
