"""`authhost keys rotate-master-key`: the key store rewritten under a new master key with every
working key (and KCV) as it was, the audit chain verifying across rotations, refusals that
leave the file untouched, and a running server that keeps serving on the keys it has and
says to restart it with the new key."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
from test_security_cli import run
from test_security_keystore_format import write_format1
from typer.testing import CliRunner

from authhost.cards.model import PinMethod
from authhost.config import SecurityConfig
from authhost.security.errors import KeyStoreError, MasterKeyChanged
from authhost.security.keys import KeyAlgorithm, KeyType, WorkingKey, generate_material, kcv
from authhost.security.keystore import (
    AUDIT_KEY_INFO,
    DEMO_MARK,
    KeyStore,
    demo_master_path,
    derive_purpose_key,
)
from authhost.security.module import PinCheck, PinSource, PinSourceKind, SecurityModule
from authhost.security.pinblock import encrypt_pin_block

PAN = "4761739001010010"


class Installation:
    """A key store and configuration in ``tmp_path``, its master key in the environment (as
    AUTHHOST_MASTER_KEY), and new master keys made as an operator makes them."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.key_store = tmp_path / "keys.json"
        self.config = tmp_path / "authhost.toml"
        self.config.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "authhost.db"}"\n'
            f'[security]\nkey_store = "{self.key_store}"\n'
        )
        self.master = secrets.token_hex(32)
        self.masters = [self.master]

    @property
    def cli(self) -> CliRunner:
        return CliRunner(env={"AUTHHOST_MASTER_KEY": self.master})

    def keys(self, *args: str):
        return run(self.cli, "keys", *args, "--config", str(self.config))

    def new_key_file(self, text: str | None = None, mode: int = 0o600) -> Path:
        path = self.dir / f"master-{len(list(self.dir.glob('master-*')))}.key"
        path.write_text(text if text is not None else secrets.token_hex(32) + "\n")
        path.chmod(mode)
        return path

    def rotate(self) -> str:
        """Rotate to a new master key from a file; the output."""
        new = self.new_key_file()
        result = self.keys("rotate-master-key", "--new-master-key-file", str(new))
        assert result.exit_code == 0, result.output
        self.master = new.read_text().strip()
        self.masters.append(self.master)
        return result.output

    def module(self) -> SecurityModule:
        config = SecurityConfig(key_store=str(self.key_store))
        return SecurityModule.open(config, env={"AUTHHOST_MASTER_KEY": self.master})


@pytest.fixture
def site(tmp_path: Path) -> Installation:
    site = Installation(tmp_path)
    for name, key_type in (("zpk", "zpk"), ("pvk", "pvk"), ("kek", "kek"), ("pan-hash",
                           "pan-hash"), ("pan-data", "pan-data")):  # fmt: skip
        assert site.keys("generate", name, "--type", key_type).exit_code == 0
    assert site.keys("rotate-pan-key").exit_code == 0  # pan-data v2
    KeyStore.load(site.key_store, bytes.fromhex(site.master)).retire("pan-data", 1)
    return site


def kcvs(store: KeyStore) -> dict[tuple[str, int], str]:
    """Each live key version's KCV as its decrypted material gives it."""
    return {
        (e.name, e.version): store.get(e.name, e.version).kcv
        for e in store.entries()
        if not e.retired_at
    }


def test_rotation_keeps_every_key_and_only_the_new_master_key_opens_the_store(site) -> None:
    old = KeyStore.load(site.key_store, bytes.fromhex(site.master))
    before, clear = kcvs(old), {ident: old.get(*ident).material.hex() for ident in kcvs(old)}
    old_master = site.master
    output = site.rotate()

    with pytest.raises(KeyStoreError, match="does not match"):
        KeyStore.load(site.key_store, bytes.fromhex(old_master))
    new = KeyStore.load(site.key_store, bytes.fromhex(site.master))
    assert kcvs(new) == before and len(before) == 5
    assert [e.retired_at > 0 for e in new.entries()] == [e.retired_at > 0 for e in old.entries()]
    assert site.key_store.stat().st_mode & 0o777 == 0o600
    for (name, version), value in before.items():  # listed before and after, unchanged
        assert f"{name:<16} {version:>3}  {value:<10}  {value}\n" in output, output
    assert "pan-data           1  retired" in output and "restart every server" in output
    text = site.key_store.read_text()
    for secret in (old_master, site.master, *clear.values()):
        assert secret.lower() not in (output + text).lower()
    assert list(site.dir.glob("*.tmp")) == []

    listing = run(CliRunner(env={"AUTHHOST_MASTER_KEY": old_master}), "keys", "list",
                  "--config", str(site.config))  # fmt: skip
    assert listing.exit_code == 1 and "does not match" in listing.output
    assert site.keys("list").exit_code == 0


