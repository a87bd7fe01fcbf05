"""The drift report by segment, with missing values in a bin of their own, across a champion
change, and as a cron job's alarm (``authhost models drift``, GET /v1/models/drift), on both
stores (a real SQLite file, a real redis-server).

A model is trained on synthetic traffic whose cards belong to two products. Its artifact
keeps the reference of each channel and product segment. The journal then holds traffic
like the training data's, with the champion's score as the server journals it, changed in
one way per test: the card's issue date missing for a tenth of the requests, the e-commerce
amounts alone ten times larger, or the champion replaced halfway."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from host_admin import cli_config, run_cli
from test_admin_support import AUDITOR_TOKEN, call, demo_security, running_admin
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.admin.service import CardService
from authhost.models.context import replay_contexts
from authhost.models.drift import psi
from authhost.models.registry import Registry
from authhost.models.scored import scored_online
from authhost.models.scorer import Scorer
from authhost.models.synthetic import DAY, START_TS, generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train
from authhost.store import opened_store
from authhost.store.interface import Commit
from authhost.store.records import JournalEntry

CARDS = 300
PERIOD = (START_TS + 15 * DAY, START_TS + 20 * DAY)  # like the held-out days
_FIELDS = {f.name for f in dataclasses.fields(JournalEntry)} - {"journal_id"}


def _product(row: dict[str, Any]) -> dict[str, Any]:
    """Every fourth card is a gold card, the others classic."""
    gold = int(str(row["card_id"])[1:]) % 4 == 0
    return {**row, "product_id": "gold" if gold else "classic"}


def _rows(seed: int) -> list[dict[str, Any]]:
    return [_product(r) for r in generate_rows(cards=CARDS, days=20, seed=seed)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Gradient-boosted trees and logistic regression trained on the first stream, not yet
    activated (each test sets up its own models directory)."""
    root = tmp_path_factory.mktemp("segments")
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(_rows(5)), data)
    config = TrainConfig(
        models=["hgb", "logistic"],
        split=SplitConfig(test_days=5, gap_days=1),
        hgb=HgbConfig(max_iter=15, max_leaf_nodes=7, threads=1),
    )
    return train(data, root / "trained", config, run_id="segments").artifacts


def _models(tmp_path: Path, trained: dict[str, Path], clock: float = START_TS) -> Registry:
    """A models directory with both artifacts, the trees the champion since ``clock``."""
    registry = Registry(tmp_path / "models")
    registry.clock = lambda: clock
    for path in trained.values():
        (registry.root / path.name).mkdir(parents=True)
        for file in path.iterdir():
            (registry.root / path.name / file.name).write_bytes(file.read_bytes())
    registry.activate(trained["hgb"].name)
    return registry


async def _journal(store, rows: list[dict[str, Any]], scorer_at) -> None:
    """The rows as the server journals them: a scored request carries the score of the
    champion of its time (``scorer_at(ts)``) on the context the server had."""
    entries = []
    for row, ctx in replay_contexts(rows):
        values = {k: row[k] for k in _FIELDS if k in row}
        if scored_online(row):
            score = scorer_at(ctx.ts).score_one(ctx)
            values |= {"fraud_score": score, "model_score": score}
        entries.append(JournalEntry(**values))
    for i in range(0, len(entries), 500):
        await store.commit_many([Commit(e) for e in entries[i : i + 500]])


def _service(store, tmp_path: Path, models: Path) -> CardService:
    return CardService(store, demo_security(tmp_path), "test", models_dir=models)


def _as_older(artifact: Path) -> None:
    """The artifact as training wrote it before missing bins and segments were kept."""
    meta = json.loads((artifact / "model.json").read_text())
    for key in ("missing", "missing_values", "segments"):
        del meta["reference"][key]
    (artifact / "model.json").write_text(json.dumps(meta))


def _feature(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in report["features"] if f["feature"] == name)


