"""The idempotency retention (``CardStore.prune_idempotency``, ``[admin]
idempotency_keep_days``, ``authhost store prune-idempotency``, ``POST
/v1/store/prune-idempotency``) on the real stores: a SQLite file, a real redis-server and a
one-node Redis Cluster. Records are made old by writing them through the store while
``time.time`` says so (or, for what an older authhost left, by writing its rows and keys as it
did), never by sleeping."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio
from test_admin_support import AUDITOR_TOKEN, call, open_service, running_admin
from test_store_contract import (  # noqa: F401 - fixtures
    redis_cluster_url,
    store,
)
from typer.testing import CliRunner

from authhost.admin import requests as rq
from authhost.admin.demo import CARDS, demo_export, ensure_demo
from authhost.admin.errors import ConflictError, InvalidRequest
from authhost.admin.service import CardService
from authhost.cards.model import Account, CardKind
from authhost.cli.app import app
from authhost.config import AdminConfig, ConfigError, load_config
from authhost.store import open_store, opened_store
from authhost.store.interface import (
    IDEMPOTENCY_MIN_KEEP_DAYS,
    LEGACY_MARKER_PREFIXES,
    PENDING_PREFIX,
    CardStore,
)

DAY = 86_400.0
_real_time = time.time


@pytest.fixture(params=["sqlite", "redis"])
def store_args(request, tmp_path):
    """open_service's arguments: a SQLite file, or a real redis-server under a prefix."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return tmp_path, request.param, redis_url


