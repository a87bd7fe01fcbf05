"""Redis key design: hash tags put everything one commit touches in ONE slot.

A commit moves money on an account, so the account's tag ``{a:<account_id>}`` is the unit of
atomicity: the account hash, its holds and dedupe index, its journal, and the hot data of its
cards (the card hash with PIN tries and version, the card's velocity events) all carry it.
Several cards of one account therefore share a slot, and a card's data moves slot only when it
is re-linked to another account. Lookups that arrive without the account go through small
pointer keys in their own slots: ``{p:<pan_index>}`` -> current card and account,
``{c:<card_id>}`` -> account. Global, rarely written data (products, lists, audit, the id
sequence, the list of cards and accounts) sit under fixed tags.

Every key starts with the store's prefix (``authhost`` by default; tests use a unique one).
"""

from __future__ import annotations

from dataclasses import dataclass

from authhost.store.interface import StoreError


def _tag_safe(value: str, what: str) -> str:
    if "{" in value or "}" in value:
        raise StoreError(f"{what} may not contain braces")
    return value


@dataclass(frozen=True, slots=True)
class AccountKeys:
    prefix: str
    account_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{a:{_tag_safe(self.account_id, 'an account id')}}}"

    @property
    def account(self) -> str:
        return f"{self.base}:account"

    def card(self, card_id: str) -> str:
        return f"{self.base}:card:{card_id}"

    def velocity(self, card_id: str) -> str:
        """Sorted set of events by time: written before velocity logs; read once per card
        (with the log) when a process first counts it, pruned until empty."""
        return f"{self.base}:vel:{card_id}"

    def chip_atcs(self, card_id: str) -> str:
        """Sorted set of the card's recent chip ATCs, scored by when they were seen."""
        return f"{self.base}:atc:{card_id}"

    def cavv_atns(self, card_id: str) -> str:
        """Sorted set of the 3-D Secure authentications (ATNs) the card's approvals used,
        scored by when."""
        return f"{self.base}:cavv:{card_id}"

    def velocity_log(self, card_id: str) -> str:
        """List of the card's velocity events in commit order (appended, pruned at the head)."""
        return f"{self.base}:vlog:{card_id}"

    def velocity_pruned(self, card_id: str) -> str:
        """How many events were pruned from the head of the log: log position + this = an
        event's number for good, so a process can ask for the events after the ones it counted."""
        return f"{self.base}:vlogoff:{card_id}"

    @property
    def cards(self) -> str:
        return f"{self.base}:cards"

    @property
    def dedupe(self) -> str:
        return f"{self.base}:dedupe"

    def funds_change(self, key: str) -> str:
        """A funds change's idempotency record, in the account's slot: written in the same
        script as the money."""
        return f"{self.base}:funds:{key}"

    @property
    def funds_written(self) -> str:
        """Sorted set of the account's funds-change keys by when each record was written:
        what ``prune_idempotency`` finds the old ones by (written by the same script)."""
        return f"{self.base}:fundswritten"

    @property
    def holds(self) -> str:
        return f"{self.base}:holds"

    @property
    def hold_lives(self) -> str:
        """Hash match key -> seconds a hold lives beyond hold_days (lodging, car rental...);
        only holds that do have one."""
        return f"{self.base}:holdlife"

    @property
    def journal(self) -> str:
        return f"{self.base}:journal"

    @property
    def journal_all(self) -> str:
        return f"{self.base}:jall"

    def journal_card(self, card_id: str) -> str:
        return f"{self.base}:jcard:{card_id}"

    @property
    def journal_review(self) -> str:
        """Sorted set of the account's journal ids the rules flagged for review."""
        return f"{self.base}:jreview"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def account(self, account_id: str) -> AccountKeys:
        return AccountKeys(self.prefix, account_id)

    def pan(self, pan_index: str) -> str:
        return f"{self.prefix}:{{p:{pan_index}}}"

    def token_holder(self, token_ref: str) -> str:
        """The card that registered a wallet token (its keyed index), in its own slot."""
        return f"{self.prefix}:{{t:{token_ref}}}"

    def card_home(self, card_id: str) -> str:
        return f"{self.prefix}:{{c:{_tag_safe(card_id, 'a card id')}}}"

    @property
    def products(self) -> str:
        return f"{self.prefix}:{{g}}:products"

    @property
    def stamp(self) -> str:
        """A random value written when the store is first opened: gone (or another) means
        Redis lost this store's data, which would otherwise read as "no such card"."""
        return f"{self.prefix}:{{g}}:stamp"

    @property
    def accounts(self) -> str:
        return f"{self.prefix}:{{g}}:accounts"

    @property
    def all_cards(self) -> str:
        return f"{self.prefix}:{{g}}:cards"

    @property
    def card_seq(self) -> str:
        return f"{self.prefix}:{{g}}:cardseq"

    @property
    def journal_seq(self) -> str:
        return f"{self.prefix}:{{g}}:journalseq"

    @property
    def journal_cut(self) -> str:
        """The newest journal id retention deleted (``prune_journal`` raises it before it
        deletes): a feed cursor below it missed entries. Every account's hash keeps its own
        (``journal_pruned_through``), which a global feed cannot read at the cost of a GET."""
        return f"{self.prefix}:{{g}}:journalcut"

    @property
    def dedupe_all(self) -> str:
        """Every account's dedupe keys (dedupe key -> 'journal id|journal hash'): a single
        Redis only, where a script may read any key. A cluster keeps them per account."""
        return f"{self.prefix}:{{g}}:dedupe"

    @property
    def journal_global(self) -> str:
        """Every account's journal ids in one index (score the id, member 'id|journal hash'):
        a single Redis only, so that reading the journal in id order across accounts (the
        ledger's and the notification service's feeds, exports) costs a page, not a read of
        every account. A cluster reads each account's index and merges them."""
        return f"{self.prefix}:{{g}}:journal"

    @property
    def acceptor_events(self) -> str:
        """Stream of every process's committed requests as merchant/terminal events, a little
        over an hour of them (store.redis_acceptors)."""
        return f"{self.prefix}:{{acc}}:events"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:{{audit}}:entries"

    @property
    def audit_all(self) -> str:
        return f"{self.prefix}:{{audit}}:all"

    def audit_subject(self, subject: str) -> str:
        return f"{self.prefix}:{{audit}}:s:{subject}"

    @property
    def audit_seq(self) -> str:
        return f"{self.prefix}:{{audit}}:seq"

    @property
    def audit_head(self) -> str:
        """The newest audit entry's chain value (``security.audit_chain``)."""
        return f"{self.prefix}:{{audit}}:head"

    @property
    def fraud_reports(self) -> str:
        """Hash journal id -> report JSON, beside fraud_report_ids (one slot: one MULTI)."""
        return f"{self.prefix}:{{fraud}}:reports"

    @property
    def fraud_report_ids(self) -> str:
        """Sorted set of reported journal ids, scored by their report's report_id (the order
        reports were written in: consumers page on it)."""
        return f"{self.prefix}:{{fraud}}:ids"

    @property
    def fraud_report_seq(self) -> str:
        """The last report_id given (beside the reports: one slot, one script)."""
        return f"{self.prefix}:{{fraud}}:seq"

    @property
    def disputes(self) -> str:
        """Hash dispute id -> dispute JSON, beside disputes_by_entry (one slot)."""
        return f"{self.prefix}:{{disputes}}:all"

    @property
    def open_disputes(self) -> str:
        """Sorted set (all scores 0: by id) of the open disputes' ids, beside disputes."""
        return f"{self.prefix}:{{disputes}}:open"

    @property
    def open_disputes_indexed(self) -> str:
        """Set once ``open_disputes`` holds every open dispute (built from the hash once)."""
        return f"{self.prefix}:{{disputes}}:open:indexed"

    @property
    def dispute_ids(self) -> str:
        """Sorted set (all scores 0: by id) of every dispute's id: the admin's list pages it."""
        return f"{self.prefix}:{{disputes}}:ids"

    @property
    def dispute_ids_indexed(self) -> str:
        """Set once ``dispute_ids`` holds every dispute (built from the hash once)."""
        return f"{self.prefix}:{{disputes}}:ids:indexed"

    @property
    def disputes_by_card(self) -> str:
        """Sorted set (all scores 0: by member) of "card id|dispute id": a card's disputes
        are a range of it (ZRANGEBYLEX), beside disputes (one slot)."""
        return f"{self.prefix}:{{disputes}}:card"

    @property
    def disputes_by_card_indexed(self) -> str:
        """Set once ``disputes_by_card`` holds every dispute (built from the hash once)."""
        return f"{self.prefix}:{{disputes}}:card:indexed"

    @property
    def disputes_by_entry(self) -> str:
        """Hash journal id -> dispute id: one dispute per entry (HSETNX)."""
        return f"{self.prefix}:{{disputes}}:entry"

    @property
    def list_names(self) -> str:
        return f"{self.prefix}:{{lists}}:names"

    def list_values(self, name: str) -> str:
        return f"{self.prefix}:{{lists}}:v:{name}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}:{{i}}:{key}"

    @property
    def idempotency_written(self) -> str:
        """Sorted set of the idempotency keys that hold a request's result or placeholder, by
        when it was written; a marker (``put_marker``, ``keep_result``) is not in it, and so
        is never pruned. Beside the keys (slot ``{i}``: one script writes both), never one of
        them (theirs go on with ":")."""
        return f"{self.prefix}:{{i}}.written"

    @property
    def idempotency_markers(self) -> str:
        """Set of the idempotency keys that hold a marker (``put_marker``, ``keep_result``),
        kept for good: what the first ``prune_idempotency`` leaves out of the index."""
        return f"{self.prefix}:{{i}}.markers"

    @property
    def idempotency_indexed(self) -> str:
        """Set once the keys stored before ``idempotency_written`` (and the accounts'
        ``funds_written``) existed are in them: the first ``prune_idempotency`` scans for them."""
        return f"{self.prefix}:{{i}}.indexed"

    def intents(self, kind: str) -> str:
        """Hash of the ``kind``'s unfinished work (``interface.Intent``): key -> data and time."""
        return f"{self.prefix}:{{intents}}:{kind}"

    def lease(self, name: str) -> str:
        """A lease (``CardStore.take_lease``): the string "since|owner", expiring with it."""
        return f"{self.prefix}:{{lease}}:{name}"
