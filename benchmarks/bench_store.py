"""Card store benchmark: authorisations (one snapshot + one commit) per second, per backend,
as a ratio to a bare round trip to the same backend in the same run.

Baselines: SQLite = ``SELECT 1`` through the store's own reader thread (the cost of getting a
job to SQLite and the answer back into the event loop); Redis = ``PING`` through the same
coredis client. Each round runs the baseline, then the authorisation workload, at the same
concurrency (tasks in one trio process, as the server runs them); the median round is
reported. The workload: 200 active cards on 20 accounts, each authorisation reads the
snapshot (card, account, product, velocity over the card's events, dedupe lookup) and commits
a hold with a velocity event and a journal entry.

    .venv/bin/python benchmarks/bench_store.py                       # sqlite and redis
    .venv/bin/python benchmarks/bench_store.py --backend sqlite --seconds 3
    .venv/bin/python benchmarks/bench_store.py --redis-url redis://127.0.0.1:6379/0
    .venv/bin/python benchmarks/bench_store.py --json out.json
    .venv/bin/python benchmarks/bench_store.py --processes 2      # two processes, one store

Without ``--redis-url`` a private redis-server is started on a free port (if installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import secrets
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import trio

from authhost.cards.model import Account, CardKind, CardState, Product
from authhost.cards.production import PanFacts, new_card, new_card_id, new_pan
from authhost.security.pan_protection import pan_index, seal_pan
from authhost.store import open_store
from authhost.store.interface import Commit, MoneyMove, Movement, SnapshotQuery
from authhost.store.records import JournalEntry

HASH_KEY = b"benchmark-only pan hash key 32b!"
DATA_KEY = b"B" * 32
PRODUCT = Product("bench", "bank", "Bench debit", "400000")
CARDS, ACCOUNTS = 200, 20


async def seed(store) -> list:
    await store.put_product(PRODUCT)
    for a in range(ACCOUNTS):
        await store.create_account(Account(f"acc-{a}", "978", CardKind.DEBIT, balance=10**15))
    cards = []
    now = time.time()
    for n in range(CARDS):
        pan = new_pan(PRODUCT.bin)
        card_id = new_card_id()
        card = new_card(
            PRODUCT,
            PanFacts.of(pan, pan_index(HASH_KEY, pan)),
            card_id=card_id,
            account_id=f"acc-{n % ACCOUNTS}",
            now=now,
        )
        from dataclasses import replace

        card = replace(card, state=CardState.ACTIVE)
        await store.create_card(card, seal_pan(DATA_KEY, 1, pan, card_id))
        cards.append(card)
    return cards


def authorisation(store, cards, counter: Iterator[int]) -> Callable[[], Awaitable[None]]:
    async def one() -> None:
        n = next(counter)
        card = cards[n % len(cards)]
        now = time.time()
        dedupe = f"0100|{n:06d}|bench|{secrets.token_hex(4)}"
        snapshot = await store.snapshot(SnapshotQuery(card.pan_index, now, dedupe_key=dedupe))
        assert snapshot.card is not None
        entry = JournalEntry(
            ts=now,
            mti="0100",
            message_class="authorisation",
            response_code="00",
            card_id=card.card_id,
            pan_masked=card.masked_pan,
            pan_index=card.pan_index,
            account_id=card.account_id,
            amount_minor=1000,
            currency="978",
            dedupe_key=dedupe,
            match_key=f"{n}|bench",
        )
        await store.commit(
            Commit(
                journal=entry,
                movement=Movement(card.account_id, MoneyMove.HOLD, 1000),
                card_id=card.card_id,
            )
        )

    return one


async def rate(op: Callable[[], Awaitable[None]], seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op()
            done += 1

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return done / (time.perf_counter() - start)


async def measure(
    url: str, prefix: str, seconds: float, rounds: int, concurrency: int, shared: bool = False
) -> dict:
    """One process's figures. ``shared``: the data was seeded by the parent (--processes)."""
    store = await open_store(url, prefix=prefix)
    try:
        cards = await store.list_cards(limit=CARDS) if shared else await seed(store)
        counter = iter(range(10**12))
        auth = authorisation(store, cards, counter)
        if url.startswith("sqlite"):
            reader = store._reader  # the store's own thread: same path as every query

            async def baseline() -> None:
                await reader.run(lambda conn: conn.execute("SELECT 1").fetchone())

            baseline_name = "SELECT 1 round trip"
        else:
            client = store.client

            async def baseline() -> None:
                await client.ping()

            baseline_name = "PING round trip"
        await rate(auth, 0.5, concurrency)  # warm-up: caches, scripts loaded
        base_rates, auth_rates = [], []
        for _ in range(rounds):
            base_rates.append(await rate(baseline, seconds, concurrency))
            auth_rates.append(await rate(auth, seconds, concurrency))
        base, auths = statistics.median(base_rates), statistics.median(auth_rates)
        return {
            "baseline": baseline_name,
            "baseline_per_s": round(base),
            "authorisations_per_s": round(auths),
            "ratio_to_baseline": round(auths / base, 3),
            "rounds": rounds,
            "seconds_per_run": seconds,
            "concurrency": concurrency,
        }
    finally:
        if hasattr(store, "drop_all") and not shared:
            await store.drop_all()
        await store.close()


async def seed_only(url: str, prefix: str) -> None:
    store = await open_store(url, prefix=prefix)
    try:
        await seed(store)
    finally:
        await store.close()


async def drop(url: str, prefix: str) -> None:
    store = await open_store(url, prefix=prefix)
    try:
        if hasattr(store, "drop_all"):
            await store.drop_all()
    finally:
        await store.close()


def _child(args: tuple) -> dict:
    return trio.run(measure, *args, True)


def run_backend(url: str, prefix: str, args: argparse.Namespace) -> dict:
    """Figures for one backend; with --processes N, N processes share one store and the
    per-second figures are their sums."""
    if args.processes == 1:
        return trio.run(measure, url, prefix, args.seconds, args.rounds, args.concurrency)
    trio.run(seed_only, url, prefix)
    job = (url, prefix, args.seconds, args.rounds, args.concurrency)
    try:
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            parts = pool.map(_child, [job] * args.processes)
    finally:
        trio.run(drop, url, prefix)
    total = dict(parts[0])
    for key in ("baseline_per_s", "authorisations_per_s"):
        total[key] = sum(part[key] for part in parts)
    total["ratio_to_baseline"] = round(total["authorisations_per_s"] / total["baseline_per_s"], 3)
    total["processes"] = args.processes
    return total


@contextlib.contextmanager
def private_redis() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each timed run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--processes", type=int, default=1, help="processes sharing one store (serve --workers)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, private_redis() as own_redis:
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{tmp}/bench.db"
            results["sqlite"] = run_backend(url, "bench", args)
        redis_url = args.redis_url or own_redis
        if args.backend in ("redis", "both"):
            if redis_url is None:
                print("redis: skipped (no redis-server installed and no --redis-url)")
            else:
                prefix = f"bench{secrets.token_hex(4)}"
                results["redis"] = run_backend(redis_url, prefix, args)
    for backend, result in results.items():
        print(
            f"{backend:7s} x{result.get('processes', 1)} "
            f"{result['authorisations_per_s']:>7} snapshot+commit/s   "
            f"baseline {result['baseline']}: {result['baseline_per_s']}/s   "
            f"ratio {result['ratio_to_baseline']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
