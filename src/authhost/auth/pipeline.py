"""The decision pipeline: a list of small steps run in order, jPOS-participant style.

A step is a callable taking the Transaction and returning None (pass) or a Decline. The first
decline ends the run. Timings per step fall out of the loop. The order comes from config.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from authhost.auth.decision import Decline
from authhost.auth.transaction import Transaction

Step = Callable[[Transaction], Decline | None]


@dataclass(frozen=True, slots=True)
class PipelineResult:
    decline: Decline | None
    timings_us: dict[str, int]


class Pipeline:
    def __init__(self, steps: Sequence[tuple[str, Step]]) -> None:
        self.steps = tuple(steps)
        self.names = tuple(name for name, _ in self.steps)

    def run(self, tx: Transaction) -> PipelineResult:
        timings: dict[str, int] = {}
        clock = time.perf_counter_ns
        for name, step in self.steps:
            started = clock()
            decline = step(tx)
            timings[name] = (clock() - started) // 1000
            if decline is not None:
                return PipelineResult(decline, timings)
        return PipelineResult(None, timings)
