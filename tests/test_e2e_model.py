"""The ML step inside the served pipeline: a trained, activated model scores every request,
the score reaches the rules and the journal, a threshold declines with 59, and a model that
cannot score within its budget is skipped (the decision goes on, the journal says so)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import trio
from conftest import free_port
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call, running_admin
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture
from test_e2e_avs import checkout
from test_e2e_card_testing import metrics_text
from test_e2e_tokens import ecommerce, wallet_payment
from typer.testing import CliRunner

from authhost.admin.service import CardService
from authhost.cli.app import app
from authhost.config import ModelsConfig
from authhost.models.context import replay_contexts
from authhost.models.features import (
    ACCEPTOR_FEATURE_SET,
    ADDRESS_FEATURE_SET,
    FEATURE_SET,
    WALLET_FEATURE_SET,
    feature_values,
)
from authhost.models.registry import Registry
from authhost.models.scorer import Scorer
from authhost.models.synthetic import generate_rows
from authhost.models.training import HgbConfig, SplitConfig, TrainConfig, train
from authhost.security.module import SecurityModule
from authhost.store import opened_store
from authhost.store.interface import JournalQuery
from simulator.traffic import ScenarioRates, TrafficConfig, generate

RULES_USING_SCORE = """
[[rule]]
name = "score-seen"
expression = "present(score)"
action = "review"
reason = "R-SCORED"
"""


def trained_models_dir(root: Path, features: str = FEATURE_SET) -> Path:
    """A small model of ``features`` trained on synthetic labelled traffic, activated."""
    data = root / "labelled.csv"
    pacsv.write_csv(pa.Table.from_pylist(generate_rows(cards=80, days=20, seed=3)), data)
    config = TrainConfig(
        models=["logistic" if features == ACCEPTOR_FEATURE_SET else "hgb"],
        features=features,
        split=SplitConfig(test_days=5, gap_days=1),
        hgb=HgbConfig(max_iter=15, max_leaf_nodes=7, threads=1),
    )
    result = train(data, root / "models", config, run_id="e2e")
    Registry(root / "models").activate(next(iter(result.artifacts.values())).name)
    return root / "models"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_models_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def acceptor_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logistic model of the second feature set: every feature moves its score."""
    return trained_models_dir(tmp_path_factory.mktemp("models2"), ACCEPTOR_FEATURE_SET)


async def journal_entry_for(url: str, stan: str):
    async with opened_store(url) as store:
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


