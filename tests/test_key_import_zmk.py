"""`authhost keys import --type` takes a key in the legacy form: a double- or triple-length TDES
key encrypted in ECB under the zone master key (ZMK) both sides hold, with its KCV. A go-live
walk found `keys import` took TR-31 blocks only, so a switch's zone PIN key, MAC key or BDK sent
the way most switches still send it could only arrive by an 0800 key change. The encrypted keys
and KCVs are computed here with `cryptography` from fixed clear keys (never printed); the key is
checked (KCV, parity, length, strength), stored like a TR-31 import, audited, and then reads
PIN blocks through a real server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from iso_client import Switch
from test_e2e_auth import (  # noqa: F401 - fixture
    purchase,
    start_host,
    store_url,
    with_pin,
    wrong_pins,
)
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.security.keystore import KeyStore
from authhost.store import open_store, opened_store

# the classic double-length test key (odd parity) and a third part for a triple-length one
CLEAR_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
THIRD_PART = bytes.fromhex("89ABCDEF01234567")


def _ecb(key: bytes, data: bytes) -> bytes:
    """TDES ECB with ``cryptography`` itself (not the code under test)."""
    full = {8: key * 3, 16: key + key[:8]}.get(len(key), key)
    encryptor = Cipher(TripleDES(full), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def under_zmk(zmk: bytes, key: bytes) -> str:
    """The legacy form: each 8-byte part of the key encrypted under the ZMK on its own."""
    return _ecb(zmk, key).hex().upper()


def kcv_of(key: bytes) -> str:
    return _ecb(key, bytes(8))[:3].hex().upper()


class Ceremony:
    """A key store file with a TDES ZMK, a SQLite store for the audit log, and the CLI."""

    def __init__(self, tmp_path: Path) -> None:
        self.key_store = tmp_path / "keys.json"
        self.url = f"sqlite:///{tmp_path / 'authhost.db'}"
        config = tmp_path / "authhost.toml"
        config.write_text(
            f'[security]\nkey_store = "{self.key_store}"\n[store]\nurl = "{self.url}"\n'
        )
        self.master = secrets.token_hex(32)
        self.runner = CliRunner(env={"AUTHHOST_MASTER_KEY": self.master})
        self.cfg = ["--config", str(config)]

        async def create() -> None:
            await (await open_store(self.url)).close()

        trio.run(create)
        made = self.keys(
            "generate", "zmk", "--type", "kek", "--algorithm", "tdes", "--length", "16"
        )
        assert made.exit_code == 0, made.output
        self.zmk = self.store().get("zmk").material

    def keys(self, *args: str):
        return self.runner.invoke(app, ["keys", *args, *self.cfg], catch_exceptions=False)

    def store(self) -> KeyStore:
        return KeyStore.load(self.key_store, bytes.fromhex(self.master))

    def imports(self) -> list:
        async def read() -> list:
            async with opened_store(self.url) as store:
                return [e for e in await store.audit(limit=100) if e.action == "key.import"]

        return trio.run(read)


@pytest.fixture
def ceremony(tmp_path: Path) -> Ceremony:
    return Ceremony(tmp_path)


def _no_key_in(text: str, *keys: bytes) -> None:
    for key in keys:
        assert key.hex().upper() not in text.upper()


@pytest.mark.parametrize("key_type", ["zpk", "mak", "bdk"])  # ids name no key
def test_a_key_under_the_zmk_is_checked_stored_and_audited(
    ceremony: Ceremony, key_type: str
) -> None:
    clear = CLEAR_KEY
    assert kcv_of(CLEAR_KEY) == "08D7B4"  # the published check value of the test key
    name = f"{key_type}-acq2"
    done = ceremony.keys(
        "import", name, under_zmk(ceremony.zmk, clear), "--kek", "zmk", "--type", key_type,
        "--kcv", kcv_of(clear).lower(),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"imported {name} v1 ({key_type}) KCV {kcv_of(clear)}" in done.output
    _no_key_in(done.output, clear, ceremony.zmk)
    stored = ceremony.store().get(name)
    assert (stored.key_type, stored.algorithm, stored.material) == (key_type, "tdes", clear)
    assert ceremony.store().exportable(name)  # as a TR-31 block marked E: it may leave again
    (entry,) = ceremony.imports()
    assert entry.subject == name
    assert '"form": "legacy-ecb"' in entry.after and '"kek": "zmk"' in entry.after
    assert f'"kcv": "{kcv_of(clear)}"' in entry.after
    _no_key_in(entry.after, clear, ceremony.zmk)


def test_payshields_x9_17_scheme_tag_is_read(ceremony: Ceremony) -> None:
    """payShield shows a key under a ZMK with its key scheme: X (X9.17, double length)."""
    encrypted = "X" + under_zmk(ceremony.zmk, CLEAR_KEY)
    args = ("--kek", "zmk", "--type", "zpk", "--kcv", kcv_of(CLEAR_KEY))
    done = ceremony.keys("import", "zpk-x", encrypted, *args)
    assert done.exit_code == 0, done.output
    assert ceremony.store().get("zpk-x").material == CLEAR_KEY


def test_a_triple_length_key_needs_a_triple_length_zmk(ceremony: Ceremony) -> None:
    clear = CLEAR_KEY + THIRD_PART
    args = ("--type", "zpk", "--kcv", kcv_of(clear))
    weak = ceremony.keys("import", "zpk3", under_zmk(ceremony.zmk, clear), "--kek", "zmk", *args)
    assert weak.exit_code == 1 and "cannot be carried under 'zmk'" in weak.output
    made = ceremony.keys(
        "generate", "zmk3", "--type", "kek", "--algorithm", "tdes", "--length", "24"
    )
    assert made.exit_code == 0
    zmk3 = ceremony.store().get("zmk3").material
    done = ceremony.keys("import", "zpk3", "Y" + under_zmk(zmk3, clear), "--kek", "zmk3", *args)
    assert done.exit_code == 0, done.output
    assert ceremony.store().get("zpk3").material == clear
    _no_key_in(weak.output + done.output, clear, ceremony.zmk, zmk3)


def test_a_wrong_kcv_is_refused_with_both_kcvs_and_nothing_stored(ceremony: Ceremony) -> None:
    done = ceremony.keys(
        "import", "zpk-acq2", under_zmk(ceremony.zmk, CLEAR_KEY), "--kek", "zmk", "--type",
        "zpk", "--kcv", "123456",
    )  # fmt: skip
    assert done.exit_code == 1
    assert f"its KCV is {kcv_of(CLEAR_KEY)}, not the 123456 expected (--kcv)" in done.output
    _no_key_in(done.output, CLEAR_KEY, ceremony.zmk)
    assert ceremony.store().versions("zpk-acq2") == [] and ceremony.imports() == []


def test_a_key_under_another_zmk_is_refused(ceremony: Ceremony) -> None:
    other = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")  # not the store's ZMK
    done = ceremony.keys(
        "import", "zpk-acq2", under_zmk(other, CLEAR_KEY), "--kek", "zmk", "--type", "zpk",
        "--kcv", kcv_of(CLEAR_KEY),
    )  # fmt: skip
    assert done.exit_code == 1
    assert f"not the {kcv_of(CLEAR_KEY)} expected (--kcv): a key encrypted under another ZMK" in (
        done.output
    )
    _no_key_in(done.output, CLEAR_KEY, ceremony.zmk, other)
    assert ceremony.store().versions("zpk-acq2") == [] and ceremony.imports() == []


def test_keys_the_policy_refuses_are_refused(ceremony: Ceremony) -> None:
    zmk = ceremony.zmk
    no_parity = bytes([CLEAR_KEY[0] ^ 1]) + CLEAR_KEY[1:]  # 00: even parity
    single = CLEAR_KEY[:8]
    repeated = CLEAR_KEY[:8] * 2  # K1 = K2: single DES strength
    cases = [
        ([under_zmk(zmk, no_parity), "--type", "zpk", "--kcv", kcv_of(no_parity)],
         "does not have odd DES parity"),
        ([under_zmk(zmk, single), "--type", "zpk", "--kcv", kcv_of(single)],
         "a single-length DES key (16 hex digits) is refused"),
        ([under_zmk(zmk, repeated), "--type", "zpk", "--kcv", kcv_of(repeated)],
         "its TDES parts repeat"),
        ([under_zmk(zmk, CLEAR_KEY), "--type", "pan-data", "--kcv", kcv_of(CLEAR_KEY)],
         "a pan-data key is aes, not tdes"),
        ([under_zmk(zmk, CLEAR_KEY), "--type", "zpk"], "give the KCV the sender told you"),
        ([under_zmk(zmk, CLEAR_KEY), "--kcv", kcv_of(CLEAR_KEY)],
         "give its type with --type"),
        ([under_zmk(zmk, CLEAR_KEY), "--type", "zpk", "--kcv", "08D7"], "6 to 16 hex digits"),
        (["U" + under_zmk(zmk, CLEAR_KEY), "--type", "zpk", "--kcv", kcv_of(CLEAR_KEY)],
         "key scheme U is Thales' variant encryption"),
        (["X" + under_zmk(zmk, CLEAR_KEY), "--kcv", kcv_of(CLEAR_KEY)],
         "give its type with --type"),
        (["y" + under_zmk(zmk, CLEAR_KEY), "--type", "zpk", "--kcv", kcv_of(CLEAR_KEY)],
         "key scheme Y is followed by 48 hex digits, not 32"),
    ]  # fmt: skip
    asked_wrongly = ("give the KCV the sender told you", "give its type with --type")
    for args, said in cases:
        done = ceremony.keys("import", "zpk-x", *args, "--kek", "zmk")
        code = 2 if said in asked_wrongly else 1  # a usage error 2, a key refused 1
        assert (done.exit_code, said in done.output) == (code, True), (said, done.output)
        _no_key_in(done.output, CLEAR_KEY, no_parity, single, zmk)
    assert ceremony.keys("generate", "kek-aes", "--type", "kek").exit_code == 0
    aes = ceremony.keys(
        "import", "zpk-x", under_zmk(zmk, CLEAR_KEY), "--kek", "kek-aes", "--type", "zpk",
        "--kcv", kcv_of(CLEAR_KEY),
    )  # fmt: skip
    assert aes.exit_code == 1 and "'kek-aes' is an aes key" in aes.output
    assert ceremony.store().versions("zpk-x") == [] and ceremony.imports() == []


async def test_an_imported_zpk_reads_pin_blocks_through_a_real_server(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
) -> None:
    """The demo host's zone PIN key replaced by one under its ZMK, imported by the CLI in
    another process: the running server reads PIN blocks under it (an 0200 approved with the
    card's PIN, 55 with a wrong one), and the import is in the store's audit log."""
    host = await start_host(nursery, tmp_path, store_url)
    card = host.cards["active-visa"]
    zmk = bytes.fromhex(host.keys["zmk"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOST_")}
    env |= {
        "AUTHHOST_SECURITY_KEY_STORE": str(tmp_path / "keys.json"),
        "AUTHHOST_STORE_URL": store_url,
    }
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [
                sys.executable,
                "-m",
                "authhost",
                "keys",
                "import",
                "zpk",
                under_zmk(zmk, CLEAR_KEY),
                "--kek",
                "zmk",
                "--type",
                "zpk",
                "--kcv",
                kcv_of(CLEAR_KEY),
                "--new-version",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )  # fmt: skip
    )
    assert done.returncode == 0, done.stderr
    assert f"imported zpk v2 (zpk) KCV {kcv_of(CLEAR_KEY)}" in done.stdout
    _no_key_in(done.stdout + done.stderr, CLEAR_KEY, zmk)
    security = host.runtime.security
    with trio.fail_after(10):  # the server re-reads the key store when its file changes
        while security.key_store.versions("zpk") != [1, 2]:
            await trio.sleep(0.05)

    host.keys["zpk"] = CLEAR_KEY.hex()  # the switch's PIN blocks are under the imported key
    [wrong] = wrong_pins(host, card)
    switch = await Switch.connect(host.port)
    right = await switch.send(with_pin(purchase(card, t="0200"), host, card, card["pin"]))
    assert (right["t"], right["39"]) == ("0210", "00")
    refused = await switch.send(with_pin(purchase(card, t="0200"), host, card, wrong))
    assert (refused["t"], refused["39"]) == ("0210", "55")
    await switch.aclose()

    async with opened_store(store_url) as store:
        (entry,) = [e for e in await store.audit(subject="zpk") if e.action == "key.import"]
    assert '"version": 2' in entry.after and '"form": "legacy-ecb"' in entry.after
    _no_key_in(entry.after, CLEAR_KEY, zmk)


def test_a_key_is_not_imported_as_a_kek_in_the_legacy_form(ceremony: Ceremony) -> None:
    """The legacy form carries no key usage: a zone PIN key a switch sent under the ZMK (an 0800
    key change's, say) entered as a KEK would become a key that unwraps others (and exports
    every key under a key the switch's side knows). A KEK enters as components or TR-31."""
    zpk_under_zmk = under_zmk(ceremony.zmk, CLEAR_KEY)
    done = ceremony.keys(
        "import", "kek-acq2", zpk_under_zmk, "--kek", "zmk", "--type", "kek",
        "--kcv", kcv_of(CLEAR_KEY),
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "a KEK does not enter in the legacy form" in done.output
    _no_key_in(done.output, CLEAR_KEY, ceremony.zmk)
    assert ceremony.store().versions("kek-acq2") == [] and ceremony.imports() == []


def test_an_old_key_sent_again_is_refused(ceremony: Ceremony) -> None:
    """A key change refuses a key a version of its name had; the import took one: an old zone
    PIN key's cryptogram (kept from a past ceremony, or captured) rolled the zone back."""
    second = bytes.fromhex("89ABCDEF01234567FEDCBA9876543210")  # odd parity, not CLEAR_KEY
    zmk = ceremony.zmk

    def imported(key: bytes, *more: str):
        return ceremony.keys(
            "import", "zpk-acq2", under_zmk(zmk, key), "--kek", "zmk", "--type", "zpk",
            "--kcv", kcv_of(key), *more,
        )  # fmt: skip

    assert imported(CLEAR_KEY).exit_code == 0
    assert imported(second, "--new-version").exit_code == 0
    for key in (CLEAR_KEY, second):  # the old version, and the current one again
        done = imported(key, "--new-version")
        assert done.exit_code == 1, done.output
        assert f"a version of 'zpk-acq2' had this key before (KCV {kcv_of(key)})" in done.output
        _no_key_in(done.output, key, zmk)
    assert ceremony.store().versions("zpk-acq2") == [1, 2]
    assert len(ceremony.imports()) == 2


def test_a_16_digit_kcv_is_compared_whole_and_never_shown(ceremony: Ceremony) -> None:
    """Some HSMs print a TDES key's check value as the whole encrypted zero block (16 digits).
    A TR-31 import compared those 16 digits with the 6 `kcv` makes and refused the right key;
    the legacy import, refusing a key, printed all 16 digits of its block, where authhost
    never shows more than 6."""
    whole = _ecb(CLEAR_KEY, bytes(8)).hex()  # lower case, as typed
    legacy = ceremony.keys(
        "import", "zpk-acq2", under_zmk(ceremony.zmk, CLEAR_KEY), "--kek", "zmk", "--type",
        "zpk", "--kcv", whole[:6] + "0" * 10,
    )  # fmt: skip
    assert legacy.exit_code != 0  # which code: test_a_kcv_mismatch_exits_1_in_either_form
    assert f"its KCV is {kcv_of(CLEAR_KEY)}..., not the {whole[:6].upper()}0000000000" in (
        legacy.output
    )
    assert whole[6:].upper() not in legacy.output.upper()

    args = ("--type", "kek", "--algorithm", "tdes", "--length", "16")
    assert ceremony.keys("generate", "kek-partner", *args).exit_code == 0
    made = ceremony.keys("generate", "zpk-src", "--type", "zpk")
    block = ceremony.keys("export", "zpk-src", "--kek", "kek-partner")
    assert made.exit_code == 0 and block.exit_code == 0, block.output
    material = ceremony.store().get("zpk-src").material
    full = _ecb(material, bytes(8)).hex()
    tr31 = block.stdout.strip().splitlines()[0]
    done = ceremony.keys("import", "zpk-b", tr31, "--kek", "kek-partner", "--kcv", full)
    assert done.exit_code == 0, done.output
    assert ceremony.store().get("zpk-b").material == material
    wrong = ceremony.keys(
        "import", "zpk-c", tr31, "--kek", "kek-partner", "--kcv", full[:6] + "0" * 10
    )
    assert wrong.exit_code != 0 and "its KCV is" in wrong.output
    assert full[6:].upper() not in wrong.output.upper()


def test_a_kcv_mismatch_exits_1_in_either_form(ceremony: Ceremony) -> None:
    """A TR-31 block's KCV mismatch exited 1 and the legacy form's 2; the README says a
    refused command exits 1 (2: configuration or usage errors). Both now exit 1."""
    args = ("--type", "kek", "--algorithm", "tdes", "--length", "16")
    assert ceremony.keys("generate", "kek-partner", *args).exit_code == 0
    assert ceremony.keys("generate", "zpk-src", "--type", "zpk").exit_code == 0
    block = ceremony.keys("export", "zpk-src", "--kek", "kek-partner").stdout.strip()
    tr31 = ceremony.keys("import", "zpk-b", block, "--kek", "kek-partner", "--kcv", "123456")
    legacy = ceremony.keys(
        "import", "zpk-acq2", under_zmk(ceremony.zmk, CLEAR_KEY), "--kek", "zmk", "--type",
        "zpk", "--kcv", "123456",
    )  # fmt: skip
    assert (tr31.exit_code, legacy.exit_code) == (1, 1), (tr31.output, legacy.output)


def test_a_key_already_in_the_store_as_another_kind_is_refused(ceremony: Ceremony) -> None:
    """The form carries no type, so the custodian's --type was the only word: the ZMK itself
    (encrypted under itself) entered as a zone PIN key, or a zone PIN key entered again as a
    MAC key, gave one key two kinds (a MAC over chosen data is then an encryption under the
    zone PIN key). The same key under two names of one kind (two acquirers' zones) stays."""
    zmk = ceremony.zmk
    itself = ceremony.keys(
        "import", "zpk-self", under_zmk(zmk, zmk), "--kek", "zmk", "--type", "zpk",
        "--kcv", kcv_of(zmk),
    )  # fmt: skip
    assert itself.exit_code == 1, itself.output
    assert "the key store has this key" in itself.output and "as 'zmk', a kek key" in itself.output

    def imported(name: str, key_type: str):
        return ceremony.keys(
            "import", name, under_zmk(zmk, CLEAR_KEY), "--kek", "zmk", "--type", key_type,
            "--kcv", kcv_of(CLEAR_KEY),
        )  # fmt: skip

    assert imported("zpk-acq1", "zpk").exit_code == 0
    assert imported("zpk-acq2", "zpk").exit_code == 0  # one zone key for two acquirers
    mak = imported("mak-acq1", "mak")
    assert mak.exit_code == 1 and "as 'zpk-acq1', a zpk key" in mak.output
    _no_key_in(itself.output + mak.output, CLEAR_KEY, zmk)
    assert ceremony.store().versions("mak-acq1") == [] == ceremony.store().versions("zpk-self")


def test_an_old_tr31_block_sent_again_is_refused(ceremony: Ceremony) -> None:
    """The same for a TR-31 block: an old version's block kept from a past exchange was taken
    as the next version of the key."""
    args = ("--type", "kek", "--algorithm", "tdes", "--length", "16")
    assert ceremony.keys("generate", "kek-partner", *args).exit_code == 0
    blocks = []
    for new in ((), ("--new-version",)):
        assert ceremony.keys("generate", "zpk-src", "--type", "zpk", *new).exit_code == 0
        blocks.append(ceremony.keys("export", "zpk-src", "--kek", "kek-partner").stdout.strip())
    first, second = blocks
    assert ceremony.keys("import", "zpk-b", first, "--kek", "kek-partner").exit_code == 0
    nxt = ("--kek", "kek-partner", "--new-version")
    assert ceremony.keys("import", "zpk-b", second, *nxt).exit_code == 0
    old = ceremony.keys("import", "zpk-b", first, *nxt)
    assert old.exit_code == 1 and "a version of 'zpk-b' had this key before" in old.output
    assert ceremony.store().versions("zpk-b") == [1, 2]