def test_the_new_master_key_may_come_from_an_environment_variable(site) -> None:
    new = secrets.token_hex(32)
    runner = CliRunner(env={"AUTHHOST_MASTER_KEY": site.master, "AUTHHOST_NEW_MASTER_KEY": new})
    result = run(runner, "keys", "rotate-master-key", "--new-master-key-env",
                 "AUTHHOST_NEW_MASTER_KEY", "--config", str(site.config))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(kcvs(KeyStore.load(site.key_store, bytes.fromhex(new)))) == 5


@pytest.mark.parametrize(
    "case",
    ["same", "short", "not-hex", "world-readable", "group-readable", "wrong-current", "none",
     "both", "missing-file"],
)  # fmt: skip
def test_a_refused_rotation_leaves_the_file_byte_identical(site, case: str) -> None:
    saved = site.key_store.read_bytes()
    runner, args = site.cli, ["--new-master-key-file", str(site.new_key_file())]
    if case == "same":
        args = ["--new-master-key-file", str(site.new_key_file(site.master + "\n"))]
    elif case == "short":
        args = ["--new-master-key-file", str(site.new_key_file(secrets.token_hex(20)))]
    elif case == "not-hex":
        args = ["--new-master-key-file", str(site.new_key_file("zz" * 32))]
    elif case == "world-readable":
        args = ["--new-master-key-file", str(site.new_key_file(mode=0o644))]
    elif case == "group-readable":
        args = ["--new-master-key-file", str(site.new_key_file(mode=0o640))]
    elif case == "wrong-current":
        runner = CliRunner(env={"AUTHHOST_MASTER_KEY": secrets.token_hex(32)})
    elif case == "none":
        args = []
    elif case == "both":
        args += ["--new-master-key-env", "AUTHHOST_MASTER_KEY"]
    elif case == "missing-file":
        args = ["--new-master-key-file", str(site.dir / "nowhere.key")]
    result = run(runner, "keys", "rotate-master-key", *args, "--config", str(site.config))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("authhost keys: "), result.output
    assert "Traceback" not in result.output and site.master not in result.output
    assert site.key_store.read_bytes() == saved
    assert list(site.dir.glob("*.tmp")) == []


def _lists_put(site: Installation, name: str) -> None:
    values = site.dir / "values.txt"
    values.write_text(f"M-{name}\n")
    result = run(site.cli, "lists", "put", name, str(values), "--config", str(site.config))
    assert result.exit_code == 0, result.output


def _verify(site: Installation) -> dict:
    result = run(site.cli, "audit", "verify", "--config", str(site.config))
    view = json.loads(result.stdout)
    assert result.exit_code == 0 and view["ok"], result.output
    return view


def test_the_audit_chain_verifies_across_one_and_two_rotations(site) -> None:
    """Entries sealed under the first master key's audit key, then after each rotation: one
    chain, which verifies under each new master key in turn."""
    _lists_put(site, "before")
    _lists_put(site, "before-2")
    first = _verify(site)
    site.rotate()
    _lists_put(site, "after-one")
    once = _verify(site)
    # each rotation is an entry of its own (key.rotate_master_key), then the list's
    assert once["verified"] == once["chained"] == once["entries"] == first["entries"] + 2
    site.rotate()
    _lists_put(site, "after-two")
    twice = _verify(site)
    assert twice["verified"] == twice["chained"] == twice["entries"] == first["entries"] + 4
    assert twice["breaks"] == [] and not twice["key_mismatch"]
    assert json.loads(site.key_store.read_text())["audit_key"]["kcv"]


