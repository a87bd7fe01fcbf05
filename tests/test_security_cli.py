"""``authhost keys ...`` end to end through the real CLI app, on a key store in tmp_path."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.config import SecurityConfig
from authhost.security.errors import SecurityError
from authhost.security.keys import KeyAlgorithm, KeyType, kcv
from authhost.security.keystore import KeyStore
from authhost.security.module import SecurityModule


@pytest.fixture
def setup(tmp_path: Path) -> tuple[CliRunner, list[str], Path, str]:
    key_store = tmp_path / "keys.json"
    config = tmp_path / "authhost.toml"
    config.write_text(f'[security]\nkey_store = "{key_store}"\n')
    master = secrets.token_hex(32)
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": master})
    return runner, ["--config", str(config)], key_store, master


def run(runner: CliRunner, *args: str, input: str | None = None):  # noqa: A002
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def test_generate_list_export_import_round_trip(setup) -> None:
    runner, cfg, key_store, master = setup
    assert run(runner, "keys", "generate", "kek", "--type", "kek", *cfg).exit_code == 0
    result = run(runner, "keys", "generate", "zpk-acq1", "--type", "zpk", *cfg)
    assert result.exit_code == 0 and "KCV" in result.output
    kcv = result.stdout.split("KCV ")[1].split()[0]

    listing = run(runner, "keys", "list", *cfg)
    assert listing.exit_code == 0
    assert "zpk-acq1" in listing.output and kcv in listing.output and "kek" in listing.output
    clear = KeyStore.load(key_store, bytes.fromhex(master)).get("zpk-acq1").material.hex()
    assert clear.upper() not in listing.output.upper()

    exported = run(runner, "keys", "export", "zpk-acq1", *cfg)
    assert exported.exit_code == 0
    block = exported.stdout.strip().splitlines()[0]
    assert block.startswith("D") and block[5:7] == "P0"
    assert clear.upper() not in exported.output.upper()

    imported = run(runner, "keys", "import", "zpk-copy", block, "--kcv", kcv, *cfg)
    assert imported.exit_code == 0 and kcv in imported.output
    mismatch = run(runner, "keys", "import", "zpk-bad", block, "--kcv", "000000", *cfg)
    assert mismatch.exit_code == 1 and "differs" not in mismatch.output
    # both values, so the custodian can tell a mistyped --kcv from a wrong block
    assert f"its KCV is {kcv}, not the 000000 expected (--kcv)" in mismatch.output
    again = run(runner, "keys", "import", "zpk-copy", block, *cfg)
    assert again.exit_code == 1 and "exists" in again.output


def test_a_key_that_exists_names_the_option_that_adds_a_version(setup) -> None:
    """``keys generate`` of a name the store has said "use a new version to replace it"
    without naming the option that does: --new-version."""
    runner, cfg, _, _ = setup
    assert run(runner, "keys", "generate", "zpk-aes", "--type", "zpk", *cfg).exit_code == 0
    again = run(runner, "keys", "generate", "zpk-aes", "--type", "zpk", *cfg)
    assert again.exit_code == 1 and "exists (version 1)" in again.output
    assert "--new-version" in again.output
    added = run(runner, "keys", "generate", "zpk-aes", "--type", "zpk", "--new-version", *cfg)
    assert added.exit_code == 0 and "zpk-aes v2" in added.output


def test_tdes_kek_exports_version_b(setup) -> None:
    runner, cfg, _, _ = setup
    run(runner, "keys", "generate", "kek-b", "--type", "kek", "--algorithm", "tdes", *cfg)
    run(runner, "keys", "generate", "cvk", "--type", "cvk", *cfg)
    result = run(runner, "keys", "export", "cvk", "--kek", "kek-b", *cfg)
    assert result.exit_code == 0 and result.stdout.startswith("B") and result.stdout[5:7] == "C0"


def test_kek_from_components(setup) -> None:
    runner, cfg, key_store, master = setup
    one, two = secrets.token_hex(32), secrets.token_hex(32)
    result = run(runner, "keys", "components", "kek-partner", *cfg, input=f"{one}\n{two}\n")
    assert result.exit_code == 0, result.output
    assert one not in result.output and two not in result.output
    key = KeyStore.load(key_store, bytes.fromhex(master)).get("kek-partner")
    expected = bytes(a ^ b for a, b in zip(bytes.fromhex(one), bytes.fromhex(two), strict=True))
    assert key.material == expected and key.kcv in result.output
    for component in (one, two):
        assert kcv(bytes.fromhex(component), KeyAlgorithm.AES) in result.output
    bad = run(runner, "keys", "components", "kek-x", *cfg, input="ABCD\n")
    assert bad.exit_code == 1
    assert "components must each be 32, 48 or 64 hex digits (all the same length); got 4" in (
        bad.output
    )  # was "components must all be (16, 24, 32) bytes long": a tuple, in bytes
    ended = run(runner, "keys", "components", "kek-x", *cfg, input="")  # the input ran out
    assert ended.exit_code == 1 and "got 0" in ended.output
    itself = run(runner, "keys", "export", "kek-partner", "--kek", "kek-partner", *cfg)
    assert itself.exit_code == 1 and "under itself" in itself.output


def test_components_piped_in_are_read_without_a_warning(tmp_path: Path) -> None:
    """A key ceremony script pipes the components in: getpass found no terminal and printed
    "Warning: Password input may be echoed." before each (nothing was echoed)."""
    one, two = secrets.token_hex(16), secrets.token_hex(16)
    done = subprocess.run(
        [sys.executable, "-m", "authhost", "keys", "components", "kek-piped",
         "--key-store", str(tmp_path / "keys.json")],
        input=f"{one}\n{two}\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, "AUTHHOST_MASTER_KEY": secrets.token_hex(32)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "echoed" not in done.stdout + done.stderr, done.stderr
    assert one not in done.stdout + done.stderr and "stored kek-piped v1" in done.stdout


def pan_keys(setup) -> tuple[SecurityModule, bytes]:
    """The PAN keys made by the CLI, a security module on them, and a PAN sealed under v1."""
    runner, cfg, key_store, master = setup
    run(runner, "keys", "generate", "pan-hash", "--type", "pan-hash", *cfg)
    run(runner, "keys", "generate", "pan-data", "--type", "pan-data", *cfg)
    security = SecurityConfig(key_store=str(key_store))
    hsm = SecurityModule.open(security, env={"AUTHHOST_MASTER_KEY": master})
    return hsm, hsm.encrypt_pan("4761739001010010", "card-7")


def test_rotate_pan_key_keeps_old_pans_readable(setup, tmp_path) -> None:
    runner, cfg, _, _ = setup
    hsm, old = pan_keys(setup)
    result = run(runner, "keys", "rotate-pan-key", *cfg)
    assert result.exit_code == 0 and "version 2" in result.output
    hsm.reload()
    assert hsm.encrypt_pan("4761739001010010", "card-7")[1:3] == b"\x00\x02"
    assert hsm.decrypt_pan(old, "card-7") == "4761739001010010"


def test_errors_are_messages_not_tracebacks(setup, tmp_path) -> None:
    runner, cfg, _, _ = setup
    no_master = CliRunner(env={"AUTHHOST_MASTER_KEY": ""})
    result = run(no_master, "keys", "list", *cfg)
    assert result.exit_code == 1 and "AUTHHOST_MASTER_KEY" in result.output
    assert "Traceback" not in result.output
    missing = run(runner, "keys", "list", *cfg)
    assert missing.exit_code == 1 and "not found" in missing.output
    run(runner, "keys", "generate", "kek", "--type", "kek", *cfg)
    bad = run(runner, "keys", "import", "x", "D0016P0AE00E0000", *cfg)
    assert bad.exit_code == 1 and "cannot import" in bad.output
    unknown = run(runner, "keys", "export", "nope", *cfg)
    assert unknown.exit_code == 1 and "'nope'" in unknown.output


def test_key_store_file_holds_no_clear_key(setup) -> None:
    runner, cfg, key_store, master = setup
    run(runner, "keys", "generate", "pvk", "--type", "pvk", *cfg)
    store = KeyStore.load(key_store, bytes.fromhex(master))
    text = key_store.read_text()
    assert store.get("pvk").material.hex() not in text.lower()
    assert master.lower() not in text.lower()
    assert json.loads(text)["keys"][0]["kcv"] == store.get("pvk").kcv
    assert key_store.stat().st_mode & 0o077 == 0


def test_a_retired_pan_key_version_is_destroyed_for_every_process(setup) -> None:
    """Retiring a version leaves a tombstone: its material is gone from the file, it no longer
    decrypts, a process that read the file before and saves afterwards does not bring it back,
    and the newest version cannot be retired."""
    runner, cfg, key_store, master = setup
    hsm, old = pan_keys(setup)
    run(runner, "keys", "rotate-pan-key", *cfg)
    stale = KeyStore.load(key_store, bytes.fromhex(master))  # another process, read before
    wrapped_v1 = next(e.wrapped for e in stale.entries() if e.name == "pan-data")
    hsm.reload()
    with pytest.raises(SecurityError, match="newest"):
        hsm.retire_pan_key(2)
    hsm.retire_pan_key(1)
    assert wrapped_v1 not in key_store.read_text()
    with pytest.raises(SecurityError):
        hsm.decrypt_pan(old, "card-7")
    stale.put(stale.get("pan-hash").__class__("zpk-x", KeyType.ZPK, KeyAlgorithm.TDES,
                                              secrets.token_bytes(16), 1))  # fmt: skip
    again = KeyStore.load(key_store, bytes.fromhex(master))
    assert again.versions("pan-data") == [2] and "zpk-x" in {e.name for e in again.entries()}
    listed = run(runner, "keys", "list", *cfg)
    assert "retired" in listed.output
    with pytest.raises(SecurityError, match="not in the key store"):
        hsm.retire_pan_key(1)  # once only
