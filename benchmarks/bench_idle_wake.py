"""What waking from idle costs on this host: the same CPU work back to back, then after a sleep.

A server answering requests one at a time sleeps between them; one answering a busy stream
goes from one to the next while its caches are warm. On a virtual machine the idle CPU is
given away, and the work after a wake-up runs on caches (and branch predictors) that other
tenants used meanwhile. This measures that penalty alone, with no server, store or network:
a fixed piece of Python work (JSON round trips and dict building, about 0.3-1 ms), timed by
its own thread's CPU clock, run back to back and after sleeps of 0.2, 2 and 20 ms. The
ratio to back to back, in the same run, is the figure to read.

    .venv/bin/python benchmarks/bench_idle_wake.py
    .venv/bin/python benchmarks/bench_idle_wake.py --calls 1000 --size 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

DATA = [{f"k{i}": list(range(20)), "s": "x" * 50} for i in range(200)]


def work(size: int) -> int:
    """A fixed amount of interpreter work: parsing, encoding, hashing, allocation."""
    total = 0
    for _ in range(size):
        text = json.dumps(DATA[:40])
        total += len(json.loads(text))
        table = {str(i): i for i in range(300)}
        total += sum(table.values())
    return total


def cpu_per_call(calls: int, size: int, gap_s: float) -> float:
    """Median thread CPU time of one call of ``work``, in µs, each after ``gap_s`` asleep."""
    costs = []
    for _ in range(calls):
        if gap_s:
            time.sleep(gap_s)
        began = time.thread_time_ns()
        work(size)
        costs.append(time.thread_time_ns() - began)
    return statistics.median(costs) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per measurement")
    parser.add_argument("--size", type=int, default=1, help="work per call (1 is ~0.3 ms)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    gaps = (0.0002, 0.002, 0.02)
    print(
        f"{'round':>5} {'back to back':>13} "
        + " ".join(f"{f'after {g * 1000:g} ms':>15}" for g in gaps)
    )
    for round_ in range(1, args.rounds + 1):
        warm = cpu_per_call(args.calls, args.size, 0.0)
        after = [cpu_per_call(args.calls, args.size, gap) for gap in gaps]
        cells = " ".join(f"{a:>8.0f} µs {a / warm:>4.2f}x" for a in after)
        print(f"{round_:>5} {warm:>10.0f} µs {cells}")


if __name__ == "__main__":
    main()
