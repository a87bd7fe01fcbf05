"""SQLite card store: the embedded default (one file, WAL, no server to run).

The authorisation path runs on the calling (event loop) thread, on that thread's own connection:
the snapshot is one read transaction and the commit is group-committed (``sqlite_group``), so a
request never waits for a thread hand-over and the connection's page cache stays warm. Two
dedicated threads (``sqlite_thread``) serve the rest: a reader for queries, and a writer for
admin writes and for batches whose write lock another process holds for long. Every write is
one ``BEGIN IMMEDIATE`` transaction, so the funds re-check in ``commit`` and the balance change
it guards are atomic, also against other processes that open the same file (SQLite's file
lock serialises their writers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from functools import partial
from operator import attrgetter
from pathlib import Path

import anyio.to_thread

from authhost.cards import lifecycle
from authhost.cards.acceptor_velocity import WINDOW_LONG_S
from authhost.cards.model import Account, Card, Product
from authhost.cards.velocity import EMPTY
from authhost.store import codec
from authhost.store.interface import (
    ATC_JUMP,
    ATC_REPLAY,
    ATC_WINDOW_S,
    CAVV_WINDOW_S,
    LEDGER_MAX_AFTER,
    NEW_PRODUCT,
    PENDING_PREFIX,
    AcceptorReading,
    AcceptorStats,
    AccountAudit,
    AuditSealer,
    BatchAudit,
    BeyondBound,
    Commit,
    CommitResult,
    Conflict,
    FraudReportAudit,
    FundsChanged,
    Hold,
    IdCounters,
    InsufficientFunds,
    Intent,
    JournalQuery,
    Lease,
    LedgerRefused,
    LedgerState,
    LedgerSync,
    ListAudit,
    MoneyMove,
    Movement,
    NotFound,
    OpenHold,
    Pruned,
    Snapshot,
    SnapshotQuery,
    StoreError,
    StoreInfo,
    TokenHolder,
    atc_refused_outcome,
    balance_bound_outcome,
    card_entries,
    cavv_reused_outcome,
    journal_pages,
    ledger_refusal,
    pin_change_conflict_outcome,
    pin_locked_outcome,
    unavailable,
)
from authhost.store.money import BALANCE_BOUND, balance_delta, beyond_bound, spend_delta
from authhost.store.records import (
    JOURNAL_COLUMNS,
    AuditEntry,
    Dispute,
    FraudReport,
    JournalEntry,
    copy_entry,
)
from authhost.store.sqlite_acceptors import AcceptorTail
from authhost.store.sqlite_checkpoint import BACKSTOP_PAGES, Checkpointer
from authhost.store.sqlite_group import GroupCommit, GroupCommitStats
from authhost.store.sqlite_schema import migrate
from authhost.store.sqlite_thread import SqliteThread
from authhost.store.sqlite_velocity import IS_VELOCITY_ENTRY, VelocityCounters, uncounted_entries
from authhost.store.sqlite_velocity import ROW_COLUMNS as VELOCITY_ROW_COLUMNS

log = logging.getLogger("authhost.store")

_JOURNAL_INSERT_COLUMNS = [c for c in JOURNAL_COLUMNS if c != "journal_id"]
# The dedupe key is unique (migration 9): an insert that changes nothing is a retransmission.
_JOURNAL_INSERT = (
    f"INSERT INTO journal ({', '.join(_JOURNAL_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _JOURNAL_INSERT_COLUMNS)}) ON CONFLICT DO NOTHING"
)
# What the money movement can change in an entry already inserted (rare: see ``_commit``)
_JOURNAL_OUTCOME = (
    "response_code", "approval_code", "hold_amount", "reason_codes", "balance_delta"
)  # fmt: skip
_JOURNAL_OUTCOME_UPDATE = (
    f"UPDATE journal SET {', '.join(f'{c} = ?' for c in _JOURNAL_OUTCOME)} WHERE journal_id = ?"
)
_JOURNAL_SELECT = f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM journal"
_BOOL_COLUMNS = {
    "review", "model_skipped", "pin_present", "pin_failed", "cvv_failed", "travel_notice"
}  # fmt: skip
_REPORT_SELECT = (
    "SELECT journal_id, card_id, fraud, source, reported_at, note, report_id FROM fraud_reports"
)
# "dedupe_key != ''" lets SQLite use the partial unique index journal_dedupe
_BY_DEDUPE_KEY = f"{_JOURNAL_SELECT} WHERE dedupe_key = ? AND dedupe_key != ''"
_CARD_SELECT = "SELECT data, pin_tries, version FROM cards"
# The card a PAN means (cards.lifecycle.is_current_over): the newest that has been activated,
# else the newest; a renewal's successor takes over only when activated.
# ``waits`` is 1 for a card never activated (lifecycle.has_been_activated, kept by every write)
_CURRENT_CARD_FIRST = "ORDER BY waits, seq DESC"
_ACCOUNT_SELECT = (
    "SELECT account_id, currency, kind, balance, credit_limit, holds, version FROM accounts"
)
# Card, account, product, the reversal's hold and the card's new velocity rows
# in ONE statement: every sqlite3 call releases and re-takes the GIL, and one statement is one
# implicit read transaction (consistent without BEGIN/COMMIT), so fewer calls is what makes the
# snapshot cheap. The first SELECT gives one row (kind 0); the second one row per velocity
# entry not counted yet (kind 1; the mark is the known card's, see ``sqlite_velocity``) of
# every card with the PAN: velocity is the card number's, so an activated renewal counts
# what its predecessor (the same PAN) did in the window (a new-PAN replacement counts afresh).
# The ORDER BY is the expression index cards_current, which also holds every card column read
# here but the JSON: no sort, and no table read unless the card is not the version the store
# parsed last time for this PAN (``:known_card``, ``:known_version``; the JSON comes back NULL).
_SNAPSHOT_SQL = f"""
WITH card AS (
  SELECT seq, card_id, account_id, product_id, version, pin_tries FROM cards
  WHERE pan_index = :pan {_CURRENT_CARD_FIRST} LIMIT 1
)
SELECT 0, card.card_id,
  CASE WHEN card.card_id = :known_card AND card.version = :known_version THEN NULL
    ELSE (SELECT data FROM cards WHERE seq = card.seq) END,
  card.pin_tries, card.version,
  a.account_id, a.currency, a.kind, a.balance, a.credit_limit, a.holds, a.version,
  p.data,
  CASE WHEN :original != '' THEN (  -- only a request naming an original: no index probe
    SELECT json_array(match_key, account_id, amount, posted, reversed, parent) FROM holds
    WHERE match_key = :original AND account_id = a.account_id) END  -- the card's own, as Redis
FROM (SELECT 1) AS one
LEFT JOIN card ON 1
LEFT JOIN accounts AS a ON a.account_id = card.account_id
LEFT JOIN products AS p ON p.product_id = card.product_id
UNION ALL
SELECT 1, {", ".join(VELOCITY_ROW_COLUMNS)}, NULL, NULL, NULL
FROM card JOIN cards AS same ON same.pan_index = :pan
JOIN journal AS j ON j.card_id = same.card_id
WHERE {uncounted_entries("card.card_id = :known_card")}
"""
# JournalQuery's filters that select entries whose column of the same name equals them
_JOURNAL_EQUALS = ("card_id", "account_id", "merchant_id", "approval_code", "rrn", "completes")
# Each merchant's newest name (field 43) in the hour: the busiest-acceptors view shows it.
# SQLite takes the other columns of a max() row from that row: the newest entry's name.
_MERCHANT_NAMES_SQL = """
SELECT merchant_id, merchant_name FROM (
  SELECT merchant_id, merchant_name, max(journal_id) FROM journal
  WHERE ts >= :since AND merchant_id != '' AND merchant_name != '' GROUP BY merchant_id
)
"""
# Open holds past the cutoff, from the partial index of open holds (migration 8): its condition
# must appear here as written there for SQLite to use it.
# an account's holds still holding money (posted 2 is an increment: its parent holds it); the
# open holds' partial index (holds_open_by_age) keeps the scan to open holds, no index per
# account on the authorisation path's writes
_OPEN_HOLDS_SQL = (
    "SELECT match_key, amount - reversed, created_at, extra_life FROM holds "
    "WHERE posted = 0 AND amount > reversed AND account_id = ? ORDER BY created_at"
)
_EXPIRED_HOLDS_SQL = (
    "SELECT match_key, account_id, amount - reversed FROM holds "
    "WHERE posted = 0 AND amount > reversed AND created_at < :scan_until "
    "AND created_at + extra_life < :cutoff"  # a hotel's lives on, a pump's not (migration 14)
)
# Journal retention, one write transaction per batch (journal_by_ts finds the oldest entries;
# the duplicate-transmission index is the journal's own column, so it goes with them). A hold
# is closed when it holds nothing: posted, released, or an increment (its parent held it).
PRUNE_BATCH = 5_000
_NO_ID_ABOVE = 2**63 - 1  # newest-first paging from the top: below every rowid SQLite makes
_PRUNE_ENTRIES_SQL = (
    "DELETE FROM journal WHERE journal_id IN "
    "(SELECT journal_id FROM journal WHERE ts < ? ORDER BY ts LIMIT ?) RETURNING journal_id"
)
_PRUNE_HOLDS_SQL = (
    "DELETE FROM holds WHERE rowid IN (SELECT rowid FROM holds "
    "WHERE created_at < ? AND NOT (posted = 0 AND amount > reversed) LIMIT ?)"
)
# the reports of a batch's entries (a JSON array of their ids)
_PRUNE_REPORTS_SQL = (
    "DELETE FROM fraud_reports WHERE journal_id IN (SELECT value FROM json_each(?))"
)
# the reports of entries gone before (an older authhost's run cut short between its batches and
# its reports, a report written for an entry a run deleted meanwhile): labels of nothing
_PRUNE_ORPHAN_REPORTS_SQL = (
    "DELETE FROM fraud_reports WHERE NOT EXISTS "
    "(SELECT 1 FROM journal WHERE journal.journal_id = fraud_reports.journal_id)"
)
# results (and placeholders) written before the cut; markers (prunable = 0) never: the partial
# index idempotency_prunable (migration 37) holds only the prunable rows, by age
_PRUNE_IDEMPOTENCY_SQL = (
    "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency "
    "WHERE prunable = 1 AND ts < ? ORDER BY ts LIMIT ?)"
)
# holds.posted (migration 12): 0 an open hold, 1 posted, 2 an increment (held in its parent
# too), 3 money credited to the account (a refund, a transfer), which its reversal takes back
_POSTED, _INCREMENT, _CREDITED = 1, 2, 3
_MOVED = (_POSTED, _CREDITED)  # no longer held: a completion naming it releases nothing
# HOLD, POST and CREDIT in one conditional UPDATE: no row back = account missing, short, or
# the balance or holds would go beyond :bound (money.BALANCE_BOUND; further from zero than they
# are: money.beyond_bound), which the caller tells apart on the account as it is.
_SPEND_SQL = """
UPDATE accounts SET
  holds = holds + :hold,
  balance = balance + CASE kind WHEN 'credit' THEN :spend ELSE -:spend END,
  version = version + 1
