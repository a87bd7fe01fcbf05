"""One card's requests in one process are decided one after another, whichever connections
they came on.

Two requests of a card decided on snapshots read at the same moment would each miss the other:
a daily limit only one fits passes twice, a reversal misses the hold its original is writing,
a burst of card testing spread over connections looks like one request to the fraud rules.
The store settles what it can in its write and refuses a decision read on an out-of-date
history (``CommitResult.stale``), which is how requests in other processes are kept apart; in
this process it is cheaper not to decide on a snapshot that the write will refuse. A round of
``AuthService.decide_many`` takes its cards' turns before it reads and gives them back once
its write is done; a round with a card another round holds waits for it first.

A round waits only while it holds no turn, so two rounds never wait for each other. The
common case (no other round has the card) costs a dict insert and delete per request; an
event is made only for a round that has to wait.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio


class CardTurns:
    """The cards whose requests a round of this process is deciding now (by PAN index)."""

    def __init__(self) -> None:
        # card -> the events of the rounds waiting for it (None: nobody waits)
        self._held: dict[str, list[anyio.Event] | None] = {}

    def busy(self, cards: Iterable[str]) -> str:
        """One of ``cards`` another round holds, or ""."""
        held = self._held
        for card in cards:
            if card in held:
                return card
        return ""

    async def wait_for(self, card: str) -> None:
        """Until the round that holds ``card`` gives it back (at once if none holds it)."""
        held = self._held
        if card not in held:
            return
        event = anyio.Event()
        waiting = held[card]
        if waiting is None:
            held[card] = [event]
        else:
            waiting.append(event)
        await event.wait()

    def take(self, cards: Iterable[str]) -> list[str]:
        """Hold the turns of ``cards`` (none of them held: ``busy`` said so); the ones taken,
        for ``give_back``."""
        held = self._held
        taken = []
        for card in cards:
            if card and card not in held:
                held[card] = None
                taken.append(card)
        return taken

    def give_back(self, cards: list[str]) -> None:
        """The round's write is done: whoever waits for one of these cards may go on."""
        held = self._held
        for card in cards:
            waiting = held.pop(card, None)
            if waiting:
                for event in waiting:
                    event.set()

    def __len__(self) -> int:
        return len(self._held)
