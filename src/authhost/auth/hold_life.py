"""How long an authorisation hold lives, by merchant category.

A hold that no completion or reversal claims is released after ``[auth] hold_days`` (7). The
networks let some merchants complete much later: a hotel checks the guest out, a car hire
company takes the car back, a cruise line docks weeks after the pre-authorisation (Visa's
extended authorisation: lodging, car rental and cruise, 31 days). Releasing those holds after 7
days would let the cardholder spend the money the completion is about to take. Others should
go sooner: a fuel pump's pre-authorisation is completed within minutes, and a cardholder
should not be short of the held amount for a week when the completion never comes ("5542=2h").
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
    """Hold lives by MCC range, as differences from the host's default."""

    default_days: int
    ranges: tuple[tuple[int, int, float], ...] = ()  # (first MCC, last MCC, life in seconds)
    # every MCC the ranges name -> its life minus the default's, so a request costs one lookup
    _extra: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        extra: dict[str, float] = {}
        for first, last, life_s in reversed(self.ranges):  # the first matching range wins
            for code in range(first, last + 1):
                extra[f"{code:04d}"] = life_s - self.default_days * DAY_S
        object.__setattr__(self, "_extra", extra)

    @classmethod
    def parse(cls, default_days: int, entries: list[str] | tuple[str, ...]) -> HoldLives:
        """From 'MCC=life' or 'FROM-TO=life' entries (the config's ``hold_days_by_mcc``), the
        life in days ('31' or '31d') or hours ('2h')."""
        ranges = []
        for entry in entries:
            mccs, sep, life = entry.partition("=")
            first, _, last = mccs.strip().partition("-")
            last = last or first
            life_s = _life_seconds(life.strip())
            if not (sep and _mcc(first) and _mcc(last) and life_s is not None):
                raise HoldLifeError(
                    f"hold_days_by_mcc entry {entry!r} is not 'MCC[-MCC]=days' (or '=<n>h')"
                )
            if int(first) > int(last):
                raise HoldLifeError(f"hold_days_by_mcc entry {entry!r}: the range is backwards")
            ranges.append((int(first), int(last), life_s))
        return cls(default_days, tuple(ranges))

    def life_seconds(self, mcc: str | None) -> float:
        """The life of a hold at a merchant of this category."""
        return self.default_days * DAY_S + self.extra_seconds(mcc)

    def extra_seconds(self, mcc: str | None) -> float:
        """How much longer (or, negative, shorter) than the default a hold at this merchant
        lives: what the store keeps with the hold; 0 for most."""
        return self._extra.get(mcc, 0.0) if mcc else 0.0

    @property
    def shortest_shift(self) -> float:
        """How much shorter than the default the shortest life is (0 when none is): how far
        past the default's cutoff the expiry must look."""
        return max(0.0, -min(self._extra.values(), default=0.0))


def _life_seconds(text: str) -> float | None:
    """'31', '31d' (days) or '2h' (hours) in seconds; None when not one of those, or not
    above zero."""
    unit = DAY_S
    if text[-1:] in ("d", "h"):
        unit = DAY_S if text[-1] == "d" else 3600.0
        text = text[:-1]
    if not text.isdigit() or int(text) == 0:
        return None
    return int(text) * unit


def _mcc(text: str) -> bool:
    return len(text) == 4 and text.isdigit()