async def test_a_model_of_merchant_features_gets_the_counters_no_rule_asked_for(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    acceptor_models_dir,
    models_dir,
):
    """No rule reads merchant counters, but the active model's features do: the server keeps
    them, and every score it journalled is the score the offline replay of the journal gives
    (the counters online are what training computes). A model of the first feature set does
    not make the server keep them."""
    metrics_port = free_port()
    models = ModelsConfig(dir=str(acceptor_models_dir), explain_from=0)  # every score explained
    host = await start_host(
        nursery, tmp_path, store_url, rules=RULES_USING_SCORE, models=models,
        metrics_port=metrics_port,
    )  # fmt: skip
    switch = await Switch.connect(host.port)
    shop = {"42": "TESTSHOP0000001", "41": "WEB00001"}
    for name in ("active-visa", "active-credit", "active-visa", "active-credit"):
        await switch.send(purchase(host.cards[name], **shop))
    await switch.send(purchase(host.cards["active-visa"], **{"42": "OTHERSHOP000001"}))
    scraped = await trio.to_thread.run_sync(metrics_text, metrics_port)
    assert "authhost_acceptor_counters_following 1.0" in scraped

    async with opened_store(store_url) as store:
        rows = [e.as_row() async for e in store.export_journal(JournalQuery())]
    scorer = Scorer.load(next(p for p in acceptor_models_dir.iterdir() if p.name != "runs"
                              and (p / "model.json").exists()))  # fmt: skip
    assert scorer.reads_acceptors
    served = {row["stan"]: (row["fraud_score"], row["model_reasons"]) for row in rows}
    replayed = {
        row["stan"]: (scorer.score_one(ctx), explained(scorer, ctx))
        for row, ctx in replay_contexts(rows)
    }
    assert len(served) == 5 and served == replayed
    assert all(reasons for _, reasons in served.values())  # the model's reasons, journalled
    at_shop = [ctx for row, ctx in replay_contexts(rows) if row["merchant_id"] == shop["42"]]
    assert [c.merchant_velocity.count_10m for c in at_shop] == [0, 1, 2, 3]

    # an analyst asks after the fact: the CLI rebuilds each entry's context from the store
    config = tmp_path / "explain.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[models]\ndir = "{acceptor_models_dir}"\n'
        f'[security]\nkey_store = "{tmp_path / "keys.json"}"\ndemo = true\n'
    )
    for row in rows:
        args = [
            "journal",
            "explain",
            row["card_id"],
            str(row["journal_id"]),
            "--config",
            str(config),
        ]
        done = await trio.to_thread.run_sync(CliRunner().invoke, app, args)
        assert done.exit_code == 0, done.output
        view = json.loads(done.output)
        assert view["score"] == row["fraud_score"]  # the same features as the server's
        top = ";".join(f"{r['feature']}={r['added']:+.2f}" for r in view["reasons"][:3])
        assert top == row["model_reasons"] == view["journalled"]["reasons"]
        if row["merchant_id"] == shop["42"]:
            assert view["features"]["merchant_count_10m_log"] >= 0.0
    last_at_shop = [r for r in rows if r["merchant_id"] == shop["42"]][-1]
    args = ["journal", "explain", last_at_shop["card_id"], str(last_at_shop["journal_id"]),
            "--config", str(config)]  # fmt: skip
    view = json.loads((await trio.to_thread.run_sync(CliRunner().invoke, app, args)).output)
    assert view["features"]["merchant_count_10m_log"] == pytest.approx(math.log1p(3))
    # a request the card step declined (41, lost) never reached the model: the view says so
    lost = await switch.send(purchase(host.cards["lost"], **shop))
    assert lost["39"] == "41"
    declined = await journal_entry_for(store_url, lost["11"])
    assert declined.fraud_score == -1
    args = ["journal", "explain", declined.card_id, str(declined.journal_id), "--config",
            str(config)]  # fmt: skip
    unscored = json.loads((await trio.to_thread.run_sync(CliRunner().invoke, app, args)).output)
    assert unscored["scored_online"] is False and view["scored_online"] is True
    assert unscored["not_scored_because"].startswith("declined 41 (card.lost) by the card step")
    assert unscored["not_scored_because"].endswith("the model did not score it online")
    missing = ["journal", "explain", last_at_shop["card_id"], "999999", "--config", str(config)]
    refused = await trio.to_thread.run_sync(CliRunner().invoke, app, missing)
    assert refused.exit_code == 1 and "not found" in refused.output

    # and through the admin API, as an analyst's tool asks
    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        service = CardService(store, security, "test", models_dir=acceptor_models_dir)
        async with running_admin(service) as port:
            path = f"/v1/cards/{last_at_shop['card_id']}/journal/{last_at_shop['journal_id']}"
            reply = await call(port, "GET", f"{path}/explain", token=AUDITOR_TOKEN)
            assert reply.status == 200 and reply.json == view
            other = await call(port, "GET", f"{path}/explain?model=nope", token=AUDITOR_TOKEN)
            assert other.status == 422 and "no artifact named 'nope'" in other.json["error"]
            gone = f"/v1/cards/{last_at_shop['card_id']}/journal/999999/explain"
            assert (await call(port, "GET", gone, token=AUDITOR_TOKEN)).status == 404

    plain_port = free_port()
    (tmp_path / "plain").mkdir()
    plain = await start_host(
        nursery, tmp_path / "plain", f"sqlite:///{tmp_path / 'plain.db'}",
        rules=RULES_USING_SCORE, models=ModelsConfig(dir=str(models_dir), explain_from=1000),
        metrics_port=plain_port,
    )  # fmt: skip
    other = await Switch.connect(plain.port)
    answer = await other.send(purchase(plain.cards["active-visa"], **shop))
    scraped = await trio.to_thread.run_sync(metrics_text, plain_port)
    assert "authhost_acceptor_counters_following 0.0" in scraped
    entry = await journal_entry_for(f"sqlite:///{tmp_path / 'plain.db'}", answer["11"])
    assert entry.fraud_score >= 0 and entry.model_reasons == ""  # below explain_from


def explained(scorer: Scorer, ctx) -> str:  # type: ignore[no-untyped-def]
    """The journal's form of a model's reasons, written here independently."""
    return ";".join(f"{name}={share:+.2f}" for name, share in scorer.explain(ctx))


