"""``authhost keys ...``: key custody for operators (list, generate, components, TR-31, rotation).

Every command shows key names, types and KCVs, never key material. The master key comes from
the environment variable or file named in the [security] section, as for ``authhost serve``.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from authhost.cli.key_audit import audit_key_change, key_facts
from authhost.config import (
    DEFAULT_HSM_PIN_ENV,
    DEFAULT_MASTER_KEY_ENV,
    ConfigError,
    SecurityConfig,
    load_config,
)
from authhost.security import key_admin, master_rotation
from authhost.security.errors import SecurityError
from authhost.security.hsm_master import TokenKey
from authhost.security.keys import KeyAlgorithm, KeyType
from authhost.security.keystore import FORMAT_VERSION, KEY_MASTER, KeyStore

keys_app = typer.Typer(
    name="keys",
    help="Working keys under the master key: list, generate, import/export (TR-31; import also "
    "a key under a ZMK in the legacy form), rotate, upgrade, rotate the master key.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[  # -c as for every other command
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="configuration file (default: $AUTHHOST_CONFIG, else authhost.toml if present)",
    ),
]
KeyStoreOpt = Annotated[
    str | None, typer.Option("--key-store", help="key store file (default: \\[security] key_store)")
]
KekOpt = Annotated[str, typer.Option("--kek", help="name of the key-encryption key (TR-31 KBPK)")]
NewVersionOpt = Annotated[
    bool, typer.Option("--new-version", help="add a new version of an existing key")
]


def _security(config_file: Path | None, key_store: str | None) -> SecurityConfig:
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        typer.echo(f"authhost: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    return config.replace("security", key_store=key_store).security


# What a key store operation raises for a file it cannot use: the security module's own errors,
# and the operating system's (a directory that does not exist, a read-only or immutable file, a
# name too long), which reached the operator as a traceback.
KEY_STORE_ERRORS = (SecurityError, OSError, ValueError)


def _store(config_file: Path | None, key_store: str | None, *, create: bool = False) -> KeyStore:
    if key_store is not None and not key_store.strip():
        _fail(ValueError("--key-store must name a file"))
    try:
        return key_admin.open_key_store(_security(config_file, key_store), create=create)
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))


def _said(exc: Exception) -> Exception | str:
    """An OSError as its reason and file, not its repr."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return exc


def _key_name(name: str) -> str:
    if not name.strip():  # was stored as a key named ""
        _fail(ValueError("a key name must not be empty"))
    return name


def _format_line(store: KeyStore) -> str:
    if store.file_format < FORMAT_VERSION:
        return (
            f"# key store format {store.file_format}: the master key encrypts the keys itself; "
            f"`authhost keys upgrade` rewrites it in format {FORMAT_VERSION}"
        )
    return (
        f"# key store format {store.file_format}: keys, check value and header under keys "
        "derived from the master key"
    )


def _said_upgrade(store: KeyStore, before: int) -> None:
    """A change of a key rewrites an older file in the current format: the operator is told."""
    if store.file_format != before:
        typer.echo(
            f"key store {store.path} is now format {store.file_format} (was {before})", err=True
        )


def _fail(exc: Exception | str) -> NoReturn:
    typer.echo(f"authhost keys: {exc}", err=True)
    raise typer.Exit(1)


