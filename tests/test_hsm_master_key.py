"""The master key in a PKCS#11 token ([security] master_key_pkcs11_*), on a real SoftHSM2
token each test makes in its own directory: the key store opens under the token's key (a
random store key wrapped by it), the token is asked at the start and not while serving, a
wrong PIN, label or key is one line naming the token key and never the PIN, and a store moves
from a file key to a token key, to another token key and back with every KCV kept and the
audit chain verifying."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pkcs11
import pytest
from conftest import free_port
from test_e2e_crash import wait_for_port
from test_e2e_key_changes import Terminal
from test_master_key_rotation import PAN, Installation, _block, _lists_put, _verify, kcvs
from test_security_cli import run
from typer.testing import CliRunner

from authhost.cards.model import PinMethod
from authhost.config import ConfigError, SecurityConfig, load_config
from authhost.security.errors import (
    MasterKeyChanged,
    MasterKindMismatch,
    TokenError,
    TokenKeyMismatch,
)
from authhost.security.hsm_master import TokenKey
from authhost.security.keystore import KeyStore, demo_master_path
from authhost.security.module import PinCheck, PinSource, PinSourceKind, SecurityModule

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
pytestmark = pytest.mark.skipif(
    not SOFTHSM.exists(),
    reason=f"SoftHSM2 is not installed ({SOFTHSM} is missing: apt-get install softhsm2, as "
    ".ci/run does)",
)
TOKEN = "authhost-test"
KEYS = (("zpk", "zpk"), ("pvk", "pvk"), ("pan-hash", "pan-hash"), ("pan-data", "pan-data"))


class Token:
    """A SoftHSM2 token of this test's own (SOFTHSM2_CONF names a token directory in
    tmp_path), with a random user PIN, and AES keys made in it as an operator makes a master
    key: sensitive, never extractable."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        tokens = directory / "tokens"
        tokens.mkdir(parents=True)
        conf = directory / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
        monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
        self.tokens = tokens
        self.pin = "pin-" + secrets.token_hex(6)
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", self.pin,
             "--so-pin", "so-" + secrets.token_hex(6)],
            check=True, capture_output=True,
        )  # fmt: skip

    def make_key(self, label: str, *, replace: bool = False, decrypt: bool = True) -> None:
        """``decrypt`` False: a key the token encrypts with and never decrypts with (an
        operator's template mistake, or a policy that set CKA_DECRYPT false)."""
        lib = pkcs11.lib(str(SOFTHSM))
        try:
            token = lib.get_token(token_label=TOKEN)
            with token.open(user_pin=self.pin, rw=True) as session:
                if replace:  # the label kept, the key another: not the one that wrapped
                    session.get_key(label=label).destroy()
                session.generate_key(
                    pkcs11.KeyType.AES, 256, label=label, store=True,
                    template={pkcs11.Attribute.EXTRACTABLE: False,
                              pkcs11.Attribute.SENSITIVE: True,
                              pkcs11.Attribute.DECRYPT: decrypt},
                )  # fmt: skip
        finally:
            lib.finalize()  # the code under test initialises the library afresh

    def key(self, label: str, env: Mapping[str, str] | None = None) -> TokenKey:
        return TokenKey(str(SOFTHSM), TOKEN, label, env=env or {"AUTHHOST_HSM_PIN": self.pin})

    def ref(self, label: str) -> str:
        return f"pkcs11:{TOKEN}/{label}"


