"""Cross-checks against independent implementations (psec, pyemv) on random keys/PANs/PINs.

psec and pyemv are test-only oracles: authhost never imports them at run time.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.security import cardvalues, emv, emv_scripts, mac, pinblock, pinverify
from authhost.security.keys import KeyAlgorithm, kcv
from authhost.security.pinblock import PinBlockFormat

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import psec
    import pyemv

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
]

TEST_BINS = ("400000", "541333", "476173")
MANY = settings(max_examples=400, deadline=None)  # ~4,000 random cases in all


def luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return body + str((10 - total % 10) % 10)


@st.composite
def pans(draw) -> str:
    length = draw(st.integers(min_value=13, max_value=19))
    bin_ = draw(st.sampled_from(TEST_BINS))
    body = draw(st.text("0123456789", min_size=length - 7, max_size=length - 7))
    return luhn_complete(bin_ + body)


pins = st.text("0123456789", min_size=4, max_size=12)
pins4 = st.text("0123456789", min_size=4, max_size=4)
tdes_keys = st.binary(min_size=16, max_size=16)
aes_keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@MANY
@given(pin=pins, pan=pans())
def test_format0_matches_psec(pin: str, pan: str) -> None:
    block = pinblock.encode(pin, pan, PinBlockFormat.ISO0)
    assert block == psec.pinblock.encode_pinblock_iso_0(pin, pan)
    assert pinblock.decode(block, pan) == pin


@MANY
@given(pin=pins, pan=pans())
def test_format3_decodes_psec_and_psec_decodes_ours(pin: str, pan: str) -> None:
    theirs = psec.pinblock.encode_pinblock_iso_3(pin, pan)
    assert pinblock.decode(theirs, pan, PinBlockFormat.ISO3) == pin
    ours = pinblock.encode(pin, pan, PinBlockFormat.ISO3)
    assert psec.pinblock.decode_pinblock_iso_3(ours, pan) == pin


@settings(max_examples=300, deadline=None)
@given(key=aes_keys, pin=pins, pan=pans())
def test_format4_round_trips_with_psec(key: bytes, pin: str, pan: str) -> None:
    theirs = psec.pinblock.encipher_pinblock_iso_4(key, pin, pan)
    assert pinblock.decrypt_pin_block(key, theirs, pan) == pin
    ours = pinblock.encrypt_pin_block(key, pin, pan, PinBlockFormat.ISO4)
    assert psec.pinblock.decipher_pinblock_iso_4(key, ours, pan) == pin


@settings(max_examples=300, deadline=None)
@given(key=tdes_keys, pin=pins, pan=pans(), fmt=st.sampled_from([0, 1, 3]))
def test_encrypted_tdes_blocks_decrypt_with_psec(key, pin, pan, fmt) -> None:
    block = pinblock.encrypt_pin_block(key, pin, pan, PinBlockFormat(fmt))
    clear = psec.des.decrypt_tdes_ecb(key, block)
    if fmt == 0:
        assert psec.pinblock.decode_pinblock_iso_0(clear, pan) == pin
    elif fmt == 3:
        assert psec.pinblock.decode_pinblock_iso_3(clear, pan) == pin
    assert pinblock.decrypt_pin_block(key, block, pan) == pin


@MANY
@given(pvk=tdes_keys, pvki=st.sampled_from("0123456789"), pin=pins4, pan=pans())
def test_visa_pvv_matches_psec(pvk, pvki, pin, pan) -> None:
    assert pinverify.visa_pvv(pvk, pvki, pin, pan) == psec.pin.generate_visa_pvv(
        pvk, pvki, pin, pan
    )


@MANY
@given(
    pvk=tdes_keys,
    pin=pins,
    pan=pans(),
    table=st.text("0123456789", min_size=16, max_size=16),
)
def test_ibm3624_offset_matches_psec(pvk, pin, pan, table) -> None:
    params = pinverify.Ibm3624Params(decimalisation=table)  # rightmost 12 excl. check digit
    ours = pinverify.ibm3624_offset(pvk, pin, pan, params)
    theirs = psec.pin.generate_ibm3624_offset(pvk, table, pin, pan, len(pan) - 13, 12, "F")
    assert ours == theirs
    natural = psec.pin.generate_ibm3624_pin(pvk, table, ours, pan, len(pan) - 13, 12, "F")
    assert natural == pin


@MANY
@given(
    cvk=tdes_keys,
    pan=pans(),
    expiry=st.text("0123456789", min_size=4, max_size=4),
    service_code=st.text("0123456789", min_size=3, max_size=3),
)
def test_cvv_matches_psec(cvk, pan, expiry, service_code) -> None:
    ours = cardvalues.visa_cvv(cvk, pan, expiry, service_code)
    theirs = psec.cvv.generate_cvv(cvk, pan, expiry, service_code)
    if len(theirs) < 3:  # psec stops when the block has under 3 digits (about 1 in 20,000)
        assert len(ours) == 3 and ours.startswith(theirs)
    else:
        assert ours == theirs


def test_cvv_of_a_block_with_one_digit_takes_the_rest_from_the_letters() -> None:
    """The result block DDDBAFCEE4DADCAE has one decimal digit (4): the Visa method takes the
    other two from the letters, A-F as 0-5, in order (D, D -> 3, 3). psec returns "4" here."""
    cvk = bytes.fromhex("C2C93CEFB1AD506632320879386582B8")
    assert cardvalues.visa_cvv(cvk, "4999988887777000", "2912", "101") == "433"


@MANY
@given(key=tdes_keys, data=st.binary(max_size=300), padding=st.sampled_from([1, 2]))
def test_retail_mac_matches_pyemv_and_psec(key, data, padding) -> None:
    ours = mac.retail_mac(key, data, padding)
    assert ours == pyemv.mac.mac_iso9797_3(key[:8], key[8:], data, padding)
    assert ours == psec.mac.generate_retail_mac(key[:8], key[8:], data, padding)


@MANY
@given(key=tdes_keys)
def test_tdes_kcv_matches_psec(key) -> None:
    assert kcv(key, KeyAlgorithm.TDES) == psec.des.generate_kcv(key, 3).hex().upper()


# --- EMV chip cryptograms (security/emv.py) against pyemv's Visa CVN classes ----------------

psns = st.text("0123456789", min_size=2, max_size=2)
_CDOL_SIZES = {"9F02": 6, "9F03": 6, "9F1A": 2, "95": 5, "5F2A": 2, "9A": 3, "9C": 1,
               "9F37": 4, "82": 2, "9F36": 2}  # fmt: skip
cdol = st.fixed_dictionaries(
    {tag: st.binary(min_size=size, max_size=size) for tag, size in _CDOL_SIZES.items()}
)


PYEMV_CARDS = {10: "VisaCVN10", 16: "MasterCardCVN16", 17: "MasterCardCVN17", 18: "VisaCVN18",
               20: "MasterCardCVN20", 21: "MasterCardCVN21", 22: "VisaCVN22"}  # fmt: skip


def pyemv_card(cvn: int, imk: bytes, pan: str, psn: str):
    cls = getattr(pyemv.cvn, PYEMV_CARDS[cvn])
    return cls(iss_mk_ac=imk, iss_mk_smi=imk, iss_mk_smc=imk, pan=pan, psn=psn)


def pyemv_arqc(card, cvn: int, tags: dict[str, bytes], iad: bytes) -> bytes:
    args = {f"tag_{tag.lower()}": value for tag, value in tags.items()}
    if cvn == 10:
        return card.generate_ac(**args, cvr=iad[3:7])  # Visa: CVR after length, DKI, CVN
    if cvn in (16, 20):
        return card.generate_ac(**args, cvr=iad[2:8])  # M/Chip: CVR after DKI, CVN
    if cvn in (17, 21):  # and the counters after the CVR and the 2-byte dynamic number
        return card.generate_ac(**args, cvr=iad[2:8], counters=iad[10:18])
    return card.generate_ac(**args, tag_9f10=iad)


@MANY
@given(imk=tdes_keys, pan=pans(), psn=psns)
def test_icc_master_keys_match_pyemv(imk: bytes, pan: str, psn: str) -> None:
    assert emv.icc_master_key_a(imk, pan, psn) == pyemv.kd.derive_icc_mk_a(imk, pan, psn)
    assert emv.icc_master_key_b(imk, pan, psn) == pyemv.kd.derive_icc_mk_b(imk, pan, psn)


@MANY
@given(
    cvn=st.sampled_from([10, 16, 17, 18, 20, 21, 22]), imk=tdes_keys, pan=pans(), psn=psns, tags=cdol,
    iad=st.binary(min_size=18, max_size=32), approved=st.booleans(),
)  # fmt: skip
def test_arqc_check_and_arpc_match_pyemv(cvn, imk, pan, psn, tags, iad, approved) -> None:
    card = pyemv_card(cvn, imk, pan, psn)
    arqc = pyemv_arqc(card, cvn, tags, iad)
    field_55 = {**tags, "9F10": iad, "9F26": arqc}
    checked = emv.check_arqc(imk, pan, psn, field_55, cvn)
    assert checked.valid
    assert repr(checked._arpc_key) not in repr(checked)  # a key never reaches a log line
    forged = {**field_55, "9F02": bytes(6) if tags["9F02"] != bytes(6) else b"\x01" * 6}
    assert not emv.check_arqc(imk, pan, psn, forged, cvn).valid  # another amount
    code = "00" if approved else "05"
    ours = checked.issuer_authentication_data(approved, code)
    if cvn in (10, 16, 17):
        assert ours == card.generate_arpc(tag_9f26=arqc, arpc_rc=code.encode()) + code.encode()
    elif cvn in (20, 21):  # method 1 under the session key
        arpc = card.generate_arpc(tag_9f26=arqc, tag_9f36=tags["9F36"], arpc_rc=code.encode())
        assert ours == arpc + code.encode()
    else:
        csu = bytes.fromhex("00800000") if approved else bytes(4)
        assert ours == card.generate_arpc(tag_9f26=arqc, tag_9f36=tags["9F36"], csu=csu) + csu


def test_cvn18_published_example() -> None:
    """pyemv's documented CVN 18 example: ARQC 769577B5ABE9FE62, ARPC 76503F48."""
    tags = {name: bytes.fromhex(value) for name, value in {
        "9F02": "000000009999", "9F03": "000000000000", "9F1A": "0840", "95": "8000048000",
        "5F2A": "0840", "9A": "991231", "9C": "01", "9F37": "52BF4585", "82": "1800",
        "9F36": "0FFF", "9F10": "06011203A0B800", "9F26": "769577B5ABE9FE62"}.items()}  # fmt: skip
    checked = emv.check_arqc(bytes.fromhex("AA" * 16), "1234567890123456", "00", tags, 18)
    assert checked.valid
    # with a card status update of zeros (a decline), as in the example
    assert checked.issuer_authentication_data(False, "05")[:4] == bytes.fromhex("76503F48")