@keys_app.command("list")
def keys_list(config: ConfigOpt = None, key_store: KeyStoreOpt = None) -> None:
    """Every key version: name, version, type, algorithm, KCV, creation time (and when it was
    retired: its material destroyed)."""
    store = _store(config, key_store)
    if store.demo:
        typer.echo("# demo key store: test keys only, not for production")
    typer.echo(_format_line(store))
    typer.echo(f"# master key: {store.master_ref}")
    typer.echo(f"{'NAME':<16} {'VER':>3}  {'TYPE':<9} {'ALG':<5} {'KCV':<6}  CREATED (UTC)")
    for entry in store.entries():
        created = dt.datetime.fromtimestamp(entry.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        retired = ""
        if entry.retired_at:
            when = dt.datetime.fromtimestamp(entry.retired_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
            retired = f"  retired {when}"
        typer.echo(
            f"{entry.name:<16} {entry.version:>3}  {entry.key_type:<9} {entry.algorithm:<5} "
            f"{entry.kcv:<6}  {created}{retired}"
        )


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Argument(help="key name, e.g. zpk, zpk-acq1, cvk-gold")],
    key_type: Annotated[KeyType, typer.Option("--type", help="what the key is for")],
    algorithm: Annotated[
        KeyAlgorithm | None, typer.Option("--algorithm", help="tdes, aes or hmac")
    ] = None,
    length: Annotated[int | None, typer.Option("--length", help="key length in bytes")] = None,
    new_version: NewVersionOpt = False,
    config: ConfigOpt = None,
    key_store: KeyStoreOpt = None,
) -> None:
    """Generate a random working key (creates the key store if it does not exist)."""
    name = _key_name(name)
    store = _store(config, key_store, create=True)
    before = store.file_format
    try:
        key = key_admin.generate_key(
            store, name, key_type, algorithm, length, new_version=new_version
        )
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))
    _said_upgrade(store, before)
    typer.echo(
        f"generated {key.name} v{key.version} ({key.key_type}, {key.algorithm}) KCV {key.kcv}"
    )
    audit_key_change(config, store, "key.generate", key.name, key_facts(key))


@keys_app.command("components")
def keys_components(
    name: Annotated[str, typer.Argument(help="key name, e.g. kek-partner")],
    key_type: Annotated[KeyType, typer.Option("--type", help="what the key is for")] = (
        KeyType.KEK
    ),
    algorithm: Annotated[KeyAlgorithm, typer.Option("--algorithm", help="tdes or aes")] = (
        KeyAlgorithm.AES
    ),
    components: Annotated[
        int, typer.Option("--components", min=2, max=9, help="how many components (2-9)")
    ] = 2,
    new_version: NewVersionOpt = False,
    config: ConfigOpt = None,
    key_store: KeyStoreOpt = None,
) -> None:
    """Enter a key as clear components (prompted, not echoed) and combine them by XOR."""
    name = _key_name(name)
    store = _store(config, key_store, create=True)
    parts = []
    for i in range(components):
        part = _component(i + 1)
        try:
            typer.echo(f"component {i + 1} KCV {key_admin.component_kcv(part, algorithm)}")
        except KEY_STORE_ERRORS as exc:
            _fail(exc)
        parts.append(part)
    before = store.file_format
    try:
        key = key_admin.combine_components(
            store, name, key_type, algorithm, parts, new_version=new_version
        )
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))
    _said_upgrade(store, before)
    typer.echo(f"stored {key.name} v{key.version} ({key.key_type}) KCV {key.kcv}")
    audit_key_change(
        config, store, "key.components", key.name, {**key_facts(key), "components": components}
    )


def _component(number: int) -> str:
    """One clear component, typed without echo at a terminal; piped in, read as a line
    (getpass would warn that the input "may be echoed": there is no terminal to echo it)."""
    if sys.stdin.isatty():
        return typer.prompt(f"component {number} (hex)", hide_input=True)
    typer.echo(f"component {number} (hex): ", nl=False, err=True)
    return sys.stdin.readline().strip()


@keys_app.command("export")
def keys_export(
    name: Annotated[str, typer.Argument(help="key to export")],
    kek: KekOpt = "kek",
    config: ConfigOpt = None,
    key_store: KeyStoreOpt = None,
) -> None:
    """Print the key as a TR-31 key block under the KEK (version D for AES, B for TDES)."""
    store = _store(config, key_store)
    try:
        block, kcv = key_admin.export_key(store, name, kek)
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))
    typer.echo(block)
    typer.echo(f"KCV {kcv}", err=True)
    audit_key_change(config, store, "key.export", name, {"name": name, "kek": kek, "kcv": kcv})


