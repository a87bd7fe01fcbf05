"""Seeded mutation fuzzing through a real server on 127.0.0.1, as a switch engineer would.

Every mutant goes in a well-formed length frame on one connection, followed by a valid
marker request. A mutant the decoder can answer gets 30 (or its normal answer when it still
decodes); one it cannot gets no answer or closes only that link. The marker is then answered
00 unless the link was closed; a bystander connection keeps working; the handler sees each
decodable request exactly once; the logs hold no traceback and no full PAN.
"""

from __future__ import annotations

import logging
import random

import pytest
import trio
from iso_peers import peer_decode, peer_encode
from test_iso_mutation_fuzz import mutate, seeds
from test_server_support import (
    SwitchClient,
    approve,
    financial_fields,
    frame,
    running_server,
    server_config,
)

from authhost.iso.codec import FormatError, decode_message, encode_format_error
from authhost.iso.dialects import get_dialect
from authhost.iso.messages import AuthRequest, MessageClass

MUTANTS = 1000
MARKER_STAN = "987654"
PAN = "4000001234567899"
KNOWN = frozenset(MessageClass) - {MessageClass.UNKNOWN}


def expected(body: bytes, dialect: str) -> str:
    """'30' (a format error that can be answered), 'silent' (no answer, the link may close)
    or 'decoded' (answered like any request)."""
    spec = get_dialect(dialect)
    try:
        decode_message(body, spec)
    except FormatError as error:
        return "30" if encode_format_error(error, spec) is not None else "silent"
    return "decoded"


@pytest.mark.parametrize(
    "dialect", ["ascii-binary-bitmap", "ascii-hex-bitmap", "bcd-binary-bitmap"]
)
async def test_mutated_frames_get_30_and_the_server_keeps_serving(dialect: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(f"server-{dialect}")
    handled: list[str] = []

    async def counting(request: AuthRequest, received_at: float):
        handled.append(request.stan)
        return await approve(request, received_at)

    pool = seeds(dialect)
    marker = financial_fields("0100", MARKER_STAN)
    expected_handled = 0
    async with running_server(counting, server_config(dialect=dialect)) as server:
        address = server.addresses[0]
        async with SwitchClient.connect(address, dialect=dialect) as bystander:
            client_cm = SwitchClient.connect(address, dialect=dialect)
            client = await client_cm.__aenter__()
            try:
                for n in range(MUTANTS):
                    body = mutate(rng.choice(pool), rng)
                    want = expected(body, dialect)
                    try:
                        decoded = decode_message(body, get_dialect(dialect))
                        # an unknown class (MTI 0020) is answered 12 by the server itself
                        if isinstance(decoded, AuthRequest) and decoded.message_class in KNOWN:
                            expected_handled += 1
                    except FormatError:
                        pass
                    await client.send_raw(frame(body) + frame(peer_encode(marker, dialect)))
                    answers: list[dict] = []
                    closed = False
                    wanted = 1 if want == "silent" else 2
                    with trio.fail_after(10):  # a hang fails the test instead of blocking it
                        while len(answers) < wanted:
                            got = await client.receive_body()
                            if got is None:
                                closed = True
                                break
                            answers.append(peer_decode(got, dialect))
                    if closed:
                        assert want == "silent", f"mutant {n} closed the link: {body!r}"
                        await client_cm.__aexit__(None, None, None)
                        client_cm = SwitchClient.connect(address, dialect=dialect)
                        client = await client_cm.__aenter__()
                        continue
                    expected_handled += 1  # the marker
                    assert len(handled) == expected_handled, f"mutant {n}: {body!r} {answers}"
                    markers = [a for a in answers if a.get("11") == MARKER_STAN]
                    assert markers and markers[0]["39"] == "00", f"mutant {n}: {body!r}"
                    for reply in answers:  # the mutant's own answer
                        if reply.get("11") == MARKER_STAN:
                            continue
                        if want == "30":
                            assert reply["39"] == "30", f"mutant {n}: {reply}"
                        else:
                            assert reply["39"] != "96", f"mutant {n}: {reply}"
                    if n % 50 == 0:
                        response = await bystander.request(financial_fields("0100", "000001"))
                        assert response["39"] == "00"
                        expected_handled += 1
            finally:
                await client_cm.__aexit__(None, None, None)
    assert len(handled) == expected_handled, "each decodable request is handled exactly once"
    text = caplog.text
    assert "Traceback" not in text
    assert PAN not in text