def test_field_55_tlv() -> None:
    data = bytes.fromhex("9F2608769577B5ABE9FE629F36020FFF95058000048000005F340101")
    assert emv.parse_tlv(data) == {
        "9F26": bytes.fromhex("769577B5ABE9FE62"), "9F36": bytes.fromhex("0FFF"),
        "95": bytes.fromhex("8000048000"), "5F34": b"\x01"}  # fmt: skip
    for broken in ("9F26", "9F2608AABB", "9F36830000", "5F"):
        with pytest.raises(emv.ChipDataError):
            emv.parse_tlv(bytes.fromhex(broken))


def test_transaction_date_distance() -> None:
    noon = 1_795_694_400.0  # 2026-11-26 12:00 UTC
    assert emv.days_from(bytes.fromhex("261126"), noon) == 0
    assert emv.days_from(bytes.fromhex("261123"), noon) == 3
    assert emv.days_from(bytes.fromhex("261201"), noon) == 5
    assert emv.days_from(bytes.fromhex("261340"), noon) is None  # month 13


# --- EMV issuer scripts (security/emv_scripts.py) against pyemv's secure messaging ----------

WITHOUT_DATA = [
    c for c in emv_scripts.ScriptCommand if c is not emv_scripts.ScriptCommand.PIN_CHANGE
]