@contextmanager
def written_days_ago(days: float) -> Iterator[None]:
    """Whatever the store writes inside the block, it writes as if ``days`` ago (its clock,
    ``time.time``, says so)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: _real_time() - days * DAY)
        yield


def placeholder(at: float) -> str:
    return PENDING_PREFIX + "," + json.dumps({"request": "f", "at": at})[1:]


def result(value: object) -> str:
    return json.dumps({"request": "f", "result": value})


# --- the store ---------------------------------------------------------------------------------


async def test_old_results_go_and_young_ones_and_markers_stay(store: CardStore):  # noqa: F811
    await store.create_account(Account("acc-r", "978", CardKind.DEBIT, balance=10_000))
    with written_days_ago(100):
        await store.reserve_result("card.issue:old", placeholder(_real_time() - 100 * DAY))
        await store.remember_result("card.issue:old", result("old"))
        # a request interrupted 100 days ago: its placeholder waits for nobody
        await store.reserve_result("card.issue:interrupted", placeholder(0))
        await store.change_funds("acc-r", 100, key="load-old", fingerprint="f1")
        await store.put_marker("account.closed:acc-x", '{"closed_at":1}')
        await store.remember_result("card.issue:kept", result("kept"))
        # reserved long ago, its result written lately: aged from its result
        await store.reserve_result("card.successor:late", placeholder(0))
    assert await store.keep_result("card.issue:kept")
    with written_days_ago(10):
        await store.remember_result("card.issue:young", result("young"))
        await store.change_funds("acc-r", 100, key="load-young", fingerprint="f2")
        await store.remember_result("card.successor:late", result("late"))
    await store.reserve_result("card.issue:at-work", placeholder(_real_time()))

    assert await store.prune_idempotency(_real_time() - 35 * DAY) == 3
    assert await store.idempotent_result("card.issue:old") is None
    assert await store.idempotent_result("card.issue:interrupted") is None
    assert await store.funds_change_of("acc-r", "load-old") is None
    assert await store.idempotent_result("account.closed:acc-x") == '{"closed_at":1}'
    assert json.loads(await store.idempotent_result("card.issue:kept"))["result"] == "kept"
    assert json.loads(await store.idempotent_result("card.issue:young"))["result"] == "young"
    assert json.loads(await store.idempotent_result("card.successor:late"))["result"] == "late"
    assert (await store.idempotent_result("card.issue:at-work")).startswith(PENDING_PREFIX)
    assert (await store.funds_change_of("acc-r", "load-young")).fingerprint == "f2"
    assert await store.prune_idempotency(_real_time() - 35 * DAY) == 0  # nothing more to do

    # years on: every result goes, the markers stay, whatever their age
    assert await store.prune_idempotency(_real_time() + 1) == 4
    assert await store.idempotent_result("account.closed:acc-x") == '{"closed_at":1}'
    assert await store.idempotent_result("card.issue:kept") is not None
    # a pruned key is free: the same key is a new request, and a funds change is made again
    assert await store.reserve_result("card.issue:old", placeholder(_real_time())) is None
    again = await store.change_funds("acc-r", 100, key="load-old", fingerprint="f3")
    assert not again.repeated and again.account.balance == 10_300


async def test_a_marker_is_written_once_and_only_results_are_kept(store: CardStore):  # noqa: F811
    assert await store.put_marker("account.closed:a", '{"closed_at":1}') is None
    assert await store.put_marker("account.closed:a", '{"closed_at":2}') == '{"closed_at":1}'
    assert not await store.keep_result("card.issue:nothing")  # nothing there
    await store.reserve_result("card.issue:pending", placeholder(0))
    assert not await store.keep_result("card.issue:pending")  # a placeholder is no result
    assert await store.prune_idempotency(_real_time() + 1) == 1  # the placeholder
    with written_days_ago(400):  # a marker is never a result: remember_result leaves it
        await store.remember_result("account.closed:a", result("over"))
    assert await store.idempotent_result("account.closed:a") == '{"closed_at":1}'
    assert await store.prune_idempotency(_real_time() + 1) == 0


async def test_an_older_sqlite_file_keeps_its_markers_and_ages_the_rest(tmp_path):
    """Migration 37 on a file an older authhost wrote (schema 36): the account-closed markers
    and the demo's creates are markers; every other row a result, aged by its own ts."""
    from authhost.store.sqlite_schema import MIGRATIONS

    path = tmp_path / "old.db"
    old, young = _real_time() - 100 * DAY, _real_time() - DAY
    rows = {
        "account.closed:acc-1": ('{"closed_at":1}', old),
        "card.issue:demo:visa-active": (result({"card_id": "crd_1"}), old),
        "account.create:demo:demo-debit": (result({"account_id": "demo-debit"}), old),
        "product.create:demo:demo-visa-debit": (result({"product_id": "p"}), old),
        "card.issue:order-1": (result({"card_id": "crd_2"}), old),
        "account.funds:acc-1:core-1": ('{"request":"f","account":{}}', old),
        "card.issue:pending": (placeholder(old), old),
        "card.issue:order-2": (result({"card_id": "crd_3"}), young),
        # a client's own key that happens to look like a demo one: it was stored as a marker
        "card.issue:demo:mine": (result({"card_id": "crd_4"}), old),
    }
    with sqlite3.connect(path) as conn:
        for migration in MIGRATIONS[:36]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 36")
        conn.executemany(
            "INSERT INTO idempotency (key, result, ts) VALUES (?, ?, ?)",
            [(key, value, ts) for key, (value, ts) in rows.items()],
        )
    async with opened_store(f"sqlite:///{path}") as migrated:
        assert await migrated.prune_idempotency(_real_time() - 35 * DAY) == 3
        left = {key for key in rows if await migrated.idempotent_result(key) is not None}
    assert left == {key for key in rows if key.startswith(LEGACY_MARKER_PREFIXES)} | {
        "card.issue:order-2"
    }
    for prefix in LEGACY_MARKER_PREFIXES:  # the migration's own list (never edited) is this
        assert f"substr(key, 1, {len(prefix)}) <> '{prefix}'" in MIGRATIONS[36]


@pytest.mark.parametrize("store", ["redis", "redis-cluster"], indirect=True)
async def test_what_an_older_authhost_left_on_redis_is_sorted_out_once(store):  # noqa: F811
    """Keys an older authhost wrote have no time and are in no index: the first prune indexes
    them (markers by their prefix, results aged from then, a placeholder by its ``at``);
    nothing of unknown age goes before a whole retention has passed."""
    await store.create_account(Account("acc-l", "978", CardKind.DEBIT, balance=0))
    keys = store._keys  # written as an older authhost did: plain SETs, no index
    client = store.client
    old = _real_time() - 100 * DAY
    await client.set(keys.idempotency("account.closed:acc-l"), '{"closed_at":1}')
    await client.set(keys.idempotency("card.issue:demo:visa-active"), result("demo"))
    await client.set(keys.idempotency("card.issue:order-1"), result("order"))
    await client.set(keys.idempotency("card.issue:cut-short"), placeholder(old))
    await client.set(keys.idempotency("card.issue:at-work"), placeholder(_real_time()))
    await store.change_funds("acc-l", 100, key="core-1", fingerprint="f")  # and unindexed:
    await client.zrem(keys.account("acc-l").funds_written, ["core-1"])

    assert await store.prune_idempotency(_real_time() - 35 * DAY) == 1  # the cut-short one
    assert await store.idempotent_result("card.issue:order-1") is not None
    assert await store.funds_change_of("acc-l", "core-1") is not None
    # later runs read the indexes alone; a whole retention on, the results go
    assert await store.prune_idempotency(_real_time() + 1) == 3
    assert await store.idempotent_result("account.closed:acc-l") == '{"closed_at":1}'
    assert await store.idempotent_result("card.issue:demo:visa-active") == result("demo")
    assert await store.funds_change_of("acc-l", "core-1") is None