WHERE account_id = :account AND (:check = 0 OR :amount <= CASE kind
  WHEN 'credit' THEN credit_limit - balance - holds ELSE balance + credit_limit - holds END)
  AND abs(balance + CASE kind WHEN 'credit' THEN :spend ELSE -:spend END)
    <= max(:bound, abs(balance))
  AND holds + :hold <= max(:bound, holds)
RETURNING account_id, currency, kind, balance, credit_limit, holds, version
"""


# A load or take-off of funds: a change that lowers the open-to-buy (a take-off, or more owed
# on a credit account) only while the open-to-buy stays at zero or above; any change only
# while the balance stays within :bound either way (money.beyond_bound).
_FUNDS_SQL = """
UPDATE accounts SET balance = balance + :delta, version = version + 1
WHERE account_id = :account AND (
  CASE kind WHEN 'credit' THEN :delta <= 0 ELSE :delta >= 0 END
  OR CASE kind WHEN 'credit' THEN credit_limit - balance - :delta - holds
     ELSE balance + :delta + credit_limit - holds END >= 0)
  AND abs(balance + :delta) <= max(:bound, abs(balance))
RETURNING account_id, currency, kind, balance, credit_limit, holds, version
"""


# What an account's entries after a journal id added to its balance, how many moved it, and
# the first of them journalled without its effect (journal_by_account finds them)
_LEDGER_AFTER_SQL = """
SELECT COALESCE(SUM(balance_delta), 0), COALESCE(SUM(balance_delta != 0), 0),
  MIN(CASE WHEN balance_delta IS NULL THEN journal_id END)
FROM journal WHERE account_id = ? AND journal_id > ?
"""


_LEDGER_COUNT_SQL = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM journal WHERE account_id = ? AND journal_id > ? LIMIT ?)"
)


def _put_if_absent(conn: sqlite3.Connection, *, key: str, value: str, prunable: bool) -> str | None:
    """``value`` under ``key`` unless something is there (None), else what is there: a
    placeholder or a result (``prunable``), or a marker kept for good."""
    if conn.execute(
        "INSERT OR IGNORE INTO idempotency (key, result, ts, prunable) VALUES (?, ?, ?, ?)",
        (key, value, time.time(), int(prunable)),
    ).rowcount:
        return None
    row = conn.execute("SELECT result FROM idempotency WHERE key = ?", (key,)).fetchone()
    return row[0]


def _funds_key(account_id: str, key: str) -> str:
    """Where a funds change's idempotency key is kept: per account, as on Redis (where the
    record must share the account's hash slot to be written in the same script)."""
    return f"account.funds:{account_id}:{key}"


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL keeps it consistent
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _writer_connect(path: str) -> sqlite3.Connection:
    conn = _connect(path)
    conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")  # Checkpointer does it
    return conn


CARD_CACHE_SIZE = 50_000


def _account(row: tuple | None) -> Account | None:
    if row is None:
        return None
    account_id, currency, kind, balance, credit_limit, holds, version = row
    return Account(
        account_id, currency, codec.CARD_KINDS[kind], balance, credit_limit, holds, version
    )


def _journal(row: tuple) -> JournalEntry:
    values = dict(zip(JOURNAL_COLUMNS, row, strict=True))
    for name in _BOOL_COLUMNS:
        values[name] = bool(values[name])
    return JournalEntry(**values)


# the INSERT's parameters in one C call (see records.journal_values)
_journal_values = attrgetter(*_JOURNAL_INSERT_COLUMNS)
_journal_outcome = attrgetter(*_JOURNAL_OUTCOME)