@pytest.fixture(scope="module")
def wallet_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logistic model of the fourth feature set, trained on simulated traffic with phone
    wallets and wallet fraud (so the token features carry weight)."""
    root = tmp_path_factory.mktemp("models4")
    rates = ScenarioRates(wallets=0.5, wallet_fraud=0.05)
    generate(TrafficConfig(cards=300, days=20, seed=3, rates=rates)).write(root / "t.parquet")
    config = TrainConfig(
        models=["logistic"], features=WALLET_FEATURE_SET, split=SplitConfig(test_days=5, gap_days=1)
    )
    result = train(root / "t.parquet", root / "models", config, run_id="e2e4")
    Registry(root / "models").activate(next(iter(result.artifacts.values())).name)
    return root / "models"


async def test_a_model_of_wallet_features_scores_the_token_that_paid(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    wallet_models_dir,
):
    """The server gives the model the wallet token that paid (a demo token registered
    minutes ago: what wallet fraud looks like), and every score it journalled is the one the
    replayed journal gives."""
    models = ModelsConfig(dir=str(wallet_models_dir), explain_from=0)
    host = await start_host(nursery, tmp_path, store_url, rules=RULES_USING_SCORE, models=models)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    electronics = {"18": "5732"}  # what a stolen number in a wallet buys, to resell
    for amount in (80_000, 30_000):
        paid = wallet_payment(card, card["token"], amount) | electronics
        assert (await switch.send(paid))["39"] == "00"
        assert (await switch.send(ecommerce(card, amount) | electronics))["39"] == "00"
    async with opened_store(store_url) as store:
        rows = [e.as_row() async for e in store.export_journal(JournalQuery())]
    scorer = Scorer.load(next(p for p in wallet_models_dir.iterdir() if p.name != "runs"
                              and (p / "model.json").exists()))  # fmt: skip
    assert scorer.feature_blocks == 3
    served = {row["stan"]: (row["fraud_score"], row["model_reasons"]) for row in rows}
    replayed = {
        row["stan"]: (scorer.score_one(ctx), explained(scorer, ctx))
        for row, ctx in replay_contexts(rows)
    }
    assert len(served) == 4 and served == replayed  # the reasons: the token features online
    for row in rows:  # a day-old token is what pushed the wallet payments' scores up
        assert ("token_under_24h" in row["model_reasons"]) == (row["wallet"] == "google_pay")
    vectors = [feature_values(ctx, scorer.terminal_risk, 3) for _, ctx in replay_contexts(rows)]
    risk = scorer.probabilities(np.array(vectors))
    by_wallet = {(row["wallet"], row["amount_minor"]): p for row, p in zip(rows, risk, strict=True)}
    for amount in (80_000, 30_000):  # the same card, amount and shop: the token scores higher
        assert by_wallet[("google_pay", amount)] > by_wallet[("", amount)]


@pytest.fixture(scope="module")
def address_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logistic model of the fifth feature set, trained on simulated traffic with more card
    testing than usual (whose fraudsters type addresses that are not the cardholder's)."""
    root = tmp_path_factory.mktemp("models5")
    rates = ScenarioRates(card_testing=0.05)
    generate(TrafficConfig(cards=300, days=20, seed=3, rates=rates)).write(root / "t.parquet")
    config = TrainConfig(
        models=["logistic"],
        features=ADDRESS_FEATURE_SET,
        split=SplitConfig(test_days=5, gap_days=1),
    )
    result = train(root / "t.parquet", root / "models", config, run_id="e2e5")
    Registry(root / "models").activate(next(iter(result.artifacts.values())).name)
    return root / "models"


async def test_a_model_of_address_features_scores_the_avs_result(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    address_models_dir,
):
    """The server gives the model the AVS result the card verification step found, and every
    score and reason it journalled is the one the replayed journal gives."""
    models = ModelsConfig(dir=str(address_models_dir), explain_from=0)
    host = await start_host(nursery, tmp_path, store_url, rules=RULES_USING_SCORE, models=models)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    for postcode, street in (("EC1A 1BB", "12 Lovelace Street"), ("SW1A 2AA", "10 Downing St")):
        assert (await switch.send(checkout(card, postcode, street)))["39"] == "00"
    async with opened_store(store_url) as store:
        rows = [e.as_row() async for e in store.export_journal(JournalQuery())]
    scorer = Scorer.load(next(p for p in address_models_dir.iterdir() if p.name != "runs"
                              and (p / "model.json").exists()))  # fmt: skip
    assert scorer.feature_blocks == 4
    assert sorted(row["avs_result"] for row in rows) == ["N", "Y"]
    served = {row["stan"]: (row["fraud_score"], row["model_reasons"]) for row in rows}
    replayed = {
        row["stan"]: (scorer.score_one(ctx), explained(scorer, ctx))
        for row, ctx in replay_contexts(rows)
    }
    assert len(served) == 2 and served == replayed
    vectors = [feature_values(ctx, scorer.terminal_risk, 4) for _, ctx in replay_contexts(rows)]
    by_result = dict(zip((row["avs_result"] for row in rows), vectors, strict=True))
    assert by_result["N"][-3:] == [1.0, 1.0, 0.0] and by_result["Y"][-3:] == [1.0, 0.0, 0.0]


