"""One clearing import at a time: the store's lease (``CardStore.take_lease``) on SQLite, Redis
and a Redis Cluster, between two store objects and two processes on the same data, and the
import refused with a 409 (the admin API) or exit 1 (the CLI), posting nothing, while another
holds it. Two imports at once each missed the other's presentments in their duplicate check,
and a duplicate presentment was posted without a flag or a dispute."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
import trio
from host_admin import cli_config, run_cli, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import balances_of, luhn_fix, purchase, store_url  # noqa: F401 - a fixture
from test_e2e_clearing import held_at_host_with_admin, write_clearing
from test_store_contract import redis_cluster_url, store  # noqa: F401 - fixtures

from authhost.admin.errors import ConflictError
from authhost.admin.service.clearing_imports import (
    CLEARING_LEASE,
    LEASE_TTL_S,
    _kept,
    _take_clearing_lease,
)
from authhost.admin.service.leases import HeldLease
from authhost.store import opened_store
from authhost.store.interface import CardStore


async def test_a_lease_has_one_owner_until_dropped_or_expired(store: CardStore):  # noqa: F811
    assert await store.lease_of("work") is None
    assert await store.take_lease("work", "A", 30)
    held = await store.lease_of("work")
    assert held is not None and held.owner == "A" and held.expires_at > time.time() + 25
    assert not await store.take_lease("work", "B", 30)  # A holds it
    assert await store.take_lease("work", "A", 60)  # renewed by its owner
    renewed = await store.lease_of("work")
    assert renewed is not None and renewed.since == held.since  # since it was first taken
    assert renewed.expires_at > time.time() + 55
    await store.drop_lease("work", "B")  # not B's: stays
    assert not await store.take_lease("work", "B", 30)
    assert await store.take_lease("other work", "B", 30)  # leases are by name
    await store.drop_lease("work", "A")
    assert await store.lease_of("work") is None
    assert await store.take_lease("work", "B", 30)  # free again
    assert (await store.lease_of("work")).owner == "B"

    # an owner that never drops it (a crashed import) blocks the next one for its ttl only
    assert await store.take_lease("crash", "A", 0.2)
    assert not await store.take_lease("crash", "B", 30)
    await trio.sleep(0.3)
    assert await store.lease_of("crash") is None
    assert await store.take_lease("crash", "B", 30)
    assert not await store.take_lease("crash", "A", 0.2)  # A's renewal comes too late
    await store.drop_lease("crash", "A")  # and its drop leaves B's lease alone
    assert (await store.lease_of("crash")).owner == "B"


async def test_two_stores_on_the_same_data_contend_for_a_lease(store: CardStore):  # noqa: F811
    """Two store objects on one SQLite file (one Redis key space): as two processes are."""
    other = await store.reopen()
    try:
        results = []

        async def take(s: CardStore, owner: str) -> None:
            results.append((owner, await s.take_lease("work", owner, 30)))

        for _ in range(5):  # at once, each time: one of the two gets it
            async with trio.open_nursery() as nursery:
                nursery.start_soon(take, store, "A")
                nursery.start_soon(take, other, "B")
            assert sorted(taken for _, taken in results) == [False, True]
            winner = next(owner for owner, taken in results if taken)
            assert (await other.lease_of("work")).owner == winner
            assert (await store.lease_of("work")).owner == winner
            await (store if winner == "A" else other).drop_lease("work", winner)
            results.clear()
        assert await other.take_lease("work", "B", 30)
        assert not await store.take_lease("work", "A", 30)
        await store.drop_lease("work", "A")
        assert not await store.take_lease("work", "A", 30)
        await other.drop_lease("work", "B")
        assert await store.take_lease("work", "A", 30)
    finally:
        await other.close()


def test_a_process_that_dies_holding_the_lease_blocks_for_its_ttl_only(sqlite_path):
    """Another process takes the lease and exits without dropping it (a killed import)."""
    url = f"sqlite:///{sqlite_path}"
    script = (
        "import sys, trio\n"
        "from authhost.store import open_store\n"
        "async def main():\n"
        "    s = await open_store(sys.argv[1])\n"
        "    print(await s.take_lease('clearing.import', 'cli:ops#dead', 1.0))\n"
        "    await s.close()\n"
        "trio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "True", done.stderr

    async def main() -> None:
        async with opened_store(url) as s:
            assert not await s.take_lease("clearing.import", "api:me#1", 30)
            await trio.sleep(1.2)
            assert await s.take_lease("clearing.import", "api:me#1", 30)

    trio.run(main)


async def test_an_import_renews_its_lease_and_stops_once_another_took_it(store: CardStore):  # noqa: F811
    """The import's lease is renewed as it goes (``keep``); one that stalled past its expiry
    while another import took it stops rather than post beside it."""
    lease = HeldLease(store, CLEARING_LEASE, "api:ops", LEASE_TTL_S)
    await _take_clearing_lease(lease)
    first = await store.lease_of(CLEARING_LEASE)
    await _kept(lease)()  # not due: nothing asked of the store
    unrenewed = await store.lease_of(CLEARING_LEASE)
    assert unrenewed.expires_at == pytest.approx(first.expires_at, abs=0.05)  # (Redis: PTTL)
    lease.renew_at = 0.0  # due
    await trio.sleep(0.2)
    await _kept(lease)()
    renewed = await store.lease_of(CLEARING_LEASE)
    assert renewed.owner == lease.owner and renewed.expires_at > first.expires_at + 0.1

    second = HeldLease(store, CLEARING_LEASE, "cli:other", LEASE_TTL_S)
    with pytest.raises(ConflictError, match=r"a clearing import is running \(since .*by api:ops"):
        await _take_clearing_lease(second)
    await store.drop_lease(CLEARING_LEASE, lease.owner)  # as if it had expired
    await _take_clearing_lease(second)
    lease.renew_at = 0.0
    with pytest.raises(ConflictError, match="the clearing import stopped"):
        await _kept(lease)()
    await lease.drop()  # not its lease any more: the second's stays
    assert (await store.lease_of(CLEARING_LEASE)).owner == second.owner
    await second.drop()
    assert await store.lease_of(CLEARING_LEASE) is None


async def test_an_import_while_another_runs_is_refused_and_posts_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The admin API answers 409 and the CLI exits 1, naming since when the running import
    runs; nothing is posted or audited; a dry run still runs; once the running import has
    dropped its lease, the same file imports."""
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    visa = host.cards["active-visa"]
    held = await switch.send(purchase(visa, amount=10_000))
    assert held["39"] == "00"
    before = await balances_of(switch, visa)
    row: dict[str, Any] = {
        "pan": visa["pan"], "approval_code": held["38"], "amount_minor": 12_000,
        "currency": visa["currency"], "presented_at": time.time(), "arn": luhn_fix("7" * 22),
    }  # fmt: skip
    file = write_clearing(tmp_path / "clearing.csv", [row])
    text = file.read_text()
    config = cli_config(tmp_path, store_url)

    async with opened_store(store_url) as other:  # another import: the CLI, another worker
        assert await other.take_lease(CLEARING_LEASE, "cli:night-batch#1f2e", 120)

        refused = await call(port, "POST", "/v1/clearing", payload={"csv": text})
        assert refused.status == 409, refused
        message = refused.json["error"]
        assert message.startswith("a clearing import is running (since ")
        assert "by cli:night-batch" in message and "retry when it ends" in message
        code, output = await run_cli("clearing", "import", str(file), "--config", str(config))
        assert code == 1 and "error: a clearing import is running (since " in output, output
        assert "Traceback" not in output

        dry = await call(port, "POST", "/v1/clearing", payload={"csv": text, "dry_run": True})
        assert dry.status == 200 and dry.json["outcomes"] == {"matched": 1}, dry
        assert await balances_of(switch, visa) == before  # nothing posted
        audit = await call(port, "GET", "/v1/audit?subject=clearing", token=AUDITOR_TOKEN)
        assert audit.json["audit"] == []  # nor audited
        assert (await other.lease_of(CLEARING_LEASE)).owner == "cli:night-batch#1f2e"

        await other.drop_lease(CLEARING_LEASE, "cli:night-batch#1f2e")  # it ended
        done = await call(port, "POST", "/v1/clearing", payload={"csv": text})
        assert done.status == 200 and done.json["outcomes"] == {"matched": 1}, done
        assert await other.lease_of(CLEARING_LEASE) is None  # dropped when the import ended
        ledger, available = before
        assert await balances_of(switch, visa) == (ledger - 12_000, available - 2_000)

        code, output = await run_cli("clearing", "import", str(file), "--config", str(config))
        assert code == 0, output
        assert json.loads(output)["outcomes"] == {"duplicate": 1}
        assert await other.lease_of(CLEARING_LEASE) is None


