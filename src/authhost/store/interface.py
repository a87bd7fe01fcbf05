"""The CardStore protocol: what the auth pipeline and the admin service need from a store.

One read (``snapshot``) and one atomic write (``commit``) per authorisation, plus the card
management operations. Backends: ``store.sqlite`` (embedded default) and ``store.redis``
(coredis; single Redis or Redis Cluster). Both pass the same test suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from authhost.cards.acceptor_velocity import NO_ACCEPTOR, AcceptorCounters, AcceptorVelocity
from authhost.cards.model import Account, Card, Product
from authhost.cards.velocity import EMPTY, Velocity
from authhost.store.money import BALANCE_BOUND
from authhost.store.records import AuditEntry, Dispute, FraudReport, JournalEntry


class AuditSealer(Protocol):
    """The audit key (``security.audit_chain.AuditSeal``), as a store sees it."""

    def seal(self, previous: str, fields: Sequence[object]) -> str: ...


# An admin write's audit entry on an account (``change_funds``, ``set_credit_limit``,
# ``sync_ledger``), made by the store from the account as the write finds it, and appended
# only if the write is made, in the same atomic step as ``update_card``'s entry. The entry may
# record the account's balance and credit limit, which the write checks are still what it was
# made from (and its id, currency and kind, which never change); never its holds, which the
# authorisations move meanwhile.
AccountAudit = Callable[[Account], AuditEntry]

# A named list's audit entry (``put_list``), made by the store from the list's values as the
# write finds them (what was added and removed), appended only if the list is written. It is
# made before any write, so one that raises refuses the write (nothing written): a caller that
# made the new values from a read of the list refuses a list changed since.
ListAudit = Callable[[frozenset[str]], AuditEntry]

# A fraud report's audit entry (``put_fraud_report``), made by the store from the report the
# write replaces (None: the entry had none), appended only if the report is written.
FraudReportAudit = Callable[[FraudReport | None], AuditEntry]

# A retention batch's audit entry (``prune_journal``, ``prune_idempotency``), made by the store
# from what the batch deletes (a count per kind: ``entries`` and ``holds``, ``results``) and
# written in the batch's own write: a run cut short leaves the entries of what it deleted.
BatchAudit = Callable[[dict[str, int]], AuditEntry]


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """The card that registered a wallet token number, and since when (``claim_token``)."""

    card_id: str
    since: float


class StoreError(Exception):
    """A store operation that cannot be done; the message is safe to show (no PAN)."""


def card_entries(
    card: Card, audit: AuditEntry | None, more: Sequence[AuditEntry]
) -> list[AuditEntry]:
    """``update_card``'s entries, in order: ``more`` only after an ``audit``, all the card's."""
    entries = [] if audit is None else [audit, *more]
    if (more and audit is None) or any(e.subject != card.card_id for e in more):
        raise StoreError("a card change's further entries follow its own, on the same card")
    return entries


class NotFound(StoreError):
    pass


class StoreUnavailable(StoreError):
    """The store could not read or write just now: unreachable, or refusing writes (a full
    disk, Redis at its ``maxmemory``). Nothing was done; the same request may succeed later,
    so an authorisation is answered 96 and an admin request 503."""


def unavailable(error: Exception, what: str) -> StoreError:
    """A backend's own exception (sqlite3's, coredis's) as the store's error, its message
    prefixed with ``what`` failed; a StoreError is kept as it is. Callers above the store then
    tell a store that failed (logged as one line) from a bug (logged with its traceback)."""
    if isinstance(error, StoreError):
        return error
    wrapped = StoreUnavailable(f"{what}: {type(error).__name__}: {error}"[:300])
    wrapped.__cause__ = error
    return wrapped


# how an idempotency key's placeholder starts (CardStore.reserve_result): a result never does
PENDING_PREFIX = '{"pending":true'

# A request's stored result answers its repeats for this many days at least: a repeat older
# than the retention ([admin] idempotency_keep_days) is a new request. Far above any client's
# retry window (a core banking system resending the loads of an outage, an operator running a
# bulk file again), as Stripe's keys expire after 24 hours.
IDEMPOTENCY_MIN_KEEP_DAYS = 30
# The permanent markers written before the stores told them from results (SQLite migration 37,
# a Redis store's first ``prune_idempotency``): the keys with these prefixes are kept for good.
# The account-closed marker (``admin.service.base.ACCOUNT_CLOSED_KEY``) and the demo's own
# creates, by which ``authhost demo`` and ``serve --demo`` find the demo data again.
LEGACY_MARKER_PREFIXES = (
    "account.closed:",
    "product.create:demo:",
    "account.create:demo:",
    "card.issue:demo:",
)


class Conflict(StoreError):
    """Optimistic concurrency failure or a duplicate (PAN, id, idempotency key)."""


class InsufficientFunds(StoreError):
    """A funds change would take more than the account's open-to-buy: nothing changed."""

    def __init__(self, account: Account) -> None:
        super().__init__(f"account {account.account_id} has {account.open_to_buy} available")
        self.account = account


class BeyondBound(StoreError):
    """A change that would take the account's balance (either way) or its holds beyond
    ``BALANCE_BOUND``: nothing changed. ``account`` is the account as it is."""

    def __init__(self, account: Account, what: str, would_be: int) -> None:
        super().__init__(
            f"account {account.account_id}: its {what} would be {would_be:,} minor units, "
            f"beyond the most an account may hold ({BALANCE_BOUND:,} either way)"
        )
        self.account = account


@dataclass(frozen=True, slots=True)
class AcceptorStats:
    """What a process's merchant and terminal counters hold (the metrics endpoint shows it)."""

    events: int  # requests kept, the last hour's (about 140 bytes each)
    acceptors: int  # merchants and terminals with a request among them
    following: bool  # kept up to date: a loaded rule reads them


@dataclass(frozen=True, slots=True)
class AcceptorReading:
    """The last hour's merchant and terminal counters, read afresh, and the merchants' names
    (field 43, the newest each merchant sent in the hour)."""

    counters: AcceptorCounters
    names: dict[str, str]


