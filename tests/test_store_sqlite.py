"""SQLite specifics: schema versions, bad URLs, and several processes sharing one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from authhost.cards.model import Account, CardKind
from authhost.store import BadStoreUrl, open_store
from authhost.store.interface import Commit, StoreError
from authhost.store.opener import sqlite_path
from authhost.store.sqlite_schema import SCHEMA_VERSION


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///authhost.db", "authhost.db"),
        ("sqlite:///data/cards.db", "data/cards.db"),
        ("sqlite:////var/lib/authhost/cards.db", "/var/lib/authhost/cards.db"),
    ],
)
def test_sqlite_url_to_path(url, path):
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://db/cards"])
async def test_bad_urls_are_refused_with_a_hint(url):
    with pytest.raises(BadStoreUrl, match="sqlite:///"):
        await open_store(url)


async def test_schema_is_versioned_and_reopening_keeps_data(tmp_path):
    path = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{path}")
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=5))
    assert store.info().shared_between_processes
    await store.close()
    assert path.stat().st_mode & 0o777 == 0o600  # owner only: it holds encrypted PANs
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = await open_store(str(path))  # a bare path works too
    assert (await again.get_account("acc-1")).balance == 5
    await again.close()


async def test_a_file_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "cards.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="upgrade authhost"):
        await open_store(f"sqlite:///{path}")


async def test_unwritable_location_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        await open_store(f"sqlite:///{tmp_path}/missing-dir/cards.db")


WORKER = textwrap.dedent(
    """
    import sys, trio
    sys.path.insert(0, sys.argv[3])
    from test_store_contract import hold, make_card
    from authhost.store import open_store
    from authhost.store.interface import SnapshotQuery

    async def main():
        store = await open_store(sys.argv[1])
        card = await store.find_card(sys.argv[2])
        approved = 0

        async def one(n):
            nonlocal approved
            result = await store.commit(hold(card, n, 700))
            approved += result.funds_ok

        async with trio.open_nursery() as nursery:
            for n in range(int(sys.argv[4]), int(sys.argv[4]) + 25):
                nursery.start_soon(one, n)
        await store.close()
        print(approved)

    trio.run(main)
    """
)


async def test_two_processes_never_overspend_one_account(tmp_path, request):
    """The funds re-check holds across processes (the basis for ``serve --workers`` on SQLite)."""
    from test_store_contract import seeded

    url = f"sqlite:///{tmp_path / 'cards.db'}"
    store = await open_store(url)
    card, _ = await seeded(store, balance=10_000)
    await store.close()
    tests_dir = str(request.path.parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, card.pan_index, tests_dir, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in (0, 1000)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    approved = sum(int(out.strip()) for out, _ in outputs)
    assert approved == 10_000 // 700
    store = await open_store(url)
    account = await store.get_account("acc-1")
    await store.close()
    assert account.holds == approved * 700 <= 10_000


async def test_a_failing_write_in_a_group_commit_is_undone_alone(tmp_path):
    """Writes that queue together share one transaction; each runs in its own savepoint."""
    import anyio

    from authhost.store.interface import Conflict

    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    outcomes: dict[int, str] = {}

    async def create(n: int) -> None:
        try:
            await store.create_account(Account(f"acc-{n % 10}", "978", CardKind.DEBIT, balance=n))
            outcomes[n] = "created"
        except Conflict:
            outcomes[n] = "conflict"

    try:
        async with anyio.create_task_group() as tg:
            for n in range(30):
                tg.start_soon(create, n)
        assert sorted(outcomes.values()).count("created") == 10
        accounts = await store.list_accounts()
        assert [a.account_id for a in accounts] == [f"acc-{n}" for n in range(10)]
        for account in accounts:  # the winner's balance, untouched by the losers
            assert outcomes[account.balance] == "created"
    finally:
        await store.close()


async def test_the_snapshot_finds_the_current_card_from_an_index_without_sorting(tmp_path):
    """Migration 4's expression index must stay the snapshot's ORDER BY: if one changes without
    the other, every authorisation pays for a sort again (and this plan shows it)."""
    from authhost.store.sqlite import _SNAPSHOT_SQL

    path = tmp_path / "cards.db"
    await (await open_store(f"sqlite:///{path}")).close()
    with sqlite3.connect(path) as conn:
        params = {"pan": "x", "known_card": "", "known_version": -1, "mark": 0, "dedupe": "",
                  "original": "", "now": 0.0}  # fmt: skip
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {_SNAPSHOT_SQL}", params)]
    assert any("USING COVERING INDEX cards_current" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


async def test_the_loop_connection_leaves_checkpoints_to_the_checkpointer(tmp_path):
    """Group commits write on the event loop's own connection: with SQLite's default threshold
    (1,000 pages) its commits would checkpoint and fsync on the loop thread; it must carry the
    same backstop as the writer thread's connection."""
    from test_store_contract import hold, seeded

    from authhost.store.sqlite_checkpoint import BACKSTOP_PAGES

    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    try:
        card, _ = await seeded(store)
        await store.commit(hold(card, 1, 100))  # the commit opens the loop's connection
        conn = store._inline_reader()  # noqa: SLF001 - the connection group commits write on
        assert conn is not None
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    finally:
        await store.close()