async def test_many_results_go_in_pages(store: CardStore):  # noqa: F811
    """More results than one batch (SQLite) or page (Redis): all old ones go, none else."""
    from authhost.store import redis as redis_store
    from authhost.store import sqlite as sqlite_store

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_store, "PRUNE_BATCH", 7)
        patch.setattr(redis_store, "PRUNE_PAGE", 7)
        with written_days_ago(50):
            for n in range(30):
                await store.remember_result(f"card.issue:k{n}", result(n))
        await store.remember_result("card.issue:new", result("new"))
        assert await store.prune_idempotency(_real_time() - 35 * DAY) == 30
    assert await store.idempotent_result("card.issue:new") is not None


# --- the service, the server's own run, the CLI and the API ----------------------------------


async def _product_and_account(service: CardService, balance: int = 10_000) -> None:
    await service.create_product(
        rq.NewProduct(product_id="p1", issuer_id="bank", name="Debit", bin="476173")
    )
    await service.create_account(rq.NewAccount(account_id="a1", balance=balance))


def _issue() -> rq.IssueCard:
    return rq.IssueCard(product_id="p1", account_id="a1", cardholder_name="ADA LOVELACE")


async def test_a_repeat_after_its_result_was_pruned_is_a_new_request(store_args):
    async with open_service(*store_args) as service:
        await _product_and_account(service)
        with written_days_ago(120):
            first = await service.issue_card(_issue(), idempotency_key="order-1")
            await service.change_funds(
                "a1", rq.FundsChange(amount_minor=500), idempotency_key="core-1"
            )
        with written_days_ago(5):
            recent = await service.issue_card(_issue(), idempotency_key="order-2")
        assert (await service.issue_card(_issue(), idempotency_key="order-1")) == first

        done = await service.prune_idempotency(90)
        assert done["results"] == 2
        assert done["before"] == pytest.approx(_real_time() - 90 * DAY, abs=60)
        again = await service.issue_card(_issue(), idempotency_key="order-1")
        assert again["card_id"] != first["card_id"]  # a new card: the key had expired
        assert (await service.issue_card(_issue(), idempotency_key="order-2")) == recent
        funded = await service.change_funds(
            "a1", rq.FundsChange(amount_minor=500), idempotency_key="core-1"
        )
        assert funded["balance"] == 11_000  # loaded again
        (audit,) = await service.store.audit(subject="idempotency")
        assert audit.action == "idempotency.prune" and audit.actor == "test"
        assert json.loads(audit.after) | {"before": 0} == {
            "keep_days": 90, "results": 2, "before": 0
        }  # fmt: skip


async def test_a_closed_account_still_refuses_a_card_after_any_prune(store_args):
    async with open_service(*store_args) as service:
        await _product_and_account(service, balance=0)
        with written_days_ago(3650):  # closed ten years ago
            await service.close_account("a1")
        service.clock = lambda: _real_time() + 3650 * DAY  # and pruned ten years on
        await service.prune_idempotency(IDEMPOTENCY_MIN_KEEP_DAYS)
        with pytest.raises(ConflictError, match="was closed at"):
            await service.issue_card(_issue())


async def test_keep_days_under_the_minimum_is_refused(store_args):
    async with open_service(*store_args) as service:
        await service.store.remember_result("card.issue:k", result("k"))
        for keep_days in (0, -5, IDEMPOTENCY_MIN_KEEP_DAYS - 1):
            with pytest.raises(InvalidRequest, match="at least 30"):
                await service.prune_idempotency(keep_days)
        assert await service.store.idempotent_result("card.issue:k") is not None
        assert await service.store.audit(subject="idempotency") == []


