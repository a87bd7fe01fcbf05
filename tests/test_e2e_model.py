"""The ML step inside the served pipeline: a trained, activated model scores every request,
the score reaches the rules and the journal, a threshold declines with 59, and a model that
cannot score within its budget is skipped (the decision goes on, the journal says so)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from iso_client import Switch
from test_e2e_auth import purchase, start_host

from authhost.config import ModelsConfig
from authhost.models.registry import Registry
from authhost.models.synthetic import generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

RULES_USING_SCORE = """
[[rule]]
name = "score-seen"
expression = "present(score)"
action = "review"
reason = "R-SCORED"
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small gradient-boosted model trained on synthetic labelled traffic, activated."""
    root = tmp_path_factory.mktemp("models")
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(generate_rows(cards=80, days=20, seed=3)), data)
    config = TrainConfig(
        models=["hgb"],
        split=SplitConfig(test_days=5, gap_days=1),
        hgb=HgbConfig(max_iter=15, max_leaf_nodes=7, threads=1),
    )
    result = train(data, root / "models", config, run_id="e2e")
    Registry(root / "models").activate(result.artifacts["hgb"].name)
    return root / "models"


async def journal_entry_for(store_url: str, stan: str):
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=10_000))
    (entry,) = [e for e in entries if e.stan == stan]
    return entry


async def test_model_score_reaches_rules_and_journal_and_threshold_declines(
    nursery, tmp_path, monkeypatch, models_dir
):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    models = ModelsConfig(dir=str(models_dir), threshold=1, action="decline")
    host = await start_host(nursery, tmp_path, url, rules=RULES_USING_SCORE, models=models)
    switch = await Switch.connect(host.port)
    response = await switch.send(purchase(host.cards["active-visa"]))
    entry = await journal_entry_for(url, response["11"])
    assert 0 <= entry.fraud_score <= 999
    assert not entry.model_skipped
    assert "score-seen" in entry.rule_matches.split(";")  # the rules saw the score
    assert response["39"] == ("59" if entry.fraud_score >= 1 else "00")


async def test_model_over_budget_is_skipped_and_the_decision_goes_on(
    nursery, tmp_path, monkeypatch, models_dir
):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    models = ModelsConfig(dir=str(models_dir), budget_ms=1e-6, threshold=1, action="decline")
    host = await start_host(nursery, tmp_path, url, rules=RULES_USING_SCORE, models=models)
    switch = await Switch.connect(host.port)
    response = await switch.send(purchase(host.cards["active-visa"]))
    assert response["39"] == "00"  # no score, so the threshold cannot decline
    entry = await journal_entry_for(url, response["11"])
    assert entry.model_skipped
    assert entry.fraud_score == -1
    assert "score-seen" not in entry.rule_matches.split(";")
