"""The numpy scorer reproduces scikit-learn exactly, and artifacts are plain data that is checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from authhost.models.artifact import ARRAYS_FILE, METADATA_FILE, ArtifactError, write_artifact
from authhost.models.context import replay_contexts
from authhost.models.export import export_hgb, export_logistic
from authhost.models.features import FEATURE_NAMES, N_FEATURES, feature_matrix
from authhost.models.scorer import Scorer
from authhost.models.synthetic import generate_rows
from authhost.models.terminal_risk import TerminalRisk

RISK = TerminalRisk(rates={"T0000001": 0.3}, default=0.01)


def _data(rows: int, seed: int, nan_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, N_FEATURES)) * rng.uniform(0.1, 50, size=N_FEATURES)
    logit = 0.8 * X[:, 0] / 50 - X[:, 3] ** 2 / 200 + np.where(X[:, 5] > 0, 1.5, -1.0)
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit + 2))).astype(int)
    if nan_share:
        X[rng.random(X.shape) < nan_share] = np.nan
    return X, y


@pytest.fixture(scope="module")
def hgb() -> HistGradientBoostingClassifier:
    X, y = _data(4000, seed=1, nan_share=0.05)  # NaN teaches splits where missing goes right
    model = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=0)
    with threadpool_limits(1):  # OpenMP threads spin badly on a busy 2-core CI machine
        return model.fit(X, y)


@pytest.fixture(scope="module")
def logistic() -> Pipeline:
    X, y = _data(3000, seed=2)
    return Pipeline(
        [("scale", StandardScaler()), ("model", LogisticRegression(class_weight="balanced"))]
    ).fit(X, y)


def _write(path: Path, kind: str, arrays: dict[str, np.ndarray]) -> Path:
    return write_artifact(path, kind, arrays, RISK, {"threshold": 700, "created": "test"})


def test_tree_scorer_matches_sklearn_predict_proba(
    tmp_path: Path, hgb: HistGradientBoostingClassifier
) -> None:
    scorer = Scorer.load(_write(tmp_path / "hgb-1", "hgb", export_hgb(hgb)))
    X, _ = _data(5000, seed=9, nan_share=0.05)
    expected = hgb.predict_proba(X)[:, 1]
    assert np.abs(scorer.probabilities(X) - expected).max() < 1e-6
    clean, _ = _data(2000, seed=10)
    expected_clean = hgb.predict_proba(clean)[:, 1]
    one_by_one = np.array([scorer._model.raw_one(row) for row in clean])  # the single-row path
    assert np.abs(1 / (1 + np.exp(-one_by_one)) - expected_clean).max() < 1e-6


def test_logistic_scorer_matches_sklearn_predict_proba(tmp_path: Path, logistic: Pipeline) -> None:
    scorer = Scorer.load(_write(tmp_path / "lr-1", "logistic", export_logistic(logistic)))
    X, _ = _data(3000, seed=11)
    assert np.abs(scorer.probabilities(X) - logistic.predict_proba(X)[:, 1]).max() < 1e-6


def test_score_one_equals_batch_score_on_real_contexts(
    tmp_path: Path, hgb: HistGradientBoostingClassifier
) -> None:
    scorer = Scorer.load(_write(tmp_path / "hgb-2", "hgb", export_hgb(hgb)))
    contexts = [ctx for _, ctx in replay_contexts(generate_rows(cards=40, days=5, seed=3))]
    batch = scorer.score(contexts)
    assert batch.dtype.kind == "i" and batch.min() >= 0 and batch.max() <= 999
    assert [scorer.score_one(ctx) for ctx in contexts] == batch.tolist()
    X = feature_matrix(contexts, RISK)
    expected = np.minimum(np.floor(hgb.predict_proba(X)[:, 1] * 1000), 999)
    # scores are floor(1000 p): equal except where p sits within 1e-9 of a boundary
    assert np.mean(batch == expected) > 0.999
    assert len(scorer.score([])) == 0


@pytest.fixture
def artifact(tmp_path: Path, hgb: HistGradientBoostingClassifier) -> Path:
    return _write(tmp_path / "hgb-t", "hgb", export_hgb(hgb))


def _edit_metadata(path: Path, **changes: object) -> None:
    meta = json.loads((path / METADATA_FILE).read_text())
    meta.update(changes)
    (path / METADATA_FILE).write_text(json.dumps(meta))


def _rewrite_arrays(path: Path, **changes: np.ndarray) -> None:
    """Change the arrays and fix the hash, as a careful attacker (or a bad exporter) would."""
    import hashlib

    with np.load(path / ARRAYS_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(path / ARRAYS_FILE, **arrays)
    meta = json.loads((path / METADATA_FILE).read_text())
    meta["files"][ARRAYS_FILE] = hashlib.sha256((path / ARRAYS_FILE).read_bytes()).hexdigest()
    (path / METADATA_FILE).write_text(json.dumps(meta))


def test_artifact_records_what_it_was_built_from(artifact: Path) -> None:
    meta = json.loads((artifact / METADATA_FILE).read_text())
    assert meta["format"] == "authhost-model" and meta["kind"] == "hgb"
    assert len(meta["features"]) == N_FEATURES and meta["threshold"] == 700
    assert set(meta["files"]) == {"arrays.npz", "terminal_risk.json"}
    assert not list(artifact.glob("*.pkl")) and not list(artifact.glob("*.joblib"))
    assert Scorer.load(artifact).terminal_risk.rate("T0000001") == 0.3


def _corrupt_bytes(path: Path) -> None:
    data = bytearray((path / ARRAYS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / ARRAYS_FILE).write_bytes(bytes(data))


def _pickled_arrays(path: Path) -> None:
    _rewrite_arrays(path, value=np.array([{"x": 1}], dtype=object))


def _child_outside_tree(path: Path) -> None:
    with np.load(path / ARRAYS_FILE) as npz:
        left = npz["left"].copy()
    left[0] = len(left) + 5
    _rewrite_arrays(path, left=left)


def _cycle(path: Path) -> None:
    with np.load(path / ARRAYS_FILE) as npz:
        left, leaf = npz["left"].copy(), npz["is_leaf"]
    inner = int(np.flatnonzero(~leaf)[1])
    left[inner] = 0  # back to the root
    _rewrite_arrays(path, left=left)


def _bad_feature(path: Path) -> None:
    with np.load(path / ARRAYS_FILE) as npz:
        feature = npz["feature"].copy()
    feature[0] = N_FEATURES + 3
    _rewrite_arrays(path, feature=feature)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_corrupt_bytes, "does not match the SHA-256"),
        (lambda p: _edit_metadata(p, format="sklearn-pickle"), "unknown format"),
        (lambda p: _edit_metadata(p, format_version=2), "format version 2 is not supported"),
        (lambda p: _edit_metadata(p, features=["amount"]), "retrain the model"),
        (lambda p: _edit_metadata(p, kind="neural"), "unknown model kind"),
        (lambda p: _edit_metadata(p, threshold=5000), "threshold must be"),
        (lambda p: (p / METADATA_FILE).write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "terminal_risk.json").write_text("{}"), "does not match the SHA-256"),
        (_pickled_arrays, "not a plain numeric array file"),
        (_child_outside_tree, "points outside its tree"),
        (_cycle, "points outside its tree"),
        (_bad_feature, "feature index outside"),
    ],
    ids=[
        "flipped byte -> hash mismatch",
        "unknown format",
        "unknown version",
        "other feature list",
        "unknown kind",
        "threshold out of range",
        "broken metadata",
        "edited risk table",
        "object (pickle) array",
        "child index outside tree",
        "cycle back to root",
        "feature index out of range",
    ],
)
def test_loading_refuses_tampered_or_unknown_artifacts(
    artifact: Path, tamper, message: str
) -> None:  # type: ignore[no-untyped-def]
    tamper(artifact)
    with pytest.raises(ArtifactError, match=message):
        Scorer.load(artifact)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a model artifact"):
        Scorer.load(tmp_path / "nothing")


def test_artifacts_are_never_overwritten(
    artifact: Path, hgb: HistGradientBoostingClassifier
) -> None:
    with pytest.raises(ArtifactError, match="already exists"):
        _write(artifact, "hgb", export_hgb(hgb))


def _edge_rows(scorer: Scorer, rows: int, seed: int) -> np.ndarray:
    """NaN-free rows whose values often sit exactly on a split threshold or one ulp either
    side, plus signed zeros, infinities and huge values: where ``>`` against ``<=`` matters."""
    arrays = scorer.artifact.arrays
    inner = ~arrays["is_leaf"]
    splits: list[list[float]] = [[] for _ in range(N_FEATURES)]
    for f, t in zip(arrays["feature"][inner], arrays["threshold"][inner], strict=True):
        if np.isfinite(t):
            splits[int(f)] += [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)]
    specials = [0.0, -0.0, np.inf, -np.inf, 1e308, -1e308, 5e-324]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, N_FEATURES)) * 10.0 ** rng.integers(-3, 4, size=(rows, N_FEATURES))
    for i in range(rows):
        for j in range(N_FEATURES):
            pick = rng.random()
            if splits[j] and pick < 0.6:
                X[i, j] = splits[j][rng.integers(len(splits[j]))]
            elif pick > 0.97:
                X[i, j] = specials[rng.integers(len(specials))]
    return X


def test_generated_single_row_trees_are_bit_identical_to_numpy(
    tmp_path: Path, hgb: HistGradientBoostingClassifier
) -> None:
    """score_one's generated Python trees give exactly raw_one's float (same splits at the
    thresholds, same pairwise order of the leaf sum), on rows built to hit every edge."""
    scorer = Scorer.load(_write(tmp_path / "hgb-g", "hgb", export_hgb(hgb)))
    row = scorer._model.row_function
    assert row is not None and scorer._raw_row is row
    assert np.isinf(scorer.artifact.arrays["threshold"]).any()  # NaN-only splits are covered
    for seed in range(3):
        X = _edge_rows(scorer, 3000, seed)
        for x in X:
            expected = scorer._model.raw_one(x)
            assert row(x.tolist()).hex() == expected.hex()


def test_score_one_without_generated_trees_is_the_same(
    tmp_path: Path, hgb: HistGradientBoostingClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Models too large for the generated function score single rows with numpy, equally."""
    path = _write(tmp_path / "hgb-n", "hgb", export_hgb(hgb))
    fast = Scorer.load(path)
    monkeypatch.setattr("authhost.models.scorer.MAX_SOURCE_SPLITS", 0)
    slow = Scorer.load(path)
    assert slow._model.row_function is None
    contexts = [ctx for _, ctx in replay_contexts(generate_rows(cards=20, days=5, seed=4))]
    assert [fast.score_one(c) for c in contexts] == [slow.score_one(c) for c in contexts]


