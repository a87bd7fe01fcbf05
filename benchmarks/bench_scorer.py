"""Fraud scorer latency: the numpy scorer against scikit-learn's predict_proba, in the same run.

Usage:
    .venv/bin/python benchmarks/bench_scorer.py [--artifact DIR] [--rounds 7] [--json]

Without ``--artifact`` a gradient-boosted model is trained here on synthetic labelled traffic
with the default ``authhost train`` hyperparameters (150 trees, up to 15 leaves, depth 6), so
the tree count and depth are what serving meets. Each measurement is the median over
interleaved rounds (baseline and candidate alternate, so machine noise hits both):

- sklearn predict_proba, one row (the baseline the budget was written against)
- numpy trees, one row (model only; same feature vector)
- generated Python trees, one row (what ``score_one`` runs; bit-identical to numpy's)
- Scorer.score_one(ctx) (features from the TxContext + model: what the auth step pays)
- Scorer.score(contexts) per row, micro-batches of 8 and 32
- ModelService.score(ctx) with a challenger scoring in shadow (both models)
- Scorer.explain(ctx): the top three reasons of a score (journalled for high scores only)

It also times the offline replay (journal rows -> contexts) with the incremental sliding
window against recomputing ``compute_velocity`` per row, the pre-``cards.sliding`` method.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from authhost.cards.velocity import RETENTION_S, compute_velocity
from authhost.models.artifact import write_artifact
from authhost.models.context import (
    VELOCITY_CLASSES,
    _text,
    context_from_row,
    event_from_row,
    replay_contexts,
)
from authhost.models.dataset import labelled_set
from authhost.models.export import export_hgb
from authhost.models.features import feature_matrix
from authhost.models.scorer import Scorer
from authhost.models.serving import ModelService
from authhost.models.synthetic import generate_rows
from authhost.models.terminal_risk import TerminalRisk
from authhost.models.training import HgbConfig


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def _train_model(rows: list[dict[str, object]], directory: Path) -> tuple[Path, object]:
    data = labelled_set(rows)
    h = HgbConfig()
    model = HistGradientBoostingClassifier(
        learning_rate=h.learning_rate,
        max_iter=h.max_iter,
        max_leaf_nodes=h.max_leaf_nodes,
        max_depth=h.max_depth,
        min_samples_leaf=h.min_samples_leaf,
        l2_regularization=h.l2_regularization,
        early_stopping=False,
        random_state=0,
    )
    with threadpool_limits(1):
        model.fit(data.features, data.labels)
    path = write_artifact(
        directory / "bench-hgb", "hgb", export_hgb(model), TerminalRisk(), {"threshold": 900}
    )
    return path, model


def _old_replay(rows: list[dict[str, object]]) -> int:
    """The replay before models.sliding: compute_velocity over the card's retained events."""
    history: dict[str, list] = {}
    n = 0
    for row in rows:
        ts = float(row["ts"])  # type: ignore[arg-type]
        card = _text(row, "card_id")
        events = history.setdefault(card, [])
        if events and ts - events[0].ts > RETENTION_S:
            events[:] = [e for e in events if ts - e.ts <= RETENTION_S]
        context_from_row(row, compute_velocity(events, ts))
        if card and (_text(row, "message_class") or "authorisation") in VELOCITY_CLASSES:
            events.append(event_from_row(row))
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, help="artifact directory to measure")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = generate_rows(cards=600, days=30, seed=11, fraud_card_share=0.05)
    contexts = [ctx for _, ctx in replay_contexts(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        if args.artifact:
            path, sk_model = args.artifact, None
        else:
            path, sk_model = _train_model(rows, Path(tmp))
        scorer = Scorer.load(path)
        challenger = Scorer.load(path)
    service = ModelService(scorer, challenger)
    X = feature_matrix(contexts[:4000], scorer.terminal_risk, units=scorer.amount_units)
    x0 = X[len(X) // 2]
    ctx0 = contexts[len(contexts) // 2]
    values0 = x0.tolist()
    row_function = getattr(scorer._model, "row_function", None)
    calls = args.calls
    batches = {size: contexts[1000 : 1000 + size] for size in (8, 32)}

    measures: dict[str, list[float]] = {}
    with threadpool_limits(1):
        for _ in range(args.rounds):
            if sk_model is not None:
                row = x0[None, :]
                measures.setdefault("sklearn predict_proba, one row", []).append(
                    _per_call_us(lambda r=row: sk_model.predict_proba(r), max(50, calls // 20))
                )
            measures.setdefault("numpy trees, one row (model only)", []).append(
                _per_call_us(lambda: scorer._model.raw_one(x0), calls)
            )
            if row_function is not None:
                measures.setdefault("generated trees, one row (score_one's model)", []).append(
                    _per_call_us(lambda: row_function(values0), calls)
                )
            measures.setdefault("Scorer.score_one(ctx) (features + model)", []).append(
                _per_call_us(lambda: scorer.score_one(ctx0), calls)
            )
            for size, batch in batches.items():
                measures.setdefault(f"Scorer.score(batch of {size}) per row", []).append(
                    _per_call_us(lambda b=batch: scorer.score(b), max(20, calls // size)) / size
                )
            measures.setdefault("ModelService.score(ctx), champion + challenger", []).append(
                _per_call_us(lambda: service.score(ctx0), calls)
            )
            measures.setdefault("Scorer.explain(ctx), top three reasons", []).append(
                _per_call_us(lambda: scorer.explain(ctx0), max(50, calls // 4))
            )
    medians = {name: statistics.median(values) for name, values in measures.items()}
    best = {name: min(values) for name, values in measures.items()}

    replay_rows = rows[: min(len(rows), 30_000)]
    started = time.perf_counter()
    for _ in replay_contexts(replay_rows):
        pass
    incremental = time.perf_counter() - started
    started = time.perf_counter()
    _old_replay(replay_rows)
    recompute = time.perf_counter() - started

    baseline = medians.get("sklearn predict_proba, one row")
    arrays = scorer.artifact.arrays
    model_info = {
        "kind": scorer.kind,
        "trees": int(len(arrays["tree_start"]) - 1) if scorer.kind == "hgb" else 0,
        "max_depth": int(getattr(scorer._model, "depth", 0)),
    }
    result = {
        "model": model_info,
        "rounds": args.rounds,
        "median_us": medians,
        "best_round_us": best,
        "speedup_vs_sklearn_one_row": {
            name: baseline / value for name, value in medians.items() if baseline and value
        },
        "cpu_share_at_2000_auth_per_s": {
            name: value * 2000 / 1e6 for name, value in medians.items()
        },
        "replay": {
            "rows": len(replay_rows),
            "incremental_us_per_row": incremental / len(replay_rows) * 1e6,
            "recompute_us_per_row": recompute / len(replay_rows) * 1e6,
            "speedup": recompute / incremental,
        },
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"model: {model_info}; median of {args.rounds} interleaved rounds")
    print(
        f"{'measure (mean per call in a round)':52s} {'median us':>9s} {'best us':>8s} "
        f"{'vs sklearn':>11s} {'core@2000/s':>12s}"
    )
    for name, value in medians.items():
        ratio = f"{baseline / value:10.0f}x" if baseline else "n/a"
        print(f"{name:52s} {value:9.1f} {best[name]:8.1f} {ratio:>11s} {value * 2000 / 1e6:11.1%}")
    r = result["replay"]
    print(
        f"replay of {r['rows']} rows: incremental {r['incremental_us_per_row']:.1f} us/row, "
        f"recompute per row {r['recompute_us_per_row']:.1f} us/row ({r['speedup']:.1f}x)"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
