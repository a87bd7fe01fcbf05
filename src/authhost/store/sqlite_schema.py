"""The SQLite schema, as numbered migrations applied in order (``PRAGMA user_version``).

A migration is appended, never edited: an existing database is brought forward by running the
ones it has not seen, each in its own transaction.
"""

from __future__ import annotations

import sqlite3

from authhost.store.interface import StoreError
from authhost.store.records import JOURNAL_COLUMNS

_JOURNAL_TYPES = {
    "ts": "REAL NOT NULL",
    "amount_minor": "INTEGER NOT NULL",
    "review": "INTEGER NOT NULL",
    "fraud_score": "INTEGER NOT NULL",
    "challenger_score": "INTEGER NOT NULL",
    "model_skipped": "INTEGER NOT NULL",
    "pin_present": "INTEGER NOT NULL",
    "pin_failed": "INTEGER NOT NULL",
    "cvv_failed": "INTEGER NOT NULL",
    "card_age_days": "REAL NOT NULL",
    "available_before": "INTEGER NOT NULL",
    "hold_amount": "INTEGER NOT NULL",
    "latency_us": "INTEGER NOT NULL",
    "travel_notice": "INTEGER NOT NULL DEFAULT 0",
    "atc": "INTEGER NOT NULL DEFAULT -1",
    "stored_credential": "TEXT NOT NULL DEFAULT ''",
    "cavv_result": "TEXT NOT NULL DEFAULT ''",
    "wallet": "TEXT NOT NULL DEFAULT ''",
    "token_last4": "TEXT NOT NULL DEFAULT ''",
    "token_age_hours": "REAL NOT NULL DEFAULT -1",
    "balance_delta": "INTEGER",  # NULL: journalled before migration 27
    "avs_result": "TEXT NOT NULL DEFAULT ''",
    "model_score": "INTEGER NOT NULL DEFAULT -1",
    "cvv2_result": "TEXT NOT NULL DEFAULT ''",
    "arn": "TEXT NOT NULL DEFAULT ''",
    "completes": "TEXT NOT NULL DEFAULT ''",
}
# Columns added by a later migration: migration 1 creates the table without them, as it always
# did, so that a new file and an upgraded one end up with the same table
_ADDED_LATER = (
    "transaction_amount_minor",
    "transaction_currency",
    "authentication",
    "merchant_name",
    "model_reasons",
    "movement",
    "travel_notice",
    "atc",
    "stored_credential",
    "cavv_result",
    "wallet",
    "token_last4",
    "token_age_hours",
    "balance_delta",
    "avs_result",
    "model_score",
    "cvv2_result",
    "arn",
    "completes",
)
_journal_columns = ",\n  ".join(
    f"{name} {_JOURNAL_TYPES.get(name, 'TEXT NOT NULL')}"
    for name in JOURNAL_COLUMNS
    if name != "journal_id" and name not in _ADDED_LATER
)

# migration 43: a pre-authorisation ``h`` that the completion being updated (``journal``) may
# have completed, the newest first
_HEAD = """h.card_id = journal.card_id AND h.account_id = journal.account_id
    AND h.terminal = trim(journal.terminal_id) AND h.journal_id < journal.journal_id
    AND h.journal_id >= (SELECT w.journal_id FROM journal AS w
      WHERE w.ts >= journal.ts - 5356800 ORDER BY w.ts LIMIT 1)
  ORDER BY h.journal_id DESC LIMIT 1"""
# the completions migration 43 links: a split shipment's part may leave its hold open
_UNLINKED = """completes = '' AND card_id <> '' AND substr(mti, 1, 3) = '022' AND movement = 'post'
  AND (';' || reason_codes || ';') GLOB '*;advice.completion*'
  AND (';' || reason_codes || ';') NOT GLOB '*;advice.presentment;*'"""
_PARTIAL = "(';' || reason_codes || ';') GLOB '*;advice.completion_partial;*'"