async def test_the_demo_survives_the_retention_and_issues_no_card_twice(store_args):
    """The demo finds its data by its idempotency keys: kept for good, so ``serve --demo``
    years on makes no second set of demo cards (nor fails on its accounts, 409)."""
    async with open_service(*store_args) as service:
        with written_days_ago(800):
            first = await ensure_demo(service)
        await service.prune_idempotency(IDEMPOTENCY_MIN_KEEP_DAYS)
        service.clock = lambda: _real_time() + 800 * DAY
        await service.prune_idempotency(IDEMPOTENCY_MIN_KEEP_DAYS)
        again = await ensure_demo(service)
        assert [v["card_id"] for v in again] == [v["card_id"] for v in first]
        assert len(await service.list_cards(limit=1000)) == len(CARDS)
        assert len((await demo_export(service))["cards"]) == len(CARDS)


async def test_the_server_applies_the_retention_itself_and_audits_it(store_args, monkeypatch):
    """[admin] idempotency_keep_days: the runtime's service prunes two minutes after start
    (here at once) and then daily, as the system actor."""
    from authhost import runtime

    monkeypatch.setattr(runtime, "IDEMPOTENCY_PRUNE_FIRST_S", 0.0)
    async with open_service(*store_args) as service:
        system = service.acting_as("system")
        with written_days_ago(40):
            await service.store.remember_result("card.issue:old", result("old"))
        await service.store.remember_result("card.issue:new", result("new"))
        with trio.move_on_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(runtime.prune_idempotency, system, 35)
                while not await service.store.audit(subject="idempotency"):
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        assert await service.store.idempotent_result("card.issue:old") is None
        assert await service.store.idempotent_result("card.issue:new") is not None
        (audit,) = await service.store.audit(subject="idempotency")
        assert audit.actor == "system" and json.loads(audit.after)["results"] == 1


def test_the_setting_defaults_to_90_days_and_refuses_less_than_the_minimum(tmp_path):
    assert AdminConfig().idempotency_keep_days == 90
    config = tmp_path / "authhost.toml"
    config.write_text("[admin]\nidempotency_keep_days = 0\n")
    assert load_config(config, env={}).admin.idempotency_keep_days == 0  # kept for good
    config.write_text("[admin]\nidempotency_keep_days = 7\n")
    with pytest.raises(ConfigError, match="idempotency_keep_days must be 0 .* or at least 30"):
        load_config(config, env={})
    result_ = CliRunner().invoke(app, ["config", "show", "--config", str(config)])
    assert result_.exit_code != 0 and "idempotency_keep_days must be 0" in result_.output


