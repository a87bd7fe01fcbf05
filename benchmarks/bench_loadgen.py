#!/usr/bin/env python3
"""What the load generator itself costs, at a fixed rate: a base revision's against the
working tree's, alternated in one run against the same server.

The generator shares this 2-core machine with the server it measures, so every CPU-second it
spends is taken from that server and shows up in the latencies it reports. This runs
``authhost-sim bench --rate R`` from a base revision (a git worktree) and from the working
tree, round after round, against one bare echo server (``benchmarks/echo_server.py``, the
0800 network mix: the generator's own work, not the server's), and prints each run's CPU
seconds per request (``getrusage`` of the child: the generator alone, less what the same
generator spends to start and send one request, measured in the same round) and the ratio.

    python benchmarks/bench_loadgen.py --base e7a1016              # 2,000/s, 10 s, 3 rounds
    python benchmarks/bench_loadgen.py --base e7a1016 --rate 1000 --port 46001 --mix auth \\
        --cards DIR/cards-sqlite.json                                # against a running host
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from suite import free_port  # noqa: E402

GENERATOR = "import sys; from simulator.cli import app; sys.argv[0] = 'authhost-sim'; app()"


def generator_cpu(src: Path, args: argparse.Namespace, port: int, out: Path, count: int) -> float:
    """CPU seconds of one generator run from the tree at ``src`` (``count`` 0: the duration)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [
        sys.executable, "-c", GENERATOR, "bench", "--port", str(port), "--mix", args.mix,
        "--rate", str(args.rate), "--count", str(count), "--duration", str(args.seconds),
        "--quiet", "--json", str(out),
    ]  # fmt: skip
    if args.cards:
        command += ["--cards", str(args.cards)]
    subprocess.run(
        command, env={"PYTHONPATH": f"{src}:{src / 'src'}", "PATH": "/usr/bin:/bin"}, check=True,
        stdout=subprocess.DEVNULL, cwd=src,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_once(src: Path, args: argparse.Namespace, port: int, out: Path) -> dict:
    """One measured run, less one run of a single request (imports, templates, connecting)."""
    startup = generator_cpu(src, args, port, out, count=1)
    cpu = generator_cpu(src, args, port, out, count=0)
    report = json.loads(out.read_text())
    return {
        "cpu_us_per_request": (cpu - startup) / max(report["sent"] - 1, 1) * 1e6,
        "p99_ms": report["latency_ms"]["p99"],
        "answered": report["completed"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision of the other generator")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, help="a running server (default: an echo server)")
    parser.add_argument("--mix", default="network")
    parser.add_argument("--cards", type=Path, help="card file for --mix auth")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authhost-loadgen-") as work:
        tree = Path(work) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.base],
            check=True, capture_output=True,
        )  # fmt: skip
        echo = None
        port = args.port
        if port is None:
            port = free_port()
            echo = subprocess.Popen(
                [sys.executable, str(ROOT / "benchmarks" / "echo_server.py"), "--port",
                 str(port)], stdout=subprocess.PIPE,
            )  # fmt: skip
            assert echo.stdout is not None
            echo.stdout.readline()  # "listening on ..."
        try:
            ratios = []
            for round_no in range(1, args.rounds + 1):
                sides = [("base", tree), ("new", ROOT)]
                if round_no % 2 == 0:
                    sides.reverse()  # whichever runs first alternates
                got = {
                    name: run_once(src, args, port, Path(work) / f"{name}.json")
                    for name, src in sides
                }
                ratio = got["new"]["cpu_us_per_request"] / got["base"]["cpu_us_per_request"]
                ratios.append(ratio)
                print(
                    f"round {round_no}: generator CPU per request base "
                    f"{got['base']['cpu_us_per_request']:.0f} us (p99 {got['base']['p99_ms']} ms)"
                    f", new {got['new']['cpu_us_per_request']:.0f} us "
                    f"(p99 {got['new']['p99_ms']} ms): new/base {ratio:.3f}",
                    flush=True,
                )
            print(f"mean new/base {statistics.mean(ratios):.3f}")
        finally:
            if echo is not None:
                echo.terminate()
                echo.wait(timeout=10)
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                capture_output=True,
            )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