@MANY
@given(
    cvn=st.sampled_from([10, 16, 17, 18, 20, 21, 22]), imk_smi=tdes_keys, pan=pans(), psn=psns,
    atc=st.binary(min_size=2, max_size=2), arqc=st.binary(min_size=8, max_size=8),
    commands=st.lists(st.sampled_from(WITHOUT_DATA), min_size=1,
                      max_size=3, unique=True),
)  # fmt: skip
def test_issuer_script_commands_match_pyemv(cvn, imk_smi, pan, psn, atc, arqc, commands) -> None:
    """Every command of the template carries the MAC the card computes (pyemv's
    generate_command_mac: Visa's session key from the ATC, Mastercard's from the ARQC)."""
    cls = getattr(pyemv.cvn, PYEMV_CARDS[cvn])
    card = cls(iss_mk_ac=bytes(16), iss_mk_smi=imk_smi, iss_mk_smc=bytes(16), pan=pan, psn=psn)
    template = emv_scripts.issuer_script(imk_smi, pan, psn, cvn, atc, arqc, commands)
    body = emv.parse_tlv(template)["72"]
    identifier = emv_scripts.script_identifier(commands, atc)
    assert body[:7] == b"\x9f\x18\x04" + identifier
    assert emv_scripts.commands_of(identifier) == tuple(c for c in WITHOUT_DATA if c in commands)
    sent = [body[i + 2 : i + 15] for i in range(7, len(body), 15)]
    for command, apdu in zip(commands, sent, strict=True):
        header = bytes((0x84, command.instruction, 0, 0, 8))  # P2 00: no data
        mac = card.generate_command_mac(command_header=header, tag_9f26=arqc, tag_9f36=atc)
        assert apdu == header + mac


