"""One analyst rule as loaded from a rules file: what it tests, what it does, who owns it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What a matching rule does to the outcome."""

    DECLINE = "decline"  # decline with response_code (default 59); the first one wins
    REVIEW = "review"  # approve but flag for an analyst
    SCORE = "score"  # add points (may be negative) to the fraud score
    ALLOW = "allow"  # allow-list entry: later rules are not evaluated


class Mode(StrEnum):
    """Whether a rule acts or is only measured."""

    ENFORCE = "enforce"
    SHADOW = "shadow"  # recorded and counted, never changes the outcome


@dataclass(frozen=True, slots=True)
class Rule:
    """A checked rule. ``code`` is its expression rewritten to Python over local names."""

    name: str
    expression: str
    action: Action
    reason: str
    code: str = ""
    response_code: str | None = None  # decline only
    points: int = 0  # score only
    description: str = ""
    owner: str = ""
    enabled: bool = True
    mode: Mode = Mode.ENFORCE
    priority: int = 100  # lower runs first; ties keep file order
    line: int = 0  # line of the expression in the rules file
    variables: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()
    # a temporary rule (an attack's block, a campaign's review): it runs only for requests
    # decided at or after active_from and before active_until (epoch seconds; None: open)
    active_from: float | None = None
    active_until: float | None = None

    @property
    def shadow(self) -> bool:
        return self.mode == Mode.SHADOW

    @property
    def windowed(self) -> bool:
        return self.active_from is not None or self.active_until is not None

    def active_at(self, ts: float) -> bool:
        """Whether a request decided at ``ts`` is within the rule's window."""
        return (self.active_from is None or ts >= self.active_from) and (
            self.active_until is None or ts < self.active_until
        )

    def window_state(self, now: float) -> str:
        """``active``, ``scheduled`` (its window has not begun) or ``ended`` at ``now``."""
        if self.active_from is not None and now < self.active_from:
            return "scheduled"
        if self.active_until is not None and now >= self.active_until:
            return "ended"
        return "active"

    def window_ends(self) -> list[tuple[str, float]]:
        """("from" or "until", the instant) for each end the window has."""
        ends = (("from", self.active_from), ("until", self.active_until))
        return [(word, ts) for word, ts in ends if ts is not None]

    def window_text(self) -> str:
        """The window as an analyst wrote it, in UTC ('' when the rule has none)."""
        return " ".join(f"{word} {utc_text(ts)}" for word, ts in self.window_ends())


def utc_text(ts: float) -> str:
    """An instant as RFC 3339 in UTC, to the second: how windows are shown and logged."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