class HsmSite(Installation):
    """An Installation whose master key is a token key once ``configure`` names its label
    (the PIN in AUTHHOST_HSM_PIN, no AUTHHOST_MASTER_KEY), or the file-key installation it
    was (``configure(None)``: AUTHHOST_MASTER_KEY)."""

    token: Token
    label: str | None
    plain: str  # the configuration file without the token's settings

    @classmethod
    def of(cls, site: Installation, token: Token) -> HsmSite:
        hsm = cls.__new__(cls)
        hsm.__dict__.update(vars(site))
        hsm.token, hsm.label, hsm.plain = token, None, site.config.read_text()
        return hsm

    def configure(self, label: str | None) -> None:
        self.label = label
        text = self.plain
        if label is not None:
            text += (
                f'master_key_pkcs11_library = "{SOFTHSM}"\n'
                f'master_key_pkcs11_token = "{TOKEN}"\nmaster_key_pkcs11_label = "{label}"\n'
            )
        self.config.write_text(text)

    @property
    def env(self) -> dict[str, str | None]:
        master = self.master if self.label is None else None
        return {"AUTHHOST_MASTER_KEY": master, "AUTHHOST_HSM_PIN": self.token.pin}

    @property
    def cli(self) -> CliRunner:
        return CliRunner(env=self.env)

    def module(self, env: Mapping[str, str] | None = None) -> SecurityModule:
        config = load_config(self.config, env={}).security
        chosen = {k: v for k, v in self.env.items() if v is not None} if env is None else env
        return SecurityModule.open(config, env=chosen)

    def opener(self) -> bytes | TokenKey:
        return bytes.fromhex(self.master) if self.label is None else self.token.key(self.label)


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    return Token(tmp_path / "softhsm", monkeypatch)


@pytest.fixture
def hsm_site(tmp_path: Path, token: Token) -> HsmSite:
    """Keys generated through the CLI into a new key store under the token key master-1."""
    token.make_key("master-1")
    site = HsmSite.of(Installation(tmp_path), token)
    site.configure("master-1")
    for name, key_type in KEYS:
        result = site.keys("generate", name, "--type", key_type)
        assert result.exit_code == 0, result.output
    return site


@pytest.fixture
def file_site(tmp_path: Path, token: Token) -> HsmSite:
    """Keys under a master key from the environment, the token ready beside it."""
    site = HsmSite.of(Installation(tmp_path), token)
    site.configure(None)
    for name, key_type in KEYS:
        assert site.keys("generate", name, "--type", key_type).exit_code == 0
    assert site.keys("rotate-pan-key").exit_code == 0  # pan-data v2
    KeyStore.load(site.key_store, bytes.fromhex(site.master)).retire("pan-data", 1)
    return site


def store_key_of(site: HsmSite) -> str:
    """The clear store key of the file (asked of the token, as authhost does), hex."""
    data = json.loads(site.key_store.read_text())
    return site.token.key(str(site.label)).unwrap(data["store_key"]).hex()


def pin_and_pan(hsm: SecurityModule, zpk: bytes) -> tuple[str, bytes]:
    """A PVV made from a PIN block under ``zpk`` and a PAN sealed: what a card's issuance
    leaves in the store."""
    source = PinSource(PinSourceKind.ZPK, "zpk")
    pvv = hsm.pin_reference(_block(zpk, "1234"), PAN, source, PinMethod.VISA_PVV, "pvk", "1")
    return pvv, hsm.encrypt_pan(PAN, "card-1")


def pins_verify(hsm: SecurityModule, zpk: bytes, pvv: str) -> bool:
    source = PinSource(PinSourceKind.ZPK, "zpk")
    found = [
        hsm.verify_pin(_block(zpk, pin), PAN, source, PinMethod.VISA_PVV, "pvk", "1", pvv)
        for pin in ("1234", "4321")
    ]
    return found == [PinCheck.OK, PinCheck.WRONG]


def test_a_store_under_a_token_key_opens_and_serves_pins_pans_and_the_cli(hsm_site) -> None:
    site, token = hsm_site, hsm_site.token
    data = json.loads(site.key_store.read_text())
    assert data["master"] == token.ref("master-1") and data["format"] == "authhost-keystore/2"
    store = KeyStore.load(site.key_store, token.key("master-1"))
    assert store.master_ref == token.ref("master-1") and len(kcvs(store)) == 4

    hsm = site.module()
    zpk = store.get("zpk").material
    pvv, sealed = pin_and_pan(hsm, zpk)
    restarted = site.module()
    assert pins_verify(restarted, zpk, pvv)
    assert restarted.decrypt_pan(sealed, "card-1") == PAN

    listing = site.keys("list")
    assert listing.exit_code == 0, listing.output
    assert f"# master key: {token.ref('master-1')}" in listing.output
    assert "zpk" in listing.output and store.get("zpk").kcv in listing.output
    # no master key from the environment or a file opens it, and it says why
    with pytest.raises(MasterKindMismatch, match=f"under the token key {token.ref('master-1')}"):
        KeyStore.load(site.key_store, secrets.token_bytes(32))
    text = site.key_store.read_text()
    for secret in (token.pin, store_key_of(site), zpk.hex()):
        assert secret.lower() not in (text + listing.output).lower()