async def test_hold_expiry_reads_only_open_holds(tmp_path):
    """Holds are kept after release or posting; the expiry run must read the partial index of
    open holds (migration 8), not every hold older than the cutoff."""
    from test_store_contract import NOW, hold, seeded

    from authhost.store.interface import MoneyMove
    from authhost.store.sqlite import _EXPIRED_HOLDS_SQL

    path = tmp_path / "cards.db"

    def open_holds_indexed() -> int:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT count(*) FROM holds INDEXED BY holds_open_by_age "
                                "WHERE posted = 0 AND amount > reversed").fetchone()[0]  # fmt: skip

    store = await open_store(f"sqlite:///{path}")
    try:
        card, _ = await seeded(store)
        await store.commit(hold(card, 1, 100))  # open
        await store.commit(hold(card, 2, 200, MoneyMove.POST))  # posted: never open
        await store.commit(hold(card, 3, 300))
        assert open_holds_indexed() == 2
        assert await store.expire_holds(NOW + 10_000) == 2
        assert open_holds_indexed() == 0  # a released hold leaves the index
        assert await store.expire_holds(NOW + 10_000) == 0
        assert (await store.get_account("acc-1")).holds == 0
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        params = {"cutoff": 0.0, "scan_until": 0.0}
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {_EXPIRED_HOLDS_SQL}", params)]
    assert any("USING INDEX holds_open_by_age" in step for step in plan), plan


async def test_a_snapshot_on_the_reader_thread_reads_the_same_as_on_the_loop(tmp_path):
    """When the loop's own read would have to wait (busy file), the snapshot runs on the reader
    thread instead: the same statement and the same kept velocity counters, under their lock,
    so both ways give what compute_velocity gives while commits keep landing."""
    import trio
    from test_store_contract import NOW, as_entry, seeded

    from authhost.cards.velocity import VelocityEvent, compute_velocity
    from authhost.store.interface import Commit, SnapshotQuery

    store = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    try:
        card, _ = await seeded(store, balance=10**9)
        events: list[VelocityEvent] = []

        async def on_reader_thread(query: SnapshotQuery):
            return await store._reader.run(lambda conn: store._read_snapshot(conn, query))

        async def take(results, name, read, query):
            results[name] = await read(query)

        for n in range(30):
            event = VelocityEvent(NOW - 600 + n, 100 + n, n % 3 != 0, f"M{n % 4}", "276")
            await store.commit(Commit(as_entry(card, n, event), card_id=card.card_id))
            events.append(event)
            query = SnapshotQuery(card.pan_index, NOW)
            results: dict[str, object] = {}
            async with trio.open_nursery() as both:  # the two ways at once, on one store
                both.start_soon(take, results, "thread", on_reader_thread, query)
                both.start_soon(take, results, "loop", store.snapshot, query)
            expected = compute_velocity(events, NOW)
            assert results["thread"].velocity == expected == results["loop"].velocity
            assert results["thread"].card == card == results["loop"].card
    finally:
        await store.close()


