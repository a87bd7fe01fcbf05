"""Redis commits that are ready together go in one pipeline: each lands exactly once, funds
are re-checked per commit inside its script, and scripts Redis lost are reloaded and only the
commits that did not run are sent again. Snapshots read together (``snapshot_many``) share one
pipeline too, and read what one snapshot at a time reads."""

from __future__ import annotations

from dataclasses import replace

import pytest
import trio
from test_store_contract import NOW, entry, hold, make_card, seeded

from authhost.cards.model import Account, CardKind, CardState
from authhost.store import codec, opened_store
from authhost.store.interface import SnapshotQuery, StoreError
from authhost.store.records import journal_dict
from authhost.store.redis import (
    _HOLD_PLACEHOLDER,
    MAX_PER_SCRIPT,
    _funds_short,
    _funds_short_json,
)
from authhost.store.redis_keys import Keys


@pytest.fixture
def store(redis_store):
    return redis_store


@pytest.fixture
async def lone_store(private_redis):
    """A store on a redis-server of its own: for tests that flush its scripts (on the shared
    server that would pull the scripts from under the other worker's tests)."""
    from authhost.store import open_store

    store = await open_store(private_redis, prefix="lone")
    try:
        yield store
    finally:
        await store.close()


async def commit_many(store, card, count: int, amount: int, first: int = 0) -> list:
    results = [None] * count

    async def one(i: int) -> None:
        results[i] = await store.commit(hold(card, first + i, amount))

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    return results


async def test_concurrent_commits_share_pipelines_and_never_overspend(store):
    card, _ = await seeded(store, balance=10_000)
    results = await commit_many(store, card, 40, 700)
    assert store.pipelined_batches >= 1  # they did travel together
    approved = [r for r in results if r.funds_ok]
    assert len(approved) == 10_000 // 700  # each re-checked the funds in its own script
    assert len({r.journal.journal_id for r in results}) == 40
    assert (await store.get_account("acc-1")).holds == len(approved) * 700


async def test_lost_scripts_are_reloaded_and_each_commit_lands_once(lone_store):
    store = lone_store
    card, _ = await seeded(store, balance=100_000)
    await store.client.script_flush()
    results = await commit_many(store, card, 12, 100)
    assert store.pipelined_batches >= 1  # the lost script was met inside a pipeline
    assert all(r.funds_ok for r in results)
    assert (await store.get_account("acc-1")).holds == 12 * 100


async def test_commit_many_sends_one_pipeline_with_ids_in_order(store):
    card, _ = await seeded(store, balance=100_000)
    before = store.pipelined_batches
    results = await store.commit_many([hold(card, i, 100) for i in range(10)])
    assert store.pipelined_batches == before + 1  # one call, one pipeline
    ids = [r.journal.journal_id for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 10  # increasing in the order given
    assert (await store.get_account("acc-1")).holds == 10 * 100


async def test_snapshots_read_together_equal_snapshots_read_alone(store):
    card, _ = await seeded(store, balance=50_000)
    other, _, blob = make_card()
    await store.create_card(other, blob)
    for i in range(3):  # velocity events and a dedupe key to find again
        await store.commit(hold(card, i, 1_000))
    queries = [
        SnapshotQuery(card.pan_index, NOW + 10, dedupe_key=hold(card, 1, 0).journal.dedupe_key),
        SnapshotQuery(other.pan_index, NOW + 10),
        SnapshotQuery("0" * 64, NOW + 10),
        SnapshotQuery(card.pan_index, NOW + 10, original_key=hold(card, 2, 0).journal.match_key),
    ]
    together = await store.snapshot_many(queries)
    alone = [await store.snapshot(q) for q in queries]
    assert together == alone
    assert together[0].velocity.count_1h == 3 and together[0].previous is not None
    assert together[1].card == other and together[2].card is None
    assert together[3].original is not None and together[3].original.amount_minor == 1_000


async def test_snapshots_read_together_survive_lost_scripts(lone_store):
    store = lone_store
    card, _ = await seeded(store)
    await store.client.script_flush()
    snaps = await store.snapshot_many([SnapshotQuery(card.pan_index, NOW)] * 3)
    assert [s.card for s in snaps] == [card] * 3


async def test_a_commit_that_fails_inside_redis_fails_alone(store):
    """Commits sent together in one call: one that Redis refuses (here its account's holds
    key holds a string, so the script's HGET fails) is an error in its place; the commits
    before and after it land."""
    card, _ = await seeded(store, balance=100_000)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=100_000))
    broken, _, blob = make_card(account_id="acc-2", state=CardState.ACTIVE)
    await store.create_card(broken, blob)
    await store.client.set(Keys(store.prefix).account("acc-2").holds, "not a hash")
    first, failed, last = await store.commit_many(
        [hold(card, 1, 100), hold(broken, 2, 100), hold(card, 3, 100)]
    )
    assert isinstance(failed, StoreError) and "WRONGTYPE" in str(failed)
    assert first.funds_ok and last.funds_ok
    assert (await store.get_account("acc-1")).holds == 200