class SqliteCardStore:
    """``CardStore`` on one SQLite file. Open with ``await SqliteCardStore.open(path)``."""

    backend_errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(
        self, path: str, reader: SqliteThread, writer: SqliteThread, checkpointer: Checkpointer
    ) -> None:
        self.path = path
        self._reader = reader
        self._writer = writer
        self._checkpointer = checkpointer
        self._products: dict[str, tuple[str, Product]] = {}  # parsed-JSON cache
        self._cards: dict[tuple[str, int, int], Card] = {}  # parsed-row cache
        self._known: dict[str, Card] = {}  # pan_index -> the card it meant at the last snapshot
        self._velocity = VelocityCounters()
        self._acceptors = AcceptorTail()
        self._inline = threading.local()  # a read connection per event-loop thread
        self._inline_connections: list[sqlite3.Connection] = []
        self._groups: list[GroupCommit] = []
        self.ledger_max_after = LEDGER_MAX_AFTER  # entries a ledger sync adds up at most

    @classmethod
    async def open(cls, path: str | Path) -> SqliteCardStore:
        path = str(path)

        def start() -> SqliteCardStore:
            fresh = not os.path.exists(path)
            setup = _connect(path)
            if fresh:  # encrypted PANs and the journal: readable by the owner only
                for name in (path, f"{path}-wal", f"{path}-shm"):
                    with contextlib.suppress(OSError):
                        os.chmod(name, 0o600)
            try:
                migrate(setup)
            finally:
                setup.close()
            writer = SqliteThread(lambda: _writer_connect(path), name="sqlite-writer", writer=True)
            reader = SqliteThread(lambda: _connect(path), name="sqlite-reader", writer=False)
            return cls(path, reader, writer, Checkpointer(lambda: _connect(path)))

        try:
            return await anyio.to_thread.run_sync(start)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from None

    def info(self) -> StoreInfo:
        return StoreInfo(
            backend="sqlite",
            shared_between_processes=True,
            notes=[f"file {self.path} (WAL); processes on one machine share it safely"],
        )

    async def close(self) -> None:
        def stop() -> None:
            self._checkpointer.close()
            self._writer.close()
            self._reader.close()
            for conn in self._inline_connections:
                conn.close()

        await anyio.to_thread.run_sync(stop)

    async def __aenter__(self) -> SqliteCardStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- authorisation path --------------------------------------------------------------

    def _product_from(self, conn: sqlite3.Connection, product_id: str) -> Product | None:
        row = conn.execute(
            "SELECT data FROM products WHERE product_id = ?", (product_id,)
        ).fetchone()
        return None if row is None else self._product(product_id, row[0])

    def _card(self, row: tuple | None) -> Card | None:
        """The Card of a (data, pin_tries, version) row. Cards are immutable values and a row
        changes only with its version, so a parsed card is reused while its row is unchanged
        (the JSON parse is a measurable share of every snapshot)."""
        if row is None:
            return None
        key = (row[0], row[1], row[2])
        card = self._cards.get(key)
        if card is None:
            if len(self._cards) >= CARD_CACHE_SIZE:
                self._cards.clear()
            card = codec.card_from_json(row[0], pin_tries=row[1], version=row[2])
            self._cards[key] = card
        return card

    def _product(self, product_id: str, text: str) -> Product:
        """The parsed product, reused while its stored JSON is unchanged."""
        cached = self._products.get(product_id)
        if cached is not None and cached[0] == text:
            return cached[1]
        product = codec.product_from_json(text)
        self._products[product_id] = (text, product)
        return product

    async def prepare_acceptor_counters(self, now: float) -> int:
        """Count the last hour's journal at its merchants and terminals (on a worker thread;
        the server does this before it listens). Returns the requests counted."""
        return await anyio.to_thread.run_sync(
            self._acceptors.prime, partial(_connect, self.path), now
        )

    async def follow_acceptor_counters(self, now: float) -> None:
        """Catch up on the reader thread, as a snapshot batch would on the loop's."""
        connect = partial(_connect, self.path)
        await self._reader.run(partial(self._acceptors.catch_up_or_prime, now=now, connect=connect))

    def acceptor_stats(self) -> AcceptorStats:
        counters = self._acceptors.counters
        return AcceptorStats(len(counters), counters.acceptors, self._acceptors.following)

    async def read_acceptor_counters(self, now: float) -> AcceptorReading:
        """The last hour's journal, counted afresh on a worker thread (about 8 µs an entry),
        and the merchants' names (one indexed range of the hour)."""
        fresh = AcceptorTail()
        await anyio.to_thread.run_sync(fresh.prime, partial(_connect, self.path), now)

        def names(conn: sqlite3.Connection) -> dict[str, str]:
            rows = conn.execute(_MERCHANT_NAMES_SQL, {"since": now - WINDOW_LONG_S})
            return dict(rows.fetchall())

        return AcceptorReading(fresh.counters, await self._reader.run(names))

    async def snapshot(self, query: SnapshotQuery) -> Snapshot:
        (snapshot,) = await self.snapshot_many((query,))
        if isinstance(snapshot, Exception):
            raise snapshot
        return snapshot

    async def snapshot_many(self, queries: Sequence[SnapshotQuery]) -> list[Snapshot | Exception]:
        """One read transaction on the loop's connection for the whole batch: the file's
        read lock is taken and the page cache checked against the WAL once, not once per
        snapshot. A snapshot that cannot be read there without waiting goes to the reader
        thread afterwards."""
        snapshots: list[Snapshot | Exception | None] = [None] * len(queries)
        inline = self._inline_reader()
        together = len(queries) > 1  # one statement is a read transaction of its own
        if inline is not None and (not together or _begin_read(inline)):
            try:
                self._catch_up_acceptors(inline, queries)
                for index, query in enumerate(queries):
                    try:
                        snapshots[index] = self._read_snapshot(inline, query)
                    except sqlite3.OperationalError:  # busy (WAL recovery): the reader waits
                        pass
                    except Exception as exc:
                        snapshots[index] = _read_failed(exc)
            finally:
                if together:
                    _end_read(inline)
        for index, query in enumerate(queries):
            if snapshots[index] is None:
                try:
                    snapshots[index] = await self._reader.run(
                        partial(self._read_snapshot, query=query)
                    )
                except Exception as exc:
                    snapshots[index] = _read_failed(exc)
        return snapshots  # type: ignore[return-value]  # every slot is filled by now

    def _catch_up_acceptors(
        self, conn: sqlite3.Connection, queries: Sequence[SnapshotQuery]
    ) -> None:
        """Bring the merchant and terminal counters up to date once for the batch, if any of
        its requests asks for them (``sqlite_acceptors``); a busy file skips a batch (the next
        one catches up)."""
        if any(query.merchant or query.terminal for query in queries):
            try:
                self._acceptors.catch_up_or_prime(
                    conn, queries[0].now, partial(_connect, self.path)
                )
            except sqlite3.OperationalError:  # busy: the next batch catches up
                pass
            except sqlite3.Error as exc:  # the counters as they were: never a failed snapshot
                log.warning("cannot read the journal's tail for acceptor counters: %s", exc)

    def _read_snapshot(self, conn: sqlite3.Connection, query: SnapshotQuery) -> Snapshot:
        velocity_counters = self._velocity
        known = self._known.get(query.pan_index)
        known_card = known.card_id if known is not None else ""
        with velocity_counters.lock:  # the mark asked for is the mark advanced
            rows = conn.execute(
                _SNAPSHOT_SQL,
                {
                    "pan": query.pan_index,
                    "known_card": known_card,
                    "known_version": known.version if known is not None else -1,
                    "mark": velocity_counters.mark_of(known_card),
                    "original": query.original_key,
                    "now": query.now,
                },
            ).fetchall()
            head = rows[0] if rows[0][0] == 0 else next(row for row in rows if row[0] == 0)
            card = None
            if head[1] is not None:  # the PAN means a card: the one known, or a new version
                card = known if head[2] is None else self._parsed(query.pan_index, head[2:5])
            account = product = None
            velocity = EMPTY
            mark = None
            if card is not None:
                account = _account(head[5:12]) if head[5] is not None else None
                product = self._product(card.product_id, head[12]) if head[12] else None
                new_rows = [row for row in rows if row[0] == 1] if len(rows) > 1 else []
                velocity = velocity_counters.advance(card.card_id, new_rows, 1, query.now)
                mark = velocity_counters.mark_of(card.card_id)
        original = None
        if head[13] is not None:
            match_key, account_id, amount, posted, reversed_, parent = json.loads(head[13])
            original = Hold(
                match_key, account_id, amount - reversed_, posted in _MOVED, reversed_, parent
            )
        at_merchant, at_terminal = self._acceptors.at(query.now, query.merchant, query.terminal)
        return Snapshot(
            card,
            account,
            product,
            velocity,
            original=original,
            merchant_velocity=at_merchant,
            terminal_velocity=at_terminal,
            velocity_mark=mark,
        )

    def _parsed(self, pan_index: str, row: tuple) -> Card | None:
        """The card of a (data, pin_tries, version) row, remembered as what ``pan_index``
        means: the next snapshot reads its JSON again only if the version has moved (every
        change to a card row moves it)."""
        card = self._card(row)
        if card is not None:
            if len(self._known) >= CARD_CACHE_SIZE:
                self._known.clear()
            self._known[pan_index] = card
        return card

    def _inline_reader(self) -> sqlite3.Connection | None:
        """The calling thread's own read connection. A snapshot is a handful of indexed reads
        (tens of µs) and WAL readers never wait for the writer or the PASSIVE checkpointer, so
        reading on the event loop's thread is cheaper than two thread hops and two GIL
        hand-overs; a read that would have to wait gives up at once and goes to the reader
        thread instead."""
        conn = getattr(self._inline, "conn", None)
        if conn is None:
            try:
                conn = _writer_connect(self.path)  # group commits write on it too
                conn.execute("PRAGMA busy_timeout = 0")
            except sqlite3.Error:
                return None
            self._inline.conn = conn
            self._inline_connections.append(conn)
        return conn

    async def commit(self, commit: Commit) -> CommitResult:
        return await self._group_commit().run(lambda conn: _commit(conn, commit))

    async def commit_many(self, commits: Sequence[Commit]) -> list[CommitResult | Exception]:
        """The commits join one group-commit transaction with a single wait; each still
        succeeds or fails alone."""
        return await self._group_commit().run_many([partial(_commit, commit=c) for c in commits])

    def _group_commit(self) -> GroupCommit:
        """The calling thread's group commit, on its own connection (see ``sqlite_group``)."""
        group = getattr(self._inline, "group", None)
        if group is None:
            group = self._inline.group = GroupCommit(self._inline_reader, self._writer.run)
            self._groups.append(group)
        return group

    def group_commit_stats(self) -> GroupCommitStats:
        """Authorisation commits so far: how many, in how many transactions, and how many
        went to the writer thread because another connection held the write lock."""
        return GroupCommitStats(
            batches=sum(g.batches for g in self._groups),
            commits=sum(g.commits for g in self._groups),
            handed_over=sum(g.handed_over for g in self._groups),
            lock_waits=sum(g.lock_waits for g in self._groups),
        )

    # --- products and accounts -----------------------------------------------------------

    async def put_product(
        self,
        product: Product,
        expected_version: int | None = None,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        data = codec.product_to_json(product)

        def write(conn: sqlite3.Connection) -> None:
            if expected_version is None:
                conn.execute(
                    "INSERT INTO products (product_id, data) VALUES (?, ?) "
                    "ON CONFLICT (product_id) DO UPDATE SET data = excluded.data",
                    (product.product_id, data),
                )
            elif expected_version == NEW_PRODUCT:
                if not conn.execute(
                    "INSERT INTO products (product_id, data) VALUES (?, ?) "
                    "ON CONFLICT (product_id) DO NOTHING",
                    (product.product_id, data),
                ).rowcount:
                    raise Conflict(f"product {product.product_id} already exists")
            elif not conn.execute(
                "UPDATE products SET data = ? WHERE product_id = ? "
                "AND coalesce(json_extract(data, '$.version'), 0) = ?",
                (data, product.product_id, expected_version),
            ).rowcount:
                raise Conflict(f"product {product.product_id} changed meanwhile")
            if audit is not None:  # in the product's own transaction: both or neither
                _insert_audit(conn, audit, seal)

        await self._writer.run(write)

    async def get_product(self, product_id: str) -> Product | None:
        return await self._reader.run(lambda conn: self._product_from(conn, product_id))

    async def list_products(self) -> list[Product]:
        rows = await self._reader.run(
            lambda conn: conn.execute("SELECT data FROM products ORDER BY product_id").fetchall()
        )
        return [codec.product_from_json(r[0]) for r in rows]

    async def create_account(
        self, account: Account, audit: AuditEntry | None = None, seal: AuditSealer | None = None
    ) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO accounts (account_id, currency, kind, balance, credit_limit, "
                    "holds, version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        account.account_id,
                        account.currency,
                        account.kind.value,
                        account.balance,
                        account.credit_limit,
                        account.holds,
                        account.version,
                    ),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"account {account.account_id} already exists") from None
            if audit is not None:  # in the account's own transaction: both or neither
                _insert_audit(conn, audit, seal)

        await self._writer.run(insert)

    async def get_account(self, account_id: str) -> Account | None:
        return await self._reader.run(lambda conn: _read_account(conn, account_id))

    async def health_read(self) -> None:
        await self.get_account("health-probe")  # an account lookup that finds nothing

    async def list_accounts(self, limit: int = 100, offset: int = 0) -> list[Account]:
        rows = await self._reader.run(
            lambda conn: conn.execute(
                f"{_ACCOUNT_SELECT} ORDER BY account_id LIMIT ? OFFSET ?", (limit, offset)
            ).fetchall()
        )
        return [a for a in map(_account, rows) if a is not None]

    async def change_funds(
        self,
        account_id: str,
        delta_minor: int,
        *,
        key: str = "",
        fingerprint: str = "",
        audit: AccountAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> FundsChanged:
        once_key = _funds_key(account_id, key)

        def change(conn: sqlite3.Connection) -> FundsChanged:
            if key:
                row = conn.execute(
                    "SELECT result FROM idempotency WHERE key = ?", (once_key,)
                ).fetchone()
                if row is not None:
                    first, account = codec.funds_record_parts(row[0])
                    return FundsChanged(account, first, repeated=True)
            before = _read_account(conn, account_id) if audit is not None else None
            params = {"account": account_id, "delta": delta_minor, "bound": BALANCE_BOUND}
            account = _account(conn.execute(_FUNDS_SQL, params).fetchone())
            if account is None:
                current = _read_account(conn, account_id)
                if current is None:
                    raise NotFound(f"account {account_id} not found")
                if beyond_bound(current.balance, delta_minor):
                    raise BeyondBound(current, "balance", current.balance + delta_minor)
                raise InsufficientFunds(current)
            if key:  # a request's result: pruned with the others (prune_idempotency)
                conn.execute(
                    "INSERT INTO idempotency (key, result, ts, prunable) VALUES (?, ?, ?, 1)",
                    (once_key, codec.funds_record(fingerprint, account), time.time()),
                )
            if audit is not None and before is not None:  # in the change's own transaction
                _insert_audit(conn, audit(before), seal)
            return FundsChanged(account, fingerprint, repeated=False)

        return await self._writer.run(change)

    async def funds_change_of(self, account_id: str, key: str) -> FundsChanged | None:
        once_key = _funds_key(account_id, key)
        rows = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT result FROM idempotency WHERE key = ?", (once_key,)
            ).fetchall()
        )
        if not rows:
            return None
        first, account = codec.funds_record_parts(rows[0][0])
        return FundsChanged(account, first, repeated=True)

    async def sync_ledger(
        self,
        account_id: str,
        ledger_balance: int,
        through_id: int,
        now: float,
        audit: AccountAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> LedgerSync:
        def sync(conn: sqlite3.Connection) -> LedgerSync:
            select = f"{_ACCOUNT_SELECT} WHERE account_id = ?"
            before = _account(conn.execute(select, (account_id,)).fetchone())
            if before is None:
                raise NotFound(f"account {account_id} not found")
            applied = conn.execute(
                "SELECT through_id FROM ledger_syncs WHERE account_id = ?", (account_id,)
            ).fetchone()
            pruned = conn.execute("SELECT through_id FROM journal_pruned").fetchone()
            (count,) = conn.execute(
                _LEDGER_COUNT_SQL, (account_id, through_id, self.ledger_max_after + 1)
            ).fetchone()
            after, moved, unknown = (
                conn.execute(_LEDGER_AFTER_SQL, (account_id, through_id)).fetchone()
                if count <= self.ledger_max_after
                else (0, 0, None)
            )
            refused = ledger_refusal(
                through_id,
                applied[0] if applied else None,
                pruned[0] if pruned else None,
                unknown,
                count,
                self.ledger_max_after,
            )
            if refused:
                raise LedgerRefused(refused)
            if abs(ledger_balance + after) > BALANCE_BOUND:
                raise BeyondBound(before, "balance", ledger_balance + after)
            conn.execute(
                "UPDATE accounts SET balance = ?, version = version + 1 WHERE account_id = ?",
                (ledger_balance + after, account_id),
            )
            conn.execute(
                "INSERT OR REPLACE INTO ledger_syncs (account_id, through_id, balance, synced_at) "
                "VALUES (?, ?, ?, ?)",
                (account_id, through_id, ledger_balance, now),
            )
            account = _account(conn.execute(select, (account_id,)).fetchone())
            assert account is not None
            if audit is not None:  # in the sync's own transaction: both or neither
                _insert_audit(conn, audit(before), seal)
            return LedgerSync(account, LedgerState(through_id, ledger_balance, now), after, moved)

        return await self._writer.run(sync)

    async def ledger_state(self, account_id: str) -> LedgerState | None:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT through_id, balance, synced_at FROM ledger_syncs WHERE account_id = ?",
                (account_id,),
            ).fetchone()
        )
        return None if row is None else LedgerState(*row)

    async def set_credit_limit(
        self,
        account_id: str,
        credit_limit: int,
        audit: AccountAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> Account:
        def change(conn: sqlite3.Connection) -> Account:
            before = _read_account(conn, account_id)
            if before is None:
                raise NotFound(f"account {account_id} not found")
            conn.execute(
                "UPDATE accounts SET credit_limit = ?, version = version + 1 WHERE account_id = ?",
                (credit_limit, account_id),
            )
            if audit is not None:  # in the change's own transaction: both or neither
                _insert_audit(conn, audit(before), seal)
            account = _read_account(conn, account_id)
            assert account is not None
            return account

        return await self._writer.run(change)

    async def open_holds(self, account_id: str) -> list[OpenHold]:
        rows = await self._reader.run(
            lambda conn: conn.execute(_OPEN_HOLDS_SQL, (account_id,)).fetchall()
        )
        return [OpenHold(*row) for row in rows]

    async def hold_of(self, account_id: str, match_key: str) -> Hold | None:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT amount, posted, reversed, parent FROM holds "
                "WHERE match_key = ? AND account_id = ?",
                (match_key, account_id),
            ).fetchone()
        )
        if row is None:
            return None
        amount, posted, reversed_, parent = row
        return Hold(match_key, account_id, amount - reversed_, posted in _MOVED, reversed_, parent)

    async def expire_holds(self, older_than: float, shorter_by: float = 0.0) -> int:
        """Release every open hold created before ``older_than`` (hold_days); returns the
        number released. Posted amounts stay posted."""

        def expire(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                _EXPIRED_HOLDS_SQL,
                {"cutoff": older_than, "scan_until": older_than + max(0.0, shorter_by)},
            ).fetchall()
            for match_key, account_id, remaining in rows:
                conn.execute(
                    "UPDATE accounts SET holds = max(holds - ?, 0), version = version + 1 "
                    "WHERE account_id = ?",
                    (remaining, account_id),
                )
                conn.execute(
                    "UPDATE holds SET reversed = amount WHERE match_key = ? AND account_id = ?",
                    (match_key, account_id),
                )
            return len(rows)

        return await self._writer.run(expire)

    async def journal_pruned_through(self) -> int:
        row = await self._reader.run(
            lambda conn: conn.execute("SELECT through_id FROM journal_pruned").fetchone()
        )
        return 0 if row is None else int(row[0])

    async def newest_journal_id(self) -> int:
        row = await self._reader.run(
            lambda conn: conn.execute("SELECT MAX(journal_id) FROM journal").fetchone()
        )
        return int(row[0] or 0)

    async def last_journal_id(self) -> int:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'journal'"
            ).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def newest_fraud_report_id(self) -> int:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT MAX((SELECT last FROM fraud_report_ids WHERE one = 1), "
                "(SELECT COALESCE(MAX(report_id), 0) FROM fraud_reports))"
            ).fetchone()
        )
        return int(row[0] or 0)

    async def raise_counters(self, journal: int, fraud_reports: int) -> IdCounters:
        def raise_(conn: sqlite3.Connection) -> IdCounters:
            conn.execute(
                "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'journal'", (journal,)
            )
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT 'journal', ? WHERE NOT EXISTS "
                "(SELECT 1 FROM sqlite_sequence WHERE name = 'journal')",
                (journal,),
            )
            conn.execute(
                "UPDATE fraud_report_ids SET last = MAX(last, ?) WHERE one = 1", (fraud_reports,)
            )
            (seq,) = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'journal'"
            ).fetchone()
            row = conn.execute("SELECT last FROM fraud_report_ids WHERE one = 1").fetchone()
            return IdCounters(int(seq), int(row[0]) if row else 0)

        return await self._writer.run(raise_)

    async def prune_journal(
        self, before: float, audit: BatchAudit | None = None, seal: AuditSealer | None = None
    ) -> Pruned:
        def batch(conn: sqlite3.Connection) -> dict[str, int]:
            """Up to PRUNE_BATCH entries (with their fraud reports) and as many closed holds,
            and the batch's entry: one transaction."""
            rows = conn.execute(_PRUNE_ENTRIES_SQL, (before, PRUNE_BATCH)).fetchall()
            ids = [row[0] for row in rows]
            if ids:  # a ledger sync must not count on what is gone
                conn.execute(
                    "INSERT INTO journal_pruned (one, through_id) VALUES (1, ?) ON CONFLICT "
                    "(one) DO UPDATE SET through_id = MAX(through_id, excluded.through_id)",
                    (max(ids),),
                )
                conn.execute(_PRUNE_REPORTS_SQL, (json.dumps(ids),))  # labels of nothing now
            deleted = {
                "entries": len(ids),
                "holds": conn.execute(_PRUNE_HOLDS_SQL, (before, PRUNE_BATCH)).rowcount,
            }
            if audit is not None and any(deleted.values()):
                _insert_audit(conn, audit(deleted), seal)
            return deleted

        pruned = Pruned()
        while any((done := await self._writer.run(batch)).values()):
            pruned = Pruned(pruned.entries + done["entries"], pruned.holds + done["holds"])
        # each run, whatever it deleted: the batches take only their own entries' reports
        await self._writer.run(lambda conn: conn.execute(_PRUNE_ORPHAN_REPORTS_SQL))
        return pruned

    # --- cards -----------------------------------------------------------------------------

    async def create_card(
        self,
        card: Card,
        pan_ciphertext: bytes,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            _insert_card(conn, card, pan_ciphertext, same_pan=False)
            if audit is not None:  # in the card's own transaction: both or neither
                _insert_audit(conn, audit, seal)

        await self._writer.run(insert)

    async def get_card(self, card_id: str) -> Card | None:
        return await self._reader.run(
            lambda conn: self._card(
                conn.execute(f"{_CARD_SELECT} WHERE card_id = ?", (card_id,)).fetchone()
            )
        )

    async def find_card(self, pan_index: str) -> Card | None:
        return await self._reader.run(
            lambda conn: self._card(
                conn.execute(
                    f"{_CARD_SELECT} WHERE pan_index = ? {_CURRENT_CARD_FIRST} LIMIT 1",
                    (pan_index,),
                ).fetchone()
            )
        )

    async def list_cards(
        self,
        account_id: str = "",
        state: str = "",
        limit: int = 100,
        offset: int = 0,
        *,
        last4: str = "",
        name: str = "",
    ) -> list[Card]:
        where, args = [], []
        if account_id:
            where.append("account_id = ?")
            args.append(account_id)
        if state:
            where.append("state = ?")
            args.append(state)
        if last4:
            where.append("json_extract(data, '$.last4') = ?")
            args.append(last4)
        if name:  # SQLite's upper() folds ASCII only, as cards.model.name_matches does
            where.append("instr(upper(json_extract(data, '$.cardholder_name')), upper(?)) > 0")
            args.append(name)
        sql = _CARD_SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY seq LIMIT ? OFFSET ?"
        rows = await self._reader.run(
            lambda conn: conn.execute(sql, (*args, limit, offset)).fetchall()
        )
        return [c for c in map(self._card, rows) if c is not None]

    async def update_card(
        self,
        card: Card,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
        more: Sequence[AuditEntry] = (),
    ) -> Card:
        entries = card_entries(card, audit, more)

        def write(conn: sqlite3.Connection) -> Card:
            stored = _update_card(conn, card)
            for entry in entries:  # in the card's own transaction: all or none
                _insert_audit(conn, entry, seal)
            return stored

        return await self._writer.run(write)

    async def replace_card(
        self,
        old: Card,
        new: Card,
        pan_ciphertext: bytes,
        audit: tuple[AuditEntry, AuditEntry] | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        if new.account_id != old.account_id:
            raise StoreError("a replacement card stays on the account of the card it replaces")

        def swap(conn: sqlite3.Connection) -> None:
            linked_old = replace(old, replaced_by=new.card_id)
            linked_new = replace(new, replaces=old.card_id)
            _update_card(conn, linked_old)
            _insert_card(conn, linked_new, pan_ciphertext, same_pan=new.pan_index == old.pan_index)
            for entry in audit or ():  # in the cards' own transaction: all or none
                _insert_audit(conn, entry, seal)

        await self._writer.run(swap)

    async def pan_ciphertext(self, card_id: str) -> bytes:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT pan_ciphertext FROM cards WHERE card_id = ?", (card_id,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"card {card_id} not found")
        return bytes(row[0])

    async def claim_token(
        self, token_ref: str, card_id: str, now: float, replacing: str = ""
    ) -> TokenHolder:
        def claim(conn: sqlite3.Connection) -> TokenHolder:
            conn.execute(
                "INSERT INTO token_holders (token_ref, card_id, since) VALUES (?, ?, ?) ON "
                "CONFLICT (token_ref) DO UPDATE SET card_id = excluded.card_id, "
                "since = excluded.since WHERE card_id = ?",
                (token_ref, card_id, now, replacing),
            )
            sql = "SELECT card_id, since FROM token_holders WHERE token_ref = ?"
            holder, since = conn.execute(sql, (token_ref,)).fetchone()
            return TokenHolder(str(holder), float(since))

        return await self._writer.run(claim)

    async def release_token(self, token_ref: str, card_id: str) -> None:
        def release(conn: sqlite3.Connection) -> None:
            sql = "DELETE FROM token_holders WHERE token_ref = ? AND card_id = ?"
            conn.execute(sql, (token_ref, card_id))

        await self._writer.run(release)

    async def reseal_pan(self, card_id: str, old: bytes, new: bytes) -> bool:
        def reseal(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE cards SET pan_ciphertext = ? WHERE card_id = ? AND pan_ciphertext = ?",
                (new, card_id, old),
            ).rowcount
            if (
                not changed
                and conn.execute("SELECT 1 FROM cards WHERE card_id = ?", (card_id,)).fetchone()
                is None
            ):
                raise NotFound(f"card {card_id} not found")
            return bool(changed)

        return await self._writer.run(reseal)

    # --- journal, audit, lists, idempotency ----------------------------------------------

    async def set_journal_arn(self, entry: JournalEntry, arn: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            sql = "UPDATE journal SET arn = ? WHERE journal_id = ?"
            return bool(conn.execute(sql, (arn, entry.journal_id)).rowcount)

        return await self._writer.run(write)

    async def set_journal_completes(self, entry: JournalEntry, completes: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            sql = "UPDATE journal SET completes = ? WHERE journal_id = ?"
            return bool(conn.execute(sql, (completes, entry.journal_id)).rowcount)

        return await self._writer.run(write)

    @staticmethod
    def _journal_sql(query: JournalQuery) -> tuple[str, list[object]]:
        where, args = ["journal_id > ?", "ts >= ?"], [query.after_id, query.since]
        if query.until != float("inf"):
            where.append("ts < ?")
            args.append(query.until)
        for column in _JOURNAL_EQUALS:  # each filter the query sets, by the column's name
            value = getattr(query, column)
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.review_only:
            where.append("review = 1")  # as the partial index journal_review says it
        return f"{_JOURNAL_SELECT} WHERE {' AND '.join(where)} ORDER BY journal_id", args

    async def last_used(self, card: Card) -> float | None:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT ts FROM journal WHERE card_id = ? ORDER BY journal_id DESC LIMIT 1",
                (card.card_id,),
            ).fetchone()
        )
        return None if row is None else float(row[0])

    async def journal(self, query: JournalQuery) -> list[JournalEntry]:
        sql, args = self._journal_sql(query)
        rows = await self._reader.run(
            lambda conn: conn.execute(f"{sql} LIMIT ?", (*args, query.limit)).fetchall()
        )
        return [_journal(r) for r in rows]

    def export_journal(self, query: JournalQuery) -> AsyncIterator[JournalEntry]:
        """Every matching entry in journal id order, page by page (``limit`` is ignored)."""
        return journal_pages(self.journal, query)

    async def card_journal_newest(
        self, card_id: str, before_id: int = 0, limit: int = 100
    ) -> list[JournalEntry]:
        # journal_by_card (card_id, journal_id) read backwards from before_id: no sort, and
        # no row beyond the page is read
        sql = f"{_JOURNAL_SELECT} WHERE card_id = ?"
        args: list[object] = [card_id]
        if before_id > 0:
            sql += " AND journal_id < ?"
            args.append(before_id)
        sql += " ORDER BY journal_id DESC LIMIT ?"
        rows = await self._reader.run(lambda conn: conn.execute(sql, (*args, limit)).fetchall())
        return [_journal(r) for r in rows]

    async def append_audit(self, entry: AuditEntry, seal: AuditSealer | None = None) -> None:
        await self._writer.run(lambda conn: _insert_audit(conn, entry, seal))

    async def open_dispute(
        self, dispute: Dispute, audit: AuditEntry | None = None, seal: AuditSealer | None = None
    ) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO disputes (dispute_id, journal_id, state, data, card_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (dispute.dispute_id, dispute.journal_id, dispute.state,
                     codec.dispute_to_json(dispute), dispute.card_id),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise Conflict(f"journal entry {dispute.journal_id} is disputed already") from None
            if audit is not None:  # in the dispute's own transaction: both or neither
                _insert_audit(conn, audit, seal)

        await self._writer.run(insert)

    async def update_dispute(
        self,
        dispute: Dispute,
        expected_version: int | None = None,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        data = codec.dispute_to_json(dispute)

        def update(conn: sqlite3.Connection) -> None:
            if _write_dispute(conn, dispute, data, expected_version):
                if audit is not None:  # in the dispute's own transaction: both or neither
                    _insert_audit(conn, audit, seal)
                return
            if expected_version is None and audit is None:  # nothing there: nothing done
                return
            found = conn.execute(
                "SELECT 1 FROM disputes WHERE dispute_id = ?", (dispute.dispute_id,)
            ).fetchone()
            if found is None:
                raise NotFound(f"dispute {dispute.dispute_id} not found")
            raise Conflict(f"dispute {dispute.dispute_id} changed meanwhile")

        await self._writer.run(update)

    async def get_dispute(self, dispute_id: str) -> Dispute | None:
        return await self._one_dispute("SELECT data FROM disputes WHERE dispute_id = ?", dispute_id)

    async def dispute_of_entry(self, journal_id: int) -> Dispute | None:
        return await self._one_dispute("SELECT data FROM disputes WHERE journal_id = ?", journal_id)

    async def disputes_of_card(self, card_id: str) -> list[Dispute]:
        sql = "SELECT data FROM disputes WHERE card_id = ? ORDER BY dispute_id"
        rows = await self._reader.run(lambda conn: conn.execute(sql, (card_id,)).fetchall())
        return [codec.dispute_from_json(row[0]) for row in rows]

    async def _one_dispute(self, sql: str, key: object) -> Dispute | None:
        row = await self._reader.run(lambda conn: conn.execute(sql, (key,)).fetchone())
        return None if row is None else codec.dispute_from_json(row[0])

    async def disputes(self, state: str = "", limit: int = 100, after: str = "") -> list[Dispute]:
        sql = "SELECT data FROM disputes WHERE dispute_id > ?"
        args: list[object] = [after]
        if state:
            sql += " AND state = ?"
            args.append(state)
        sql += " ORDER BY dispute_id LIMIT ?"
        rows = await self._reader.run(lambda conn: conn.execute(sql, (*args, limit)).fetchall())
        return [codec.dispute_from_json(row[0]) for row in rows]

    async def put_fraud_report(
        self,
        report: FraudReport,
        audit: FraudReportAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        # its report_id is taken by the insert's trigger from a counter that never goes
        # down (migration 32), under the file's write lock: ids are written in the order
        # they are taken, whichever process writes, and never handed out twice (a reader
        # that paged past one never finds a smaller or a reused one later)
        def put(conn: sqlite3.Connection) -> None:
            if audit is not None:  # made from the report it replaces, in its transaction
                row = conn.execute(
                    f"{_REPORT_SELECT} WHERE journal_id = ?", (report.journal_id,)
                ).fetchone()
                _insert_audit(conn, audit(None if row is None else _fraud_report(row)), seal)
            conn.execute(
                "INSERT OR REPLACE INTO fraud_reports "
                "(journal_id, card_id, fraud, source, reported_at, note, report_id) "
                "VALUES (?, ?, ?, ?, ?, ?, 0)",
                (
                    report.journal_id,
                    report.card_id,
                    int(report.fraud),
                    report.source,
                    report.reported_at,
                    report.note,
                ),
            )

        await self._writer.run(put)

    async def fraud_reports(self, after_id: int = 0, limit: int = 1000) -> list[FraudReport]:
        """In the order they were written, after report id ``after_id``."""
        rows = await self._reader.run(
            lambda conn: conn.execute(
                f"{_REPORT_SELECT} WHERE report_id > ? ORDER BY report_id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        )
        return [FraudReport(j, c, bool(f), s, r, n, i) for j, c, f, s, r, n, i in rows]

    async def fraud_reports_of(self, journal_ids: Sequence[int]) -> dict[int, FraudReport]:
        if not journal_ids:
            return {}
        ids = json.dumps([int(i) for i in journal_ids])
        rows = await self._reader.run(
            lambda conn: conn.execute(
                f"{_REPORT_SELECT} WHERE journal_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall()
        )
        return {row[0]: _fraud_report(row) for row in rows}

    async def audit(
        self,
        subject: str = "",
        limit: int = 100,
        after_id: int = 0,
        *,
        newest_first: bool = False,
        before_id: int = 0,
        actor: str = "",
    ) -> list[AuditEntry]:
        sql = "SELECT ts, actor, action, subject, before, after, audit_id, chain FROM audit "
        if newest_first:
            sql += "WHERE audit_id < ?"
            args: list[object] = [before_id or _NO_ID_ABOVE]
        else:
            sql += "WHERE audit_id > ?"
            args = [after_id]
        if subject:
            sql += " AND subject = ?"
            args.append(subject)
        if actor:
            sql += " AND actor = ?"
            args.append(actor)
        sql += " ORDER BY audit_id DESC LIMIT ?" if newest_first else " ORDER BY audit_id LIMIT ?"
        rows = await self._reader.run(lambda conn: conn.execute(sql, (*args, limit)).fetchall())
        return [AuditEntry(*r) for r in rows]

    async def get_list(self, name: str) -> frozenset[str]:
        rows = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT value FROM list_values WHERE name = ?", (name,)
            ).fetchall()
        )
        return frozenset(r[0] for r in rows)

    async def put_list(
        self,
        name: str,
        values: Sequence[str],
        audit: ListAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        def put(conn: sqlite3.Connection) -> None:
            if audit is not None:  # made from the values this write replaces, in its transaction
                found = conn.execute("SELECT value FROM list_values WHERE name = ?", (name,))
                _insert_audit(conn, audit(frozenset(r[0] for r in found.fetchall())), seal)
            conn.execute("INSERT OR IGNORE INTO list_names (name) VALUES (?)", (name,))
            conn.execute("DELETE FROM list_values WHERE name = ?", (name,))
            conn.executemany(
                "INSERT OR IGNORE INTO list_values (name, value) VALUES (?, ?)",
                [(name, v) for v in values],
            )

        await self._writer.run(put)

    async def list_names(self) -> list[str]:
        rows = await self._reader.run(
            lambda conn: conn.execute("SELECT name FROM list_names ORDER BY name").fetchall()
        )
        return [r[0] for r in rows]

    async def idempotent_result(self, key: str) -> str | None:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT result FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
        )
        return None if row is None else row[0]

    async def reserve_result(self, key: str, placeholder_json: str) -> str | None:
        return await self._writer.run(
            partial(_put_if_absent, key=key, value=placeholder_json, prunable=True)
        )

    async def remember_result(self, key: str, result_json: str) -> None:
        await self._writer.run(
            lambda conn: conn.execute(
                "INSERT INTO idempotency (key, result, ts, prunable) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (key) DO UPDATE SET result = excluded.result, ts = excluded.ts, "
                "prunable = 1 WHERE substr(idempotency.result, 1, ?) = ?",
                (key, result_json, time.time(), len(PENDING_PREFIX), PENDING_PREFIX),
            )
        )

    async def forget_reservation(self, key: str) -> None:
        await self._writer.run(
            lambda conn: conn.execute(
                "DELETE FROM idempotency WHERE key = ? AND substr(result, 1, ?) = ?",
                (key, len(PENDING_PREFIX), PENDING_PREFIX),
            )
        )

    async def put_marker(
        self,
        key: str,
        value_json: str,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> str | None:
        def put(conn: sqlite3.Connection) -> str | None:
            there = _put_if_absent(conn, key=key, value=value_json, prunable=False)
            if there is None and audit is not None:  # in the marker's transaction: both or neither
                _insert_audit(conn, audit, seal)
            return there

        return await self._writer.run(put)

    async def keep_result(self, key: str) -> bool:
        def keep(conn: sqlite3.Connection) -> bool:
            kept = conn.execute(
                "UPDATE idempotency SET prunable = 0 WHERE key = ? AND substr(result, 1, ?) <> ?",
                (key, len(PENDING_PREFIX), PENDING_PREFIX),
            )
            return kept.rowcount > 0

        return await self._writer.run(keep)

    async def prune_idempotency(
        self, before: float, audit: BatchAudit | None = None, seal: AuditSealer | None = None
    ) -> int:
        def batch(conn: sqlite3.Connection) -> int:
            done = conn.execute(_PRUNE_IDEMPOTENCY_SQL, (before, PRUNE_BATCH)).rowcount
            if audit is not None and done:  # the batch's entry in its transaction
                _insert_audit(conn, audit({"results": done}), seal)
            return done

        deleted = 0
        while done := await self._writer.run(batch):
            deleted += done
        return deleted

    async def put_intent(self, kind: str, subject: str, data_json: str) -> None:
        await self._writer.run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO intents (kind, subject, data, ts) VALUES (?, ?, ?, ?)",
                (kind, subject, data_json, time.time()),
            )
        )

    async def intents(self, kind: str, before: float) -> list[Intent]:
        rows = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT subject, data, ts FROM intents WHERE kind = ? AND ts < ? ORDER BY ts",
                (kind, before),
            ).fetchall()
        )
        return [Intent(kind, subject, data, ts) for subject, data, ts in rows]

    async def drop_intent(self, kind: str, subject: str, ts: float | None = None) -> None:
        sql = "DELETE FROM intents WHERE kind = ? AND subject = ?"
        args: tuple[object, ...] = (kind, subject)
        if ts is not None:  # only the intent written then
            sql, args = sql + " AND ts = ?", (*args, ts)
        await self._writer.run(lambda conn: conn.execute(sql, args))

    async def take_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        def take(conn: sqlite3.Connection) -> bool:
            # one upsert in the writer's BEGIN IMMEDIATE transaction: no other process can
            # write between the look at the holder and the take (SQLite's file lock)
            now = time.time()
            return bool(
                conn.execute(
                    "INSERT INTO leases (name, owner, since, expires_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                    "since = CASE WHEN leases.owner = excluded.owner AND leases.expires_at > "
                    "excluded.since THEN leases.since ELSE excluded.since END, "
                    "expires_at = excluded.expires_at "
                    "WHERE leases.owner = excluded.owner OR leases.expires_at <= excluded.since",
                    (name, owner, now, now + ttl_s),
                ).rowcount
            )

        return await self._writer.run(take)

    async def drop_lease(self, name: str, owner: str) -> None:
        await self._writer.run(
            lambda conn: conn.execute(
                "DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner)
            )
        )

    async def lease_of(self, name: str) -> Lease | None:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT owner, since, expires_at FROM leases WHERE name = ? AND expires_at > ?",
                (name, time.time()),
            ).fetchone()
        )
        return None if row is None else Lease(name, row[0], row[1], row[2])


# --- write transactions (run on the writer thread, inside a savepoint) ---------------------


def _insert_card(
    conn: sqlite3.Connection, card: Card, ciphertext: bytes, *, same_pan: bool
) -> None:
    if not same_pan:
        taken = conn.execute(
            "SELECT 1 FROM cards WHERE pan_index = ? LIMIT 1", (card.pan_index,)
        ).fetchone()
        if taken:
            raise Conflict("a card with this PAN already exists")
    if not card.card_id or not card.pan_index:
        raise StoreError("a card needs a card_id and a pan_index")
    try:
        conn.execute(
            "INSERT INTO cards (card_id, pan_index, account_id, product_id, state, pin_tries, "
            "version, data, pan_ciphertext, waits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                card.card_id,
                card.pan_index,
                card.account_id,
                card.product_id,
                card.state.value,
                card.pin_tries,
                card.version,
                codec.card_to_json(card),
                ciphertext,
                int(not lifecycle.has_been_activated(card)),
            ),
        )
    except sqlite3.IntegrityError:
        raise Conflict(f"card {card.card_id} already exists") from None


