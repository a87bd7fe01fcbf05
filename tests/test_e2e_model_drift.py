"""Drift of a trained model's inputs and score over a store's journal, on both stores
(``authhost models drift`` and GET /v1/models/drift).

A model is trained on labelled traffic; two more streams of the same kind of traffic are
journalled with the scores the champion and the challenger give them (as the server journals
them): one as it was, and one 6 weeks later with every amount ten times larger and every
purchase abroad. The first period reports every feature stable; the second flags the amount
and the cross-border features as act."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
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
from authhost.models.registry import Registry
from authhost.models.scored import scored_online
from authhost.models.scorer import Scorer
from authhost.models.synthetic import DAY, START_TS, generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train
from authhost.store import opened_store
from authhost.store.interface import Commit
from authhost.store.records import JournalEntry

CARDS = 300  # enough requests a period (about 2,500) that sampling noise stays below 0.10
SHIFT = 42 * DAY  # six weeks later: the same weekdays
MATCHING = (START_TS + 15 * DAY, START_TS + 20 * DAY)  # the training data's held-out days
SHIFTED = (MATCHING[0] + SHIFT, MATCHING[1] + SHIFT)
_ENTRY_FIELDS = {f.name for f in dataclasses.fields(JournalEntry)} - {"journal_id"}
_PAN = re.compile(r"\d{13,19}")


@pytest.fixture(scope="module")
def drift_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gradient-boosted trees as champion, logistic regression as challenger, trained on the
    first stream (seed 5)."""
    root = tmp_path_factory.mktemp("drift")
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(generate_rows(cards=CARDS, days=20, seed=5)), data)
    config = TrainConfig(
        models=["hgb", "logistic"],
        split=SplitConfig(test_days=5, gap_days=1),
        hgb=HgbConfig(max_iter=15, max_leaf_nodes=7, threads=1),
    )
    result = train(data, root / "models", config, run_id="drift")
    registry = Registry(root / "models")
    registry.activate(result.artifacts["hgb"].name)
    registry.activate(result.artifacts["logistic"].name, challenger=True)
    return root / "models"


def _abroad(row: dict[str, Any]) -> dict[str, Any]:
    """The same purchase with ten times the amount, at a merchant abroad."""
    foreign = ("840", "250", "356")[int(str(row["card_id"])[1:]) % 3]
    return {**row, "amount_minor": int(row["amount_minor"]) * 10, "country": foreign}


def _journalled(rows: list[dict[str, Any]], models: Path) -> list[JournalEntry]:
    """The rows as the server journals them: the requests the fraud step scores carry the
    champion's and the challenger's scores of the context the server had."""
    registry = Registry(models)
    champion, challenger = registry.load_active()
    assert champion is not None and challenger is not None
    entries = []
    for row, ctx in replay_contexts(rows):
        values = {k: row[k] for k in _ENTRY_FIELDS if k in row}
        if scored_online(row):
            score = champion.score_one(ctx)
            values |= {"fraud_score": score, "model_score": score,
                       "challenger_score": challenger.score_one(ctx)}  # fmt: skip
        entries.append(JournalEntry(**values))
    return entries


async def _journal(store_url: str, models: Path) -> None:  # noqa: F811
    matching = generate_rows(cards=CARDS, days=20, seed=6)
    shifted = [_abroad(r) for r in generate_rows(cards=CARDS, days=20, seed=7,
                                                 start_ts=START_TS + SHIFT)]  # fmt: skip
    async with opened_store(store_url) as store:
        for rows in (matching, shifted):
            entries = _journalled(rows, models)
            for i in range(0, len(entries), 500):
                await store.commit_many([Commit(e) for e in entries[i : i + 500]])


def _no_pan(text: str) -> None:
    assert not _PAN.search(text), "a card number in the output"


