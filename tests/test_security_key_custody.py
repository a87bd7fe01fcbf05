"""Key custody found wanting by a security review: what the key store accepts as a key of a
type (algorithm, length, weak material), what a TR-31 import accepts (mode of use), what a
damaged key store file does, and which acquirer may change which key.

Keys here are random test keys under a random test master key.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from authhost.security import key_admin, tr31
from authhost.security.errors import KeyCheckFailed, KeyStoreError, SecurityError, WeakKey
from authhost.security.keys import KeyAlgorithm, KeyType, adjust_des_parity, generate_material
from authhost.security.keystore import KeyStore


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore.create(tmp_path / "keys.json", secrets.token_bytes(32))


@pytest.mark.parametrize(
    ("key_type", "algorithm", "length"),
    [
        (KeyType.PAN_DATA, KeyAlgorithm.TDES, 16),  # would be used as an AES-128-GCM key
        (KeyType.PAN_HASH, KeyAlgorithm.AES, 16),
        (KeyType.CVK, KeyAlgorithm.AES, 32),  # the CVV algorithm takes a TDES pair
        (KeyType.PVK, KeyAlgorithm.HMAC, 32),
        (KeyType.ZPK, KeyAlgorithm.HMAC, 32),
        (KeyType.MAK, KeyAlgorithm.TDES, 24),  # the retail MAC refuses it on every message
        (KeyType.CVK, KeyAlgorithm.TDES, 24),
    ],
)
def test_a_key_of_the_wrong_algorithm_or_length_for_its_type_is_refused(
    store, key_type, algorithm, length
) -> None:
    with pytest.raises(WeakKey, match=key_type.value):
        key_admin.generate_key(store, "k", key_type, algorithm, length)
    assert store.entries() == []
    assert json.loads(store.path.read_text())["keys"] == []


def test_weak_tdes_keys_are_refused_from_components(store) -> None:
    half = adjust_des_parity(secrets.token_bytes(8))
    other = adjust_des_parity(secrets.token_bytes(8))
    component = secrets.token_bytes(16).hex()
    cases = {
        "K1 = K2": [(half + half).hex(), bytes(16).hex()],
        "all zeros": [component, component],  # the two custodians typed the same component
        "K2 = K3": [(other + half + half).hex(), bytes(24).hex()],
    }
    for case, components in cases.items():
        algorithm = KeyAlgorithm.TDES
        with pytest.raises(WeakKey) as raised:
            key_admin.combine_components(store, "zmk", KeyType.KEK, algorithm, components)
        assert half.hex() not in str(raised.value).lower(), case
    assert store.entries() == []
    # two-key TDES as triple length (K1 = K3) is a proper key
    key = key_admin.combine_components(
        store, "zmk", KeyType.KEK, KeyAlgorithm.TDES, [(half + other + half).hex(), bytes(24).hex()]
    )
    assert key.version == 1


def test_a_weak_key_is_refused_from_a_switch_key_change(tmp_path) -> None:
    from authhost.config import SecurityConfig
    from authhost.security.blockcipher import tdes_ecb_encrypt
    from authhost.security.module import SecurityModule

    hsm = SecurityModule.open(SecurityConfig(key_store=str(tmp_path / "k.json")), demo=True, env={})
    zmk = bytes.fromhex(hsm.demo_test_keys()["zmk"])
    half = adjust_des_parity(secrets.token_bytes(8))
    weak = half + half
    check = tdes_ecb_encrypt(weak, bytes(8)).hex()
    with pytest.raises(KeyCheckFailed):
        hsm.install_zone_pin_key("123", tdes_ecb_encrypt(zmk, weak), check)
    assert hsm.key_store.versions("zpk") == [1]


def _block(kek: bytes, usage: str, algorithm: str, mode: str, material: bytes) -> str:
    header = tr31.KeyBlockHeader(
        version="D", key_usage=usage, algorithm=algorithm, mode_of_use=mode, exportability="E"
    )
    return tr31.wrap(kek, header, material)


@pytest.mark.parametrize(
    ("usage", "algorithm", "mode", "length"),
    [
        ("P0", "T", "E", None),  # encrypt only: authhost would decrypt PIN blocks with it
        ("P0", "T", "D", None),  # decrypt only: authhost would encrypt PIN mailers with it
        ("M3", "T", "G", None),  # generate only: authhost verifies MACs with it
        ("M3", "T", "V", None),
        ("C0", "T", "V", None),
        ("V2", "T", "V", None),
        ("K0", "A", "D", 32),
        ("D0", "T", "B", None),  # a PAN data key that is not AES-256
        ("P0", "H", "B", 32),  # an HMAC key as a zone PIN key
    ],
)
def test_a_tr31_import_with_a_mode_of_use_or_algorithm_the_type_cannot_keep_is_refused(
    store, usage, algorithm, mode, length
) -> None:
    kek = key_admin.generate_key(store, "kek", KeyType.KEK)
    material = secrets.token_bytes(length) if length else adjust_des_parity(secrets.token_bytes(16))
    block = _block(kek.material, usage, algorithm, mode, material)
    with pytest.raises(SecurityError) as raised:
        key_admin.import_key(store, "imported", block, "kek")
    assert material.hex() not in str(raised.value).lower()
    assert store.versions("imported") == []


def test_a_tr31_import_with_the_modes_authhost_exports_still_works(store) -> None:
    kek = key_admin.generate_key(store, "kek", KeyType.KEK)
    for usage, mode in (("P0", "B"), ("M3", "C"), ("C0", "C"), ("V2", "N"), ("B0", "X")):
        material = adjust_des_parity(secrets.token_bytes(16))
        key = key_admin.import_key(
            store, f"k-{usage}", _block(kek.material, usage, "T", mode, material), "kek"
        )
        assert key.material == material


def test_an_acquirer_with_its_own_zone_master_key_cannot_replace_the_shared_keys(tmp_path) -> None:
    """Acquirer 444 has its own zone master key but no zone PIN key of its own: a key change
    it sends would replace the default zone PIN key (every other acquirer's) or the host's
    MAC key. Refused; with a zone PIN key of its own, that one is changed."""
    from authhost.config import SecurityConfig
    from authhost.security.blockcipher import tdes_ecb_encrypt
    from authhost.security.module import SecurityModule

    path = str(tmp_path / "k.json")
    config = SecurityConfig(key_store=path, zone_master_keys=["444=zmk-444"])
    hsm = SecurityModule.open(config, demo=True, env={})
    zmk = key_admin.generate_key(hsm.key_store, "zmk-444", KeyType.KEK, KeyAlgorithm.TDES)
    hsm.reload()

    def change(module: SecurityModule, key_type: KeyType):
        new = generate_material(KeyAlgorithm.TDES, 16)
        check = tdes_ecb_encrypt(new, bytes(8)).hex()
        encrypted = tdes_ecb_encrypt(zmk.material, new)
        return module.install_exchanged_key(key_type, "00444", encrypted, check)

    for key_type in (KeyType.ZPK, KeyType.MAK):
        with pytest.raises(KeyCheckFailed, match="shared"):
            change(hsm, key_type)
    assert hsm.key_store.versions("zpk") == [1] and hsm.key_store.versions("mak") == [1]
    assert hsm.zone_pin_key_name("555") == "zpk"

    own = SecurityConfig(key_store=path, zone_master_keys=["444=zmk-444"], zone_keys=["444=z4"])
    installed = change(SecurityModule.open(own, demo=True, env={}), KeyType.ZPK)
    assert (installed.name, installed.version) == ("z4", 1)
    # the single switch of the default set-up (no zone master key of its own) still can
    default = SecurityModule.open(SecurityConfig(key_store=path), demo=True, env={})
    zmk_default = bytes.fromhex(default.demo_test_keys()["zmk"])
    new = generate_material(KeyAlgorithm.TDES, 16)
    check = tdes_ecb_encrypt(new, bytes(8)).hex()
    key = default.install_exchanged_key(
        KeyType.MAK, "123", tdes_ecb_encrypt(zmk_default, new), check
    )
    assert (key.name, key.version) == ("mak", 2)


@pytest.mark.parametrize(
    "damage",
    ["wrapped not hex", "wrapped empty", "wrapped short", "version text", "type unknown", "none"],
)
def test_a_damaged_key_store_entry_is_a_key_store_error_when_read(store, damage) -> None:
    """Every damaged entry is reported as a KeyStoreError naming the file when the key store
    is read (not a ValueError from deep inside at the first authorisation using the key)."""
    key_admin.generate_key(store, "zpk", KeyType.ZPK)
    data = json.loads(store.path.read_text())
    entry = data["keys"][0]
    entry.update(
        {
            "wrapped not hex": {"wrapped": "zz" + entry["wrapped"][2:]},
            "wrapped empty": {"wrapped": ""},
            "wrapped short": {"wrapped": entry["wrapped"][:40]},
            "version text": {"version": "1"},
            "type unknown": {"key_type": "zzz"},
            "none": {"kcv": None},
        }[damage]
    )
    store.path.write_text(json.dumps(data))
    with pytest.raises(KeyStoreError, match="keys.json"):
        KeyStore.load(store.path, store._master).get("zpk")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("card 4761 7378 4361 2522 lost", "card 4761 73** **** 2522 lost"),
        ("4761-7378-4361-2522", "4761-73**-****-2522"),
        ("4761 7378 4361 2522 5413 3300 0000 0019", "4761 73** **** 2522 5413 33** **** 0019"),
        ("ref 12 4761 7378 4361 2522", "ref 12 4761 73** **** 2522"),
        ("4761-7378-4361-2522 5413-3300-0000-0019", "4761-73**-****-2522 5413-33**-****-0019"),
        # not card numbers: kept whole
        ("at 2026-11-28 12:00:00 amounts 100 200", "at 2026-11-28 12:00:00 amounts 100 200"),
        ("1 2 3 4 5 6 7 8 9 1 2 3 4", "1 2 3 4 5 6 7 8 9 1 2 3 4"),
        ("476173******2522 5 times", "476173******2522 5 times"),
    ],
)
def test_a_card_number_written_in_groups_is_masked_in_text(text, shown) -> None:
    """A note, a reason or an error holding a PAN as people write it (blanks or dashes
    between groups) is masked like one written whole (the admin API's rule for card numbers
    in free text: 13-19 digits passing the Luhn check)."""
    from authhost.security.masking import mask_pans_in_text

    assert mask_pans_in_text(text) == shown


def test_ibm3624_on_a_twelve_digit_pan_sets_and_verifies_a_pin(tmp_path) -> None:
    """A 12-digit PAN (an 8-digit BIN, three account digits, the check digit) has 11 digits
    before its check digit, fewer than the 12 validation digits by default: the validation
    data are the 11 (padded with F), so a PIN can be set, generated and verified, where it
    could be neither set nor ever verified (every right PIN counted wrong up to the lock)."""
    from authhost.cards.model import PinMethod
    from authhost.config import SecurityConfig
    from authhost.security import pinblock, pinverify
    from authhost.security.module import PinCheck, SecurityModule

    hsm = SecurityModule.open(SecurityConfig(key_store=str(tmp_path / "k.json")), demo=True, env={})
    zpk = bytes.fromhex(hsm.demo_test_keys()["zpk"])
    pan = "476173900012"  # 12 digits, Luhn-valid
    source = hsm.pin_source(None, None)
    block = pinblock.encrypt_pin_block(zpk, "2580", pan)
    reference = hsm.pin_reference(block, pan, source, PinMethod.IBM3624, "pvk", "1")
    check = hsm.verify_pin(block, pan, source, PinMethod.IBM3624, "pvk", "1", reference)
    assert check is PinCheck.OK
    wrong = pinblock.encrypt_pin_block(zpk, "2581", pan)
    check = hsm.verify_pin(wrong, pan, source, PinMethod.IBM3624, "pvk", "1", reference)
    assert check is PinCheck.WRONG
    # the offset is the one of the rule: 11 PAN digits, F-padded
    pvk = hsm._key("pvk", KeyType.PVK).material
    params = pinverify.Ibm3624Params(length=11)
    assert params.validation_data(pan) == bytes.fromhex("47617390001FFFFF")
    assert pinverify.ibm3624_offset(pvk, "2580", pan, params) == reference
    issued = hsm.generate_pin(pan, PinMethod.IBM3624, "pvk", "1", 6)
    assert len(issued.reference) == 6
    # longer PANs keep their 12 digits (offsets already stored stay good)
    long_pan = "4000001234567899"
    long_block = pinblock.encrypt_pin_block(zpk, "2580", long_pan)
    long_ref = hsm.pin_reference(long_block, long_pan, source, PinMethod.IBM3624, "pvk", "1")
    assert long_ref == pinverify.ibm3624_offset(pvk, "2580", long_pan, pinverify.Ibm3624Params())


@pytest.mark.parametrize(
    "text",
    [
        "account demo-acc-1 has open disputes: ['dsp-20261128-051424-174178-137']",
        "20261128-051424-174178-137",
        "ref-4761-7378-4361-2522",
    ],
)
def test_dash_joined_ids_are_not_taken_for_grouped_card_numbers(text) -> None:
    from authhost.security.masking import mask_pans_in_text

    assert mask_pans_in_text(text) == text


@pytest.mark.parametrize(
    ("kek_algorithm", "kek_length", "key_type", "algorithm", "length"),
    [
        (KeyAlgorithm.TDES, 16, KeyType.ZPK, KeyAlgorithm.AES, 16),  # 80 bits over 128
        (KeyAlgorithm.TDES, 16, KeyType.ZPK, KeyAlgorithm.TDES, 24),  # 80 over 112
        (KeyAlgorithm.TDES, 24, KeyType.PAN_DATA, KeyAlgorithm.AES, 32),  # 112 over 256
        (KeyAlgorithm.AES, 16, KeyType.KEK, KeyAlgorithm.AES, 32),  # 128 over 256
    ],
)
def test_a_key_never_crosses_under_a_weaker_kek(
    store, kek_algorithm, kek_length, key_type, algorithm, length
) -> None:
    """PCI PIN: a key is protected by a key at least as strong; under a weaker one it is only
    as safe as that one. Refused on export and on import alike, with no key in the message."""
    key_admin.generate_key(store, "weak-kek", KeyType.KEK, kek_algorithm, kek_length)
    key = key_admin.generate_key(store, "strong", key_type, algorithm, length)
    with pytest.raises(WeakKey, match="at least as strong") as raised:
        key_admin.export_key(store, "strong", "weak-kek")
    assert key.material.hex() not in str(raised.value).lower()
    # the same key arriving under the weak KEK (made here as a partner would) is not kept
    kek = store.get("weak-kek")
    usage, mode = key_admin.TR31_USAGE[key_type]
    header = tr31.KeyBlockHeader(
        version="D" if kek_algorithm is KeyAlgorithm.AES else "B",
        key_usage=usage,
        algorithm=key_admin.TR31_ALGORITHMS[algorithm],
        mode_of_use=mode,
    )
    block = tr31.wrap(kek.material, header, key.material)
    with pytest.raises(WeakKey, match="at least as strong"):
        key_admin.import_key(store, "arrived", block, "weak-kek")
    assert store.versions("arrived") == []


def test_keys_as_strong_as_their_kek_still_cross(store) -> None:
    key_admin.generate_key(store, "kek-b", KeyType.KEK, KeyAlgorithm.TDES, 16)
    key_admin.generate_key(store, "kek-d", KeyType.KEK, KeyAlgorithm.AES, 32)
    for name, key_type, algorithm, length in (
        ("zpk", KeyType.ZPK, KeyAlgorithm.TDES, 16),
        ("zpk-aes", KeyType.ZPK, KeyAlgorithm.AES, 32),
        ("pan-hash", KeyType.PAN_HASH, KeyAlgorithm.HMAC, 64),
    ):
        key = key_admin.generate_key(store, name, key_type, algorithm, length)
        kek = "kek-b" if length == 16 else "kek-d"
        block, _ = key_admin.export_key(store, name, kek)
        assert key_admin.import_key(store, f"{name}-copy", block, kek).material == key.material


def test_a_new_version_of_another_key_type_is_refused(store) -> None:
    """A name is one kind of key: a KEK block imported as a new version of "zpk" (or a PVK
    generated over it) would turn the zone PIN key into a key of another use."""
    kek = key_admin.generate_key(store, "kek", KeyType.KEK)
    key_admin.generate_key(store, "zpk", KeyType.ZPK)
    block = _block(kek.material, "K0", "A", "B", secrets.token_bytes(32))
    with pytest.raises(KeyStoreError, match="'zpk' is a zpk key"):
        key_admin.import_key(store, "zpk", block, "kek", new_version=True)
    with pytest.raises(KeyStoreError, match="needs a name of its own"):
        key_admin.generate_key(store, "zpk", KeyType.PVK, new_version=True)
    assert store.versions("zpk") == [1]
    # the same type, even another algorithm, is a new version as before
    assert key_admin.generate_key(store, "zpk", KeyType.ZPK, KeyAlgorithm.AES, 16, new_version=True)
    assert store.versions("zpk") == [1, 2]


def _exportability_block(kek: bytes, material: bytes, exportability: str) -> str:
    header = tr31.KeyBlockHeader(
        version="D", key_usage="P0", algorithm="T", mode_of_use="B", exportability=exportability
    )
    return tr31.wrap(kek, header, material)


def test_a_key_that_arrived_not_exportable_never_leaves(store) -> None:
    """TR-31 exportability N: the sender forbids the key to leave the receiving device. It
    was dropped on import, and `keys export` then sent the key on to anyone's KEK."""
    kek = key_admin.generate_key(store, "kek", KeyType.KEK)
    material = adjust_des_parity(secrets.token_bytes(16))
    key_admin.import_key(store, "zpk-n", _exportability_block(kek.material, material, "N"), "kek")
    with pytest.raises(SecurityError, match="not exportable"):
        key_admin.export_key(store, "zpk-n", "kek")
    # kept across a reload, and tamper-evident: flipping the flag in the file breaks the key
    reloaded = KeyStore.load(store.path, store._master)
    assert not reloaded.exportable("zpk-n") and reloaded.get("zpk-n").material == material
    data = json.loads(store.path.read_text())
    for item in data["keys"]:
        if item["name"] == "zpk-n":
            assert item["exportable"] is False
            del item["exportable"]
    store.path.write_text(json.dumps(data))
    with pytest.raises(KeyStoreError, match="does not decrypt"):
        KeyStore.load(store.path, store._master).get("zpk-n")


@pytest.mark.parametrize("exportability", ["E", "S"])
def test_a_key_that_arrived_exportable_may_leave(store, exportability) -> None:
    kek = key_admin.generate_key(store, "kek", KeyType.KEK)
    material = adjust_des_parity(secrets.token_bytes(16))
    block = _exportability_block(kek.material, material, exportability)
    key_admin.import_key(store, "zpk-e", block, "kek")
    block, _ = key_admin.export_key(store, "zpk-e", "kek")
    assert tr31.unwrap(kek.material, block)[1] == material
    # a file of exportable keys is written as before (no new field)
    assert "exportable" not in store.path.read_text()
