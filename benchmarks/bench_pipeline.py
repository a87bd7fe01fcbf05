"""The authorisation path in one process, without sockets: CPU per decision.

``benchmarks/run`` measures the server over TCP, where the load generator and the host's
noise share the two CPUs; a change of a few per cent on the decision path is lost in it.
This runs what a server process does per request but the socket work (decode the frame
body, ``AuthService.decide_many`` on the store, encode the answer) on one thread, in
batches as a connection's read hands them over, and reports the process's CPU time per
decision (``time.process_time``: what other processes do barely moves it). The store is a
copy of the benchmark database, so every run starts from the same data.

    benchmarks/run --keep --no-redis --seconds 2      # once: a work directory to copy
    .venv/bin/python benchmarks/bench_pipeline.py /tmp/authhost-bench-XXXX
    .venv/bin/python benchmarks/bench_pipeline.py /tmp/authhost-bench-XXXX --batch 1 --rounds 7
    .venv/bin/python benchmarks/bench_pipeline.py /tmp/authhost-bench-XXXX --profile out.prof

The work directory is a kept ``benchmarks/run`` one (its ``sqlite.toml``, ``authhost.db``,
card file and model). Each round decides ``--requests`` new transmissions (fresh STAN and
RRN) of the benchmark's mix; the first round, not counted, loads every card's counters. The
median round is reported, with every round's figure.

With ``--base REV`` it compares two versions of the code instead: the base revision (a git
worktree) and the working tree run one after the other, ``--pairs`` times, each in its own
process on its own copy of the database, and the mean ratio new/base of their medians is
reported. The base must read the work directory's database (same schema version or newer).

    .venv/bin/python benchmarks/bench_pipeline.py /tmp/authhost-bench-XXXX --base HEAD --pairs 6
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from authhost.config import load_config  # noqa: E402
from authhost.iso.codec import decode_message, encode_response  # noqa: E402
from authhost.runtime import open_runtime  # noqa: E402
from simulator import mixes  # noqa: E402
from simulator.demo_cards import load_demo_file  # noqa: E402
from simulator.wire import Template  # noqa: E402


def copy_work(source: Path, into: Path) -> Path:
    """The work directory's config, keys, cards and database, copied (the model is read in
    place); the config's relative paths resolve against the copy."""
    for name in os.listdir(source):
        path = source / name
        if path.is_file() and not name.endswith((".log", ".parquet", ".pid")):
            shutil.copy2(path, into / name)
    return into


async def measure(
    work: Path, batch: int, requests: int, rounds: int, profile: cProfile.Profile | None = None
) -> list[float]:
    config = load_config(work / "sqlite.toml")
    demo = load_demo_file(work / "cards-sqlite.json")
    async with open_runtime(config) as runtime:
        handler = runtime.handler
        from authhost.iso.dialects import get_dialect

        dialect = get_dialect(config.server.dialect)
        templates = [Template(fields, dialect) for fields in mixes.authorisations(demo)]
        serial = int(time.time()) % 1_000_000

        async def one_round(count: int) -> float:
            nonlocal serial
            started = time.process_time()
            done = 0
            while done < count:
                requests_ = []
                for _ in range(batch):
                    serial += 1
                    template = templates[serial % len(templates)]
                    number = f"{serial % 1_000_000:06d}".encode()
                    body = template.body(number, b"BP" + f"{serial % 10**10:010d}".encode())
                    requests_.append(decode_message(bytes(body), dialect))
                outcomes = await handler.decide_many(requests_, time.time())
                for request, outcome in zip(requests_, outcomes, strict=True):
                    if isinstance(outcome, Exception):
                        raise outcome
                    encode_response(request, outcome, dialect)
                done += batch
            return (time.process_time() - started) / done * 1e6

        await one_round(max(len(templates) * 2, 2_000))  # every card's counters loaded
        if profile is not None:
            profile.enable()
        try:
            return [await one_round(requests) for _ in range(rounds)]
        finally:
            if profile is not None:
                profile.disable()


def one_side(work: Path, source: Path, args: argparse.Namespace) -> float:
    """The median CPU per decision of one run of this script on ``source``'s code."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, __file__, str(work), "--batch", str(args.batch),
             "--requests", str(args.requests), "--rounds", str(args.rounds),
             "--json", out.name],
            check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(source)},
        )  # fmt: skip
        return float(json.loads(Path(out.name).read_text())["median_us"])


def compare(args: argparse.Namespace) -> int:
    """Base and new code alternately, ``--pairs`` times: the mean ratio new/base."""
    tree = Path(tempfile.mkdtemp(prefix="bench-pipeline-base-")) / "tree"
    added = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.base],
        capture_output=True, text=True,
    )  # fmt: skip
    if added.returncode != 0:
        print(f"cannot check out --base {args.base}: {added.stderr.strip()}", file=sys.stderr)
        return 2
    ratios: list[float] = []
    try:
        for pair in range(1, args.pairs + 1):
            base = one_side(args.work, tree / "src", args)
            new = one_side(args.work, ROOT / "src", args)
            ratios.append(new / base)
            print(f"pair {pair}: base {base:.1f} µs, new {new:.1f} µs, new/base {new / base:.3f}")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True)  # fmt: skip
    print(f"new/base CPU per decision: mean {statistics.mean(ratios):.3f}, "
          f"pairs {', '.join(f'{r:.3f}' for r in ratios)}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="a kept benchmarks/run work directory")
    parser.add_argument("--batch", type=int, default=4, help="requests decided together")
    parser.add_argument("--requests", type=int, default=5_000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the measured rounds here (slower)"
    )
    parser.add_argument("--base", help="compare against this git revision (see above)")
    parser.add_argument("--pairs", type=int, default=6, help="with --base: base/new runs")
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    if args.base:
        return compare(args)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = copy_work(args.work, Path(tmp))
        os.chdir(work)
        profile = cProfile.Profile() if args.profile else None
        figures = trio.run(measure, work, args.batch, args.requests, args.rounds, profile)
    if profile is not None:
        profile.dump_stats(args.profile)
    median = statistics.median(figures)
    print(
        f"CPU per decision: median {median:.1f} µs; rounds "
        + ", ".join(f"{f:.1f}" for f in figures)
    )
    if args.json:
        args.json.write_text(json.dumps({"median_us": median, "rounds_us": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
