"""Decisions slower than a threshold, logged one by one with their time per step.

``authhost_pipeline_step_seconds`` gives each step's mean; an operator chasing a slow tail
needs the slow decisions themselves: which step took the time (the store's read and write
among them), or whether it went outside them (waiting for the event loop, the socket). When
the whole server is slow (an overload) every decision qualifies, so at most ``per_second``
lines are written a second, each saying how many slow decisions it held back since the line
before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from authhost.security.masking import mask_pan

log = logging.getLogger("authhost.slow")


class SlowDecisions:
    def __init__(
        self,
        threshold_s: float,
        per_second: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold_s = threshold_s
        self._per_second = per_second
        self._clock = clock
        self._second = -1
        self._lines = 0  # written in the current second
        self._held_back = 0  # slow decisions not written since the last line

    def report(
        self,
        mti: str,
        pan: str | None,
        stan: str | None,
        response_code: str,
        latency_s: float,
        timings_us: Mapping[str, int],
        peer: str,
    ) -> None:
        """Log one decision that took ``latency_s`` (at least the threshold), unless this
        second's lines are used up."""
        second = int(self._clock())
        if second != self._second:
            self._second, self._lines = second, 0
        if self._lines >= self._per_second:
            self._held_back += 1
            return
        self._lines += 1
        latency_us = int(latency_s * 1_000_000)
        fields = {
            "mti": mti,
            "pan": mask_pan(pan),
            "stan": stan,
            "rc": response_code,
            "latency_us": latency_us,
            "steps_us": dict(timings_us),
            "outside_steps_us": max(0, latency_us - sum(timings_us.values())),
            "held_back": self._held_back,
            "peer": peer,
        }
        self._held_back = 0
        log.warning("slow decision", extra={"fields": fields})