async def test_a_snapshot_sees_every_change_to_a_card_it_has_read_before(tmp_path):
    """The snapshot re-reads a card's JSON only when its version moved: every change, by this
    process or another one on the file, must still show."""
    from dataclasses import replace

    from test_store_contract import NOW, entry, seeded

    from authhost.cards.model import CardState
    from authhost.store.interface import Commit, SnapshotQuery

    url = f"sqlite:///{tmp_path / 'cards.db'}"
    store, other = await open_store(url), await open_store(url)
    try:
        card, _ = await seeded(store)
        query = SnapshotQuery(card.pan_index, NOW)
        assert (await store.snapshot(query)).card == card
        assert (await store.snapshot(query)).card == card  # the known card, unchanged
        suspended = await store.update_card(replace(card, state=CardState.SUSPENDED))
        assert (await store.snapshot(query)).card == suspended
        await store.commit(Commit(entry(suspended, 1, response_code="55"),
                                  card_id=card.card_id, pin_wrong=True))  # fmt: skip
        seen = (await store.snapshot(query)).card
        assert (seen.pin_tries, seen.state) == (1, CardState.SUSPENDED)
        active = await other.update_card(replace(seen, state=CardState.ACTIVE))
        assert (await store.snapshot(query)).card == active  # changed by another process
    finally:
        await store.close()
        await other.close()


async def test_a_file_from_schema_3_is_brought_forward_and_serves_its_cards(tmp_path):
    """An installation written before migrations 4-8 (velocity table, no product_id column,
    accounts and products with rowids, every hold indexed by age) opens, migrates and answers snapshots with the card's
    account, product and journal history."""
    from test_store_contract import NOW, PRODUCT, make_card

    from authhost.cards.model import CardState
    from authhost.store import codec
    from authhost.store.interface import SnapshotQuery
    from authhost.store.records import JOURNAL_COLUMNS, JournalEntry
    from authhost.store.sqlite_schema import MIGRATIONS

    # the journal's columns at schema 3: migration 10 added the transaction amount and currency,
    # migration 16 the e-commerce authentication, 17 the merchant's name, 18 model reasons,
    # 19 the movement, 20 the travel notice, 22 the chip counter, 23 the stored credential,
    # 24 the CAVV result, 26 the token's wallet, last four digits and age, 27 the balance delta, 28 the AVS result,
    # 30 the model's own score, 39 the CVV2 result, 40 a clearing presentment's full ARN,
    # 41 the hold a completion completed
    then = [c for c in JOURNAL_COLUMNS if c not in ("journal_id", "transaction_amount_minor",
                                                     "transaction_currency", "authentication",
                                                     "merchant_name", "model_reasons", "movement",
                                                     "travel_notice", "atc",
                                                     "stored_credential",
                                                     "cavv_result", "wallet",
                                                     "token_last4",
                                                     "token_age_hours",
                                                     "balance_delta",
                                                     "avs_result", "model_score",
                                                     "cvv2_result", "arn", "completes")]  # fmt: skip
    insert_then = f"INSERT INTO journal ({', '.join(then)}) VALUES ({', '.join('?' * len(then))})"

    def values_then(entry: JournalEntry) -> list[object]:
        return [getattr(entry, c) for c in then]

    path = tmp_path / "old.db"
    card, _, blob = make_card(state=CardState.ACTIVE)
    with sqlite3.connect(path) as conn:  # what authhost wrote at schema version 3
        for migration in MIGRATIONS[:3]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 3")
        conn.execute("INSERT INTO products VALUES (?, ?)",
                     (PRODUCT.product_id, codec.product_to_json(PRODUCT)))  # fmt: skip
        conn.execute("INSERT INTO accounts VALUES ('acc-1', '978', 'debit', 5000, 0, 0, 0)")
        conn.execute(
            "INSERT INTO cards (card_id, pan_index, account_id, state, pin_tries, version, data,"
            " pan_ciphertext) VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
            (card.card_id, card.pan_index, "acc-1", card.state.value,
             codec.card_to_json(card), blob),
        )  # fmt: skip
        history = JournalEntry(ts=NOW - 60, mti="0100", message_class="authorisation",
                               response_code="00", card_id=card.card_id, account_id="acc-1",
                               processing_code="000000", amount_minor=700, country="276",
                               merchant_id="M1", dedupe_key="k1")  # fmt: skip
        history = replace(history, currency="978")
        conn.execute(insert_then, values_then(history))
        # a key journalled twice, which no authhost wrote, must not stop migration 9's index
        conn.execute(insert_then, values_then(replace(history, ts=NOW - 59)))
        conn.execute(
            "INSERT INTO velocity VALUES (?, ?, 700, 1, 'M1', '276', 0, 0, 0)",
            (card.card_id, NOW - 60),
        )
    store = await open_store(f"sqlite:///{path}")
    try:
        snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
        assert snap.card is not None and snap.card.card_id == card.card_id
        assert snap.product == PRODUCT and snap.account is not None
        assert (snap.account.account_id, snap.account.balance) == ("acc-1", 5000)
        assert (snap.velocity.count_1h, snap.velocity.amount_1h) == (2, 1400)  # from the journal
        again = await store.commit(Commit(journal=replace(history, ts=NOW)))
        assert again.duplicate_of is not None and again.duplicate_of.ts == NOW - 60
        # migration 10: an old entry's transaction amount and currency are its own
        old = again.duplicate_of
        assert (old.transaction_amount_minor, old.transaction_currency) == (700, "978")
        assert old.arn == ""  # migration 40: journalled before a clearing ARN was kept
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT product_id FROM cards").fetchall() == [(PRODUCT.product_id,)]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "velocity" not in tables
        for table in ("accounts", "products"):  # migration 7: keyed tables without rowids
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()
            assert sql.rstrip().endswith("WITHOUT ROWID")
        keys = conn.execute("SELECT dedupe_key FROM journal ORDER BY journal_id").fetchall()
        assert keys == [("k1",), ("k1#2",)]  # migration 9: the later twin's key made unique


