"""Velocity counters in the snapshot: counting a card's history on every request (the baseline,
``compute_velocity``, what the SQLite store did before) against the counters it now keeps
between requests (``SlidingVelocity``: one new event, then a query), in the same run.

Usage:
    .venv/bin/python benchmarks/bench_velocity.py [--events 10,140,1000] [--rounds 5]

For each history size: a card with that many events spread over the last 30 days; each
measured request adds one event and asks for the counters at a slightly later time, as a
request of that card would (the baseline counts the n events plus the new one every time).
Rounds alternate baseline and candidate; the median is reported.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from authhost.cards.sliding import SlidingVelocity  # noqa: E402
from authhost.cards.velocity import RETENTION_S, VelocityEvent, compute_velocity  # noqa: E402

NOW = 1_795_000_000.0


def history(n: int, rng: random.Random) -> list[VelocityEvent]:
    times = sorted(NOW - rng.uniform(0, RETENTION_S) for _ in range(n))
    return [
        VelocityEvent(
            ts,
            rng.randint(100, 50_000),
            rng.random() < 0.95,
            f"m{rng.randint(1, 40)}",
            rng.choice(["276", "250", "840"]),
        )  # fmt: skip
        for ts in times
    ]


def per_request_us(run, requests: int) -> float:
    started = time.perf_counter()
    run(requests)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="10,140,1000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"{'events':>7} {'recount µs':>11} {'kept µs':>9} {'speed-up':>9}")
    for n in (int(x) for x in args.events.split(",")):
        events = history(n, rng)

        def recount(requests: int, events: list[VelocityEvent] = events) -> None:
            for i in range(requests):  # the card's n events and the request's own
                now = NOW + i * 0.5
                compute_velocity([*events, VelocityEvent(now, 100, True, "m1", "276")], now + 0.25)

        def sliding(requests: int, events: list[VelocityEvent] = events) -> None:
            counters = SlidingVelocity()
            for event in events:
                counters.add(event)
            counters.at(NOW)
            for i in range(requests):
                now = NOW + i * 0.5
                counters.add(VelocityEvent(now, 100, True, "m1", "276"))
                counters.at(now + 0.25)

        base, kept = [], []
        for _ in range(args.rounds):
            base.append(per_request_us(recount, args.requests // 10))
            kept.append(per_request_us(sliding, args.requests))
        b, k = statistics.median(base), statistics.median(kept)
        print(f"{n:>7} {b:>11.1f} {k:>9.1f} {b / k:>8.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
