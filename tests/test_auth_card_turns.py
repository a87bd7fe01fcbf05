"""CardTurns: a round holding a card makes the others with that card wait until it is written."""

from __future__ import annotations

import trio

from authhost.auth.card_turns import CardTurns


async def test_a_round_waits_for_the_card_another_holds_and_only_for_it():
    turns = CardTurns()
    taken = turns.take(["card-a", "card-b", ""])  # "" (no PAN) is never held
    assert taken == ["card-a", "card-b"] and len(turns) == 2
    assert turns.busy(["card-c", "card-b"]) == "card-b" and turns.busy(["card-c", ""]) == ""
    order: list[str] = []

    async def second_round() -> None:
        while busy := turns.busy(["card-b"]):
            await turns.wait_for(busy)
        order.append("second decides")
        turns.give_back(turns.take(["card-b"]))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second_round)
        await trio.sleep(0.01)
        assert order == []  # still waiting for card-b
        order.append("first written")
        turns.give_back(taken)
    assert order == ["first written", "second decides"] and len(turns) == 0


async def test_several_waiters_take_the_card_one_after_another():
    turns = CardTurns()
    first = turns.take(["card"])
    holding: list[int] = []
    at_once: list[int] = []

    async def round_(n: int) -> None:
        while busy := turns.busy(["card"]):
            await turns.wait_for(busy)
        taken = turns.take(["card"])
        holding.append(n)
        at_once.append(len(holding))
        await trio.sleep(0.001)  # the write
        holding.remove(n)
        turns.give_back(taken)

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(round_, n)
        await trio.sleep(0.01)
        turns.give_back(first)
    assert at_once == [1] * 5 and len(turns) == 0


async def test_a_waiter_cancelled_leaves_the_card_to_the_others():
    turns = CardTurns()
    first = turns.take(["card"])
    with trio.move_on_after(0.01):
        await turns.wait_for("card")
    turns.give_back(first)  # sets the cancelled waiter's event: harmless
    assert turns.busy(["card"]) == "" and turns.take(["card"]) == ["card"]