def _read_account(conn: sqlite3.Connection, account_id: str) -> Account | None:
    return _account(
        conn.execute(f"{_ACCOUNT_SELECT} WHERE account_id = ?", (account_id,)).fetchone()
    )


def _write_dispute(
    conn: sqlite3.Connection, dispute: Dispute, data: str, expected_version: int | None
) -> bool:
    """The dispute written over its stored row (at ``expected_version``, if given): whether
    it was."""
    if expected_version is None:
        sql = "UPDATE disputes SET state = ?, data = ? WHERE dispute_id = ?"
        return bool(conn.execute(sql, (dispute.state, data, dispute.dispute_id)).rowcount)
    sql = (
        "UPDATE disputes SET state = ?, data = ? WHERE dispute_id = ? "
        "AND coalesce(json_extract(data, '$.version'), 0) = ?"
    )
    args = (dispute.state, data, dispute.dispute_id, expected_version)
    return bool(conn.execute(sql, args).rowcount)


def _insert_audit(conn: sqlite3.Connection, entry: AuditEntry, seal: AuditSealer | None) -> None:
    chain = ""
    if seal is not None:  # the newest entry read in the write's own transaction
        row = conn.execute("SELECT chain FROM audit ORDER BY audit_id DESC LIMIT 1").fetchone()
        chain = seal.seal(row[0] if row else "", entry.sealed_fields())
    conn.execute(
        "INSERT INTO audit (ts, actor, action, subject, before, after, chain) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*entry.sealed_fields(), chain),
    )


