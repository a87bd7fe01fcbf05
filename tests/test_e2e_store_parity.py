"""The same random traffic through two running hosts, one on SQLite and one on Redis: purchases
with and without PIN (wrong ones up to the lockout), ATM cash, refunds, balance inquiries,
pre-authorisations, completions, increments, partial and full reversals (0400 and 0420),
advices and retransmissions. Every answer's response code, MTI, approval and balances
(field 54), and the journal each host wrote, are compared (each host has its own demo cards,
PANs and keys: the requests are the same but for them)."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
from iso_client import Switch
from test_e2e_auth import field_90, purchase, start_host, with_pin

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

CARDS = ("active-visa", "active-visa-low", "active-3624", "active-credit", "restricted")
# what differs between two hosts for the same request: their own card, key and clock
_PER_HOST = {"journal_id", "ts", "latency_us", "card_id", "pan_index", "pan_masked",
             "approval_code", "account_id", "card_age_days", "fraud_score", "model_score",
             "challenger_score", "model_skipped", "token_age_hours"}  # fmt: skip


async def _start(nursery, root: Path, url: str):
    root.mkdir()
    here = os.getcwd()
    os.chdir(root)  # the demo export is written to the working directory
    try:
        return await start_host(nursery, root, url)
    finally:
        os.chdir(here)


def _traffic(rnd: random.Random, count: int) -> list[tuple[str, dict[str, Any]]]:
    """(card name, what to send) for ``count`` requests; each host fills in its own card."""
    sent: list[tuple[str, dict[str, Any]]] = []
    held: list[tuple[str, dict[str, Any]]] = []  # approved-looking 0100s to refer back to
    stan = rnd.randint(100_000, 800_000)
    for _ in range(count):
        stan += 1
        name = rnd.choice(CARDS)
        amount = rnd.choice(
            [100, 1_000, 2_500, rnd.randint(1, 9_000), rnd.randint(1, 60_000), 999_999_999_999]
        )
        kind = rnd.choices(
            ["buy", "pin", "bad_pin", "atm", "refund", "inquiry", "advice", "complete",
             "increment", "reverse", "repeat"],
            [6, 2, 2, 2, 1, 2, 1, 2, 1, 3, 2],
        )[0]  # fmt: skip
        fields: dict[str, Any] = {"kind": kind, "11": f"{stan:06d}", "37": f"{stan:012d}",
                                  "4": amount}  # fmt: skip
        if kind in ("complete", "increment", "reverse") and held:
            name, original = rnd.choice(held)
            fields["original"] = original
            if kind == "reverse":
                fields["t"] = rnd.choice(["0400", "0420"])
                if rnd.random() < 0.4:
                    fields["95"] = rnd.randint(0, original["4"])
            elif kind == "complete":
                fields["48"] = rnd.choice([None, None, "R62040102"])
        elif kind in ("complete", "increment", "reverse"):
            fields["kind"] = "buy"
        elif kind == "repeat" and sent:
            name, again = rnd.choice(sent)
            fields = {**again, "repeat": True}
        elif kind == "repeat":
            fields["kind"] = "buy"
        if kind == "bad_pin" and rnd.random() < 0.5:  # a guesser's run, to the lockout
            for _ in range(rnd.randint(1, 3)):
                sent.append((name, {**fields}))
                stan += 1
                fields = {**fields, "11": f"{stan:06d}", "37": f"{stan:012d}"}
        if fields["kind"] in ("buy", "pin", "increment") and not fields.get("repeat"):
            held.append((name, fields))
        sent.append((name, fields))
    return sent


def _message(host, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    card = host.cards[name]
    kind = spec["kind"]
    changes: dict[str, Any] = {"11": spec["11"], "37": spec["37"]}
    amount = spec["4"]
    if kind == "atm":
        changes.update({"3": "010000", "18": "6011"})
    elif kind == "refund":
        changes["3"] = "200000"
    elif kind == "inquiry":
        changes.update({"3": "310000", "4": None})
    elif kind == "advice":
        changes["t"] = rnd_choice_advice(spec)
    elif kind in ("complete", "increment", "reverse"):
        original = _message(host, name, spec["original"])
        changes["90"] = field_90(original)
        if kind == "complete":
            changes.update({"t": "0220", "48": spec.get("48")})
        elif kind == "reverse":
            changes["t"] = spec["t"]
            amount = spec["original"]["4"]
            if "95" in spec:
                changes["95"] = f"{spec['95']:012d}" + "0" * 30
    fields = purchase(card, amount=amount, **changes)
    if kind in ("pin", "atm"):
        fields = with_pin(fields, host, card, card["pin"])
    elif kind == "bad_pin":
        fields = with_pin(fields, host, card, "0000" if card["pin"] != "0000" else "1111")
    if spec.get("repeat") and fields["t"] in ("0100", "0200", "0120", "0220", "0400", "0420"):
        fields["t"] = fields["t"][:3] + "1"
    return fields


def rnd_choice_advice(spec: dict[str, Any]) -> str:
    return "0120" if int(spec["11"]) % 2 else "0220"


def _answer(response: dict[str, Any]) -> tuple:
    return (response.get("t"), response.get("39"), "38" in response, response.get("54"))


def _entry(entry) -> dict[str, Any]:
    row = entry.as_row()
    for name in _PER_HOST:
        row.pop(name)
    return row


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_same_traffic_gets_the_same_answers_on_both_stores(
    nursery, tmp_path, redis_url, seed
):
    sqlite_url = f"sqlite:///{tmp_path / 'sqlite' / 'authhost.db'}"
    redis = f"{redis_url}?prefix=e2e-{uuid.uuid4().hex[:8]}"
    hosts = [await _start(nursery, tmp_path / "sqlite", sqlite_url),
             await _start(nursery, tmp_path / "redis", redis)]  # fmt: skip
    switches = [await Switch.connect(host.port) for host in hosts]
    for number, (name, spec) in enumerate(_traffic(random.Random(seed), 200)):
        answers = []
        for host, switch in zip(hosts, switches, strict=True):
            answers.append(_answer(await switch.send(_message(host, name, spec))))
        assert answers[0] == answers[1], f"request {number}: {name} {spec}"
    journals = []
    for host in hosts:
        async with opened_store(host.store_url) as store:
            entries = await store.journal(JournalQuery(limit=10_000))
        journals.append(sorted((_entry(e) for e in entries), key=lambda r: (r["stan"], r["mti"])))
    assert len(journals[0]) == len(journals[1])
    for ours, theirs in zip(*journals, strict=True):
        assert ours == theirs


async def test_a_crowd_on_one_account_ends_the_same_on_both_stores(nursery, tmp_path, redis_url):
    """40 purchases of 10.00 at once over eight connections against one account on each host:
    as many approved on both (never more than its open-to-buy), the same balances after."""
    sqlite_url = f"sqlite:///{tmp_path / 'sqlite' / 'authhost.db'}"
    redis = f"{redis_url}?prefix=e2e-{uuid.uuid4().hex[:8]}"
    hosts = [await _start(nursery, tmp_path / "sqlite", sqlite_url),
             await _start(nursery, tmp_path / "redis", redis)]  # fmt: skip
    outcomes = []
    for host in hosts:
        card = host.cards["active-visa-low"]
        codes: list[str] = []

        async def client(first: int, host=host, card=card, codes=codes) -> None:
            switch = await Switch.connect(host.port)
            for n in range(first, first + 5):
                fields = purchase(card, amount=1_000, **{"11": f"{n:06d}", "37": f"{n:012d}"})
                codes.append((await switch.send(fields))["39"])
            await switch.aclose()

        async with trio.open_nursery() as clients:
            for first in range(500_000, 500_040, 5):
                clients.start_soon(client, first)
        switch = await Switch.connect(host.port)
        inquiry = await switch.send(purchase(card, **{"3": "310000", "4": None}))
        outcomes.append((sorted(codes), inquiry["39"], inquiry["54"]))
        assert codes.count("00") == int(card["available"]) // 1_000
    assert outcomes[0] == outcomes[1]
