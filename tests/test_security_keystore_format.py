"""Key separation in the key store (PCI PIN: a key is used for one purpose only): the master key
only derives purpose keys (HKDF-SHA-256) for the entries, the check value and the header tag.

A format-1 file (the master key used directly for all three) still loads with the same master
key, keeps every key, and is rewritten in format 2 by ``authhost keys upgrade`` or by the next
key change. ``tests/data/keystore-format1.json`` was written by the format-1 code itself
(commit 1b8fbad) under the TEST ONLY master key below: keys ``kek``, ``pan-data`` v1 (retired)
and v2, ``zpk`` and ``zpk-n`` (not exportable), of the known test materials in KEYS.
``write_format1`` builds such a file in a test, from the format-1 construction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.config import SecurityConfig
from authhost.security.errors import KeyStoreError
from authhost.security.keys import KeyAlgorithm, KeyType, WorkingKey, adjust_des_parity, kcv
from authhost.security.keystore import KeyStore, is_demo_store
from authhost.security.module import SecurityModule

FIXTURE = Path(__file__).parent / "data" / "keystore-format1.json"
MASTER = bytes.fromhex("7E57" * 16)  # TEST ONLY: the fixture's master key
KEYS = {  # (name, version) -> the fixture's clear test material (pan-data v1 is retired)
    ("zpk", 1): adjust_des_parity(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")),
    ("kek", 1): bytes(range(32)),
    ("pan-data", 2): bytes(range(64, 96)),
    ("zpk-n", 1): bytes(range(96, 112)),
}


def derived(master: bytes, purpose: str) -> bytes:
    """A purpose key as docs/security.md specifies it, computed here independently."""
    info = f"authhost-keystore/2 {purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def aad(entry: dict) -> bytes:
    fixed = f"{entry['name']}|{entry['key_type']}|{entry['algorithm']}|{entry['version']}"
    return (fixed + ("" if entry.get("exportable", True) else "|not-exportable")).encode()


def opens(key: bytes, entry: dict) -> bool:
    blob = bytes.fromhex(entry["wrapped"])
    try:
        AESGCM(key).decrypt(blob[:12], blob[12:], aad(entry))
    except InvalidTag:
        return False
    return True


def tag(key: bytes, fmt: int, demo: bool) -> str:
    message = f"authhost-keystore/{fmt}|demo={int(demo)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def write_format1(path: Path, master: bytes, keys: list[WorkingKey], demo: bool = False) -> None:
    """A key store file as the format-1 code wrote it: every entry AES-GCM under the master
    key itself, the master key's own KCV, the header tagged with the master key."""
    entries = []
    for key in keys:
        entry = {"name": key.name, "key_type": key.key_type.value,
                 "algorithm": key.algorithm.value, "version": key.version, "kcv": key.kcv}  # fmt: skip
        nonce = secrets.token_bytes(12)
        wrapped = nonce + AESGCM(master).encrypt(nonce, key.material, aad(entry))
        entries.append({**entry, "wrapped": wrapped.hex(), "created_at": time.time(),
                        "retired_at": 0.0})  # fmt: skip
    data = {"format": "authhost-keystore/1", "demo": demo,
            "master_kcv": kcv(master, KeyAlgorithm.AES), "header_tag": tag(master, 1, demo),
            "keys": entries}  # fmt: skip
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    shutil.copyfile(FIXTURE, path)
    path.chmod(0o600)
    return path


def test_a_format_1_file_loads_without_being_written_and_keeps_every_key(old_file) -> None:
    before = old_file.read_bytes()
    store = KeyStore.load(old_file, MASTER)
    assert store.file_format == 1
    for (name, version), material in KEYS.items():
        assert store.get(name, version).material == material
    assert store.versions("pan-data") == [2]  # v1 stays retired
    assert not store.exportable("zpk-n")
    assert old_file.read_bytes() == before  # loading (a server start) never rewrites it