RULES_ADDING_POINTS = """
[[rule]]
name = "points"
expression = "score < 500"
action = "score"
points = 600
reason = "R-POINTS"

[[rule]]
name = "high-model"
expression = "score >= 999"
action = "review"
reason = "R-HIGH"
"""


@pytest.mark.parametrize("store_url", ["sqlite", "redis"], indirect=True)
async def test_the_models_own_score_is_journalled_beside_the_one_with_rule_points(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    models_dir,
):
    """fraud_score has the score rules' points; explain-rules judged the rules on it (less
    the points of the rules that matched the raised score: `score < 500` no longer does), and
    the backtest on it as it stood: the model's own score is journalled for them. `journal
    explain` set its rebuilt score against fraud_score: a faithful rebuild read as a miss."""
    from host_admin import card_id_of, start_host_with_admin

    url = store_url
    host, port = await start_host_with_admin(nursery, tmp_path, url, rules=RULES_ADDING_POINTS,
                                             models=ModelsConfig(dir=str(models_dir)))  # fmt: skip
    switch = await Switch.connect(host.port)
    response = await switch.send(purchase(host.cards["active-visa"]))
    entry = await journal_entry_for(url, response["11"])
    # a purchase the model finds ordinary: the points rule matched online
    assert 0 <= entry.model_score < 500 and not entry.model_skipped
    assert entry.fraud_score == min(999, entry.model_score + 600)
    card_id = await card_id_of(port, host.cards["active-visa"]["pan"])
    path = f"/v1/cards/{card_id}/journal/{entry.journal_id}/rules"
    explained = await call(port, "GET", path, token=AUDITOR_TOKEN)
    assert explained.status == 200, explained.json
    assert explained.json["score"] == entry.model_score  # what the rules saw online
    matched = {r["name"]: r["matched"] for r in explained.json["rules"]}
    assert matched == {"points": True, "high-model": False}  # on the raised score: not matched
    assert entry.rule_matches.split(";") == ["points"]
    path = f"/v1/cards/{card_id}/journal/{entry.journal_id}/explain"
    why = await call(port, "GET", path, token=AUDITOR_TOKEN)
    assert why.status == 200, why.json
    assert why.json["score"] == why.json["journalled"]["score"] == entry.model_score
    assert why.json["journalled"]["fraud_score"] == entry.fraud_score != entry.model_score


async def test_a_model_activated_after_start_scores_after_sighup(tmp_path):
    """`authhost serve` started before any model existed (no models directory), then the
    documented workflow: train, `models activate`, `kill -HUP`. The server kept no model
    service when the directory was missing at start, so the reload had nothing to reload and
    every request went unscored until a restart."""
    import os
    import signal

    from test_e2e_crash import start_server, wait_for_port

    models = tmp_path / "models"
    port = free_port()
    proc = start_server(tmp_path, port, settings={"AUTHHOST_MODELS_DIR": str(models)})
    try:
        await wait_for_port(port, proc)
        card = json.loads((tmp_path / "demo-cards.json").read_text())["cards"][0]
        switch = await Switch.connect(port)
        url = f"sqlite:///{tmp_path / 'authhost.db'}"
        before = await switch.send(purchase(card))
        assert (await journal_entry_for(url, before["11"])).model_score == -1  # no model yet
        (tmp_path / "train").mkdir()
        os.rename(trained_models_dir(tmp_path / "train"), models)  # trained and activated
        proc.send_signal(signal.SIGHUP)
        with trio.fail_after(30):
            while True:  # the reload runs in the server's own time
                after = await switch.send(purchase(card))
                if (await journal_entry_for(url, after["11"])).model_score >= 0:
                    break
                await trio.sleep(0.1)
        # the entry decided before any model was active: explained with the model now, it
        # says it was not scored online (it said scored_online true, score -1 journalled)
        config = tmp_path / "explain.toml"
        config.write_text(
            f'[store]\nurl = "{url}"\n[models]\ndir = "{models}"\n'
            f'[security]\nkey_store = "{tmp_path / "authhost-keys.json"}"\ndemo = true\n'
        )
        unscored = await journal_entry_for(url, before["11"])
        args = ["journal", "explain", unscored.card_id, str(unscored.journal_id), "--config",
                str(config)]  # fmt: skip
        done = await trio.to_thread.run_sync(CliRunner().invoke, app, args)
        assert done.exit_code == 0, done.output
        view = json.loads(done.output)
        assert view["scored_online"] is False, view
        assert view["not_scored_because"].startswith("no model was active"), view
        scored = await journal_entry_for(url, after["11"])
        args[2:4] = [scored.card_id, str(scored.journal_id)]
        view = json.loads((await trio.to_thread.run_sync(CliRunner().invoke, app, args)).output)
        assert view["scored_online"] is True and view["not_scored_because"] is None, view
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
