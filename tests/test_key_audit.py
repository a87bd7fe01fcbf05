"""An operator's key changes are in the audit log: `authhost keys generate`, `components`,
`import`, `export`, `rotate-pan-key`, `rotate-master-key` and `upgrade` worked on the key store file
alone and left no entry, so a key ceremony was invisible in `authhost audit` (found walking
docs/security.md's ceremony: `audit verify` counted the cards' entries and none of the keys').
Each entry names the key, version, type and KCV, never the key, on both stores; the chain
verifies across the master key rotation."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import trio
from test_security_keystore_format import write_format1
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.security.keys import KeyAlgorithm, KeyType, WorkingKey
from authhost.security.keystore import KeyStore
from authhost.store import open_store


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return f"{request.getfixturevalue('redis_url')}?prefix=t{secrets.token_hex(6)}"
    url = f"sqlite:///{tmp_path / 'authhost.db'}"

    async def create() -> None:
        await (await open_store(url)).close()

    trio.run(create)
    return url


def _entries(url: str) -> list:
    async def read() -> list:
        store = await open_store(url)
        try:
            return await store.audit(limit=1000)
        finally:
            await store.close()

    return trio.run(read)


def test_a_key_ceremony_is_audited_and_its_chain_verifies(store_url: str, tmp_path: Path) -> None:
    key_store = tmp_path / "keys.json"
    config = tmp_path / "authhost.toml"
    config.write_text(f'[security]\nkey_store = "{key_store}"\n[store]\nurl = "{store_url}"\n')
    master = secrets.token_hex(32)
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": master})
    cfg = ["--config", str(config)]

    def keys(*args: str, input: str | None = None) -> str:  # noqa: A002
        done = runner.invoke(app, ["keys", *args, *cfg], input=input, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.output

    keys("generate", "pan-data", "--type", "pan-data")
    keys("generate", "zpk-acq1", "--type", "zpk")
    one, two = secrets.token_hex(32), secrets.token_hex(32)
    keys("components", "kek-partner", input=f"{one}\n{two}\n")
    block = keys("export", "zpk-acq1", "--kek", "kek-partner").split()[0]
    keys("import", "zpk-acq2", block, "--kek", "kek-partner")
    keys("rotate-pan-key")
    new_master = tmp_path / "master.key.new"
    new_master.write_text(secrets.token_hex(32))
    new_master.chmod(0o600)
    keys("rotate-master-key", "--new-master-key-file", str(new_master))

    entries = _entries(store_url)
    assert [(e.action, e.subject) for e in entries] == [
        ("key.generate", "pan-data"),
        ("key.generate", "zpk-acq1"),
        ("key.components", "kek-partner"),
        ("key.export", "zpk-acq1"),
        ("key.import", "zpk-acq2"),
        ("key.rotate_pan_key", "pan-data"),
        ("key.rotate_master_key", str(key_store)),
    ]
    assert all(e.actor.startswith("cli") and e.chain for e in entries)
    assert '"kcv": "' in entries[1].after and '"version": 1' in entries[1].after
    store = KeyStore.load(key_store, bytes.fromhex(new_master.read_text()))
    written = " ".join(e.after for e in entries).lower()
    for name in ("pan-data", "zpk-acq1", "zpk-acq2", "kek-partner"):
        assert store.get(name).material.hex() not in written  # never a key
    assert one not in written and two not in written
    verified = CliRunner(env={"AUTHHOST_MASTER_KEY": new_master.read_text()}).invoke(
        app, ["audit", "verify", *cfg]
    )
    assert verified.exit_code == 0 and '"ok": true' in verified.stdout, verified.output


def test_a_key_made_before_the_store_exists_says_it_is_not_audited(tmp_path: Path) -> None:
    """The first keys of a new installation come before its SQLite file: the command says
    so and creates no store."""
    config = tmp_path / "authhost.toml"
    store = tmp_path / "authhost.db"
    config.write_text(
        f'[security]\nkey_store = "{tmp_path / "keys.json"}"\n[store]\nurl = "sqlite:///{store}"\n'
    )
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": secrets.token_hex(32)})
    done = runner.invoke(app, ["keys", "generate", "pvk", "--type", "pvk", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert f"not audited: no store at {store} yet" in done.stderr
    assert not store.exists()


def test_a_key_store_given_apart_leaves_the_stores_chain_whole(store_url: str, tmp_path: Path):
    """A key made in another key store file (`--key-store`: a partner's KEK made apart)
    was audited into the configured store under that file's own audit key: after a master
    key rotation (the installation's file keeps the old master key's audit key) or under a
    token, `audit verify` then found the chain broken, as if the log had been edited."""
    key_store = tmp_path / "keys.json"
    config = tmp_path / "authhost.toml"
    config.write_text(f'[security]\nkey_store = "{key_store}"\n[store]\nurl = "{store_url}"\n')
    cfg = ["--config", str(config)]
    first = CliRunner(env={"AUTHHOST_MASTER_KEY": secrets.token_hex(32)})
    done = first.invoke(app, ["keys", "generate", "pan-data", "--type", "pan-data", *cfg])
    assert done.exit_code == 0, done.output
    new_master = tmp_path / "master.key.new"
    new_master.write_text(secrets.token_hex(32))
    new_master.chmod(0o600)
    done = first.invoke(
        app, ["keys", "rotate-master-key", "--new-master-key-file", str(new_master), *cfg]
    )
    assert done.exit_code == 0, done.output
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": new_master.read_text()})
    apart = ["--key-store", str(tmp_path / "partner.json")]
    done = runner.invoke(app, ["keys", "generate", "kek-partner", "--type", "kek", *apart, *cfg])
    assert done.exit_code == 0, done.output
    assert "not audited: the store's audit log is chained under another" in done.stderr
    done = runner.invoke(app, ["keys", "generate", "zpk", "--type", "zpk", *cfg])  # ours: audited
    assert done.exit_code == 0 and "not audited" not in done.stderr, done.output
    assert [(e.action, e.subject) for e in _entries(store_url)] == [
        ("key.generate", "pan-data"),
        ("key.rotate_master_key", str(key_store)),
        ("key.generate", "zpk"),
    ]
    verified = runner.invoke(app, ["audit", "verify", *cfg])
    assert verified.exit_code == 0 and '"ok": true' in verified.stdout, verified.output


def test_a_key_store_upgrade_is_audited(store_url: str, tmp_path: Path) -> None:
    """`authhost keys upgrade` re-encrypts every key of an older file: an entry says from and
    to which format and how many key versions, and the chain verifies."""
    key_store = tmp_path / "keys.json"
    master = secrets.token_bytes(32)
    zpk = WorkingKey("zpk-acq1", KeyType.ZPK, KeyAlgorithm.AES, secrets.token_bytes(16))
    write_format1(key_store, master, [zpk])
    config = tmp_path / "authhost.toml"
    config.write_text(f'[security]\nkey_store = "{key_store}"\n[store]\nurl = "{store_url}"\n')
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": master.hex()})
    cfg = ["--config", str(config)]
    done = runner.invoke(app, ["keys", "upgrade", *cfg], catch_exceptions=False)
    assert done.exit_code == 0 and "from format 1 to format 2" in done.output, done.output
    again = runner.invoke(app, ["keys", "upgrade", *cfg], catch_exceptions=False)
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output
    (entry,) = _entries(store_url)  # the second run changed nothing: no entry
    assert (entry.action, entry.subject) == ("key.upgrade", str(key_store))
    assert json.loads(entry.after) == {
        "key_store": str(key_store), "from": 1, "to": 2, "key_versions": 1,
    }  # fmt: skip
    verified = runner.invoke(app, ["audit", "verify", *cfg])
    assert verified.exit_code == 0 and '"ok": true' in verified.stdout, verified.output