async def test_fraud_reports_written_before_report_ids_keep_their_place(tmp_path):
    """Migration 31 orders fraud reports by when they were written. The reports already in
    the file take their journal id as their report id (the cursor consumers paged on until
    then), so a consumer goes on from where it was, and every report written afterwards,
    whatever its entry, comes after all of them."""
    from authhost.store.records import FraudReport
    from authhost.store.sqlite_schema import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what authhost wrote at schema version 30
        for migration in MIGRATIONS[:30]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 30")
        for journal_id in (7, 9):
            conn.execute(
                "INSERT INTO fraud_reports VALUES (?, 'crd_1', 1, 'chargeback', 1.0, '')",
                (journal_id,),
            )
    store = await open_store(f"sqlite:///{path}")
    try:
        assert [(r.journal_id, r.report_id) for r in await store.fraud_reports()] == [
            (7, 7), (9, 9)
        ]  # fmt: skip
        await store.put_fraud_report(FraudReport(3, "crd_1", True, "analyst", 2.0))
        assert [(r.journal_id, r.report_id) for r in await store.fraud_reports(9)] == [(3, 10)]
    finally:
        await store.close()
    # a process on older code writes a report without its id (the column's default, 0): the
    # file's trigger gives it the next one (migration 32), as it does this code's
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO fraud_reports (journal_id, card_id, fraud, source, "
                     "reported_at, note) VALUES (11, 'crd_1', 0, 'analyst', 3.0, '')")  # fmt: skip
    store = await open_store(f"sqlite:///{path}")
    try:
        assert [(r.journal_id, r.report_id) for r in await store.fraud_reports(10)] == [(11, 11)]
    finally:
        await store.close()


