"""A store that answers reads but refuses writes (a full disk, Redis at its maxmemory), end to
end: each authorisation that needs a write is answered 96 and logged as one line with the
store's own words (no traceback: it is not a bug), an admin write is a 503 saying so, and
``/readyz`` turns 503 once writes have been refused for ``WRITES_REFUSED_S``, where its read
probe alone would call the host ready. All of it comes back by itself once the store takes
writes again: ready, approvals, and the 96s the switch had in the journal.

SQLite is held at its size with its own ``PRAGMA max_page_count`` on the running store's
connections: a write that needs a new page fails with SQLITE_FULL, "database or disk is full",
the error a full disk gives. Redis gets ``maxmemory 1`` on a redis-server of the test's own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from conftest import free_port, redis_command
from host_admin import start_host_with_admin
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import Host, purchase
from test_server_health import until

from authhost.server import health
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

NO_LIMIT = 1_073_741_823  # SQLite's max_page_count before 3.45: far above any test's size


@dataclass
class Refusing:
    url: str
    refuse: Callable[[Host], Awaitable[None]]
    allow: Callable[[Host], Awaitable[None]]
    words: str  # what the store says when it refuses


async def _max_pages(host: Host, pages: int) -> None:
    """Both connections that write: the event loop's (authorisations, the journal's backlog)
    and the writer thread's (admin writes). Set below the size, the limit is the size."""
    store = host.runtime.store
    sql = f"PRAGMA max_page_count = {pages}"
    store._inline_reader().execute(sql)  # this test runs on the server's event loop thread
    await store._writer.run(lambda conn: conn.execute(sql).fetchall())


@pytest.fixture(params=["sqlite", "redis"])
def refusing(request, tmp_path, monkeypatch) -> Refusing:
    monkeypatch.chdir(tmp_path)
    if request.param == "sqlite":
        return Refusing(
            f"sqlite:///{tmp_path / 'authhost.db'}",
            lambda host: _max_pages(host, 1),
            lambda host: _max_pages(host, NO_LIMIT),
            "database or disk is full",
        )
    redis = request.getfixturevalue("private_redis")
    assert redis_command(redis, "CONFIG", "SET", "maxmemory-policy", "noeviction") == "+OK"

    async def maxmemory(value: str) -> None:
        assert redis_command(redis, "CONFIG", "SET", "maxmemory", value) == "+OK"

    return Refusing(
        f"{redis}?prefix=refusing-{uuid.uuid4().hex[:8]}",
        lambda _: maxmemory("1"),
        lambda _: maxmemory("0"),
        "OOM",
    )


async def test_a_store_refusing_writes_answers_96_says_not_ready_and_recovers(
    refusing, nursery, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="authhost")
    monkeypatch.setattr(health, "WRITES_REFUSED_S", 1.0)
    metrics_port = free_port()
    host, admin_port = await start_host_with_admin(
        nursery, tmp_path, refusing.url, metrics_port=metrics_port
    )
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    assert (await switch.send(purchase(card, amount=100)))["39"] == "00"
    await until(metrics_port, "/readyz", 200)

    await refusing.refuse(host)
    refused = None
    for _ in range(400):  # SQLite: new rows fit on the last pages for a while
        request = purchase(card, amount=100)
        response = await switch.send(request)
        if response["39"] == "96":
            refused = request
            break
        assert response["39"] == "00", response
    assert refused is not None, "the store never refused a write"
    assert "38" not in response  # no approval code on a 96

    down = await until(metrics_port, "/readyz", 503)
    assert down["live"] and down["store"]["ok"], down  # it reads: only the writes say why
    assert not down["store"]["writes_ok"], down
    assert refusing.words in down["store"]["writes_error"], down
    assert down["store"]["journal_waiting"] >= 1, down

    failed = [r for r in caplog.records if r.getMessage() == "the store failed, answering 96"]
    assert failed, [r.getMessage() for r in caplog.records]
    assert failed[0].exc_info is None  # the store's words, not a traceback
    assert refusing.words in failed[0].fields["error"]
    assert not [r for r in caplog.records if r.getMessage() == "decision failed, answering 96"]

    values = [f"{n:06d}" for n in range(20_000)]  # pages of them: a write the store refuses
    listed = await call(admin_port, "PUT", "/v1/lists/refused", payload={"values": values})
    assert listed.status == 503, listed
    assert refusing.words in listed.json["error"], listed.json

    await refusing.allow(host)
    ready = await until(metrics_port, "/readyz", 200)
    assert ready["store"]["writes_ok"] and ready["store"]["writes_error"] == "", ready
    assert ready["store"]["journal_waiting"] == 0, ready  # the backlog is written
    async with opened_store(refusing.url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    answered = [(e.response_code, e.reason_codes) for e in entries if e.stan == refused["11"]]
    assert answered == [("96", "error")]
    assert (await switch.send(purchase(card, amount=100)))["39"] == "00"
    listed = await call(admin_port, "PUT", "/v1/lists/refused", payload={"values": values[:10]})
    assert listed.status == 200, listed
