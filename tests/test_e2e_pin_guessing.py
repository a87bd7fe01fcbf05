"""Guessing a PIN, over a running host on both stores: guesses sent together (one write, one
batch) are decided as one after another would be, so the third locks the card and a right
PIN among them is refused. (That the store counts each guess in its own write, whatever
snapshot it was decided on, is the store contract's test_the_pin_counter_is_counted_in_the_write.)"""

from __future__ import annotations

from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url, with_pin  # noqa: F401 - fixture

from authhost.security.module import SecurityModule
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def test_guesses_sent_together_lock_the_card_at_the_third(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-3624"]
    wrongs = [f"{n:04d}" for n in range(1000, 10000, 1111) if f"{n:04d}" != card["pin"]][:9]
    guesses = [with_pin(purchase(card, amount=100), host, card, pin) for pin in wrongs]
    right = with_pin(purchase(card, amount=100), host, card, card["pin"])
    answers = await switch.send_together([*guesses, right])  # one write: decided together
    assert [answers[g["11"]][0]["39"] for g in guesses] == ["55", "55", *["75"] * 7]
    assert answers[right["11"]][0]["39"] == "75"  # nine guesses first: never approved
    assert "38" not in answers[right["11"]][0]
    # the card is locked: the right PIN alone is refused too
    assert (await switch.send(with_pin(purchase(card), host, card, card["pin"])))["39"] == "75"
    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        found = await store.find_card(security.pan_index(card["pan"]))
        assert found is not None and found.pin_tries == 3
        entries = {e.stan: e for e in await store.journal(JournalQuery(limit=100))}
    assert entries[right["11"]].response_code == "75"
    assert entries[right["11"]].hold_amount == 0