async def test_matching_traffic_is_stable_and_shifted_traffic_is_flagged_act(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    drift_models,
):
    await _journal(store_url, drift_models)
    config = cli_config(tmp_path, store_url, drift_models)
    champion = Scorer.load(drift_models / Registry(drift_models).state().champion)

    code, output = await run_cli(
        "models", "drift", "--since", str(MATCHING[0]), "--until", str(MATCHING[1]),
        "--output", "json", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    _no_pan(output)
    same = json.loads(output)
    assert (same["model"], same["role"], same["score_source"]) == (
        champion.name, "champion", "model_score"
    )  # fmt: skip
    assert same["reference_source"].startswith("held-out days 2026-01-16..2026-01-20")
    assert same["rows"] > 2000 and same["score_rows"] == same["rows"]
    assert [f["feature"] for f in same["features"]] == [
        f["feature"] for f in sorted(same["features"], key=lambda f: -f["psi"])
    ]
    assert len(same["features"]) == len(champion.metadata["features"])
    assert same["summary"] == {"act": 0, "watch": 0, "stable": len(same["features"])}
    assert max(f["psi"] for f in same["features"]) < 0.10
    assert same["score"]["status"] == "stable" and 0 <= same["score"]["psi"] < 0.10
    # five weekdays and weekend days like the held-out ones: no weekend drift, though noted
    assert "shorter than a week" in same["notes"][0]
    assert not any("chance alone" in note for note in same["notes"])  # 2,000 and more

    # an hour of traffic: a few dozen requests, and the report says how much chance moves it
    code, output = await run_cli(
        "models", "drift", "--since", str(MATCHING[0] + 10 * 3600),
        "--until", str(MATCHING[0] + 11 * 3600), "--output", "json", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    hour = json.loads(output)
    assert hour["rows"] < 1000
    assert f"only {hour['rows']:,} scored requests" in hour["notes"][-1], hour["notes"]

    # one day: its weekend share is all or nothing, and the report says so
    code, output = await run_cli(
        "models", "drift", "--day", "2026-01-17", "--output", "json", "--config", str(config)
    )
    assert code == 0, output
    saturday = json.loads(output)
    assert saturday["rows"] < same["rows"] and "shorter than a week" in saturday["notes"][0]
    weekend = next(f for f in saturday["features"] if f["feature"] == "weekend")
    assert weekend["status"] == "act" and weekend["bins"][0]["live"] in (0.0, 1.0)

    async with opened_store(store_url) as store:
        service = CardService(store, demo_security(tmp_path), "test", models_dir=drift_models)
        async with running_admin(service) as port:
            reply = await call(
                port, "GET", f"/v1/models/drift?since={SHIFTED[0]:.0f}&until={SHIFTED[1]:.0f}",
                token=AUDITOR_TOKEN,
            )  # fmt: skip
            assert reply.status == 200, reply
            _no_pan(reply.body.decode())
            moved = reply.json
            by_name = {f["feature"]: f for f in moved["features"]}
            for name in ("amount_log", "amount_24h_log", "cross_border", "distance_home_1000km"):
                assert by_name[name]["status"] == "act", by_name[name]
                assert by_name[name]["psi"] > 1.0
            assert {f["feature"] for f in moved["features"][:4]} >= {"cross_border"}
            assert by_name["hour"]["status"] == "stable"  # what did not move is not flagged
            bins = {b["bin"]: b for b in by_name["cross_border"]["bins"]}
            assert bins["= 1"]["live"] > 0.95 and bins["= 1"]["reference"] < 0.1
            assert bins["= 0"]["live"] < 0.05 and bins["= 0"]["reference"] > 0.9
            assert moved["summary"]["act"] >= 4 and moved["score"]["psi"] > 0

            # the challenger, by name: its journalled shadow scores
            challenger = Registry(drift_models).state().challenger
            reply = await call(
                port, "GET", f"/v1/models/drift?since={SHIFTED[0]:.0f}&until="
                f"{SHIFTED[1]:.0f}&model={challenger}&watch=0.2&act=0.5", token=AUDITOR_TOKEN,
            )  # fmt: skip
            assert reply.status == 200, reply
            assert (reply.json["role"], reply.json["score_source"]) == (
                "challenger", "challenger_score"
            )  # fmt: skip
            assert reply.json["thresholds"] == {"watch": 0.2, "act": 0.5}
            # the same requests and held-out rows: the same PSI, judged at its thresholds
            psis = [(f["feature"], f["psi"]) for f in reply.json["features"]]
            assert psis == [(f["feature"], f["psi"]) for f in moved["features"]]
            for f in reply.json["features"]:
                at = "act" if f["psi"] > 0.5 else "watch" if f["psi"] >= 0.2 else "stable"
                assert f["status"] == at, f

    # period against period: the shifted weeks against the matching ones, not the artifact
    code, output = await run_cli(
        "models", "drift", "--since", str(SHIFTED[0]), "--until", str(SHIFTED[1]),
        "--reference-since", str(MATCHING[0]), "--reference-until", str(MATCHING[1]),
        "--output", "json", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    periods = json.loads(output)
    assert periods["reference_source"] == "journal 2026-01-16T00:00:00Z..2026-01-21T00:00:00Z"
    assert periods["reference_rows"] == same["rows"]
    flagged = {f["feature"]: f["status"] for f in periods["features"]}
    assert flagged["amount_log"] == flagged["cross_border"] == "act"

    # for people: a table, the score's PSI under it
    code, output = await run_cli(
        "models", "drift", "--since", str(SHIFTED[0]), "--until", str(SHIFTED[1]),
        "--output", "table", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    assert "cross_border" in output and "act" in output and "score PSI" in output


async def test_a_model_without_a_reference_needs_a_reference_period_and_refusals_are_one_line(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    drift_models,
):
    await _journal(store_url, drift_models)
    models = tmp_path / "models"
    shutil.copytree(drift_models, models)
    champion = Registry(models).state().champion
    old = models / "hgb-old"  # as written before references were kept
    shutil.copytree(models / champion, old)
    meta = json.loads((old / "model.json").read_text())
    del meta["reference"]
    (old / "model.json").write_text(json.dumps(meta))
    config = cli_config(tmp_path, store_url, models)
    matching = ["--since", str(MATCHING[0]), "--until", str(MATCHING[1])]

    refusals = [
        (["--model", "hgb-old", *matching], "has no reference distribution"),
        (["--model", "nope", *matching], "no artifact named 'nope'"),
        (["--since", str(START_TS + 30 * DAY), "--until", str(START_TS + 31 * DAY)],
         "no requests the model scores from 2026-01-31T00:00:00Z"),
        (["--watch", "0.3", "--act", "0.2", *matching], "0 < watch < act"),
        ([*matching, "--reference-day", "2026-13-01"], "reference period:"),
    ]  # fmt: skip
    for args, said in refusals:
        code, output = await run_cli("models", "drift", *args, "--config", str(config))
        assert code == 1 and said in output, (args, output)
        assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
        _no_pan(output)
    # a threshold that is not a number from 0 to 100 is named as one (nan was refused as
    # "less than or equal to 100")
    for value in ("nan", "abc"):
        code, output = await run_cli("models", "drift", *matching, "--watch", value,
                                     "--config", str(config))  # fmt: skip
        assert code == 2 and f"'{value}' is not a PSI from 0 to 100" in output, output

    code, output = await run_cli(
        "models", "drift", "--model", "hgb-old", "--since", str(SHIFTED[0]), "--until",
        str(SHIFTED[1]), "--reference-since", str(MATCHING[0]), "--reference-until",
        str(MATCHING[1]), "--output", "json", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    report = json.loads(output)
    # not active now: its scores are those it gives the replayed requests
    assert (report["role"], report["score_source"]) == (None, "replayed")
    assert {f["feature"]: f["status"] for f in report["features"]}["cross_border"] == "act"

    async with opened_store(store_url) as store:
        service = CardService(store, demo_security(tmp_path), "test", models_dir=models)
        async with running_admin(service) as port:
            for query, status, said in (
                (f"since={MATCHING[0]:.0f}&until={MATCHING[1]:.0f}&model=hgb-old", 422,
                 "reference_since"),
                (f"since={MATCHING[0]:.0f}&until={MATCHING[1]:.0f}&model=nope", 422,
                 "no artifact named"),
                (f"since={START_TS + 30 * DAY:.0f}&until={START_TS + 31 * DAY:.0f}", 422,
                 "no requests the model scores"),
                (f"since={MATCHING[0]:.0f}&until={MATCHING[1]:.0f}&watch=0.5", 422,
                 "0 < watch < act"),
                (f"since={MATCHING[0]:.0f}&until={MATCHING[1]:.0f}&act=nan", 400,
                 "act must be a number"),
            ):  # fmt: skip
                reply = await call(port, "GET", f"/v1/models/drift?{query}", token=AUDITOR_TOKEN)
                assert reply.status == status and said in reply.json["error"], (query, reply)
                assert "Traceback" not in reply.body.decode()
