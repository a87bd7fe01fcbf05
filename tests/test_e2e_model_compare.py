"""Champion against challenger over a running host's journal, on both stores: the report
counts what the journal says each model scored, at each artifact's own threshold, with the
fraud reports as verdicts (``authhost models compare`` and GET /v1/models/compare)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import trio
from host_admin import cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import (  # noqa: F401 - fixture
    purchase,
    response_code_table,
    start_host,
    store_url,
)

from authhost.admin import model_comparison
from authhost.config import ModelsConfig
from authhost.models.dataset import load_labelled
from authhost.models.registry import Registry
from authhost.models.scored import entry_declined_before_fraud, row_declined_before_fraud
from authhost.models.synthetic import generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gradient-boosted trees as champion, logistic regression in shadow."""
    root = tmp_path_factory.mktemp("compare")
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(generate_rows(cards=80, days=20, seed=5)), data)
    config = TrainConfig(
        models=["hgb", "logistic"],
        split=SplitConfig(test_days=5, gap_days=1),
        hgb=HgbConfig(max_iter=15, max_leaf_nodes=7, threads=1),
    )
    result = train(data, root / "models", config, run_id="cmp")
    registry = Registry(root / "models")
    registry.activate(result.artifacts["hgb"].name)
    registry.activate(result.artifacts["logistic"].name, challenger=True)
    return root / "models"


async def test_the_comparison_counts_what_both_models_scored(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    two_models,
    monkeypatch,
):
    host, port = await start_host_with_admin(
        nursery, tmp_path, store_url, models=ModelsConfig(dir=str(two_models), budget_ms=500)
    )
    switch = await Switch.connect(host.port)
    since = time.time() - 1
    cards = [host.cards[name] for name in ("active-visa", "active-3624", "active-credit")]
    for round_no in range(4):
        for card in cards:
            amount = 500 + 7_000 * round_no
            assert (await switch.send(purchase(card, amount=amount)))["39"] in ("00", "51")
    until = time.time() + 1

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(since=since, until=until, limit=100))
    both = [e for e in entries if e.fraud_score >= 0 and e.challenger_score >= 0]
    assert len(both) == 12  # the challenger had time for every one
    fraud, genuine = both[-1], both[0]
    config = cli_config(tmp_path, store_url, two_models)
    for entry, flag in ((fraud, []), (genuine, ["--genuine"])):
        code, output = await run_cli(
            "journal", "report-fraud", entry.card_id, str(entry.journal_id), "--source",
            "analyst", *flag, "--config", str(config),
        )  # fmt: skip
        assert code == 0, output

    code, output = await run_cli(
        "models", "compare", "--since", str(since), "--until", str(until), "--config", str(config)
    )
    assert code == 0, output
    report = json.loads(output)
    registry = Registry(two_models)
    state = registry.state()
    thresholds = {a.name: a.threshold for a in registry.list()}
    champion_at, challenger_at = thresholds[state.champion], thresholds[state.challenger]
    assert (report["champion_model"], report["challenger_model"]) == (
        state.champion, state.challenger
    )  # fmt: skip
    assert report["scored_by_both"] == 12
    assert (report["reported_frauds"], report["reported_genuine"]) == (1, 1)
    assert report["reported_fraud_amount_minor"] == {fraud.currency: fraud.amount_minor}
    champion_alerts = sum(e.fraud_score >= champion_at for e in both)
    challenger_alerts = sum(e.challenger_score >= challenger_at for e in both)
    assert report["champion"]["alerts"] == champion_alerts
    assert report["challenger"]["alerts"] == challenger_alerts
    assert report["champion"]["frauds_caught"] == int(fraud.fraud_score >= champion_at)
    assert report["challenger"]["frauds_caught"] == int(fraud.challenger_score >= challenger_at)
    assert sum(report["agreement"].values()) == 12

    # every request alerted at threshold 0; at 999 only the scores that reached it (the
    # model reads the hour: at night a request may score 999)
    extremes = await call(
        port, "GET", f"/v1/models/compare?since={since}&until={until}"
        "&champion_threshold=0&challenger_threshold=999", token=AUDITOR_TOKEN,
    )  # fmt: skip
    assert extremes.status == 200, extremes
    assert extremes.json["champion"]["alerts"] == 12
    assert extremes.json["challenger"]["alerts"] == sum(e.challenger_score >= 999 for e in both)
    only_champion = [fraud.journal_id] if fraud.challenger_score < 999 else []
    assert extremes.json["frauds_only_champion_catches"] == only_champion
    refused = await call(port, "GET", f"/v1/models/compare?since={since}&until={until}"
                         "&champion_threshold=1000")  # fmt: skip
    assert refused.status == 400 and "champion_threshold" in refused.json["error"]
    # verdicts read five entries at a time (a busy day's batches): the same comparison
    monkeypatch.setattr(model_comparison, "VERDICT_BATCH", 5)
    batched = await call(port, "GET", f"/v1/models/compare?since={since}&until={until}",
                         token=AUDITOR_TOKEN)  # fmt: skip
    assert batched.status == 200, batched
    assert (batched.json["scored_by_both"], batched.json["reported_frauds"]) == (12, 1)
    assert batched.json["champion"] == report["champion"]
    assert batched.json["challenger"] == report["challenger"]


