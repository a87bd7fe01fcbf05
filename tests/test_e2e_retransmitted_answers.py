"""A retransmission's answer over TCP, on both stores: the original answer again, with field
54 as the original carried it. An ATM whose balance inquiry's answer was lost resends it and
prints the balance from the answer; before, the repeat came back 00 without field 54."""

from __future__ import annotations

from iso_client import Switch
from test_e2e_auth import balances, purchase, start_host, store_url  # noqa: F401


async def test_a_retransmission_carries_the_balances_of_the_first_answer(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card, low = host.cards["active-visa"], host.cards["active-visa-low"]
    requests = [
        purchase(card, **{"3": "310000", "4": None}),  # a balance inquiry
        purchase(card, amount=2_500),  # an approval
        purchase(low, amount=int(low["available"]) + 1),  # 51
        purchase(low, amount=int(low["available"]) + 900, **{"48": "R610510000"}),  # partial
    ]
    for request in requests:
        first = await switch.send(request)
        for repeat in (request, {**request, "t": "0101"}):
            again = await switch.send(repeat)
            assert again["39"] == first["39"] and again.get("38") == first.get("38")
            assert again["54"] == first["54"], request
    assert [r["39"] for r in [await switch.send(q) for q in requests]] == ["00", "00", "51", "10"]


async def test_a_copy_sent_with_its_original_gets_the_balances_after_the_one_hold(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Both copies in one read are decided together: the second finds the first written in
    the same write, and its answer shows the balances after that one hold."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    request = purchase(card, amount=4_000)
    [first, second] = (await switch.send_together([request, request]))[request["11"]]
    assert first["39"] == second["39"] == "00" and first["38"] == second["38"]
    assert first["54"] == second["54"]
    held = int(card["available"]) - 4_000
    assert balances(second)[1] == held
