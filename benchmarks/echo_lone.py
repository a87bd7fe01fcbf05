#!/usr/bin/env python3
"""What answering one request at a time costs any trio server on this host, authhost aside.

The bare echo server of the load benchmark (``echo_server.py``: framing, no ISO 8583 work) is
loaded closed loop (requests always waiting: each wake-up of its event loop finds several) and
open loop at a few rates (each request arrives alone). Its CPU per answer at each rate, as a
ratio to closed loop in the same run, is the price of a wake-up per request: the event loop's
own passes, the socket calls and caches that went cold while it slept. authhost pays the same
price on top of its own work when requests come one by one (``docs/benchmarks.md``).

    .venv/bin/python benchmarks/echo_lone.py                       # about 30 s
    .venv/bin/python benchmarks/echo_lone.py --rates 250,1000,4000 --seconds 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from suite import cpu_seconds, free_port, start  # noqa: E402

from simulator import mixes  # noqa: E402
from simulator.bench import run_bench  # noqa: E402
from simulator.loadgen import LoadPlan  # noqa: E402


def rates(text: str) -> list[float]:
    """'500,1000' -> [500.0, 1000.0]: every rate positive."""
    try:
        values = sorted(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("rates must be above 0")
    return values


def measure(pid: int, port: int, rate: float | None, seconds: float) -> tuple[float, float]:
    """(answers/s, server CPU µs per answer) of one phase."""
    plan = LoadPlan(
        host="127.0.0.1", port=port, rate=rate, concurrency=32, count=None, duration=seconds
    )
    before = cpu_seconds(pid)
    report = run_bench(plan, mixes.network())
    answered = max(report.result.completed, 1)
    return report.throughput, (cpu_seconds(pid) - before) / answered * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=rates, default=[500.0, 1000.0, 2000.0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        command = [sys.executable, str(ROOT / "benchmarks" / "echo_server.py"), "--port", str(port)]
        server = start("echo", command, Path(tmp), port, Path(tmp) / "echo.log")
        try:
            print(f"{'round':>5}  {'load':>14}  {'answers/s':>9}  {'CPU µs/answer':>13}  ratio")
            for round_no in range(1, args.rounds + 1):
                rate, closed = measure(server.process.pid, port, None, args.seconds)
                print(f"{round_no:>5}  {'32 in flight':>14}  {rate:>9,.0f}  {closed:>13.1f}  1.00")
                for offered in args.rates:
                    rate, cost = measure(server.process.pid, port, offered, args.seconds)
                    load = f"{offered:,.0f}/s offered"
                    print(f"{round_no:>5}  {load:>14}  {rate:>9,.0f}  {cost:>13.1f}  "
                          f"{cost / closed:.2f}")  # fmt: skip
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