async def test_comparing_with_no_model_active_says_how_to_go_on(tmp_path):
    config = cli_config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "models")
    async with opened_store(f"sqlite:///{tmp_path / 'a.db'}"):
        pass  # an empty store: the CLI refuses one that does not exist
    code, output = await run_cli(
        "models", "compare", "--day", "2026-11-27", "--config", str(config)
    )
    assert code == 1 and "no active champion" in output and "--champion-threshold" in output
    code, output = await run_cli(
        "models", "compare", "--day", "2026-11-27", "--champion-threshold", "500", "--config",
        str(config),
    )  # fmt: skip
    assert code == 1 and "no active challenger" in output
    code, output = await run_cli(
        "models", "compare", "--day", "2026-11-27", "--champion-threshold", "500",
        "--challenger-threshold", "600", "--config", str(config),
    )  # fmt: skip
    assert code == 0 and json.loads(output)["scored_by_both"] == 0, output


async def test_requests_declined_before_the_fraud_step_carry_no_score_and_are_left_out(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    two_models,
):
    """Every response code over TCP with both models active: the journal scores exactly the
    requests ``models.scored`` keeps (the rule and the journal agree), and a labelled export
    of them trains and compares on those alone: the unknown card (14) and the wrong iCVV (82),
    reported as fraud, are left out and counted."""
    host, _ = await start_host_with_admin(
        nursery, tmp_path, store_url, models=ModelsConfig(dir=str(two_models), budget_ms=500)
    )
    switch = await Switch.connect(host.port)
    since = time.time() - 1
    cases = response_code_table(host)
    for case, fields, code in cases:
        assert (await switch.send(fields))["39"] == code, case
    until = time.time() + 1

    async with opened_store(store_url) as store:
        for _ in range(50):  # the undecodable frame (30) is journalled off the answer's path
            entries = await store.journal(JournalQuery(since=since, until=until, limit=100))
            if len(entries) == len(cases):
                break
            await trio.sleep(0.1)
    assert len(entries) == len(cases)
    steps = {e.journal_id: entry_declined_before_fraud(e) for e in entries}
    for e in entries:  # scored by the fraud step exactly when the rule says it reached it
        assert (e.fraud_score >= 0) == (steps[e.journal_id] is None), (
            e.response_code,
            e.reason_codes,
        )
    left_out = [e for e in entries if steps[e.journal_id] is not None]
    kept = [e for e in entries if steps[e.journal_id] is None]
    assert sorted(e.response_code for e in kept) == ["00", "00", "05", "51", "59", "85"]
    assert {e.response_code for e in left_out} == {
        "12", "13", "14", "30", "41", "43", "54", "55", "57", "61", "62", "78", "82", "N7"
    }  # fmt: skip
    unknown = next(e for e in left_out if e.reason_codes == "card.unknown")
    wrong_icvv = next(e for e in left_out if e.response_code == "82")
    assert (steps[unknown.journal_id], steps[wrong_icvv.journal_id]) == (
        "card",
        "card_verification",
    )

    config = cli_config(tmp_path, store_url, two_models)
    code, output = await run_cli(
        "journal", "report-fraud", wrong_icvv.card_id, str(wrong_icvv.journal_id), "--source",
        "chargeback", "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    export = tmp_path / "labelled.csv"
    code, output = await run_cli(
        "journal", "export", "--labels", "--out", str(export), "--since", str(since), "--until",
        str(until), "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    rows = pacsv.read_csv(export).to_pylist()
    assert len(rows) == len(entries)
    data = load_labelled(export)
    assert len(data) == len(kept) and len(data.excluded) == len(left_out)
    assert int(data.labels.sum()) == 0 and int(data.excluded.labels.sum()) == 1
    assert {"card", "card_verification"} <= set(data.excluded.steps.tolist())
    assert sum(row_declined_before_fraud(r) is not None for r in rows) == len(left_out)

    code, output = await run_cli(
        "models", "compare", "--since", str(since), "--until", str(until), "--config", str(config)
    )
    assert code == 0, output
    report = json.loads(output)
    assert report["declined_before_fraud_step"] == len(left_out)
    assert report["scored_by_both"] == len(kept) and report["reported_frauds"] == 0