def test_the_token_is_asked_at_the_start_only(hsm_site) -> None:
    """Once open, the module verifies PINs, seals PANs and reads the key store again after
    another process saved a key with the token gone (its directory removed) and no PIN: the
    store key is in hand while the file's wrapped store key is the one it came from."""
    site = hsm_site
    env = {"AUTHHOST_HSM_PIN": site.token.pin}
    hsm = site.module(env)
    zpk = KeyStore.load(site.key_store, site.token.key("master-1")).get("zpk").material
    pvv, _ = pin_and_pan(hsm, zpk)
    assert site.keys("rotate-pan-key").exit_code == 0  # another process: pan-data v2
    del env["AUTHHOST_HSM_PIN"]
    shutil.rmtree(site.token.tokens)
    assert hsm.key_store_changed()
    hsm.reload()
    assert hsm.pan_key_version() == 2 and pins_verify(hsm, zpk, pvv)
    assert hsm.decrypt_pan(hsm.encrypt_pan(PAN, "card-2"), "card-2") == PAN


@pytest.mark.parametrize(
    "case", ["wrong-pin", "no-pin", "missing-label", "other-key", "other-label", "no-token",
             "file-key", "master-key-env-too"],
)  # fmt: skip
def test_a_token_that_cannot_open_the_store_is_one_line_naming_it(hsm_site, case) -> None:
    site, token = hsm_site, hsm_site.token
    env, named, said = dict(site.env), token.ref("master-1"), ""
    if case == "wrong-pin":
        env["AUTHHOST_HSM_PIN"], said = "pin-" + secrets.token_hex(6), "refused the user PIN"
    elif case == "no-pin":
        env["AUTHHOST_HSM_PIN"], said = None, "set the environment variable AUTHHOST_HSM_PIN"
    elif case == "missing-label":
        site.configure("master-9")
        data = json.loads(site.key_store.read_text())
        data["master"] = named = token.ref("master-9")  # the file agrees: the token is asked
        site.key_store.write_text(json.dumps(data))
        said = "no AES key labelled 'master-9'"
    elif case == "other-key":
        token.make_key("master-1", replace=True)
        said = "is not the token key the store was wrapped with"
    elif case == "other-label":
        token.make_key("master-2")
        site.configure("master-2")
        said = f"under the token key {named}, not {token.ref('master-2')}"
    elif case == "no-token":  # gone from the library's slots
        shutil.rmtree(token.tokens)
        token.tokens.mkdir()
        said = f"no token labelled {TOKEN!r}"
    elif case == "file-key":
        site.configure(None)
        env["AUTHHOST_MASTER_KEY"], said = site.master, f"under the token key {named}"
    elif case == "master-key-env-too":
        env["AUTHHOST_MASTER_KEY"], said = site.master, "AUTHHOST_MASTER_KEY holds one too"
    saved = site.key_store.read_bytes()
    result = run(CliRunner(env=env), "keys", "list", "--config", str(site.config))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("authhost keys: "), result.output
    assert named in lines[0] and said in lines[0], lines[0]
    assert token.pin not in result.output and "Traceback" not in result.output
    assert site.key_store.read_bytes() == saved