async def test_a_feature_arriving_missing_for_a_tenth_of_the_requests_is_act_on_its_own_bin(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    trained,
):
    """A card's issue date missing (cards loaded without one: ``card_age_days`` -1, so
    ``card_age_days_log`` -1) for one request in ten. The missing bin had none of the
    held-out rows: act. An artifact from before missing bins loads and reports as before:
    -1 falls in the lowest decile with the youngest cards, and a tenth more there is stable."""
    registry = _models(tmp_path, trained)
    champion = registry.load(trained["hgb"].name)
    rows = _rows(6)
    for i, row in enumerate(r for r in rows if scored_online(r) and r["ts"] >= PERIOD[0]):
        if i % 10 == 0:
            row["card_age_days"] = -1.0
    async with opened_store(store_url) as store:
        await _journal(store, rows, lambda ts: champion)
        service = _service(store, tmp_path, registry.root)
        report = await service.model_drift(since=PERIOD[0], until=PERIOD[1])
        age = _feature(report, "card_age_days_log")
        assert age["status"] == "act" and age == report["features"][0], report["features"][:3]
        assert age["bins"][0]["bin"] == "missing"
        assert age["bins"][0]["live"] == pytest.approx(0.1, abs=0.01)
        assert age["bins"][0]["reference"] == 0.0
        assert report["summary"]["act"] == 1  # nothing else moved

        _as_older(registry.root / champion.name)
        older = await service.model_drift(since=PERIOD[0], until=PERIOD[1])
        age = _feature(older, "card_age_days_log")
        assert age["status"] == "stable" and "missing" not in {b["bin"] for b in age["bins"]}
        assert age["bins"][0]["bin"].startswith("<= ")  # the youngest cards' decile

        # a reference period, cut as the artifact is: the missing bin, and then its growth
        against = await service.model_drift(
            since=PERIOD[0], until=PERIOD[1], reference_since=START_TS + 10 * DAY,
            reference_until=START_TS + 15 * DAY,
        )  # fmt: skip
        assert _feature(against, "card_age_days_log")["bins"][0]["bin"] == "missing"


def _ecommerce_dearer(row: dict[str, Any], since: float = 0.0) -> dict[str, Any]:
    """From ``since`` on, e-commerce purchases ten times dearer; the new platinum product on
    a tenth of the cards."""
    row = dict(row)
    if row["channel"] == "ecommerce" and row["ts"] >= since:
        row["amount_minor"] = int(row["amount_minor"]) * 10
    if int(str(row["card_id"])[1:]) % 10 == 1:
        row["product_id"] = "platinum"
    return row


def _segment(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["segments"] if s["segment"] == name)


async def test_a_drift_in_one_channel_shows_in_its_segment_not_in_the_others(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    trained,
):
    registry = _models(tmp_path, trained)
    champion = registry.load(trained["hgb"].name)
    reference = champion.artifact.reference
    assert reference is not None
    assert set(reference.segments["channel"]) == {"card_present", "ecommerce"}  # ATM: fraud only
    assert set(reference.segments["product"]) == {"classic", "gold"}
    async with opened_store(store_url) as store:
        dearer = [_ecommerce_dearer(r, since=PERIOD[0]) for r in _rows(6)]
        await _journal(store, dearer, lambda ts: champion)
    config = cli_config(tmp_path, store_url, registry.root)
    period = ["--since", str(PERIOD[0]), "--until", str(PERIOD[1]), "--config", str(config)]

    code, output = await run_cli("models", "drift", *period, "--segment", "channel",
                                 "--output", "json")  # fmt: skip
    assert code == 0, output
    report = json.loads(output)
    assert report["segment"] == "channel"
    web, present = _segment(report, "ecommerce"), _segment(report, "card_present")
    assert report["segments"][0]["segment"] == "ecommerce"  # the most drifted first
    assert _feature(web, "amount_log")["status"] == "act"
    assert _feature(web, "amount_log")["psi"] > 1.0
    # card present amounts did not change (against its own deciles); what did is how they
    # compare with the card's mean, which its dearer web purchases raised
    assert _feature(present, "amount_log")["status"] == "stable"
    assert _feature(present, "amount_ratio_mean_30d_log")["status"] in ("watch", "act")
    assert present["rows"] > 1000 and present["notes"] == []
    assert 0 < web["rows"] < 1000 and "chance alone" in web["notes"][0]  # the low-count note
    assert sum(s["share"] for s in report["segments"]) == pytest.approx(1.0, abs=0.001)
    assert 0 < web["reference_share"] < 0.5 < present["reference_share"] < 1
    assert sum(s["rows"] for s in report["segments"]) == report["rows"]
    for s in report["segments"][2:]:  # a fraud's ATM cash-out: none kept in the reference
        assert s["summary"] is None and "no reference of this segment" in s["notes"][0]

    # for people: one line a segment, the most drifted first
    code, output = await run_cli("models", "drift", *period, "--segment", "channel",
                                 "--output", "table")  # fmt: skip
    assert code == 0, output
    lines = [line for line in output.splitlines() if "ecommerce" in line or "card_present" in line]
    assert "ecommerce" in lines[0] and "amount_log" in lines[0] and "act" in lines[0]
    assert "whole period:" in output

    # against a reference period: its segments, cut as training cuts them
    code, output = await run_cli(
        "models", "drift", *period, "--segment", "channel", "--output", "json",
        "--reference-since", str(START_TS + 10 * DAY), "--reference-until", str(PERIOD[0]),
    )  # fmt: skip
    assert code == 0, output
    periods = json.loads(output)
    assert _feature(_segment(periods, "ecommerce"), "amount_log")["status"] == "act"

    async with opened_store(store_url) as store:
        service = _service(store, tmp_path, registry.root)
        async with running_admin(service) as port:
            reply = await call(
                port, "GET", f"/v1/models/drift?since={PERIOD[0]:.0f}&until={PERIOD[1]:.0f}"
                "&segment=product", token=AUDITOR_TOKEN,
            )  # fmt: skip
            assert reply.status == 200, reply
            by_product = {s["segment"]: s for s in reply.json["segments"]}
            assert set(by_product) == {"classic", "gold", "platinum"}
            assert by_product["platinum"]["reference_share"] is None
            assert "no reference of this segment" in by_product["platinum"]["notes"][0]
            assert by_product["gold"]["summary"]["act"] >= 1  # its e-commerce amounts
            reply = await call(
                port, "GET", f"/v1/models/drift?since={PERIOD[0]:.0f}&until={PERIOD[1]:.0f}"
                "&segment=bin", token=AUDITOR_TOKEN,
            )  # fmt: skip
            assert reply.status == 400 and "segment must be one of" in reply.json["error"]

    # an artifact from before segments were kept: refused by segment, unless a period is
    _as_older(registry.root / champion.name)
    code, output = await run_cli("models", "drift", *period, "--segment", "channel")
    assert code == 1 and "keeps no reference by channel" in output, output
    assert len(output.strip().splitlines()) == 1
    code, output = await run_cli("models", "drift", *period, "--output", "json")
    assert code == 0 and "segments" not in json.loads(output)  # the whole period as before