@pytest.mark.parametrize("n", [*range(0, 40), 127, 128, 129, 150, 255, 256, 257, 1000])
def test_pairwise_sum_source_adds_in_numpys_order(n: int) -> None:
    from authhost.models.scorer import _pairwise_sum_source

    names = [f"t{i}" for i in range(n)]
    add = eval(f"lambda {', '.join(names)}: 0.0 + {_pairwise_sum_source(names)}")  # noqa: S307
    rng = np.random.default_rng(n)
    for _ in range(200):
        a = rng.normal(size=n) * 10.0 ** rng.integers(-12, 12, size=n)
        assert add(*a.tolist()).hex() == float(a.sum()).hex()
    assert add(*([-0.0] * n)).hex() == float(np.full(n, -0.0).sum()).hex()  # signed zeros


@pytest.mark.parametrize("kind", ["hgb", "logistic"])
def test_explanations_add_up_to_the_score_and_point_at_what_drives_it(
    tmp_path: Path, kind: str, hgb: HistGradientBoostingClassifier, logistic: Pipeline
) -> None:
    arrays = export_hgb(hgb) if kind == "hgb" else export_logistic(logistic)
    model = Scorer.load(_write(tmp_path / f"{kind}-x", kind, arrays))._model
    if kind == "hgb":
        average = model.baseline + float(model.expected[model.roots].sum())
    else:
        average = model.intercept + float(model.coef @ model.mean)
    X, _ = _data(400, seed=12)
    added = np.array([model.contributions(x) for x in X])
    raw = np.array([model.raw_one(x) for x in X])
    assert np.abs(average + added.sum(axis=1) - raw).max() < 1e-9
    # the data's fraud odds rise with feature 5 above 0 (and fall below it): so do its shares
    above = X[:, 5] > 0.5
    assert added[above, 5].mean() > 0 > added[X[:, 5] < -0.5, 5].mean()


def test_explain_names_the_features_that_pushed_the_score_up(
    tmp_path: Path, hgb: HistGradientBoostingClassifier
) -> None:
    scorer = Scorer.load(_write(tmp_path / "hgb-e", "hgb", export_hgb(hgb)))
    contexts = [ctx for _, ctx in replay_contexts(generate_rows(cards=40, days=5, seed=3))]
    explained = [scorer.explain(ctx) for ctx in contexts]
    assert any(explained) and all(len(e) <= 3 for e in explained)
    for reasons in explained:
        shares = [share for _, share in reasons]
        assert all(share > 0 for share in shares) and shares == sorted(shares, reverse=True)
        assert {name for name, _ in reasons} <= set(FEATURE_NAMES)
    # an artifact written before explanations (no node counts) still scores, without reasons
    old = export_hgb(hgb)
    del old["count"]
    older = Scorer.load(_write(tmp_path / "hgb-old", "hgb", old))
    assert not older.explains and older.explain(contexts[0]) == []
    assert older.score_one(contexts[0]) == scorer.score_one(contexts[0])