def test_upgrade_rewrites_it_under_derived_keys_only(old_file) -> None:
    old = json.loads(old_file.read_text())
    store = KeyStore.load(old_file, MASTER)
    assert store.upgrade() == 1
    assert store.file_format == 2
    assert stat.S_IMODE(os.stat(old_file).st_mode) == 0o600
    data = json.loads(old_file.read_text())
    assert data["format"] == "authhost-keystore/2" and "master_kcv" not in data

    live = [e for e in data["keys"] if not e["retired_at"]]
    assert len(live) == len(KEYS)
    for entry in live:  # the raw master key opens nothing; the entry key opens everything
        assert not opens(MASTER, entry)
        assert opens(derived(MASTER, "entry encryption"), entry)
        assert not opens(derived(MASTER, "check value"), entry)
    assert data["check_value"] == kcv(derived(MASTER, "check value"), KeyAlgorithm.AES)
    assert data["check_value"] != old["master_kcv"] == kcv(MASTER, KeyAlgorithm.AES)
    assert data["header_tag"] == tag(derived(MASTER, "header tag"), 2, False)
    assert data["header_tag"] not in {tag(MASTER, 1, False), tag(MASTER, 2, False)}

    # names, versions, KCVs, times and the tombstone kept as they were
    def described(entries: list[dict]) -> list[tuple]:
        return [(e["name"], e["version"], e["kcv"], e["created_at"], e["retired_at"],
                 e.get("exportable", True)) for e in entries]  # fmt: skip

    assert described(data["keys"]) == described(old["keys"])
    again = KeyStore.load(old_file, MASTER)
    assert again.file_format == 2 and again.upgrade() is None
    for (name, version), material in KEYS.items():
        assert again.get(name, version).material == material
    assert MASTER.hex() not in old_file.read_text().lower()


def test_the_next_key_change_upgrades_a_format_1_file_and_keeps_the_demo_flag(tmp_path) -> None:
    path, master = tmp_path / "keys.json", secrets.token_bytes(32)
    zpk = WorkingKey("zpk", KeyType.ZPK, KeyAlgorithm.AES, secrets.token_bytes(16))
    write_format1(path, master, [zpk], demo=True)
    store = KeyStore.load(path, master)
    assert store.demo and store.file_format == 1
    new = store.add_version("zpk", KeyType.ZPK, KeyAlgorithm.AES, secrets.token_bytes(16))
    assert store.file_format == 2 and json.loads(path.read_text())["format"].endswith("/2")
    again = KeyStore.load(path, master)
    assert again.demo and is_demo_store(path)
    assert again.get("zpk", 1).material == zpk.material
    assert again.get("zpk").material == new.material
    for entry in json.loads(path.read_text())["keys"]:
        assert not opens(master, entry)


def test_a_wrong_master_key_is_named_for_both_formats(old_file) -> None:
    with pytest.raises(KeyStoreError, match="master key does not match"):
        KeyStore.load(old_file, secrets.token_bytes(32))
    KeyStore.load(old_file, MASTER).upgrade()
    with pytest.raises(KeyStoreError, match="master key does not match"):
        KeyStore.load(old_file, secrets.token_bytes(32))
    with pytest.raises(KeyStoreError, match="master key does not match"):
        KeyStore.load(old_file, MASTER[:16])  # a 16-byte master key derives keys too
    assert KeyStore.load(old_file, MASTER).file_format == 2


def test_a_file_of_a_newer_format_is_refused_and_left_alone(tmp_path, old_file) -> None:
    data = json.loads(old_file.read_text())
    data["format"] = "authhost-keystore/3"
    old_file.write_text(json.dumps(data))
    before = old_file.read_bytes()
    with pytest.raises(KeyStoreError, match=r"format 3 .* newer than this version"):
        KeyStore.load(old_file, MASTER)
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": MASTER.hex()})
    for command in (["list"], ["upgrade"], ["generate", "k", "--type", "kek"]):
        result = runner.invoke(app, ["keys", *command, "--key-store", str(old_file)])
        assert result.exit_code == 1 and "format 3" in result.output, command
    assert old_file.read_bytes() == before
    garbled = ("authhost-keystore/\u0662", "authhost-keystore/" + "9" * 5000)  # int() reads both
    for other in ("authhost-keystore/x", "authhost-keystore/0", "some-keystore/2", *garbled):
        old_file.write_text(json.dumps({**data, "format": other}))
        with pytest.raises(KeyStoreError, match="not an authhost key store|unknown key store"):
            KeyStore.load(old_file, MASTER)