def _fraud_report(row: tuple[int, str, int, str, float, str, int]) -> FraudReport:
    """A fraud report from its ``_REPORT_SELECT`` row."""
    journal_id, card_id, fraud, source, reported_at, note, report_id = row
    return FraudReport(journal_id, card_id, bool(fraud), source, reported_at, note, report_id)


def _update_card(conn: sqlite3.Connection, card: Card) -> Card:
    stored = replace(card, version=card.version + 1)
    cursor = conn.execute(
        "UPDATE cards SET account_id = ?, product_id = ?, state = ?, pin_tries = ?, version = ?, "
        "data = ?, waits = ? WHERE card_id = ? AND version = ?",
        (
            card.account_id,
            card.product_id,
            card.state.value,
            card.pin_tries,
            stored.version,
            codec.card_to_json(stored),
            int(not lifecycle.has_been_activated(card)),
            card.card_id,
            card.version,
        ),
    )
    if cursor.rowcount != 1:
        exists = conn.execute("SELECT 1 FROM cards WHERE card_id = ?", (card.card_id,)).fetchone()
        if not exists:
            raise NotFound(f"card {card.card_id} not found")
        raise Conflict(f"card {card.card_id} was changed by someone else (stale version)")
    return stored


def _begin_read(conn: sqlite3.Connection) -> bool:
    """Open one read transaction for several statements; False when it cannot be had
    without waiting."""
    try:
        conn.execute("BEGIN")
    except sqlite3.OperationalError:
        return False
    return True