def test_a_pin_and_a_pan_after_a_restart_on_the_new_master_key(site) -> None:
    """A module opened on the new master key (a restarted server) verifies a PIN against the
    PVV made before the rotation and decrypts a PAN sealed before it."""
    hsm = site.module()
    zpk = KeyStore.load(site.key_store, bytes.fromhex(site.master)).get("zpk").material
    source = PinSource(PinSourceKind.ZPK, "zpk")
    pvv = hsm.pin_reference(_block(zpk, "1234"), PAN, source, PinMethod.VISA_PVV, "pvk", "1")
    sealed, index = hsm.encrypt_pan(PAN, "card-1"), hsm.pan_index(PAN)
    site.rotate()
    restarted = site.module()
    assert restarted.decrypt_pan(sealed, "card-1") == PAN
    assert restarted.pan_index(PAN) == index
    for pin, check in (("1234", PinCheck.OK), ("4321", PinCheck.WRONG)):
        block = _block(zpk, pin)
        found = restarted.verify_pin(block, PAN, source, PinMethod.VISA_PVV, "pvk", "1", pvv)
        assert found is check


def _block(zpk: bytes, pin: str) -> bytes:
    return encrypt_pin_block(zpk, pin, PAN)


def test_a_running_module_keeps_its_keys_and_says_to_restart_once(site, caplog) -> None:
    hsm = site.module()
    sealed = hsm.encrypt_pan(PAN, "card-1")
    site.rotate()
    with caplog.at_level(logging.ERROR, logger="authhost.security"):
        assert hsm.key_store_changed()
        with pytest.raises(MasterKeyChanged, match="restart it with the new master key"):
            hsm.reload()
        assert not hsm.key_store_changed()  # the watch does not try again
        assert hsm.decrypt_pan(hsm.encrypt_pan(PAN, "card-2"), "card-2") == PAN
        assert hsm.decrypt_pan(sealed, "card-1") == PAN
        with pytest.raises(MasterKeyChanged):
            hsm.reload()  # SIGHUP: refused again, not logged again
    said = [r.getMessage() for r in caplog.records if "another master key" in r.getMessage()]
    assert len(said) == 1 and "rotate-master-key" in said[0], caplog.text
    for master in site.masters:
        assert master not in caplog.text
    # a key change in this process now refuses rather than writing under the old master key
    saved = site.key_store.read_bytes()
    with pytest.raises(MasterKeyChanged):
        hsm.rotate_pan_key()
    assert site.key_store.read_bytes() == saved


def test_a_demo_store_gets_its_demo_master_key_file_rewritten(tmp_path) -> None:
    key_store = tmp_path / "authhost-keys.json"
    master = secrets.token_bytes(32)
    store = KeyStore.create(key_store, master, demo=True)
    store.add_version("zpk", *_tdes_zpk())
    demo_file = demo_master_path(key_store)
    demo_file.write_text(f"{DEMO_MARK}\n{master.hex().upper()}\n")
    demo_file.chmod(0o600)
    new = tmp_path / "new.key"
    new.write_text(secrets.token_hex(32))
    new.chmod(0o600)
    config = tmp_path / "authhost.toml"
    config.write_text(f'[security]\nkey_store = "{key_store}"\n')
    result = run(CliRunner(env={"AUTHHOST_MASTER_KEY": ""}), "keys", "rotate-master-key",
                 "--new-master-key-file", str(new), "--config", str(config))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert demo_file.read_text().splitlines() == [DEMO_MARK, new.read_text().upper()]
    assert demo_file.stat().st_mode & 0o777 == 0o600
    listing = run(CliRunner(env={"AUTHHOST_MASTER_KEY": ""}), "keys", "list",
                  "--config", str(config))  # fmt: skip
    assert listing.exit_code == 0 and "zpk" in listing.output, listing.output


def _tdes_zpk() -> tuple[KeyType, KeyAlgorithm, bytes]:
    return KeyType.ZPK, KeyAlgorithm.TDES, generate_material(KeyAlgorithm.TDES, 16)


