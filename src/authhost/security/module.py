"""The software security module: the one object the rest of authhost asks for cryptography.

It plays the role a payment HSM plays for an issuer. Working keys are read from the key store
(encrypted under the master key) and never leave this object; PINs are decrypted only inside a
method call and never returned; callers get references (PVV, offsets), verdicts (PinCheck,
bool), encrypted PANs and keyed hashes. Build it once at start-up with ``SecurityModule.open``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path

from authhost.cards.model import PinMethod
from authhost.config import SecurityConfig
from authhost.security import (
    cardvalues,
    cavv,
    emv,
    emv_scripts,
    key_admin,
    mac,
    pan_protection,
    pin_generation,
    pinblock,
    pinverify,
)
from authhost.security.audit_chain import AuditSeal
from authhost.security.blockcipher import tdes_ecb_decrypt
from authhost.security.dukpt import AesDukptHost, DukptError, TdesDukptHost
from authhost.security.errors import (
    KeyCheckFailed,
    KeyNotFound,
    KeyStoreError,
    MasterKeyChanged,
    SecurityError,
)
from authhost.security.hsm_master import configured_master
from authhost.security.keys import (
    KeyAlgorithm,
    KeyType,
    WorkingKey,
    check_wrapping_strength,
    generate_material,
    has_odd_parity,
    kcv,
    kcv_matches,
)
from authhost.security.keystore import (
    FORMAT_VERSION,
    KEY_MASTER,
    KeyStore,
    demo_master_path,
    file_stamp,
)

log = logging.getLogger("authhost.security")

DEFAULT_ZPK = "zpk"
DEFAULT_AES_ZPK = "zpk-aes"
DEFAULT_BDK = "bdk"
DEFAULT_AES_BDK = "bdk-aes"
PAN_HASH_KEY = "pan-hash"
PAN_DATA_KEY = "pan-data"
DEFAULT_MAC_KEY = "mak"
DEFAULT_ZMK = "zmk"  # zone master key: new zone PIN keys arrive encrypted under it

# name, type, algorithm, length: what demo mode generates
DEMO_KEYS: tuple[tuple[str, KeyType, KeyAlgorithm, int], ...] = (
    (DEFAULT_ZPK, KeyType.ZPK, KeyAlgorithm.TDES, 16),
    (DEFAULT_AES_ZPK, KeyType.ZPK, KeyAlgorithm.AES, 16),
    (DEFAULT_BDK, KeyType.BDK, KeyAlgorithm.TDES, 16),
    (DEFAULT_AES_BDK, KeyType.BDK, KeyAlgorithm.AES, 16),
    ("pvk", KeyType.PVK, KeyAlgorithm.TDES, 16),
    ("cvk", KeyType.CVK, KeyAlgorithm.TDES, 16),
    ("cavv", KeyType.CVK, KeyAlgorithm.TDES, 16),  # the ACS's 3-D Secure CAVV key pair
    ("imk-ac", KeyType.IMK_AC, KeyAlgorithm.TDES, 16),
    ("imk-smi", KeyType.IMK_SMI, KeyAlgorithm.TDES, 16),
    ("imk-smc", KeyType.IMK_SMC, KeyAlgorithm.TDES, 16),
    (DEFAULT_MAC_KEY, KeyType.MAK, KeyAlgorithm.TDES, 16),
    ("pin-mailer", KeyType.ZPK, KeyAlgorithm.TDES, 16),  # the PIN mailer printer's key
    ("kek", KeyType.KEK, KeyAlgorithm.AES, 32),
    (DEFAULT_ZMK, KeyType.KEK, KeyAlgorithm.TDES, 16),
    (PAN_HASH_KEY, KeyType.PAN_HASH, KeyAlgorithm.HMAC, 32),
    (PAN_DATA_KEY, KeyType.PAN_DATA, KeyAlgorithm.AES, 32),
)


class PinCheck(Enum):
    """Outcome of a PIN verification: the PIN matched, did not, or the block was unusable."""

    OK = "ok"
    WRONG = "wrong"
    BAD_BLOCK = "bad_block"


class PinSourceKind(StrEnum):
    ZPK = "zpk"  # PIN block under the acquirer's zone PIN key
    DUKPT_TDES = "dukpt-tdes"  # ANSI X9.24-1, KSN of 20 hex digits in field 53
    DUKPT_AES = "dukpt-aes"  # ANSI X9.24-3, KSN of 24 hex digits in field 53


@dataclass(frozen=True, slots=True)
class IssuedPin:
    """A generated PIN as it leaves the module: the reference the card keeps and the PIN block
    for the mailer printer (``repr`` hides both)."""

    reference: str = field(repr=False)
    pin_block: bytes = field(repr=False)
    block_format: pinblock.PinBlockFormat
    key_name: str
    key_kcv: str


@dataclass(frozen=True, slots=True)
class OfflinePin:
    """A new PIN for a chip's offline PIN: the block it arrived in (field 125), where from,
    and the product's keys the chip's copy is made with."""

    pin_block: bytes = field(repr=False)
    source: PinSource
    imk_ac_name: str
    imk_smc_name: str


@dataclass(frozen=True, slots=True)
class PinSource:
    """Which key protects an incoming PIN block: a zone key, or a BDK plus the KSN."""

    kind: PinSourceKind
    key_name: str
    ksn: str | None = None


@dataclass(frozen=True, slots=True)
class CardValues:
    """Card verification values for card production; ``repr`` hides them."""

    cvv: str
    cvv2: str
    icvv: str

    def __repr__(self) -> str:
        return "CardValues(cvv=***, cvv2=***, icvv=***)"

    __str__ = __repr__


# Enum members read through their class cost a descriptor call each on Python 3.11 (about
# 0.1 us); the per-authorisation paths (PAN index, CVV, PIN verify) use these aliases.
_PAN_HASH_TYPE = KeyType.PAN_HASH
_CVK_TYPE = KeyType.CVK
_PVK_TYPE = KeyType.PVK
_ZPK_TYPE = KeyType.ZPK
_VISA_PVV = PinMethod.VISA_PVV


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789ABCDEF" for ch in text)


@dataclass(slots=True)
class _KeyCache:
    """The clear working keys read from one key store, and the DUKPT hosts made from them;
    replaced whole when the store is re-read."""

    store: KeyStore
    keys: dict[tuple[str, int | None], WorkingKey] = field(default_factory=dict)
    dukpt: dict[str, TdesDukptHost | AesDukptHost] = field(default_factory=dict)


class SecurityModule:
    """Keys and payment cryptography behind one object (see the module docstring)."""

    def __init__(self, store: KeyStore, config: SecurityConfig | None = None) -> None:
        self._store = store
        self._cache = _KeyCache(store)
        # the key store file as last found under another master key (a rotation): not said
        # again, nor read again by the watch or the PAN paths, until it changes
        self._foreign: tuple[int, int, int] | None = None
        self._config = config or SecurityConfig()
        self._zones = self._zone_map(self._config.zone_keys)
        self._zone_masters = self._zone_map(self._config.zone_master_keys, "zone_master_keys")
        self._bdks = self._bdk_map(self._config.bdk_by_ksn)
        self._formats = self._format_set(self._config.pin_block_formats)
        self._ibm3624 = pinverify.Ibm3624Params(
            decimalisation=self._config.decimalisation_table,
            length=self._config.pin_validation_digits,
        )

    def __repr__(self) -> str:
        return f"SecurityModule(store={self._store!r})"

    @functools.cached_property
    def audit_seal(self) -> AuditSeal:
        """The audit log's chain key (``security.audit_chain``): the key store keeps it (an
        older file: derived from the master key a reload keeps), so this stays."""
        return self._store.audit_seal()

    # --- construction -------------------------------------------------------------------

    @classmethod
    def open(
        cls, config: SecurityConfig, demo: bool = False, env: Mapping[str, str] | None = None
    ) -> SecurityModule:
        """Open the key store under the master key; in demo mode create both if missing.

        Without a master key (environment variable or file) and outside demo mode this fails
        with MasterKeyMissing, whose message says how to provide one.
        """
        env = os.environ if env is None else env
        demo = demo or config.demo
        path = Path(config.key_store)
        master, generated = configured_master(config, path, env, demo=demo)
        if generated:
            log.warning(
                "demo mode: generated a DEMO master key in %s (not for production: set "
                "%s or security.master_key_file)",
                demo_master_path(path),
                config.master_key_env,
            )
        if path.exists():
            store = KeyStore.load(path, master)
        elif demo:
            store = KeyStore.create(path, master, demo=True)
            log.warning("demo mode: created key store %s with generated test keys", path)
        else:
            raise KeyStoreError(
                f"{path}: key store not found (create keys with `authhost keys generate`)"
            )
        if store.master_ref != KEY_MASTER:
            log.info(
                "key store %s opened under the token key %s: its store key unwrapped once, the "
                "token is not asked again while serving",
                path,
                store.master_ref,
            )
        if store.file_format != FORMAT_VERSION:
            log.warning(
                "key store %s is format %d: the master key encrypts the keys itself; "
                "`authhost keys upgrade` rewrites it in format %d (the next key change does too)",
                path,
                store.file_format,
                FORMAT_VERSION,
            )
        if demo and store.demo:
            ensure_demo_keys(store)
        return cls(store, config)

    @staticmethod
    def _zone_map(entries: list[str], setting: str = "zone_keys") -> dict[str, str]:
        zones = {}
        for entry in entries:
            acquirer, sep, name = entry.partition("=")
            if not sep or not acquirer.strip() or not name.strip():
                raise SecurityError(
                    f"security.{setting} entry {entry!r} is not 'acquirer_id=key_name'"
                )
            zones[acquirer.strip().lstrip("0")] = name.strip()
        return zones

    @staticmethod
    def _format_set(entries: list[str]) -> frozenset[int]:
        try:
            formats = frozenset(int(pinblock.PinBlockFormat(int(f))) for f in entries)
        except ValueError:
            raise SecurityError(
                f"security.pin_block_formats {entries!r}: formats are 0, 1, 3 and 4"
            ) from None
        return formats

    @staticmethod
    def _bdk_map(entries: list[str]) -> list[tuple[str, str]]:
        """(KSN prefix, BDK name) pairs, longest prefix first."""
        pairs = []
        for entry in entries:
            prefix, sep, name = entry.partition("=")
            prefix = prefix.strip().upper()
            if not sep or not prefix or not _is_hex(prefix) or not name.strip():
                raise SecurityError(
                    f"security.bdk_by_ksn entry {entry!r} is not 'hex_prefix=key_name'"
                )
            pairs.append((prefix, name.strip()))
        return sorted(pairs, key=lambda pair: -len(pair[0]))

    def _bdk_for(self, ksn: str, default: str) -> str:
        for prefix, name in self._bdks:
            if ksn.startswith(prefix):
                return name
        return default

    @property
    def key_store(self) -> KeyStore:
        return self._store

    def has_key(self, name: str, key_type: KeyType) -> bool:
        """Whether the key store holds a key of this name and type (nothing is decrypted)."""
        return any(e.name == name and e.key_type == key_type for e in self._store.entries())

    def key_store_changed(self) -> bool:
        """Whether the key store file changed since it was read, to something not already
        found under another master key."""
        return self._store.changed_on_disk() and file_stamp(self._store.path) != self._foreign

    def reload(self) -> None:
        """Re-read the key store (after a rotation or import by another process).

        MasterKeyChanged when the file is now under another master key: the keys in hand
        stay, and the first time for that file one ERROR line says to restart with it."""
        stamp = file_stamp(self._store.path)
        try:
            store = self._store.reopen()
        except MasterKeyChanged as exc:
            if stamp != self._foreign:
                self._foreign = stamp
                log.error("%s", exc)
            raise
        # one assignment: a key lookup running meanwhile (reloads run in a worker thread)
        # finishes on the old cache, which is then dropped, and never leaves an old key in
        # the new one
        self._cache = _KeyCache(store)
        self._store = store

    def _reload_if_readable(self) -> None:
        """Reload, keeping the keys in hand when the file is now under another master key
        (``reload`` said so): the PAN keys this process has are still the installation's."""
        with contextlib.suppress(MasterKeyChanged):
            self.reload()

    # --- keys -----------------------------------------------------------------------------

    def _key(self, name: str, key_type: KeyType, version: int | None = None) -> WorkingKey:
        cache = self._cache
        cached = cache.keys.get((name, version))
        if cached is None:
            try:
                cached = cache.store.get(name, version)
            except KeyNotFound as exc:  # the way out: a new installation meets these one by one
                if version is not None or cache.store.versions(name):
                    raise
                raise KeyNotFound(
                    f"{exc}: generate it (authhost keys generate {name} --type {key_type}) "
                    "or import it (authhost keys import); docs/security.md lists the keys"
                ) from None
            cache.keys[(name, version)] = cached
        if cached.key_type is not key_type:
            raise KeyNotFound(f"key {name!r} is a {cached.key_type} key, not a {key_type} key")
        return cached

    def demo_test_keys(self) -> dict[str, str]:
        """Clear test zone keys and BDKs (hex) for the demo export; refused for a real store.

        Names: "zpk" (TDES, formats 0/3), "zpk-aes" (format 4), "bdk" (TDES DUKPT),
        "bdk-aes" (AES DUKPT) and "mak" (the MAC key a switch signs fields 64/128 with).
        """
        if not self._store.demo:
            raise SecurityError("test keys are only exported from a demo key store")
        return {
            name: self._key(name, key_type).material.hex().upper()
            for name, key_type in (
                (DEFAULT_ZPK, KeyType.ZPK),
                (DEFAULT_AES_ZPK, KeyType.ZPK),
                (DEFAULT_BDK, KeyType.BDK),
                (DEFAULT_AES_BDK, KeyType.BDK),
                (DEFAULT_MAC_KEY, KeyType.MAK),
                ("imk-ac", KeyType.IMK_AC),  # the simulator's chip cards make ARQCs with it
                ("imk-smi", KeyType.IMK_SMI),  # and check the issuer scripts' MACs with it
                ("imk-smc", KeyType.IMK_SMC),  # and read a new offline PIN with it
                (DEFAULT_ZMK, KeyType.KEK),  # the simulator sends new zone PIN keys under it
                ("pin-mailer", KeyType.ZPK),  # generated PINs are sent to the printer under it
                ("cavv", KeyType.CVK),  # the simulator's ACS makes 3-D Secure CAVVs with it
            )
        }

    # --- PAN protection -------------------------------------------------------------------

    def pan_index(self, pan: str) -> str:
        """HMAC-SHA-256 of the PAN under the PAN hash key, hex: the store's card index."""
        return pan_protection.pan_index(self._key(PAN_HASH_KEY, _PAN_HASH_TYPE).material, pan)

    def address_ref(self, part: str, value: str) -> str:
        """A keyed hash of one normalised part of a billing address (``part``: "postcode" or
        "street"), hex: what a card keeps for address verification instead of the address.
        Under the PAN hash key, apart from PANs by its own prefix; "" for an empty value."""
        if not value:
            return ""
        key = self._key(PAN_HASH_KEY, _PAN_HASH_TYPE).material
        return hmac.new(key, f"avs:{part}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def encrypt_pan(self, pan: str, card_id: str) -> bytes:
        """The PAN under the newest PAN data key, bound to the card id. The key store is read
        again first if another process changed it (a rotation, or a retirement that must
        never see a new PAN sealed under the version it destroyed)."""
        if self.key_store_changed():
            self._reload_if_readable()
        key = self._key(PAN_DATA_KEY, KeyType.PAN_DATA)
        return pan_protection.seal_pan(key.material, key.version, pan, card_id)

    def decrypt_pan(self, blob: bytes, card_id: str) -> str:
        """The PAN of a blob from ``encrypt_pan`` under whichever key version sealed it."""
        try:
            version = pan_protection.blob_version(blob)
            if version not in self._store.versions(PAN_DATA_KEY):
                self._reload_if_readable()  # rotated by another process since we started
            key = self._key(PAN_DATA_KEY, KeyType.PAN_DATA, version)
            return pan_protection.open_pan(key.material, blob, card_id)
        except pan_protection.PanProtectionError as exc:
            raise SecurityError(str(exc)) from None

    def rotate_pan_key(self) -> WorkingKey:
        """Add a new PAN data key version; new PANs use it, old blobs still decrypt."""
        key = key_admin.rotate_pan_key(self._store)
        self._cache = _KeyCache(self._store)
        return key

    def pan_key_version(self) -> int:
        """The PAN data key version new PANs are sealed under."""
        if self.key_store_changed():
            self._reload_if_readable()  # rotated by another process since we started
        return self._key(PAN_DATA_KEY, KeyType.PAN_DATA).version

    def pan_blob_version(self, blob: bytes) -> int:
        """The PAN data key version a stored PAN was sealed under."""
        try:
            return pan_protection.blob_version(blob)
        except pan_protection.PanProtectionError as exc:
            raise SecurityError(str(exc)) from None

    def reseal_pan(self, blob: bytes, card_id: str) -> bytes | None:
        """The PAN of ``blob`` sealed under the newest PAN data key, or None when it is sealed
        under it already. The PAN never leaves this method."""
        if self.pan_blob_version(blob) == self.pan_key_version():
            return None
        return self.encrypt_pan(self.decrypt_pan(blob, card_id), card_id)

    def retire_pan_key(self, version: int) -> None:
        """Destroy an old PAN data key version (no stored PAN may still need it: the caller
        checks). The newest version cannot be retired."""
        self._store.retire(PAN_DATA_KEY, version)  # SecurityError: unknown, or the newest
        self._cache = _KeyCache(self._store)

    # --- card verification values -----------------------------------------------------------

    def card_values(
        self, pan: str, expiry_yymm: str, service_code: str, cvk_name: str
    ) -> CardValues:
        """CVV (track, the card's service code), CVV2 (000) and iCVV (999) for production."""
        cvk = self._key(cvk_name, KeyType.CVK).material
        return CardValues(
            cvv=cardvalues.visa_cvv(cvk, pan, expiry_yymm, service_code),
            cvv2=cardvalues.visa_cvv(cvk, pan, expiry_yymm, cardvalues.CVV2_SERVICE_CODE),
            icvv=cardvalues.visa_cvv(cvk, pan, expiry_yymm, cardvalues.ICVV_SERVICE_CODE),
        )

    def verify_card_value(
        self, pan: str, expiry: str, service_code: str, value: str, cvk_name: str
    ) -> bool:
        """True when ``value`` is the CVV for this PAN, expiry (YYMM) and service code."""
        cvk = self._key(cvk_name, _CVK_TYPE).material
        try:
            expected = cardvalues.visa_cvv(cvk, pan, expiry, service_code)
        except cardvalues.CardValueError:
            return False
        return hmac.compare_digest(expected.encode(), (value or "").strip().encode())

    def check_cavv(self, pan: str, value: str, cavv_key_name: str) -> cavv.CavvCheck:
        """The CAVV results code (``cavv.CAVV_RESULTS``) for the 3-D Secure authentication
        value of an e-commerce request, checked under the product's CAVV key pair, and the
        authentication tracking number of one that passed."""
        key_pair = self._key(cavv_key_name, _CVK_TYPE).material
        return cavv.check_cavv(key_pair, pan, value)

    # --- chip cryptograms ------------------------------------------------------------------

    def check_arqc(
        self, pan: str, psn: str, tags: Mapping[str, bytes], imk_ac_name: str, cvn: int
    ) -> emv.Cryptogram:
        """The card's ARQC (field 55's ``tags``) checked under the product's IMK-AC; the
        result makes the ARPC of the answer. Raises ``emv.ChipDataError`` on unusable data."""
        imk = self._key(imk_ac_name, KeyType.IMK_AC).material
        return emv.check_arqc(imk, pan, psn, dict(tags), cvn)

    def issuer_script(
        self,
        pan: str,
        psn: str,
        cvn: int,
        atc: bytes,
        arqc: bytes,
        commands: Sequence[emv_scripts.ScriptCommand],
        imk_smi_name: str,
        new_pin: OfflinePin | None = None,
    ) -> bytes:
        """Field 55's issuer script template (tag 72) of ``commands`` for the card that sent
        ``arqc`` with counter ``atc``, MACed under the product's IMK-SMI; a PIN CHANGE carries
        ``new_pin``'s PIN, taken out of its PIN block and enciphered for the chip inside this
        method. Raises ``emv.ChipDataError`` on unusable data, ``SecurityError`` on a PIN block
        that does not decrypt."""
        imk = self._key(imk_smi_name, KeyType.IMK_SMI).material
        pin_data = b""
        if new_pin is not None:
            try:
                pin = self._clear_pin(new_pin.pin_block, pan, new_pin.source)
            except pinblock.PinBlockError as exc:
                raise SecurityError(f"cannot read the new PIN: {exc}") from None
            imk_ac = self._key(new_pin.imk_ac_name, KeyType.IMK_AC).material
            imk_smc = self._key(new_pin.imk_smc_name, KeyType.IMK_SMC).material
            block = emv_scripts.offline_pin_block(pin, cvn, imk_ac, pan, psn)
            session = emv_scripts.sm_session_key(imk_smc, pan, psn, cvn, atc, arqc)
            pin_data = emv_scripts.encipher_command_data(session, block, cvn)
        return emv_scripts.issuer_script(imk, pan, psn, cvn, atc, arqc, commands, pin_data)

    # --- PINs -----------------------------------------------------------------------------

    def pin_source(self, security_control: str | None, acquirer_id: str | None) -> PinSource:
        """DUKPT when field 53 holds a KSN (20 hex TDES, 24 hex AES), else the zone key.

        The BDK is the one configured for the KSN's longest matching prefix
        (``security.bdk_by_ksn``: a KSN starts with the key set id), else "bdk" / "bdk-aes".
        """
        ksn = (security_control or "").strip().upper()
        if len(ksn) == 20 and _is_hex(ksn):
            return PinSource(PinSourceKind.DUKPT_TDES, self._bdk_for(ksn, DEFAULT_BDK), ksn)
        if len(ksn) == 24 and _is_hex(ksn):
            return PinSource(PinSourceKind.DUKPT_AES, self._bdk_for(ksn, DEFAULT_AES_BDK), ksn)
        return PinSource(PinSourceKind.ZPK, self.zone_pin_key_name(acquirer_id))

    def zone_pin_key_name(self, acquirer_id: str | None) -> str:
        """The zone PIN key an acquirer's PIN blocks are read with (``security.zone_keys``)."""
        return self._zones.get((acquirer_id or "").strip().lstrip("0"), DEFAULT_ZPK)

    def install_zone_pin_key(
        self, acquirer_id: str | None, encrypted_key: bytes, check_value: str
    ) -> WorkingKey:
        """A switch's dynamic key exchange: the acquirer's new zone PIN key, sent encrypted
        under its zone master key (``security.zone_master_keys``, else "zmk"; TDES ECB), is
        decrypted here, checked against its check value and its DES parity, and saved as the
        next version of the acquirer's zone PIN key, which its PIN blocks are read with from
        now on. Returns the installed key (its repr shows name, version and KCV only).
        KeyNotFound: no zone master key; KeyCheckFailed: not the key the sender meant, or a
        key this zone has had before (a replayed key change)."""
        return self.install_exchanged_key(KeyType.ZPK, acquirer_id, encrypted_key, check_value)

    def install_exchanged_key(
        self,
        key_type: KeyType,
        acquirer_id: str | None,
        encrypted_key: bytes,
        check_value: str,
        mac_key: str = DEFAULT_MAC_KEY,
    ) -> WorkingKey:
        """``install_zone_pin_key`` for a zone PIN key (ZPK) or the MAC key of fields 64/128
        (MAK: ``mac_key``, the one of the link the change came on): the MACs of both
        directions are made and checked with the new version from now on, and, for
        ``security.zone_key_overlap_s``, a message still MACed under the version before is
        accepted (it was on its way when the switch changed keys)."""
        acquirer = (acquirer_id or "").strip().lstrip("0")
        if key_type is KeyType.ZPK:
            name = self.zone_pin_key_name(acquirer)
        elif key_type is KeyType.MAK:
            name = mac_key
        else:
            raise KeyNotFound(f"a switch does not change {key_type} keys")
        zmk = self._key(self._zone_masters.get(acquirer, DEFAULT_ZMK), KeyType.KEK)
        if zmk.algorithm is not KeyAlgorithm.TDES:
            raise KeyNotFound(f"zone master key {zmk.name!r} is not a TDES key")
        if acquirer in self._zone_masters and (
            key_type is KeyType.MAK or acquirer not in self._zones
        ):
            # an acquirer with a zone master key of its own is a zone of its own: the key it
            # would change here (the default zone PIN key, the host's MAC key) is the other
            # acquirers' too, and one of them must not replace the others' keys
            raise KeyCheckFailed(
                f"acquirer {acquirer} has its own zone master key but {name!r} is shared with "
                "other acquirers: give it its own zone PIN key (security.zone_keys); the MAC "
                "key is changed by an operator"
            )
        if len(encrypted_key) not in (16, 24):
            raise KeyCheckFailed(f"a {key_type} key is 16 or 24 bytes")
        # a triple-length key under a double-length zone master key: WeakKey
        check_wrapping_strength(name, KeyAlgorithm.TDES, len(encrypted_key), zmk)
        if len(check_value) < 6:  # fewer digits would let almost any key through
            raise KeyCheckFailed("a key change needs at least 6 digits of check value")
        material = tdes_ecb_decrypt(zmk.material, encrypted_key, keep=False)
        tdes = KeyAlgorithm.TDES  # the checks a key imported under a ZMK has too (key_admin)
        if not has_odd_parity(material) or not kcv_matches(material, tdes, check_value):
            raise KeyCheckFailed(f"the new key for {name!r} does not match its check value")
        if self._store.had_kcv(name, kcv(material, tdes)):
            # a captured key change sent again would roll the zone back to an old key
            raise KeyCheckFailed(f"the new key for {name!r} was used before")
        key = self._store.add_version(name, key_type, KeyAlgorithm.TDES, material)
        self._cache = _KeyCache(self._store)  # PIN blocks are read with the new version now
        return key

    def _incoming_key(self, source: PinSource) -> tuple[bytes, KeyAlgorithm]:
        """The key a PIN block from ``source`` is read with, and its algorithm."""
        if source.kind is PinSourceKind.ZPK:
            zpk = self._key(source.key_name, _ZPK_TYPE)
            return zpk.material, zpk.algorithm
        dukpt = self._cache.dukpt
        host = dukpt.get(source.key_name)
        if host is None:
            bdk = self._key(source.key_name, KeyType.BDK)
            if source.kind is PinSourceKind.DUKPT_TDES:
                if bdk.algorithm is not KeyAlgorithm.TDES:
                    raise KeyNotFound(f"key {source.key_name!r} is not a TDES BDK")
                host = TdesDukptHost(bdk.material)
            else:
                if bdk.algorithm is not KeyAlgorithm.AES:
                    raise KeyNotFound(f"key {source.key_name!r} is not an AES BDK")
                host = AesDukptHost(bdk.material)
            dukpt[source.key_name] = host
        tdes = source.kind is PinSourceKind.DUKPT_TDES
        return host.pin_key(source.ksn or ""), KeyAlgorithm.TDES if tdes else KeyAlgorithm.AES

    def _clear_pin(self, pin_block: bytes, pan: str, source: PinSource) -> str:
        """The PIN inside the block (only ever held inside this module's methods)."""
        try:
            key, algorithm = self._incoming_key(source)
        except DukptError as exc:
            raise pinblock.PinBlockError(str(exc)) from None
        block = bytes(pin_block)
        try:
            _check_block_algorithm(block, algorithm)
            return pinblock.decrypt_pin_block(key, block, pan, accept=self._formats)
        except pinblock.PinBlockError:
            previous = self._previous_zone_key(source)
            if previous is None:
                raise
            _check_block_algorithm(block, previous.algorithm)
            return pinblock.decrypt_pin_block(previous.material, block, pan, accept=self._formats)

    def _previous_zone_key(self, source: PinSource) -> WorkingKey | None:
        """The zone PIN key version before the newest, while the newest is younger than
        ``security.zone_key_overlap_s``: PIN blocks a terminal encrypted before its switch
        changed keys are still on their way for a moment after the 0810. Asked only for a
        block that is not a PIN block under the newest key (a block of formats 0, 3 or 4
        decrypted under the wrong key all but never is one), so a PIN is never tried twice."""
        if source.kind is not PinSourceKind.ZPK:
            return None
        return self._version_before(source.key_name, _ZPK_TYPE)

    def _version_before(self, name: str, key_type: KeyType) -> WorkingKey | None:
        """The version of a key before its newest, while the newest is younger than
        ``security.zone_key_overlap_s``; None otherwise."""
        overlap = self._config.zone_key_overlap_s
        if overlap <= 0:
            return None
        versions = self._store.versions(name)
        if len(versions) < 2:
            return None
        if time.time() - self._store.created_at(name, versions[-1]) > overlap:
            return None
        return self._key(name, key_type, versions[-2])

    def _ibm3624_params(self, pan: str) -> pinverify.Ibm3624Params:
        """The IBM 3624 parameters for a PAN: validation data are the rightmost
        ``security.pin_validation_digits`` PAN digits excluding the check digit, or all of
        them when the PAN has fewer (a 12-digit PAN gives 11), padded with F. Without this a
        short PAN could neither have a PIN set nor ever verify one (every right PIN counted as
        wrong up to the lock)."""
        params = self._ibm3624
        available = len(pan) - 1
        if available >= params.length or available < 1:
            return params
        return dataclasses.replace(params, length=available)

    def _reference_of(self, pin: str, pan: str, method: PinMethod, pvk_name: str, pvki: str) -> str:
        pvk = self._key(pvk_name, KeyType.PVK).material
        if PinMethod(method) is PinMethod.VISA_PVV:
            return pinverify.visa_pvv(pvk, pvki, pin, pan)
        return pinverify.ibm3624_offset(pvk, pin, pan, self._ibm3624_params(pan))

    def pin_reference(
        self,
        pin_block: bytes,
        pan: str,
        source: PinSource,
        method: PinMethod,
        pvk_name: str,
        pvki: str,
    ) -> str:
        """The PVV or IBM 3624 offset for the PIN in the block (PIN set/reset).

        Raises SecurityError when the block does not decrypt or the PIN does not suit the
        method (Visa PVV needs 4 digits).
        """
        try:
            pin = self._clear_pin(pin_block, pan, source)
            return self._reference_of(pin, pan, method, pvk_name, pvki)
        except (pinblock.PinBlockError, pinverify.PinVerificationError) as exc:
            raise SecurityError(f"cannot set the PIN: {exc}") from None

    def generate_pin(
        self, pan: str, method: PinMethod, pvk_name: str, pvki: str, length: int = 4
    ) -> IssuedPin:
        """A random PIN for the card (``pin_generation``): its PVV or IBM 3624 offset to store,
        and the PIN encrypted for the PIN mailer printer under ``security.pin_mailer_key`` (ISO
        format 0 under a TDES key, format 4 under an AES key). The clear PIN never leaves this
        method. KeyNotFound when the mailer key or the product's PVK is missing."""
        key = self._key(self._config.pin_mailer_key, _ZPK_TYPE)
        iso0, iso4 = pinblock.PinBlockFormat.ISO0, pinblock.PinBlockFormat.ISO4
        fmt = iso4 if key.algorithm is KeyAlgorithm.AES else iso0
        length = 4 if PinMethod(method) is PinMethod.VISA_PVV else length  # a PVV holds 4
        pin = pin_generation.random_pin(length)
        try:
            reference = self._reference_of(pin, pan, method, pvk_name, pvki)
            block = pinblock.encrypt_pin_block(key.material, pin, pan, fmt)
        except (pinblock.PinBlockError, pinverify.PinVerificationError) as exc:
            raise SecurityError(f"cannot generate a PIN: {exc}") from None
        finally:
            del pin
        return IssuedPin(reference, block, fmt, key.name, key.kcv)

    def verify_pin(
        self,
        pin_block: bytes,
        pan: str,
        source: PinSource,
        method: PinMethod,
        pvk_name: str,
        pvki: str,
        reference: str,
    ) -> PinCheck:
        """Decrypt the block under its source key and check the PIN against the reference.

        BAD_BLOCK for a block that does not decrypt to a valid PIN block (wrong key, tampered,
        bad KSN); a missing key raises KeyNotFound (a configuration error, not the customer's).
        """
        try:
            pin = self._clear_pin(pin_block, pan, source)
        except pinblock.PinBlockError:
            return PinCheck.BAD_BLOCK
        ok = self._pin_matches(pin, pan, method, pvk_name, pvki, reference)
        return PinCheck.OK if ok else PinCheck.WRONG

    def _pin_matches(
        self, pin: str, pan: str, method: PinMethod, pvk_name: str, pvki: str, reference: str
    ) -> bool:
        pvk = self._key(pvk_name, _PVK_TYPE).material
        try:
            if method is _VISA_PVV or PinMethod(method) is _VISA_PVV:
                return pinverify.visa_pvv_verify(pvk, pvki, pin, pan, reference or "")
            params = self._ibm3624_params(pan)
            return pinverify.ibm3624_verify(pvk, pin, pan, reference or "", params)
        except pinverify.PinVerificationError:
            return False

    def demo_pin_matches(
        self, pin: str, pan: str, method: PinMethod, pvk_name: str, pvki: str, reference: str
    ) -> bool:
        """Whether a demo card's clear test PIN (from the demo card file) is the card's PIN
        now, by its PVV or IBM 3624 offset: the demo export keeps a PIN changed over the wire
        instead of writing the original back. Refused for a real key store, as
        ``demo_test_keys`` is: a clear PIN is taken from nowhere else."""
        if not self._store.demo:
            raise SecurityError("clear PINs are only checked for a demo key store")
        return self._pin_matches(pin, pan, method, pvk_name, pvki, reference)

    def translate_pin(
        self,
        pin_block: bytes,
        pan: str,
        source: PinSource,
        out_key_name: str,
        out_format: pinblock.PinBlockFormat = pinblock.PinBlockFormat.ISO0,
    ) -> bytes:
        """Re-encrypt a PIN block from its source key to another zone key (and format).

        The PIN is checked on the way (a bad block raises SecurityError) and never returned.
        Format 1 is never written: it binds no PAN, and ISO 9564-1 forbids translating a
        PAN-bound block (formats 0, 3, 4: all authhost reads by default) into it.
        """
        out_key = self._key(out_key_name, KeyType.ZPK)
        try:
            if pinblock.PinBlockFormat(out_format) is pinblock.PinBlockFormat.ISO1:
                raise pinblock.PinBlockError("format 1 binds no PAN: no block is translated to it")
            _check_format_algorithm(pinblock.PinBlockFormat(out_format), out_key.algorithm)
            pin = self._clear_pin(pin_block, pan, source)
            return pinblock.encrypt_pin_block(out_key.material, pin, pan, out_format)
        except pinblock.PinBlockError as exc:
            raise SecurityError(f"cannot translate the PIN block: {exc}") from None

    # --- message authentication -------------------------------------------------------------

    def check_mac_key(self, key_name: str) -> None:
        """KeyNotFound (saying how to make it) unless the key store holds ``key_name`` as a
        MAC key: checked at start-up for each listener that requires MACs, so that a missing
        key stops the start instead of failing every message of the link."""
        self._key(key_name, KeyType.MAK)

    def mac_message(self, body_without_mac: bytes, key_name: str = DEFAULT_MAC_KEY) -> bytes:
        """The 8-byte ISO 9797-1 algorithm 3 MAC for field 64/128 of a message body."""
        return mac.retail_mac(self._key(key_name, KeyType.MAK).material, body_without_mac)

    def verify_mac(
        self, body_without_mac: bytes, received: bytes, key_name: str = DEFAULT_MAC_KEY
    ) -> bool:
        """Whether ``received`` is the message's MAC under the key's newest version, or under
        the version before while the newest is younger than ``security.zone_key_overlap_s``
        (a message MACed just before the switch changed keys)."""
        if hmac.compare_digest(self.mac_message(body_without_mac, key_name), bytes(received)):
            return True
        previous = self._version_before(key_name, KeyType.MAK)
        if previous is None:
            return False
        expected = mac.retail_mac(previous.material, body_without_mac)
        return hmac.compare_digest(expected, bytes(received))


def _check_format_algorithm(fmt: pinblock.PinBlockFormat, algorithm: KeyAlgorithm) -> None:
    """Formats 0, 1 and 3 are TDES blocks, format 4 an AES one (ISO 9564-1). An AES-128 and
    a double-length TDES key are both 16 bytes, so the length of the key cannot tell: without
    this a zone's AES key would encrypt or decrypt TDES blocks (and a TDES key AES ones), one
    key used under two algorithms, which PCI PIN forbids."""
    wanted = KeyAlgorithm.AES if fmt is pinblock.PinBlockFormat.ISO4 else KeyAlgorithm.TDES
    if algorithm is not wanted:
        raise pinblock.PinBlockError(
            f"PIN block format {int(fmt)} is {wanted.value}, and the key is {algorithm.value}"
        )


def _check_block_algorithm(block: bytes, algorithm: KeyAlgorithm) -> None:
    """An incoming block's length says its algorithm: 8 bytes TDES, 16 bytes AES (format 4);
    a block of the other algorithm than its key's is refused before it is decrypted."""
    if len(block) == 8:
        _check_format_algorithm(pinblock.PinBlockFormat.ISO0, algorithm)
    elif len(block) == 16:
        _check_format_algorithm(pinblock.PinBlockFormat.ISO4, algorithm)


def ensure_demo_keys(store: KeyStore) -> None:
    """Add any missing demo key (random test keys) to a demo key store."""
    present = {entry.name for entry in store.entries()}
    for name, key_type, algorithm, length in DEMO_KEYS:
        if name not in present:
            material = generate_material(algorithm, length)
            store.put(WorkingKey(name, key_type, algorithm, material))


__all__ = [
    "CardValues",
    "KeyNotFound",
    "PinCheck",
    "PinSource",
    "PinSourceKind",
    "SecurityError",
    "SecurityModule",
]