@dataclass(frozen=True, slots=True)
class SnapshotQuery:
    """What one request needs read: the card by PAN hash, its dedupe key, a reversal's original."""

    pan_index: str
    now: float
    dedupe_key: str = ""  # a store may find an earlier answer here (Redis does; SQLite at commit)
    original_key: str = ""  # reversals: the match_key of the authorisation being reversed
    # the acceptor whose counters to read (cards.acceptor_velocity): field 42, and the
    # terminal_key of field 41 at it; "" reads none
    merchant: str = ""
    terminal: str = ""


@dataclass(frozen=True, slots=True)
class OpenHold:
    """An authorisation hold that still holds money: an account's ``holds`` add these up."""

    match_key: str  # the authorisation's (its journal entry's match_key)
    amount_minor: int  # still held, its increments' amounts included
    created_at: float  # its life runs from here (an increment moves it on)
    extra_life_s: float = 0.0  # beyond [auth] hold_days (a hotel's) or short of it (a pump's)


@dataclass(frozen=True, slots=True)
class Hold:
    """An open authorisation hold (or a posted amount) that a reversal can release."""

    match_key: str
    account_id: str
    amount_minor: int  # what is still held/posted and can be reversed
    posted: bool  # True: 0200/advice posted to the balance; False: a hold
    reversed_minor: int = 0
    # an increment (an incremental authorisation, which added its amount to this parent's hold
    # too): the parent's match key; releasing it releases from the parent as well
    parent: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one authorisation reads, fetched in one round trip."""

    card: Card | None = None
    account: Account | None = None
    product: Product | None = None
    velocity: Velocity = EMPTY
    previous: JournalEntry | None = None  # same dedupe key answered (if the store looks here)
    original: Hold | None = None  # for reversals
    merchant_velocity: AcceptorVelocity = NO_ACCEPTOR  # every card's, at this merchant
    terminal_velocity: AcceptorVelocity = NO_ACCEPTOR  # every card's, at this terminal
    # how far the card's velocity history was read (the newest event ``velocity`` counts, in
    # the store's own numbering; None: no card). A commit naming it is refused as stale when
    # the card has newer events by then (``Commit.velocity_mark``)
    velocity_mark: int | None = None


# Merchant and terminal counters nobody asked for in this long (no rule read them) are read
# afresh from the last hour when asked again, rather than caught up on (store.*_acceptors)
ACCEPTOR_STALE_S = 300.0
ATC_WINDOW_S = 3 * 86400.0  # how long a used ATC is remembered (older cryptograms: chip.date)
ATC_REPLAY = "chip.atc_replay"  # a counter the card used already, or one below its newest
ATC_JUMP = "chip.atc_jump"  # a counter further ahead of the card's newest than the limit
# How long the authentication (ATN) of a 3-D Secure value an approval used is remembered: a
# CAVV is good for the one purchase it was made for, and merchants that reuse one (a second
# order, a fraudster who copied it) do so within days
CAVV_WINDOW_S = 90 * 86400.0
CAVV_REUSED = "3ds.cavv_reused"  # the CAVV's authentication was used by an earlier approval


PIN_CHANGE_CONFLICT = "pin.change_conflict"
# a retransmitted PIN change whose new PIN (field 125) is not the card's: a guess, counted
PIN_CHANGE_REPLAY_WRONG = "pin.change_replay_wrong"


def refused_outcome(entry: JournalEntry, response_code: str, reason: str) -> dict[str, object]:
    """The journal fields a store writes over ``entry`` when its write refuses it: the
    decline, no approval code, nothing moved, and why (after the pipeline's reasons)."""
    return {
        "response_code": response_code,
        "approval_code": "",
        "hold_amount": 0,
        "balance_delta": 0,
        "reason_codes": ";".join(r for r in (entry.reason_codes, reason) if r),
    }


def pin_change_conflict_outcome(entry: JournalEntry) -> dict[str, object]:
    """What a store records when a PIN change found the card changed since its snapshot (two
    requests on one card at once): 96, try again; the PIN is not changed."""
    return refused_outcome(entry, "96", PIN_CHANGE_CONFLICT)


PIN_LOCKED_MEANWHILE = "pin.locked_meanwhile"


def pin_locked_outcome(entry: JournalEntry) -> dict[str, object]:
    """What a store records when a request's right PIN meets a counter that wrong PINs
    committed since its snapshot brought to the limit (guesses sent together): 75, nothing
    moves."""
    return refused_outcome(entry, "75", PIN_LOCKED_MEANWHILE)


def cavv_reused_outcome(entry: JournalEntry) -> dict[str, object]:
    """What a store records when an approval's 3-D Secure value was used by an earlier
    approval of the card: 05, nothing moves (the value verified: ``cavv_result`` stays)."""
    return refused_outcome(entry, "05", CAVV_REUSED)


# the movement would take the account's balance or holds beyond BALANCE_BOUND: 61, nothing moves
BALANCE_BOUND_REASON = "funds.balance_bound"


def balance_bound_outcome(entry: JournalEntry) -> dict[str, object]:
    """What a store records when the money the request moves would take its account's
    balance (either way) or holds beyond ``BALANCE_BOUND`` (a refund to an account holding
    the most it may, a forced post past the most it may owe): 61, nothing moves."""
    return refused_outcome(entry, "61", BALANCE_BOUND_REASON)


def atc_refused_outcome(entry: JournalEntry, reason: str = ATC_REPLAY) -> dict[str, object]:
    """What a store records instead when it refuses ``entry``'s chip counter (``reason``): a
    decline (82) if it was an approval, and the reason either way. Nothing moves."""
    refused = entry.response_code in ("00", "10", "85")
    return {
        "response_code": "82" if refused else entry.response_code,
        "approval_code": "" if refused else entry.approval_code,
        "hold_amount": 0,
        "balance_delta": 0,
        "reason_codes": ";".join(r for r in (entry.reason_codes, reason) if r),
    }


class MoneyMove(StrEnum):
    HOLD = "hold"  # open-to-buy reduced by a hold (0100)
    POST = "post"  # balance changed directly (0200, advices)
    CREDIT = "credit"  # refund: money back to the cardholder
    RELEASE = "release"  # reversal: release (or un-post) part or all of a Hold


@dataclass(frozen=True, slots=True)
class Movement:
    account_id: str
    kind: MoneyMove
    amount_minor: int
    require_funds: bool = True  # re-check open-to-buy atomically (False for advices)
    match_key: str = ""  # RELEASE: the Hold to release (the original's journal match_key)
    # RELEASE of a partial reversal: what the hold must keep (field 95's amount). The write
    # releases at most what it holds beyond that, so two copies of one partial reversal
    # decided on one snapshot (an 0400 and its 0420 together) release it once
    keep_minor: int = 0
    # POST of a completion (0220 naming its pre-authorisation in field 90): the match_key of the
    # Hold it completes; the same write releases what that hold still holds
    completes: str = ""
    # a completion that is not the last of its pre-authorisation (a split shipment: field 48
    # SE 62): it releases only as much as it posts, the rest stays held for the next one
    completes_in_part: bool = False
    # HOLD of an incremental authorisation (an 0100 naming an open pre-authorisation in field
    # 90): the match key of that pre-authorisation, whose hold grows by this amount, so that its
    # completion, reversal or expiry releases the increments with it. When it is closed by the
    # time of the write, the increment is held on its own
    extends: str = ""
    # HOLD: how much longer than [auth] hold_days the hold lives, in seconds (lodging, car
    # rental, cruise: the networks' extended authorisation; see auth.hold_life)
    extra_life_s: float = 0.0


@dataclass(slots=True)
class Commit:
    """The one write of an authorisation: journal entry, money, PIN tries. The card's velocity
    event is the journal entry itself (``models.context.event_from_entry``)."""

    journal: JournalEntry
    movement: Movement | None = None
    card_id: str = ""
    # the card's wrong-PIN counter, changed in the write itself (never a value read before it:
    # wrong PINs sent together must each count): a wrong PIN adds one; a right PIN is refused
    # when the counter reached ``pin_limit`` meanwhile (``CommitResult.pin_locked``: 75,
    # nothing moves), else resets it
    pin_wrong: bool = False
    pin_limit: int = 0  # a right PIN: the tries limit it was checked under (0: no PIN checked)
    # the application transaction counter of the chip cryptogram this request carried: a card
    # never uses one twice, so a counter the card has used in the last ATC_WINDOW_S is a
    # replayed cryptogram and the write refuses it (``CommitResult.atc_replay``)
    atc: int | None = None
    # how far ahead of the card's newest counter this one may be (0: no limit). A counter
    # further ahead is refused too (``CommitResult.atc_jump``): cryptograms made in advance
    # for counters the card has not reached (pre-play), or a card's counter run up
    atc_jump_limit: int = 0
    # a PIN change: the card as it is to be stored (its new PIN reference, no wrong tries),
    # written only if the card is still at ``version`` (else ``CommitResult.pin_change_conflict``)
    changed_card: Card | None = None
    # the card without the issuer script commands this answer delivers: written if the card
    # is still at ``version``, else left as it is (the commands go with the next answer)
    delivered_card: Card | None = None
    # ``delivered_card`` must be written (a reversal's: a PIN change undone, a PIN unblock
    # or the reversed answer's chip scripts queued again): when the card is no longer at its
    # ``version`` (or gone), nothing is written, not even the journal entry or the money, and
    # the result is ``stale`` (the caller decides the request again on the card as it is)
    card_required: bool = False
    # an approval with a verified 3-D Secure value: its authentication tracking number. The
    # card's approvals in the last CAVV_WINDOW_S used each their own, so one used already is
    # refused (``CommitResult.cavv_reused``) and one whose money moves is remembered
    cavv_atn: str = ""
    # the snapshot's ``velocity_mark``, for a decision that another request of the card
    # committed meanwhile could change (limits that add requests up, a reversal that found no
    # original): when the card has velocity events beyond it, nothing is written and the
    # result is ``stale`` (the caller decides the request again on a new snapshot). None:
    # no check
    velocity_mark: int | None = None


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What happened. ``funds_ok`` False: the re-check failed, nothing moved, journal says 51."""

    journal: JournalEntry  # as stored (response code possibly changed to 51)
    funds_ok: bool = True
    # the account after the commit (for a duplicate, as it is now, when the store read it)
    account: Account | None = None
    duplicate_of: JournalEntry | None = None  # the same transmission's entry: nothing written
    # the card used this ATC already, or a higher one: nothing moved, journal says 82
    atc_replay: bool = False
    atc_jump: bool = False  # the ATC is too far ahead of the card's newest: nothing moved, 82
    # a PIN change found the card changed since its snapshot: the PIN stays, journal says 96
    pin_change_conflict: bool = False
    # the 3-D Secure value's authentication was used by an earlier approval: nothing moved, 05
    cavv_reused: bool = False
    # a right PIN, but wrong ones committed meanwhile locked the card: nothing moved, 75
    pin_locked: bool = False
    # the movement would take the account's balance or holds beyond BALANCE_BOUND: nothing
    # moved, journal says 61 (``balance_bound_outcome``); ``account`` is the account as it is
    balance_bound: bool = False
    # the card had velocity events beyond the commit's ``velocity_mark``, or a required card
    # change (``Commit.card_required``) found the card changed since its snapshot: nothing
    # was written, not even the journal entry; the request is to be decided again
    stale: bool = False


# the journal is the velocity counters' history (30 days) and holds are what reversals and
# completions find (hold_days): what is younger than this is never pruned
JOURNAL_MIN_KEEP_DAYS = 35


@dataclass(frozen=True, slots=True)
class FundsChanged:
    """What ``change_funds`` did: the account just after the change (the first time, for a
    repeated key) and the request the key was first used with."""

    account: Account
    fingerprint: str
    repeated: bool  # the key had been used: nothing changed this time


# How many times in a row a store whose write of an account and its audit entry is a
# compare-and-set (Redis) makes the entry again because the account's balance or credit limit
# moved between its read and its write (another write on the account landed in that
# millisecond), before it gives up: ``StoreUnavailable``, nothing written, to be tried again.
ACCOUNT_AUDIT_TRIES = 50

# ``put_product``'s expected version for a product being created: written only if no product
# has its id (else ``Conflict``), so two creates of one id at once cannot both succeed
NEW_PRODUCT = -1


class LedgerRefused(Conflict):
    """A ledger balance sync that would set a wrong balance: nothing changed (the message
    says why: an older cursor than one applied, a pruned journal, an entry without its
    balance effect)."""


# A ledger sync adds up the account's entries after its cursor in one atomic step: a ledger
# this far behind (more entries than a busy account makes in weeks) syncs through a later one
LEDGER_MAX_AFTER = 100_000


def ledger_refusal(
    through_id: int,
    applied: int | None,
    pruned: int | None,
    unknown: int | None,
    entries_after: int = 0,
    most_after: int = LEDGER_MAX_AFTER,
) -> str:
    """Why a ledger sync through ``through_id`` would set a wrong balance, or take too long
    ("" if neither): ``applied`` the cursor of the account's last sync, ``pruned`` the newest
    journal id retention deleted, ``unknown`` the first entry after the cursor without its
    effect, ``entries_after`` how many entries the account has after the cursor."""
    if entries_after > most_after:
        return (
            f"the account has more than {most_after:,} journal entries after "
            f"{through_id}: sync through a later id"
        )
    if applied is not None and through_id < applied:
        return (
            f"a ledger balance through journal id {applied} was applied already: "
            f"one through {through_id} is older"
        )
    if pruned is not None and through_id < pruned:
        return (
            f"the journal is pruned through id {pruned}: the entries after {through_id} "
            "are no longer all there to add"
        )
    if unknown is not None:
        return (
            f"journal id {unknown} was written before entries recorded their balance effect: "
            "sync through it or a later id"
        )
    return ""


@dataclass(frozen=True, slots=True)
class LedgerState:
    """An account's last ledger balance sync: where the bank's ledger and the host agreed."""

    through_id: int  # the journal id the bank's ledger balance was through
    ledger_balance: int
    synced_at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class LedgerSync:
    """What ``sync_ledger`` did: the bank's ledger balance through a journal id, plus what
    the host's own entries after that id added, is the account's balance now."""

    account: Account  # after the sync
    state: LedgerState  # the sync itself, as ``ledger_state`` reads it from now on
    after_minor: int  # what the entries after the cursor added to the balance
    entries_after: int  # how many of them moved the balance


@dataclass(frozen=True, slots=True)
class IdCounters:
    """The last journal id and fraud report id a store handed out: the feeds' cursors are
    these ids, so a counter below a consumer's cursor hands its ids out again."""

    journal: int
    fraud_reports: int


@dataclass(frozen=True, slots=True)
class Pruned:
    """What ``prune_journal`` deleted."""

    entries: int = 0
    holds: int = 0


@dataclass(frozen=True, slots=True)
class JournalQuery:
    card_id: str = ""
    account_id: str = ""
    since: float = 0.0
    until: float = float("inf")
    limit: int = 100
    after_id: int = 0  # paging
    review_only: bool = False  # only entries the rules flagged for review (the review queue)
    merchant_id: str = ""  # only this merchant's (field 42): a merchant under investigation
    approval_code: str = ""  # only entries with this approval code: what clearing matches by
    rrn: str = ""  # only entries with this retrieval reference (field 37): a switch's enquiry
    # only the completions of this hold (JournalEntry.completes, its match key): clearing's
    # link from a pre-authorisation to the 0220 that posted it under a code of its own
    completes: str = ""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a named lease (``CardStore.lease_of``): its owner, when that owner took it
    (a renewal keeps the time) and when it ends unless renewed, epoch seconds."""

    name: str
    owner: str
    since: float
    expires_at: float


class CardStore(Protocol):
    # The exceptions of the backend's own library (sqlite3's, coredis's and the link's) that
    # say the store failed rather than the request being wrong: the admin API answers them
    # 503, as it does StoreUnavailable, instead of a 500.
    backend_errors: tuple[type[BaseException], ...]

    # --- authorisation path -------------------------------------------------------------
    async def snapshot(self, query: SnapshotQuery) -> Snapshot: ...

    async def commit(self, commit: Commit) -> CommitResult: ...

    # Requests that arrived together (see AuthService.decide_many): one result per query or
    # commit, in order, or the exception that one raised; a failure never affects the others.
    async def snapshot_many(
        self, queries: Sequence[SnapshotQuery]
    ) -> list[Snapshot | Exception]: ...

    async def commit_many(self, commits: Sequence[Commit]) -> list[CommitResult | Exception]: ...

    # Read the last hour of every merchant's and terminal's requests into this process's
    # counters (cards.acceptor_velocity), before serving; returns how many events were read.
    # Without it, the first snapshots that ask carry no acceptor counts.
    async def prepare_acceptor_counters(self, now: float) -> int: ...

    # Bring the counters up to date without a request (the server calls it every minute while
    # a rule reads them), so that a quiet spell does not make them stale and read afresh.
    async def follow_acceptor_counters(self, now: float) -> None: ...

    # This process's merchant and terminal counters: what they hold, and whether it follows them
    def acceptor_stats(self) -> AcceptorStats: ...

    # The merchant and terminal counters of the last hour before ``now``, read afresh from the
    # store's history whether or not this process follows them, with each merchant's name (the
    # admin's busiest acceptors).
    async def read_acceptor_counters(self, now: float) -> AcceptorReading: ...

    # --- products and accounts ----------------------------------------------------------
    async def put_product(
        self,
        product: Product,
        expected_version: int | None = None,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """Create or replace the product; with ``expected_version``, replace it only if the
        stored one is still at that version (else ``Conflict``: someone changed it since);
        with ``NEW_PRODUCT``, create it only if none has its id (else ``Conflict``).
        ``audit``: the change's entry, appended (chained with ``seal``) only if the product is
        written, in the same atomic step as ``update_card``'s."""
        ...

    async def get_product(self, product_id: str) -> Product | None: ...

    async def list_products(self) -> list[Product]: ...

    async def create_account(
        self, account: Account, audit: AuditEntry | None = None, seal: AuditSealer | None = None
    ) -> None:
        """Create the account; ``Conflict`` when one has its id (nothing written). ``audit``:
        the creation's entry, appended (chained with ``seal``) only if the account is created,
        in the same atomic step as ``update_card``'s."""
        ...

    async def get_account(self, account_id: str) -> Account | None: ...

    async def health_read(self) -> None:
        """A cheap read, made once a second for ``/readyz``; raises when the store cannot
        serve: unreachable, or (Redis) restarted without this store's data."""
        ...

    async def list_accounts(self, limit: int = 100, offset: int = 0) -> list[Account]: ...

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
        """Add ``delta_minor`` to the balance in one atomic step: refused (``InsufficientFunds``)
        when it lowers the open-to-buy below zero, against the holds of that moment, and
        (``BeyondBound``) when it takes the balance beyond ``BALANCE_BOUND`` either way. With
        ``key``, at most once per key on this account: the change and the key's record
        (``fingerprint``, the account after) are written together, so a retried load never
        moves money twice, even across a crash; a key used before changes nothing and
        returns its record (``repeated``). The record is a request's result: the idempotency
        retention (``prune_idempotency``) deletes it with the others.

        ``audit`` makes the change's entry from the account as the change finds it
        (``AccountAudit``); the entry is appended (chained with ``seal``) only when money
        moves: not for a refusal, nor for a key used before. In the same transaction on
        SQLite; in the same script on a single Redis, which refuses to write when the
        account's balance or credit limit, or the chain's head, moved since the store read
        them (it then reads them again, makes the entry again and sends it again; after
        ``ACCOUNT_AUDIT_TRIES`` moves in a row, ``StoreUnavailable``, nothing written); on
        Redis Cluster right after the change (the account and the audit log are in different
        hash slots, which no script spans): a crash between them loses the entry. The same
        holds for ``set_credit_limit`` and ``sync_ledger``."""
        ...

    async def funds_change_of(self, account_id: str, key: str) -> FundsChanged | None:
        """The record of the account's funds change made with ``key`` (``repeated``), or None
        when none was: what ``change_funds`` would answer a repeat with, without writing."""
        ...

    async def sync_ledger(
        self,
        account_id: str,
        ledger_balance: int,
        through_id: int,
        now: float,
        audit: AccountAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> LedgerSync:
        """Set the balance to the bank's ``ledger_balance``, which has every movement of the
        journal up to ``through_id`` in it, plus the ``balance_delta`` of the account's entries
        after it, in one atomic step with the authorisations' commits (an entry landing later
        adds its own). ``LedgerRefused`` when ``through_id`` is older than one applied before,
        when retention pruned entries after it, or when an entry after it was journalled
        without its balance effect; ``BeyondBound`` when the balance would be beyond
        ``BALANCE_BOUND`` either way (nothing changed). ``audit``, ``seal``: as
        ``change_funds``'s (no entry when it is refused)."""
        ...

    async def ledger_state(self, account_id: str) -> LedgerState | None:
        """The account's last ledger balance sync (None: never synchronised)."""
        ...

    async def set_credit_limit(
        self,
        account_id: str,
        credit_limit: int,
        audit: AccountAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> Account:
        """Set the account's credit limit (a debit account's arranged overdraft); the account
        after. ``audit``, ``seal``: as ``change_funds``'s."""
        ...

    # --- cards ----------------------------------------------------------------------------
    async def create_card(
        self,
        card: Card,
        pan_ciphertext: bytes,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """Raise Conflict if a card with the same pan_index or card_id exists (PANs are never
        reused across products; a replacement with the same PAN is ``replace_card``'s).
        ``audit``: the issue's entry, appended (chained with ``seal``) only if the card is
        created, in the same atomic step as ``update_card``'s."""
        ...

    async def get_card(self, card_id: str) -> Card | None: ...

    async def find_card(self, pan_index: str) -> Card | None:
        """The card a PAN means when several share it (renewal, damaged card): the newest that
        has been activated, else the newest (``cards.lifecycle.is_current_over``)."""
        ...

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
        """Cards in issue order. ``last4``: only those whose PAN ends so; ``name``: only those
        whose cardholder name holds it (ASCII letters matched in either case): how a support
        desk finds a caller's card without the full PAN (``cards.model.name_matches``)."""
        ...

    async def last_used(self, card: Card) -> float | None:
        """When the card's newest journal entry was made (any request, approved or not);
        None when its journal holds none (never used, or pruned)."""
        ...

    async def update_card(
        self,
        card: Card,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
        more: Sequence[AuditEntry] = (),
    ) -> Card:
        """Store ``card`` if the stored version equals ``card.version``; return it with
        version + 1. Raise Conflict otherwise (someone else changed it). ``audit``: the
        change's audit entry, appended (chained with ``seal``) only if the card is written:
        in the same transaction on SQLite and the same script on a single Redis (a crash
        keeps both or neither), right after it on Redis Cluster (the card and the audit log
        live in different hash slots, which no script spans). ``more``: further entries on
        the card (its subject, else ``StoreError``), appended after ``audit`` in the same
        step (the wallet events of the tokens a lifecycle change moved)."""
        ...

    async def replace_card(
        self,
        old: Card,
        new: Card,
        pan_ciphertext: bytes,
        audit: tuple[AuditEntry, AuditEntry] | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """Atomically store ``old`` (linked, in its state) and insert ``new``. ``new`` may have
        the same pan_index as ``old`` (renewal, damaged): the PAN then means ``new`` once it is
        activated (see ``find_card``). ``audit``: the old card's entry and the new card's
        issue entry, appended in that order (chained with ``seal``) only if both cards are
        written, in the same atomic step as ``update_card``'s."""
        ...

    async def claim_token(
        self, token_ref: str, card_id: str, now: float, replacing: str = ""
    ) -> TokenHolder:
        """Make ``card_id`` the holder of the wallet token ``token_ref`` (its keyed index) since
        ``now`` when no card holds it, or ``replacing`` does (a holder found to have it no
        more); return the holder after, in one atomic step: of two registrations at once, one
        wins."""
        ...

    async def release_token(self, token_ref: str, card_id: str) -> None:
        """Drop ``card_id``'s hold on ``token_ref`` (its registration was not written)."""
        ...

    async def pan_ciphertext(self, card_id: str) -> bytes: ...

    async def reseal_pan(self, card_id: str, old: bytes, new: bytes) -> bool:
        """Replace the card's PAN ciphertext ``old`` by ``new`` (the same PAN under the newest
        PAN data key) if it is still ``old``; False when it changed meanwhile. NotFound for an
        unknown card."""
        ...

    # --- journal, audit, lists, idempotency ------------------------------------------------
    async def journal(self, query: JournalQuery) -> list[JournalEntry]: ...

    def export_journal(self, query: JournalQuery) -> AsyncIterator[JournalEntry]: ...

    async def set_journal_arn(self, entry: JournalEntry, arn: str) -> bool:
        """Record a clearing presentment's full ARN on its journalled 0220 (``entry``: read
        back from the store, so its id and account are the stored ones); False when the entry
        is gone (pruned). The clearing import's own write after the 0220 is decided: the
        authorisation path never calls it, and no other field of the entry changes."""
        ...

    async def set_journal_completes(self, entry: JournalEntry, completes: str) -> bool:
        """Record on a completion journalled before its link was (``entry``: read back from
        the store) the match key of the hold it completed (``admin.completion_links``); False
        when the entry is gone. As ``set_journal_arn``: no other field changes."""
        ...

    async def card_journal_newest(
        self, card_id: str, before_id: int = 0, limit: int = 100
    ) -> list[JournalEntry]:
        """The card's journal entries with a journal id below ``before_id`` (0: from its
        newest), the highest id first, at most ``limit``: a card's history read back from
        its newest entry a page at a time (the next page: ``before_id`` = the page's last
        entry's id), through the store's index of the card's entries (SQLite
        ``journal_by_card``, Redis the card's ``jcard`` sorted set), so a page costs what it
        holds, however long the history. Ids are in write order, which is time (``ts``)
        order only up to ``JOURNAL_ID_LAG_S``; ``limit=1`` is a seek (the newest entry
        below an id) as cheap as a page. The entries of the card's current account (as
        ``JournalQuery(card_id=...)`` reads them)."""
        ...

    async def append_audit(self, entry: AuditEntry, seal: AuditSealer | None = None) -> None:
        """Append the entry; with ``seal``, chained to the newest entry in the same atomic
        step (``seal.seal(the newest entry's chain value or "", entry.sealed_fields())``), so
        that writers in several processes still make one chain."""
        ...

    async def put_fraud_report(
        self,
        report: FraudReport,
        audit: FraudReportAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """Record what became known about a journal entry (fraud or genuine), replacing an
        earlier report on it. The caller checks that the entry exists. ``audit`` makes the
        report's entry from the report it replaces, appended (chained with ``seal``) in the
        same atomic step as ``update_card``'s: in the write's transaction on SQLite; on a
        single Redis in its script, written only if the entry's report is still the one read
        (else read again and made again, ``ACCOUNT_AUDIT_TRIES`` times at most, as
        ``put_list``); on Redis Cluster right after the write."""
        ...

    async def open_dispute(
        self, dispute: Dispute, audit: AuditEntry | None = None, seal: AuditSealer | None = None
    ) -> None:
        """Record a new dispute; Conflict when its journal entry has one already (nothing
        written). ``audit``: the opening's entry (``dispute.open``), appended (chained with
        ``seal``) only if the dispute is recorded, in the same atomic step as
        ``update_card``'s: the write's transaction on SQLite, its script on a single Redis,
        right after it on Redis Cluster (the disputes and the audit log are in different
        hash slots)."""
        ...

    async def update_dispute(
        self,
        dispute: Dispute,
        expected_version: int | None = None,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """Store the dispute's new state (same dispute_id, same journal entry). With
        ``expected_version``, only if the stored dispute is still at that version (a
        compare-and-set, in one atomic step): ``Conflict`` when another change was written
        since, ``NotFound`` when there is no such dispute. ``audit``: the change's entry (a
        ``dispute.*`` step), appended (chained with ``seal``) only if the dispute is written,
        in the same atomic step as ``open_dispute``'s. The entry is made before the write
        from the version it expects: a write refused for another version appends none."""
        ...

    async def get_dispute(self, dispute_id: str) -> Dispute | None: ...

    async def dispute_of_entry(self, journal_id: int) -> Dispute | None:
        """The dispute of this journal entry (there is at most one), by the store's own
        index: finding it must not read every dispute ever opened."""
        ...

    async def disputes_of_card(self, card_id: str) -> list[Dispute]:
        """Every dispute of the card's charges (a card has few), in id order (oldest
        first), by the store's own index of disputes by card (SQLite ``disputes_by_card``,
        Redis ``{disputes}:card``): not every dispute ever opened, nor the card's journal."""
        ...

    async def disputes(self, state: str = "", limit: int = 100, after: str = "") -> list[Dispute]:
        """Disputes (in ``state`` if given) in id order, oldest first, after ``after``."""
        ...

    async def fraud_reports(self, after_id: int = 0, limit: int = 1000) -> list[FraudReport]:
        """Reports in the order they were written (``report_id``), those after ``after_id``
        (paging): a late report, or one that replaced another, comes after a consumer's
        cursor rather than at its journal entry's place behind it."""
        ...

    async def fraud_reports_of(self, journal_ids: Sequence[int]) -> dict[int, FraudReport]:
        """The reports on these entries, by journal id (those without one are left out)."""
        ...

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
        """Entries oldest first after ``after_id``; with ``newest_first``, newest first
        before ``before_id`` (0: from the newest), so that today's writes are the first page
        of a log of millions. ``actor``: only the entries this token name or CLI user wrote
        (a team lead reviewing one agent's day); not indexed: the log is read until ``limit``
        of them are found."""
        ...

    async def get_list(self, name: str) -> frozenset[str]: ...

    async def put_list(
        self,
        name: str,
        values: Sequence[str],
        audit: ListAudit | None = None,
        seal: AuditSealer | None = None,
    ) -> None:
        """Make ``values`` the list's whole content. ``audit`` makes the change's entry from
        the values the write replaces (``ListAudit``), appended (chained with ``seal``) in the
        same atomic step as ``update_card``'s: in the write's transaction on SQLite; on a
        single Redis in its script, which writes only if the list still holds the values the
        entry was made from (else it reads them again and makes the entry again, as
        ``change_funds`` does with an account, ``ACCOUNT_AUDIT_TRIES`` times at most); on
        Redis Cluster right after the write."""
        ...

    async def list_names(self) -> list[str]: ...

    async def idempotent_result(self, key: str) -> str | None:
        """The stored response (JSON text) of an earlier create with this key, if any, or the
        marker ``put_marker`` keeps under it."""
        ...

    async def reserve_result(self, key: str, placeholder_json: str) -> str | None:
        """Keep ``placeholder_json`` (it starts with ``PENDING_PREFIX``) under ``key`` unless
        something is there: None when kept (the caller does the work, in any process), else
        what is there (another's result, or its placeholder while it works). Placeholders and
        results are a request's, with the time they were written: ``prune_idempotency``
        deletes them once older than its cut."""
        ...

    async def remember_result(self, key: str, result_json: str) -> None:
        """Store the result under ``key`` over its placeholder (or where nothing is), aged from
        now; a result already stored stays (the first result wins), and so does a marker."""
        ...

    async def forget_reservation(self, key: str) -> None:
        """Remove ``key``'s placeholder (the work failed and may be asked for again); a stored
        result stays."""
        ...

    async def put_marker(
        self,
        key: str,
        value_json: str,
        audit: AuditEntry | None = None,
        seal: AuditSealer | None = None,
    ) -> str | None:
        """Keep ``value_json`` under ``key`` for good, unless something is there: None when
        kept, else what is there. A marker is read with ``idempotent_result`` like a result,
        but ``prune_idempotency`` never deletes it (an account's closure). ``audit``: the
        marker's entry, appended (chained with ``seal``) only if the marker is kept, in the
        same atomic step as ``update_card``'s."""
        ...

    async def keep_result(self, key: str) -> bool:
        """Make the result stored under ``key`` a marker, kept for good (the demo's creates,
        by which the demo finds its data again); False when no result is there (nothing, or
        a placeholder)."""
        ...

    async def prune_idempotency(
        self, before: float, audit: BatchAudit | None = None, seal: AuditSealer | None = None
    ) -> int:
        """Delete the idempotency results stored before ``before``; returns how many. With
        ``audit``, each batch that deletes any is written with its entry (``results``),
        chained with ``seal``: one transaction on SQLite, one script on a single Redis (on a
        Redis Cluster, entries after the writes they count).

        What goes: a request's result (``remember_result``, a funds change's record written
        with its key) last written before ``before``, and a placeholder (``reserve_result``)
        reserved before it: a request interrupted that long ago that nobody will wait for.
        What stays: anything written since ``before`` (a placeholder younger than it may be
        a request at work), and every marker (``put_marker``, ``keep_result``), whatever its
        age. A repeat of a pruned request is then a new request.

        How a store tells them apart: it is told when it writes. A result is written as
        prunable, with its time; a marker is not. What was stored before the store knew the
        difference (or by an older process since) is kept, except that the first retention
        sorts it out once by its key: ``LEGACY_MARKER_PREFIXES`` are markers, the rest results
        of unknown age, counted from then (SQLite: migration 37 sets the ``prunable`` column;
        Redis: the first run indexes them). A key's name cannot make it a marker, so a
        client's own key can never make its result permanent. SQLite deletes in batches
        (``PRUNE_BATCH`` a write transaction), Redis a page at a time by the age indexes
        (the ``{i}`` slot's, each account's for funds changes), so others wait for one batch
        at most. ``before`` must be older than any client's retry window
        (``IDEMPOTENCY_MIN_KEEP_DAYS``)."""
        ...

    async def put_intent(self, kind: str, subject: str, data_json: str) -> None:
        """Record work about to begin (``Intent``), over an earlier one of the same kind and
        subject (with the time of this one)."""
        ...

    async def intents(self, kind: str, before: float) -> list[Intent]:
        """The ``kind``'s intents written before ``before`` (older ones first): work begun
        that long ago and not finished is work a crash cut short, not work in progress."""
        ...

    async def drop_intent(self, kind: str, subject: str, ts: float | None = None) -> None:
        """Forget an intent: its work is done. With ``ts``, only the intent written then (a
        finisher must not drop the intent of the same work begun again since it read it)."""
        ...

    # --- leases: one holder at a time of a named piece of work, across processes -------------
    async def take_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take the lease ``name`` for ``owner`` for ``ttl_s`` seconds, or renew it when
        ``owner`` holds it already (the time it was taken stays): True. False, changing
        nothing, when another owner holds it unexpired. Atomic in the store, so it holds
        between processes and machines sharing the store (``serve --workers``, the CLI beside
        a server), which a lock in one process cannot. It expires by itself: a holder that
        dies (killed, crashed, its machine gone) blocks the work for ``ttl_s`` at most, so a
        holder renews it well within ``ttl_s`` while it works."""
        ...

    async def drop_lease(self, name: str, owner: str) -> None:
        """End ``owner``'s lease ``name`` at once (the work is over) so the next holder need
        not wait for its expiry. Only the owner's own: a holder whose lease expired and was
        taken by another must not end the other's."""
        ...

    async def lease_of(self, name: str) -> Lease | None:
        """Who holds the lease ``name`` now (None: nobody, or expired): for the message of the
        one refused it (since when the work runs, and whose it is)."""
        ...

    async def close(self) -> None: ...

    # --- operations (added by the store) -----------------------------------------------------
    def info(self) -> StoreInfo:
        """Backend name and whether several processes may share it (``serve --workers``)."""
        ...

    async def open_holds(self, account_id: str) -> list[OpenHold]:
        """The account's holds that still hold money, oldest first (increments counted in
        their pre-authorisation's); for the support desk, not the authorisation path."""
        ...

    async def hold_of(self, account_id: str, match_key: str) -> Hold | None:
        """The account's hold (or posted amount) under ``match_key`` as the store keeps it,
        open or not (None: none, or pruned): an increment's names its pre-authorisation
        (``parent``), which its journal entry does not. For the back office (the clearing
        import), not the authorisation path."""
        ...

    async def expire_holds(self, older_than: float, shorter_by: float = 0.0) -> int:
        """Release authorisation holds whose life is over: created before ``older_than``
        (now - hold_days) moved by their own ``extra_life_s``, which a hotel's makes later
        and a fuel pump's earlier (by up to ``shorter_by`` seconds, how far past the cutoff
        to look), and that no reversal or completion released; posted amounts stay. Returns
        how many."""
        ...

    async def journal_pruned_through(self) -> int:
        """The newest journal id retention deleted (0: none): a feed cursor below it lost
        entries to ``prune_journal``. One read (a row on SQLite, a GET on Redis)."""
        ...

    async def newest_journal_id(self) -> int:
        """The highest journal id the store holds (0: none), settled or not: a feed cursor
        beyond it names entries this store never wrote. A read of the index's end (on a
        Redis Cluster, one per account)."""
        ...

    async def last_journal_id(self) -> int:
        """The last journal id handed out (0: none): the counter, which Redis reserves a
        block at a time, so up to a block per process above the newest entry. A feed cursor
        beyond it is another store's, or one a restore took the counter back under (its
        next ids would be handed out again below it). One read, on a Redis Cluster too."""
        ...

    async def newest_fraud_report_id(self) -> int:
        """The last fraud report id handed out (0: none), whether or not its report is still
        there (replaced, pruned): a report cursor beyond it is another store's."""
        ...

    async def raise_counters(self, journal: int, fraud_reports: int) -> IdCounters:
        """Raise the last journal id and fraud report id handed out to at least these, never
        lower (a Redis dump restore took them back below the feeds' cursors); the values
        after. Processes opened before keep the block of ids they reserved: run it with the
        servers stopped."""
        ...

    async def prune_journal(
        self, before: float, audit: BatchAudit | None = None, seal: AuditSealer | None = None
    ) -> Pruned:
        """Delete the journal entries older than ``before`` (and their duplicate-transmission
        index entries and fraud reports) and the holds created before it that hold nothing
        any more (posted, released, increments); open holds stay. In batches, so the
        authorisations going on meanwhile wait for one batch at most. ``before`` must be
        older than what velocity counters and reversals still need
        (``JOURNAL_MIN_KEEP_DAYS``). With ``audit``, each batch that deletes any is written
        with its entry (``entries``, ``holds``), chained with ``seal``: one transaction on
        SQLite, one script on a single Redis (on a Redis Cluster, entries after the writes
        they count)."""
        ...


@dataclass(frozen=True, slots=True)
class Intent:
    """Work begun in several writes that a crash may cut short (``put_intent``): written
    before the first of them and dropped after the last, so that what a crash left half done
    is found and finished (``intents``) instead of staying half done unnoticed."""

    kind: str  # what the work is ("activation"): who finishes it
    subject: str  # which one (a card id): one intent per kind and subject
    data: str  # JSON: what the finisher needs to know
    ts: float  # when it was written (epoch seconds)


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """What a backend supports (shown by ``authhost serve`` at start-up)."""

    backend: str
    shared_between_processes: bool
    notes: list[str] = field(default_factory=list)


EXPORT_PAGE = 2000

# An entry's ``ts`` is when its request arrived, its journal id is taken when it is written:
# an entry with a higher id is never older than one with a lower id by more than this, on
# either store. SQLite takes the id at the insert: within the request's deadline (200 ms by
# default), plus the wait for the file's write lock, which gives up at the 30 s busy timeout.
# Redis takes it at the commit's start (within the deadline) from a block of ids its process
# reserved at most ``ID_BLOCK_LIFE_S`` (0.5 s) before, and the ``ts`` of processes on other
# machines differ by their clocks' skew besides. Who reads a card's journal newest first by
# id (``card_journal_newest``) and wants it by time reads this much further back (the card
# timeline, ``admin.service.timeline``).
JOURNAL_ID_LAG_S = 60.0


async def journal_pages(
    read: Callable[[JournalQuery], Awaitable[list[JournalEntry]]], query: JournalQuery
) -> AsyncIterator[JournalEntry]:
    """Every entry matching ``query`` in journal id order, read ``EXPORT_PAGE`` at a time with
    a backend's ``journal`` (``limit`` is ignored): how every backend exports."""
    after = query.after_id
    while True:
        page = await read(replace(query, after_id=after, limit=EXPORT_PAGE))
        for entry in page:
            yield entry
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1].journal_id
