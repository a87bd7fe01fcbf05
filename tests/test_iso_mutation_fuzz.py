"""Seeded mutation fuzzing of the decoder: a switch's corrupted frame must be a FormatError.

Valid peer-encoded messages of every class the host handles, in every dialect, are mutated
(bit flips, truncation, length-prefix and bitmap corruption, non-digits, huge fields,
secondary/tertiary bitmap bits with nothing behind). The decoder may accept a mutant or
raise ``FormatError``; any other exception would drop the link instead of answering 30.
The seed is fixed so a failure reproduces exactly.
"""

from __future__ import annotations

import random

import pytest
from iso_peers import PEER_DIALECTS, peer_encode
from test_iso_codec import financial

from authhost.auth.decision import Decision
from authhost.iso.codec import (
    FormatError,
    decode_message,
    encode_format_error,
    encode_network_response,
    encode_response,
)
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import get_dialect
from authhost.iso.messages import AuthRequest

MTIS = ("0100", "0120", "0200", "0220", "0400", "0420")
MUTATIONS_PER_SEED = 150
DECLINE = Decision(ResponseCode.DO_NOT_HONOUR)


def network() -> dict[str, str]:
    return {"t": "0800", "7": "1125203000", "11": "000001", "70": "301"}


def seeds(dialect: str) -> list[bytes]:
    out = [peer_encode(financial(mti), dialect) for mti in MTIS]
    out.append(peer_encode(network(), dialect))
    return out


def mutate(body: bytes, rng: random.Random) -> bytes:
    """One random corruption of ``body``; the kinds a broken switch or line produces."""
    data = bytearray(body)
    kind = rng.randrange(9)
    if kind == 0 and data:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del data[rng.randrange(len(data) + 1) :]
    elif kind == 2 and len(data) > 4:  # bitmap corruption (bytes just after the MTI)
        for i in range(4, min(len(data), 4 + 32)):
            if rng.random() < 0.3:
                data[i] = rng.randrange(256)
    elif kind == 3 and len(data) > 4:  # secondary/tertiary bit set, nothing behind
        data[4] |= 0x80
        data[4:] = data[4 : 4 + rng.choice((8, 12, 16))]
    elif kind == 4 and data:  # non-digit where digits were
        digits = [i for i, b in enumerate(data) if 0x30 <= b <= 0x39]
        for i in rng.sample(digits, min(len(digits), rng.randint(1, 3))):
            data[i] = rng.choice(b"A :\xff\x00")
    elif kind == 5:  # huge tail, as from an oversized field 55/48
        data += bytes(rng.randrange(256) for _ in range(rng.choice((300, 999, 4000))))
    elif kind == 6 and data:  # length prefix digits corrupted
        digits = [i for i, b in enumerate(data) if 0x30 <= b <= 0x39]
        if digits:
            i = rng.choice(digits)
            data[i] = rng.choice(b"09")
    elif kind == 7 and data:  # insert or delete a byte (wrong-length field)
        i = rng.randrange(len(data))
        if rng.random() < 0.5:
            del data[i]
        else:
            data.insert(i, rng.randrange(256))
    else:  # random overwrite run
        if data:
            i = rng.randrange(len(data))
            data[i : i + 8] = bytes(rng.randrange(256) for _ in range(8))
    return bytes(data)


@pytest.mark.parametrize("dialect", PEER_DIALECTS)
def test_mutated_messages_are_a_request_or_a_format_error(dialect: str) -> None:
    rng = random.Random(f"authhost-{dialect}")
    spec = get_dialect(dialect)
    for seed in seeds(dialect):
        decode_message(seed, spec)  # the unmutated seed is valid
        for _ in range(MUTATIONS_PER_SEED):
            body = mutate(seed, rng)
            try:
                try:
                    message = decode_message(body, spec)
                except FormatError as error:
                    encode_format_error(error, spec)  # the 30 answer itself must encode
                    continue
                if isinstance(message, AuthRequest):
                    encode_response(message, DECLINE, spec)
                else:
                    encode_network_response(message, ResponseCode.APPROVED, spec)
            except Exception as exc:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{dialect}: {type(exc).__name__}: {exc} for {body!r}")


_ALPHABETS = ("0123456789", "0123456789ABCDEF", "R0123456789 =DFCX", "\x00\xff ~A9")


@pytest.mark.parametrize("dialect", PEER_DIALECTS)
def test_field_values_mutated_within_their_length_are_a_request_or_a_format_error(
    dialect: str,
) -> None:
    """Corrupt one field's value but keep the frame well formed, so the subfield readers
    (48's subelements, 55's TLVs, 90, 95, track 2, 54) see the garbage, not the framer."""
    rng = random.Random(f"fields-{dialect}")
    spec = get_dialect(dialect)
    checked = 0
    for _ in range(400):
        fields = financial(rng.choice(MTIS))
        number = rng.choice([k for k in fields if k != "t"])
        value = fields[number]
        size = rng.choice((len(value), max(0, len(value) - rng.randint(1, 5)), len(value) + 3))
        fields[number] = "".join(rng.choice(rng.choice(_ALPHABETS)) for _ in range(size))
        try:
            body = peer_encode(fields, dialect)
        except Exception:  # noqa: BLE001 - the peer refuses what its spec cannot carry
            continue
        checked += 1
        try:
            message = decode_message(body, spec)
        except FormatError as error:
            encode_format_error(error, spec)
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{dialect} field {number}={fields[number]!r}: {type(exc).__name__}: {exc}")
        encode_response(message, DECLINE, spec)
    assert checked > 100
