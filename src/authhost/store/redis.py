"""Redis card store through coredis (runs under trio via anyio): single Redis or Redis Cluster.

Key layout and why it keeps commits atomic on a cluster: see ``redis_keys``. On a cluster a
snapshot is two round trips (the PAN pointer, then one read-only script on the account's slot
pipelined with the product); on a single Redis it is one script, and the snapshots read
together are one script call. A commit is one script on the account's slot; the commits ready
together are one script call on a single Redis and one pipeline on a cluster. coredis costs far
more CPU per command than Redis does per script, so one command for a batch instead of one
task and one command per request is what the batching buys.
Journal ids come from a global sequence taken in blocks (hi/lo), so they are unique across
processes and increase within each process; global journal queries merge the per-account
journals by id.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from functools import partial
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import coredis
from coredis.connection import TCPLocation
from coredis.exceptions import NoScriptError, RedisError, ResponseError
from coredis.tokens import PureToken

from authhost.cards import lifecycle
from authhost.cards.acceptor_velocity import WINDOW_LONG_S, AcceptorCounters
from authhost.cards.model import Account, Card, Product, name_matches
from authhost.cards.velocity import EMPTY, RETENTION_S, VelocityEvent
from authhost.models.context import acceptor_event_from_entry, event_from_entry
from authhost.store import codec, redis_lua
from authhost.store.gathering import (
    Gathering,
    Waiter,
    each_at_once,
    let_others_join,
    wake_followers,
)
from authhost.store.interface import (
    ACCOUNT_AUDIT_TRIES,
    ATC_JUMP,
    ATC_REPLAY,
    ATC_WINDOW_S,
    CAVV_WINDOW_S,
    LEDGER_MAX_AFTER,
    LEGACY_MARKER_PREFIXES,
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
    NotFound,
    OpenHold,
    Pruned,
    Snapshot,
    SnapshotQuery,
    StoreError,
    StoreInfo,
    StoreUnavailable,
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
from authhost.store.opener import printable_url
from authhost.store.records import (
    AuditEntry,
    Dispute,
    FraudReport,
    JournalEntry,
    copy_entry,
    journal_dict,
)
from authhost.store.redis_acceptors import RedisAcceptorStream
from authhost.store.redis_batch import AuditedBatch, FollowingEntries
from authhost.store.redis_keys import Keys
from authhost.store.redis_velocity import Kept, VelocityLogs
from authhost.store.retention import FETCH_SPAN_S, PRUNE_MARGIN_S

ID_BLOCK = 100
# Ids are reserved a block at a time, before the writes that use them. A block older than this
# is dropped: an id used long after it was reserved would land below ids other processes
# committed meanwhile, behind the cursor of a feed that reads the journal in id order (the
# movements and alerts feeds, ``admin.journal_feed``, wait SETTLE_S: 2 s, more than this and a
# request's deadline).
ID_BLOCK_LIFE_S = 0.5
PRUNE_PAGE = 1_000  # journal entries or holds deleted per call while pruning
DISPUTE_IDS_PAGE = 200  # dispute ids read at a time for an admin's list of disputes
# Requests per script call: Redis runs one script at a time, so a burst of thousands from a
# switch must not hold it (and every other client) for one long script.
MAX_PER_SCRIPT = 64
CARD_CACHE_SIZE = 50_000  # parsed cards kept (about 2 KB each); cleared when full
# KEYS: reports hash, their ids sorted set, report_id sequence (one slot).  ARGV: journal id,
# the report's JSON with "report_id":0 last. The report takes the next report_id and is written
# in one script, so report ids are written in order and a consumer paging on them never finds
# a smaller one later. Reports written before report ids (scored by their journal id) keep
# their place: the sequence starts above them.
_HOLD_PLACEHOLDER = "__HOLD__"
_BALANCE_PLACEHOLDER = "__BALANCE__"  # the commit script writes what it added to the balance
_PLACEHOLDERS = {"hold_amount": _HOLD_PLACEHOLDER, "balance_delta": _BALANCE_PLACEHOLDER}

log = logging.getLogger("authhost.store")
R = TypeVar("R")


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {_s(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _account(flat: list[Any] | dict | None) -> Account | None:
    if not flat:
        return None
    data = flat if isinstance(flat, dict) else _pairs(flat)
    return codec.account_from_fields({_s(k): _s(v) for k, v in data.items()})


def _account_row(values: Sequence[Any] | None) -> Account | None:
    """From the scripts' HMGET of redis_lua.ACCOUNT_FIELDS, in that order."""
    if not values or values[0] is None:
        return None
    account_id, currency, kind, balance, credit_limit, holds, version = values
    return Account(
        _s(account_id),
        _s(currency),
        codec.CARD_KINDS[_s(kind)],
        int(balance),
        int(credit_limit),
        int(holds),
        int(version),
    )


def _card(values: Sequence[Any] | None) -> Card | None:
    """From HMGET data, pin_tries, version."""
    if not values or values[0] is None:
        return None
    return codec.card_from_json(values[0], pin_tries=int(values[1]), version=int(values[2]))


def _matches(entry: JournalEntry, query: JournalQuery) -> bool:
    """The query's filters that its index did not apply (the card's on the review index)."""
    return (
        (not query.card_id or entry.card_id == query.card_id)
        and (not query.merchant_id or entry.merchant_id == query.merchant_id)
        and (not query.approval_code or entry.approval_code == query.approval_code)
        and (not query.rrn or entry.rrn == query.rrn)
        and (not query.completes or entry.completes == query.completes)
        and query.since <= entry.ts < query.until
    )


def _event(member: bytes) -> VelocityEvent:
    """A velocity log member: ``approved|[ts, amount, merchant, country, cash, pin_failed,
    cvv_failed, journal_id]``, with a ninth item 1 for a credit to the card (a log written
    before credits were events has none)."""
    approved, rest = member.split(b"|", 1)
    ts, amount, merchant, country, cash, pin_failed, cvv_failed, _, *credit = json.loads(rest)
    return VelocityEvent(
        ts,
        amount,
        approved == b"1",
        merchant,
        country,
        cash,
        pin_failed,
        cvv_failed,
        bool(credit and credit[0]),
    )


class _CommitCall(Waiter):
    __slots__ = ("keys", "args")

    def __init__(self, keys: list[str], args: list[str]) -> None:
        super().__init__()
        self.keys = keys
        self.args = args


def _funds_short(entry: JournalEntry) -> dict[str, object]:
    """What the commit script stores instead when the funds re-check refuses ``entry``."""
    reasons = ";".join(r for r in (entry.reason_codes, "funds.recheck") if r)
    return {
        "response_code": "51",
        "approval_code": "",
        "hold_amount": 0,
        "reason_codes": reasons,
        "balance_delta": 0,
    }


def _funds_short_json(ok_json: str, entry: JournalEntry) -> str:
    return _outcome_json(ok_json, entry, _funds_short(entry))


def _outcome_json(ok_json: str, entry: JournalEntry, outcome: dict[str, object]) -> str:
    """``ok_json`` (the entry as stored when approved) with ``outcome``'s fields instead:
    each ``"name":value,`` is replaced where it stands. A value's own quotes are escaped in
    JSON, so ``"name":`` with bare quotes only occurs as the field itself; no second encode."""
    text = ok_json
    for name, value in outcome.items():
        was = _PLACEHOLDERS[name] if name in _PLACEHOLDERS else getattr(entry, name)
        text = text.replace(f'"{name}":{_json_value(was)},', f'"{name}":{_json_value(value)},', 1)
    return text


def _json_value(value: object) -> str:
    return encode_basestring_ascii(value) if isinstance(value, str) else str(value)


def _hold(match_key: str, account_id: str, raw: bytes) -> Hold:
    amount, posted, reversed_, rest = _s(raw).split("|", 3)
    parent = rest.partition("|")[2] if posted == "2" else ""  # an increment names its parent
    return Hold(
        match_key,
        account_id,
        int(amount) - int(reversed_),
        posted in ("1", "3"),
        int(reversed_),
        parent,
    )