MIGRATIONS: list[str] = [
    # 1: cards, accounts, products, holds, journal, velocity, audit, lists, idempotency
    f"""
CREATE TABLE products (product_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE accounts (
  account_id TEXT PRIMARY KEY,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  balance INTEGER NOT NULL,
  credit_limit INTEGER NOT NULL,
  holds INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE TABLE cards (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  card_id TEXT NOT NULL UNIQUE,
  pan_index TEXT NOT NULL,
  account_id TEXT NOT NULL,
  state TEXT NOT NULL,
  pin_tries INTEGER NOT NULL,
  version INTEGER NOT NULL,
  data TEXT NOT NULL,
  pan_ciphertext BLOB NOT NULL
);
CREATE INDEX cards_by_pan ON cards (pan_index, seq);
CREATE INDEX cards_by_account ON cards (account_id, seq);
CREATE TABLE holds (
  match_key TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  amount INTEGER NOT NULL,
  posted INTEGER NOT NULL,
  reversed INTEGER NOT NULL,
  created_at REAL NOT NULL
);
CREATE INDEX holds_by_age ON holds (created_at);
CREATE TABLE journal (
  journal_id INTEGER PRIMARY KEY AUTOINCREMENT,
  {_journal_columns}
);
CREATE INDEX journal_by_card ON journal (card_id, journal_id);
CREATE INDEX journal_by_account ON journal (account_id, journal_id);
CREATE INDEX journal_by_ts ON journal (ts);
CREATE INDEX journal_by_dedupe ON journal (dedupe_key) WHERE dedupe_key != '';
CREATE TABLE velocity (
  card_id TEXT NOT NULL,
  ts REAL NOT NULL,
  amount INTEGER NOT NULL,
  approved INTEGER NOT NULL,
  merchant_id TEXT NOT NULL,
  country TEXT NOT NULL,
  cash INTEGER NOT NULL,
  pin_failed INTEGER NOT NULL,
  cvv_failed INTEGER NOT NULL
);
CREATE INDEX velocity_by_card ON velocity (card_id, ts);
CREATE INDEX velocity_by_ts ON velocity (ts);
CREATE TABLE audit (
  audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  before TEXT NOT NULL,
  after TEXT NOT NULL
);
CREATE INDEX audit_by_subject ON audit (subject, audit_id);
CREATE TABLE list_names (name TEXT PRIMARY KEY);
CREATE TABLE list_values (
  name TEXT NOT NULL REFERENCES list_names (name),
  value TEXT NOT NULL,
  PRIMARY KEY (name, value)
) WITHOUT ROWID;
CREATE TABLE idempotency (key TEXT PRIMARY KEY, result TEXT NOT NULL, ts REAL NOT NULL);
""",
    # 2: the snapshot reads a card's velocity events from the index alone (no table lookups)
    """
CREATE INDEX velocity_covering ON velocity
  (card_id, ts, amount, approved, merchant_id, country, cash, pin_failed, cvv_failed);
DROP INDEX velocity_by_card;
""",
    # 3: velocity counters are kept between snapshots (store.sqlite_velocity), which reads only
    # a card's rows above the rowid it has counted: (card_id) orders entries by (card_id, rowid)
    """
CREATE INDEX velocity_by_card_seq ON velocity (card_id);
DROP INDEX velocity_covering;
""",
    # 4: the card a PAN means (sqlite._CURRENT_CARD_FIRST: activated first, then newest) straight
    # from an index, without a sort per snapshot; the expression must stay that ORDER BY's
    """
CREATE INDEX cards_current ON cards (pan_index, state IN ('created', 'issued'), seq DESC);
DROP INDEX cards_by_pan;
""",
    # 5: velocity events are the card's journal entries (store.sqlite_velocity): no copy per
    # commit; journal_by_card (card_id, journal_id) serves "entries above the mark"
    """
DROP TABLE velocity;
""",
    # 6: the card a PAN means is answered from the index alone (it covers every column the
    # snapshot reads but the card's JSON, which the store re-reads only when the card's version
    # moved; SQLite needs ``state`` itself in it to cover the ORDER BY's expression); product_id
    # becomes a column so the product join needs no JSON either
    """
ALTER TABLE cards ADD COLUMN product_id TEXT NOT NULL DEFAULT '';
UPDATE cards SET product_id = coalesce(json_extract(data, '$.product_id'), '');
DROP INDEX cards_current;
CREATE INDEX cards_current ON cards (pan_index, state IN ('created', 'issued'), seq DESC,
  card_id, account_id, product_id, version, pin_tries, state);
""",
    # 7: accounts and products are looked up by their key on every authorisation (snapshot and
    # funds update): WITHOUT ROWID tables are that key's B-tree itself, one descent instead of
    # the key's index and then the row
    """
CREATE TABLE accounts_by_key (
  account_id TEXT PRIMARY KEY,
  currency TEXT NOT NULL,
  kind TEXT NOT NULL,
  balance INTEGER NOT NULL,
  credit_limit INTEGER NOT NULL,
  holds INTEGER NOT NULL,
  version INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO accounts_by_key
  SELECT account_id, currency, kind, balance, credit_limit, holds, version FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_by_key RENAME TO accounts;
CREATE TABLE products_by_key (product_id TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO products_by_key SELECT product_id, data FROM products;
DROP TABLE products;
ALTER TABLE products_by_key RENAME TO products;
""",
    # 8: holds are kept (a reversal finds its original's by match key), so an index of every
    # hold by age made each expiry run read all holds older than the cutoff, released or
    # posted ones included, a longer scan every day; only open holds are indexed now (posted
    # amounts, a 0200's, never enter the index, and a release takes a hold out of it)
    """
DROP INDEX holds_by_age;
CREATE INDEX holds_open_by_age ON holds (created_at) WHERE posted = 0 AND amount > reversed;
""",
    # 9: the dedupe key is unique, so the journal insert itself finds a retransmission (no
    # probe in the snapshot, no SELECT before the insert). No two entries share a key (both
    # probes kept it so); should a file have some anyway, every entry after the first gets
    # "#<journal_id>" appended to its key, so the index can be built and nothing is lost.
    """
UPDATE journal SET dedupe_key = dedupe_key || '#' || journal_id
WHERE dedupe_key != '' AND journal_id NOT IN (
  SELECT min(journal_id) FROM journal WHERE dedupe_key != '' GROUP BY dedupe_key);
CREATE UNIQUE INDEX journal_dedupe ON journal (dedupe_key) WHERE dedupe_key != '';
DROP INDEX journal_by_dedupe;
""",
    # 10: a card used abroad: the journal's amount and currency are the cardholder's (fields
    # 6 and 51 when the network converted), and these two keep what the merchant charged
    # (fields 4 and 49). Entries before it were all in the cardholder's currency (others were
    # declined), so they get their own amount again (a few seconds per million entries).
    """
ALTER TABLE journal ADD COLUMN transaction_amount_minor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journal ADD COLUMN transaction_currency TEXT NOT NULL DEFAULT '';
UPDATE journal SET transaction_amount_minor = amount_minor, transaction_currency = currency;
""",
    # 11: the chip application transaction counters each card used lately: a cryptogram whose
    # counter is here already is a replay (store.interface.ATC_WINDOW_S)
    """
CREATE TABLE chip_atcs (
  card_id TEXT NOT NULL,
  atc INTEGER NOT NULL,
  seen_at REAL NOT NULL,
  PRIMARY KEY (card_id, atc)
) WITHOUT ROWID;
""",
    # 12: incremental authorisations. An increment's hold row has posted = 2 and names in
    # parent the pre-authorisation whose row holds its amount too (so it is never in the index
    # of open holds: the parent's expiry releases it); every other row has parent ''
    """
ALTER TABLE holds ADD COLUMN parent TEXT NOT NULL DEFAULT '';
""",
    # 13: fraud reports (chargebacks, cardholders' and analysts' verdicts) on journal entries:
    # the labels of the journal export
    """
CREATE TABLE fraud_reports (
  journal_id INTEGER PRIMARY KEY,
  card_id TEXT NOT NULL,
  fraud INTEGER NOT NULL,
  source TEXT NOT NULL,
  reported_at REAL NOT NULL,
  note TEXT NOT NULL
);
""",
    # 14: holds that live longer than [auth] hold_days (lodging, car rental, cruise: the
    # networks' extended authorisation), by this many seconds
    """
ALTER TABLE holds ADD COLUMN extra_life REAL NOT NULL DEFAULT 0;
""",
    # 15: the review queue: the entries the rules flagged, in journal order
    """
CREATE INDEX journal_review ON journal (journal_id) WHERE review = 1;
""",
    # 16: how an e-commerce cardholder was authenticated (field 48 subelement 42)
    """
ALTER TABLE journal ADD COLUMN authentication TEXT NOT NULL DEFAULT '';
""",
    # 17: the card acceptor's name and location (field 43), for analysts and rules
    """
ALTER TABLE journal ADD COLUMN merchant_name TEXT NOT NULL DEFAULT '';
""",
    # 18: the model's top reasons for a high score, for analysts
    """
ALTER TABLE journal ADD COLUMN model_reasons TEXT NOT NULL DEFAULT '';
""",
    # 19: what each request did to the account (hold, post, credit, release), for the totals
    """
ALTER TABLE journal ADD COLUMN movement TEXT NOT NULL DEFAULT '';
""",
    # 20: whether a travel notice of the card covered the request's country (card.travel_notice)
    """
ALTER TABLE journal ADD COLUMN travel_notice INTEGER NOT NULL DEFAULT 0;
""",
    # 21: cardholders' disputes of posted transactions, one per journal entry
    """
CREATE TABLE disputes (
  dispute_id TEXT PRIMARY KEY,
  journal_id INTEGER NOT NULL UNIQUE,
  state TEXT NOT NULL,
  data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX disputes_by_state ON disputes (state, dispute_id);
""",
    # 22: the chip counter of a verified cryptogram (-1: none)
    """
ALTER TABLE journal ADD COLUMN atc INTEGER NOT NULL DEFAULT -1;
""",
    # 23: the stored credential indicator (card on file, merchant-initiated)
    """
ALTER TABLE journal ADD COLUMN stored_credential TEXT NOT NULL DEFAULT '';
""",
    # 24: the CAVV results code of a checked 3-D Secure authentication value
    """
ALTER TABLE journal ADD COLUMN cavv_result TEXT NOT NULL DEFAULT '';
""",
    # 25: the 3-D Secure authentications (ATNs) each card's approvals used lately: a CAVV
    # whose authentication is here already is reused (store.interface.CAVV_WINDOW_S)
    """
CREATE TABLE cavv_atns (
  card_id TEXT NOT NULL,
  atn TEXT NOT NULL,
  seen_at REAL NOT NULL,
  PRIMARY KEY (card_id, atn)
) WITHOUT ROWID;
""",
    # 26: payments made with a card's token: its wallet, last four digits and age
    """
ALTER TABLE journal ADD COLUMN wallet TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN token_last4 TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN token_age_hours REAL NOT NULL DEFAULT -1;
""",
    # 27: what each entry added to its account's balance (NULL: journalled before), the
    # ledger balance each account was last synchronised to (the bank's ledger balance and the
    # journal id it had followed the movements through), and how far retention has pruned
    """
ALTER TABLE journal ADD COLUMN balance_delta INTEGER;
CREATE TABLE ledger_syncs (
  account_id TEXT PRIMARY KEY,
  through_id INTEGER NOT NULL,
  balance INTEGER NOT NULL,
  synced_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE journal_pruned (one INTEGER PRIMARY KEY CHECK (one = 1), through_id INTEGER NOT NULL);
""",
    # 28: the result of a billing address a card-not-present merchant asked to verify (AVS)
    """
ALTER TABLE journal ADD COLUMN avs_result TEXT NOT NULL DEFAULT '';
""",
    # 29: the card a PAN means is the newest that has been activated (cards.lifecycle
    # has_been_activated), not the newest outside created/issued: a renewal cancelled before
    # its activation (closed, never active) took the PAN from the card it was to renew
    """
ALTER TABLE cards ADD COLUMN waits INTEGER NOT NULL DEFAULT 0;
UPDATE cards SET waits = CASE WHEN json_extract(data, '$.activated_at') IS NULL
  AND state NOT IN ('active', 'suspended', 'damaged') THEN 1 ELSE 0 END;
DROP INDEX cards_current;
CREATE INDEX cards_current ON cards (pan_index, waits, seq DESC,
  card_id, account_id, product_id, version, pin_tries, state);
""",
    # 30: the model's own score beside the journalled one (which has score rules' points)
    """
ALTER TABLE journal ADD COLUMN model_score INTEGER NOT NULL DEFAULT -1;
""",
    # 31: fraud reports in the order they were written (a consumer pages on it): a report
    # filed late on an old entry, or replacing a verdict, comes after the ones read before.
    # The reports already there keep their journal id as their place, so a consumer's cursor
    # (a journal id until now) goes on from where it was
    """
ALTER TABLE fraud_reports ADD COLUMN report_id INTEGER NOT NULL DEFAULT 0;
UPDATE fraud_reports SET report_id = journal_id;
CREATE UNIQUE INDEX fraud_reports_written ON fraud_reports (report_id);
""",
    # 32: report ids from a counter that never goes down: MAX(report_id) + 1 handed an id out
    # again when retention pruned the newest report (a late one on an old entry), and a
    # consumer whose cursor had passed it never saw the report that got it. A report inserted
    # without an id (0: the default, as a process on older code writes it) gets the next one.
    # (Statements here are split at ";" + newline: the trigger's own end a line with ";".)
    """
CREATE TABLE fraud_report_ids (one INTEGER PRIMARY KEY CHECK (one = 1), last INTEGER NOT NULL);
INSERT INTO fraud_report_ids VALUES (1, (SELECT COALESCE(MAX(report_id), 0) FROM fraud_reports));
CREATE TRIGGER fraud_report_next_id AFTER INSERT ON fraud_reports WHEN NEW.report_id = 0
BEGIN
  UPDATE fraud_report_ids SET last = last + 1 WHERE one = 1
  ; UPDATE fraud_reports SET report_id = (SELECT last FROM fraud_report_ids WHERE one = 1)
    WHERE journal_id = NEW.journal_id
  ; END;
""",
    # 33: a hold is its account's: keyed by match key and account, as Redis keeps holds per
    # account. Keyed by match key alone, a key another account's request reused (same STAN,
    # transmission time, acquirer and terminal, another RRN) added its amount to the first
    # account's row, and the second account's hold could never be released or expire.
    """
CREATE TABLE holds_per_account (
  match_key TEXT NOT NULL,
  account_id TEXT NOT NULL,
  amount INTEGER NOT NULL,
  posted INTEGER NOT NULL,
  reversed INTEGER NOT NULL,
  created_at REAL NOT NULL,
  parent TEXT NOT NULL DEFAULT '',
  extra_life REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (match_key, account_id)
);
INSERT INTO holds_per_account
  SELECT match_key, account_id, amount, posted, reversed, created_at, parent, extra_life
  FROM holds;
DROP TABLE holds;
ALTER TABLE holds_per_account RENAME TO holds;
CREATE INDEX holds_open_by_age ON holds (created_at) WHERE posted = 0 AND amount > reversed;
""",
    # 34: the audit log's keyed hash chain (security.audit_chain): older entries keep ""
    """
ALTER TABLE audit ADD COLUMN chain TEXT NOT NULL DEFAULT '';
""",
    # 35: work begun in several writes, until its last (interface.Intent)
    """
CREATE TABLE intents (
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  data TEXT NOT NULL,
  ts REAL NOT NULL,
  PRIMARY KEY (kind, subject)
);
""",
    # 36: leases (CardStore.take_lease): one holder at a time of a named
    # piece of work across the processes sharing the file (one clearing import at a time),
    # each until it drops it or its expiry passes (a holder that died blocks no one for good)
    """
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  since REAL NOT NULL,
  expires_at REAL NOT NULL
) WITHOUT ROWID;
""",
    # 37: idempotency retention (CardStore.prune_idempotency): a request's result is written
    # prunable (1), a marker kept for good (0: the default, so that a row an older authhost
    # writes is kept). What is there already is sorted out by its key: the account-closed
    # markers and the demo's own creates (interface.LEGACY_MARKER_PREFIXES) are markers, every
    # other row a result (its ts is when it was written: an old one goes at the first run)
    """
ALTER TABLE idempotency ADD COLUMN prunable INTEGER NOT NULL DEFAULT 0;
UPDATE idempotency SET prunable = 1 WHERE substr(key, 1, 15) <> 'account.closed:'
  AND substr(key, 1, 20) <> 'product.create:demo:' AND substr(key, 1, 20) <> 'account.create:demo:'
  AND substr(key, 1, 16) <> 'card.issue:demo:';
CREATE INDEX idempotency_prunable ON idempotency (ts) WHERE prunable = 1;
""",
    # 38: disputes by card (CardStore.disputes_of_card: the card timeline finds a dispute
    # opened long after its charge): the card each dispute's JSON names, in a column
    """
ALTER TABLE disputes ADD COLUMN card_id TEXT NOT NULL DEFAULT '';
UPDATE disputes SET card_id = COALESCE(json_extract(data, '$.card_id'), '');
CREATE INDEX disputes_by_card ON disputes (card_id, dispute_id);
""",
    # 39: the result of a card-not-present CVV2 the host checked (M, N): a retransmission of a
    # request that asked for it in Visa's field 126.10 is answered it again in field 44.10
    """
ALTER TABLE journal ADD COLUMN cvv2_result TEXT NOT NULL DEFAULT '';
""",
    # 40: a clearing presentment's full ARN (23 digits): the chargebacks file names it, where
    # the RRN kept only its last 12; "" for every entry journalled before and every request
    """
ALTER TABLE journal ADD COLUMN arn TEXT NOT NULL DEFAULT '';
""",
    # 41: a completion's link to the pre-authorisation it completed (that hold's match key):
    # the clearing finds it when the 0220 did not carry the pre-authorisation's approval code
    """
ALTER TABLE journal ADD COLUMN completes TEXT NOT NULL DEFAULT '';
""",
    # 42: which card registered each wallet token number (its keyed index): a number another
    # card holds is refused, and of two registrations at once one wins (``claim_token``);
    # filled from the cards' live tokens (the oldest card first where several share one)
    """
CREATE TABLE token_holders (
    token_ref TEXT PRIMARY KEY,
    card_id TEXT NOT NULL,
    since REAL NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO token_holders (token_ref, card_id, since)
  SELECT json_extract(t.value, '$.token_ref'), c.card_id, json_extract(t.value, '$.created_at')
  FROM cards AS c, json_each(c.data, '$.tokens') AS t
  WHERE json_extract(t.value, '$.state') != 'deleted'
  ORDER BY c.seq;
""",
    # 43: the completions journalled before migration 41 get their link (``completes``) where
    # the journal tells which hold they completed (``admin.completion_links``: the same rule
    # for a store without migrations). Field 90, which named it, was never journalled, but it
    # named the hold by the completion's own terminal (``auth.keys``), so the hold is an
    # earlier pre-authorisation's (not an increment's) on the same card and account at that
    # terminal, of the 62 days (5,356,800 s) before, holding nothing now (a completion
    # released it; a split shipment's part may leave some held). Linked only when exactly one
    # hold is such (a second: two stays at one hotel's terminal, none). The pre-authorisations
    # go first in a table of their own, by card, account and terminal, so each completion's
    # look is a read back from it through them alone, stopping at a second hold found
    f"""
CREATE TEMP TABLE heads_43 AS
  SELECT journal_id, ts, card_id, account_id, trim(terminal_id) AS terminal, match_key,
    EXISTS (SELECT 1 FROM holds AS o WHERE o.match_key = j.match_key
      AND o.account_id = j.account_id AND NOT o.posted AND o.amount > o.reversed) AS open
  FROM journal AS j
  WHERE movement = 'hold' AND match_key <> '' AND card_id <> ''
    AND (';' || reason_codes || ';') NOT GLOB '*;incremental;*';
CREATE INDEX temp.heads_43_at ON heads_43 (card_id, account_id, terminal, journal_id);
CREATE INDEX temp.heads_43_closed ON heads_43 (card_id, account_id, terminal, open, journal_id);
UPDATE journal SET completes = COALESCE((SELECT h.match_key FROM heads_43 AS h
  WHERE h.open = 0 AND {_HEAD}), '')
WHERE {_UNLINKED} AND NOT {_PARTIAL}
  AND (SELECT h.match_key FROM heads_43 AS h WHERE h.open = 0 AND {_HEAD} OFFSET 1) IS NULL;
UPDATE journal SET completes = COALESCE((SELECT h.match_key FROM heads_43 AS h
  WHERE {_HEAD}), '')
WHERE {_UNLINKED} AND {_PARTIAL}
  AND (SELECT h.match_key FROM heads_43 AS h WHERE {_HEAD} OFFSET 1) IS NULL;
DROP TABLE heads_43;
""",
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(StoreError):
    """The file was written by a newer authhost; refusing to touch it."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to ``SCHEMA_VERSION``; returns the version it started from."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        start = conn.execute("PRAGMA user_version").fetchone()[0]
        if start > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database has schema version {start}; this authhost knows up to "
                f"{SCHEMA_VERSION}: upgrade authhost"
            )
        for version in range(start, SCHEMA_VERSION):
            for statement in MIGRATIONS[version].split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return start