def test_a_store_moves_from_a_file_key_to_token_keys_and_back_keeping_keys_and_chain(
    file_site,
) -> None:
    site, token = file_site, file_site.token
    before = kcvs(KeyStore.load(site.key_store, site.opener()))
    running = site.module()  # a server on the file key
    _lists_put(site, "on-the-file-key")
    first = _verify(site)["entries"]
    token.make_key("master-1")
    token.make_key("master-2")
    outputs, store_keys = [], []

    def rotate(*args: str, to: str | None, master: str = "") -> None:
        old = site.opener()
        result = site.keys("rotate-master-key", *args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
        assert "KCVs unchanged" in result.output
        with pytest.raises(MasterKindMismatch):  # the old master key opens it no more
            KeyStore.load(site.key_store, old)
        site.master = master or site.master
        site.configure(to)
        store = KeyStore.load(site.key_store, site.opener())
        assert kcvs(store) == before
        if to is not None:
            store_keys.append(store_key_of(site))
        _lists_put(site, f"after-{len(outputs)}")
        view = _verify(site)
        # each rotation is an entry (key.rotate_master_key), then the list put after it
        assert view["verified"] == view["chained"] == view["entries"] == first + 2 * len(outputs)

    rotate("--new-pkcs11-label", "master-1", "--new-pkcs11-token", TOKEN,
           "--new-pkcs11-library", str(SOFTHSM), to="master-1")  # fmt: skip
    assert "to the token key pkcs11:authhost-test/master-1" in outputs[-1]
    assert "set [security] master_key_pkcs11_library" in outputs[-1]
    with pytest.raises(MasterKeyChanged):  # the running server keeps its keys, is told
        running.reload()
    assert running.decrypt_pan(running.encrypt_pan(PAN, "card-1"), "card-1") == PAN

    rotate("--new-pkcs11-label", "master-2", to="master-2")  # the configured token
    with pytest.raises(MasterKindMismatch, match="master-2, not pkcs11:authhost-test/master-1"):
        KeyStore.load(site.key_store, token.key("master-1"))
    assert store_keys[0] != store_keys[1]  # a new store key, not the old one re-wrapped

    new_file = site.new_key_file()
    rotate("--new-master-key-file", str(new_file), to=None, master=new_file.read_text().strip())
    assert "remove [security] master_key_pkcs11_library" in outputs[-1]
    data = json.loads(site.key_store.read_text())
    assert "master" not in data and "store_key" not in data  # a file key's store, as before
    assert kcvs(KeyStore.load(site.key_store, bytes.fromhex(site.master))) == before
    for text in (*outputs, site.key_store.read_text()):
        for secret in (token.pin, *store_keys):
            assert secret.lower() not in text.lower()


def test_a_rotation_to_a_token_key_it_cannot_use_leaves_the_file_byte_identical(
    file_site,
) -> None:
    site = file_site
    saved = site.key_store.read_bytes()
    for args in (
        ["--new-pkcs11-label", "absent", "--new-pkcs11-token", TOKEN,
         "--new-pkcs11-library", str(SOFTHSM)],
        ["--new-pkcs11-label", "absent"],  # no token configured nor named
        ["--new-pkcs11-token", TOKEN],  # no label
        ["--new-pkcs11-label", "absent", "--new-master-key-file", str(site.new_key_file())],
    ):  # fmt: skip
        result = site.keys("rotate-master-key", *args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert lines[0].startswith("authhost keys: ") and site.token.pin not in result.output
    assert "no AES key labelled 'absent'" in site.keys(
        "rotate-master-key", "--new-pkcs11-label", "absent", "--new-pkcs11-token", TOKEN,
        "--new-pkcs11-library", str(SOFTHSM),
    ).output  # fmt: skip
    assert site.key_store.read_bytes() == saved


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"master_key_file": "/etc/authhost/master.key"}, "remove master_key_file"),
        ({"master_key_env": "MY_MASTER_KEY"}, "remove master_key_env"),
        ({"master_key_pkcs11_label": ""}, "master_key_pkcs11_label must be set too"),
        ({"master_key_pkcs11_pin_env": ""}, "master_key_pkcs11_pin_env must name a variable"),
    ],
)
def test_the_configuration_refuses_a_second_master_key_beside_the_token(
    tmp_path, settings, said
) -> None:
    values = {
        "master_key_pkcs11_library": str(SOFTHSM),
        "master_key_pkcs11_token": TOKEN,
        "master_key_pkcs11_label": "master-1",
        **settings,
    }
    config = tmp_path / "authhost.toml"
    config.write_text("[security]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items()))
    with pytest.raises(ConfigError, match=said) as refused:
        load_config(config, env={})
    assert "\n" not in str(refused.value)


def test_a_wrapped_store_key_from_another_token_key_is_refused_by_the_token(token) -> None:
    token.make_key("one")
    token.make_key("two")
    blob = token.key("one").wrap(b"\x01" * 32)
    assert token.key("one").unwrap(blob) == b"\x01" * 32
    with pytest.raises(TokenKeyMismatch, match="pkcs11:authhost-test/two: this key does not"):
        token.key("two").unwrap(blob)


async def test_a_demo_server_on_a_token_key_approves_a_pin_and_writes_no_pin(tmp_path, token):
    """``authhost serve --demo`` configured with a token key (AUTHHOST_SECURITY_MASTER_KEY_
    PKCS11_*) creates its key store under it, approves the demo card's PIN, and writes no
    master key file, no PIN and no store key anywhere."""
    token.make_key("master-1")
    settings = {
        "AUTHHOST_SECURITY_MASTER_KEY_PKCS11_LIBRARY": str(SOFTHSM),
        "AUTHHOST_SECURITY_MASTER_KEY_PKCS11_TOKEN": TOKEN,
        "AUTHHOST_SECURITY_MASTER_KEY_PKCS11_LABEL": "master-1",
    }
    env = {**os.environ, **settings, "AUTHHOST_HSM_PIN": token.pin, "AUTHHOST_ADMIN_PORT": "0",
           "AUTHHOST_SERVER_METRICS_PORT": "0", "AUTHHOST_SERVER_LOG_LEVEL": "INFO"}  # fmt: skip
    for name in ("AUTHHOST_MASTER_KEY", "AUTHHOST_CONFIG"):
        env.pop(name, None)
    log, port = tmp_path / "server.log", free_port()
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "authhost", "serve", "--demo", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    try:
        await wait_for_port(port, proc)
        terminal = await Terminal.on_demo_host(tmp_path, port)
        key_store = tmp_path / "authhost-keys.json"
        config = SecurityConfig(
            key_store=str(key_store), demo=True, master_key_pkcs11_library=str(SOFTHSM),
            master_key_pkcs11_token=TOKEN, master_key_pkcs11_label="master-1",
        )  # fmt: skip
        hsm = SecurityModule.open(config, env={"AUTHHOST_HSM_PIN": token.pin})
        zpk = bytes.fromhex(hsm.demo_test_keys()["zpk"])
        assert await terminal.pin_under(zpk) == "00"
        await terminal.switch.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    text = log.read_text()
    assert f"opened under the token key {token.ref('master-1')}" in text, text
    assert json.loads(key_store.read_text())["master"] == token.ref("master-1")
    assert not demo_master_path(key_store).exists()
    clear = token.key("master-1").unwrap(json.loads(key_store.read_text())["store_key"]).hex()
    for written in (text, key_store.read_text()):
        for secret in (token.pin, clear, zpk.hex()):
            assert secret.lower() not in written.lower()


def test_a_rotation_to_the_token_key_in_use_is_refused_leaving_the_file(hsm_site) -> None:
    saved = hsm_site.key_store.read_bytes()
    result = hsm_site.keys("rotate-master-key", "--new-pkcs11-label", "master-1")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "the new master key is the current one" in lines[0]
    assert hsm_site.key_store.read_bytes() == saved


def test_a_rotation_to_a_token_key_that_cannot_decrypt_leaves_the_store_readable(
    file_site,
) -> None:
    """A token key that encrypts but may not decrypt (CKA_DECRYPT false) wraps a store key
    no one can unwrap again: the wrap is read back before the file is touched, so the
    rotation is refused with one line and the store stays under its master key. It was
    written, every working key lost, and then said to be "not the token key"."""
    site = file_site
    site.token.make_key("encrypt-only", decrypt=False)
    saved, before = site.key_store.read_bytes(), kcvs(KeyStore.load(site.key_store, site.opener()))
    result = site.keys("rotate-master-key", "--new-pkcs11-label", "encrypt-only",
                       "--new-pkcs11-token", TOKEN, "--new-pkcs11-library", str(SOFTHSM))  # fmt: skip
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert site.token.ref("encrypt-only") in lines[0]
    assert "does not decrypt what it encrypted" in lines[0] and "nothing was written" in lines[0]
    assert site.token.pin not in result.output
    assert site.key_store.read_bytes() == saved
    assert kcvs(KeyStore.load(site.key_store, site.opener())) == before


def test_a_new_store_under_a_token_key_that_cannot_decrypt_is_never_written(
    tmp_path, token
) -> None:
    """The first ``keys generate`` of an installation on such a key creates no key store (one
    that could never be opened, with the key just generated in it)."""
    token.make_key("encrypt-only", decrypt=False)
    site = HsmSite.of(Installation(tmp_path), token)
    site.configure("encrypt-only")
    result = site.keys("generate", "zpk", "--type", "zpk")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "does not decrypt what it encrypted" in lines[0] and token.pin not in lines[0]
    assert not site.key_store.exists()


def test_a_token_key_no_longer_allowed_to_decrypt_is_said_so_not_another_key(hsm_site) -> None:
    """A store key wrapped by a key whose CKA_DECRYPT is false now (a policy changed) is a
    TokenError saying so, not a TokenKeyMismatch: a running server would read that as a
    rotation, and an operator look for another key."""
    site, token = hsm_site, hsm_site.token
    blob = json.loads(site.key_store.read_text())["store_key"]
    token.make_key("encrypt-only", decrypt=False)
    with pytest.raises(TokenError, match="CKA_ENCRYPT or CKA_DECRYPT is false") as refused:
        token.key("encrypt-only").unwrap(blob)
    assert not isinstance(refused.value, TokenKeyMismatch)


def test_a_rotation_whose_token_pin_is_in_another_variable_says_to_configure_it(
    file_site, monkeypatch
) -> None:
    """``--new-pkcs11-pin-env`` names the variable the new token's PIN is in: the closing
    advice names it among the settings to make (it named library, token and label only, and
    the servers then looked for the PIN in AUTHHOST_HSM_PIN)."""
    site = file_site
    site.token.make_key("master-1")
    monkeypatch.setenv("BANK_HSM_PIN", site.token.pin)
    result = site.keys("rotate-master-key", "--new-pkcs11-label", "master-1",
                       "--new-pkcs11-token", TOKEN, "--new-pkcs11-library", str(SOFTHSM),
                       "--new-pkcs11-pin-env", "BANK_HSM_PIN")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "master_key_pkcs11_pin_env = 'BANK_HSM_PIN'" in result.output
    assert site.token.pin not in result.output


def test_a_rotation_to_a_token_key_asks_the_token_once_for_the_wrap(
    file_site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation reads the rotated file back with the store key it wrapped (the wrap had
    the token decrypt it already): the token is not asked to unwrap it again, so a token
    failing at that moment can no longer make a rotation that was written look failed. The
    read-back logged in a second time."""
    site = file_site
    site.token.make_key("master-1")
    unwraps: list[str] = []
    real_unwrap = TokenKey.unwrap

    def counted(self: TokenKey, blob: str) -> bytes:
        unwraps.append(self.label)
        return real_unwrap(self, blob)

    monkeypatch.setattr(TokenKey, "unwrap", counted)
    result = site.keys("rotate-master-key", "--new-pkcs11-label", "master-1",
                       "--new-pkcs11-token", TOKEN, "--new-pkcs11-library", str(SOFTHSM))  # fmt: skip
    assert result.exit_code == 0 and "KCVs unchanged" in result.output, result.output
    assert unwraps == []
    site.configure("master-1")
    assert kcvs(KeyStore.load(site.key_store, site.opener()))  # a later start unwraps it
    assert unwraps == ["master-1"]
