"""Faults in the store, end to end: a stalled store gives 91 at the deadline, a failing store
gives 96, and the host answers normally again as soon as the store recovers.

Each test has a redis-server of its own, since pausing or starving a shared one would disturb
the other tests.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from conftest import redis_command
from iso_client import Switch, next_stan
from test_e2e_auth import balances_of, field_90, purchase, start_host

from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def test_stalled_store_answers_91_at_the_deadline_then_recovers(
    nursery, tmp_path, monkeypatch, private_redis
):
    monkeypatch.chdir(tmp_path)
    url = f"{private_redis}?prefix=faults-{uuid.uuid4().hex[:8]}"
    host = await start_host(nursery, tmp_path, url, deadline_ms=300)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    assert (await switch.send(purchase(card)))["39"] == "00"

    assert redis_command(private_redis, "CLIENT", "PAUSE", "1500", "ALL") == "+OK"
    started = trio.current_time()
    stalled = purchase(card)
    response = await switch.send(stalled)
    assert response["39"] == "91"
    assert "38" not in response
    assert trio.current_time() - started < 1.2  # answered at the deadline, not after the pause

    await trio.sleep(1.5)
    assert (await switch.send(purchase(card)))["39"] == "00"
    await trio.sleep(1.0)  # the timed-out request's journal entry is written off the hot path
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    timed_out = [e for e in entries if e.stan == stalled["11"]]
    assert [(e.response_code, e.reason_codes) for e in timed_out] == [("91", "deadline")]
    # cut short before its commit, it held nothing: the switch's repeat is decided now
    assert (await switch.send(stalled))["39"] == "00"


async def test_failing_store_answers_96_and_the_host_lives_on(
    nursery, tmp_path, monkeypatch, private_redis
):
    monkeypatch.chdir(tmp_path)
    url = f"{private_redis}?prefix=faults-{uuid.uuid4().hex[:8]}"
    host = await start_host(nursery, tmp_path, url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]

    redis_command(private_redis, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    assert redis_command(private_redis, "CONFIG", "SET", "maxmemory", "1") == "+OK"
    refused = purchase(card)
    try:
        response = await switch.send(refused)
        assert response["39"] == "96"
        assert "38" not in response
    finally:
        redis_command(private_redis, "CONFIG", "SET", "maxmemory", "0")
    assert (await switch.send(purchase(card)))["39"] == "00"  # same connection, store back
    # the 96 the switch had is journalled once the store takes writes again
    with trio.fail_after(10):
        while True:
            async with opened_store(url) as store:
                entries = await store.journal(JournalQuery(limit=1000))
            answered = [
                (e.response_code, e.reason_codes) for e in entries if e.stan == refused["11"]
            ]
            if answered:
                break
            await trio.sleep(0.2)
    assert answered == [("96", "error")]
    # nothing was decided: the switch's repeat of that request is decided now, not answered
    # the journalled 96 again (a clearing file or dispute step run again is such a repeat)
    assert (await switch.send(refused))["39"] == "00"
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    assert sorted(e.response_code for e in entries if e.stan == refused["11"]) == ["00", "96"]


@dataclass
class HeldWrites:
    """A store whose writes the test holds back (reads go on) for ``HELD_S``."""

    url: str
    hold: Callable[[], Awaitable[None]]


HELD_S = 1.2


@pytest.fixture(params=["sqlite", "redis"])
def held_writes(request, nursery, tmp_path, monkeypatch) -> HeldWrites:
    """SQLite: another connection holds the file's write lock (WAL readers go on). Redis:
    CLIENT PAUSE WRITE (read-only scripts go on)."""
    monkeypatch.chdir(tmp_path)
    if request.param == "redis":
        private_redis = request.getfixturevalue("private_redis")

        async def pause() -> None:
            paused = redis_command(
                private_redis, "CLIENT", "PAUSE", str(int(HELD_S * 1000)), "WRITE"
            )
            assert paused == "+OK"

        return HeldWrites(f"{private_redis}?prefix=faults-{uuid.uuid4().hex[:8]}", pause)
    path = tmp_path / "authhost.db"

    async def lock() -> None:
        held = sqlite3.connect(path, isolation_level=None)
        held.execute("BEGIN IMMEDIATE")

        async def release() -> None:
            await trio.sleep(HELD_S)
            held.execute("ROLLBACK")
            held.close()

        nursery.start_soon(release)

    return HeldWrites(f"sqlite:///{path}", lock)


async def test_a_deadline_during_the_commit_answers_what_was_written(
    nursery, tmp_path, held_writes
):
    await _late_commit_story(nursery, tmp_path, held_writes.url, held_writes.hold)


async def _late_commit_story(
    nursery: trio.Nursery,
    tmp_path: Path,
    url: str,
    hold_writes: Callable[[], Awaitable[None]],
) -> None:
    """The snapshot is read, the commit waits past the deadline. A commit that has started is
    never torn, so the answer is the approval it wrote, late, never a 91 beside a written
    hold; the journal has that one entry; the switch's repeat gets the same approval; the
    reversal a switch sends for an answer that came too late releases the hold."""
    host = await start_host(nursery, tmp_path, url, deadline_ms=300)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    assert (await switch.send(purchase(card)))["39"] == "00"  # scripts loaded, link warm

    await hold_writes()
    started = trio.current_time()
    late = purchase(card, amount=7_000)
    response = await switch.send(late)
    waited = trio.current_time() - started
    assert response["39"] == "00", response
    assert waited > 0.3  # it did wait for the write, past the deadline

    await trio.sleep(0.5)  # any entry queued off the hot path is written by now
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    answered = [(e.response_code, e.amount_minor) for e in entries if e.stan == late["11"]]
    assert answered == [("00", 7_000)]
    repeat = await switch.send(late)
    assert (repeat["39"], repeat["38"]) == ("00", response["38"])

    _, before = await balances_of(switch, card)
    reversal = {**late, "t": "0420", "11": next_stan(), "90": field_90(late)}
    assert (await switch.send(reversal))["39"] == "00"
    assert (await balances_of(switch, card))[1] == before + 7_000


async def _journalled(url: str, stan: str) -> list[tuple[str, str]]:
    """(response code, reasons) of the entries with ``stan``, once the store has some."""
    with trio.fail_after(10):
        while True:
            async with opened_store(url) as store:
                entries = await store.journal(JournalQuery(limit=1000))
            found = [(e.response_code, e.reason_codes) for e in entries if e.stan == stan]
            if found:
                return found
            await trio.sleep(0.1)


async def test_a_request_that_waits_for_its_card_s_turn_past_the_deadline_gets_91(
    nursery, tmp_path, held_writes
):
    """A purchase of a card on one link waits for its write; another purchase of the same
    card on a second link waits for the card's turn (a card's requests take turns in one
    process) and its deadline comes first: it is answered 91, journalled as such, and its
    repeat is decided afresh; the first, written late, is answered with what was written."""
    host = await start_host(nursery, tmp_path, held_writes.url, deadline_ms=300)
    first_link, second_link = await Switch.connect(host.port), await Switch.connect(host.port)
    card = host.cards["active-visa"]
    assert (await first_link.send(purchase(card)))["39"] == "00"  # warm
    await held_writes.hold()
    first, waiting = purchase(card, amount=2_000), purchase(card, amount=3_000)
    answers: dict[str, dict[str, Any]] = {}

    async def send(link: Switch, fields: dict[str, Any]) -> None:
        answers[fields["11"]] = await link.send(fields)

    async with trio.open_nursery() as both:
        both.start_soon(send, first_link, first)
        await trio.sleep(0.1)  # the first holds the card's turn, in its commit
        both.start_soon(send, second_link, waiting)
    # (on a loaded host the second may take the turn first: then the roles swap)
    codes = {answers[first["11"]]["39"], answers[waiting["11"]]["39"]}
    assert codes == {"00", "91"}, answers
    late, written = (waiting, first) if answers[waiting["11"]]["39"] == "91" else (first, waiting)
    assert await _journalled(held_writes.url, late["11"]) == [("91", "deadline")]
    [(code, _)] = await _journalled(held_writes.url, written["11"])
    assert code == "00"
    link = second_link if late is waiting else first_link
    assert (await link.send(late))["39"] == "00"  # nothing was held for it


async def test_a_later_round_cut_by_the_deadline_leaves_the_earlier_written(
    nursery, tmp_path, held_writes
):
    """Two purchases of a card with a daily count, read together: the second is decided
    after the first is written (a second round), and the first's write waits past the
    deadline. The first is answered with what was written, the second 91 (journalled so),
    and the second's repeat is decided then."""
    host = await start_host(nursery, tmp_path, held_writes.url, deadline_ms=300)
    switch = await Switch.connect(host.port)
    card = host.cards["restricted"]  # 3 a day: its requests need the ones before written
    assert (await switch.send(purchase(card, amount=50)))["39"] == "00"  # scripts loaded
    await held_writes.hold()
    first, second = purchase(card, amount=100), purchase(card, amount=200)
    answers = await switch.send_together([first, second])
    assert answers[first["11"]][0]["39"] == "00"
    assert answers[second["11"]][0]["39"] == "91"
    assert await _journalled(held_writes.url, second["11"]) == [("91", "deadline")]
    assert (await switch.send(second))["39"] == "00"
