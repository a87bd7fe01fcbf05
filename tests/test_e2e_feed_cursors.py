"""A journal feed's cursor that its page would answer wrong is refused, over the admin API of a
running host on both stores. Behind the retention cut (`journal prune` deleted entries the
core ledger had not read) a page listed what came after without a word, movements the ledger
never booked: now 409, naming the cut and the re-sync. Beyond the newest entry (another
store's cursor, a Redis dump restore) every page was empty for ever: now 422 naming the
newest id. Cursor 0, a consumer starting fresh, gets what retention left."""

from __future__ import annotations

import json
import time

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import call
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.store import opened_store
from authhost.store.codec import fraud_report_to_json
from authhost.store.interface import Commit, MoneyMove, Movement
from authhost.store.records import FraudReport, JournalEntry

DAY = 86_400.0
FEEDS = ("/v1/journal/movements", "/v1/journal/alerts", "/v1/reviews")


async def _post(store, account_id: str, ts: float, amount: int, stan: str) -> None:  # noqa: ANN001
    """A posting journalled at ``ts`` (a past day: retention can delete it)."""
    entry = JournalEntry(
        ts=ts, mti="0200", response_code="00", message_class="financial", stan=stan,
        account_id=account_id, amount_minor=amount, hold_amount=amount, currency="978",
        movement="post", balance_delta=-amount,
    )  # fmt: skip
    await store.commit(
        Commit(journal=entry, movement=Movement(account_id, MoneyMove.POST, amount, False))
    )


async def _ids(port: int, after_id: int) -> tuple[int, list[int]]:
    page = await call(port, "GET", f"/v1/journal/movements?after_id={after_id}")
    assert page.status == 200, page
    return page.json["next_after_id"], [m["journal_id"] for m in page.json["movements"]]


