"""A background job of the server meeting a store that refuses writes (Redis at its
``maxmemory``) or is gone: one clear line per outage with the store's own words, and one
INFO line once it works again, not a traceback as for a bug on every run (found in a failure
drill: the crash-finisher's lease write, then every other job, logged a full traceback every
run). An error that is not the store's keeps its traceback."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
import trio
from conftest import redis_command
from test_admin_support import open_service

from authhost import node_lease
from authhost.admin.audit_verify import AuditWatch
from authhost.node_lease import NodeWatch, keep_node
from authhost.runtime import (
    RulesWithStoreLists,
    apply_late_reversals,
    expire_holds,
    finish_unfinished,
    follow_acceptor_counters,
    prune_idempotency,
    prune_journal,
    reconcile_disputes,
    refresh_store_lists,
    watch_audit_chain,
)


def said(caplog, name: str = "authhost.runtime") -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == name]


DRILL = ("AUTH", "drill", "drill-password")  # a user of the test's own, to refuse and let go


def as_drill(url: str, *args: str) -> str:
    """One command as the drill user (the default one may be refused everything); its reply
    whole (a bulk string's text, or the status line)."""
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    commands = [DRILL, args]
    payload = "".join(
        f"*{len(c)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in c) for c in commands
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload.encode())
        reply = b""
        while True:
            reply += sock.recv(65536)
            auth, _, rest = reply.partition(b"\r\n")
            assert not _ or auth == b"+OK", reply
            if not rest.endswith(b"\r\n"):
                continue
            if not rest.startswith(b"$"):
                return rest.decode().split("\r\n", 1)[0]
            head, _, body = rest.partition(b"\r\n")
            if len(body) >= int(head[1:]) + 2:
                return body.decode()


def refusals(url: str, kind: str) -> int:
    """How many commands Redis refused with ``kind`` (OOM, NOPERM) so far: the runs of a
    job that failed (INFO errorstats)."""
    for line in as_drill(url, "INFO", "errorstats").splitlines():
        if line.startswith(f"errorstat_{kind}:"):
            return int(line.split("count=", 1)[1].split(",", 1)[0])
    return 0


def refuse(url: str, kind: str) -> None:
    """Redis at its maxmemory (OOM: writes refused), or refusing the store every command
    (NOPERM: as a store gone, for the jobs that only read)."""
    if kind == "OOM":
        assert as_drill(url, "CONFIG", "SET", "maxmemory-policy", "noeviction") == "+OK"
        assert as_drill(url, "CONFIG", "SET", "maxmemory", "1") == "+OK"
    else:
        assert as_drill(url, "ACL", "SETUSER", "default", "-@all") == "+OK"


def let_go(url: str) -> None:
    assert as_drill(url, "CONFIG", "SET", "maxmemory", "0") == "+OK"
    assert as_drill(url, "ACL", "SETUSER", "default", "+@all") == "+OK"


Job = Callable[[Any], Callable[[], Awaitable[None]]]

JOBS: dict[str, tuple[Job, str, str, str]] = {  # the job, its logger, its line, the refusal
    "crash-finisher": (
        lambda cards: partial(finish_unfinished, cards, 0.01, 0.0),
        "authhost.runtime",
        "cannot look for work a crash cut short now",
        "OOM",
    ),
    "journal retention": (
        lambda cards: partial(prune_journal, cards, 400),
        "authhost.runtime",
        "cannot apply the journal retention now",
        "OOM",
    ),
    "idempotency retention": (
        lambda cards: partial(prune_idempotency, cards, 30),
        "authhost.runtime",
        "cannot apply the idempotency retention now",
        "OOM",
    ),
    "late-reversal sweep": (
        lambda cards: partial(apply_late_reversals, cards.store, 0.01, 60.0),
        "authhost.runtime",
        "cannot reverse originals that came after their reversal now",
        "NOPERM",
    ),
    "node lease renewal": (
        lambda cards: partial(keep_node, cards.store, NodeWatch(7), "test pid 1"),
        "authhost.server",
        "cannot renew approval-code node 7's lease now",
        "OOM",
    ),
    "hold expiry": (
        lambda cards: partial(expire_holds, cards.store, 30, 0.0, 0.01),
        "authhost.runtime",
        "cannot expire old holds now",
        "NOPERM",
    ),
    "acceptor counters": (
        lambda cards: partial(follow_acceptor_counters, cards.store, lambda: True),
        "authhost.runtime",
        "cannot bring the merchant and terminal counters up to date now",
        "NOPERM",
    ),
    "audit chain walk": (
        lambda cards: partial(watch_audit_chain, cards, AuditWatch(), 0.01),
        "authhost.runtime",
        "cannot walk the audit log's hash chain now",
        "NOPERM",
    ),
    "store list refresh": (
        lambda cards: partial(refresh_store_lists, RulesWithStoreLists(None, cards.store)),
        "authhost.runtime",
        "cannot read the store's named lists now",
        "NOPERM",
    ),
    "dispute reconciliation": (
        lambda cards: partial(reconcile_disputes, cards, 0.01, set),
        "authhost.runtime",
        "cannot set reversals against open disputes now",
        "NOPERM",
    ),
}


@pytest.mark.parametrize("job", list(JOBS))
async def test_a_job_says_a_store_refusing_it_once_per_outage_and_when_it_works_again(
    tmp_path, private_redis, caplog, monkeypatch, job
):
    import authhost.runtime as runtime

    for name in ("JOURNAL_PRUNE_FIRST_S", "JOURNAL_PRUNE_INTERVAL_S", "STORE_LISTS_POLL_S"):
        monkeypatch.setattr(runtime, name, 0.01)
    for name in ("IDEMPOTENCY_PRUNE_FIRST_S", "IDEMPOTENCY_PRUNE_INTERVAL_S", "AUDIT_FIRST_WALK_S"):
        monkeypatch.setattr(runtime, name, 0.01)
    monkeypatch.setattr(runtime, "ACCEPTOR_FOLLOW_S", 0.01)
    monkeypatch.setattr(node_lease, "NODE_RENEW_S", 0.01)
    make, logger, line, kind = JOBS[job]
    drill = ("ACL", "SETUSER", "drill", "on", ">drill-password", "+@all", "~*", "&*")
    assert redis_command(private_redis, *drill) == "+OK"
    async with open_service(tmp_path, "redis", private_redis) as cards:
        # a bound on a hang (a job that never says the outage, or never works again)
        with caplog.at_level(logging.DEBUG, logger), trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                refuse(private_redis, kind)
                nursery.start_soon(make(cards))
                try:
                    while not said(caplog, logger):
                        await trio.sleep(0.01)
                    refused = refusals(private_redis, kind)
                    while refusals(private_redis, kind) < refused + 3:  # three runs more
                        await trio.sleep(0.01)
                finally:
                    let_go(private_redis)
                while not [r for r in said(caplog, logger) if r.levelno == logging.INFO]:
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
    records = [r for r in said(caplog, logger) if r.filename == "outage.py"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO], caplog.text
    assert all(r.exc_info is None for r in said(caplog, logger)), caplog.text
    words = {"OOM": "OOM", "NOPERM": "no permissions"}[kind]  # the store's own words
    assert line in records[0].getMessage() and words in records[0].getMessage(), caplog.text
    assert "the store works" in records[1].getMessage()


async def test_a_job_keeps_the_traceback_of_an_error_that_is_not_the_stores(tmp_path, caplog):
    """A programming error (here a hold life given as text) is not an outage: its traceback
    on every run, and the job goes on."""
    async with open_service(tmp_path) as cards:
        with caplog.at_level(logging.ERROR, "authhost.runtime"):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(expire_holds, cards.store, "30", 0.0, 0.01)
                while len(said(caplog)) < 2:
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
    assert all(r.exc_info is not None for r in said(caplog)), caplog.text
    assert "cannot expire old holds: an error not the store" in said(caplog)[0].getMessage()
