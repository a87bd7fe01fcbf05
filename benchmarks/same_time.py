#!/usr/bin/env python3
"""Old code against new, loaded at the same time: the A/B that a noisy shared host allows.

``benchmarks/run`` measures phases one after another; on this machine the speed of the host
changes by a factor of two within minutes, so two runs, or two phases of one run, cannot tell
a 5% change from the weather. This runs the server at a base revision (a git worktree) and the
server of the working tree side by side, each on its own copy of one SQLite file with its own
load generator, started together: whatever slows the host slows both. Each round reports the
server CPU per answer of each (from /proc, over the measured window, at the side's mean
rate) and throughput; the side started first alternates between rounds.

    python benchmarks/same_time.py --base d1e86ec            # 4 rounds, 2 workers, closed loop
    python benchmarks/same_time.py --base HEAD~1 --rate 800  # open loop at 800/s each

Both sides compete for the same cores, so absolute figures are higher than a lone server's;
read the ratio. The database is created by the base code (a newer schema cannot be opened by
older code) and copied for the new side, which migrates it forward on start.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from suite import (  # noqa: E402
    BIN,
    authhost,
    cpu_seconds,
    free_port,
    run_quiet,
    start,
)

DEFAULT_RULES = ROOT / "examples" / "rules" / "fraud_rules.toml"


def config(
    work: Path, name: str, workers: int, models: Path | None, rules: Path = DEFAULT_RULES
) -> tuple[Path, int]:
    port = free_port()
    rules = rules.resolve()
    lines = [
        "[server]", f"port = {port}", f"metrics_port = {free_port()}", f"workers = {workers}",
        f'pid_file = "{name}.pid"', "[admin]", f"port = {free_port()}", "[store]",
        'url = "sqlite:///authhost.db"', "[rules]", f'file = "{rules}"',
        f'lists_dir = "{rules.parent / "lists"}"',
    ]  # fmt: skip
    if models is not None:
        lines += ["[models]", f'dir = "{models.resolve()}"']
    path = work / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, port


def prepare(work: Path, base_src: Path, cards: int) -> Path:
    """Keys, demo cards and benchmark cards in ``work/seed``, written by the base code."""
    seed = work / "seed"
    seed.mkdir()
    conf, _ = config(seed, "seed", 1, None)
    log = work / "setup.log"
    with_base = ["env", f"PYTHONPATH={base_src}"]
    run_quiet([*with_base, *authhost("demo", "--config", str(conf))], seed, log, 120)
    run_quiet(
        [*with_base, sys.executable, str(ROOT / "benchmarks" / "bench_cards.py"), "--cards",
         str(cards), "--out", "cards.json", "--config", str(conf)],
        seed, log, 300,
    )  # fmt: skip
    return seed


def bench(port: int, cards: Path, load: list[str], seconds: float, out: Path) -> subprocess.Popen:
    command = [
        str(BIN / "authhost-sim"), "bench", "--port", str(port), "--mix", "auth",
        "--cards", str(cards), "--count", "0", "--duration", str(seconds), *load,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=out.open("w"), stderr=subprocess.STDOUT)


def throughput(text: str) -> float:
    found = re.search(r"throughput\D*([\d,]+) /s", text)
    return float(found.group(1).replace(",", "")) if found else 0.0


def p99_ms(text: str) -> float:
    found = re.search(r"latency p99 \D*([\d.]+) ms", text)
    return float(found.group(1)) if found else 0.0


def one_round(args: argparse.Namespace, work: Path, seed: Path, sources: dict[str, Path],
              round_no: int) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    """Both servers under load at once; (server CPU µs per answer, answers/s, p99 ms) per
    side, base first."""
    load = ["--rate", str(args.rate)] if args.rate else ["--concurrency", str(args.concurrency)]
    servers, loads = {}, {}
    order = ("base", "new") if round_no % 2 else ("new", "base")  # who starts first alternates
    try:
        for side in order:
            place = work / side
            shutil.copy(seed / "authhost.db", place / "authhost.db")
            for suffix in ("-wal", "-shm"):
                (place / f"authhost.db{suffix}").unlink(missing_ok=True)
            rules = args.new_rules if side == "new" else DEFAULT_RULES
            models = args.new_models if side == "new" and args.new_models else args.models
            conf, port = config(place, "ab", args.workers, models, rules)
            command = ["env", f"PYTHONPATH={sources[side]}",
                       *authhost("serve", "--demo", "--config", str(conf))]  # fmt: skip
            log = place / "serve.log"
            servers[side] = start(side, command, place, port, log, workers=args.workers)
        time.sleep(2)  # both warm: rules, model, first connections
        for side in order:
            out = work / f"bench-{side}-{round_no}.txt"
            cards = work / side / "cards.json"
            loads[side] = bench(servers[side].port, cards, load, args.seconds + 4, out)
        time.sleep(2)
        before = {side: cpu_seconds(server.process.pid) for side, server in servers.items()}
        time.sleep(args.seconds)
        spent = {side: cpu_seconds(s.process.pid) - before[side] for side, s in servers.items()}
        for process in loads.values():
            process.wait(timeout=60)
    finally:
        for server in servers.values():
            server.stop()
    result = {}
    for side in ("base", "new"):
        text = (work / f"bench-{side}-{round_no}.txt").read_text()
        rate = throughput(text)
        result[side] = (spent[side] / max(rate * args.seconds, 1) * 1e6, rate, p99_ms(text))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="git revision of the old code")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32, help="closed loop, per side")
    parser.add_argument("--rate", type=float, default=None, help="open loop: requests/s per side")
    parser.add_argument(
        "--models", type=Path, default=None, help="a models directory with an active model "
        "(e.g. a kept benchmarks/run work directory's); without it the model step is off",
    )  # fmt: skip
    parser.add_argument(
        "--new-rules", type=Path, default=DEFAULT_RULES, help="the new side's rules file (the "
        "base side keeps examples/rules/fraud_rules.toml): what a rule set costs, e.g. "
        "--base HEAD --new-rules examples/rules/merchant_rules.toml",
    )  # fmt: skip
    parser.add_argument(
        "--new-models", type=Path, default=None, help="the new side's models directory (the "
        "base side keeps --models): what a model costs, e.g. one of the second feature set "
        "against one of the first, --base HEAD --models DIR1 --new-models DIR2",
    )  # fmt: skip
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="authhost-same-time-"))
    tree = work / "tree"
    added = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.base],
        capture_output=True, text=True,
    )  # fmt: skip
    if added.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        parser.error(f"cannot check out --base {args.base}: {added.stderr.strip()}")
    sources = {"base": tree / "src", "new": ROOT / "src"}
    ratios: list[float] = []
    try:
        seed = prepare(work, sources["base"], args.cards)
        for side in sources:
            shutil.copytree(seed, work / side)
        for round_no in range(1, args.rounds + 1):
            result = one_round(args, work, seed, sources, round_no)
            (base_us, base_rate, base_p99), (new_us, new_rate, new_p99) = result.values()
            if not base_us or not new_us:  # a side answered nothing: no ratio to take
                print(
                    f"round {round_no}: a side measured no CPU (answers/s base "
                    f"{base_rate:,.0f}, new {new_rate:,.0f}); round left out",
                    flush=True,
                )
                continue
            ratios.append(new_us / base_us)
            print(
                f"round {round_no}: server CPU per answer base {base_us:.0f} µs, new "
                f"{new_us:.0f} µs (new/base {ratios[-1]:.3f}); answers/s base {base_rate:,.0f}, "
                f"new {new_rate:,.0f}; p99 base {base_p99:.1f} ms, new {new_p99:.1f} ms",
                flush=True,
            )
        if not ratios:
            print("no round measured both sides")
            return 1
        print(f"new/base server CPU per answer: mean {sum(ratios) / len(ratios):.3f}, "
              f"rounds {', '.join(f'{r:.3f}' for r in ratios)}")  # fmt: skip
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
