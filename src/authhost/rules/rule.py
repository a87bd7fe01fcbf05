"""One analyst rule as loaded from a rules file: what it tests, what it does, who owns it."""

from __future__ import annotations

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

    @property
    def shadow(self) -> bool:
        return self.mode == Mode.SHADOW
