"""Drift replays a period with the 30 days of card history before it (``admin.model_drift``):
what it says when the journal's retention has cut into those days, and the bound on a
reference period held in memory. On both stores (real SQLite file, real redis-server)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from test_admin_support import demo_security
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.admin import model_drift as drift_module
from authhost.admin.errors import InvalidRequest
from authhost.admin.service import CardService
from authhost.models.context import replay_contexts
from authhost.models.registry import Registry
from authhost.models.scored import scored_online
from authhost.models.synthetic import DAY, START_TS, generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train
from authhost.store import opened_store
from authhost.store.interface import Commit
from authhost.store.records import JournalEntry

CARDS = 60
PERIOD = (START_TS + 15 * DAY, START_TS + 17 * DAY)
_FIELDS = set(JournalEntry.__dataclass_fields__) - {"journal_id"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lookback")
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(generate_rows(cards=CARDS, days=20, seed=5)), data)
    config = TrainConfig(
        models=["hgb"],
        split=SplitConfig(test_days=5, gap_days=1),
        hgb=HgbConfig(max_iter=10, max_leaf_nodes=7, threads=1),
    )
    result = train(data, root / "models", config, run_id="lookback")
    Registry(root / "models").activate(result.artifacts["hgb"].name)
    return root / "models"


async def _journal(store, models: Path) -> None:
    champion = Registry(models).load_active()[0]
    entries = []
    for row, ctx in replay_contexts(generate_rows(cards=CARDS, days=20, seed=6)):
        values = {k: row[k] for k in _FIELDS if k in row}
        if scored_online(row):
            score = champion.score_one(ctx)
            values |= {"fraud_score": score, "model_score": score}
        entries.append(JournalEntry(**values))
    for i in range(0, len(entries), 500):
        await store.commit_many([Commit(e) for e in entries[i : i + 500]])


def _psi(report, name: str) -> float:
    return next(f["psi"] for f in report["features"] if f["feature"] == name)


async def test_a_lookback_the_journal_retention_cut_into_is_said_in_the_notes(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    models,
):
    """Pruned 10 days into the data, a period from day 15 replays its first days with 5 of
    their 30 days of history: its count features drift by the pruning alone. The report
    says so, and from when the replay is whole again; before the prune it says nothing."""
    async with opened_store(store_url) as store:
        await _journal(store, models)
        cut = START_TS + 10 * DAY
        service = CardService(
            store, demo_security(tmp_path), "test", models_dir=models,
            clock=lambda: cut + 35 * DAY,
        )  # fmt: skip
        whole = await service.model_drift(since=PERIOD[0], until=PERIOD[1])
        assert not any("pruned" in n for n in whole["notes"])

        pruned = await service.prune_journal(35)
        cut_into = await service.model_drift(since=PERIOD[0], until=PERIOD[1])
        if pruned["entries"]:  # (Redis prunes by the accounts it holds: these have none)
            # the pruning moved the 30-day counts (what the note is for)
            assert _psi(cut_into, "count_30d_log") > _psi(whole, "count_30d_log")
        [note] = [n for n in cut_into["notes"] if "pruned" in n]
        assert "pruned before 2026-01-11T00:00:00Z" in note
        assert "up to 2026-01-18T00:00:00Z" in note  # the period's end: all of it is short
        assert "measure from 2026-02-10T00:00:00Z on" in note

        # a reference period cut into is named as such
        against = await service.model_drift(
            since=PERIOD[0], until=PERIOD[1], reference_since=START_TS + 11 * DAY,
            reference_until=START_TS + 12 * DAY,
        )  # fmt: skip
        assert any("reference period's requests" in n for n in against["notes"])


async def test_a_reference_period_too_large_to_hold_is_refused_not_swapped(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    models,
    monkeypatch,
):
    monkeypatch.setattr(drift_module, "REFERENCE_ROWS_MAX", 100)
    async with opened_store(store_url) as store:
        await _journal(store, models)
        service = CardService(store, demo_security(tmp_path), "test", models_dir=models)
        with pytest.raises(InvalidRequest, match="more than 100 requests the model scores"):
            await service.model_drift(
                since=PERIOD[0], until=PERIOD[1], reference_since=START_TS,
                reference_until=PERIOD[0],
            )  # fmt: skip
