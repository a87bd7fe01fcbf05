#!/usr/bin/env python3
"""Clearing import throughput: presentments posted one 0220 at a time against ``BATCH`` at a
time (one group commit per batch), alternated in the same run on fresh presentments each.

In a temporary directory: a demo installation with ``--cards`` benchmark cards
(``bench_cards.py``), authorisations (0100, e-commerce with CVV2 and chip with PIN, 0.01 EUR)
decided in process by the server's own ``AuthService``, then for each round one clearing
file's worth of presentments against its own authorisations, posted with batch size 1 and
with the default, alternately. Reports presentments/s per round and the median ratio.

    .venv/bin/python benchmarks/bench_clearing.py [--cards 200] [--rows 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from authhost.admin.clearing import BATCH, Presentment, post_presentments  # noqa: E402
from authhost.cards.luhn import luhn_check_digit  # noqa: E402
from authhost.config import load_config  # noqa: E402
from authhost.iso.codec import decode_message, encode_request  # noqa: E402
from authhost.iso.dialects import get_dialect  # noqa: E402
from authhost.runtime import open_runtime  # noqa: E402
from simulator.demo_cards import load_demo_file  # noqa: E402
from simulator.mixes import authorisations  # noqa: E402


async def authorise(runtime, templates, count: int, serial: list[int]) -> list[Presentment]:  # type: ignore[no-untyped-def]
    """``count`` approved authorisations, returned as the presentments that settle them."""
    dialect = get_dialect("ascii-binary-bitmap")
    out: list[Presentment] = []
    while len(out) < count:
        requests = []
        for _ in range(min(64, count - len(out))):
            serial[0] += 1
            n = serial[0]
            fields = dict(templates[n % len(templates)])
            fields.update({"t": "0100", "11": f"{n % 1_000_000:06d}", "37": f"8{n:011d}",
                           "7": time.strftime("%m%d%H%M%S", time.gmtime())})  # fmt: skip
            requests.append(decode_message(encode_request(fields, dialect), dialect))
        decisions = await runtime.handler.decide_many(requests, time.time())
        for request, decision in zip(requests, decisions, strict=True):
            if isinstance(decision, Exception) or decision.response_code != "00":
                continue
            out.append(
                Presentment(
                    line=len(out) + 2,
                    pan=request.pan,
                    approval_code=decision.approval_code or "",
                    amount_minor=2,  # the tip: one cent more than authorised
                    currency=request.currency or "978",
                    presented_at=time.time(),
                    # a full ARN (kept on the 0220's entry, as a network's file's is): its
                    # last 12 digits, the import's RRN, unique as the authorisation's are
                    arn=_full_arn(f"7{len(out):010d}{request.rrn[1:]}"),
                )
            )
    return out


def _full_arn(first22: str) -> str:
    """A 23-digit ARN: ``first22`` and its check digit, as a network's clearing file has."""
    return first22 + luhn_check_digit(first22)


async def run(work: Path, args: argparse.Namespace) -> dict:
    config = load_config(work / "authhost.toml").replace("security", demo=True)
    templates = authorisations(load_demo_file(work / "cards.json"))
    serial = [0]
    rates: dict[str, list[float]] = {"batch 1": [], f"batch {BATCH}": []}
    async with open_runtime(config) as runtime:
        for round_no in range(args.rounds):
            order = (1, BATCH) if round_no % 2 == 0 else (BATCH, 1)
            for size in order:
                rows = await authorise(runtime, templates, args.rows, serial)
                started = time.perf_counter()
                report = await post_presentments(
                    rows, runtime.store, runtime.security.pan_index,
                    runtime.handler.decide_many, batch=size,
                )  # fmt: skip
                elapsed = time.perf_counter() - started
                assert report["outcomes"] == {"matched": len(rows)}, report["outcomes"]
                rates[f"batch {size}"].append(len(rows) / elapsed)
                print(f"round {round_no + 1}, batch {size}: {len(rows) / elapsed:,.0f} /s")
            started = time.perf_counter()  # matching alone: the same rows again, a dry run
            await post_presentments(rows, runtime.store, runtime.security.pan_index, None)
            matching = len(rows) / (time.perf_counter() - started)
            rates.setdefault("matching only (dry run)", []).append(matching)
            print(f"round {round_no + 1}, matching only: {matching:,.0f} /s")
    one, many = rates["batch 1"], rates[f"batch {BATCH}"]
    return {
        "rows_per_round": args.rows,
        "presentments_per_s": rates,
        "median_ratio_batched_to_one_by_one": statistics.median(
            b / a for a, b in zip(one, many, strict=True)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2000, help="presentments per round and size")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authhost-clearing-") as tmp:
        work = Path(tmp)
        (work / "authhost.toml").write_text(
            '[store]\nurl = "sqlite:///authhost.db"\n[security]\nkey_store = "authhost-keys.json"\n'
            "demo = true\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        authhost = [sys.executable, "-m", "authhost"]
        subprocess.run([*authhost, "demo", "--config", "authhost.toml"], cwd=work, env=env,
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_cards.py"), "--cards",
                        str(args.cards), "--out", "cards.json", "--config", "authhost.toml"],
                       cwd=work, env=env, check=True, capture_output=True)  # fmt: skip
        cwd = os.getcwd()
        os.chdir(work)
        try:
            result = trio.run(run, work, args)
        finally:
            os.chdir(cwd)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
