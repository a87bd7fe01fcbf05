"""How long an authorisation hold lives, by merchant category.

A hold that no completion or reversal claims is released after ``[auth] hold_days`` (7). The
networks let some merchants complete much later: a hotel checks the guest out, a car hire
company takes the car back, a cruise line docks weeks after the pre-authorisation (Visa's
extended authorisation: lodging, car rental and cruise, 31 days). Releasing those holds after 7
days would let the cardholder spend the money the completion is about to take. Longer lives
only: a hold never lives less than ``hold_days``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_S = 86_400.0

# lodging (3501-3999, 7011), car rental (3351-3500, 7512), truck rental (7513), cruise (4411)
EXTENDED_AUTHORISATION = ("3351-3500=31", "3501-3999=31", "4411=31", "7011=31", "7512=31",
                          "7513=31")  # fmt: skip


class HoldLifeError(ValueError):
    """A ``hold_days_by_mcc`` entry that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class HoldLives:
    """Days of life by MCC range, beyond the host's default."""

    default_days: int
    ranges: tuple[tuple[int, int, int], ...] = ()  # (first MCC, last MCC, days)
    # every MCC the ranges name -> its extra seconds, so a request costs one dict lookup
    _extra: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        extra: dict[str, float] = {}
        for first, last, days in reversed(self.ranges):  # the first matching range wins
            for code in range(first, last + 1):
                extra[f"{code:04d}"] = (days - self.default_days) * DAY_S
        object.__setattr__(self, "_extra", extra)

    @classmethod
    def parse(cls, default_days: int, entries: list[str] | tuple[str, ...]) -> HoldLives:
        """From 'MCC=days' or 'FROM-TO=days' entries (the config's ``hold_days_by_mcc``)."""
        ranges = []
        for entry in entries:
            mccs, sep, days = entry.partition("=")
            first, _, last = mccs.strip().partition("-")
            last = last or first
            if not (sep and _mcc(first) and _mcc(last) and days.strip().isdigit()):
                raise HoldLifeError(f"hold_days_by_mcc entry {entry!r} is not 'MCC[-MCC]=days'")
            if int(first) > int(last):
                raise HoldLifeError(f"hold_days_by_mcc entry {entry!r}: the range is backwards")
            if int(days) < default_days:
                raise HoldLifeError(
                    f"hold_days_by_mcc entry {entry!r}: a hold lives at least hold_days "
                    f"({default_days})"
                )
            ranges.append((int(first), int(last), int(days)))
        return cls(default_days, tuple(ranges))

    def days(self, mcc: str | None) -> int:
        """The life of a hold at a merchant of this category, in days."""
        if mcc and mcc.isdigit():
            code = int(mcc)
            for first, last, days in self.ranges:
                if first <= code <= last:
                    return days
        return self.default_days

    def extra_seconds(self, mcc: str | None) -> float:
        """How much longer than the default a hold at this merchant lives (what the store keeps
        with the hold; 0 for most)."""
        return self._extra.get(mcc, 0.0) if mcc else 0.0


def _mcc(text: str) -> bool:
    return len(text) == 4 and text.isdigit()