def test_issuer_script_results() -> None:
    """Tag 9F5B: 5 bytes a script; the high nibble 2 is performed, 0 or 1 is not."""
    value = bytes.fromhex("20001F0001" + "1200200005" + "0000000000")
    results = emv_scripts.script_results(value)
    assert [(r.performed, r.failed_command) for r in results] == [(True, 0), (False, 2), (False, 0)]
    assert results[1].commands == (
        emv_scripts.ScriptCommand.APPLICATION_BLOCK, emv_scripts.ScriptCommand.PIN_UNBLOCK)  # fmt: skip
    with pytest.raises(emv.ChipDataError):
        emv_scripts.script_results(b"\x20\x00")
    with pytest.raises(emv.ChipDataError):
        emv_scripts.issuer_script(bytes(16), "4000000000000002", "00", 19, b"\0\1", bytes(8),
                                  [emv_scripts.ScriptCommand.PIN_UNBLOCK])  # fmt: skip


@MANY
@given(
    cvn=st.sampled_from([10, 16, 17, 18, 20, 21, 22]), keys=st.lists(tdes_keys, min_size=3, max_size=3),
    pan=pans(), psn=psns, atc=st.binary(min_size=2, max_size=2),
    arqc=st.binary(min_size=8, max_size=8), pin=st.text("0123456789", min_size=4, max_size=12),
)  # fmt: skip
def test_offline_pin_change_matches_pyemv(cvn, keys, pan, psn, atc, arqc, pin) -> None:
    """PIN CHANGE (84 24 00 02): Visa's PIN block or ISO format 2 under the confidentiality
    session key, then the MAC over it: pyemv's generate_pin_change_command byte for byte."""
    imk_ac, imk_smi, imk_smc = keys
    cls = getattr(pyemv.cvn, PYEMV_CARDS[cvn])
    card = cls(iss_mk_ac=imk_ac, iss_mk_smi=imk_smi, iss_mk_smc=imk_smc, pan=pan, psn=psn)
    block = emv_scripts.offline_pin_block(pin, cvn, imk_ac, pan, psn)
    session = emv_scripts.sm_session_key(imk_smc, pan, psn, cvn, atc, arqc)
    data = emv_scripts.encipher_command_data(session, block, cvn)
    change = emv_scripts.ScriptCommand.PIN_CHANGE
    template = emv_scripts.issuer_script(imk_smi, pan, psn, cvn, atc, arqc, [change], data)
    apdu = emv.parse_tlv(emv.parse_tlv(template)["72"][7:])["86"]
    assert apdu == card.generate_pin_change_command(pin=pin, tag_9f26=arqc, tag_9f36=atc)
    assert emv_scripts.describe_template(emv.parse_tlv(template)["72"]) == ["pin_change"]