async def test_a_snapshot_that_fails_inside_redis_fails_alone(store):
    """Snapshots read together in one script call: one that Redis refuses (its account key
    holds a string, so the script's HMGET fails) is an error in its place, and the requests
    read with it still get their snapshots (before, one bad record failed all of them)."""
    card, _ = await seeded(store)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=100_000))
    broken, _, blob = make_card(account_id="acc-2", state=CardState.ACTIVE)
    await store.create_card(broken, blob)
    await store.client.set(Keys(store.prefix).account("acc-2").account, "not a hash")
    queries = [SnapshotQuery(c.pan_index, NOW) for c in (card, broken, card)]
    first, failed, last = await store.snapshot_many(queries)
    assert isinstance(failed, StoreError) and "WRONGTYPE" in str(failed)
    assert first.card == card and last.card == card
    assert first.account.account_id == "acc-1" and last.account == first.account


async def test_a_card_parsed_before_is_reused_until_it_changes(store):
    """The script sends a card's JSON only when its version differs from the one this process
    parsed last for the PAN; any change to the card (state, PIN tries) moves the version."""
    card, _ = await seeded(store)
    query = SnapshotQuery(card.pan_index, NOW)
    first = await store.snapshot(query)
    (again, together) = await store.snapshot_many([query, query])
    assert again.card is first.card and together.card is first.card  # not decoded again
    await store.update_card(replace(first.card, state=CardState.SUSPENDED))
    (suspended,) = await store.snapshot_many([query])
    assert suspended.card.state is CardState.SUSPENDED
    assert suspended.card.version == first.card.version + 1
    await store.commit(replace(hold(card, 1, 100), pin_wrong=True))
    tries, _ = await store.snapshot_many([query, query])
    assert tries.card.pin_tries == 1 and tries.card.version == suspended.card.version + 1


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"reason_codes": 'rule."x";é', "approval_code": "A1B2C3"},
        {"terminal_id": '"response_code":"00",', "merchant_id": '"hold_amount":"__HOLD__",'},
    ],
)
def test_the_funds_short_form_is_the_entry_encoded_with_its_changes(changes):
    """The commit sends the entry as stored when funds are short, made from the approved
    form by replacing four fields where they stand: it must equal encoding it afresh, also
    when other fields hold text that looks like those fields."""
    card, _, _ = make_card()
    e = entry(card, 1, **changes)
    data = journal_dict(e)
    approved = codec.compact_json({**data, "hold_amount": _HOLD_PLACEHOLDER})
    fresh = codec.compact_json({**data, **_funds_short(e)})
    assert _funds_short_json(approved, e) == fresh


async def test_an_unchanged_card_is_the_one_its_snapshot_offered(store, monkeypatch):
    """Redis answers '=' for a card version the snapshot said it had parsed; that card travels
    with the snapshot, so emptying the cache of parsed cards in between (here: a cache of one,
    emptied by the first card of the batch) cannot lose it."""
    monkeypatch.setattr("authhost.store.redis.CARD_CACHE_SIZE", 1)
    card, _ = await seeded(store)
    other, _, blob = make_card(state=CardState.ACTIVE)
    await store.create_card(other, blob)
    known = await store.snapshot(SnapshotQuery(card.pan_index, NOW))  # parsed and kept
    fresh, again = await store.snapshot_many(
        [SnapshotQuery(other.pan_index, NOW), SnapshotQuery(card.pan_index, NOW)]
    )
    assert fresh.card == other
    assert again.card is known.card


async def test_a_burst_is_split_into_bounded_script_calls(private_redis):
    """Redis runs one script at a time: 150 commits (or snapshots) read together go as
    ceil(150 / MAX_PER_SCRIPT) script calls, and every one of them lands, in order. (A
    redis-server of its own: the count of script calls is the server's.)"""
    async with opened_store(private_redis) as store:
        card, _ = await seeded(store, balance=1_000_000)
        calls = -(-150 // MAX_PER_SCRIPT)
        assert calls > 1  # the premise: 150 is a burst

        async def script_calls() -> int:
            stats = await store.client.info("commandstats")
            return sum(
                int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
                for name in ("evalsha", "evalsha_ro")
            )

        # the first call of each script on a fresh server meets NOSCRIPT and is sent again
        await store.commit_many([hold(card, i, 10) for i in range(1000, 1002)])
        await store.snapshot_many([SnapshotQuery(card.pan_index, NOW)] * 2)
        before = await script_calls()
        results = await store.commit_many([hold(card, i, 10) for i in range(150)])
        assert await script_calls() - before == calls
        ids = [r.journal.journal_id for r in results]
        assert all(r.funds_ok for r in results) and ids == sorted(ids)
        assert (await store.get_account("acc-1")).holds == 1_520
        before = await script_calls()
        snaps = await store.snapshot_many([SnapshotQuery(card.pan_index, NOW)] * 150)
        assert await script_calls() - before == calls
        assert all(s.card.card_id == card.card_id for s in snaps)