class RedisCardStore:
    """``CardStore`` on Redis. Open with ``await RedisCardStore.open(url, prefix=...)`` and
    close in the same task (coredis runs its connection pool in a task group)."""

    backend_errors: tuple[type[BaseException], ...] = (
        RedisError,  # refused (OOM, a script's error) or the link failed
        anyio.BrokenResourceError,  # the connection broke under a request
        anyio.ClosedResourceError,
        ConnectionError,  # refused, reset
    )

    def __init__(self, client: Any, stack: AsyncExitStack, prefix: str, cluster: bool) -> None:
        self._client = client
        self._stack = stack
        self._keys = Keys(_prefix_ok(prefix))
        self._cluster = cluster
        # this process's account writes with their entry, one at a time: on a single Redis
        # they would all race for the chain's head, and on one account for its balance, each
        # race a round trip lost (and, past ACCOUNT_AUDIT_TRIES balance moves, a refusal)
        self._account_audit_lock = anyio.Lock()
        # this process's list and fraud report writes with their entry, one at a time: each
        # is a compare-and-set on what it read, so a burst of puts of one list (or reports on
        # one entry) would lose a try to each other put that landed first, and past
        # ACCOUNT_AUDIT_TRIES be refused although no other process wrote
        self._read_audit_lock = anyio.Lock()
        self.ledger_max_after = LEDGER_MAX_AFTER  # entries a ledger sync adds up at most
        self._snapshot = client.register_script(redis_lua.SNAPSHOT)
        self._snapshot_one = client.register_script(redis_lua.SNAPSHOT_STANDALONE)
        self._snapshot_many = client.register_script(redis_lua.SNAPSHOT_STANDALONE_MANY)
        self._commit = client.register_script(redis_lua.COMMIT)
        self._commit_many = client.register_script(redis_lua.COMMIT_MANY)
        self._update = client.register_script(redis_lua.UPDATE_CARD)
        self._update_audited = client.register_script(redis_lua.UPDATE_CARD_AUDITED)
        self._move_audited = client.register_script(redis_lua.MOVE_CARD_AUDITED)
        self._hand_over = client.register_script(redis_lua.HAND_OVER_VELOCITY)
        self._drop_intent = client.register_script(redis_lua.DROP_INTENT)
        self._put_product = client.register_script(redis_lua.PUT_PRODUCT)
        self._put_product_audited = client.register_script(redis_lua.PUT_PRODUCT_AUDITED)
        self._create_account_audited = client.register_script(redis_lua.CREATE_ACCOUNT_AUDITED)
        self._create_card_audited = client.register_script(redis_lua.CREATE_CARD_AUDITED)
        self._replace_audited = client.register_script(redis_lua.REPLACE_CARD_AUDITED)
        self._put_marker_audited = client.register_script(redis_lua.PUT_MARKER_AUDITED)
        self._put_list_audited = client.register_script(redis_lua.PUT_LIST_AUDITED)
        self._settle = client.register_script(redis_lua.SETTLE_RESERVATION)
        self._put_if_absent = client.register_script(redis_lua.PUT_IF_ABSENT)
        self._claim_token = client.register_script(redis_lua.CLAIM_TOKEN)
        self._release_token = client.register_script(redis_lua.RELEASE_TOKEN)
        self._keep_result = client.register_script(redis_lua.KEEP_RESULT)
        self._prune_written = client.register_script(redis_lua.PRUNE_WRITTEN)
        self._raise_to = client.register_script(redis_lua.RAISE_TO)
        self._audited_batch = client.register_script(redis_lua.AUDITED_BATCH)
        self._change_funds = client.register_script(redis_lua.CHANGE_FUNDS)
        self._change_funds_audited = client.register_script(redis_lua.CHANGE_FUNDS_AUDITED)
        self._sync_ledger = client.register_script(redis_lua.SYNC_LEDGER)
        self._sync_ledger_audited = client.register_script(redis_lua.SYNC_LEDGER_AUDITED)
        self._set_credit_limit = client.register_script(redis_lua.SET_CREDIT_LIMIT)
        self._set_credit_limit_audited = client.register_script(redis_lua.SET_CREDIT_LIMIT_AUDITED)
        self._reseal_pan = client.register_script(redis_lua.RESEAL_PAN)
        self._replace_entry = client.register_script(redis_lua.REPLACE_JOURNAL_ENTRY)
        self._replace = client.register_script(redis_lua.REPLACE_CARD)
        self._audit = client.register_script(redis_lua.APPEND_AUDIT)
        self._audit_chained = client.register_script(redis_lua.APPEND_AUDIT_CHAINED)
        self._open_dispute = client.register_script(redis_lua.OPEN_DISPUTE)
        self._update_dispute = client.register_script(redis_lua.UPDATE_DISPUTE)
        self._open_dispute_audited = client.register_script(redis_lua.OPEN_DISPUTE_AUDITED)
        self._update_dispute_audited = client.register_script(redis_lua.UPDATE_DISPUTE_AUDITED)
        self._index_open_disputes = client.register_script(redis_lua.INDEX_OPEN_DISPUTES)
        self._index_dispute_ids = client.register_script(redis_lua.INDEX_DISPUTE_IDS)
        self._index_disputes_by_card = client.register_script(redis_lua.INDEX_DISPUTES_BY_CARD)
        self._expire = client.register_script(redis_lua.EXPIRE_HOLDS)
        self._put_fraud_report = client.register_script(redis_lua.PUT_FRAUD_REPORT)
        self._put_fraud_report_audited = client.register_script(redis_lua.PUT_FRAUD_REPORT_AUDITED)
        self._renew_lease = client.register_script(redis_lua.RENEW_LEASE)
        self._drop_lease = client.register_script(redis_lua.DROP_LEASE)
        self._products: dict[bytes, Product] = {}
        self._known: dict[str, Card] = {}  # PAN index -> the card last parsed (_card_of)
        self._velocity = VelocityLogs(_event)
        self._acceptors = RedisAcceptorStream(self._keys.acceptor_events)
        self._commits: Gathering[_CommitCall] = Gathering()
        self._stamp = b""  # redis_keys.Keys.stamp's value when this process opened the store
        self._stamp_refused = False  # Redis refused to write the stamp (said once)
        self.pipelined_batches = 0  # commits sent several at once (a script call or a pipeline)
        self._ids: list[int] = []
        self._ids_reserved_at = 0.0  # time.monotonic() of the newest block
        self.id_block_life_s = ID_BLOCK_LIFE_S
        self._id_lock = anyio.Lock()

    @classmethod
    async def open(cls, url: str, *, prefix: str = "authhost") -> RedisCardStore:
        _prefix_ok(prefix)
        # coredis's documented production switch: no runtime re-validation of the arguments
        # of every command (ours are fixed and tested); measured by bench_store.py --backend
        # redis, where the validators were a visible share of the client's CPU per command
        coredis.Config.optimized = True
        cluster = "+cluster" in url.split("://", 1)[0]
        plain_url = url.replace("+cluster", "", 1)
        if cluster:
            where = urlsplit(plain_url)
            client = coredis.RedisCluster.from_url(
                plain_url,
                decode_responses=False,
                startup_nodes=[TCPLocation(where.hostname or "127.0.0.1", where.port or 6379)],
            )
        else:
            client = coredis.Redis.from_url(plain_url, decode_responses=False)
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(client)
            await client.ping()
        except Exception as exc:
            await stack.aclose()
            raise StoreError(f"cannot reach Redis at {printable_url(url)}: {exc}") from None
        store = cls(client, stack, prefix, cluster)
        try:
            await store._take_stamp()
        except BaseException:
            await stack.aclose()
            raise
        if not cluster:
            try:
                await store._index_every_journal()
            except BaseException:
                await stack.aclose()
                raise
        return store

    async def _take_stamp(self) -> None:
        """Remember the store's stamp; write one only where it is missing beside the data
        that sets a store up (a product, an account, a card: a store set up before stamps,
        or one set up since this process opened it). Never on an empty Redis: that is a
        store not set up yet or one that lost its data, and stamping it (as every ``open``
        did: a restarted server, a worker, a CLI command) made every card read as unknown,
        answered 14, again. A read alone when stamped: a Redis at its maxmemory still opens."""
        key, keys = self._keys.stamp, self._keys
        self._stamp = await self._client.get(key) or b""
        if self._stamp or not await self._client.exists(
            [keys.products, keys.accounts, keys.all_cards]  # one slot: {g}
        ):
            return
        try:
            await self._client.set(key, os.urandom(8).hex(), condition=PureToken.NX)
        except ResponseError as exc:  # at its maxmemory: opens; health_read tries again
            if not self._stamp_refused:  # once, not each second: /readyz says it meanwhile
                self._stamp_refused = True
                log.warning("cannot stamp the Redis store now (%s): not ready until it can", exc)
            return
        self._stamp = await self._client.get(key) or b""

    async def _stamp_set_up(self) -> None:
        """After a write that sets the store up: stamp it if this process found it empty."""
        if not self._stamp:
            await self._take_stamp()

    async def health_read(self) -> None:
        if not self._stamp:  # opened on an empty Redis: ready once set up or restored
            await self._take_stamp()
            if not self._stamp:
                raise StoreError(redis_lua.STORE_LOST)
        stamp = await self._client.get(self._keys.stamp)
        if stamp != self._stamp:
            raise StoreError(redis_lua.STORE_LOST if stamp is None else redis_lua.STORE_REPLACED)

    async def _index_every_journal(self) -> None:
        """Put the entries journalled before the global journal index existed into it, once
        (a marker says it is done; commits index their own entries meanwhile, the same way)."""
        keys = self._keys
        done = f"{keys.journal_global}:complete"
        if await self._client.exists([done]):
            return
        for account_id in ["", *(_s(i) for i in await self._client.zrange(keys.accounts, 0, -1))]:
            ak = keys.account(account_id)
            start = 0
            while ids := await self._client.zrange(ak.journal_all, start, start + 9_999):
                await self._client.zadd(
                    keys.journal_global, {f"{_s(j)}|{ak.journal}": int(_s(j)) for j in ids}
                )
                start += len(ids)
        await self._client.set(done, "1")

    @property
    def prefix(self) -> str:
        return self._keys.prefix

    @property
    def client(self) -> Any:
        """The coredis client (for tests and tools that inspect the keys)."""
        return self._client

    def info(self) -> StoreInfo:
        return StoreInfo(
            backend="redis-cluster" if self._cluster else "redis",
            shared_between_processes=True,
            notes=[f"key prefix {self._keys.prefix!r}"],
        )

    async def close(self) -> None:
        await self._stack.aclose()

    async def __aenter__(self) -> RedisCardStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def drop_all(self) -> int:
        """Delete every key under this store's prefix (tests, benchmarks). The stamp
        goes with them: the store set up again here gets a new one (``_stamp_set_up``)."""
        deleted = 0
        async for key in self._client.scan_iter(match=f"{self._keys.prefix}:*", count=1000):
            deleted += await self._client.delete([key])
        self._stamp = b""
        return deleted

    async def _journal_ids(self, count: int) -> list[int]:
        """``count`` journal ids, increasing; a round trip only when the block runs out or is
        older than ``id_block_life_s`` (see ID_BLOCK_LIFE_S)."""
        if self._ids and time.monotonic() - self._ids_reserved_at > self.id_block_life_s:
            self._ids.clear()
        if len(self._ids) < count or self._id_lock.locked():
            async with self._id_lock:
                while len(self._ids) < count:
                    top = await self._client.incrby(self._keys.journal_seq, ID_BLOCK)
                    self._ids[:0] = range(top, top - ID_BLOCK, -1)
                    self._ids_reserved_at = time.monotonic()
        return [self._ids.pop() for _ in range(count)]

    # --- authorisation path --------------------------------------------------------------

    async def _pointer(self, pan_index: str) -> tuple[str, str, str] | None:
        """(card_id, account_id, product_id) of the current card for a PAN index."""
        raw = await self._client.get(self._keys.pan(pan_index))
        if raw is None:
            return None
        card_id, account_id, product_id = _s(raw).split("|", 2)
        return card_id, account_id, product_id

    async def snapshot(self, query: SnapshotQuery) -> Snapshot:
        (snapshot,) = await self.snapshot_many((query,))
        if isinstance(snapshot, Exception):
            raise snapshot
        return snapshot

    async def _snapshot_alone(self, query: SnapshotQuery) -> Snapshot:
        if not self._cluster:
            return await self._snapshot_standalone(query)
        pointer = await self._pointer(query.pan_index) if query.pan_index else None
        if pointer is None and not await self._client.exists([self._keys.stamp]):
            raise StoreError(redis_lua.STORE_LOST)  # as the standalone script does
        if pointer is None and not query.dedupe_key and not query.original_key:
            return Snapshot()
        card_id, account_id, product_id = pointer or ("", "", "")
        ak = self._keys.account(account_id)
        keys = [
            ak.account,
            ak.card(card_id),
            ak.velocity(card_id),
            ak.dedupe,
            ak.holds,
            ak.journal,
            ak.velocity_log(card_id),
            ak.velocity_pruned(card_id),
        ]
        kept, kept_card, counted = self._velocity.ask(query.pan_index)
        known = self._known.get(query.pan_index)
        if known is not None and known.card_id != card_id:
            known = None
        args = [
            repr(query.now),
            repr(FETCH_SPAN_S),
            query.dedupe_key,
            query.original_key,
            "1" if pointer else "0",
            counted if kept_card == card_id else "0",
            str(known.version) if known is not None else "",
        ]
        product_raw = None
        if pointer is None:
            reply = await self._snapshot(keys, args, readonly=True)
        else:
            try:
                reply, product_raw = await self._snapshot_pipeline(keys, args, product_id)
            except NoScriptError:  # the server lost its scripts (restart, SCRIPT FLUSH)
                await self._client.script_load(redis_lua.SNAPSHOT)
                reply, product_raw = await self._snapshot_pipeline(keys, args, product_id)
        account_raw, card_raw, events_raw, previous_raw, hold_raw, velocity_reply = reply
        return self._snapshot_from(
            query,
            account_id,
            card_id,
            kept,
            known,
            account_raw,
            card_raw,
            events_raw,
            velocity_reply,
            previous_raw,
            hold_raw,
            product_raw,
        )

    def _standalone_call(
        self, query: SnapshotQuery
    ) -> tuple[list[str], list[str], Kept | None, Card | None]:
        """The standalone snapshot script's keys and arguments for ``query``, the velocity the
        process kept for its PAN and the card it parsed for it last (what '=' will mean)."""
        keys = [self._keys.pan(query.pan_index), self._keys.products]
        kept, kept_card, counted = self._velocity.ask(query.pan_index)
        args = [
            repr(query.now),
            repr(FETCH_SPAN_S),
            query.dedupe_key,
            query.original_key,
            self._keys.prefix,
            counted,
            kept_card,
        ]
        known = self._known.get(query.pan_index)
        args.append(f"{known.card_id}|{known.version}" if known is not None else "")
        return keys, args, kept, known

    async def _snapshot_standalone(self, query: SnapshotQuery) -> Snapshot:
        """One round trip: the script follows the PAN pointer and reads the product too."""
        keys, args, kept, known = self._standalone_call(query)
        reply = await self._snapshot_one(keys, args, readonly=True)
        return self._standalone_snapshot(query, kept, known, reply)

    async def _snapshots_together(
        self, queries: Sequence[SnapshotQuery]
    ) -> list[Snapshot | Exception]:
        """Several standalone snapshots in ONE script call: coredis costs far more CPU per
        command than Redis does per snapshot (the script is loaded again if Redis lost it)."""
        calls = [self._standalone_call(query) for query in queries]
        replies: list[Any] = []
        for first in range(0, len(calls), MAX_PER_SCRIPT):
            part = calls[first : first + MAX_PER_SCRIPT]
            keys = [key for call_keys, _, _, _ in part for key in call_keys]
            args = [str(len(part)), *(arg for _, call_args, _, _ in part for arg in call_args)]
            try:
                replies.extend(await self._snapshot_many(keys, args, readonly=True))
            except Exception as exc:  # Redis or the link failed: no snapshot was read
                return [unavailable(exc, "Redis failed the snapshot")] * len(queries)
        outcomes: list[Snapshot | Exception] = []
        for query, (_, _, kept, known), reply in zip(queries, calls, replies, strict=True):
            if len(reply) == 2 and _s(reply[0]) == "err":  # this one raised inside Redis
                outcomes.append(StoreError(f"Redis refused the snapshot: {_s(reply[1])}"))
                continue
            try:
                outcomes.append(self._standalone_snapshot(query, kept, known, reply))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _standalone_snapshot(
        self, query: SnapshotQuery, kept: Kept | None, known: Card | None, reply: Any
    ) -> Snapshot:
        (account_raw, card_raw, events_raw, previous_raw, hold_raw, pointer, product_raw,
         velocity_reply) = reply  # fmt: skip
        card_id, account_id = _s(pointer).split("|", 2)[:2] if pointer else ("", "")
        return self._snapshot_from(
            query,
            account_id,
            card_id,
            kept,
            known,
            account_raw,
            card_raw,
            events_raw,
            velocity_reply,
            previous_raw,
            hold_raw,
            product_raw,
        )

    def _snapshot_from(
        self,
        query: SnapshotQuery,
        account_id: str,
        card_id: str,
        kept: Kept | None,
        known: Card | None,
        account_raw: Any,
        card_raw: Any,
        events_raw: Any,
        velocity_reply: Any,
        previous_raw: Any,
        hold_raw: Any,
        product_raw: Any,
    ) -> Snapshot:
        card = self._card_of(query.pan_index, card_raw, known) if card_raw else None
        account = _account_row(account_raw) if card is not None else None
        product = self._product(product_raw) if card is not None and product_raw else None
        velocity = EMPTY
        mark = None
        if card is not None and velocity_reply:
            velocity, mark = self._velocity.answer(
                query.pan_index, card_id, kept, velocity_reply, events_raw or [], query.now
            )
        previous = codec.journal_from_json(previous_raw) if previous_raw else None
        original = _hold(query.original_key, account_id, hold_raw) if hold_raw else None
        at_merchant, at_terminal = self._acceptors.at(query.now, query.merchant, query.terminal)
        return Snapshot(
            card, account, product, velocity, previous, original, at_merchant, at_terminal, mark
        )

    def _card_of(self, pan_index: str, values: Sequence[Any], known: Card | None) -> Card | None:
        """The card of a snapshot's (data, pin_tries, version): ``known`` (the card this
        snapshot said it had parsed) when the script found that version unchanged (data '='),
        else parsed now and remembered as what ``pan_index`` means (every change to a card
        hash moves its version). ``known`` travels with the request, so a snapshot of the same
        PAN answered in between, or the cache emptied, cannot change what '=' means."""
        if values[0] == b"=":
            if known is not None and str(known.version) == _s(values[2]):
                return known
            raise StoreError("Redis skipped a card version this snapshot did not offer")
        card = _card(values)
        if card is not None:
            if len(self._known) >= CARD_CACHE_SIZE:
                self._known.clear()
            self._known[pan_index] = card
        return card

    async def _snapshot_pipeline(
        self, keys: list[str], args: list[str], product_id: str
    ) -> tuple[Any, Any]:
        """The snapshot script and the product in one round trip. EVALSHA directly: coredis'
        pipeline would otherwise ask SCRIPT EXISTS first, a second round trip every time."""
        async with self._client.pipeline(transaction=False) as pipe:
            scripted = pipe.evalsha_ro(self._snapshot.sha, keys=keys, args=args)
            product_reply = pipe.hget(self._keys.products, product_id)
        return await scripted, await product_reply

    async def _pipelined_commits(self, calls: list[_CommitCall]) -> None:
        """The commits ready together, whether they came in one call or from several tasks,
        go to Redis together (``_send_commits``): one round trip for all of them."""
        leads = False
        for call in calls:
            leads = self._commits.join(call) or leads
        if not leads:  # ours joined a leader's batch together: it wakes them together
            await calls[-1].done.wait()
            return
        await let_others_join(self._commits)
        batch = self._commits.take()
        try:
            await self._send_commits(batch)
        except BaseException:  # the leader itself was stopped: nobody is left without word
            for w in batch:
                if w.result is None and w.error is None:
                    w.error = StoreError("the commit was interrupted; its outcome is unknown")
            raise
        finally:
            wake_followers(batch)

    async def _send_commits(self, batch: list[_CommitCall]) -> None:
        if len(batch) == 1:  # nothing to share: the script call reloads a lost script itself
            try:
                batch[0].result = await self._commit(batch[0].keys, batch[0].args)
            except Exception as exc:
                batch[0].error = unavailable(exc, "Redis failed the commit")
            return
        self.pipelined_batches += 1
        if not self._cluster:
            await self._commit_together(batch)
            return
        waiting = batch
        for _ in range(2):  # a second time only for scripts Redis had lost (none of them ran)
            try:
                async with self._client.pipeline(transaction=False, raise_on_error=False) as pipe:
                    replies = [
                        pipe.evalsha(self._commit.sha, keys=w.keys, args=w.args) for w in waiting
                    ]
            except Exception as exc:  # the link failed: whether they ran is unknown
                for w in waiting:
                    w.error = unavailable(exc, "Redis failed the commit")
                return
            lost = []
            for w, reply in zip(waiting, replies, strict=True):
                try:
                    w.result = await reply
                except NoScriptError:
                    lost.append(w)
                except Exception as exc:
                    w.error = unavailable(exc, "Redis failed the commit")
            if not lost:
                return
            await self._client.script_load(redis_lua.COMMIT)
            waiting = lost
        for w in waiting:
            w.error = StoreError("Redis lost the commit script twice in a row")

    async def _commit_together(self, batch: list[_CommitCall]) -> None:
        """A single Redis: the commits of the batch in one script call per MAX_PER_SCRIPT,
        each run as alone and in order; one that fails inside Redis fails alone."""
        for first in range(0, len(batch), MAX_PER_SCRIPT):
            part = batch[first : first + MAX_PER_SCRIPT]
            keys = [key for w in part for key in w.keys]
            args = [str(len(part)), *(arg for w in part for arg in w.args)]
            try:
                replies = await self._commit_many(keys, args)
            except Exception as exc:  # the link failed: whether they ran is unknown
                for w in batch[first:]:
                    w.error = unavailable(exc, "Redis failed the commit")
                return
            for w, reply in zip(part, replies, strict=True):
                if _s(reply[0]) == "err":
                    w.error = StoreError(f"Redis refused the commit: {_s(reply[1])}")
                else:
                    w.result = reply

    async def prepare_acceptor_counters(self, now: float) -> int:
        return await self._acceptors.prime(self._client, now)

    async def follow_acceptor_counters(self, now: float) -> None:
        await self._acceptors.catch_up(self._client, now)

    def acceptor_stats(self) -> AcceptorStats:
        counters = self._acceptors.counters
        return AcceptorStats(len(counters), counters.acceptors, self._acceptors.following)

    async def read_acceptor_counters(self, now: float) -> AcceptorReading:
        """The last hour's journal, counted afresh, with each merchant's newest name. The
        stream holds only what was appended while a process followed the counters, so this
        reads the journals themselves."""
        counters = AcceptorCounters()
        names: dict[str, str] = {}
        async for entry in self.export_journal(JournalQuery(since=now - WINDOW_LONG_S, until=now)):
            event = acceptor_event_from_entry(entry)
            if event is not None:
                counters.add(event)
            if entry.merchant_id and entry.merchant_name:
                names[entry.merchant_id] = entry.merchant_name  # journal order: newest last
        return AcceptorReading(counters, names)

    async def snapshot_many(self, queries: Sequence[SnapshotQuery]) -> list[Snapshot | Exception]:
        if any(query.merchant or query.terminal for query in queries):
            try:  # the counters as they were: never a reason to fail an authorisation
                await self._acceptors.catch_up(self._client, queries[0].now)
            except Exception as exc:
                log.warning("cannot read the acceptor events: %s", exc)
        if not self._cluster and len(queries) > 1:
            return await self._snapshots_together(queries)
        outcomes = await each_at_once(self._snapshot_alone, queries)
        return [self._as_store_error(o, "Redis failed the snapshot") for o in outcomes]

    async def commit_many(self, commits: Sequence[Commit]) -> list[CommitResult | Exception]:
        """Together with any other commits ready now (``_pipelined_commits``); each succeeds
        or fails alone."""
        try:
            ids = await self._journal_ids(len(commits))
        except Exception as exc:  # Redis unreachable: none of them ran
            return [self._as_store_error(exc, "Redis failed the commit")] * len(commits)
        outcomes: list[CommitResult | Exception] = [StoreError("not sent")] * len(commits)
        prepared: list[tuple[int, _CommitCall]] = []
        for index, (commit, journal_id) in enumerate(zip(commits, ids, strict=True)):
            try:
                prepared.append((index, self._commit_call(commit, journal_id)))
            except Exception as exc:  # this commit alone cannot be sent
                outcomes[index] = exc
        if prepared:
            await self._pipelined_commits([call for _, call in prepared])
        committed: list[JournalEntry] | None = [] if self._acceptors.following else None
        for index, call in prepared:
            try:
                result = self._commit_result(commits[index], call.outcome())
            except Exception as exc:
                outcomes[index] = exc
                continue
            outcomes[index] = result
            if committed is not None and result.duplicate_of is None and not result.stale:
                committed.append(result.journal)  # (a stale one wrote nothing)
        if committed:
            try:  # counters only: the money and the journal are written already
                await self._acceptors.record(self._client, committed)
            except Exception as exc:
                log.warning("cannot record %d acceptor events: %s", len(committed), exc)
        await self._with_accounts_of_duplicates(outcomes)
        return outcomes

    async def _with_accounts_of_duplicates(self, outcomes: list[CommitResult | Exception]) -> None:
        """The account as it is now on each duplicate's result, as SQLite's write reads it:
        the balances a retransmission's answer shows (field 54). A read after the script, on
        that rare path only; an account that cannot be read leaves none (no field 54 rather
        than one without the original's hold)."""
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Exception) or outcome.duplicate_of is None:
                continue
            account_id = outcome.duplicate_of.account_id
            if not account_id:
                continue
            try:
                account = await self.get_account(account_id)
            except Exception as exc:
                log.warning("cannot read the account of a retransmission: %s", exc)
                continue
            outcomes[index] = replace(outcome, account=account)

    def _as_store_error(self, outcome: R, what: str) -> R | StoreError:
        """A link or Redis failure as ``StoreUnavailable`` (the server logs it in one line, as
        the store failing); anything else, a result or a bug, as it is."""
        if isinstance(outcome, self.backend_errors) and isinstance(outcome, Exception):
            return unavailable(outcome, what)
        return outcome

    async def commit(self, commit: Commit) -> CommitResult:
        (outcome,) = await self.commit_many((commit,))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _commit_call(self, commit: Commit, journal_id: int) -> _CommitCall:
        """The commit script's keys and arguments (with the entry as stored either way)."""
        entry = commit.journal
        move = commit.movement
        account_id = move.account_id if move is not None else entry.account_id
        ak = self._keys.account(account_id)
        entry.journal_id = journal_id
        data = journal_dict(entry)
        ok_json = codec.compact_json({**data, **_PLACEHOLDERS})
        failed_json = _funds_short_json(ok_json, entry)
        changed = commit.changed_card  # a PIN change
        delivered = commit.delivered_card  # issuer scripts sent: off the card
        event = event_from_entry(entry)
        event_member = ""
        if event is not None and commit.card_id:
            event_member = codec.compact_json(
                [
                    event.ts,
                    event.amount_minor,
                    event.merchant_id,
                    event.country,
                    event.cash,
                    event.pin_failed,
                    event.cvv_failed,
                    journal_id,
                    *((1,) if event.credit else ()),
                ]
            )
        kind = move.kind.value if move is not None else ""
        hold_key = ""
        if move is not None:
            hold_key = move.match_key if move.kind is MoneyMove.RELEASE else entry.match_key
        keys = [
            ak.account,
            ak.card(commit.card_id),
            ak.velocity(commit.card_id),
            ak.dedupe,
            ak.holds,
            ak.journal,
            ak.journal_all,
            ak.journal_card(commit.card_id),
            ak.velocity_log(commit.card_id),
            ak.velocity_pruned(commit.card_id),
            ak.dedupe if self._cluster else self._keys.dedupe_all,
            ak.chip_atcs(commit.card_id),
            ak.hold_lives,
            ak.journal_review,
            ak.journal_all if self._cluster else self._keys.journal_global,
            ak.cavv_atns(commit.card_id),
        ]
        args = [
            entry.dedupe_key,
            str(journal_id),
            kind,
            str(move.amount_minor if move is not None else 0),
            "1" if move is not None and move.require_funds else "0",
            hold_key,
            repr(entry.ts),
            str(entry.hold_amount),
            ok_json,
            failed_json,
            event_member,
            "1" if event is not None and event.approved else "0",
            repr(entry.ts - RETENTION_S - PRUNE_MARGIN_S),
            "+" if commit.pin_wrong else f"L{commit.pin_limit}" if commit.pin_limit else "",
            "1" if commit.card_id else "0",
            move.completes if move is not None else "",
            "" if commit.atc is None or not commit.card_id else str(commit.atc),
            _outcome_json(ok_json, entry, atc_refused_outcome(entry, ATC_REPLAY))
            if commit.atc is not None
            else "",
            repr(entry.ts - ATC_WINDOW_S) if commit.atc is not None else "",
            move.extends if move is not None else "",
            str(commit.atc_jump_limit),
            _outcome_json(ok_json, entry, atc_refused_outcome(entry, ATC_JUMP))
            if commit.atc is not None and commit.atc_jump_limit
            else "",
            codec.card_to_json(changed) if changed is not None else "",
            str(changed.version) if changed is not None else "",
            _outcome_json(ok_json, entry, pin_change_conflict_outcome(entry))
            if changed is not None
            else "",
            "1" if move is not None and move.completes_in_part else "0",
            repr(move.extra_life_s) if move is not None and move.extra_life_s else "0",
            "1" if entry.review else "0",
            codec.card_to_json(delivered) if delivered is not None else "",
            str(delivered.version) if delivered is not None else "",
            commit.cavv_atn if commit.card_id else "",
            _outcome_json(ok_json, entry, cavv_reused_outcome(entry)) if commit.cavv_atn else "",
            repr(entry.ts - CAVV_WINDOW_S) if commit.cavv_atn else "",
            _outcome_json(ok_json, entry, pin_locked_outcome(entry)) if commit.pin_limit else "",
            str(move.keep_minor) if move is not None else "0",
            "" if commit.velocity_mark is None or not commit.card_id else str(commit.velocity_mark),
            _outcome_json(ok_json, entry, balance_bound_outcome(entry)) if move is not None else "",
            "1" if commit.card_required and delivered is not None else "",
        ]
        return _CommitCall(keys, args)

    def _commit_result(self, commit: Commit, reply: Any) -> CommitResult:
        entry = commit.journal
        status = _s(reply[0])
        if status == "dup":
            previous = codec.journal_from_json(reply[1])
            return CommitResult(journal=previous, duplicate_of=previous)
        if status == "stale":  # the card's newer events (or a change to it) may change it
            return CommitResult(journal=copy_entry(entry), stale=True)
        if status == "noaccount":
            move = commit.movement
            account_id = move.account_id if move is not None else entry.account_id
            raise NotFound(f"account {account_id} not found")
        refused = int(reply[4]) if len(reply) > 4 else 0
        if refused == 3:  # a PIN change found the card changed meanwhile: the PIN stays
            stored = copy_entry(entry)
            for name, value in pin_change_conflict_outcome(entry).items():
                setattr(stored, name, value)
            return CommitResult(journal=stored, pin_change_conflict=True)
        if refused == 5:  # a right PIN, but wrong ones committed meanwhile locked the card
            stored = copy_entry(entry)
            for name, value in pin_locked_outcome(entry).items():
                setattr(stored, name, value)
            return CommitResult(journal=stored, pin_locked=True)
        if refused == 4:  # an earlier approval used the 3-D Secure authentication: 05
            stored = copy_entry(entry)
            for name, value in cavv_reused_outcome(entry).items():
                setattr(stored, name, value)
            return CommitResult(journal=stored, cavv_reused=True)
        if refused:  # the chip counter was refused (1 a replay, 2 too far ahead): nothing moved
            stored = copy_entry(entry)
            reason = ATC_REPLAY if refused == 1 else ATC_JUMP
            for name, value in atc_refused_outcome(entry, reason).items():
                setattr(stored, name, value)
            return CommitResult(journal=stored, atc_replay=refused == 1, atc_jump=refused == 2)
        funds_ok = int(reply[1]) == 1
        bound = len(reply) > 6 and int(reply[6]) == 1
        if bound:  # the balance or holds would have gone beyond BALANCE_BOUND: 61
            stored = copy_entry(entry)
            for name, value in balance_bound_outcome(entry).items():
                setattr(stored, name, value)
        elif funds_ok:
            stored = entry
            stored.hold_amount = int(_s(reply[2]))
            stored.balance_delta = int(_s(reply[5]))
        else:  # what the script stored: the entry refused by the funds re-check
            stored = copy_entry(entry)
            for name, value in _funds_short(entry).items():
                setattr(stored, name, value)
        account = _account_row(reply[3]) if reply[3] else None
        return CommitResult(journal=stored, funds_ok=funds_ok, balance_bound=bound, account=account)

    # --- products and accounts -----------------------------------------------------------

    async def put_product(
        self,
        product: Product,
        expected_version: int | None = None,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """On a single Redis the product and its entry are one script (both or neither); on
        a cluster the entry is appended right after the product (another hash slot)."""
        data = codec.product_to_json(product)
        expected = "" if expected_version is None else str(expected_version)
        args = [product.product_id, data, expected]
        if audit is None or self._cluster:
            written = int(await self._put_product([self._keys.products], args))
        else:
            keys = [*self._audit_keys(audit), self._keys.products]
            written = await self._sealed_run(self._put_product_audited, keys, args, [audit], seal)
        if not written:
            if expected_version == NEW_PRODUCT:
                raise Conflict(f"product {product.product_id} already exists")
            raise Conflict(f"product {product.product_id} changed meanwhile")
        await self._stamp_set_up()
        if audit is not None and self._cluster:
            await self.append_audit(audit, seal)

    async def get_product(self, product_id: str) -> Product | None:
        raw = await self._client.hget(self._keys.products, product_id)
        return None if raw is None else self._product(raw)

    def _product(self, raw: bytes) -> Product:
        """Parsed product, cached by its JSON text (products change rarely)."""
        product = self._products.get(raw)
        if product is None:
            if len(self._products) > 1000:
                self._products.clear()
            product = self._products[raw] = codec.product_from_json(raw)
        return product

    async def list_products(self) -> list[Product]:
        data = await self._client.hgetall(self._keys.products)
        products = [codec.product_from_json(v) for v in data.values()]
        return sorted(products, key=lambda p: p.product_id)

    async def create_account(
        self, account: Account, audit: AuditEntry | None = None, seal: AuditSealer | None = None
    ) -> None:
        """On a single Redis the account and its entry are one script (both or neither); on
        a cluster the entry is appended right after the account (another hash slot)."""
        ak = self._keys.account(account.account_id)
        fields = {k: str(v) for k, v in codec.account_fields(account).items()}
        if audit is not None and not self._cluster:
            keys = [*self._audit_keys(audit), ak.account, self._keys.accounts]
            args = [account.account_id, *(x for pair in fields.items() for x in pair)]
            script = self._create_account_audited
            if not await self._sealed_run(script, keys, args, [audit], seal):
                raise Conflict(f"account {account.account_id} already exists")
            await self._stamp_set_up()
            return
        if not await self._client.hsetnx(ak.account, "account_id", account.account_id):
            raise Conflict(f"account {account.account_id} already exists")
        await self._client.hset(ak.account, fields)
        await self._client.zadd(self._keys.accounts, {account.account_id: 0})
        await self._stamp_set_up()
        if audit is not None:  # a cluster: the audit log is in another hash slot
            await self.append_audit(audit, seal)

    async def get_account(self, account_id: str) -> Account | None:
        data = await self._client.hgetall(self._keys.account(account_id).account)
        return _account(data) if data and b"kind" in data else None

    async def list_accounts(self, limit: int = 100, offset: int = 0) -> list[Account]:
        ids = await self._client.zrange(self._keys.accounts, offset, offset + limit - 1)
        accounts = [await self.get_account(_s(i)) for i in ids]
        return [a for a in accounts if a is not None]

    async def _account_write(
        self,
        account_id: str,
        scripts: tuple[Any, Any],
        keys: list[str],
        args: list[str],
        audit: AccountAudit | None,
        seal: AuditSealer | None,
    ) -> list[Any]:
        """Run an account script (``scripts``: alone, with its entry), with the entry
        ``audit`` makes from the account as read just before. On a single Redis the entry
        is in the script: it writes only if the account's balance and credit limit and the
        chain's head are still as read ('moved' else: read, made and sealed again); on a
        cluster the script checks the account alone and the entry is appended after it (the
        audit log is in another hash slot). The script's reply, its first element a status.

        Only a moved balance or credit limit (another process's write on the account, an
        authorisation that posted) counts towards ``ACCOUNT_AUDIT_TRIES``; a moved head is
        another writer's entry landed, tried again without limit as ``append_audit`` and the
        card scripts do (each try lost is someone else's progress). This process's own audited
        account writes go one at a time, so they never race each other."""
        alone, together = scripts
        if audit is None:
            return await alone(keys, [*args, "", ""])
        async with self._account_audit_lock:
            moves = 0
            while moves < ACCOUNT_AUDIT_TRIES:
                account = await self.get_account(account_id)
                if account is None:
                    raise NotFound(f"account {account_id} not found")
                entry = audit(account)
                was = [str(account.balance), str(account.credit_limit)]
                if self._cluster:
                    reply = await alone(keys, [*args, *was])
                else:
                    sealed = await self._audit_args(entry, seal)
                    audit_keys = self._audit_keys(entry)
                    reply = await together([*audit_keys, *keys], [*sealed, *args, *was])
                status = _s(reply[0])
                if status == "moved":
                    moves += 1
                    continue
                if status == "head":
                    continue
                if status == "ok" and self._cluster:
                    await self.append_audit(entry, seal)
                return reply
        raise StoreUnavailable(
            f"account {account_id} changed at each of {ACCOUNT_AUDIT_TRIES} tries to write it "
            "with its audit entry; nothing was written: try again"
        )

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
        ak = self._keys.account(account_id)
        reply = await self._account_write(
            account_id,
            (self._change_funds, self._change_funds_audited),
            [ak.account, ak.funds_change(key), ak.funds_written],
            [str(delta_minor), fingerprint, "1" if key else "0", repr(time.time()), key],
            audit,
            seal,
        )
        status = _s(reply[0])
        if status == "noaccount":
            raise NotFound(f"account {account_id} not found")
        if status in ("short", "beyond"):
            current = await self.get_account(account_id)
            if current is None:
                raise NotFound(f"account {account_id} not found")
            if status == "beyond":
                raise BeyondBound(current, "balance", current.balance + delta_minor)
            raise InsufficientFunds(current)
        first, account = codec.funds_record_parts(_s(reply[1]))
        return FundsChanged(account, first, repeated=status == "repeated")

    async def funds_change_of(self, account_id: str, key: str) -> FundsChanged | None:
        record = await self._client.get(self._keys.account(account_id).funds_change(key))
        if record is None:
            return None
        first, account = codec.funds_record_parts(_s(record))
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
        ak = self._keys.account(account_id)
        reply = await self._account_write(
            account_id,
            (self._sync_ledger, self._sync_ledger_audited),
            [ak.account, ak.journal, ak.journal_all],
            [str(ledger_balance), str(through_id), str(self.ledger_max_after), repr(now)],
            audit,
            seal,
        )
        status = _s(reply[0])
        if status == "noaccount":
            raise NotFound(f"account {account_id} not found")
        if status == "refused":
            applied, pruned, unknown = (int(_s(v)) if _s(v) else None for v in reply[1:4])
            refusal = ledger_refusal(
                through_id, applied, pruned, unknown, int(reply[4]), self.ledger_max_after
            )
            raise LedgerRefused(refusal)
        if status == "beyond":
            current = await self.get_account(account_id)
            if current is None:
                raise NotFound(f"account {account_id} not found")
            raise BeyondBound(current, "balance", int(_s(reply[1])))
        account = _account_row(reply[3:])
        assert account is not None
        state = LedgerState(through_id, ledger_balance, now)
        return LedgerSync(account, state, int(_s(reply[1])), int(reply[2]))

    async def ledger_state(self, account_id: str) -> LedgerState | None:
        key = self._keys.account(account_id).account
        through, balance, at = await self._client.hmget(
            key, ["ledger_through", "ledger_balance", "ledger_synced_at"]
        )
        if through is None:
            return None
        return LedgerState(int(_s(through)), int(_s(balance or b"0")), float(_s(at or b"0")))

    async def set_credit_limit(
        self,
        account_id: str,
        credit_limit: int,
        audit: AccountAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> Account:
        reply = await self._account_write(
            account_id,
            (self._set_credit_limit, self._set_credit_limit_audited),
            [self._keys.account(account_id).account],
            [str(credit_limit)],
            audit,
            seal,
        )
        if _s(reply[0]) == "noaccount":  # (the script never creates a missing account)
            raise NotFound(f"account {account_id} not found")
        account = _account_row(reply[1:])
        assert account is not None
        return account

    async def open_holds(self, account_id: str) -> list[OpenHold]:
        ak = self._keys.account(account_id)
        holds = await self._client.hgetall(ak.holds)
        lives = await self._client.hgetall(ak.hold_lives)
        out = []
        for key, raw in holds.items():
            amount, posted, reversed_, rest = _s(raw).split("|", 3)
            if posted == "0" and int(amount) > int(reversed_):  # 2: an increment, 1: posted
                life = lives.get(key)
                out.append(
                    OpenHold(_s(key), int(amount) - int(reversed_),
                             float(rest.partition("|")[0]), float(_s(life)) if life else 0.0)
                )  # fmt: skip
        return sorted(out, key=lambda hold: (hold.created_at, hold.match_key))

    async def hold_of(self, account_id: str, match_key: str) -> Hold | None:
        raw = await self._client.hget(self._keys.account(account_id).holds, match_key)
        return None if raw is None else _hold(match_key, account_id, raw)

    async def expire_holds(self, older_than: float, shorter_by: float = 0.0) -> int:
        """Release open holds whose life is over (the script reads every hold of each account;
        a hold's life is shorter by ``shorter_by`` at most, as on SQLite); returns how many."""
        released = 0
        for account_id in await self._client.zrange(self._keys.accounts, 0, -1):
            ak = self._keys.account(_s(account_id))
            keys = [ak.account, ak.holds, ak.hold_lives]
            released += int(
                await self._expire(keys, [repr(older_than), repr(max(0.0, shorter_by))])
            )
        return released

    async def journal_pruned_through(self) -> int:
        """The global cut (``keys.journal_cut``, a GET). A store pruned before it was kept
        has it from its accounts' ``journal_pruned_through`` (a read per account, once)."""
        cut = await self._client.get(self._keys.journal_cut)
        if cut is not None:
            return int(_s(cut))
        found = 0
        for account_id in await self._journal_accounts(JournalQuery()):
            through = await self._client.hget(
                self._keys.account(account_id).account, "journal_pruned_through"
            )
            found = max(found, int(_s(through)) if through is not None else 0)
        # raised, never set: a run that raised it meanwhile knows better
        return int(await self._raise_to([self._keys.journal_cut], [str(found)]))

    async def newest_journal_id(self) -> int:
        if not self._cluster:
            top = await self._client.zrange(
                self._keys.journal_global, "+inf", "-inf", sortby=PureToken.BYSCORE, rev=True,
                offset=0, count=1,
            )  # fmt: skip
            return int(_s(top[0]).split("|", 1)[0]) if top else 0
        newest = 0
        for account_id in await self._journal_accounts(JournalQuery()):
            top = await self._client.zrange(
                self._keys.account(account_id).journal_all, "+inf", "-inf",
                sortby=PureToken.BYSCORE, rev=True, offset=0, count=1,
            )  # fmt: skip
            newest = max(newest, int(_s(top[0])) if top else 0)
        return newest

    async def last_journal_id(self) -> int:
        """The counter's GET: the end of the last block of ids a process reserved."""
        seq = await self._client.get(self._keys.journal_seq)
        return 0 if seq is None else int(_s(seq))

    async def newest_fraud_report_id(self) -> int:
        """The counter, or the index's top (reports written before report ids are scored by
        their journal id, which can be above it: ``PUT_FRAUD_REPORT`` goes past them too)."""
        seq = await self._client.get(self._keys.fraud_report_seq)
        top = await self._client.zrange(
            self._keys.fraud_report_ids, "+inf", "-inf", sortby=PureToken.BYSCORE, rev=True,
            offset=0, count=1, withscores=True,
        )  # fmt: skip
        return max(int(_s(seq)) if seq is not None else 0, int(top[0][1]) if top else 0)

    async def raise_counters(self, journal: int, fraud_reports: int) -> IdCounters:
        """Each counter raised in one script (``RAISE_TO``): a block reserved meanwhile by a
        process is above the old value, and the counter is then at least that block's end."""
        return IdCounters(
            int(await self._raise_to([self._keys.journal_seq], [str(journal)])),
            int(await self._raise_to([self._keys.fraud_report_seq], [str(fraud_reports)])),
        )

    async def _raise_journal_cut(self, jids: list[str]) -> None:
        """Raise the global retention cut to the newest of ``jids`` before they are deleted:
        a feed that reads the cut after its page never lists past a deletion unawares (a
        deletion that then fails leaves the cut early, over entries the next run deletes).
        The fraud report counter too, to their reports' ids: a report written before report
        ids is scored by its journal id, above the counter, which ``newest_fraud_report_id``
        reads from the index's top; pruned, a report cursor at it was refused 422."""
        await self._raise_to([self._keys.journal_cut], [str(max(map(int, jids)))])
        scores = await self._client.zmscore(self._keys.fraud_report_ids, jids)
        top = max((int(score) for score in scores if score is not None), default=0)
        if top:
            await self._raise_to([self._keys.fraud_report_seq], [str(top)])

    async def prune_journal(
        self, before: float, audit: BatchAudit | None = None, seal: AuditSealer | None = None
    ) -> Pruned:
        """On a single Redis with ``audit``, each batch (``PRUNE_PAGE`` deletions or so,
        across accounts) and its entry are one script (``AUDITED_BATCH``); on a cluster, or
        unaudited, a page per account's transaction, the entries after them
        (``FollowingEntries``). The global cut is read first: a store pruned before it was
        kept has it set from its accounts before a run raises it."""
        await self.journal_pruned_through()
        if audit is not None and not self._cluster:
            done = await self._audited_batches(partial(self._batch_journal, before), audit, seal)
            return Pruned(entries=done.get("entries", 0), holds=done.get("holds", 0))
        following = FollowingEntries(audit, partial(self.append_audit, seal=seal), PRUNE_PAGE)
        try:
            for account_id in await self._journal_accounts(JournalQuery()):
                ak = self._keys.account(account_id)
                entries = await self._prune_entries(ak, before)
                holds = await self._prune_holds(ak, before)
                await following.add({"entries": entries, "holds": holds})
        except Exception:
            await following.failed()
            raise
        await following.end()
        return Pruned(following.total.get("entries", 0), following.total.get("holds", 0))

    async def _audited_batches(
        self, gather: Any, audit: BatchAudit, seal: AuditSealer | None
    ) -> dict[str, int]:
        """What ``gather`` deleted, a batch at a time, each with its entry in one
        AUDITED_BATCH script. ``gather(flush)`` fills batches and hands each to ``flush``;
        a batch refused (nothing written) starts the gathering again (what was written stays
        deleted and is not found again): one whose rows another run deleted meanwhile (-5)
        as often as it happens, as each is that run's progress and the rows to delete are
        finite (two server processes prune at once, one ahead of the other); one whose rows
        changed (-4: a hold's value, a result written again) ``ACCOUNT_AUDIT_TRIES`` times at
        most."""
        done: dict[str, int] = {}

        async def flush(batch: AuditedBatch) -> None:
            if not batch.size:
                return
            entry = audit(dict(batch.counts))
            keys = [*self._audit_keys(entry), *batch.keys]
            ran = await self._sealed_run(self._audited_batch, keys, batch.argv(), [entry], seal)
            if ran in (-4, -5):
                raise _BatchMoved(gone=ran == -5)
            for kind, count in batch.counts.items():
                done[kind] = done.get(kind, 0) + count

        changed = 0
        while changed < ACCOUNT_AUDIT_TRIES:
            try:
                await gather(flush)
                return done
            except _BatchMoved as moved:
                changed += not moved.gone
        raise StoreUnavailable("the rows of a retention batch kept changing; try again")

    async def _batch_journal(self, before: float, flush: Any) -> None:
        """Every account's entries and closed holds older than ``before``, gathered into
        batches (``_prune_entries``' and ``_prune_holds``' writes) handed to ``flush``."""
        batch = _journal_batch()
        for account_id in await self._journal_accounts(JournalQuery()):
            ak = self._keys.account(account_id)
            pending = 0  # this account's entries in the batch, not written yet
            while True:
                ids = await self._client.zrange(ak.journal_all, pending, pending + PRUNE_PAGE - 1)
                old = await self._old_entries(ak, ids, before)
                if old:
                    await self._raise_journal_cut([jid for jid, _ in old])
                    self._delete_entries(batch, ak, old)
                    pending += len(old)
                if batch.size >= PRUNE_PAGE:
                    await flush(batch)
                    batch, pending = _journal_batch(), 0
                if not old or len(old) < len(ids):
                    break
            closed = await self._closed_holds(ak, before)
            held = list(closed)
            for first in range(0, len(held), PRUNE_PAGE):
                page = held[first : first + PRUNE_PAGE]
                # the hold as read: one deleted by another run and made again under its
                # match key by a new authorisation (open) is not this one
                batch.step("SAME", ak.holds, [v for k in page for v in (k, closed[k])])
                batch.step("HDEL", ak.holds, page)
                batch.step("HDEL", ak.hold_lives, page)
                batch.count("holds", len(page))
                if batch.size >= PRUNE_PAGE:
                    await flush(batch)
                    batch = _journal_batch()
        await flush(batch)

    def _delete_entries(
        self, batch: AuditedBatch, ak: Any, old: list[tuple[str, JournalEntry | None]]
    ) -> None:
        """The steps ``_prune_entries`` takes for ``old``, each of them still there."""
        jids = [jid for jid, _ in old]
        stored = [jid for jid, e in old if e is not None]
        if stored:
            batch.step("HAS", ak.journal, stored)
        batch.step("HDEL", ak.journal, jids)
        batch.step("ZREM", ak.journal_all, jids)
        batch.step("HSET", ak.account, ["journal_pruned_through", str(max(map(int, jids)))])
        batch.step("ZREM", ak.journal_review, jids)
        for card_id, card_jids in _by_card(old).items():
            batch.step("ZREM", ak.journal_card(card_id), card_jids)
        dedupe = [e.dedupe_key for _, e in old if e is not None and e.dedupe_key]
        if dedupe:
            batch.step("HDEL", ak.dedupe, dedupe)
            batch.step("HDEL", self._keys.dedupe_all, dedupe)
        batch.step("ZREM", self._keys.journal_global, [f"{jid}|{ak.journal}" for jid in jids])
        batch.step("HDEL", self._keys.fraud_reports, jids)
        batch.step("ZREM", self._keys.fraud_report_ids, jids)
        batch.count("entries", len(stored))

    async def _old_entries(
        self, ak: Any, ids: list[Any], before: float
    ) -> list[tuple[str, JournalEntry | None]]:
        """Of the account's journal ids ``ids`` (oldest first), those up to the first entry
        not older than ``before`` (ids follow time within a request's deadline)."""
        old: list[tuple[str, JournalEntry | None]] = []
        if not ids:
            return old
        for jid, raw in zip(ids, await self._client.hmget(ak.journal, ids), strict=True):
            entry = codec.journal_from_json(raw) if raw is not None else None
            if entry is not None and entry.ts >= before:
                break
            old.append((_s(jid), entry))
        return old

    async def _prune_entries(self, ak: Any, before: float) -> int:
        """The account's entries older than ``before``, oldest first, a page per transaction,
        up to the first that is not (ids follow time within a request's deadline); how many
        this run deleted (a concurrent run's are counted by it, not twice)."""
        pruned = 0
        while True:
            ids = await self._client.zrange(ak.journal_all, 0, PRUNE_PAGE - 1)
            if not ids:
                return pruned
            old = await self._old_entries(ak, ids, before)
            if not old:
                return pruned
            dedupe = [e.dedupe_key for _, e in old if e is not None and e.dedupe_key]
            by_card = _by_card(old)
            jids = [jid for jid, _ in old]
            await self._raise_journal_cut(jids)
            async with self._client.pipeline(transaction=True) as pipe:
                gone = pipe.hdel(ak.journal, jids)  # what is counted: not another run's too
                pipe.zrem(ak.journal_all, jids)
                # a ledger sync must not count on what is gone (ids follow time: the newest)
                pipe.hset(ak.account, {"journal_pruned_through": str(max(map(int, jids)))})
                pipe.zrem(ak.journal_review, jids)
                for card_id, card_jids in by_card.items():
                    pipe.zrem(ak.journal_card(card_id), card_jids)
                if dedupe:
                    pipe.hdel(ak.dedupe, dedupe)
            if dedupe and not self._cluster:  # a single Redis also indexes every account's
                await self._client.hdel(self._keys.dedupe_all, dedupe)
            if not self._cluster:
                await self._client.zrem(
                    self._keys.journal_global, [f"{jid}|{ak.journal}" for jid in jids]
                )
            await self._client.hdel(self._keys.fraud_reports, jids)  # labels of nothing now
            await self._client.zrem(self._keys.fraud_report_ids, jids)
            pruned += int(await gone)
            if len(old) < len(ids):
                return pruned

    async def _closed_holds(self, ak: Any, before: float) -> dict[str, str]:
        """The account's holds created before ``before`` that hold nothing any more, each with
        its value as read (an audited batch deletes it only while it is still that one)."""
        closed = {}
        for key, raw in (await self._client.hgetall(ak.holds)).items():
            amount, posted, reversed_, rest = _s(raw).split("|", 3)
            created = float(rest.partition("|")[0])
            still_open = posted == "0" and int(amount) > int(reversed_)
            if created < before and not still_open:
                closed[_s(key)] = _s(raw)
        return closed

    async def _prune_holds(self, ak: Any, before: float) -> int:
        """The account's holds created before ``before`` that hold nothing any more; how many
        this run deleted (those another run deleted first are its own)."""
        closed = list(await self._closed_holds(ak, before))
        pruned = 0
        for first in range(0, len(closed), PRUNE_PAGE):
            page = closed[first : first + PRUNE_PAGE]
            pruned += int(await self._client.hdel(ak.holds, page))
            await self._client.hdel(ak.hold_lives, page)
        return pruned

    # --- cards -------------------------------------------------------------------------------

    def _card_fields(self, card: Card, ciphertext: bytes) -> dict[str, Any]:
        return {
            "data": codec.card_to_json(card),
            "pin_tries": str(card.pin_tries),
            "version": str(card.version),
            "pan": ciphertext,
            "account_id": card.account_id,
            "state": card.state.value,
        }

    async def _claim(self, card: Card, *, pan: bool) -> None:
        """Take the card id (and the PAN index) or raise Conflict, leaving nothing behind."""
        _check_card_ids(card)
        home = self._keys.card_home(card.card_id)
        if not await self._client.set(home, card.account_id, condition="NX"):
            raise Conflict(f"card {card.card_id} already exists")
        if pan:
            pointer = _pointer_value(card)
            if not await self._client.set(self._keys.pan(card.pan_index), pointer, condition="NX"):
                await self._client.delete([home])
                raise Conflict("a card with this PAN already exists")

    async def create_card(
        self,
        card: Card,
        pan_ciphertext: bytes,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """On a single Redis the card and its entry are one script (both or neither); on a
        cluster the entry is appended right after the card (another hash slot)."""
        ak = self._keys.account(card.account_id)
        if audit is not None and not self._cluster:
            _check_card_ids(card)
            fields = self._card_fields(card, pan_ciphertext)
            keys = [
                *self._audit_keys(audit),
                self._keys.card_home(card.card_id),
                self._keys.pan(card.pan_index),
                self._keys.card_seq,
                ak.card(card.card_id),
                ak.cards,
                self._keys.all_cards,
            ]
            args = [card.account_id, _pointer_value(card), card.card_id]
            args += [x for pair in fields.items() for x in pair]
            created = await self._sealed_run(self._create_card_audited, keys, args, [audit], seal)
            if created == -1:
                raise Conflict(f"card {card.card_id} already exists")
            if created == -2:
                raise Conflict("a card with this PAN already exists")
            await self._stamp_set_up()
            return
        await self._claim(card, pan=True)
        seq = await self._client.incr(self._keys.card_seq)
        await self._client.hset(ak.card(card.card_id), self._card_fields(card, pan_ciphertext))
        await self._client.zadd(ak.cards, {card.card_id: seq})
        await self._client.zadd(self._keys.all_cards, {card.card_id: seq})
        await self._stamp_set_up()
        if audit is not None:  # a cluster: the audit log is in another hash slot
            await self.append_audit(audit, seal)

    async def _card_account(self, card_id: str) -> str | None:
        raw = await self._client.get(self._keys.card_home(card_id))
        return None if raw is None else _s(raw)

    async def get_card(self, card_id: str) -> Card | None:
        account_id = await self._card_account(card_id)
        if account_id is None:
            return None
        return await self._read_card(account_id, card_id)

    async def _read_card(self, account_id: str, card_id: str) -> Card | None:
        key = self._keys.account(account_id).card(card_id)
        return _card(await self._client.hmget(key, ["data", "pin_tries", "version"]))

    async def _read_cards(self, card_ids: list[str]) -> list[Card | None]:
        """``get_card`` of each, in two pipelined round trips rather than two per card: a
        listing filtered by state, last four or name reads a page of 500 cards to find a few
        (a support desk's search read every card one at a time)."""
        async with self._client.pipeline(transaction=False) as pipe:
            homes = [pipe.get(self._keys.card_home(card_id)) for card_id in card_ids]
        accounts = [None if (raw := await home) is None else _s(raw) for home in homes]
        if not any(accounts):
            return [None] * len(card_ids)
        fields = ["data", "pin_tries", "version"]
        async with self._client.pipeline(transaction=False) as pipe:
            reads = [
                None
                if account is None
                else pipe.hmget(self._keys.account(account).card(cid), fields)
                for cid, account in zip(card_ids, accounts, strict=True)
            ]
        return [None if read is None else _card(await read) for read in reads]

    async def find_card(self, pan_index: str) -> Card | None:
        pointer = await self._pointer(pan_index)
        if pointer is None:
            return None
        return await self._read_card(pointer[1], pointer[0])

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
        index = self._keys.account(account_id).cards if account_id else self._keys.all_cards
        cards: list[Card] = []
        skipped = 0
        start = 0
        while len(cards) < limit:
            ids = await self._client.zrange(index, start, start + 499)
            if not ids:
                break
            start += len(ids)
            for card in await self._read_cards([_s(raw) for raw in ids]):
                if card is None or (state and card.state.value != state):
                    continue
                if account_id and card.account_id != account_id:
                    continue
                if (last4 and card.last4 != last4) or not name_matches(card, name):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                cards.append(card)
                if len(cards) == limit:
                    break
        return cards

    async def update_card(
        self,
        card: Card,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
        more: Sequence[AuditEntry] = (),
    ) -> Card:
        """On a single Redis the card (moved to another account, too) and its entry are one
        script: both or neither, as in SQLite's transaction. On a cluster the card's account
        and the audit log are in different hash slots, which no script spans: the entry is
        appended right after the card, not with it (README, Known limitations)."""
        entries = card_entries(card, audit, more)
        stored_account = await self._card_account(card.card_id)
        if stored_account is None:
            raise NotFound(f"card {card.card_id} not found")
        if entries and not self._cluster:
            return await self._update_audited_card(card, stored_account, entries, seal)
        stored = await self._update_card(card, stored_account)
        for entry in entries:  # a cluster: the audit log is in another hash slot
            await self.append_audit(entry, seal)
        return stored

    def _update_args(self, card: Card, stored: Card) -> list[str]:
        """UPDATE_CARD's ARGV: the version the change was made from, then what is written."""
        data = codec.card_to_json(stored)
        return [str(card.version), data, str(card.pin_tries), card.account_id, card.state.value]

    def _refused(self, card: Card, result: int) -> None:
        """Raise for a card script's refusal: -1 the card is missing, -2 it is stale."""
        if result == -1:
            raise NotFound(f"card {card.card_id} not found")
        if result == -2:
            raise Conflict(f"card {card.card_id} was changed by someone else (stale version)")

    async def _update_card(self, card: Card, stored_account: str) -> Card:
        stored = replace(card, version=card.version + 1)
        old_ak = self._keys.account(stored_account)
        if stored_account != card.account_id:
            return await self._move_card(card, stored, old_ak)
        result = int(
            await self._update([old_ak.card(card.card_id)], self._update_args(card, stored))
        )
        self._refused(card, result)
        await self._repoint(stored)
        return stored

    async def _update_audited_card(
        self, card: Card, stored_account: str, entries: list[AuditEntry], seal: AuditSealer | None
    ) -> Card:
        """The card (moved to another account, too) and its audit entry in one script, every
        check before its first write; an entry sealed after a head another writer moved
        meanwhile is sealed again."""
        stored = replace(card, version=card.version + 1)
        args = self._update_args(card, stored)
        script, keys = (
            self._update_audited,
            [self._keys.account(card.account_id).card(card.card_id)],
        )
        if stored_account != card.account_id:
            script, keys = self._move_audited, self._move_keys(card, stored_account)
            args = [*args, card.card_id, _pointer_value(card)]
        keys = [*self._audit_keys(entries[0]), *keys]
        result = await self._sealed_run(script, keys, args, entries, seal, more_at_end=True)
        self._refused(card, result)
        if stored_account == card.account_id:
            await self._repoint(stored)
        return stored

    def _move_keys(self, card: Card, stored_account: str) -> list[str]:
        """MOVE_CARD_AUDITED's card keys (from KEYS[6])."""
        old_ak, new_ak = self._keys.account(stored_account), self._keys.account(card.account_id)
        return [
            old_ak.card(card.card_id),
            new_ak.card(card.card_id),
            old_ak.cards,
            new_ak.cards,
            self._keys.card_home(card.card_id),
            self._keys.all_cards,
            self._keys.pan(card.pan_index),
        ]

    async def _repoint(self, card: Card) -> None:
        """Point the PAN at ``card`` if the PAN now means it (``lifecycle.is_current_over``):
        a renewal's successor takes over when it is activated."""
        if not lifecycle.has_been_activated(card) or not card.pan_index:
            return
        pointer = await self._pointer(card.pan_index)
        if pointer is None or pointer[0] == card.card_id:
            return
        current = await self._read_card(pointer[1], pointer[0])
        mine = await self._client.zscore(self._keys.all_cards, card.card_id) or 0
        theirs = await self._client.zscore(self._keys.all_cards, pointer[0]) or 0
        if current is None or lifecycle.is_current_over(
            card, current, candidate_is_newer=mine > theirs
        ):
            # before and after the PAN moves: an event the predecessor commits in between is
            # copied by the second (the first covers a failure after the move)
            await self._hand_over_velocity(pointer[0], pointer[1], card)
            await self._client.set(self._keys.pan(card.pan_index), _pointer_value(card))
            await self._hand_over_velocity(pointer[0], pointer[1], card)

    async def _hand_over_velocity(self, old_id: str, old_account: str, new: Card) -> None:
        """Copy the window's velocity events of the card the PAN meant into ``new``'s history:
        velocity is the card number's (the SQLite store reads every card of the PAN). Only
        within one account (one slot); a card moved to another account meanwhile keeps its
        own."""
        if old_account != new.account_id:
            return
        ak = self._keys.account(new.account_id)
        keys = [ak.velocity_log(old_id), ak.velocity(old_id), ak.velocity(new.card_id)]
        await self._hand_over(keys, [repr(time.time() - RETENTION_S)])

    async def _move_card(self, card: Card, stored: Card, old_ak: Any) -> Card:
        """Re-link a card to another account: its hash moves to the new account's slot."""
        old_key = old_ak.card(card.card_id)
        values = await self._client.hmget(old_key, ["version", "pan"])
        if values[0] is None:
            raise NotFound(f"card {card.card_id} not found")
        if int(values[0]) != card.version:
            raise Conflict(f"card {card.card_id} was changed by someone else (stale version)")
        new_ak = self._keys.account(card.account_id)
        seq = await self._client.zscore(self._keys.all_cards, card.card_id) or 0
        await self._client.hset(new_ak.card(card.card_id), self._card_fields(stored, values[1]))
        await self._client.zadd(new_ak.cards, {card.card_id: seq})
        await self._client.set(self._keys.card_home(card.card_id), card.account_id)
        pointer = await self._pointer(card.pan_index)
        if pointer is not None and pointer[0] == card.card_id:
            await self._client.set(self._keys.pan(card.pan_index), _pointer_value(card))
        await self._client.delete([old_key])
        await self._client.zrem(old_ak.cards, [card.card_id])
        return stored

    async def replace_card(
        self,
        old: Card,
        new: Card,
        pan_ciphertext: bytes,
        audit: tuple[AuditEntry, AuditEntry] | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """On a single Redis both cards and both entries are one script (all or none); on a
        cluster the entries are appended right after the cards (another hash slot)."""
        if new.account_id != old.account_id:
            raise StoreError("a replacement card stays on the account of the card it replaces")
        same_pan = new.pan_index == old.pan_index
        linked_old = replace(old, replaced_by=new.card_id, version=old.version + 1)
        linked_new = replace(new, replaces=old.card_id)
        if audit is not None and not self._cluster:
            await self._replace_audited_card(
                old, linked_old, linked_new, pan_ciphertext, audit, seal
            )
            return
        await self._claim(linked_new, pan=not same_pan)
        ak = self._keys.account(old.account_id)
        seq = await self._client.incr(self._keys.card_seq)
        result = int(
            await self._replace(
                [ak.card(old.card_id), ak.card(new.card_id), ak.cards],
                [
                    str(old.version),
                    codec.card_to_json(linked_old),
                    str(old.pin_tries),
                    old.state.value,
                    codec.card_to_json(linked_new),
                    str(new.pin_tries),
                    str(new.version),
                    pan_ciphertext,
                    new.account_id,
                    new.state.value,
                    str(seq),
                    new.card_id,
                ],
            )
        )
        if result < 0:
            await self._client.delete([self._keys.card_home(new.card_id)])
            if not same_pan:
                await self._client.delete([self._keys.pan(new.pan_index)])
            if result == -1:
                raise NotFound(f"card {old.card_id} not found")
            raise Conflict(f"card {old.card_id} was changed by someone else (stale version)")
        await self._client.zadd(self._keys.all_cards, {new.card_id: seq})
        if same_pan and lifecycle.is_current_over(linked_new, linked_old, candidate_is_newer=True):
            await self._client.set(self._keys.pan(new.pan_index), _pointer_value(new))
        for entry in audit or ():  # a cluster: the audit log is in another hash slot
            await self.append_audit(entry, seal)

    async def _replace_audited_card(
        self,
        old: Card,
        linked_old: Card,
        linked_new: Card,
        pan_ciphertext: bytes,
        audit: tuple[AuditEntry, AuditEntry],
        seal: AuditSealer | None,
    ) -> None:
        """Both cards, the new one's claims and listing, the PAN's pointer and both entries
        in one script (REPLACE_CARD_AUDITED), every check before its first write."""
        _check_card_ids(linked_new)
        new = linked_new
        if new.pan_index != old.pan_index:
            pointer = "claim"
        elif lifecycle.is_current_over(new, linked_old, candidate_is_newer=True):
            pointer = "move"
        else:
            pointer = "keep"
        ak = self._keys.account(old.account_id)
        keys = [
            *self._audit_keys(audit[0]),
            self._keys.audit_subject(audit[1].subject),
            ak.card(old.card_id),
            ak.card(new.card_id),
            ak.cards,
            self._keys.card_home(new.card_id),
            self._keys.pan(new.pan_index),
            self._keys.card_seq,
            self._keys.all_cards,
        ]
        args = [
            str(old.version),
            codec.card_to_json(linked_old),
            str(old.pin_tries),
            old.state.value,
            codec.card_to_json(new),
            str(new.pin_tries),
            str(new.version),
            pan_ciphertext,
            new.account_id,
            new.state.value,
            new.card_id,
            _pointer_value(new),
            pointer,
        ]
        result = await self._sealed_run(self._replace_audited, keys, args, audit, seal)
        if result == -1:
            raise NotFound(f"card {old.card_id} not found")
        if result == -2:
            raise Conflict(f"card {old.card_id} was changed by someone else (stale version)")
        if result == -4:
            raise Conflict(f"card {new.card_id} already exists")
        if result == -5:
            raise Conflict("a card with this PAN already exists")

    async def pan_ciphertext(self, card_id: str) -> bytes:
        account_id = await self._card_account(card_id)
        raw = None
        if account_id is not None:
            raw = await self._client.hget(self._keys.account(account_id).card(card_id), "pan")
        if raw is None:
            raise NotFound(f"card {card_id} not found")
        return bytes(raw)

    async def claim_token(
        self, token_ref: str, card_id: str, now: float, replacing: str = ""
    ) -> TokenHolder:
        key = self._keys.token_holder(token_ref)
        holder, since = await self._claim_token([key], [card_id, repr(now), replacing])
        return TokenHolder(_s(holder), float(_s(since)))

    async def release_token(self, token_ref: str, card_id: str) -> None:
        await self._release_token([self._keys.token_holder(token_ref)], [card_id])

    async def reseal_pan(self, card_id: str, old: bytes, new: bytes) -> bool:
        account_id = await self._card_account(card_id)
        done = -1
        if account_id is not None:
            card_key = self._keys.account(account_id).card(card_id)
            done = int(await self._reseal_pan([card_key], [old, new]))
        if done < 0:
            raise NotFound(f"card {card_id} not found")
        return done == 1

    # --- journal -------------------------------------------------------------------------------

    async def set_journal_arn(self, entry: JournalEntry, arn: str) -> bool:
        return await self._set_entry_field(entry, "arn", arn)

    async def set_journal_completes(self, entry: JournalEntry, completes: str) -> bool:
        return await self._set_entry_field(entry, "completes", completes)

    async def _set_entry_field(self, entry: JournalEntry, name: str, value: str) -> bool:
        """Set one field of a journalled entry's JSON, written back only if unchanged."""
        key = self._keys.account(entry.account_id).journal
        for _ in range(ACCOUNT_AUDIT_TRIES):  # the entry's JSON as read: no other field lost
            raw = await self._client.hget(key, str(entry.journal_id))
            if raw is None:
                return False
            data = json.loads(raw)
            data[name] = value
            done = int(
                await self._replace_entry([key], [entry.journal_id, raw, codec.compact_json(data)])
            )
            if done >= 0:
                return done == 1
        return False

    async def _account_journal(
        self, account_id: str, query: JournalQuery, limit: int
    ) -> list[JournalEntry]:
        ak = self._keys.account(account_id)
        index = ak.journal_card(query.card_id) if query.card_id else ak.journal_all
        if query.review_only:
            index = ak.journal_review
        found: list[JournalEntry] = []
        after = query.after_id
        while len(found) < limit:
            ids = await self._client.zrange(
                index,
                f"({after}",
                "+inf",
                sortby=PureToken.BYSCORE,
                offset=0,
                count=max(limit, 100),
            )
            if not ids:
                break
            after = int(ids[-1])
            raws = await self._client.hmget(ak.journal, ids)
            for raw in raws:
                if raw is None:
                    continue
                entry = codec.journal_from_json(raw)
                if _matches(entry, query):
                    found.append(entry)
        return found[:limit]

    async def _journal_accounts(self, query: JournalQuery) -> list[str]:
        if query.account_id:
            return [query.account_id]
        if query.card_id:
            account_id = await self._card_account(query.card_id)
            return [] if account_id is None else [account_id]
        ids = await self._client.zrange(self._keys.accounts, 0, -1)
        return ["", *(_s(i) for i in ids)]

    async def last_used(self, card: Card) -> float | None:
        ak = self._keys.account(card.account_id)
        newest = await self._client.zrange(
            ak.journal_card(card.card_id), "+inf", "-inf", sortby=PureToken.BYSCORE, rev=True,
            offset=0, count=1,
        )  # fmt: skip
        raw = await self._client.hget(ak.journal, newest[0]) if newest else None
        return None if raw is None else codec.journal_from_json(raw).ts

    async def journal(self, query: JournalQuery) -> list[JournalEntry]:
        everyone = not (query.account_id or query.card_id or query.review_only)
        if everyone and not self._cluster:
            return await self._global_journal(query, query.limit)
        parts = [
            await self._account_journal(account_id, query, query.limit)
            for account_id in await self._journal_accounts(query)
        ]
        merged = heapq.merge(*parts, key=lambda e: e.journal_id)
        return list(merged)[: query.limit]

    async def _global_journal(self, query: JournalQuery, limit: int) -> list[JournalEntry]:
        """Every account's entries in id order from the global index (a single Redis): a page
        of ids, then each account's entries of the page in one pipelined read."""
        found: list[JournalEntry] = []
        after = query.after_id
        while len(found) < limit:
            members = await self._client.zrange(
                self._keys.journal_global, f"({after}", "+inf", sortby=PureToken.BYSCORE,
                offset=0, count=max(limit, 100),
            )  # fmt: skip
            if not members:
                break
            page = [_s(m).split("|", 1) for m in members]
            after = int(page[-1][0])
            async with self._client.pipeline(transaction=False) as pipe:
                reads = [pipe.hget(journal_hash, jid) for jid, journal_hash in page]
            for read in reads:
                raw = await read
                if raw is not None:
                    entry = codec.journal_from_json(raw)
                    if _matches(entry, query):
                        found.append(entry)
        return found[:limit]

    def export_journal(self, query: JournalQuery) -> AsyncIterator[JournalEntry]:
        """Every matching entry in journal id order, page by page (``limit`` is ignored)."""
        return journal_pages(self.journal, query)

    async def card_journal_newest(
        self, card_id: str, before_id: int = 0, limit: int = 100
    ) -> list[JournalEntry]:
        account_id = await self._card_account(card_id)
        if account_id is None or limit <= 0:
            return []
        ak = self._keys.account(account_id)
        found: list[JournalEntry] = []
        below = f"({before_id}" if before_id > 0 else "+inf"
        while len(found) < limit:
            # the card's ids (scored by id) read backwards: ZRANGE BYSCORE REV LIMIT
            ids = await self._client.zrange(
                ak.journal_card(card_id), below, "-inf", sortby=PureToken.BYSCORE, rev=True,
                offset=0, count=limit - len(found),
            )  # fmt: skip
            if not ids:
                break
            below = f"({int(ids[-1])}"
            raws = await self._client.hmget(ak.journal, ids)
            # an id whose entry retention deleted meanwhile is passed over
            found += [codec.journal_from_json(raw) for raw in raws if raw is not None]
        return found

    # --- audit, lists, idempotency -------------------------------------------------------------

    def _audit_keys(self, entry: AuditEntry) -> list[str]:
        """APPEND_AUDIT_CHAINED's KEYS: the log, its id indexes, its sequence, the head."""
        k = self._keys
        return [k.audit, k.audit_all, k.audit_subject(entry.subject), k.audit_seq, k.audit_head]

    async def _audit_head(self) -> str:
        """The chain value the next sealed entry follows ("" before the first)."""
        head = await self._client.get(self._keys.audit_head)
        return head.decode() if isinstance(head, bytes) else (head or "")

    async def _audit_args(self, entry: AuditEntry, seal: AuditSealer | None) -> list[str]:
        """APPEND_AUDIT_CHAINED's ARGV: the entry's JSON (its id a placeholder the script
        fills), the head it was sealed after, as read now, and its chain value ("" and ""
        unsealed: only the JSON goes to APPEND_AUDIT)."""
        if seal is None:
            return [_sealed_after(entry, None, "")[0], "", ""]
        previous = await self._audit_head()
        text, chain = _sealed_after(entry, seal, previous)
        return [text, previous, chain]

    async def _sealed_run(
        self,
        script: Any,
        keys: list[str],
        args: list[Any],
        entries: Sequence[AuditEntry],
        seal: AuditSealer | None,
        *,
        more_at_end: bool = False,
    ) -> int:
        """An *_AUDITED script's reply, its entries sealed after the chain's head as read (each
        after the one before it) and sent before ``args`` (with ``more_at_end`` the first
        alone, the others after ``args`` and their count: ``redis_lua._more_entries``);
        sealed again and sent again while another writer's entry moves the head first (-3:
        nothing written)."""
        while True:
            sealed = await self._audit_args(entries[0], seal)
            more: list[str] = []
            for entry in entries[1:]:  # chained after the one before it, in the same script
                more += _sealed_after(entry, seal, (more or sealed)[-1])
            if more_at_end:
                argv = [*sealed, *args, str(len(entries) - 1), *more]
            else:
                argv = [*sealed, *more, *args]
            result = int(await script(keys, argv))
            if result != -3:
                return result

    async def append_audit(self, entry: AuditEntry, seal: AuditSealer | None = None) -> None:
        keys = self._audit_keys(entry)
        if seal is None:
            await self._audit(keys[:4], (await self._audit_args(entry, None))[:1])
            return
        # sealed after the head as read; another writer's append: read it again
        while not int(await self._audit_chained(keys, await self._audit_args(entry, seal))):
            pass

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
        index = self._keys.audit_subject(subject) if subject else self._keys.audit_all
        if actor:  # no index by actor: read pages of the log, keep the actor's entries
            return await self._audit_of_actor(
                index, actor, limit, after_id, newest_first, before_id
            )
        if newest_first:  # ZRANGE ... BYSCORE REV takes the highest score first
            top = f"({before_id}" if before_id else "+inf"
            ids = await self._client.zrange(
                index, top, "-inf", sortby=PureToken.BYSCORE, rev=True, offset=0, count=limit
            )
        else:
            ids = await self._client.zrange(
                index, f"({after_id}", "+inf", sortby=PureToken.BYSCORE, offset=0, count=limit
            )
        if not ids:
            return []
        raws = await self._client.hmget(self._keys.audit, ids)
        return [codec.audit_from_json(r) for r in raws if r is not None]

    async def _audit_of_actor(
        self,
        index: str,
        actor: str,
        limit: int,
        after_id: int,
        newest_first: bool,
        before_id: int,
    ) -> list[AuditEntry]:
        """``audit`` filtered by actor: pages of 1,000 ids from the cursor on, in order."""
        found: list[AuditEntry] = []
        cursor = before_id if newest_first else after_id
        while len(found) < limit:
            if newest_first:
                top = f"({cursor}" if cursor else "+inf"
                ids = await self._client.zrange(
                    index, top, "-inf", sortby=PureToken.BYSCORE, rev=True, offset=0, count=1000
                )
            else:
                ids = await self._client.zrange(
                    index, f"({cursor}", "+inf", sortby=PureToken.BYSCORE, offset=0, count=1000
                )
            if not ids:
                break
            raws = await self._client.hmget(self._keys.audit, ids)
            entries = [codec.audit_from_json(r) for r in raws if r is not None]
            found += [e for e in entries if e.actor == actor][: limit - len(found)]
            cursor = int(_s(ids[-1]))
        return found

    async def open_dispute(
        self, dispute: Dispute, audit: AuditEntry | None = None, seal: AuditSealer | None = None
    ) -> None:
        """On a single Redis the dispute and its entry are one script (both or neither); on a
        cluster the entry is appended right after the dispute (another hash slot)."""
        keys = self._keys
        own_keys = [
            keys.disputes, keys.disputes_by_entry, keys.open_disputes, keys.dispute_ids,
            keys.disputes_by_card,
        ]  # fmt: skip
        args = [
            str(dispute.journal_id), dispute.dispute_id, codec.dispute_to_json(dispute),
            dispute.state, dispute.card_id,
        ]  # fmt: skip
        if audit is not None and not self._cluster:
            script, all_keys = self._open_dispute_audited, [*self._audit_keys(audit), *own_keys]
            opened = await self._sealed_run(script, all_keys, args, [audit], seal)
        else:
            opened = int(await self._open_dispute(own_keys, args))
        if not opened:
            raise Conflict(f"journal entry {dispute.journal_id} is disputed already")
        if audit is not None and self._cluster:  # the audit log is in another hash slot
            await self.append_audit(audit, seal)

    async def update_dispute(
        self,
        dispute: Dispute,
        expected_version: int | None = None,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """On a single Redis the dispute and its entry are one script (both or neither); on a
        cluster the entry is appended right after the dispute (another hash slot)."""
        own_keys = [self._keys.disputes, self._keys.open_disputes]
        args = [
            dispute.dispute_id,
            "" if expected_version is None else str(expected_version),
            codec.dispute_to_json(dispute),
            dispute.state,
        ]
        if audit is not None and not self._cluster:
            script, all_keys = self._update_dispute_audited, [*self._audit_keys(audit), *own_keys]
            written = await self._sealed_run(script, all_keys, args, [audit], seal)
        else:  # with an entry (a cluster's, appended after): only over a stored dispute
            written = int(await self._update_dispute(own_keys, [*args, "1" if audit else ""]))
        if written < 0:
            raise NotFound(f"dispute {dispute.dispute_id} not found")
        if not written:
            raise Conflict(f"dispute {dispute.dispute_id} changed meanwhile")
        if audit is not None and self._cluster:  # the audit log is in another hash slot
            await self.append_audit(audit, seal)

    async def get_dispute(self, dispute_id: str) -> Dispute | None:
        raw = await self._client.hget(self._keys.disputes, dispute_id)
        return None if raw is None else codec.dispute_from_json(raw)

    async def dispute_of_entry(self, journal_id: int) -> Dispute | None:
        dispute_id = await self._client.hget(self._keys.disputes_by_entry, str(journal_id))
        return None if dispute_id is None else await self.get_dispute(_s(dispute_id))

    async def disputes_of_card(self, card_id: str) -> list[Dispute]:
        """The card's range of ``disputes_by_card`` ("card id|dispute id": card ids hold no
        "|", and "}" is the byte after it), and the disputes in one HMGET; the index is built
        from the hash once for disputes stored before it (``disputes_by_card_indexed``)."""
        keys = self._keys
        await self._index_disputes_by_card(
            [keys.disputes, keys.disputes_by_card, keys.disputes_by_card_indexed], []
        )
        members = await self._client.zrangebylex(
            keys.disputes_by_card, f"[{card_id}|", f"({card_id}}}"
        )
        ids = [_s(m).rpartition("|")[2] for m in members]
        if not ids:
            return []
        raws = await self._client.hmget(keys.disputes, ids)
        found = [codec.dispute_from_json(raw) for raw in raws if raw is not None]
        return [d for d in found if d.card_id == card_id]

    async def disputes(self, state: str = "", limit: int = 100, after: str = "") -> list[Dispute]:
        if state == "open":  # the server's reconcile runs read these every minute
            return await self._open_disputes(limit, after)
        return await self._listed_disputes(state, limit, after)

    async def _listed_disputes(self, state: str, limit: int, after: str) -> list[Dispute]:
        """An admin's list: the ids in order from their index, read a page at a time and
        filtered by state here, instead of the whole hash of every dispute ever opened."""
        keys = self._keys
        await self._index_dispute_ids(
            [keys.disputes, keys.dispute_ids, keys.dispute_ids_indexed], []
        )
        found: list[Dispute] = []
        async for _, dispute in self._indexed_disputes(
            keys.dispute_ids, after, max(limit, DISPUTE_IDS_PAGE)
        ):
            if dispute is not None and (not state or dispute.state == state):
                found.append(dispute)
                if len(found) == limit:
                    break
        return found

    async def _open_disputes(self, limit: int, after: str) -> list[Dispute]:
        """The open disputes after ``after``, from their index (``open_disputes``), not the
        whole hash: open ones are few, closed ones pile up for years. An id the index still
        holds for a dispute no longer open (closed while the index was first built) is
        dropped from it and skipped."""
        keys = self._keys
        await self._index_open_disputes(
            [keys.disputes, keys.open_disputes, keys.open_disputes_indexed], []
        )
        found: list[Dispute] = []
        stale: list[str] = []
        async for dispute_id, dispute in self._indexed_disputes(keys.open_disputes, after, limit):
            if dispute is None or dispute.state != "open":
                stale.append(dispute_id)
                continue
            found.append(dispute)
            if len(found) == limit:
                break
        if stale:
            await self._client.zrem(keys.open_disputes, stale)
        return found

    async def _indexed_disputes(
        self, index: str, after: str, page: int
    ) -> AsyncIterator[tuple[str, Dispute | None]]:
        """The disputes an index of ids (a sorted set, by id) names after ``after``, in id
        order, read ``page`` at a time; None for an id whose dispute is gone."""
        cursor = after
        while True:
            start = f"({cursor}" if cursor else "-"
            ids = [_s(i) for i in await self._client.zrangebylex(index, start, "+", 0, page)]
            if not ids:
                return
            raws = await self._client.hmget(self._keys.disputes, ids)
            for dispute_id, raw in zip(ids, raws, strict=True):
                yield dispute_id, None if raw is None else codec.dispute_from_json(raw)
            cursor = ids[-1]

    async def put_fraud_report(
        self,
        report: FraudReport,
        audit: FraudReportAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """On a single Redis the report and its entry are one script (both or neither); on a
        cluster the entry, made from the report as read just before, follows the write."""
        k = self._keys
        keys = [k.fraud_reports, k.fraud_report_ids, k.fraud_report_seq]
        args = [str(report.journal_id), codec.fraud_report_to_json(replace(report, report_id=0))]
        if audit is None:
            await self._put_fraud_report(keys, args)
            return
        async with self._read_audit_lock:
            if self._cluster:  # the entry follows, made from the report as read
                found = await self.fraud_reports_of([report.journal_id])
                await self._put_fraud_report(keys, args)
                await self.append_audit(audit(found.get(report.journal_id)), seal)
                return
            for _ in range(ACCOUNT_AUDIT_TRIES):
                raw = await self._client.hget(k.fraud_reports, args[0])
                entry = audit(None if raw is None else codec.fraud_report_from_json(raw))
                read = [*args, "" if raw is None else _s(raw)]
                script = self._put_fraud_report_audited
                audit_keys = [*self._audit_keys(entry), *keys]
                if await self._sealed_run(script, audit_keys, read, [entry], seal) != -4:
                    return
        raise StoreUnavailable(
            f"the fraud report on journal entry {report.journal_id} changed at each of "
            f"{ACCOUNT_AUDIT_TRIES} tries to write it with its audit entry; nothing was "
            "written: try again"
        )

    async def fraud_reports(self, after_id: int = 0, limit: int = 1000) -> list[FraudReport]:
        """In the order they were written, after report id ``after_id``."""
        scored = await self._client.zrange(
            self._keys.fraud_report_ids,
            f"({after_id}",
            "+inf",
            sortby=PureToken.BYSCORE,
            offset=0,
            count=limit,
            withscores=True,
        )
        if not scored:
            return []
        raws = await self._client.hmget(self._keys.fraud_reports, [m for m, _ in scored])
        # a report written before report ids has none in its JSON: its score is its place
        return [
            replace(codec.fraud_report_from_json(raw), report_id=int(score))
            for (_, score), raw in zip(scored, raws, strict=True)
            if raw is not None
        ]

    async def fraud_reports_of(self, journal_ids: Sequence[int]) -> dict[int, FraudReport]:
        if not journal_ids:
            return {}
        raws = await self._client.hmget(self._keys.fraud_reports, [str(i) for i in journal_ids])
        reports = [codec.fraud_report_from_json(r) for r in raws if r is not None]
        return {r.journal_id: r for r in reports}

    async def get_list(self, name: str) -> frozenset[str]:
        return frozenset(_s(v) for v in await self._client.smembers(self._keys.list_values(name)))

    async def put_list(
        self,
        name: str,
        values: Sequence[str],
        audit: ListAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """On a single Redis the list and its entry are one script (both or neither); on a
        cluster the entry, made from the list as read just before, follows the write."""
        if audit is None:
            await self._put_list(name, values)
            return
        async with self._read_audit_lock:
            if self._cluster:  # the audit log is in another hash slot: the entry follows
                entry = audit(await self.get_list(name))  # made first: it may refuse the write
                await self._put_list(name, values)
                await self.append_audit(entry, seal)
                return
            keys = [self._keys.list_names, self._keys.list_values(name)]
            for _ in range(ACCOUNT_AUDIT_TRIES):
                found = sorted(await self.get_list(name))
                entry = audit(frozenset(found))
                args = [name, str(len(found)), *found, *values]
                script = self._put_list_audited
                keys_ = [*self._audit_keys(entry), *keys]
                if await self._sealed_run(script, keys_, args, [entry], seal) == 1:
                    return
        raise StoreUnavailable(
            f"list {name} changed at each of {ACCOUNT_AUDIT_TRIES} tries to write it with "
            "its audit entry; nothing was written: try again"
        )

    async def _put_list(self, name: str, values: Sequence[str]) -> None:
        """The list's whole content replaced in one MULTI (no entry)."""
        key = self._keys.list_values(name)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.sadd(self._keys.list_names, [name])
            pipe.delete([key])
            if values:
                pipe.sadd(key, list(values))

    async def list_names(self) -> list[str]:
        return sorted(_s(n) for n in await self._client.smembers(self._keys.list_names))

    async def idempotent_result(self, key: str) -> str | None:
        raw = await self._client.get(self._keys.idempotency(key))
        return None if raw is None else _s(raw)

    async def reserve_result(self, key: str, placeholder_json: str) -> str | None:
        return await self._put(key, placeholder_json, "result")

    async def remember_result(self, key: str, result_json: str) -> None:
        await self._settle(
            [self._keys.idempotency(key), self._keys.idempotency_written],
            [result_json, PENDING_PREFIX, "0", repr(time.time()), key],
        )

    async def forget_reservation(self, key: str) -> None:
        await self._settle(
            [self._keys.idempotency(key), self._keys.idempotency_written],
            ["", PENDING_PREFIX, "1", "", key],
        )

    async def put_marker(
        self,
        key: str,
        value_json: str,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> str | None:
        """On a single Redis the marker and its entry are one script (both or neither); on a
        cluster the entry is appended right after the marker (another hash slot)."""
        if audit is not None and not self._cluster:
            k = self._keys
            keys = [*self._audit_keys(audit), k.idempotency(key), k.idempotency_markers]
            args = [value_json, key]
            if await self._sealed_run(self._put_marker_audited, keys, args, [audit], seal):
                return None
            there = await self._client.get(k.idempotency(key))  # a marker: there for good
            return _s(there) if there is not None else ""
        there = await self._put(key, value_json, "marker")
        if there is None and audit is not None:  # a cluster: the audit log is elsewhere
            await self.append_audit(audit, seal)
        return there

    async def _put(self, key: str, value: str, what: str) -> str | None:
        """``value`` under ``key`` unless something is there (None), else what is there; a
        result's placeholder joins the age index, a marker the markers (one script)."""
        keys = self._keys
        kept_in = keys.idempotency_markers if what == "marker" else keys.idempotency_written
        there = await self._put_if_absent(
            [keys.idempotency(key), kept_in], [value, repr(time.time()), key, what]
        )
        return None if there is None else _s(there)

    async def keep_result(self, key: str) -> bool:
        keys = self._keys
        kept = await self._keep_result(
            [keys.idempotency(key), keys.idempotency_written, keys.idempotency_markers],
            [PENDING_PREFIX, key],
        )
        return int(kept) == 1

    async def prune_idempotency(
        self, before: float, audit: BatchAudit | None = None, seal: AuditSealer | None = None
    ) -> int:
        """The results written before ``before``, found by the age indexes: the ``{i}`` slot's
        (``idempotency_written``), then each account's funds changes (``funds_written``), a
        page per script call. The first run indexes what was stored before the indexes. On
        a single Redis with ``audit``, each batch (``PRUNE_PAGE`` results, across the
        indexes) and its entry are one script (``AUDITED_BATCH``); on a cluster the entries
        follow their writes (``FollowingEntries``)."""
        await self._index_stored_before()
        if audit is not None and not self._cluster:
            done = await self._audited_batches(partial(self._batch_results, before), audit, seal)
            return done.get("results", 0)
        following = FollowingEntries(audit, partial(self.append_audit, seal=seal), PRUNE_PAGE)
        try:
            async for index, name_of in self._age_indexes():
                await following.add({"results": await self._prune_index(index, name_of, before)})
        except Exception:
            await following.failed()
            raise
        await following.end()
        return following.total.get("results", 0)

    async def _age_indexes(self) -> AsyncIterator[tuple[str, Any]]:
        """The idempotency age indexes, each with how its members name their keys: the
        ``{i}`` slot's, then each account's funds changes'."""
        yield self._keys.idempotency_written, self._keys.idempotency
        start = 0
        while ids := await self._client.zrange(self._keys.accounts, start, start + 999):
            for account_id in ids:
                ak = self._keys.account(_s(account_id))
                yield ak.funds_written, ak.funds_change
            start += len(ids)

    async def _batch_results(self, before: float, flush: Any) -> None:
        """Every result written before ``before``, gathered into batches (``PRUNE_WRITTEN``'s
        writes, each member checked still that old) handed to ``flush``."""
        batch = AuditedBatch()
        async for index, name_of in self._age_indexes():
            pending = 0  # this index's members in the batch, not written yet
            while True:
                members = [
                    _s(m)
                    for m in await self._client.zrange(
                        index,
                        "-inf",
                        f"({before!r}",
                        sortby=PureToken.BYSCORE,
                        offset=pending,
                        count=PRUNE_PAGE,
                    )  # fmt: skip
                ]
                if members:
                    there = await self._there([name_of(m) for m in members])
                    batch.step("OLDER", index, [repr(before), *members])
                    for member, present in zip(members, there, strict=True):
                        if present:  # counted: still there when the script deletes it
                            batch.step("THERE", name_of(member))
                        batch.step("DEL", name_of(member))
                    batch.step("ZREM", index, members)
                    batch.count("results", sum(there))  # a member whose key is gone: none
                    pending += len(members)
                if batch.size >= PRUNE_PAGE:
                    await flush(batch)
                    batch, pending = AuditedBatch(), 0
                if len(members) < PRUNE_PAGE:
                    break
        await flush(batch)

    async def _there(self, names: list[str]) -> list[bool]:
        """Whether each key is there (one round trip): an age index's member can outlive its
        key (an older authhost's forgotten placeholder), and a batch counts keys deleted."""
        async with self._client.pipeline(transaction=False) as pipe:
            replies = [pipe.exists([name]) for name in names]
        return [int(await reply) == 1 for reply in replies]

    async def _prune_index(self, index: str, name_of: Any, before: float) -> int:
        """Delete the members of the age index ``index`` written before ``before``, with their
        keys (``name_of(member)``), ``PRUNE_PAGE`` per script call; how many keys went."""
        deleted = 0
        while True:
            members = await self._client.zrange(
                index, "-inf", f"({before!r}", sortby=PureToken.BYSCORE, offset=0,
                count=PRUNE_PAGE,
            )  # fmt: skip
            if not members:
                return deleted
            keys = [_s(m) for m in members]
            done = await self._prune_written(
                [index, *(name_of(k) for k in keys)], [repr(before), *keys]
            )
            deleted += int(done)
            if len(members) < PRUNE_PAGE:
                return deleted

    async def _index_stored_before(self) -> None:
        """Once per store (``idempotency_indexed``): the idempotency keys and funds-change
        records stored before the age indexes existed go into them, aged from now (Redis kept
        no time of a result; a placeholder's own ``at`` is its), but the markers: those in
        ``idempotency_markers`` and the ``LEGACY_MARKER_PREFIXES``, which join the markers.
        A SCAN of the key space (of every primary on a cluster); a run cut short starts over
        (what it indexed keeps its time)."""
        keys = self._keys
        if await self._client.exists([keys.idempotency_indexed]):
            return
        now = time.time()
        prefix = _glob_escape(keys.prefix)
        skip = len(keys.idempotency(""))
        page: list[str] = []
        async for name in self._client.scan_iter(match=f"{prefix}:{{i}}:*", count=1000):
            page.append(_s(name)[skip:])
            if len(page) == PRUNE_PAGE:
                await self._index_results(page, now)
                page = []
        await self._index_results(page, now)
        funds: dict[str, dict[str, float]] = {}
        start, middle = len(f"{keys.prefix}:{{a:"), "}:funds:"
        async for raw in self._client.scan_iter(match=f"{prefix}:{{a:*}}:funds:*", count=1000):
            name = _s(raw)
            account_id, _, key = name[start:].partition(middle)
            funds.setdefault(account_id, {})[key] = now
            if sum(map(len, funds.values())) >= PRUNE_PAGE:
                await self._index_funds(funds)
                funds = {}
        await self._index_funds(funds)
        await self._client.set(keys.idempotency_indexed, repr(now))

    async def _index_results(self, page: list[str], now: float) -> None:
        if not page:
            return
        keys = self._keys
        legacy = [k for k in page if k.startswith(LEGACY_MARKER_PREFIXES)]
        if legacy:
            await self._client.sadd(keys.idempotency_markers, legacy)
        rest = [k for k in page if not k.startswith(LEGACY_MARKER_PREFIXES)]
        if not rest:
            return
        values = await self._client.mget([keys.idempotency(k) for k in rest])
        marked = await self._client.smismember(keys.idempotency_markers, rest)
        written: dict[str, float] = {}
        for key, raw, marker in zip(rest, values, marked, strict=True):
            if raw is None or marker:  # gone meanwhile, or a marker
                continue
            written[key] = _written_at(_s(raw), now)
        if written:  # (NX: a key written since has its own time in it)
            await self._client.zadd(keys.idempotency_written, written, condition=PureToken.NX)

    async def _index_funds(self, funds: dict[str, dict[str, float]]) -> None:
        for account_id, written in funds.items():
            await self._client.zadd(
                self._keys.account(account_id).funds_written, written, condition=PureToken.NX
            )

    async def put_intent(self, kind: str, subject: str, data_json: str) -> None:
        value = json.dumps({"data": data_json, "ts": time.time()}, separators=(",", ":"))
        await self._client.hset(self._keys.intents(kind), {subject: value})

    async def intents(self, kind: str, before: float) -> list[Intent]:
        raw = await self._client.hgetall(self._keys.intents(kind))
        found = []
        for subject, value in raw.items():
            item = json.loads(_s(value))
            if item["ts"] < before:
                found.append(Intent(kind, _s(subject), item["data"], item["ts"]))
        return sorted(found, key=lambda intent: intent.ts)

    async def drop_intent(self, kind: str, subject: str, ts: float | None = None) -> None:
        name = self._keys.intents(kind)
        if ts is None:
            await self._client.hdel(name, [subject])
        else:  # only the intent written then: compare and delete in one step
            await self._drop_intent([name], [subject, repr(ts)])

    async def take_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        key = self._keys.lease(name)
        ttl_ms = max(1, math.ceil(ttl_s * 1000))
        for _ in range(3):  # (each time: the holder's lease ended between the two steps)
            # taken when nobody holds it: SET NX, expiring with it (Redis's clock)
            if await self._client.set(
                key, f"{time.time()!r}|{owner}", condition=PureToken.NX, px=ttl_ms
            ):
                return True
            # held: renewed if it is the owner's own, compared and extended in one script
            renewed = await self._renew_lease([key], [owner, str(ttl_ms)])
            if renewed != -1:
                return renewed == 1
        return False  # taken and ended by others three times over: it is busy

    async def drop_lease(self, name: str, owner: str) -> None:
        await self._drop_lease([self._keys.lease(name)], [owner])

    async def lease_of(self, name: str) -> Lease | None:
        key = self._keys.lease(name)
        async with self._client.pipeline(transaction=True) as pipe:
            value_reply = pipe.get(key)
            ttl_reply = pipe.pttl(key)
        value, ttl_ms = await value_reply, await ttl_reply
        if value is None or ttl_ms == -2:  # none (or expired between the two)
            return None
        since, _, owner = _s(value).partition("|")
        expires_at = math.inf if ttl_ms < 0 else time.time() + ttl_ms / 1000  # (-1: never)
        return Lease(name, owner, float(since), expires_at)


def _pointer_value(card: Card) -> str:
    return f"{card.card_id}|{card.account_id}|{card.product_id}"


def _check_card_ids(card: Card) -> None:
    if not card.card_id or not card.pan_index:
        raise StoreError("a card needs a card_id and a pan_index")


class _BatchMoved(Exception):
    """A retention batch refused, nothing written: some of its rows gone (another run
    deleted them) or changed since they were read."""

    def __init__(self, *, gone: bool) -> None:
        super().__init__("a retention batch's rows moved")
        self.gone = gone


def _journal_batch() -> AuditedBatch:
    """A journal retention batch: its entry says both kinds, as SQLite's and a cluster's do
    (``entries`` 0 in a batch of holds only)."""
    return AuditedBatch(counts={"entries": 0, "holds": 0})


def _by_card(old: list[tuple[str, JournalEntry | None]]) -> dict[str, list[str]]:
    """The journal ids of ``old`` by the card each entry is of (its per-card index)."""
    by_card: dict[str, list[str]] = {}
    for jid, e in old:
        if e is not None and e.card_id:
            by_card.setdefault(e.card_id, []).append(jid)
    return by_card


def _sealed_after(entry: AuditEntry, seal: AuditSealer | None, previous: str) -> list[str]:
    """The entry's JSON (its id a placeholder the script fills) and its chain value sealed
    after ``previous`` ("" unsealed)."""
    chain = "" if seal is None else seal.seal(previous, entry.sealed_fields())
    sealed = replace(entry, audit_id="__ID__", chain=chain)  # type: ignore[arg-type]
    return [codec.audit_to_json(sealed), chain]


def _glob_escape(text: str) -> str:
    """``text`` matched as itself in a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _written_at(stored: str, now: float) -> float:
    """When an idempotency key's value was written, as far as it says: a placeholder's
    ``at``; a result says nothing (``now``)."""
    if stored.startswith(PENDING_PREFIX):
        try:
            return float(json.loads(stored)["at"])
        except (ValueError, KeyError, TypeError):
            pass
    return now


def _prefix_ok(prefix: str) -> str:
    if not prefix or "{" in prefix or "}" in prefix or ":" in prefix:
        raise StoreError("the Redis key prefix is a non-empty name without braces or colons")
    return prefix
