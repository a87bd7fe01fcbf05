"""A master key file that group or others can read is refused, naming the file, its mode and
the fix, as ssh refuses such a private key (it used to be loaded silently); the demo's own
key file is written owner-only, so ``serve --demo`` on a fresh clone still starts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.config import SecurityConfig
from authhost.security.errors import MasterKeyMissing
from authhost.security.keystore import KeyStore
from authhost.security.module import SecurityModule

runner = CliRunner()


@pytest.fixture
def installation(tmp_path: Path) -> SecurityConfig:
    """A production key store and its master key file (mode 0600)."""
    master = secrets.token_bytes(32)
    key_file = tmp_path / "master.key"
    key_file.write_text(master.hex() + "\n")
    key_file.chmod(0o600)
    KeyStore.create(tmp_path / "keys.json", master)
    return SecurityConfig(key_store=str(tmp_path / "keys.json"), master_key_file=str(key_file))


def test_an_owner_only_master_key_file_opens(installation: SecurityConfig) -> None:
    assert SecurityModule.open(installation, env={}).key_store.entries() == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_master_key_file_open_to_others_is_refused(
    installation: SecurityConfig, mode: int
) -> None:
    Path(installation.master_key_file).chmod(mode)
    with pytest.raises(MasterKeyMissing) as refused:
        SecurityModule.open(installation, env={})
    message = str(refused.value)
    assert installation.master_key_file in message
    assert f"mode {mode:04o}" in message
    assert f"chmod 600 {installation.master_key_file}" in message
    assert Path(installation.master_key_file).read_text().strip() not in message


def test_a_directory_or_a_missing_file_is_named(tmp_path: Path) -> None:
    for path, why in ((tmp_path, "is a directory"), (tmp_path / "none", "No such file")):
        config = SecurityConfig(key_store=str(tmp_path / "k.json"), master_key_file=str(path))
        with pytest.raises(MasterKeyMissing, match=why):
            SecurityModule.open(config, env={})


def test_the_cli_refuses_with_one_line_and_exit_1(installation: SecurityConfig) -> None:
    Path(installation.master_key_file).chmod(0o644)
    result = runner.invoke(
        app,
        ["keys", "list", "--key-store", installation.key_store],
        env={"AUTHHOST_SECURITY_MASTER_KEY_FILE": installation.master_key_file},
    )
    assert result.exit_code == 1, result.output
    assert "mode 0644" in result.output and "chmod 600" in result.output
    assert "Traceback" not in result.output


def test_a_demo_master_key_copied_open_to_others_is_refused_too(tmp_path: Path) -> None:
    config = SecurityConfig(key_store=str(tmp_path / "keys.json"))
    old_umask = os.umask(0o022)  # a usual umask: the demo's file is still owner-only
    try:
        SecurityModule.open(config, demo=True, env={})
    finally:
        os.umask(old_umask)
    demo_key = tmp_path / "keys.json.demo-master-key"
    assert demo_key.stat().st_mode & 0o777 == 0o600
    SecurityModule.open(config, env={})  # reopens, as `authhost cards ...` does
    demo_key.chmod(0o644)
    with pytest.raises(MasterKeyMissing, match="chmod 600"):
        SecurityModule.open(config, demo=True, env={})


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_a_file_of_another_owner_may_be_shared_with_its_group_only(
    installation: SecurityConfig,
) -> None:
    """root:authhost 0640, read by the service through its group, as ssh allows; 0644 not."""
    key_file = Path(installation.master_key_file)
    os.chown(key_file, 4242, os.getegid())  # another owner
    key_file.chmod(0o640)
    assert SecurityModule.open(installation, env={}).key_store.entries() == []
    key_file.chmod(0o644)
    with pytest.raises(MasterKeyMissing, match="mode 0644"):
        SecurityModule.open(installation, env={})