def test_the_cli_prunes_what_is_older_and_refuses_too_few_days(tmp_path):
    config = tmp_path / "authhost.toml"
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    config.write_text(
        f'[store]\nurl = "{url}"\n\n[security]\nkey_store = "{tmp_path / "k.json"}"\ndemo = true\n'
    )

    async def write() -> None:
        async with opened_store(url) as opened:
            with written_days_ago(45):
                await opened.remember_result("card.issue:old", result("old"))
                await opened.put_marker("account.closed:a", '{"closed_at":1}')
            await opened.remember_result("card.issue:new", result("new"))

    trio.run(write)
    runner = CliRunner()
    refused = runner.invoke(
        app, ["store", "prune-idempotency", "--keep-days", "29", "--config", str(config)]
    )
    assert refused.exit_code == 1 and "keep_days must be at least 30" in refused.stderr
    done = runner.invoke(
        app, ["store", "prune-idempotency", "--keep-days", "30", "--config", str(config)]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["results"] == 1

    async def read() -> tuple[list[bool], list]:
        async with opened_store(url) as opened:
            there = [
                await opened.idempotent_result(k) is not None
                for k in ("card.issue:old", "card.issue:new", "account.closed:a")
            ]
            return there, await opened.audit(subject="idempotency")

    there, audit = trio.run(read)
    assert there == [False, True, True]
    assert [a.action for a in audit] == ["idempotency.prune"]


async def test_the_api_prunes_for_an_operator_and_refuses_bad_input(store_args):
    async with open_service(*store_args) as service, running_admin(service) as port:
        with written_days_ago(60):
            await service.store.remember_result("card.issue:old", result("old"))
        path = "/v1/store/prune-idempotency"
        assert (await call(port, "POST", f"{path}?keep_days=29")).status == 400  # its range
        assert (await call(port, "POST", f"{path}?keep_days=ten")).status == 400
        assert (await call(port, "POST", path)).status == 400  # keep_days is required
        assert (await call(port, "POST", f"{path}?keep_days=30", token=AUDITOR_TOKEN)).status == 403
        assert await service.store.idempotent_result("card.issue:old") is not None
        done = await call(port, "POST", f"{path}?keep_days=30")
        assert done.status == 200 and done.json["results"] == 1
        assert await service.store.idempotent_result("card.issue:old") is None
        audit = await call(port, "GET", "/v1/audit?subject=idempotency")
        assert [a["action"] for a in audit.json["audit"]] == ["idempotency.prune"]


async def test_a_redis_store_opened_anew_finds_the_index_built(redis_url):
    """The indexing of older keys runs once per store (its flag), not once per process."""
    import secrets

    prefix = f"t{secrets.token_hex(6)}"
    first = await open_store(redis_url, prefix=prefix)
    try:
        await first.prune_idempotency(_real_time() - 35 * DAY)
        # a key written now without the index (as an older process would) stays unindexed:
        # kept, never deleted by a later run, whatever its age
        await first.client.set(first._keys.idempotency("card.issue:stray"), result("x"))
        second = await open_store(redis_url, prefix=prefix)
        try:
            assert await second.prune_idempotency(_real_time() + 1) == 0
            assert await second.idempotent_result("card.issue:stray") is not None
        finally:
            await second.close()
    finally:
        await first.drop_all()
        await first.close()


@pytest.fixture(params=["sqlite", "redis"])
def host_store_url(request, tmp_path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)  # the demo export is written to the working directory
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'authhost.db'}"
    return f"{request.getfixturevalue('redis_url')}?prefix=idem-{secrets.token_hex(4)}"


async def test_a_demo_host_prunes_at_its_setting_and_keeps_the_markers(
    host_store_url, tmp_path, monkeypatch
):
    """``serve --demo`` with ``[admin] idempotency_keep_days = 30``: the host's own run (at
    once here, two minutes after start otherwise) deletes the old results, audited as the
    system, and leaves the young ones, a closed account's marker and the demo's keys."""
    from authhost import runtime as runtime_module
    from authhost.config import Config, SecurityConfig, ServerConfig, StoreConfig
    from authhost.runtime import open_runtime
    from authhost.server.process import serve_runtime

    async with opened_store(host_store_url) as seeding:
        with written_days_ago(45):
            await seeding.remember_result("card.issue:old", result("old"))
            await seeding.put_marker("account.closed:gone", '{"closed_at":1}')
        with written_days_ago(20):
            await seeding.remember_result("card.issue:young", result("young"))
    monkeypatch.setattr(runtime_module, "IDEMPOTENCY_PRUNE_FIRST_S", 0.0)
    config = Config(
        server=ServerConfig(port=0, metrics_port=0, pid_file="", log_level="WARNING"),
        store=StoreConfig(url=host_store_url),
        security=SecurityConfig(key_store=str(tmp_path / "keys.json"), demo=True),
        admin=AdminConfig(port=0, idempotency_keep_days=30),
    )
    async with trio.open_nursery() as nursery:
        opened = []

        async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
            async with open_runtime(config, demo=True) as runtime:
                opened.append(runtime)
                await serve_runtime(config, runtime, task_status=task_status)

        await nursery.start(serve)
        store = opened[0].store
        with trio.fail_after(20):
            while not await store.audit(subject="idempotency"):
                await trio.sleep(0.05)
        (audit,) = await store.audit(subject="idempotency")
        assert audit.actor == "system" and audit.action == "idempotency.prune"
        assert (
            json.loads(audit.after)["results"] == 1 and json.loads(audit.after)["keep_days"] == 30
        )
        assert await store.idempotent_result("card.issue:old") is None
        assert await store.idempotent_result("card.issue:young") is not None
        assert await store.idempotent_result("account.closed:gone") is not None
        for spec in CARDS:
            assert await store.idempotent_result(f"card.issue:demo:{spec.key}") is not None
        nursery.cancel_scope.cancel()