@keys_app.command("import")
def keys_import(
    name: Annotated[str, typer.Argument(help="name to store the key under")],
    block: Annotated[
        str,
        typer.Argument(
            help="TR-31 key block (version B or D); with --type, a TDES key encrypted under "
            "the ZMK named by --kek in the legacy form (32 or 48 hex digits, ECB)"
        ),
    ],
    kek: Annotated[
        str,
        typer.Option(
            "--kek", help="name of the key-encryption key (TR-31 KBPK), or of the ZMK with --type"
        ),
    ] = "kek",
    kcv: Annotated[
        str | None,
        typer.Option(
            "--kcv", help="expected KCV; the import fails if it differs (required with --type)"
        ),
    ] = None,
    key_type: Annotated[
        KeyType | None,
        typer.Option(
            "--type",
            help="the key's type (zpk, mak, bdk, ...) for a key in the legacy form, which "
            "carries none: BLOCK is then the key encrypted under the ZMK --kek",
        ),
    ] = None,
    new_version: NewVersionOpt = False,
    config: ConfigOpt = None,
    key_store: KeyStoreOpt = None,
) -> None:
    """Import a key from a TR-31 key block under the KEK (its type follows its usage), or with
    --type and --kcv a TDES key encrypted under a ZMK in the legacy form."""
    name = _key_name(name)
    if key_type is None and key_admin.looks_like_legacy_key(block):
        _refuse(
            "this is a bare hex key, not a TR-31 key block: for a key encrypted under a ZMK "
            "(the legacy form) give its type with --type and its check value with --kcv"
        )
    if key_type is not None and not kcv:
        _refuse(
            "a key in the legacy form carries no check of its own: give the KCV the sender "
            "told you with --kcv"
        )
    store = _store(config, key_store)
    before = store.file_format
    try:
        if key_type is None:
            key = key_admin.import_key(
                store, name, block, kek, expected_kcv=kcv, new_version=new_version
            )
        else:
            key = key_admin.import_under_zmk(
                store, name, block, key_type, kek, check_value=kcv or "", new_version=new_version
            )
    except KEY_STORE_ERRORS as exc:  # a key refused by its checks too: exit 1, either form
        _fail(_said(exc))
    _said_upgrade(store, before)
    typer.echo(f"imported {key.name} v{key.version} ({key.key_type}) KCV {key.kcv}")
    form = {"kek": kek} if key_type is None else {"kek": kek, "form": "legacy-ecb"}
    audit_key_change(config, store, "key.import", key.name, {**key_facts(key), **form})


def _refuse(exc: Exception | str) -> NoReturn:
    """An import asked for wrongly (an option it needs missing): exit 2, as Typer's own usage
    errors and a configuration error; a key refused by its checks exits 1, as every refusal."""
    typer.echo(f"authhost keys: {exc}", err=True)
    raise typer.Exit(2)


@keys_app.command("rotate-pan-key")
def keys_rotate_pan_key(config: ConfigOpt = None, key_store: KeyStoreOpt = None) -> None:
    """Add a PAN data key version: new PANs use it, stored PANs keep decrypting.

    Running servers pick the new version up on SIGHUP or when they first meet a PAN sealed
    under it.
    """
    store = _store(config, key_store)
    before = store.file_format
    try:
        key = key_admin.rotate_pan_key(store)
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))
    _said_upgrade(store, before)
    typer.echo(f"PAN data key is now version {key.version} (KCV {key.kcv})")
    audit_key_change(config, store, "key.rotate_pan_key", key.name, key_facts(key))


@keys_app.command("upgrade")
def keys_upgrade(config: ConfigOpt = None, key_store: KeyStoreOpt = None) -> None:
    """Rewrite a key store of an older format in the current one: format 2 keeps the keys
    under keys derived from the master key (HKDF-SHA-256, one per purpose), which itself then
    encrypts nothing. Keys, versions and KCVs stay as they are; running servers re-read the
    file. Safe to run again. Older authhost versions do not read format 2."""
    store = _store(config, key_store)
    try:
        before = store.upgrade()
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))
    if before is None:
        typer.echo(f"{store.path} is already format {FORMAT_VERSION}: nothing to do")
        return
    live = store.live_count()
    typer.echo(
        f"upgraded {store.path} from format {before} to format {store.file_format}: "
        f"{live} key version(s) re-encrypted under the derived entry key, KCVs unchanged"
    )
    # every key re-encrypted is a key ceremony's step: in the log as the others are
    audit_key_change(
        config, store, "key.upgrade", str(store.path),
        {"key_store": str(store.path), "from": before, "to": store.file_format,
         "key_versions": live},
    )  # fmt: skip


