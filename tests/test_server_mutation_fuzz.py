"""Seeded mutation fuzzing through a real server on 127.0.0.1, as a switch engineer would.

Every mutant goes in a well-formed length frame on one connection, followed by a valid
marker request. A mutant the decoder can answer gets 30 (or its normal answer when it still
decodes); one it cannot gets no answer or closes only that link. The marker is then answered
00 unless the link was closed; a bystander connection keeps working; the handler sees each
decodable request exactly once; the logs hold no traceback and no full PAN.
"""

from __future__ import annotations

import hashlib
import logging
import random

import pytest
import trio
from iso_peers import PEER_DIALECTS, peer_decode, peer_encode
from test_iso_codec import financial
from test_iso_mutation_fuzz import mutate, seeds
from test_server_support import (
    SwitchClient,
    approve,
    financial_fields,
    frame,
    running_server,
    server_config,
)
from test_server_tls import client_context, pki  # noqa: F401 - fixture

from authhost.iso.codec import FormatError, decode_message, encode_format_error
from authhost.iso.dialects import DEFAULT_DIALECT, get_dialect
from authhost.iso.messages import AuthRequest, MessageClass
from authhost.server.server import AuthServer

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


async def _plain(address: tuple[str, int]) -> trio.abc.Stream:
    return await trio.open_tcp_stream(*address)


@pytest.mark.parametrize("dialect", PEER_DIALECTS)
async def test_mutated_frames_get_30_and_the_server_keeps_serving(dialect: str, caplog) -> None:
    await _fuzz(dialect, server_config(dialect=dialect), _plain, MUTANTS, caplog)


async def test_mutated_frames_on_a_tls_listener(pki, caplog) -> None:  # noqa: F811
    """The same over TLS: a link closed on an unreadable frame is a clean TLS close."""
    config = server_config(
        tls_cert_file=str(pki["host"]), tls_key_file=str(pki["host"].with_suffix(".key"))
    )
    context = client_context(pki, None)

    async def tls(address: tuple[str, int]) -> trio.abc.Stream:
        return await trio.open_ssl_over_tcp_stream(*address, ssl_context=context)

    await _fuzz(DEFAULT_DIALECT, config, tls, 300, caplog)


async def _fuzz(dialect: str, config, open_stream, mutants: int, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(f"server-{dialect}")
    handled: list[str] = []

    async def counting(request: AuthRequest, received_at: float):
        handled.append(request.stan)
        return await approve(request, received_at)

    pool = seeds(dialect)
    marker = financial_fields("0100", MARKER_STAN)
    expected_handled = 0
    async with running_server(counting, config) as server:
        address = server.addresses[0]
        bystander = SwitchClient(await open_stream(address), dialect=dialect)
        client = SwitchClient(await open_stream(address), dialect=dialect)
        try:
            if True:
                for n in range(mutants):
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
                        await client.stream.aclose()
                        client = SwitchClient(await open_stream(address), dialect=dialect)
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
            await client.stream.aclose()
            await bystander.stream.aclose()
    assert len(handled) == expected_handled, "each decodable request is handled exactly once"
    text = caplog.text
    assert "Traceback" not in text
    assert PAN not in text


def _mac(data: bytes, key_name: str = "mak") -> bytes:
    """A stand-in MAC (the wire only places it; the security module computes the real one),
    under the listener's key name as the security module's would be."""
    return hashlib.sha256(key_name.encode() + b"test-mac-key" + data).digest()[:8]


def _signed(fields: dict) -> bytes:
    body = peer_encode({**fields, "64": "00" * 8}, DEFAULT_DIALECT)
    return body[:-8] + _mac(body[:-8])


async def test_mutated_frames_on_a_mac_listener_get_30_or_63_and_never_reach_the_handler(
    caplog,
) -> None:
    """With require_mac, a mutant that still decodes fails its MAC (63, answered by the server);
    one that does not decode gets 30; only intact requests reach the decision."""
    rng = random.Random("server-mac")
    handled: list[str] = []

    async def counting(request: AuthRequest, received_at: float):
        handled.append(request.stan)
        return await approve(request, received_at)

    pool = [_signed(financial(mti)) for mti in ("0100", "0120", "0200", "0220", "0400", "0420")]
    spec = get_dialect(DEFAULT_DIALECT)
    server = AuthServer(
        server_config(require_mac=True),
        counting,
        macs=(_mac, lambda data, mac, key_name: _mac(data, key_name) == mac),
    )
    intact = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        async with SwitchClient.connect(server.addresses[0]) as client:
            marker = _signed(financial_fields("0100", MARKER_STAN))
            for n in range(300):
                body = mutate(rng.choice(pool), rng)
                want = expected(body, DEFAULT_DIALECT)
                if want == "silent":
                    continue  # covered above; keep this link open
                await client.send_raw(frame(body) + frame(marker))
                answers = [peer_decode(await client.receive_body(), DEFAULT_DIALECT)]
                answers.append(peer_decode(await client.receive_body(), DEFAULT_DIALECT))
                intact += 1
                assert any(a.get("11") == MARKER_STAN and a["39"] == "00" for a in answers)
                mine = [a for a in answers if a.get("11") != MARKER_STAN or a["39"] != "00"]
                assert len(mine) == 1, f"mutant {n}: {answers}"
                if want == "30":
                    assert [a["39"] for a in mine] == ["30"], f"mutant {n}: {body!r}"
                else:
                    assert mine and mine[0]["39"] in ("63", "00", "12"), f"mutant {n}: {body!r}"
                    if mine[0]["39"] == "00":
                        assert decode_message(body, spec).stan  # only an unchanged MAC'd body
                        intact += 1
        server.shutdown()
    assert len(handled) == intact
    assert "Traceback" not in caplog.text
    assert PAN not in caplog.text