def test_a_store_saved_before_derives_its_audit_key_and_a_rotation_keeps_that_one(site) -> None:
    """A file without ``audit_key`` (saved by an authhost before it kept one) loads as it is,
    unchanged, with the key derived from its master key; a rotation writes that key into it."""
    master = bytes.fromhex(site.master)
    data = json.loads(site.key_store.read_text())
    del data["audit_key"]
    site.key_store.write_text(json.dumps(data, indent=2) + "\n")
    saved = site.key_store.read_bytes()
    derived = kcv(derive_purpose_key(master, AUDIT_KEY_INFO), KeyAlgorithm.HMAC)
    assert KeyStore.load(site.key_store, master).audit_kcv() == derived
    assert site.key_store.read_bytes() == saved  # loading never writes
    site.rotate()
    assert json.loads(site.key_store.read_text())["audit_key"]["kcv"] == derived
    assert KeyStore.load(site.key_store, bytes.fromhex(site.master)).audit_kcv() == derived


def test_a_format1_store_is_rotated_into_format_2(tmp_path) -> None:
    master = secrets.token_bytes(32)
    key_store = tmp_path / "keys.json"
    zpk = WorkingKey("zpk", *_tdes_zpk())
    write_format1(key_store, master, [zpk])
    config = tmp_path / "authhost.toml"
    config.write_text(f'[security]\nkey_store = "{key_store}"\n')
    new = tmp_path / "new.key"
    new.write_text(secrets.token_hex(32))
    new.chmod(0o600)
    result = run(CliRunner(env={"AUTHHOST_MASTER_KEY": master.hex()}), "keys",
                 "rotate-master-key", "--new-master-key-file", str(new),
                 "--config", str(config))  # fmt: skip
    assert result.exit_code == 0, result.output
    store = KeyStore.load(key_store, bytes.fromhex(new.read_text()))
    assert store.file_format == 2 and store.get("zpk").kcv == zpk.kcv
    derived = kcv(derive_purpose_key(master, AUDIT_KEY_INFO), KeyAlgorithm.HMAC)
    assert store.audit_kcv() == derived  # the chain the format-1 store sealed goes on


def test_a_damaged_audit_key_in_the_file_is_refused(site) -> None:
    data = json.loads(site.key_store.read_text())
    wrapped = data["audit_key"]["wrapped"]  # its last byte changed (it may be 00 already)
    data["audit_key"]["wrapped"] = wrapped[:-2] + ("11" if wrapped.endswith("00") else "00")
    site.key_store.write_text(json.dumps(data))
    with pytest.raises(KeyStoreError, match="audit chain key"):
        KeyStore.load(site.key_store, bytes.fromhex(site.master))


def test_a_key_saved_by_another_process_while_rotating_is_rotated_and_not_called_a_failure(
    site, monkeypatch
) -> None:
    """A key a server (or another operator) saves between the rotation's reading of the store
    and its taking the file's lock is merged in under the lock and rotated with the others:
    the rotation succeeded, and says so. It used to compare the store read back with the check
    values taken before the lock, and so said "reads back different KCVs" (exit 1) about a
    file it had already rewritten under the new master key, whose key the operator would then
    take for unused."""
    rekey = KeyStore.rekey

    def racing_rekey(self: KeyStore, new_master: bytes) -> KeyStore:
        other = KeyStore.load(site.key_store, bytes.fromhex(site.master))  # another process
        other.add_version("zpk", *_tdes_zpk(), new_version=True)  # a zone key change, say
        return rekey(self, new_master)

    monkeypatch.setattr(KeyStore, "rekey", racing_rekey)
    new = site.new_key_file()
    result = site.keys("rotate-master-key", "--new-master-key-file", str(new))
    assert result.exit_code == 0, result.output
    rotated = KeyStore.load(site.key_store, bytes.fromhex(new.read_text().strip()))
    assert rotated.versions("zpk") == [1, 2]
    zpk2 = rotated.get("zpk", 2).kcv
    assert f"{'zpk':<16} {2:>3}  {zpk2:<10}  {zpk2}\n" in result.output, result.output