@keys_app.command("rotate-master-key")
def keys_rotate_master_key(
    new_master_key_file: Annotated[
        str | None,
        typer.Option(
            "--new-master-key-file",
            help="file with the new master key (hex, readable by its owner only, as the "
            "current one's)",
        ),
    ] = None,
    new_master_key_env: Annotated[
        str | None,
        typer.Option(
            "--new-master-key-env", help="environment variable holding the new master key"
        ),
    ] = None,
    new_pkcs11_label: Annotated[
        str | None,
        typer.Option(
            "--new-pkcs11-label",
            help="label of the new master key: an AES key in a PKCS#11 token (the HSM)",
        ),
    ] = None,
    new_pkcs11_token: Annotated[
        str | None,
        typer.Option(
            "--new-pkcs11-token",
            help="its token's label (default: \\[security] master_key_pkcs11_token)",
        ),
    ] = None,
    new_pkcs11_library: Annotated[
        str | None,
        typer.Option(
            "--new-pkcs11-library",
            help="its PKCS#11 library (default: \\[security] master_key_pkcs11_library)",
        ),
    ] = None,
    new_pkcs11_pin_env: Annotated[
        str | None,
        typer.Option(
            "--new-pkcs11-pin-env",
            help="environment variable with its token's user PIN (default: \\[security] "
            "master_key_pkcs11_pin_env)",
        ),
    ] = None,
    config: ConfigOpt = None,
    key_store: KeyStoreOpt = None,
) -> None:
    """Re-encrypt the whole key store under a new master key (end of its cryptoperiod, a
    custodian leaving, a suspected compromise). Working keys and their KCVs stay; the audit
    chain keeps verifying. Running servers keep the keys they have and must be restarted
    with the new master key; then destroy the old one. The new master key may be an AES key
    in a PKCS#11 token (--new-pkcs11-label), and so may the current one."""
    security = _security(config, key_store)
    try:
        token = master_rotation.new_token_key(
            security,
            new_pkcs11_label,
            new_pkcs11_token,
            new_pkcs11_library,
            new_pkcs11_pin_env,
            os.environ,
        )
        new_master = master_rotation.new_master_key(
            new_master_key_file, new_master_key_env, os.environ, token
        )
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))
    store = _store(config, key_store)
    try:
        rotation = master_rotation.rotate_master_key(security, store, new_master, os.environ)
    except KEY_STORE_ERRORS as exc:
        _fail(_said(exc))
    typer.echo(f"{'NAME':<16} {'VER':>3}  {'KCV BEFORE':<10}  KCV AFTER")
    for (name, version, old), (_, _, new) in zip(
        rotation.before.rows, rotation.after.rows, strict=True
    ):
        shown = str(version) if version else "-"
        typer.echo(f"{name:<16} {shown:>3}  {old:<10}  {new}")
    live = sum(1 for _, _, value in rotation.before.rows[:-1] if value != master_rotation.RETIRED)
    to = "the new master key" if token is None else f"the token key {token.ref}"
    typer.echo(
        f"rotated {store.path} to {to}: {live} key version(s) and the audit "
        "chain key re-encrypted, KCVs unchanged"
    )
    if rotation.demo_key_file is not None:
        typer.echo(f"the demo master key file {rotation.demo_key_file} now holds the new key")
    typer.echo(
        f"next: {_configure_next(store, token)}restart every server with the new master key "
        "(they keep the keys they have until then), then destroy the old master key"
    )
    audit_key_change(
        config, store, "key.rotate_master_key", str(store.path),
        {"key_store": str(store.path), "to": to, "key_versions": live},
    )  # fmt: skip


def _configure_next(store: KeyStore, token: TokenKey | None) -> str:
    """What the configuration must say after a rotation that changed the master key's kind
    or token key (the servers' next start reads the store under the new one only)."""
    if token is not None:
        # the PIN's variable too when it is not the default: the servers would read another
        pin = (
            f", master_key_pkcs11_pin_env = {token.pin_env!r}"
            if token.pin_env != DEFAULT_HSM_PIN_ENV
            else ""
        )
        return (
            f"set [security] master_key_pkcs11_library = {token.library!r}, "
            f"master_key_pkcs11_token = {token.token!r}{pin} and master_key_pkcs11_label = "
            f"{token.label!r} (no master_key_file or {DEFAULT_MASTER_KEY_ENV} beside them), "
        )
    if store.master_ref != KEY_MASTER:
        return (
            "remove [security] master_key_pkcs11_library, _token and _label and configure the "
            "new master key (master_key_file or the environment variable), "
        )
    return ""


def register(app: typer.Typer) -> None:
    """Add ``authhost keys ...`` to the root app."""
    app.add_typer(keys_app, name="keys")