async def test_two_imports_at_once_never_post_a_duplicate_unflagged(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The race itself: two files pushed at once, each presenting the same 100.00 purchase
    under its own ARN (after many rows to match first, so the two imports overlap). Before
    the lease each import matched its row before the other's was posted, and both posted
    unflagged; now the second is refused while the first runs (or, started after it ended,
    flags its row), so of the two posted, one is flagged."""
    host, port, switch, visa, held = await held_at_host_with_admin(
        nursery, tmp_path, store_url, 10_000
    )
    now = time.time()
    header = "pan,approval_code,amount_minor,currency,presented_at,arn\n"

    def file(digit: str) -> str:
        unknown = [  # matched and reported, nothing posted: what makes the imports overlap
            f"{luhn_fix('476173' + f'{i:09d}')},ABC123,500,{visa['currency']},{now},"
            f"{luhn_fix(f'{digit * 11}{i:011d}')}\n"
            for i in range(150)
        ]
        charge = (
            f"{visa['pan']},{held['38']},10000,{visa['currency']},{now},{luhn_fix(digit * 22)}\n"
        )
        return header + "".join(unknown) + charge

    replies: list[Any] = [None, None]

    async def push(i: int, text: str) -> None:
        replies[i] = await call(port, "POST", "/v1/clearing", payload={"csv": text})

    async with trio.open_nursery() as both:
        both.start_soon(push, 0, file("8"))
        both.start_soon(push, 1, file("9"))
    statuses = sorted(r.status for r in replies)
    assert statuses in ([200, 200], [200, 409]), [r.json for r in replies]
    posted = [r.json["rows"][-1] for r in replies if r.status == 200]
    assert all(row["outcome"] == "matched" for row in posted)
    flagged = sum("suspected_duplicate" in row for row in posted)
    assert flagged == len(posted) - 1, posted
    for r in replies:
        if r.status == 409:
            assert r.json["error"].startswith("a clearing import is running (since ")


async def test_an_import_whose_lease_lapsed_and_was_taken_meanwhile_stops(store: CardStore):  # noqa: F811
    """The lease lapsed (not renewed for its ttl), another import took it, posted and ended:
    the stalled import's next renewal finds the lease free and takes it again, but the other
    one ran beside it, unseen by its duplicate check; it stops as when the other still runs."""
    lease = HeldLease(store, CLEARING_LEASE, "api:ops", LEASE_TTL_S)
    await _take_clearing_lease(lease)
    await store.drop_lease(CLEARING_LEASE, lease.owner)  # as if it had expired
    second = HeldLease(store, CLEARING_LEASE, "cli:other", LEASE_TTL_S)
    await _take_clearing_lease(second)
    await second.drop()  # the other import ran and ended
    lease.renew_at = 0.0
    with pytest.raises(ConflictError, match="the clearing import stopped"):
        await _kept(lease)()
    await lease.drop()
    assert await store.lease_of(CLEARING_LEASE) is None