async def test_disputes_written_before_the_card_column_are_found_by_card(tmp_path):
    """Migration 38 keeps each dispute's card in a column (indexed): the disputes already in
    the file get it from their JSON, so the card timeline finds them by card."""
    from authhost.store import codec
    from authhost.store.records import Dispute
    from authhost.store.sqlite_schema import MIGRATIONS

    first = Dispute("dsp0000000001000000001", 11, "crd_1", "acc-1", "fraud", 5_000, "978", 1.0)
    other = replace(first, dispute_id="dsp0000000002000000001", journal_id=12, card_id="crd_2")
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what authhost wrote at schema version 37
        for migration in MIGRATIONS[:37]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 37")
        for dispute in (first, other):
            conn.execute(
                "INSERT INTO disputes (dispute_id, journal_id, state, data) VALUES (?, ?, ?, ?)",
                (dispute.dispute_id, dispute.journal_id, dispute.state,
                 codec.dispute_to_json(dispute)),
            )  # fmt: skip
    store = await open_store(f"sqlite:///{path}")
    try:
        assert await store.disputes_of_card("crd_1") == [first]
        assert await store.disputes_of_card("crd_2") == [other]
        later = replace(first, dispute_id="dsp0000000003000000001", journal_id=13)
        await store.open_dispute(later)
        assert await store.disputes_of_card("crd_1") == [first, later]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT data FROM disputes WHERE card_id = ? "
            "ORDER BY dispute_id", ("crd_1",)
        ).fetchall()  # fmt: skip
    assert any("disputes_by_card" in row[-1] for row in plan), plan


async def test_a_damaged_file_fails_a_snapshot_as_the_store(tmp_path):
    """A file damaged on disk (a bad sector, a copy taken with ``cp`` under a writer) opens, and
    the first read of a damaged page raises sqlite3's DatabaseError. That went up raw: each
    authorisation was logged "decision failed" with a traceback, as a bug. It is the store's
    failure now (answered 96 and logged as "the store failed", with SQLite's words)."""
    from test_store_contract import NOW, seeded

    from authhost.store.interface import SnapshotQuery, StoreUnavailable

    path = tmp_path / "cards.db"
    store = await open_store(f"sqlite:///{path}")
    card, _ = await seeded(store)
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [p for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name = ?", ("cards_current",))]  # fmt: skip
    assert pages
    with open(path, "r+b") as file:
        for page in pages:
            file.seek((page - 1) * page_size)
            file.write(b"\xa5" * page_size)
    store = await open_store(f"sqlite:///{path}")
    try:
        [alone] = await store.snapshot_many([SnapshotQuery(card.pan_index, NOW)])
        together = await store.snapshot_many([SnapshotQuery(card.pan_index, NOW)] * 2)
    finally:
        await store.close()
    for failed in (alone, *together):
        assert isinstance(failed, StoreUnavailable), repr(failed)
        assert "malformed" in str(failed)


def test_a_snapshot_failing_for_a_bug_keeps_the_error_and_its_traceback():
    """The damaged file's errors are the store's (96, one line, no traceback); the errors by
    which sqlite3 says the query or its use is wrong were made the store's too, so a bug in a
    snapshot's SQL was logged one line a second as a failing store, with no traceback to
    find it by. They stay as raised now, and are logged as a failed decision, with it."""
    from authhost.store.interface import StoreUnavailable
    from authhost.store.sqlite import _read_failed

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE cards (card_id TEXT)")
    bugs = []
    for sql, args in [
        ("SELECT card_id FROM cards WHERE card_id = ?", ()),  # a binding missing
        ("SELECT pan FROM cards", ()),  # no such column
        ("SELECT * FROM card", ()),  # no such table
        ("SELEC card_id FROM cards", ()),  # a syntax error
        ("SELECT card_id FROM cards WHERE card_id = ?", (object(),)),  # a type SQLite lacks
    ]:
        with pytest.raises(sqlite3.Error) as raised:
            conn.execute(sql, args)
        bugs.append(raised.value)
    conn.close()
    with pytest.raises(sqlite3.ProgrammingError) as closed:
        conn.execute("SELECT 1")
    bugs.append(closed.value)
    for bug in bugs:
        assert _read_failed(bug) is bug, repr(bug)

    damaged = sqlite3.DatabaseError("database disk image is malformed")
    io_error = sqlite3.OperationalError("disk I/O error")
    for failure in (damaged, io_error):
        assert isinstance(_read_failed(failure), StoreUnavailable), repr(failure)
