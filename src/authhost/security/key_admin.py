"""Key custody operations behind ``authhost keys``: generate, components, TR-31 import/export.

Keys enter the key store as TR-31 key blocks under a key-encryption key (KEK), as a TDES key
encrypted under a zone master key in the legacy form (ECB, no key block: what many switches
still send), or, for the first KEK, as clear components entered separately and combined by
XOR here; they leave only as TR-31 key blocks. What an operator sees is names, types and key
check values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from authhost.config import SecurityConfig
from authhost.security import tr31
from authhost.security.blockcipher import tdes_ecb_decrypt
from authhost.security.errors import KeyCheckFailed, KeyNotFound, SecurityError, WeakKey
from authhost.security.hsm_master import configured_master
from authhost.security.keys import (
    ALLOWED_LENGTHS,
    KCV_DIGITS,
    KEY_SHAPES,
    KeyAlgorithm,
    KeyType,
    WorkingKey,
    adjust_des_parity,
    check_wrapping_strength,
    generate_material,
    has_odd_parity,
    kcv,
    kcv_matches,
)
from authhost.security.keystore import KeyStore

PAN_DATA_KEY = "pan-data"

# key type -> (TR-31 key usage, mode of use) used on export
TR31_USAGE: dict[KeyType, tuple[str, str]] = {
    KeyType.ZPK: ("P0", "B"),
    KeyType.BDK: ("B0", "X"),
    KeyType.PVK: ("V2", "C"),
    KeyType.CVK: ("C0", "C"),
    KeyType.IMK_AC: ("E0", "X"),  # EMV issuer master key, application cryptograms: derives
    KeyType.IMK_SMI: ("E2", "X"),  # EMV issuer master key, secure messaging for integrity
    KeyType.IMK_SMC: ("E1", "X"),  # EMV issuer master key, secure messaging, confidentiality
    KeyType.MAK: ("M3", "C"),
    KeyType.KEK: ("K0", "B"),
    KeyType.PAN_HASH: ("M7", "C"),
    KeyType.PAN_DATA: ("D0", "B"),
}
# TR-31 key usage -> key type on import (V0/V1 are PVKs too)
USAGE_TYPES: dict[str, KeyType] = {usage: kt for kt, (usage, _) in TR31_USAGE.items()}
USAGE_TYPES.update({"V0": KeyType.PVK, "V1": KeyType.PVK, "K1": KeyType.KEK})
# TR-31 modes of use a key may arrive with: those allowing everything authhost does with a key
# of the type (a zone PIN key decrypts the acquirer's PIN blocks and encrypts translated ones
# and PIN mailers, a MAC key generates and verifies, a KEK wraps and unwraps). The module
# keeps no mode per key, so a narrower mode (encrypt only, verify only) would not be kept:
# such a block is refused. N (no special restrictions) allows everything.
IMPORT_MODES: dict[KeyType, frozenset[str]] = {
    kt: frozenset({mode, "N"}) for kt, (_, mode) in TR31_USAGE.items()
}
TR31_ALGORITHMS = {KeyAlgorithm.TDES: "T", KeyAlgorithm.AES: "A", KeyAlgorithm.HMAC: "H"}
ALGORITHM_CODES = {code: alg for alg, code in TR31_ALGORITHMS.items()}


def open_key_store(
    config: SecurityConfig, *, create: bool = False, env: Mapping[str, str] | None = None
) -> KeyStore:
    """The configured key store under the master key; ``create`` makes an empty one."""
    env = os.environ if env is None else env
    path = Path(config.key_store)
    master, _ = configured_master(config, path, env, demo=False)
    if create and not path.exists():
        return KeyStore.create(path, master)
    return KeyStore.load(path, master)


def generate_key(
    store: KeyStore,
    name: str,
    key_type: KeyType,
    algorithm: KeyAlgorithm | None = None,
    length: int | None = None,
    *,
    new_version: bool = False,
) -> WorkingKey:
    """A fresh random key saved under ``name`` (a new version with ``new_version``)."""
    default_algorithm, default_length = KEY_SHAPES[key_type]
    algorithm = algorithm or default_algorithm
    length = length or (default_length if algorithm is default_algorithm else 16)
    material = generate_material(algorithm, length)
    return store.add_version(name, key_type, algorithm, material, new_version=new_version)


def rotate_pan_key(store: KeyStore) -> WorkingKey:
    """A new PAN data key version: new PANs are encrypted with it, old ones still decrypt."""
    return generate_key(store, PAN_DATA_KEY, KeyType.PAN_DATA, new_version=True)


def _lengths_wanted(algorithm: KeyAlgorithm, got: int) -> str:
    """What a custodian types, in hex digits: "(16, 24, 32) bytes long" was Python's tuple,
    in bytes, and said nothing of the component actually entered (an empty line, at EOF)."""
    digits = [str(2 * n) for n in ALLOWED_LENGTHS[algorithm]]
    choices = digits[0] if len(digits) == 1 else f"{', '.join(digits[:-1])} or {digits[-1]}"
    return (
        f"{algorithm.value.upper()} key components must each be {choices} hex digits "
        f"(all the same length); got {2 * got}"
    )


def component_kcv(component: str, algorithm: KeyAlgorithm) -> str:
    """The KCV of one clear component, which its custodian checks before handing it over."""
    try:
        part = bytes.fromhex(component.strip())
    except ValueError:
        raise SecurityError("key components must be hex") from None
    if len(part) not in ALLOWED_LENGTHS[algorithm]:
        raise SecurityError(_lengths_wanted(algorithm, len(part)))
    return kcv(part, algorithm)


def combine_components(
    store: KeyStore,
    name: str,
    key_type: KeyType,
    algorithm: KeyAlgorithm,
    components: list[str],
    *,
    new_version: bool = False,
) -> WorkingKey:
    """A key from clear components (hex) combined by XOR, e.g. the first KEK of a partner."""
    if len(components) < 2:
        raise SecurityError("a key from components needs at least two components")
    try:
        parts = [bytes.fromhex(c.strip()) for c in components]
    except ValueError:
        raise SecurityError("key components must be hex") from None
    if len({len(p) for p in parts}) != 1 or len(parts[0]) not in ALLOWED_LENGTHS[algorithm]:
        odd = next((p for p in parts if len(p) != len(parts[0])), parts[0])
        raise SecurityError(_lengths_wanted(algorithm, len(odd)))
    material = bytes(len(parts[0]))
    for part in parts:
        material = bytes(a ^ b for a, b in zip(material, part, strict=True))
    if algorithm is KeyAlgorithm.TDES:
        material = adjust_des_parity(material)
    return store.add_version(name, key_type, algorithm, material, new_version=new_version)


def _kek(store: KeyStore, kek_name: str) -> WorkingKey:
    kek = store.get(kek_name)
    if kek.key_type is not KeyType.KEK:
        raise KeyNotFound(f"key {kek_name!r} is a {kek.key_type} key, not a KEK")
    return kek


def export_key(store: KeyStore, name: str, kek_name: str = "kek") -> tuple[str, str]:
    """(TR-31 key block, KCV) of the newest version of ``name`` under the KEK.

    Version D under an AES KEK, version B under a TDES KEK.
    """
    if name == kek_name:
        raise SecurityError(f"key {name!r} cannot be exported under itself")
    kek = _kek(store, kek_name)
    key = store.get(name)
    if not store.exportable(name):
        raise SecurityError(
            f"key {name!r} arrived in a key block marked not exportable: it never leaves"
        )
    check_wrapping_strength(key.name, key.algorithm, len(key.material), kek)
    usage, mode = TR31_USAGE[key.key_type]
    header = tr31.KeyBlockHeader(
        version="D" if kek.algorithm is KeyAlgorithm.AES else "B",
        key_usage=usage,
        algorithm=TR31_ALGORITHMS[key.algorithm],
        mode_of_use=mode,
        key_version=f"{key.version % 100:02d}",
        exportability="E",
    )
    return tr31.wrap(kek.material, header, key.material), key.kcv


def import_key(
    store: KeyStore,
    name: str,
    block: str,
    kek_name: str = "kek",
    *,
    expected_kcv: str | None = None,
    new_version: bool = False,
) -> WorkingKey:
    """Unwrap a TR-31 key block under the KEK and save the key as ``name``."""
    kek = _kek(store, kek_name)
    try:
        header, material = tr31.unwrap(kek.material, block)
    except tr31.KeyBlockError as exc:
        raise SecurityError(f"cannot import {name!r}: {exc}") from None
    key_type = USAGE_TYPES.get(header.key_usage)
    algorithm = ALGORITHM_CODES.get(header.algorithm)
    if key_type is None or algorithm is None:
        raise SecurityError(
            f"cannot import {name!r}: key usage {header.key_usage} / algorithm "
            f"{header.algorithm} has no place in authhost"
        )
    if header.mode_of_use not in IMPORT_MODES[key_type]:
        allowed = " or ".join(sorted(IMPORT_MODES[key_type]))
        raise SecurityError(
            f"cannot import {name!r}: mode of use {header.mode_of_use} restricts a "
            f"{key_type.value} key (usage {header.key_usage}) to less than authhost does with "
            f"it; send it with mode {allowed}"
        )
    if len(material) in ALLOWED_LENGTHS[algorithm]:  # other lengths: WeakKey when saved
        check_wrapping_strength(name, algorithm, len(material), kek)
    if expected_kcv:
        expected = _expected_kcv(name, expected_kcv)
        if not kcv_matches(material, algorithm, expected):
            raise KeyCheckFailed(  # it named one of the two values ("differs from the expected")
                f"cannot import {name!r}: its KCV is {_shown(material, algorithm, expected)}, "
                f"not the {expected} expected (--kcv): a wrong key block or KEK, or a mistyped "
                "check value"
            )
    if new_version:  # else the name is new (or refused as existing when saved)
        _refuse_replayed(store, name, kcv(material, algorithm))
    # a block marked N (not exportable, ANSI X9.143) never leaves again; E and S allow export
    # under a KEK, the only way keys leave authhost
    exportable = header.exportability != "N"
    return store.add_version(
        name, key_type, algorithm, material, new_version=new_version, exportable=exportable
    )


def import_under_zmk(
    store: KeyStore,
    name: str,
    encrypted: str,
    key_type: KeyType,
    zmk_name: str = "zmk",
    *,
    check_value: str,
    new_version: bool = False,
) -> WorkingKey:
    """Decrypt a TDES key sent in the legacy form under a ZMK and save it as ``name``.

    The legacy form (ANSI X9.17, Thales' variant-free "X9.17" form, what a switch's 0800 key
    change carries too) is a double- or triple-length key encrypted under the zone master key
    in ECB mode, each 8-byte part on its own. ECB is what that form is, not a choice made
    here; it carries no type, no usage and no integrity, so the type is the custodian's word
    and the check value is mandatory: it is what tells the key the sender meant from one under
    another ZMK. ``KeyCheckFailed`` (nothing saved) for a check value that differs, a key
    without odd DES parity (refused as the key change refuses it), a single-length key or a
    triple-length one under a double-length ZMK (``WeakKey``). Thales variant encryption (the
    ZMK XORed with a variant per key type) is not supported.
    """
    if key_type is KeyType.KEK:
        raise KeyCheckFailed(
            f"cannot import {name!r}: a KEK does not enter in the legacy form, which carries no "
            "key usage: a zone PIN key sent under the ZMK would become a key that unwraps "
            "others; enter a KEK as clear components (authhost keys components) or as a TR-31 "
            "key block"
        )
    zmk = _kek(store, zmk_name)
    if zmk.algorithm is not KeyAlgorithm.TDES:
        raise SecurityError(
            f"cannot import {name!r}: a key in the legacy form is TDES ECB under a TDES zone "
            f"master key; {zmk_name!r} is an {zmk.algorithm.value} key (ask for a TR-31 block)"
        )
    try:
        data = bytes.fromhex(_without_scheme_tag(name, encrypted))
    except ValueError:
        raise KeyCheckFailed(f"cannot import {name!r}: the encrypted key must be hex") from None
    if len(data) == 8:
        raise WeakKey(
            f"cannot import {name!r}: a single-length DES key (16 hex digits) is refused; "
            "a key is double or triple length (32 or 48 hex digits)"
        )
    if len(data) not in ALLOWED_LENGTHS[KeyAlgorithm.TDES]:
        raise KeyCheckFailed(
            f"cannot import {name!r}: the encrypted key is 32 or 48 hex digits, not {2 * len(data)}"
        )
    expected = _expected_kcv(name, check_value)
    check_wrapping_strength(name, KeyAlgorithm.TDES, len(data), zmk)
    tdes = KeyAlgorithm.TDES  # the checks a switch's key change makes too (security.module)
    material = tdes_ecb_decrypt(zmk.material, data, keep=False)
    if not kcv_matches(material, tdes, expected):
        raise KeyCheckFailed(
            f"cannot import {name!r}: its KCV is {_shown(material, tdes, expected)}, not the "
            f"{expected} expected (--kcv): a key encrypted under another ZMK than "
            f"{zmk_name!r}, a mistyped key or a mistyped check value; nothing was stored"
        )
    if not has_odd_parity(material):
        raise KeyCheckFailed(
            f"cannot import {name!r}: its KCV matches but it does not have odd DES parity (a "
            "switch's key change is refused so too); ask the sender for a parity-adjusted key"
        )
    if new_version:  # else the name is new (or refused as existing when saved)
        _refuse_replayed(store, name, kcv(material, tdes))
    _refuse_another_kind(store, name, key_type, kcv(material, tdes))
    return store.add_version(name, key_type, tdes, material, new_version=new_version)


def _refuse_replayed(store: KeyStore, name: str, check: str) -> None:
    """A key a version of ``name`` had (a retired one too) is refused, as a captured key
    change sent again is (security.module): an old key's block or cryptogram kept or
    captured would roll the key back."""
    if store.had_kcv(name, check):
        raise KeyCheckFailed(
            f"cannot import {name!r}: a version of {name!r} had this key before (KCV "
            f"{check}): an old key sent again would roll it back; ask the sender for the new key"
        )


def _refuse_another_kind(store: KeyStore, name: str, key_type: KeyType, check: str) -> None:
    """A key already in the store as another type (the ZMK itself, a zone PIN key sent again
    as a MAC key) is refused: the legacy form carries no type, and one key of two kinds lets
    what one does (a MAC over chosen data) serve against the other (PIN blocks)."""
    for entry in store.entries():
        if entry.kcv == check and entry.key_type != key_type.value:
            raise KeyCheckFailed(
                f"cannot import {name!r}: the key store has this key (KCV {check}) as "
                f"{entry.name!r}, a {entry.key_type} key: a key is of one kind only"
            )


def _expected_kcv(name: str, given: str) -> str:
    """The check value an operator gave, upper case; 6 to 16 hex digits or refused."""
    expected = given.strip().upper()
    if len(expected) not in KCV_DIGITS or not _is_hex(expected):
        raise KeyCheckFailed(
            f"cannot import {name!r}: --kcv is 6 to 16 hex digits (the key encrypting zeros)"
        )
    return expected


def _shown(material: bytes, algorithm: KeyAlgorithm, expected: str) -> str:
    """A refused key's KCV as shown: its 6 digits (``kcv``), never more of the block the key
    encrypts, with "..." when the operator gave more digits than that."""
    return kcv(material, algorithm) + ("..." if len(expected) > 6 else "")


# payShield's key scheme tags (the letter before a key under a ZMK): X and Y are the X9.17
# (variant-free) form of a double- and triple-length key, U and T Thales' variant form
X917_TAGS = {"X": 32, "Y": 48}
VARIANT_TAGS = {"U": 32, "T": 48}


def _without_scheme_tag(name: str, encrypted: str) -> str:
    """The encrypted key's hex without payShield's X/Y tag; a U/T one (variant encryption,
    not supported) is refused rather than read as the X9.17 form it is not."""
    text = encrypted.strip()
    tag, rest = text[:1].upper(), text[1:]
    if X917_TAGS.get(tag) == len(rest) and _is_hex(rest):
        return rest
    if VARIANT_TAGS.get(tag) == len(rest) and _is_hex(rest):
        raise KeyCheckFailed(
            f"cannot import {name!r}: key scheme {tag} is Thales' variant encryption under the "
            "ZMK, which authhost does not support: ask for the X9.17 form (scheme X or Y) or "
            "a TR-31 key block"
        )
    wanted = X917_TAGS.get(tag) or VARIANT_TAGS.get(tag)
    if wanted and rest and _is_hex(rest):  # was "must be hex": the tag's length was wrong
        raise KeyCheckFailed(
            f"cannot import {name!r}: key scheme {tag} is followed by {wanted} hex digits, not "
            f"{len(rest)} (X and U: a double-length key, Y and T: a triple-length one)"
        )
    return text


def looks_like_legacy_key(value: str) -> bool:
    """Whether an import argument is bare hex of a DES key's length (payShield's scheme tag
    before it or not), not a TR-31 key block (one carrying a key is longer than 49
    characters: header, encrypted key and MAC)."""
    text = value.strip()
    if text[:1].upper() in X917_TAGS.keys() | VARIANT_TAGS.keys():
        text = text[1:] if len(text) in (33, 49) else text
    return len(text) in (16, 32, 48) and _is_hex(text)


def _is_hex(text: str) -> bool:
    return text.isascii() and all(c in "0123456789abcdefABCDEF" for c in text)