def test_a_format_1_entry_that_does_not_decrypt_is_refused_when_read(old_file) -> None:
    """Not carried, unreadable, into the upgraded file (the format-1 code loaded it and failed
    only at the key's first use)."""
    data = json.loads(old_file.read_text())
    entry = next(e for e in data["keys"] if e["name"] == "zpk")
    entry["wrapped"] = entry["wrapped"][:-2] + ("00" if entry["wrapped"][-2:] != "00" else "01")
    old_file.write_text(json.dumps(data))
    with pytest.raises(KeyStoreError, match="'zpk' version 1 does not decrypt"):
        KeyStore.load(old_file, MASTER)


def test_create_add_rotate_retire_round_trip_in_format_2(tmp_path) -> None:
    path, master = tmp_path / "keys.json", secrets.token_bytes(32)
    store = KeyStore.create(path, master)
    first = store.add_version("pan-data", KeyType.PAN_DATA, KeyAlgorithm.AES, os.urandom(32))
    second = store.add_version("pan-data", KeyType.PAN_DATA, KeyAlgorithm.AES, os.urandom(32))
    zpk = store.add_version("zpk", KeyType.ZPK, KeyAlgorithm.AES, os.urandom(16))
    store.retire("pan-data", first.version)
    data = json.loads(path.read_text())
    assert data["format"] == "authhost-keystore/2"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for entry in data["keys"]:
        if entry["wrapped"]:
            assert not opens(master, entry) and opens(derived(master, "entry encryption"), entry)
    again = KeyStore.load(path, master)
    assert again.versions("pan-data") == [2]
    assert again.get("pan-data").material == second.material
    assert again.get("zpk").material == zpk.material


def test_a_process_holding_the_old_file_loses_nothing_across_the_upgrade(old_file) -> None:
    """A server that read the format-1 file saves a key after an operator upgraded it: both
    the upgrade and the new key are kept, every key under the derived entry key."""
    server = KeyStore.load(old_file, MASTER)
    operator = KeyStore.load(old_file, MASTER)
    assert operator.upgrade() == 1
    added = server.add_version("zpk", KeyType.ZPK, KeyAlgorithm.TDES, KEYS[("kek", 1)][:16])
    assert server.file_format == 2
    again = KeyStore.load(old_file, MASTER)
    assert again.get("zpk").version == added.version == 2
    for (name, version), material in KEYS.items():
        assert again.get(name, version).material == material
    for entry in json.loads(old_file.read_text())["keys"]:
        assert not entry["wrapped"] or not opens(MASTER, entry)


def test_reload_of_a_running_module_reads_the_upgraded_file(old_file) -> None:
    """SIGHUP and the key store watcher call SecurityModule.reload."""
    config = SecurityConfig(key_store=str(old_file))
    hsm = SecurityModule.open(config, env={"AUTHHOST_MASTER_KEY": MASTER.hex()})
    assert hsm.key_store.file_format == 1
    KeyStore.load(old_file, MASTER).upgrade()
    hsm.reload()
    assert hsm.key_store.file_format == 2
    assert hsm.key_store.get("kek").material == KEYS[("kek", 1)]


def test_the_cli_reports_the_format_and_upgrades_on_command(old_file) -> None:
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": MASTER.hex()})

    def keys(*args: str):
        return runner.invoke(app, ["keys", *args, "--key-store", str(old_file)])

    listed = keys("list")
    assert listed.exit_code == 0 and "key store format 1" in listed.output
    assert "authhost keys upgrade" in listed.output
    upgraded = keys("upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "from format 1 to format 2" in upgraded.output and "4 key version(s)" in upgraded.output
    assert "key store format 2" in keys("list").output
    again = keys("upgrade")
    assert again.exit_code == 0 and "already format 2" in again.output
    for material in KEYS.values():  # no clear key in anything the commands printed
        for output in (listed.output, upgraded.output, again.output):
            assert material.hex().upper() not in output.upper()
    assert MASTER.hex().upper() not in (listed.output + upgraded.output).upper()


def test_a_key_command_on_a_format_1_file_says_it_upgraded_it(tmp_path) -> None:
    path, master = tmp_path / "keys.json", secrets.token_bytes(32)
    write_format1(path, master, [])
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": master.hex()})
    result = runner.invoke(app, ["keys", "generate", "kek", "--type", "kek", "--key-store",
                                 str(path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "is now format 2 (was 1)" in result.output
    assert KeyStore.load(path, master).file_format == 2