def _end_read(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("COMMIT")


def _commit(conn: sqlite3.Connection, commit: Commit) -> CommitResult:
    """The commit transaction. It works on a copy of the journal entry and changes nothing
    outside the database, so the writer may run it again (see ``sqlite_thread``)."""
    entry = copy_entry(commit.journal)
    # The entry goes in first: its unique dedupe key makes the insert itself the duplicate
    # check, so a retransmission moves no money and costs no lookup before it.
    cursor = conn.execute(_JOURNAL_INSERT, _journal_values(entry))
    if not cursor.rowcount:
        previous = _journal(conn.execute(_BY_DEDUPE_KEY, (entry.dedupe_key,)).fetchone())
        # the balances the retransmission's answer shows (field 54): read only for a copy
        account = _read_account(conn, previous.account_id) if previous.account_id else None
        return CommitResult(journal=previous, duplicate_of=previous, account=account)
    entry.journal_id = int(cursor.lastrowid or 0)
    if (
        commit.velocity_mark is not None
        and commit.card_id
        and _has_newer_events(conn, entry, commit)
    ):
        conn.execute("DELETE FROM journal WHERE journal_id = ?", (entry.journal_id,))
        return CommitResult(journal=commit.journal, stale=True)  # nothing written
    if commit.card_required and _card_moved(conn, commit.delivered_card):
        # a reversal's card change over a card changed since its snapshot: decided again
        conn.execute("DELETE FROM journal WHERE journal_id = ?", (entry.journal_id,))
        return CommitResult(journal=commit.journal, stale=True)  # nothing written
    if commit.pin_wrong and commit.card_id:  # a guess counts, whatever becomes of the request
        conn.execute(
            "UPDATE cards SET pin_tries = pin_tries + 1, version = version + 1 WHERE card_id = ?",
            (commit.card_id,),
        )
    refused = _refused_atc(conn, commit, entry) if commit.atc is not None else ""
    if refused:
        for name, value in atc_refused_outcome(entry, refused).items():
            setattr(entry, name, value)
        conn.execute(_JOURNAL_OUTCOME_UPDATE, (*_journal_outcome(entry), entry.journal_id))
        return CommitResult(
            journal=entry, atc_replay=refused == ATC_REPLAY, atc_jump=refused == ATC_JUMP
        )
    tries = 0
    if commit.pin_limit and commit.card_id:  # a right PIN: the counter as it is now decides
        row = conn.execute(
            "SELECT pin_tries FROM cards WHERE card_id = ?", (commit.card_id,)
        ).fetchone()
        tries = int(row[0]) if row else 0
        if tries >= commit.pin_limit:  # wrong PINs committed since the snapshot locked it
            for name, value in pin_locked_outcome(entry).items():
                setattr(entry, name, value)
            conn.execute(_JOURNAL_OUTCOME_UPDATE, (*_journal_outcome(entry), entry.journal_id))
            return CommitResult(journal=entry, pin_locked=True)
    # The checks that refuse the request come before anything else is written, in the order
    # Redis's commit script makes them (a PIN change over a card changed meanwhile, a 3-D
    # Secure value used already), so that a refused request changes nothing but its journal
    # entry (and a wrong PIN's count) on either store.
    if commit.changed_card is not None:  # a PIN change: its new reference, no wrong tries
        card = commit.changed_card
        if not conn.execute(
            "UPDATE cards SET data = ?, pin_tries = 0, version = version + 1 "
            "WHERE card_id = ? AND version = ?",
            (codec.card_to_json(card), card.card_id, card.version),
        ).rowcount:
            for name, value in pin_change_conflict_outcome(entry).items():
                setattr(entry, name, value)
            conn.execute(_JOURNAL_OUTCOME_UPDATE, (*_journal_outcome(entry), entry.journal_id))
            return CommitResult(journal=entry, pin_change_conflict=True)
    if commit.cavv_atn and commit.card_id and _cavv_used(conn, commit, entry.ts):
        for name, value in cavv_reused_outcome(entry).items():
            setattr(entry, name, value)
        conn.execute(_JOURNAL_OUTCOME_UPDATE, (*_journal_outcome(entry), entry.journal_id))
        return CommitResult(journal=entry, cavv_reused=True)
    refusal = ""
    account = None
    if commit.movement is not None:
        as_inserted = _journal_outcome(entry)
        refusal, account = _move_money(conn, commit, entry)
        if refusal == _SHORT:
            entry.response_code = "51"
            entry.approval_code = ""
            entry.hold_amount = entry.balance_delta = 0
            entry.reason_codes = ";".join(r for r in (entry.reason_codes, "funds.recheck") if r)
        elif refusal == _BEYOND_BOUND:
            for name, value in balance_bound_outcome(entry).items():
                setattr(entry, name, value)
        outcome = _journal_outcome(entry)
        if outcome != as_inserted:  # refused at commit, or a reversal released less
            conn.execute(_JOURNAL_OUTCOME_UPDATE, (*outcome, entry.journal_id))
    funds_ok = refusal != _SHORT
    bound = refusal == _BEYOND_BOUND
    if commit.cavv_atn and commit.card_id and not refusal:  # the authentication is used up
        _remember_cavv(conn, commit, entry.ts)
    if commit.delivered_card is not None:  # issuer scripts sent: off the card, unless it moved
        card = commit.delivered_card
        written = conn.execute(
            "UPDATE cards SET data = ?, version = version + 1 WHERE card_id = ? AND version = ?",
            (codec.card_to_json(card), card.card_id, card.version),
        ).rowcount
        if commit.card_required and not written:  # checked above, in this same transaction
            raise StoreError(f"card {card.card_id} changed during its commit")
    # a right PIN resets the counter, after the card's other writes (which name the version
    # the snapshot read); a PIN change wrote the card, its tries with it
    if tries and commit.changed_card is None:
        conn.execute(
            "UPDATE cards SET pin_tries = 0, version = version + 1 WHERE card_id = ?",
            (commit.card_id,),
        )
    return CommitResult(journal=entry, funds_ok=funds_ok, balance_bound=bound, account=account)


# An entry committed after a snapshot arrived at most its deadline before the snapshot's
# request: older entries above a mark are history a first read did not count (outside the
# window), never a concurrent request
_CONCURRENT_S = 3600.0
_NEWER_EVENTS = (
    "SELECT 1 FROM journal j WHERE j.card_id = ? AND j.journal_id > ? AND j.journal_id <> ? "
    f"AND j.ts >= ? AND {IS_VELOCITY_ENTRY} LIMIT 1"
)


def _has_newer_events(conn: sqlite3.Connection, entry: JournalEntry, commit: Commit) -> bool:
    """The card has velocity events (other than ``entry``, just inserted) its snapshot did
    not count: a request of the card on another connection or in another process committed
    meanwhile, and the decision may be out of date."""
    row = conn.execute(
        _NEWER_EVENTS,
        (commit.card_id, commit.velocity_mark, entry.journal_id, entry.ts - _CONCURRENT_S),
    ).fetchone()
    return row is not None


def _card_moved(conn: sqlite3.Connection, card: Card | None) -> bool:
    """The card is no longer at ``card``'s version (or no longer there): a required card
    change (``Commit.card_required``) made from it must not be written."""
    if card is None:
        return False
    row = conn.execute("SELECT version FROM cards WHERE card_id = ?", (card.card_id,)).fetchone()
    return row is None or int(row[0]) != card.version


def _cavv_used(conn: sqlite3.Connection, commit: Commit, now: float) -> bool:
    """The card's approvals of the last CAVV_WINDOW_S used this 3-D Secure authentication."""
    return (
        conn.execute(
            "SELECT 1 FROM cavv_atns WHERE card_id = ? AND atn = ? AND seen_at >= ?",
            (commit.card_id, commit.cavv_atn, now - CAVV_WINDOW_S),
        ).fetchone()
        is not None
    )


def _remember_cavv(conn: sqlite3.Connection, commit: Commit, now: float) -> None:
    """Keep the authentication an approval used (and forget the card's that are older than
    CAVV_WINDOW_S)."""
    conn.execute(
        "DELETE FROM cavv_atns WHERE card_id = ? AND seen_at < ?",
        (commit.card_id, now - CAVV_WINDOW_S),
    )
    conn.execute(
        "INSERT INTO cavv_atns (card_id, atn, seen_at) VALUES (?, ?, ?) "
        "ON CONFLICT DO UPDATE SET seen_at = excluded.seen_at",
        (commit.card_id, commit.cavv_atn, now),
    )


def _refused_atc(conn: sqlite3.Connection, commit: Commit, entry: JournalEntry) -> str:
    """Record the card's chip counter, or say why it is refused: ATC_REPLAY when it is not above
    the card's newest (a card's counter only goes up, so the card used it, or a cryptogram made
    earlier is sent now), ATC_JUMP when it is further ahead of the newest than
    ``atc_jump_limit``; "" when it is recorded. The card's counters older than ATC_WINDOW_S are
    forgotten here, except its newest, which is kept for as long as the card is used."""
    if not commit.card_id:
        return ""
    atc = commit.atc or 0
    newest = conn.execute(
        "SELECT max(atc) FROM chip_atcs WHERE card_id = ?", (commit.card_id,)
    ).fetchone()[0]
    if newest is not None:
        if atc <= newest:
            return ATC_REPLAY
        if commit.atc_jump_limit and atc - newest > commit.atc_jump_limit:
            return ATC_JUMP
    conn.execute(
        "DELETE FROM chip_atcs WHERE card_id = ? AND seen_at < ? AND atc < ?",
        (commit.card_id, entry.ts - ATC_WINDOW_S, atc),
    )
    cursor = conn.execute(
        "INSERT INTO chip_atcs (card_id, atc, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (commit.card_id, atc, entry.ts),
    )
    return "" if cursor.rowcount else ATC_REPLAY


_SHORT, _BEYOND_BOUND = "short", "beyond_bound"  # why _move_money refused (nothing moved)


def _move_money(
    conn: sqlite3.Connection, commit: Commit, entry: JournalEntry
) -> tuple[str, Account | None]:
    """Apply the commit's movement: "" when done, else why nothing changed (_SHORT: funds are
    short; _BEYOND_BOUND: the balance or holds would go beyond BALANCE_BOUND)."""
    move = commit.movement
    assert move is not None
    if move.kind is MoneyMove.RELEASE:
        return _release(conn, move, entry)
    amount = move.amount_minor
    spending = move.kind in (MoneyMove.HOLD, MoneyMove.POST)
    hold = amount if move.kind is MoneyMove.HOLD else 0
    spend = (
        amount if move.kind is MoneyMove.POST else -amount if move.kind is MoneyMove.CREDIT else 0
    )
    params = {
        "account": move.account_id,
        "hold": hold,
        "spend": spend,
        "check": 1 if spending and move.require_funds else 0,
        "amount": amount,
        "bound": BALANCE_BOUND,
    }
    account = _account(conn.execute(_SPEND_SQL, params).fetchone())
    if account is None:
        current = _account(
            conn.execute(f"{_ACCOUNT_SELECT} WHERE account_id = ?", (move.account_id,)).fetchone()
        )
        if current is None:
            raise NotFound(f"account {move.account_id} not found")
        if move.require_funds and spending and amount > current.open_to_buy:
            return _SHORT, current
        return _BEYOND_BOUND, current
    entry.balance_delta = balance_delta(account.kind, move.kind, amount)
    if move.completes and move.kind is MoneyMove.POST and move.completes != entry.match_key:
        account = _release_completed_hold(conn, move, account)
    if entry.match_key:  # what a reversal finds: a hold, a posted amount, a credit
        posted = int(move.kind is MoneyMove.POST)
        posted, parent = _CREDITED if move.kind is MoneyMove.CREDIT else posted, ""
        if (
            spending
            and move.extends
            and move.extends != entry.match_key
            and _extend(conn, move, entry)
        ):
            posted, parent = _INCREMENT, move.extends
        conn.execute(
            "INSERT INTO holds (match_key, account_id, amount, posted, reversed, created_at, "
            "parent, extra_life) VALUES (?, ?, ?, ?, 0, ?, ?, ?) "
            "ON CONFLICT (match_key, account_id) DO "
            "UPDATE SET amount = amount + excluded.amount, posted = excluded.posted",
            (
                entry.match_key,
                move.account_id,
                amount,
                posted,
                entry.ts,
                parent,
                move.extra_life_s if posted == 0 else 0.0,
            ),
        )
    return "", account


def _extend(conn: sqlite3.Connection, move: Movement, entry: JournalEntry) -> bool:
    """An incremental authorisation adds its amount to its pre-authorisation's hold, if that
    is still open on the account, and extends its life: the hold expires ``hold_days`` after
    the newest increment. False (held on its own) when it is not open any more."""
    return bool(
        conn.execute(
            "UPDATE holds SET amount = amount + ?, created_at = max(created_at, ?) "
            "WHERE match_key = ? AND account_id = ? AND posted = 0 AND amount > reversed",
            (move.amount_minor, entry.ts, move.extends, move.account_id),
        ).rowcount
    )


def _release_completed_hold(conn: sqlite3.Connection, move: Movement, account: Account) -> Account:
    """A completion releases whatever its pre-authorisation still holds, in the write that
    posts the final amount, so the cardholder's funds are not counted twice until the hold
    expires; one of several (``completes_in_part``) releases only what it posts. A posted
    original, one on another account, or one already released leaves nothing to release.
    Returns the account after it."""
    hold_row = conn.execute(
        "SELECT amount - reversed FROM holds WHERE match_key = ? AND account_id = ? AND NOT posted",
        (move.completes, move.account_id),
    ).fetchone()
    if hold_row is None or hold_row[0] <= 0:
        return account
    release = min(hold_row[0], move.amount_minor) if move.completes_in_part else hold_row[0]
    freed = min(release, account.holds)
    conn.execute(
        "UPDATE holds SET reversed = reversed + ? WHERE match_key = ? AND account_id = ?",
        (release, move.completes, move.account_id),
    )
    conn.execute(
        "UPDATE accounts SET holds = holds - ? WHERE account_id = ?", (freed, move.account_id)
    )
    return replace(account, holds=account.holds - freed)


def _release(conn: sqlite3.Connection, move, entry: JournalEntry) -> tuple[str, Account | None]:
    """A reversal: release up to what the hold (or posted amount) still has; repeatable.
    Refused (_BEYOND_BOUND, nothing changed) when the money it gives back or takes back would
    take the balance beyond BALANCE_BOUND."""
    hold_row = conn.execute(
        "SELECT account_id, amount, posted, reversed, parent FROM holds "
        "WHERE match_key = ? AND account_id = ?",
        (move.match_key, move.account_id),
    ).fetchone()
    account_id = hold_row[0] if hold_row is not None else move.account_id
    account = _account(
        conn.execute(f"{_ACCOUNT_SELECT} WHERE account_id = ?", (account_id,)).fetchone()
    )
    if account is None:
        raise NotFound(f"account {account_id} not found")
    entry.balance_delta = 0
    if hold_row is None:
        entry.hold_amount = 0
        return "", account
    _, held, posted, reversed_, parent = hold_row
    release = max(0, min(move.amount_minor, held - reversed_ - move.keep_minor))
    if release > 0 and posted in _MOVED:  # money back, or a credit taken back
        change = spend_delta(account.kind, release) * (1 if posted == _CREDITED else -1)
        if beyond_bound(account.balance, change):
            return _BEYOND_BOUND, account
    if posted == _INCREMENT:  # its amount is in its parent's hold too: release it from both
        parent_row = conn.execute(
            "SELECT amount - reversed FROM holds WHERE match_key = ? AND account_id = ?",
            (parent, account_id),
        ).fetchone()
        release = min(release, parent_row[0] if parent_row is not None else 0)
        if release > 0:
            conn.execute(
                "UPDATE holds SET reversed = reversed + ? WHERE match_key = ? AND account_id = ?",
                (release, parent, account_id),
            )
    entry.hold_amount = -release
    if release == 0:
        return "", account
    balance_change = holds_delta = 0
    if posted == _POSTED:
        balance_change = -spend_delta(account.kind, release)
    elif posted == _CREDITED:  # the credit taken back, whatever the account holds now
        balance_change = spend_delta(account.kind, release)
    else:
        holds_delta = -min(release, account.holds)
    entry.balance_delta = balance_change
    conn.execute(
        "UPDATE holds SET reversed = reversed + ? WHERE match_key = ? AND account_id = ?",
        (release, move.match_key, account_id),
    )
    conn.execute(
        "UPDATE accounts SET balance = balance + ?, holds = holds + ?, version = version + 1 "
        "WHERE account_id = ?",
        (balance_change, holds_delta, account_id),
    )
    return "", replace(
        account,
        balance=account.balance + balance_change,
        holds=account.holds + holds_delta,
        version=account.version + 1,
    )


# sqlite3's errors that say the code is wrong, not the file or the disk: a query naming a
# column or table the schema lacks, a syntax error, the wrong number of bindings, a value of
# a type SQLite cannot take, a connection used after close or from two threads.
_CODE_ERRORS = (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.NotSupportedError)
_CODE_WORDS = ("no such column", "no such table", "no such function", "syntax error")


def _read_failed(error: Exception) -> Exception:
    """SQLite's own error of a snapshot (a damaged file: "database disk image is malformed",
    an I/O error) as the store's failure, answered 96 and logged in one line like a write the
    store refused; anything else a snapshot raised stays as it is (a bug, with its traceback),
    sqlite3's errors that say the code is wrong too: as the store's, they were one line a
    second without a traceback, and the store looked broken when the code was."""
    if isinstance(error, _CODE_ERRORS) or (
        isinstance(error, sqlite3.OperationalError) and any(w in str(error) for w in _CODE_WORDS)
    ):
        return error
    if isinstance(error, sqlite3.Error):
        return unavailable(error, "SQLite failed the read")
    return error
