"""Mutated frames through the real host (pipeline and store): every answered request is
journalled exactly once, 30s included, with no full PAN, and the link keeps serving."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter

import trio
from iso_client import Switch
from iso_peers import peer_decode
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture
from test_iso_mutation_fuzz import mutate
from test_server_mutation_fuzz import expected

from authhost.iso.dialects import DEFAULT_DIALECT
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

MUTANTS = 120


async def test_mutated_requests_are_journalled_exactly_once(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    rng = random.Random("e2e-journal")
    answered: Counter[tuple[str, str]] = Counter()
    stans: set[str] = set()
    for n in range(MUTANTS):
        base = purchase(card, amount=100, t=rng.choice(("0100", "0200", "0120", "0220")))
        body = mutate(switch.encode(base), rng)
        if expected(body, DEFAULT_DIALECT) == "silent":
            continue  # no answer and maybe a closed link: covered in test_server_mutation_fuzz
        marker = purchase(card, amount=100)
        await switch.send_raw(body)
        await switch.send_raw(switch.encode(marker))
        with trio.fail_after(10):
            replies = [peer_decode(await switch.receive_raw(), DEFAULT_DIALECT) for _ in "ab"]
        assert {marker["11"]} <= {r.get("11") for r in replies}, f"mutant {n}: {replies}"
        for reply in replies:
            assert reply["39"] != "96", f"mutant {n}: {body!r} {reply}"
            if not reply["t"].startswith("08") and reply.get("11"):
                answered[(reply["11"], reply["39"])] += 1
                stans.add(reply["11"])
    journalled: Counter[tuple[str, str]] = Counter()
    for _ in range(50):  # 30s and 12s are journalled off the response path
        async with opened_store(store_url) as store:
            entries = await store.journal(JournalQuery(limit=10_000))
        journalled = Counter((e.stan, e.response_code) for e in entries if e.stan in stans)
        if journalled == answered:
            break
        await trio.sleep(0.1)
    assert journalled == answered
    assert any(code == "30" for _stan, code in answered)  # the fuzz did reach the 30 path
    for entry in entries:
        assert card["pan"] not in json.dumps(dataclasses.asdict(entry))


EXTRA = {  # fields a purchase may carry whose readers sit in auth/ (chip, 48, 54, 90, 95)
    "48": "R9203123",
    "55": "9F2608A1B2C3D4E5F607089F2701809F100706010A03A00000",
    "54": "0002978C000000010000",
    "90": "0100" + "004711" + "1125120000" + "00000123456" + "00000000000",
    "95": "000000000500" + "0" * 12 + "C00000000" + "C00000000",
    "25": "00",
    "23": "001",
}
_ALPHABETS = ("0123456789", "0123456789ABCDEF", "R0123456789 =DFCX9F")


async def test_garbled_field_values_are_never_answered_96(nursery, tmp_path, store_url):  # noqa: F811
    """A field value that passes the framer but is nonsense to the pipeline (a chip TLV that
    overruns, a 48 subelement cut short, a field 90 naming nothing) is answered with a code
    that says so, not 96 (which tells the switch to retry and stand in)."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    rng = random.Random("e2e-fields")
    sent = 0
    for _ in range(150):
        mti = rng.choice(("0100", "0200", "0120", "0220", "0400", "0420"))
        fields = purchase(
            card, amount=100, t=mti, **{k: v for k, v in EXTRA.items() if rng.random() < 0.5}
        )
        number = rng.choice([k for k in fields if k not in ("t", "11")])
        size = max(1, len(fields[number]) + rng.choice((0, 0, -2, 4)))
        fields[number] = "".join(rng.choice(rng.choice(_ALPHABETS)) for _ in range(size))
        try:
            body = switch.encode(fields)
        except Exception:  # noqa: BLE001 - the peer refuses what its spec cannot carry
            continue
        await switch.send_raw(body)
        with trio.fail_after(10):
            reply = peer_decode(await switch.receive_raw(), DEFAULT_DIALECT)
        sent += 1
        assert reply["39"] != "96", f"field {number}={fields[number]!r} in {mti}: {reply}"
    assert sent > 50
