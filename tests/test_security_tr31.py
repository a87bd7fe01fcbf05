"""TR-31 / ANSI X9.143 key blocks: the standard's examples, HSM-produced blocks, psec as oracle.

Vectors: TR-31:2018 A.7.2.2 (version B), A.7.3.2 (version B with a KS optional block), A.7.4
(version D, reproduced byte for byte from the published pad), and blocks produced by a Thales
payShield 10k as published with the openemv/tr31 test suite.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authhost.security import tr31
from authhost.security.keys import KeyAlgorithm, kcv

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import psec

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
]

VECTORS = [
    pytest.param(
        "DD7515F2BFC17F85CE48F3CA25CB21F6",
        "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E",
        "3F419E1CB7079442AA37474C2EFBF8B8",
        "57C409",
        id="TR-31:2018 A.7.2.2 version B",
    ),
    pytest.param(
        "1D22BF32387C600AD97F9B97A51311AC",
        "B0104B0TX12S0100KS1800604B120F9292800000BB68BE8680A400D9191AD4ECE45B6E6C0D21C4738A"
        "52190E248719E24B433627",
        "E8BC63E5479455E26577F715D587FE68",
        "9A4212",
        id="TR-31:2018 A.7.3.2 version B BDK with KSN block",
    ),
    pytest.param(
        "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6",
        "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E"
        "31DA05F7425509593D03A457DC34",
        "3F419E1CB7079442AA37474C2EFBF8B8",
        "08793E",
        id="TR-31:2018 A.7.4 version D",
    ),
    pytest.param(
        "EFE0853B256B583D868F251CE99EA1D9",
        "B0080K0TN00N00001C414014375212C24995E405B5EE052CB92B67F455EA2680F6751088F9F1C228",
        "5DB50B454F8389ADCE573BE50861F2BF",
        "5C9405",
        id="payShield version B KEK",
    ),
    pytest.param(
        "41" * 32,
        "D0112B0TN00N000037DB9B046B7B0048785690759580ABC3B9842AB4BB7717B49E92528E575785D81235"
        "59376A2553B27BE94F054F4E971C",
        "1FA1F7CEC798D91545DA8AE0C7796BD9",
        "FF5087",
        id="payShield version D TDES BDK",
    ),
    pytest.param(
        "41" * 32,
        "D0144D0AN00N0000127862F945C2DED04530FAF7CDBC8B0BA10C7AA79BD5E0C2C5D6AC173BF588E4B19A"
        "CF1357178D50EA0AB193228E13958304FC6149632DFDCADF3A5B3D57E814",
        "BE19E6A07A760F10EF8E83A226B63AAD141F463FDDD4F47DB244B4023EC3CACC",
        "0A00E3",
        id="payShield version D AES-256 data key",
    ),
]


@pytest.mark.parametrize(("kbpk", "block", "key", "key_kcv"), VECTORS)
def test_unwrap_published_blocks(kbpk, block, key, key_kcv) -> None:
    header, material = tr31.unwrap(bytes.fromhex(kbpk), block)
    assert material.hex().upper() == key
    algorithm = KeyAlgorithm.AES if header.algorithm == "A" else KeyAlgorithm.TDES
    assert kcv(material, algorithm) == key_kcv


def test_optional_block_is_parsed() -> None:
    kbpk, block = VECTORS[1].values[0], VECTORS[1].values[1]
    header, _ = tr31.unwrap(bytes.fromhex(kbpk), block)
    assert header.optional_blocks == (("KS", "00604B120F9292800000"),)
    assert (header.key_usage, header.mode_of_use, header.key_version) == ("B0", "X", "12")


def test_wrap_reproduces_the_a_7_4_example() -> None:
    header = tr31.KeyBlockHeader("D", "P0", "A", "E", "00", "E")
    block = tr31.wrap(
        bytes.fromhex(VECTORS[2].values[0]),
        header,
        bytes.fromhex("3F419E1CB7079442AA37474C2EFBF8B8"),
        padding=bytes.fromhex("1C2965473CE206BB855B01533782"),
    )
    assert block == VECTORS[2].values[1]


@pytest.mark.parametrize(("kbpk", "block", "key", "key_kcv"), VECTORS)
def test_wrong_kbpk_or_tampering_is_a_clear_error(kbpk, block, key, key_kcv) -> None:
    wrong = bytes([bytes.fromhex(kbpk)[0] ^ 2]) + bytes.fromhex(kbpk)[1:]  # not a parity bit
    with pytest.raises(tr31.KeyBlockError, match="MAC"):
        tr31.unwrap(wrong, block)
    flipped = block[:-20] + ("0" if block[-20] != "0" else "1") + block[-19:]
    with pytest.raises(tr31.KeyBlockError):
        tr31.unwrap(bytes.fromhex(kbpk), flipped)
    relabelled = block[:5] + "M3" + block[7:]  # a PIN key presented as a MAC key
    with pytest.raises(tr31.KeyBlockError):
        tr31.unwrap(bytes.fromhex(kbpk), relabelled)


@pytest.mark.parametrize(
    "block",
    [
        "",
        "D0016",
        "D9999P0AE00E0000",
        "A0072P0TE00E0000" + "00" * 28,
        "D0048P0AE00E0000ZZ" + "0" * 30,
    ],
    ids=["empty", "short", "length mismatch", "variant version A", "non-hex body"],
)
def test_malformed_blocks(block) -> None:
    with pytest.raises(tr31.KeyBlockError):
        tr31.unwrap(bytes(32), block)


@settings(max_examples=150, deadline=None)
@given(
    kbpk=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
def test_version_d_interoperates_with_psec(kbpk, key) -> None:
    header = tr31.KeyBlockHeader("D", "D0", "A", "B", "00", "E")
    ours = tr31.wrap(kbpk, header, key)
    assert psec.tr31.unwrap(kbpk, ours)[1] == key
    theirs = psec.tr31.wrap(kbpk, "D0000D0AB00E0000", key)
    assert tr31.unwrap(kbpk, theirs)[1] == key


@settings(max_examples=150, deadline=None)
@given(
    kbpk=st.sampled_from([16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    key=st.sampled_from([16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
def test_version_b_interoperates_with_psec(kbpk, key) -> None:
    header = tr31.KeyBlockHeader("B", "P0", "T", "B", "00", "E")
    ours = tr31.wrap(kbpk, header, key)
    assert psec.tr31.unwrap(kbpk, ours)[1] == key
    theirs = psec.tr31.wrap(kbpk, "B0000P0TB00E0000", key)
    assert tr31.unwrap(kbpk, theirs)[1] == key


def test_an_optional_block_longer_than_255_characters_round_trips() -> None:
    """X9.143's extended length: 00, then the length of the length in bytes (02: four hex
    digits), then the length. Found by a review: the length of the length was read as a count
    of characters, so such a block (psec's or authhost's own) could not be unwrapped."""
    kbpk = bytes(range(32))
    key = bytes(range(16))
    data = "A" * 300
    header = tr31.KeyBlockHeader(
        version="D", key_usage="P0", algorithm="T", mode_of_use="B", exportability="E",
        optional_blocks=(("KP", data), ("PB", "000000")),
    )  # fmt: skip
    block = tr31.wrap(kbpk, header, key)
    assert block[16:26] == "KP00020136"  # 2 + 2 + 2 + 4 + 300 = 0x136
    unwrapped_header, unwrapped = tr31.unwrap(kbpk, block)
    assert unwrapped == key
    assert unwrapped_header.optional_blocks == (("KP", data), ("PB", "000000"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        psec_header = psec.tr31.Header("D", "P0", "T", "B", "00", "E")
        psec_header.blocks["KP"] = data
        theirs = psec.tr31.KeyBlock(kbpk, psec_header).wrap(key)
        assert psec.tr31.unwrap(kbpk, block)[1] == key
    unwrapped_header, unwrapped = tr31.unwrap(kbpk, theirs)
    assert unwrapped == key
    assert unwrapped_header.optional_blocks[0] == ("KP", data)
