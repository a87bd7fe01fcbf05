"""``authhost train``: fit the fraud models on labelled journal exports and export artifacts.

Steps: replay the export into features (``dataset``: only the requests the server's fraud
step scores, ``models.scored``; those declined before it are counted in the report as
``excluded_before_fraud_step``, never trained or evaluated on), split by time (earlier days train, a
gap, the last days test, as labels of recent days are what a deployed model meets next),
compute the delayed terminal risk, fit a logistic regression and a gradient-boosted model
with class weights for the rare fraud class, export both to plain arrays, score the test
days with the numpy scorer (exactly what would serve), and write artifacts, a JSON report
and PNG plots.

The test days see the terminal risk table the artifact ships (known at the end of the
training days), never their own labels: the report measures what serving would get.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from authhost.models.artifact import AMOUNT_UNITS, Artifact, write_artifact
from authhost.models.dataset import (
    DatasetError,
    LabelledSet,
    file_sha256,
    frauds_by_scenario,
    load_labelled,
)
from authhost.models.drift import build_reference
from authhost.models.evaluation import ModelMetrics, evaluate, operating_threshold, write_plots
from authhost.models.features import (
    FEATURE_NAMES,
    FEATURE_SET,
    FEATURE_SETS,
    MISSING_VALUES,
    TERMINAL_RISK_INDEX,
)
from authhost.models.scorer import Scorer
from authhost.models.terminal_risk import DAY_S, TerminalRisk, delayed_rates, risk_table


class TrainingError(ValueError):
    """Training cannot go on (bad config, too little data); the message says why."""


@dataclass(frozen=True)
class SplitConfig:
    test_days: int = 14  # the last days, held out
    gap_days: int = 7  # between train and test: labels of the last train days come late


@dataclass(frozen=True)
class RiskConfig:
    window_days: float = 30.0
    delay_days: float = 7.0  # labels are known this long after the transaction
    smoothing: float = 20.0  # pseudo-transactions at the overall fraud rate


@dataclass(frozen=True)
class OperatingConfig:
    alert_rate: float = 0.005  # share of transactions at or above the threshold
    top_k_cards: int = 100  # k of card precision@k per day


@dataclass(frozen=True)
class LogisticConfig:
    C: float = 1.0
    max_iter: int = 2000
    class_weight: str | float = "balanced"  # "balanced" or the weight of the fraud class


@dataclass(frozen=True)
class HgbConfig:
    learning_rate: float = 0.1
    max_iter: int = 150
    max_leaf_nodes: int = 15  # 31 leaves / depth 7 scored no better on the simulator's
    max_depth: int = 6  # traffic and doubles the nodes the scorer walks
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    class_weight: str | float = 10.0
    random_state: int = 0
    threads: int = 1  # OpenMP threads; more only helps on an otherwise idle machine


@dataclass(frozen=True)
class TrainConfig:
    models: list[str] = field(default_factory=lambda: ["logistic", "hgb"])
    features: str = FEATURE_SET  # features.FEATURE_SETS; the second adds merchant counters
    split: SplitConfig = field(default_factory=SplitConfig)
    terminal_risk: RiskConfig = field(default_factory=RiskConfig)
    operating: OperatingConfig = field(default_factory=OperatingConfig)
    logistic: LogisticConfig = field(default_factory=LogisticConfig)
    hgb: HgbConfig = field(default_factory=HgbConfig)


def _section(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise TrainingError(f"{where}: must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TrainingError(f"{where}: unknown key(s) {', '.join(unknown)}")
    out = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if key == "class_weight":  # "balanced" or a number
            out[key] = value
            continue
        if isinstance(default, bool) or isinstance(value, bool):
            raise TrainingError(f"{where}.{key}: expected a number or string")
        if isinstance(default, int | float) and not isinstance(default, bool):
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise TrainingError(f"{where}.{key}: expected a number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise TrainingError(f"{where}.{key}: expected a whole number, got {value!r}")
            _check_bound(f"{where}.{key}", key, value)
            value = type(default)(value)
        out[key] = value
    if "class_weight" in out:  # refused now, not after the replay
        try:
            _class_weight(out["class_weight"])
        except TrainingError as exc:
            raise TrainingError(f"{where}.{exc}") from None
    return cls(**out)


# the smallest value each setting takes, and whether that value itself is allowed: a negative
# test_days or C, or max_iter 0, made an empty split or a scikit-learn traceback after the
# whole replay; gap_days 1.5 was cut to 1 without a word
_BOUNDS: dict[str, tuple[float, bool]] = {
    "test_days": (1, True),
    "gap_days": (0, True),
    "window_days": (0, False),
    "delay_days": (0, True),
    "smoothing": (0, True),
    "top_k_cards": (1, True),
    "C": (0, False),
    "max_iter": (1, True),
    "learning_rate": (0, False),
    "max_leaf_nodes": (2, True),
    "max_depth": (1, True),
    "min_samples_leaf": (1, True),
    "l2_regularization": (0, True),
    "random_state": (0, True),
    "threads": (1, True),
}


def _check_bound(where: str, key: str, value: float) -> None:
    low, inclusive = _BOUNDS.get(key, (-math.inf, True))
    if value < low or (value == low and not inclusive):
        raise TrainingError(
            f"{where}: must be {'at least' if inclusive else 'more than'} {low}, got {value!r}"
        )


def load_train_config(path: str | Path | None) -> TrainConfig:
    """Hyperparameters from a TOML file; every key optional (defaults above)."""
    if path is None:
        return TrainConfig()
    file = Path(path)
    if not file.is_file():
        raise TrainingError(
            f"{file}: training config not found; every key has a default: leave out --config"
            " to train with the defaults, or write the file (docs/models.md lists its keys)"
        )
    try:
        data = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TrainingError(f"{file}: {exc}") from None
    sections = {
        "split": SplitConfig,
        "terminal_risk": RiskConfig,
        "operating": OperatingConfig,
        "logistic": LogisticConfig,
        "hgb": HgbConfig,
    }
    unknown = sorted(set(data) - set(sections) - {"models", "features"})
    if unknown:
        hints = [_where_it_belongs(name, sections) for name in unknown]
        raise TrainingError(f"{file}: unknown section(s) {', '.join(hints)}")
    models = data.get("models", ["logistic", "hgb"])
    if not isinstance(models, list) or not models or set(models) - {"logistic", "hgb"}:
        raise TrainingError(f"{file}: models must be a list of 'logistic' and/or 'hgb'")
    features = data.get("features", FEATURE_SET)
    if features not in FEATURE_SETS:
        raise TrainingError(f"{file}: features must be one of {', '.join(FEATURE_SETS)}")
    built = {
        name: _section(cls, data.get(name, {}), f"{file}:[{name}]")
        for name, cls in sections.items()
    }
    config = TrainConfig(models=list(models), features=features, **built)
    if not 0 < config.operating.alert_rate < 1:
        raise TrainingError(f"{file}: operating.alert_rate must be between 0 and 1")
    return config


def _where_it_belongs(name: str, sections: dict[str, type]) -> str:
    """``test_days (it belongs under [split])``: a key written above its section's header;
    else the closest section name."""
    owners = [s for s, cls in sections.items() if name in {f.name for f in fields(cls)}]
    if owners:
        return f"{name} (it belongs under {' or '.join(f'[{o}]' for o in owners)})"
    close = difflib.get_close_matches(name, [*sections, "models", "features"], n=1)
    return f"{name} (did you mean {close[0]!r}?)" if close else name


def _class_weight(value: str | float) -> str | dict[int, float]:
    if value == "balanced":
        return "balanced"
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return {0: 1.0, 1: float(value)}
    raise TrainingError(f"class_weight must be 'balanced' or a positive number, got {value!r}")


def _fit(kind: str, config: TrainConfig, X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from authhost.models.export import export_hgb, export_logistic

    if kind == "logistic":
        c = config.logistic
        model = Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "model",
                    LogisticRegression(
                        C=c.C, max_iter=c.max_iter, class_weight=_class_weight(c.class_weight)
                    ),
                ),
            ]
        )
        model.fit(X, y)
        return export_logistic(model)
    h = config.hgb
    hgb = HistGradientBoostingClassifier(
        learning_rate=h.learning_rate,
        max_iter=h.max_iter,
        max_leaf_nodes=h.max_leaf_nodes,
        max_depth=h.max_depth,
        min_samples_leaf=h.min_samples_leaf,
        l2_regularization=h.l2_regularization,
        class_weight=_class_weight(h.class_weight),
        early_stopping=False,
        random_state=h.random_state,
    )
    with threadpool_limits(h.threads if h.threads > 0 else None):
        hgb.fit(X, y)
    return export_hgb(hgb)


@dataclass
class Split:
    train: LabelledSet
    test: LabelledSet
    train_days: tuple[str, str]
    test_days: tuple[str, str]


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


def time_split(data: LabelledSet, config: SplitConfig) -> Split:
    """Earlier days train, ``gap_days`` skipped, the last ``test_days`` test (the rows left
    out before the fraud step are split by the same days, to be counted)."""
    if len(data) == 0:
        raise TrainingError(
            "the data file has no transactions the fraud step scores"
            + (
                f" ({len(data.excluded)} declined before the fraud step)"
                if len(data.excluded)
                else ""
            )
        )
    origin = data.ts.min()
    day = np.floor((data.ts - origin) / DAY_S).astype(np.int64)
    excluded_day = np.floor((data.excluded.ts - origin) / DAY_S).astype(np.int64)
    last = int(day.max())
    test = day > last - config.test_days
    train = day <= last - config.test_days - config.gap_days
    if not train.any() or not test.any():
        raise TrainingError(
            f"the data covers {last + 1} days: too few for {config.test_days} test days after a "
            f"{config.gap_days}-day gap: add data, or lower test_days or gap_days under [split] "
            "in a training config (--config train.toml, docs/models.md)"
        )
    tr = data.subset(train, excluded_day <= last - config.test_days - config.gap_days)
    te = data.subset(test, excluded_day > last - config.test_days)
    if tr.labels.sum() == 0:
        raise TrainingError("no fraud labels in the training days: nothing to learn from")
    return Split(
        tr, te, (_day(tr.ts.min()), _day(tr.ts.max())), (_day(te.ts.min()), _day(te.ts.max()))
    )


@dataclass
class TrainResult:
    run_id: str
    artifacts: dict[str, Path]  # kind -> artifact directory
    metrics: dict[str, ModelMetrics]
    report: Path
    plots: list[Path]
    summary: dict[str, Any]


def train(
    data_path: str | Path,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    run_id: str | None = None,
) -> TrainResult:
    """Train, evaluate and export every configured model; see the module docstring."""
    config = config or TrainConfig()
    out = Path(out_dir)
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if config.features not in FEATURE_SETS:
        raise TrainingError(f"features must be one of {', '.join(FEATURE_SETS)}")
    try:  # before the replay and the fits: a file there was a traceback minutes later
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "not a directory" if out.exists() else exc.strerror or str(exc)
        raise TrainingError(f"{out}: cannot write the models there: {why}") from None
    data = load_labelled(data_path, config.features)
    split = time_split(data, config.split)
    tr, te = split.train, split.test
    prior = float(tr.labels.mean())
    rc = config.terminal_risk
    risk_args = {
        "prior": prior,
        "window_days": rc.window_days,
        "delay_days": rc.delay_days,
        "smoothing": rc.smoothing,
    }
    tr.features[:, TERMINAL_RISK_INDEX] = delayed_rates(tr.ts, tr.terminals, tr.labels, **risk_args)
    table: TerminalRisk = risk_table(
        tr.ts, tr.terminals, tr.labels, as_of=float(tr.ts.max()), **risk_args
    )
    te.features[:, TERMINAL_RISK_INDEX] = [table.rate(t) for t in te.terminals]

    data_hash = file_sha256(data_path)
    left_out = frauds_by_scenario(te.excluded.labels, te.excluded.scenarios)
    probabilities: dict[str, np.ndarray] = {}
    metrics: dict[str, ModelMetrics] = {}
    exported: dict[str, tuple[dict[str, np.ndarray], int]] = {}
    references: dict[str, dict[str, Any]] = {}
    for kind in config.models:
        arrays = _fit(kind, config, tr.features, tr.labels)
        meta = {"kind": kind, "threshold": 0, "feature_set": config.features,
                "amount_units": AMOUNT_UNITS}  # as dataset.py computed the rows  # fmt: skip
        scorer = Scorer(Artifact(Path(kind), meta, arrays, table))
        threshold = operating_threshold(
            scorer.score_matrix(tr.features), config.operating.alert_rate
        )
        p = scorer.probabilities(te.features)
        probabilities[kind] = p
        scores = np.minimum(np.floor(p * 1000), 999).astype(np.int64)
        metrics[kind] = evaluate(
            kind,
            te.ts,
            te.card_ids,
            te.labels,
            p,
            scores,
            threshold,
            config.operating.top_k_cards,
            te.scenarios,
            excluded_rows=len(te.excluded),
            excluded_frauds_by_scenario=left_out,
        )
        exported[kind] = (arrays, threshold)
        # what drift is measured against (models.drift): the held-out rows, whose features
        # and scores are computed as the server computes them (the shipped terminal risk
        # table, the numpy scorer, out of sample), each card with the history the training
        # days gave it, where the first training days start with none; a bin for a missing
        # value (the card age without an issue date); and the same of each segment (the
        # channel, the product...: models.segments) with enough rows
        references[kind] = build_reference(
            te.features,
            FEATURE_SETS[config.features],
            scores,
            f"held-out days {split.test_days[0]}..{split.test_days[1]}",
            unknown=MISSING_VALUES,
            segments=te.segments,
        ).to_json()

    summary = {
        "run_id": run_id,
        "data": {
            "path": str(data_path),
            "sha256": data_hash,
            "rows_scored": len(data),  # the rows the fraud step scores (models.scored)
            **data.excluded.summary(),
        },
        "train": {
            "days": split.train_days,
            "rows": len(tr),
            "frauds": int(tr.labels.sum()),
            "excluded_before_fraud_step": len(tr.excluded),
            "excluded_frauds": int(tr.excluded.labels.sum()),
        },
        "test": {
            "days": split.test_days,
            "rows": len(te),
            "frauds": int(te.labels.sum()),
            "excluded_before_fraud_step": len(te.excluded),
            "excluded_frauds": int(te.excluded.labels.sum()),
        },
        "features": config.features,
        "config": asdict(config),
        "metrics": {k: m.as_dict() for k, m in metrics.items()},
    }
    artifacts = {}
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for kind, (arrays, threshold) in exported.items():
        m = metrics[kind].as_dict()
        m.pop("card_precision_per_day")
        artifacts[kind] = write_artifact(
            out / f"{kind}-{run_id}",
            kind,
            arrays,
            table,
            {
                "name": f"{kind}-{run_id}",
                "created": created,
                "threshold": threshold,
                "training_data": summary["data"] | {"train_days": split.train_days},
                "test_days": split.test_days,
                "metrics": m,
                "params": asdict(getattr(config, kind)),
                "terminal_risk": asdict(config.terminal_risk),
                "reference": references[kind],
            },
            feature_set=config.features,
        )
    run_dir = out / "runs" / run_id
    plots = write_plots(run_dir, te.labels, probabilities)
    report = run_dir / "report.json"
    summary["artifacts"] = {k: str(v) for k, v in artifacts.items()}
    summary["plots"] = [str(p) for p in plots]
    report.write_text(json.dumps(summary, indent=2, default=_json_default))
    return TrainResult(run_id, artifacts, metrics, report, plots, summary)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


__all__ = [
    "FEATURE_NAMES",
    "DatasetError",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "load_train_config",
    "train",
]
