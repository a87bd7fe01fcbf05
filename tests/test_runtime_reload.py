"""SIGHUP runs every reloader of the runtime: one that fails (a key store caught mid-rotation)
no longer keeps the ones after it (the rules, the model) from reloading."""

from __future__ import annotations

import logging
import secrets

import pytest

from authhost.config import SecurityConfig
from authhost.runtime import Runtime, reload_keys
from authhost.security.errors import KeyStoreError
from authhost.security.key_admin import generate_key
from authhost.security.keys import KeyType
from authhost.security.keystore import KeyStore
from authhost.security.module import SecurityModule


async def _approve(request, received_at):  # pragma: no cover - never called
    raise AssertionError


async def test_a_failed_reloader_does_not_stop_the_others(caplog) -> None:
    ran: list[str] = []

    def reloader(name: str, error: Exception | None = None):
        async def reload() -> None:
            ran.append(name)
            if error is not None:
                raise error

        return reload

    runtime = Runtime(
        handler=_approve,
        reloaders=[
            reloader("keys", KeyStoreError("key store: not JSON")),
            reloader("rules"),
            reloader("model", ValueError("model file truncated")),
        ],
    )
    with (
        caplog.at_level(logging.ERROR, "authhost.runtime"),
        pytest.raises(KeyStoreError, match="not JSON"),
    ):
        await runtime.reload()
    assert ran == ["keys", "rules", "model"]
    assert "model file truncated" in caplog.text  # the later failure is not lost either


async def test_a_sighup_says_the_key_store_was_re_read_and_what_it_holds(tmp_path, caplog) -> None:
    """After `authhost keys generate` and a SIGHUP the log said only "reload complete": the
    key store's re-read was silent (found walking README's Operations)."""
    master = secrets.token_hex(32)
    path = tmp_path / "keys.json"
    store = KeyStore.create(path, bytes.fromhex(master))
    generate_key(store, "pan-hash", KeyType.PAN_HASH)
    config = SecurityConfig(key_store=str(path))
    security = SecurityModule.open(config, env={"AUTHHOST_MASTER_KEY": master})
    generate_key(store, "zpk-acq1", KeyType.ZPK)  # an operator's key, while it serves
    with caplog.at_level(logging.INFO, "authhost.runtime"):
        await reload_keys(security)
    assert f"key store re-read: {path}, 2 key version(s)" in caplog.text
    assert security.has_key("zpk-acq1", KeyType.ZPK)


async def test_a_sighup_with_a_refused_rules_file_ends_saying_what_it_kept(tmp_path, caplog):
    """A SIGHUP with a broken rules file: the source logged the refusal, then the server's
    last line was "reload complete", which reads as if the file had been taken (found in a
    failure drill). That line now names the rules version kept in force."""
    from functools import partial

    from authhost.rules.loader import RuleSource
    from authhost.runtime import RulesWithStoreLists, reload_rules
    from authhost.server.process import _reload
    from authhost.store import open_store

    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nname = "big"\nexpression = "amount > 100"\naction = "decline"\n')
    source = RuleSource(path)
    kept = source.version
    path.write_text('[[rule]]\nname = "big"\nexpression = "amont > 100"\naction = "decline"\n')
    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    try:
        rules = RulesWithStoreLists(source, store)
        runtime = Runtime(handler=_approve, reloaders=[partial(reload_rules, rules)])
        with caplog.at_level(logging.INFO):
            await _reload(runtime)
    finally:
        await store.close()
    last = caplog.records[-1]
    assert last.levelno == logging.WARNING, caplog.text
    assert (
        last.getMessage()
        == f"reload complete, keeping rules version {kept} (the rules file was refused)"
    )
    assert source.version == kept


async def test_a_store_that_hangs_does_not_keep_a_new_champion_out(tmp_path, monkeypatch):
    """SIGHUP ran keys, rules, models in turn, and the rules' reloader writes its audit entry
    and reads the lists in the store after its file: with the store's write lock held by
    another connection (or Redis paused) the new champion waited for the store to answer.
    Here the champion is in force while the lock is still held; the audit entry follows."""
    import sqlite3

    import trio
    from test_cli_consistency import _amount_model

    from authhost.config import (
        AdminConfig,
        Config,
        ModelsConfig,
        RulesConfig,
        ServerConfig,
        StoreConfig,
    )
    from authhost.runtime import open_runtime

    monkeypatch.chdir(tmp_path)  # the demo export is written to the working directory
    db, rules_file = tmp_path / "authhost.db", tmp_path / "rules.toml"
    rule = '[[rule]]\nname = "big"\nexpression = "amount > {}"\naction = "decline"\n'
    rules_file.write_text(rule.format(100))
    config = Config(
        server=ServerConfig(port=0, pid_file=""),
        store=StoreConfig(url=f"sqlite:///{db}"),
        security=SecurityConfig(key_store=str(tmp_path / "keys.json"), demo=True),
        admin=AdminConfig(port=0),
        rules=RulesConfig(file=str(rules_file)),
        models=ModelsConfig(dir=str(tmp_path / "models")),
    )
    async with open_runtime(config, demo=True) as runtime:
        assert runtime.scorer.champion is None
        rules_file.write_text(rule.format(200))
        _amount_model(tmp_path / "models")  # `authhost models activate lr-amount`
        locker = sqlite3.connect(db, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # another writer holds the store's write lock
            async with trio.open_nursery() as nursery:
                nursery.start_soon(runtime.reload)
                try:
                    with trio.fail_after(10):  # milliseconds once nothing waits for the store
                        while runtime.scorer.champion is None:
                            await trio.sleep(0.01)
                    assert locker.in_transaction  # taken before the store answered
                finally:
                    locker.rollback()  # the store answers; the reload can finish
        finally:
            locker.close()
        assert runtime.scorer.champion.name == "lr-amount"
        [entry] = await runtime.store.audit(subject="rules")
        assert entry.action == "rules.reload"
