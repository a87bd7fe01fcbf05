"""A card's velocity counters in the Redis snapshot, kept between snapshots.

A card's events are a Redis list in commit order (``vlog``), pruned at the head with a count of
what was pruned (``vlogoff``), so every event has a number for good. A snapshot sends how many
of the card's events this process has counted and gets back only the ones after them (usually
none or one) and the new total, instead of the card's whole 30 days. The counters are a
``cards.sliding.SlidingVelocity`` per card (``compute_velocity`` exactly), as in the SQLite
store.

Snapshots of one card may overlap (each awaits Redis): a reply is applied synchronously to the
entry it was asked for, skipping the events that entry has counted since, so no event counts
twice. Entries are keyed by PAN index (the standalone snapshot learns the card from Redis) and
hold the card id the count belongs to; the script starts from zero when the PAN now means
another card (a renewal activated) or the log restarted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from authhost.cards.sliding import SlidingVelocity
from authhost.cards.velocity import Velocity, VelocityEvent

DEFAULT_CARDS = 50_000


class Kept:
    __slots__ = ("card_id", "counted", "sliding")

    def __init__(self, card_id: str) -> None:
        self.card_id = card_id
        self.counted = 0  # events of the card's log counted (their numbers are 1..counted)
        self.sliding = SlidingVelocity()


class VelocityLogs:
    """Per-PAN running counters, brought up to date from the events committed since."""

    def __init__(
        self, parse: Callable[[Any], VelocityEvent], max_cards: int = DEFAULT_CARDS
    ) -> None:
        self._parse = parse
        self._kept: dict[str, Kept] = {}
        self._max_cards = max_cards

    def ask(self, pan_index: str) -> tuple[Kept | None, str, str]:
        """(entry, card id it counts, events counted) to send with a snapshot of this PAN."""
        kept = self._kept.get(pan_index)
        if kept is None:
            return None, "", "0"
        return kept, kept.card_id, str(kept.counted)

    def answer(
        self,
        pan_index: str,
        card_id: str,
        kept: Kept | None,
        reply: Any,
        events: Sequence[Any],
        now: float,
    ) -> tuple[Velocity, int]:
        """The counters for a request at ``now`` (``SlidingVelocity.counted_at``) from a
        snapshot's reply (``"used|total"`` and the events after ``used``), asked with
        ``kept``, and the card's events so far (``total``: the snapshot's velocity mark)."""
        used, total = (int(x) for x in _text(reply).split("|", 1))
        if used == 0 or kept is None or kept.card_id != card_id:
            fresh = Kept(card_id)
            for raw in events:
                fresh.sliding.add(self._parse(raw))
            fresh.counted = total
            current = self._kept.get(pan_index)
            if current is None or current.card_id != card_id or current.counted <= total:
                self._keep(pan_index, fresh)
            return fresh.sliding.counted_at(now), total
        skip = kept.counted - used  # counted meanwhile by an overlapping snapshot
        for raw in events[max(skip, 0) :]:
            kept.sliding.add(self._parse(raw))
        kept.counted = max(kept.counted, total)
        return kept.sliding.counted_at(now), total

    def _keep(self, pan_index: str, kept: Kept) -> None:
        if pan_index not in self._kept and len(self._kept) >= self._max_cards:
            del self._kept[next(iter(self._kept))]
        self._kept[pan_index] = kept


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
