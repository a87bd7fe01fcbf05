"""Drift's pure parts (``models.drift``): PSI against hand-worked values, bins, thresholds; the
reference an artifact carries (written by training, checked on load, absent from older
artifacts that still serve); and the replay of a period after its warm-up rows."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from authhost.models.artifact import ArtifactError, read_artifact
from authhost.models.context import replay_contexts
from authhost.models.drift import (
    PSI_FLOOR,
    Binning,
    DriftTally,
    Reference,
    ReferenceError,
    Thresholds,
    binning_of,
    build_reference,
    distribution_of,
    drift_report,
    psi,
)
from authhost.models.features import ADDRESS_FEATURE_SET, FEATURE_SETS, feature_values
from authhost.models.registry import Registry
from authhost.models.scorer import Scorer
from authhost.models.serving import ModelService
from authhost.models.synthetic import DAY, START_TS, generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train


def test_psi_equals_the_hand_worked_value():
    # (0.3 - 0.5) ln(0.3 / 0.5) + 0 + (0.4 - 0.2) ln(0.4 / 0.2)
    #   = 0.2 x 0.5108256 + 0.2 x 0.6931472 = 0.1021651 + 0.1386294
    assert psi(np.array([0.3, 0.3, 0.4]), np.array([0.5, 0.3, 0.2])) == pytest.approx(
        0.2407946, abs=1e-7
    )
    # an empty reference bin counts as PSI_FLOOR (0.0001), not as infinitely rare:
    # 2 x (-0.1) ln(0.8) + (0.2 - 0.0001) ln(0.2 / 0.0001)
    #   = 0.0446287 + 0.1999 x 7.6009025
    live, reference = np.array([0.4, 0.4, 0.2]), np.array([0.5, 0.5, 0.0])
    assert PSI_FLOOR == 1e-4
    assert psi(live, reference) == pytest.approx(0.0446287 + 1.5194204, abs=1e-6)
    assert psi(reference, reference) == 0.0


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.0, "stable"), (0.0999, "stable"), (0.10, "watch"), (0.25, "watch"), (0.2501, "act")],
    ids=["none", "just below watch", "watch at 0.10", "0.25 still watch", "above 0.25 act"],
)
def test_the_industry_thresholds_flag_each_psi(value, status):
    assert Thresholds().status(value) == status


def test_thresholds_are_configurable_and_must_be_in_order():
    assert Thresholds(0.05, 0.5).status(0.3) == "watch"
    for watch, act in ((0.3, 0.2), (0.0, 0.25), (0.1, math.inf)):
        with pytest.raises(ReferenceError, match="0 < watch < act"):
            Thresholds(watch, act)


def test_deciles_cut_at_distinct_edges_and_whole_values_get_a_bin_each():
    deciles = binning_of(np.arange(1, 101, dtype=float))  # 1..100
    assert not deciles.by_value and deciles.bins == 10
    assert deciles.cuts.tolist() == pytest.approx([10.9 + 9.9 * i for i in range(9)])
    # right-closed: an edge's own value is in the bin below it
    assert deciles.assign(np.array([-5.0, 10.9, 11.0, 1e9])).tolist() == [0, 0, 1, 9]
    # a mass at zero: one edge for it, not nine
    mostly_zero = binning_of(np.array([0.0] * 80 + [0.5, 1.5, 2.5] * 10))
    assert not mostly_zero.by_value and mostly_zero.cuts[0] == 0.0
    assert len(set(mostly_zero.cuts.tolist())) == len(mostly_zero.cuts)
    flags = binning_of(np.array([0.0, 1.0, 1.0, 0.0]))
    assert flags.by_value and flags.cuts.tolist() == [0.0, 1.0]
    # a value the reference never had falls in the last bin, "other"
    assert flags.assign(np.array([1.0, 0.0, 2.0, 0.5])).tolist() == [1, 0, 2, 2]
    assert [flags.label(i) for i in range(3)] == ["= 0", "= 1", "other"]
    assert deciles.label(0) == "<= 10.9" and deciles.label(9) == "> 90.1"


def test_the_report_ranks_features_by_psi_and_names_the_bins_that_moved():
    rng = np.random.default_rng(1)
    n = 4000
    reference_rows = np.column_stack(
        [rng.normal(0, 1, n), (rng.random(n) < 0.1).astype(float), rng.normal(5, 2, n)]
    )
    names = ("amount", "foreign", "steady")
    reference = build_reference(reference_rows, names, rng.integers(0, 1000, n), "hand-made")
    assert reference.features["foreign"].shares.tolist() == pytest.approx(
        [1 - reference_rows[:, 1].mean(), reference_rows[:, 1].mean(), 0.0, 0.0]
    )  # = 0, = 1, other, missing
    live_rows = np.column_stack(
        [rng.normal(1.5, 1, n), (rng.random(n) < 0.6).astype(float), rng.normal(5, 2, n)]
    )
    tally = DriftTally(reference)
    for chunk in np.array_split(live_rows, 7):  # counted a chunk at a time, as a period is
        tally.add_rows(chunk)
    tally.add_scores(rng.integers(0, 1000, n))
    report = drift_report(tally, Thresholds())
    order = [f["feature"] for f in report["features"]]
    assert order[-1] == "steady" and set(order[:2]) == {"amount", "foreign"}
    by_name = {f["feature"]: f for f in report["features"]}
    assert by_name["foreign"]["status"] == by_name["amount"]["status"] == "act"
    assert by_name["steady"]["status"] == "stable" and report["score"]["status"] == "stable"
    expected = psi(
        np.bincount(reference.features["foreign"].binning.assign(live_rows[:, 1]), minlength=4) / n,
        reference.features["foreign"].shares,
    )
    assert by_name["foreign"]["psi"] == round(expected, 4)
    top = by_name["foreign"]["bins"][0]
    assert top["bin"] == "= 1" and top["live"] == pytest.approx(0.6, abs=0.03)
    assert top["reference"] == pytest.approx(0.1, abs=0.02)
    assert report["summary"] == {"act": 2, "watch": 0, "stable": 1}
    assert (report["rows"], report["score_rows"], report["reference_rows"]) == (n, n, n)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drift")
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(generate_rows(cards=80, days=20, seed=5)), data)
    config = TrainConfig(
        models=["hgb", "logistic"],
        split=SplitConfig(test_days=5, gap_days=1),
        hgb=HgbConfig(max_iter=15, max_leaf_nodes=7, threads=1),
    )
    result = train(data, root / "models", config, run_id="ref")
    return result.artifacts["hgb"]


def test_training_stores_the_held_out_days_distribution_and_it_round_trips(trained, tmp_path):
    artifact = read_artifact(trained)
    reference = artifact.reference
    assert reference is not None
    report = json.loads(next((trained.parent / "runs").glob("*/report.json")).read_text())
    days = report["test"]["days"]
    assert reference.source == f"held-out days {days[0]}..{days[1]}"
    assert reference.rows == report["test"]["rows"]
    assert list(reference.features) == list(artifact.metadata["features"])
    for distribution in (*reference.features.values(), reference.score):
        assert distribution.shares.sum() == pytest.approx(1.0)
        assert len(distribution.shares) == distribution.binning.bins
    # the held-out rows' scores as the scorer gives them: every share is a count of them
    counts = reference.score.shares * reference.rows
    assert np.allclose(counts, np.round(counts))
    # what is written is what is read: to_json, then from_json of the stored JSON
    stored = json.loads((trained / "model.json").read_text())["reference"]
    again = Reference.from_json(stored, artifact.metadata["features"])
    assert again.to_json() == reference.to_json()


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda r: r["features"]["amount_log"].update(shares=[0.5, 0.6]), "bins but"),
        (lambda r: r["features"]["hour"].update(edges=[3.0, 2.0] + [9.0] * 7), "increasing"),
        (lambda r: r["features"].pop("night"), "each of the model's features"),
        (lambda r: r["score"].update(shares=["a"]), "finite numbers"),
        (lambda r: r.update(version=2), "version 1"),
        (lambda r: r["features"]["cash"].update(shares=[0.7, 0.7, -0.4]), "add up to 1"),
    ],
    ids=[
        "shares and bins differ",
        "edges go back",
        "a feature missing",
        "not numbers",
        "unknown version",
        "negative share",
    ],  # fmt: skip
)
def test_a_damaged_reference_refuses_the_artifact_naming_its_file(trained, tmp_path, damage, said):
    copy = tmp_path / "damaged"
    shutil.copytree(trained, copy)
    meta = json.loads((copy / "model.json").read_text())
    damage(meta["reference"])
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="model.json") as refused:
        read_artifact(copy)
    assert said in str(refused.value)


def test_an_artifact_without_a_reference_still_loads_and_serves(trained, tmp_path):
    """An artifact written before references were kept: model.json without the key."""
    models = tmp_path / "models"
    old = models / "hgb-old"
    shutil.copytree(trained, old)
    meta = json.loads((old / "model.json").read_text())
    del meta["reference"]
    (old / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    assert read_artifact(old).reference is None
    Registry(models).activate("hgb-old")
    service = ModelService.from_dir(models)
    rows = generate_rows(cards=10, days=3, seed=9)
    contexts = [ctx for _, ctx in replay_contexts(rows)]
    with_reference = Scorer.load(trained)
    assert [service.champion_score(c) for c in contexts] == [
        with_reference.score_one(c) for c in contexts
    ]


def test_a_period_replayed_after_its_warm_up_has_the_contexts_of_a_whole_replay():
    """``replay_contexts(rows, since)`` builds no context before ``since`` and skips the
    merchant counters there, yet every row from ``since`` on gets the feature vector (the
    card's 30 days, the merchant's and terminal's hour included) a replay of all rows gives."""
    rows = generate_rows(cards=60, days=12, seed=3)
    blocks = len(FEATURE_SETS) - 1  # every feature block, the merchant counters among them
    at_merchant = FEATURE_SETS[ADDRESS_FEATURE_SET].index("merchant_count_10m_log")
    for since in (START_TS + 6.5 * DAY, START_TS + 11 * DAY + 1800.0):
        whole = [
            (row["journal_id"], row["ts"], feature_values(ctx, blocks=blocks))
            for row, ctx in replay_contexts(rows)
            if row["ts"] >= since
        ]
        period = [
            (row["journal_id"], row["ts"], feature_values(ctx, blocks=blocks))
            for row, ctx in replay_contexts(rows, since)
        ]
        assert len(period) > 50 and period == whole
        assert any(v[at_merchant] > 0 for _, _, v in period)  # merchant counters counted


def test_a_distribution_of_a_constant_has_one_bin_and_other():
    constant = distribution_of(np.zeros(10))
    assert constant.binning.by_value and constant.binning.cuts.tolist() == [0.0]
    assert constant.shares.tolist() == [1.0, 0.0]
    assert Binning(False, np.zeros(0)).label(0) == "all"