async def test_a_cursor_behind_the_retention_cut_is_refused_with_what_was_lost(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    account = at.visa["account"]
    now = time.time()
    async with opened_store(store_url) as store:
        await _post(store, account, now - 40 * DAY, 100, "000001")  # the ledger reads this
        await _post(store, account, now - 39 * DAY, 200, "000002")  # and never this one
        await _post(store, account, now - 60, 300, "000003")  # kept
    _, listed = await _ids(at.port, 0)
    first, second, kept = listed[-3:]
    assert (await _ids(at.port, first))[1] == [second, kept]

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("journal", "prune", "--keep-days", "35", "--config", config)
    assert code == 0, out

    for feed in FEEDS:  # the ledger's cursor: the second posting was deleted unread
        refused = await call(at.port, "GET", f"{feed}?after_id={first}")
        assert refused.status == 409, (feed, refused)  # before: 200, listing what came after
        error = refused.json["error"]
        assert f"up to journal id {second} were deleted" in error, error
        assert f"after_id={second}" in error, error
    assert (
        "ledger-balance"
        in (await call(at.port, "GET", f"{FEEDS[0]}?after_id={first}")).json["error"]
    )
    code, out = await run_cli(
        "journal", "movements", "--after-id", str(first), "--config", config
    )  # fmt: skip
    assert code == 1 and "retention cut" in out, out
    assert (await _ids(at.port, 0))[1][-1] == kept  # a consumer starting fresh
    assert (await _ids(at.port, second))[1] == [kept]  # polling on from the cut

    if store_url.startswith("redis"):  # a store pruned before the global cut was kept
        async with opened_store(store_url) as store:
            await store._client.delete([store._keys.journal_cut])
        refused = await call(at.port, "GET", f"{FEEDS[0]}?after_id={first}")
        assert refused.status == 409, refused  # found again from the accounts' hashes


async def test_a_cursor_beyond_the_newest_entry_is_refused_naming_it(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    async with opened_store(store_url) as store:
        await _post(store, at.visa["account"], time.time() - 60, 300, "000003")
    kept, _ = await _ids(at.port, 0)
    for feed in FEEDS:  # another store's cursor, or one a dump restore took back
        beyond = await call(at.port, "GET", f"{feed}?after_id=99999999")
        assert beyond.status == 422, (feed, beyond)  # before: 200 and empty, for ever
        assert f"its newest entry is {kept}" in beyond.json["error"], beyond
    caught_up = await call(at.port, "GET", f"{FEEDS[0]}?after_id={kept}")
    assert caught_up.status == 200 and caught_up.json["movements"] == [], caught_up
    reports = await call(at.port, "GET", "/v1/fraud-reports?after_id=99999999")
    assert reports.status == 422, reports  # before: 200 and empty, for ever
    assert "the last report id handed out is 0" in reports.json["error"], reports
    assert "raise-counters --fraud-reports 99999999" in reports.json["error"], reports


async def _restore_redis(store, dump: dict) -> None:  # noqa: ANN001
    """What loading an older RDB dump does to this test's key space: each key as dumped
    (Redis's own DUMP/RESTORE serialisation), the keys written since gone."""
    client, prefix = store._client, store._keys.prefix
    now = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if now:
        await client.delete(now)
    for key, value in dump.items():
        await client.restore(key, 0, value, replace=True)


async def test_counters_a_dump_restore_took_back_are_raised_past_the_consumers_cursor(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    account, config = at.visa["account"], str(cli_config(tmp_path, store_url))
    async with opened_store(store_url) as store:
        await _post(store, account, time.time() - 60, 100, "000001")
        if store_url.startswith("redis"):
            keys = [k async for k in store._client.scan_iter(match=f"{store._keys.prefix}:*")]
            dump = {key: await store._client.dump(key) for key in keys}
    async with opened_store(store_url) as store:  # another process: its own block of ids
        await _post(store, account, time.time() - 60, 200, "000002")
    cursor, _ = await _ids(at.port, 0)  # the ledger has read the second

    if store_url.startswith("redis"):
        async with opened_store(store_url) as store:
            await _restore_redis(store, dump)
        beyond = await call(at.port, "GET", f"/v1/journal/movements?after_id={cursor}")
        assert beyond.status == 422, beyond  # before: 200, empty
        assert f"raise-counters --journal {cursor}" in beyond.json["error"], beyond

    code, out = await run_cli(
        "store", "raise-counters", "--journal", str(cursor), "--fraud-reports", "7",
        "--config", config,
    )  # fmt: skip
    assert code == 0, out  # before: no such command
    raised = json.loads(out)
    assert raised["journal"] >= cursor and raised["fraud_reports"] >= 7, raised
    code, out = await run_cli("store", "raise-counters", "--journal", "1", "--config", config)
    assert code == 0 and json.loads(out)["journal"] >= cursor, out  # never lowered
    async with opened_store(store_url) as store:  # a server started after the raise
        await _post(store, account, time.time() - 60, 300, "000003")
    _, listed = await _ids(at.port, cursor)
    assert len(listed) == 1 and listed[0] > cursor, listed  # before: its id was the cursor's
    audit = await call(at.port, "GET", "/v1/audit?subject=journal")
    assert "store.raise_counters" in [e["action"] for e in audit.json["audit"]], audit


async def test_a_caught_up_review_queue_is_not_refused_for_unflagged_entries_pruned(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The review queue's cursor moved only over flagged entries: an analyst's queue that had
    read every flagged one sat at the last, and a prune of the unflagged entries after it
    (rules flag few) refused it 409 as if reviews were lost, on every poll after it."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    account = at.visa["account"]
    now = time.time()
    async with opened_store(store_url) as store:
        for ts, stan, review in (
            (now - 40 * DAY, "000001", True),
            (now - 39 * DAY, "000002", False),
        ):
            entry = JournalEntry(
                ts=ts, mti="0100", response_code="00", message_class="authorization",
                stan=stan, account_id=account, amount_minor=100, currency="978",
                review=review,
            )  # fmt: skip
            await store.commit(Commit(journal=entry))
        await _post(store, account, now - 60, 300, "000003")  # kept, not flagged
    page = await call(at.port, "GET", "/v1/reviews")
    assert page.status == 200 and len(page.json["reviews"]) == 1, page
    cursor = page.json["next_after_id"]

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("journal", "prune", "--keep-days", "35", "--config", config)
    assert code == 0, out
    again = await call(at.port, "GET", f"/v1/reviews?after_id={cursor}")
    assert again.status == 200, again  # before: 409, no flagged entry was lost
    assert again.json["reviews"] == [], again


async def test_a_cursor_the_counters_were_raised_past_is_answered_before_new_traffic(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The 422 of a cursor a restore took back names ``raise-counters --journal CURSOR``;
    run as told, the feed went on refusing it, naming the same command, until a new entry
    was written above it (a quiet night's restore: every poll refused)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    async with opened_store(store_url) as store:
        await _post(store, at.visa["account"], time.time() - 60, 300, "000003")
    newest, _ = await _ids(at.port, 0)
    cursor = newest + 1000  # what the ledger read of the entries the restore lost
    beyond = await call(at.port, "GET", f"/v1/journal/movements?after_id={cursor}")
    assert beyond.status == 422, beyond
    code, out = await run_cli(
        "store", "raise-counters", "--journal", str(cursor),
        "--config", str(cli_config(tmp_path, store_url)),
    )  # fmt: skip
    assert code == 0, out
    for feed in FEEDS:
        page = await call(at.port, "GET", f"{feed}?after_id={cursor}")
        assert page.status == 200, (feed, page)  # before: 422, raise-counters again
        assert page.json["next_after_id"] == cursor, page


async def test_a_server_up_across_a_dump_restore_refuses_the_cursor_it_took_back(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A server stays up while Redis's data is restored (not ready until it is back): the
    newest ids it had seen were kept across requests, so the caught-up ledger's cursor,
    seen before the restore, was answered empty pages and never refused."""
    if not store_url.startswith("redis"):
        return  # SQLite's store restore raises the counters itself
    at = await visa_at_host(nursery, tmp_path, store_url)
    account = at.visa["account"]
    async with opened_store(store_url) as store:
        await _post(store, account, time.time() - 60, 100, "000001")
        keys = [k async for k in store._client.scan_iter(match=f"{store._keys.prefix}:*")]
        dump = {key: await store._client.dump(key) for key in keys}
    async with opened_store(store_url) as store:  # another process: a block after the dump
        await _post(store, account, time.time() - 60, 200, "000002")
        cursor, _ = await _ids(at.port, 0)
        await store.put_fraud_report(FraudReport(cursor, "c1", True, "chargeback", time.time()))
    report = (await call(at.port, "GET", "/v1/fraud-reports?after_id=0")).json
    report_cursor = report["next_after_id"]
    for path in (f"/v1/journal/movements?after_id={cursor}", "/v1/reviews?after_id={cursor}"):
        caught_up = await call(at.port, "GET", path.format(cursor=cursor))
        assert caught_up.status == 200, caught_up  # and the newest ids seen
    caught_up = await call(at.port, "GET", f"/v1/fraud-reports?after_id={report_cursor}")
    assert caught_up.status == 200, caught_up

    async with opened_store(store_url) as store:
        await _restore_redis(store, dump)
    for feed in FEEDS:
        refused = await call(at.port, "GET", f"{feed}?after_id={cursor}")
        assert refused.status == 422, (feed, refused)  # before: 200, empty for ever
    refused = await call(at.port, "GET", f"/v1/fraud-reports?after_id={report_cursor}")
    assert refused.status == 422, refused  # before: 200, empty for ever


async def test_a_report_cursor_from_before_report_ids_outlives_its_reports_prune(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A Redis store's reports written before report ids are scored by their journal id,
    above the counter (none): the newest report id was read from the index's top, so once
    retention pruned the last of them a case manager's cursor at it was refused 422."""
    if not store_url.startswith("redis"):
        return  # SQLite's migration 32 set the counter from them
    at = await visa_at_host(nursery, tmp_path, store_url)
    async with opened_store(store_url) as store:
        entry = JournalEntry(
            ts=time.time() - 40 * DAY, mti="0100", response_code="00",
            message_class="authorization", stan="000001", account_id=at.visa["account"],
            amount_minor=100, currency="978",
        )  # fmt: skip
        jid = (await store.commit(Commit(journal=entry))).journal.journal_id
        old = FraudReport(jid, "c1", True, "chargeback", entry.ts)  # as written back then
        await store._client.hset(store._keys.fraud_reports, {str(jid): fraud_report_to_json(old)})
        await store._client.zadd(store._keys.fraud_report_ids, {str(jid): jid})
    page = await call(at.port, "GET", "/v1/fraud-reports")
    assert page.status == 200 and page.json["next_after_id"] == jid, page

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("journal", "prune", "--keep-days", "35", "--config", config)
    assert code == 0, out
    again = await call(at.port, "GET", f"/v1/fraud-reports?after_id={jid}")
    assert again.status == 200 and again.json["reports"] == [], again  # before: 422
