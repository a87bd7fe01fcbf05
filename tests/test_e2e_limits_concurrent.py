"""A card's requests on different connections at the same moment, over a running host on both
stores: each is decided on a snapshot read before the others were written, yet the amount and
count limits hold. A write that finds the card's history moved on since its snapshot writes
nothing and the request is decided again (``CommitResult.stale``)."""

from __future__ import annotations

import json
import uuid

import pytest
import trio
from conftest import free_port
from host_admin import visa_at_host
from iso_client import Switch, next_stan
from test_admin_support import call
from test_e2e_auth import field_90, purchase, start_host, store_url  # noqa: F401 - fixture
from test_e2e_crash import start_server, wait_for_port

CONNECTIONS = 8


async def _from_every_connection(port: int, messages: list[dict]) -> list[str]:
    """Each message on its own connection, all written before any answer is read: the
    response codes, in the messages' order."""
    switches = [await Switch.connect(port) for _ in messages]
    frames = [switch.encode(fields) for switch, fields in zip(switches, messages, strict=True)]
    codes: list[str] = [""] * len(messages)

    async def one(index: int) -> None:
        await switches[index].send_raw(frames[index])
        codes[index] = (await switches[index].receive())["39"]

    async with trio.open_nursery() as nursery:
        for index in range(len(messages)):
            nursery.start_soon(one, index)
    for switch in switches:
        await switch.aclose()
    return codes


async def _journal(port: int, card_id: str) -> list[dict]:
    reply = await call(port, "GET", f"/v1/cards/{card_id}/journal?limit=1000")
    assert reply.status == 200, reply
    return reply.json["journal"]


async def _journal_codes(port: int, card_id: str) -> list[str]:
    return [entry["response_code"] for entry in await _journal(port, card_id)]


async def test_a_daily_count_holds_across_connections(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    reply = await call(at.port, "PUT", f"/v1/cards/{at.card_id}/limits",
                       payload={"daily_count": 3})  # fmt: skip
    assert reply.status == 200, reply
    sent = [purchase(at.visa, amount=100) for _ in range(CONNECTIONS)]
    codes = await _from_every_connection(at.host.port, sent)
    assert sorted(codes) == ["00"] * 3 + ["65"] * (CONNECTIONS - 3), codes
    # one journal entry per request: a request decided again was not journalled twice
    assert sorted(await _journal_codes(at.port, at.card_id)) == sorted(codes)


async def test_a_daily_amount_holds_across_connections(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    reply = await call(at.port, "PUT", f"/v1/cards/{at.card_id}/limits",
                       payload={"daily_amount": 5_000})  # fmt: skip
    assert reply.status == 200, reply
    sent = [purchase(at.visa, amount=1_000) for _ in range(CONNECTIONS)]  # 10.00 each
    codes = await _from_every_connection(at.host.port, sent)
    assert sorted(codes) == ["00"] * 5 + ["61"] * (CONNECTIONS - 5), ",".join(codes)
    # the card spent its 50.00 exactly: the next cent is over the limit
    assert (await at.switch.send(purchase(at.visa, amount=1)))["39"] == "61"


async def test_a_reversal_written_after_its_original_finds_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """An authorisation and its reversal sent at the same moment on two connections: the
    reversal may be read before the original is written. Either its write comes first (an
    unknown original, as the network's repeat of it will find) or, written after the
    original, it releases the hold: never an unknown original journalled after it."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    pairs = []
    for n in range(12):
        original = purchase(at.visa, amount=100 + n)
        reversal = {**original, "t": "0400", "11": next_stan(), "90": field_90(original)}
        pairs.append((original, reversal))
        codes = await _from_every_connection(at.host.port, [original, reversal])
        assert codes == ["00", "00"], codes
    by_stan = {(e["mti"], e["stan"]): e for e in await _journal(at.port, at.card_id)}
    released = 0
    for original, reversal in pairs:
        held = by_stan[("0100", original["11"])]
        undone = by_stan[("0400", reversal["11"])]
        if undone["journal_id"] > held["journal_id"]:
            assert "reversal.full" in undone["reason_codes"], (held, undone)
            released += 1
        else:
            assert "reversal.unknown_original" in undone["reason_codes"], (held, undone)
    assert released, "no reversal was written after its original: the race was not run"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_daily_count_holds_across_two_server_processes(request, tmp_path, backend):
    """``serve --workers 2`` on one store: the demo Visa debit card allows 30 purchases a day;
    after 26, eight sent at once over eight connections, which the two processes share."""
    url = None
    if backend == "redis":
        url = f"{request.getfixturevalue('redis_url')}?prefix=two-{uuid.uuid4().hex[:8]}"
    port = free_port()
    proc = start_server(tmp_path, port, url, workers=2)
    try:
        await wait_for_port(port, proc)
        cards = json.loads((tmp_path / "demo-cards.json").read_text())["cards"]
        card = next(c for c in cards if c["pan"].startswith("476173") and c["state"] == "active")
        first = await Switch.connect(port)
        for _ in range(26):
            assert (await first.send(purchase(card, amount=100)))["39"] == "00"
        await first.aclose()
        sent = [purchase(card, amount=100) for _ in range(CONNECTIONS)]
        codes = await _from_every_connection(port, sent)
        assert sorted(codes) == ["00"] * 4 + ["65"] * (CONNECTIONS - 4), codes
    finally:
        proc.terminate()
        proc.wait(timeout=30)


BURST_RULE = """
[[rule]]
name = "burst"
expression = 'card.count_1h >= 3'
action = "decline"
response_code = "59"
reason = "R-BURST"
"""


async def test_the_rules_see_a_cards_requests_on_other_connections(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A burst of one card spread over eight connections (card testing through several
    acquirers' links): one process decides the card's requests one after another, so the
    third request in an hour is declined by the rule, whichever connection it came on. (The
    credit card has no limits that add requests up: no write would find these stale.)"""
    host = await start_host(nursery, tmp_path, store_url, rules=BURST_RULE)
    card = host.cards["active-credit"]
    codes = await _from_every_connection(host.port, [purchase(card, amount=100) for _ in range(8)])
    assert sorted(codes) == ["00"] * 3 + ["59"] * 5, codes
