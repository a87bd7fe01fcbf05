"""An advice reporting the network's decline, over TCP on both stores: acknowledged (00),
journalled, nothing moves, and no approval code, neither in the answer's field 38 nor in the
journal (before, the host made one up for it and called it a stand-in approval)."""

from __future__ import annotations

from iso_client import Switch
from test_e2e_auth import balances_of, purchase, start_host, store_url  # noqa: F401

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

ANSWERS = {"0120": "0130", "0220": "0230"}  # a repeat (0121, 0221) is answered as its original


async def test_an_advice_of_a_decline_is_acknowledged_without_an_approval_code(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    before = await balances_of(switch, card)
    advices = [
        purchase(card, amount=3_000, t="0120", **{"39": "05"}),
        purchase(card, amount=3_000, t="0220", **{"39": "51"}),
    ]
    for advice in advices:
        for copy in (advice, {**advice, "t": advice["t"][:3] + "1"}):  # and its repeat
            reply = await switch.send(copy)
            assert (reply["t"], reply["39"]) == (ANSWERS[advice["t"]], "00")
            assert "38" not in reply
    assert await balances_of(switch, card) == before
    stand_in = await switch.send(purchase(card, amount=3_000, t="0120", **{"39": "00"}))
    assert stand_in["39"] == "00" and len(stand_in["38"]) == 6  # an approval still has one
    async with opened_store(store_url) as store:
        entries = {e.stan: e for e in await store.journal(JournalQuery(limit=100))}
    for advice in advices:
        entry = entries[advice["11"]]
        assert entry.approval_code == "" and entry.movement == ""
        assert entry.reason_codes.split(";") == ["advice.declined_by_network"]
    assert "advice.stand_in" in entries[stand_in["11"]].reason_codes


async def test_an_advice_s_short_approval_code_is_answered_as_it_came(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A network's approval code of fewer than 6 characters, space-filled in field 38 (ans 6):
    the advice is posted once, journalled under the code, and acknowledged with field 38 as
    sent, its repeat too. Before, the host posted it and then failed to build its own answer
    (96, for the advice and for every repeat the network sends until it is acknowledged)."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    _, before = await balances_of(switch, card)
    advice = purchase(card, amount=700, t="0120", **{"38": "AB12  ", "39": "00"})
    for copy in (advice, {**advice, "t": "0121"}):
        reply = await switch.send(copy)
        assert (reply["t"], reply["39"], reply["38"]) == ("0130", "00", "AB12  ")
    assert (await balances_of(switch, card))[1] == before - 700  # posted once
    async with opened_store(store_url) as store:
        [entry] = await store.journal(JournalQuery(limit=1, approval_code="AB12"))
    assert (entry.stan, entry.movement) == (advice["11"], "hold")
