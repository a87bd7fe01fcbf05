"""ISO 8583 wire layer benchmark: authhost's codec against pyiso8583 in the same run.

pyiso8583 is the reference implementation of both dialects; authhost's ``FieldCodec`` reads
the same spec and must agree with it (tests/test_iso_fieldcodec.py). This measures what that
buys on the server's hot path, per message, as ratios to pyiso8583 measured in the same
rounds (each round runs one batch of every operation in turn, the median round is reported,
so load from other processes hits baseline and operations alike).

    .venv/bin/python benchmarks/bench_iso.py            # about 20 s
    .venv/bin/python benchmarks/bench_iso.py --quick
    .venv/bin/python benchmarks/bench_iso.py --json out.json

Messages: a 22-field 0200 (PAN, track 2, PIN block, ICC data, field 48 CVV2) and its 0210,
the codec's whole share of one authorisation (decode, the derived fields the pipeline reads,
an approval with two field 54 balances), and an 0800 echo test through the whole wire path
(unframe, decode, answer, encode, frame) against a bare unframe/reframe of the same frame
(what the echo-server baseline does).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import iso8583

from authhost.auth.decision import Decision
from authhost.iso.codec import (
    decode_message,
    encode_network_response,
    encode_request,
    encode_response,
)
from authhost.iso.codes import ResponseCode
from authhost.iso.dialects import DEFAULT_DIALECT, get_dialect
from authhost.iso.framing import FrameDecoder, Framing, encode_frame
from authhost.iso.messages import AuthRequest, Balance, NetworkRequest

REQUEST = {
    "t": "0200",
    "2": "4761739001010119",
    "3": "000000",
    "4": "000000010000",
    "7": "1125203000",
    "11": "123456",
    "12": "203000",
    "13": "1125",
    "14": "2812",
    "18": "5411",
    "22": "051",
    "25": "00",
    "32": "123456",
    "35": "4761739001010119=28121011234567890",
    "37": "123456789012",
    "41": "TERM0001",
    "42": "MERCHANT0000001",
    "43": "ACME STORE".ljust(23) + "LONDON".ljust(14) + " GB",
    "48": "R9203123",
    "49": "826",
    "52": "0412AC89ABCDEF67",
    "55": "9F2608A1B2C3D4E5F6070882025C00",
}
RESPONSE = {
    "t": "0210",
    "3": "000000",
    "4": "000000010000",
    "7": "1125203000",
    "11": "123456",
    "12": "203000",
    "13": "1125",
    "32": "123456",
    "37": "123456789012",
    "38": "A1B2C3",
    "39": "00",
    "41": "TERM0001",
    "42": "MERCHANT0000001",
    "49": "826",
}


def interleaved_medians(
    ops: list[tuple[str, Callable[[], object]]], batch: int, repeats: int
) -> dict[str, float]:
    """Seconds per call, median over ``repeats`` rounds of one batch of every operation."""
    times: dict[str, list[float]] = {name: [] for name, _ in ops}
    for _ in range(repeats):
        for name, op in ops:
            start = time.perf_counter()
            for _ in range(batch):
                op()
            times[name].append((time.perf_counter() - start) / batch)
    return {name: statistics.median(values) for name, values in times.items()}


def operations(dialect_name: str) -> list[tuple[str, Callable[[], object]]]:
    dialect = get_dialect(dialect_name)
    spec = dialect.spec
    body = encode_request(REQUEST, dialect)
    request = decode_message(body, dialect)
    assert isinstance(request, AuthRequest)
    approved = Decision(ResponseCode.APPROVED, approval_code="A1B2C3")
    with_balances = Decision(
        ResponseCode.APPROVED,
        approval_code="A1B2C3",
        balances=[Balance("00", "01", "826", 123456), Balance("00", "02", "826", 100000)],
    )

    def authorisation() -> bytes:
        view = decode_message(body, dialect)
        assert isinstance(view, AuthRequest)
        _ = (view.channel, view.transaction_type, view.dedupe_key, view.is_card_present)
        return encode_response(view, with_balances, dialect)

    framing = Framing()
    network = encode_request({"t": "0800", "7": "1125203000", "11": "000001", "70": "301"}, dialect)
    frame = encode_frame(network, framing)
    decoder = FrameDecoder(framing)

    def wire_path() -> bytes:
        decoder.feed(frame)
        echo = decode_message(decoder.next_frame() or b"", dialect)
        assert isinstance(echo, NetworkRequest)
        return encode_frame(encode_network_response(echo, ResponseCode.APPROVED, dialect), framing)

    def bare_reframe() -> bytes:
        decoder.feed(frame)
        return encode_frame(decoder.next_frame() or b"", framing)

    return [
        ("pyiso8583 decode 0200", lambda: iso8583.decode(body, spec)),
        ("FieldCodec decode 0200", lambda: dialect.codec.decode(body)),
        ("decode_message 0200 (+ typed view)", lambda: decode_message(body, dialect)),
        ("pyiso8583 encode 0210", lambda: iso8583.encode(copy.copy(RESPONSE), spec)),
        ("FieldCodec encode 0210", lambda: dialect.codec.encode(RESPONSE)),
        (
            "encode_response 0210 (from the view)",
            lambda: encode_response(request, approved, dialect),
        ),
        ("authorisation codec path (0200 -> 0210)", authorisation),
        ("bare unframe + reframe (echo)", bare_reframe),
        ("0800 wire path (frame, decode, answer)", wire_path),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", default=DEFAULT_DIALECT)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--json", help="write the figures here as JSON")
    args = parser.parse_args()
    batch, repeats = (500, 5) if args.quick else (2000, 15)
    medians = interleaved_medians(operations(args.dialect), batch, repeats)
    us = {name: seconds * 1e6 for name, seconds in medians.items()}
    ratios = {
        "decode speed-up (pyiso8583 / FieldCodec)": us["pyiso8583 decode 0200"]
        / us["FieldCodec decode 0200"],
        "encode speed-up (pyiso8583 / FieldCodec)": us["pyiso8583 encode 0210"]
        / us["FieldCodec encode 0210"],
        "decode_message / pyiso8583 decode": us["decode_message 0200 (+ typed view)"]
        / us["pyiso8583 decode 0200"],
        "0800 wire path / bare reframe": us["0800 wire path (frame, decode, answer)"]
        / us["bare unframe + reframe (echo)"],
    }
    print(f"dialect {args.dialect}, median of {repeats} rounds of {batch}")
    for name, value in us.items():
        print(f"  {name:42} {value:8.2f} us")
    for name, value in ratios.items():
        print(f"  {name:42} {value:8.2f} x")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"dialect": args.dialect, "us": us, "ratios": ratios}, out, indent=2)


if __name__ == "__main__":
    main()
