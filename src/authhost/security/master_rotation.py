"""Changing the master key (``authhost keys rotate-master-key``): PCI DSS 3.6.4 and 3.7.4 ask
that a key-encrypting key be changed at the end of its cryptoperiod, when a custodian leaves
or when it may be compromised.

The working keys stay what they are (same versions, same KCVs): only what protects them in the
file changes. The new master key is read as the current one is (hex, 32 or 64 digits, from a
file readable by its owner only, or from an environment variable), and every refusal comes
before the file is touched. What is shown is names, versions and KCVs, never a key.

The new master key may be an AES key in a PKCS#11 token instead (``--new-pkcs11-label``, on the
configured token unless another is named), and the current one may be too: a store moves from
a file key to a token key, from one token key to another, and back, each time under a new
store key (``keystore.KeyStore.rekey``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from authhost.config import SecurityConfig
from authhost.security.errors import KeyStoreError, MasterKeyMissing
from authhost.security.hsm_master import TokenKey
from authhost.security.keystore import (
    DEMO_MARK,
    KEY_MASTER,
    KeyStore,
    demo_master_path,
    master_key_from,
    parse_master_key,
    read_private,
    write_private,
)

if TYPE_CHECKING:
    from authhost.security.keystore import Master

AUDIT_ROW = "(audit chain)"  # the audit chain's key, listed with the working keys
RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class CheckValues:
    """(name, version, KCV) of every key version in a store, read by decrypting each one:
    what shows that a rotation kept every key. Retired versions say so; the audit chain's
    key is the last row (version 0)."""

    rows: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a master key rotation did: the check values before and after, and the demo master
    key file rewritten with the new key (a demo installation finds its key there), if any."""

    before: CheckValues
    after: CheckValues
    demo_key_file: Path | None


def new_master_key(
    file_name: str | None,
    env_name: str | None,
    env: Mapping[str, str],
    token: TokenKey | None = None,
) -> Master:
    """The new master key from ``--new-master-key-file`` or ``--new-master-key-env``, checked
    as the current one is (owner-only file, hex, length), or the token key ``token``."""
    if sum(map(bool, (file_name, env_name, token))) != 1:
        raise MasterKeyMissing(
            "name the new master key: --new-master-key-file PATH, --new-master-key-env NAME or "
            "--new-pkcs11-label LABEL (one of them)"
        )
    if token is not None:
        return token
    if env_name:
        if not env.get(env_name):
            raise MasterKeyMissing(f"environment variable {env_name} is not set")
        return parse_master_key(env[env_name], f"environment variable {env_name}")
    path = Path(str(file_name))
    return parse_master_key(read_private(path, "new master key file"), str(path))


def new_token_key(
    config: SecurityConfig,
    label: str | None,
    token: str | None,
    library: str | None,
    pin_env: str | None,
    env: Mapping[str, str],
) -> TokenKey | None:
    """The token key ``--new-pkcs11-label`` names (None without it), on the token and library
    given, else the configured ones (a rotation from a file key names them)."""
    if not label:
        if token or library or pin_env:
            raise MasterKeyMissing(
                "--new-pkcs11-token, --new-pkcs11-library and --new-pkcs11-pin-env go with "
                "--new-pkcs11-label LABEL"
            )
        return None
    library = library or config.master_key_pkcs11_library
    token = token or config.master_key_pkcs11_token
    for value, option, setting in (
        (library, "--new-pkcs11-library PATH", "library"),
        (token, "--new-pkcs11-token LABEL", "token"),
    ):
        if not value:
            raise MasterKeyMissing(
                f"--new-pkcs11-label needs the token's {setting}: {option} (or [security] "
                f"master_key_pkcs11_{setting})"
            )
    return TokenKey(library, token, label, pin_env or config.master_key_pkcs11_pin_env, env)


def check_values(store: KeyStore) -> CheckValues:
    """Every key version's KCV as its decrypted material gives it (KeyStoreError for one that
    does not decrypt or whose KCV is not the one recorded)."""
    rows = [
        (e.name, e.version, RETIRED if e.retired_at else store.get(e.name, e.version).kcv)
        for e in store.entries()
    ]
    rows.append((AUDIT_ROW, 0, store.audit_kcv()))
    return CheckValues(tuple(rows))


def rotate_master_key(
    config: SecurityConfig, store: KeyStore, new_master: Master, env: Mapping[str, str]
) -> Rotation:
    """Write ``store`` under ``new_master`` and check it reads back with the same keys.

    A demo store whose master key is the generated file beside it gets that file rewritten
    with the new key after the store (a crash in between leaves the key the operator gave).
    """
    check_values(store)  # every key decrypts under the current master key, first
    rotated = store.rekey(new_master)
    # what was rotated: the store as the lock found it, with what another process saved
    # since it was read (a zone key change, a retirement) merged in
    before = check_values(store)
    # read back with the store key in hand (``reopen``): the wrap already had the token
    # decrypt it, and asking the token again could fail after the file was rotated and say
    # the rotation failed when it had not
    after = check_values(rotated.reopen())
    if after != before:  # never seen; said rather than trusted
        raise KeyStoreError(f"{store.path}: the rotated key store reads back different KCVs")
    demo_file = None
    if (
        store.demo
        and isinstance(new_master, bytes)
        and store.master_ref == KEY_MASTER
        and master_key_from(config.master_key_env, config.master_key_file, env) is None
    ):
        demo_file = demo_master_path(store.path)
        write_private(demo_file, f"{DEMO_MARK}\n{new_master.hex().upper()}\n")
    return Rotation(before, after, demo_file)
