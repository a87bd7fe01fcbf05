#!/usr/bin/env python3
"""Model drift report cost: the time per journal entry the report reads.

A model (gradient-boosted trees, as ``authhost train`` makes it, on a small synthetic export)
is the champion. A fresh store (a temporary SQLite file, or the Redis of ``--redis-url`` under
its own key prefix) gets ``--cards`` cards' synthetic traffic over ``--days`` days
(``models.synthetic``), journalled with the champion's score as the server journals it. Then
the report (``admin.model_drift``, as the API runs it) measures the last day against the
artifact's reference: it streams that day and the 30 days before it (the cards' velocity
history) through the replay, computes the feature vectors of the day's scored requests and
bins them. Separately: the replay alone (contexts and features from rows in memory) and the
binning alone, per entry.

    .venv/bin/python benchmarks/bench_model_drift.py [--cards 1000] [--days 31]
    .venv/bin/python benchmarks/bench_model_drift.py --redis-url redis://127.0.0.1:6379/1

On Redis the data stays under its own key prefix (bench-drift-...): use a database to flush.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import trio

from authhost.admin.model_drift import model_drift
from authhost.cards.velocity import RETENTION_S
from authhost.models.context import replay_contexts
from authhost.models.drift import DriftTally
from authhost.models.features import feature_values
from authhost.models.registry import Registry
from authhost.models.scored import scored_online
from authhost.models.synthetic import DAY, START_TS, generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train
from authhost.store import open_store
from authhost.store.interface import Commit, JournalQuery
from authhost.store.records import JournalEntry

FIELDS = {f.name for f in dataclasses.fields(JournalEntry)} - {"journal_id"}


def trained_model(root: Path) -> Path:
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(generate_rows(cards=200, days=20, seed=5)), data)
    config = TrainConfig(models=["hgb"], split=SplitConfig(test_days=5, gap_days=1),
                         hgb=HgbConfig(threads=1))  # fmt: skip
    result = train(data, root / "models", config, run_id="bench")
    Registry(root / "models").activate(result.artifacts["hgb"].name)
    return root / "models"


def journalled(rows: list[dict], models: Path) -> list[JournalEntry]:
    champion = Registry(models).load_active()[0]
    assert champion is not None
    entries = []
    for row, ctx in replay_contexts(rows):
        values = {k: row[k] for k in FIELDS if k in row}
        if scored_online(row):
            score = champion.score_one(ctx)
            values |= {"fraud_score": score, "model_score": score}
        entries.append(JournalEntry(**values))
    return entries


async def run(url: str, prefix: str, models: Path, rows: list[dict], rounds: int) -> None:
    store = await open_store(url, prefix=prefix) if prefix else await open_store(url)
    try:
        started = time.perf_counter()
        entries = journalled(rows, models)
        for i in range(0, len(entries), 1000):
            await store.commit_many([Commit(e) for e in entries[i : i + 1000]])
        print(f"journalled {len(entries)} entries in {time.perf_counter() - started:.1f} s")
        until = max(e.ts for e in entries) + 1
        since = until - DAY
        read = [e async for e in store.export_journal(JournalQuery(since=since - RETENTION_S,
                                                                   until=until))]  # fmt: skip
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            report = await model_drift(store, models, since, until)
            best = min(best, time.perf_counter() - started)
        print(
            f"report: {len(read)} entries read ({report['rows']} scored requests in the day), "
            f"{best:.2f} s, {best / len(read) * 1e6:.1f} µs per entry read, "
            f"{best / report['rows'] * 1e6:.0f} µs per scored request of the day"
        )
        started = time.perf_counter()
        async for _ in store.export_journal(JournalQuery(since=since - RETENTION_S, until=until)):
            pass
        export = time.perf_counter() - started
        print(f"of which reading the journal: {export / len(read) * 1e6:.1f} µs per entry")
    finally:
        await store.close()


def pure_costs(models: Path, rows: list[dict]) -> None:
    """The replay and the binning alone, rows in memory."""
    scorer = Registry(models).load_active()[0]
    assert scorer is not None
    started = time.perf_counter()
    vectors = [
        feature_values(ctx, scorer.terminal_risk, units=scorer.amount_units)
        for _, ctx in replay_contexts(rows)
    ]
    replay = time.perf_counter() - started
    matrix = np.array(vectors)
    reference = scorer.artifact.reference
    assert reference is not None
    started = time.perf_counter()
    tally = DriftTally(reference)
    for chunk in np.array_split(matrix, max(1, len(matrix) // 2048)):
        tally.add_rows(chunk)
    binning = time.perf_counter() - started
    print(
        f"replay with features: {replay / len(rows) * 1e6:.1f} µs per row; binning "
        f"{len(reference.features)} features: {binning / len(rows) * 1e6:.2f} µs per row"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = trained_model(Path(tmp))
        rows = generate_rows(cards=args.cards, days=args.days, seed=11, start_ts=START_TS)
        pure_costs(models, rows)
        url = args.redis_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        prefix = f"bench-drift-{secrets.token_hex(4)}" if args.redis_url else ""
        trio.run(run, url, prefix, models, rows, args.rounds)


if __name__ == "__main__":
    main()