async def test_a_period_spanning_a_champion_change_scores_only_the_measured_models_requests(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    trained,
):
    """The logistic model was the champion until halfway through the period, the trees from
    then on; the journal has each one's scores in its own time. The trees' score PSI is over
    their own requests only: the same as over the second half alone. The notes say when."""
    registry = _models(tmp_path, trained)
    registry.activate(trained["logistic"].name)  # at START_TS: the logistic model
    change = PERIOD[0] + 2.5 * DAY
    registry.clock = lambda: change
    registry.activate(trained["hgb"].name)  # the trees, halfway
    trees = Scorer.load(registry.root / trained["hgb"].name)
    logistic = Scorer.load(registry.root / trained["logistic"].name)
    async with opened_store(store_url) as store:
        await _journal(store, _rows(6), lambda ts: trees if ts >= change else logistic)
        service = _service(store, tmp_path, registry.root)
        whole = await service.model_drift(since=PERIOD[0], until=PERIOD[1])
        second = await service.model_drift(since=change, until=PERIOD[1])
        first = await service.model_drift(since=PERIOD[0], until=change)
    assert whole["model"] == trees.name and whole["role"] == "champion"
    assert whole["score_rows"] == second["score_rows"] == second["rows"]
    assert whole["score_other_model"] == first["rows"] == whole["rows"] - second["rows"]
    assert whole["score"]["psi"] == second["score"]["psi"]
    [said] = [n for n in whole["notes"] if "champion changed" in n]
    assert f"at 2026-01-18T12:00:00Z ({logistic.name} to {trees.name}" in said
    assert any("does not record which model scored" in n for n in whole["notes"])
    assert not any("champion changed" in n for n in second["notes"])
    # the first half: the logistic model's scores, none of them the trees'
    assert first["score"] is None and first["score_rows"] == 0

    # the logistic model by name, now inactive: its scores replayed, the change not mixing them
    replayed = await _drift_of(store_url, tmp_path, registry.root, logistic.name)
    assert replayed["score_source"] == "replayed" and replayed["score_rows"] == replayed["rows"]
    assert any("scores are replayed" in n for n in replayed["notes"])


async def _drift_of(store_url: str, tmp_path: Path, models: Path, name: str) -> dict[str, Any]:  # noqa: F811
    async with opened_store(store_url) as store:
        return await _service(store, tmp_path, models).model_drift(
            since=PERIOD[0], until=PERIOD[1], model=name
        )


async def test_fail_on_act_exits_3_for_cron_after_the_report(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    trained,
):
    registry = _models(tmp_path, trained)
    champion = registry.load(trained["hgb"].name)
    async with opened_store(store_url) as store:
        await _journal(store, _rows(6), lambda ts: champion)
        shifted = [_ecommerce_dearer(r) for r in _rows(7)]
        later = [{**r, "ts": float(r["ts"]) + 42 * DAY} for r in shifted]  # six weeks on
        await _journal(store, later, lambda ts: champion)
    config = cli_config(tmp_path, store_url, registry.root)
    stable = ["--since", str(PERIOD[0]), "--until", str(PERIOD[1]), "--config", str(config)]
    moved = ["--since", str(PERIOD[0] + 42 * DAY), "--until", str(PERIOD[1] + 42 * DAY),
             "--config", str(config)]  # fmt: skip

    code, output = await run_cli("models", "drift", *stable, "--fail-on", "act", "-o", "json")
    assert code == 0, output
    code, output = await run_cli("models", "drift", *moved, "--fail-on", "act", "-o", "json")
    assert code == 3, output
    assert json.loads(output[: output.rindex("}") + 1])["summary"]["act"] >= 1  # printed first
    said = output.splitlines()[-1]
    assert said.startswith("drift at act or above: ") and "of the period (amount_" in said
    # a segment's act counts too: the e-commerce one's, by channel
    code, output = await run_cli("models", "drift", *moved, "--segment", "channel",
                                 "--fail-on", "act", "-o", "json")  # fmt: skip
    assert code == 3 and "; by channel: " in output.splitlines()[-1], output
    assert "ecommerce" in output.splitlines()[-1]
    code, output = await run_cli("models", "drift", *stable, "--fail-on", "sometimes")
    assert code == 2 and "'sometimes' is not act or watch" in output, output


def test_the_registry_logs_each_change_with_its_time(tmp_path, trained) -> None:
    registry = _models(tmp_path, trained, clock=100.0)
    registry.clock = lambda: 200.0
    registry.activate(trained["logistic"].name, challenger=True)
    registry.clock = lambda: 300.0
    registry.clear_challenger()
    changes = registry.changes()
    assert [(c.at, c.action) for c in changes] == [
        (100.0, "activate"), (200.0, "challenger"), (300.0, "clear-challenger")
    ]  # fmt: skip
    assert (changes[0].was_champion, changes[0].champion) == (None, trained["hgb"].name)
    assert changes[1].challenger == trained["logistic"].name
    # the server reads the champion and challenger only; a damaged log is no log
    active = registry.root / "active"
    data = json.loads(active.read_text())
    active.write_text(json.dumps(data | {"changes": [{"at": "soon"}, 5]}))
    assert registry.changes() == [] and registry.state().champion == trained["hgb"].name
    # an active file from before the log: the next change starts it
    active.write_text(json.dumps({"champion": trained["hgb"].name, "challenger": None}))
    registry.activate(trained["logistic"].name)
    [first] = registry.changes()
    assert (first.was_champion, first.champion) == (trained["hgb"].name, trained["logistic"].name)


def test_psi_of_a_missing_bin_is_what_the_report_gives() -> None:
    """The hand-worked value: a tenth missing against none is 0.1 ln(0.1 / 0.0001) in that
    bin alone (the floor), the nine tenths left moved from 1 to 0.9."""
    import numpy as np

    from authhost.models.drift import DriftTally, Thresholds, build_reference, drift_report

    values = np.linspace(0.0, 1.0, 1000)
    reference = build_reference(values[:, None], ["x"], np.zeros(0), "hand-made")
    live = values.copy()
    live[::10] = np.nan
    tally = DriftTally(reference)
    tally.add_rows(live[:, None])
    report = drift_report(tally, Thresholds())
    shares = reference.features["x"].shares
    counts = np.bincount(reference.features["x"].binning.assign(live), minlength=len(shares))
    assert report["features"][0]["psi"] == pytest.approx(psi(counts / 1000, shares), abs=1e-4)
    assert report["features"][0]["bins"][0] == {"bin": "missing", "live": 0.1, "reference": 0.0}
    # the missing bin's share goes beside the bins, which an older authhost reads as before
    data = reference.to_json()
    assert data["missing"] == {"x": 0.0}
    assert sum(data["features"]["x"]["shares"]) == pytest.approx(1.0)
