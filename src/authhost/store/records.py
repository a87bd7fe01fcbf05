"""Journal and audit records: the store's append-only history, and the analysts' export format.

``JOURNAL_COLUMNS`` is the column list of ``authhost journal export`` (CSV/Parquet). Labelled
data for backtests and training is the same columns plus ``label`` (1 = fraud) and, from the
simulator, ``scenario``. The rules backtest and model training read this format and nothing
else, so what is journalled in production is exactly what analysts replay.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from operator import attrgetter

FULL_ARN = 23  # digits of a Visa or Mastercard ARN (JournalEntry.arn), the last a check digit


@dataclass(slots=True)
class JournalEntry:
    """One request and its decision. No PAN (masked only), no track, no PIN block, no CVV."""

    ts: float  # epoch seconds, host clock when the request arrived
    mti: str
    message_class: str
    response_code: str
    card_id: str = ""  # empty when the card is unknown
    pan_masked: str = ""
    pan_index: str = ""  # keyed hash: groups a card's history without revealing the PAN
    account_id: str = ""
    product_id: str = ""
    processing_code: str = ""
    amount_minor: int = 0  # in the cardholder's currency (field 6 when converted, else 4)
    currency: str = ""  # the account's: field 51 when converted, else 49
    mcc: str = ""
    country: str = ""
    channel: str = ""
    pos_entry_mode: str = ""
    terminal_id: str = ""
    merchant_id: str = ""
    acquirer_id: str = ""
    stan: str = ""
    rrn: str = ""
    transmission_time: str = ""
    approval_code: str = ""
    reason_codes: str = ""  # ';'-joined
    rule_matches: str = ""  # ';'-joined rule names that matched (shadow ones included)
    review: bool = False
    fraud_score: int = -1  # -1: not scored
    challenger_score: int = -1
    model_skipped: bool = False
    pin_present: bool = False
    pin_failed: bool = False
    cvv_failed: bool = False
    home_country: str = ""  # card attributes as seen in the snapshot (for offline replay)
    card_age_days: float = -1.0
    available_before: int = 0
    hold_amount: int = 0  # amount held or posted by this request (minor units)
    latency_us: int = 0
    dedupe_key: str = ""
    match_key: str = ""  # how a later reversal finds this entry
    transaction_amount_minor: int = 0  # field 4: what the merchant charged, in its currency
    transaction_currency: str = ""  # field 49
    # e-commerce: how the cardholder was authenticated (field 48 SE 42): authenticated,
    # attempted, exempt, none; "" when the request did not say
    authentication: str = ""
    merchant_name: str = ""  # field 43, card acceptor name/location, as sent (trailing blanks cut)
    # the model's top reasons for a high score: "feature=+1.23;..." (log-odds it added)
    model_reasons: str = ""
    # the money movement the decision asked for: hold, post, credit (a refund), release (a
    # reversal) or "" (none); hold_amount is what the store moved (0 when the funds re-check
    # refused it or a reversal found nothing left). Daily totals add them up (admin.totals)
    movement: str = ""
    # a travel notice of the card covered the request's country that day (rules read it as
    # card.travel_notice; journalled so that backtests replay it)
    travel_notice: bool = False
    # the chip's application transaction counter (9F36) of a cryptogram the host verified
    # (-1: none): a retransmission's ARPC is made again only for the same counter, and an
    # analyst sees a card's counter jump or go back
    atc: int = -1
    # field 48 SE 22 SF 05: C101..C104 a card on file used by the cardholder, M101..M208 one
    # the merchant charges alone (rules read stored_credential, merchant_initiated)
    stored_credential: str = ""
    # the CAVV results code of a checked 3-D Secure authentication value (security.cavv: 2
    # passed, 3 passed attempt, 1 and 4 failed, 0 not a CAVV); "" none checked
    cavv_result: str = ""
    # a payment made with one of the card's tokens (field 48 SE 33): its wallet (apple_pay,
    # google_pay, samsung_pay, merchant, other) and last four digits; "" none
    wallet: str = ""
    token_last4: str = ""
    token_age_hours: float = -1.0  # hours since that token was registered (-1: no token)
    # the result of a billing address the merchant asked to verify (cards.avs: Y, A, Z, N,
    # U); "" none asked for
    avs_result: str = ""
    # what this entry added to the account's balance (the store's sign: money on a debit
    # account, debt on a credit one): a posting or a reversed refund takes, a refund or a
    # reversed posting gives, a hold and its release move none. The bank's ledger follows it
    # (the movements feed) and a ledger balance sync adds up those after its cursor. None:
    # journalled before it was recorded
    balance_delta: int | None = 0
    # the champion model's own score, before the points of score rules (fraud_score has
    # them): what explain, backtests and the model comparison judge the model by (-1: not
    # scored, or journalled before it was recorded)
    model_score: int = -1
    # a card-not-present CVV2 the card verification step checked: M it matched, N it did not;
    # "" none checked (or journalled before migration 39). A retransmission is answered it
    # again (Visa's field 44.10)
    cvv2_result: str = ""
    # a clearing presentment's full acquirer reference number (23 digits, admin.clearing),
    # which a Visa or Mastercard chargeback names; "" for every other entry, and for one
    # journalled before migration 40 (rrn keeps its last 12). Written by the clearing import
    # after the 0220 is journalled (CardStore.set_journal_arn), never by the auth path
    arn: str = ""
    # a completion (0220 posting a pre-authorisation's final amount): the match key of the
    # hold it completed (an increment's chain: its first hold's), so that the clearing finds
    # it from the pre-authorisation when field 38 did not carry that one's approval code; ""
    # for every other entry, and for one journalled before migration 41
    completes: str = ""
    journal_id: int = 0  # assigned by the store

    def as_row(self) -> dict[str, object]:
        return journal_dict(self)


JOURNAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(JournalEntry))
# Every field of an entry, in JOURNAL_COLUMNS order, in one C call: copying an entry or turning
# it into a row this way costs about 1 µs, where copy.copy, dataclasses.asdict or a getattr loop
# took 8-11 µs on every authorisation (the fields are all scalars: nothing to copy deeply).
journal_values = attrgetter(*JOURNAL_COLUMNS)


def copy_entry(entry: JournalEntry) -> JournalEntry:
    """A shallow copy of ``entry`` (its fields are immutable scalars)."""
    return JournalEntry(*journal_values(entry))


def journal_dict(entry: JournalEntry) -> dict[str, object]:
    """``dataclasses.asdict(entry)``, without its recursive deep copy."""
    return dict(zip(JOURNAL_COLUMNS, journal_values(entry), strict=True))


LABEL_COLUMNS: tuple[str, ...] = ("label", "scenario")


@dataclass(slots=True)
class AuditEntry:
    """One lifecycle or admin change: who, when, what, and the state before and after."""

    ts: float
    actor: str  # token name or CLI user
    action: str  # e.g. "card.activate", "card.export_personalisation", "pin.unlock"
    subject: str  # card_id, account_id, product_id or key name; never a PAN
    before: str = ""  # JSON of the relevant state before (masked)
    after: str = ""
    audit_id: int = 0
    # the keyed hash chain's value (``security.audit_chain``): "" for an entry written before
    # the chain existed, or by a caller without the audit key
    chain: str = ""

    def sealed_fields(self) -> tuple[float, str, str, str, str, str]:
        """What the chain value covers: everything but the id the store numbers it with (the
        chain itself orders the entries) and the value."""
        return (self.ts, self.actor, self.action, self.subject, self.before, self.after)


# where a verdict on a transaction comes from: a chargeback the acquirer received, the
# cardholder's own word, or a fraud analyst's review
FRAUD_REPORT_SOURCES = ("chargeback", "cardholder", "analyst")


DISPUTE_REASONS = ("fraud", "not_received", "not_as_described", "duplicate", "amount", "other")
# reversed: the acquirer reversed the charge while its dispute was open (the money came back
# through the reversal; a provisional credit was taken back so it is not given twice)
DISPUTE_STATES = ("open", "won", "lost", "withdrawn", "reversed")
# the networks' stages of an open dispute, in order (admin.dispute_stages); closing it keeps
# the stage it reached
DISPUTE_STAGES = (
    "opened", "chargeback", "represented", "pre_arbitration", "pre_arbitration_accepted",
    "pre_arbitration_declined", "arbitration",
)  # fmt: skip
# the acquirer's answer to a pre-arbitration (admin.dispute_stages, ``answer_pre_arbitration``)
PRE_ARBITRATION_ANSWERS = ("accepted", "accepted_in_part", "declined")


@dataclass(frozen=True, slots=True)
class Dispute:
    """A cardholder's dispute of one posted transaction (admin.disputes): opened with or
    without a provisional credit, taken through the networks' stages (chargeback,
    representment, pre-arbitration: admin.dispute_stages), then won (the money stays with the
    cardholder), lost or withdrawn (a provisional credit is taken back), for the stages'
    amounts once charged back. One per journal entry."""

    dispute_id: str  # "dsp-YYYYMMDD-HHMMSS-micros-nnn" (UTC): ids sort by age
    journal_id: int
    card_id: str
    account_id: str
    reason: str  # one of DISPUTE_REASONS
    amount_minor: int  # disputed, in the account's currency (at most what was posted)
    currency: str
    opened_at: float
    state: str = "open"  # one of DISPUTE_STATES
    credited_minor: int = 0  # given back to the cardholder so far
    closed_at: float = 0.0
    note: str = ""
    # the outcome a resolution claimed, while it moves the money ("": none). One left behind
    # (the store failed after the claim) is finished by resolving the same way again
    resolving: str = ""
    # what that resolution's plan leaves the cardholder, fixed with the claim (-1: none, or a
    # claim written before it was kept): a retry finishes that plan, whatever came since
    resolving_minor: int = -1
    # every change of the stored dispute moves it: updates are written only over the version
    # they were made from (CardStore.update_dispute), so two resolutions cannot both win
    version: int = 0
    # The network side (admin.dispute_stages). Every field has a default: a dispute stored
    # before they were kept loads as one at stage opened.
    # the disputed charge's time, which the chargeback's limit counts from (0.0: recorded
    # before it was kept; the service reads it from the charge's journal entry)
    charged_at: float = 0.0
    stage: str = "opened"  # one of DISPUTE_STAGES: the last network step taken
    network: str = ""  # visa or mastercard, by the card's BIN ("" another) when charged back
    reason_code: str = ""  # the network reason code it was charged back under (10.4, 4837)
    chargeback_minor: int = 0  # charged back (at most the disputed amount)
    charged_back_at: float = 0.0
    # the charge's reference the networks match: its full ARN (JournalEntry.arn, 23 digits)
    # when the clearing import kept one, else its RRN (the ARN's last 12), as before
    arn: str = ""
    pan_masked: str = ""  # the card's, as the charge's journal entry has it
    represented_at: float = 0.0  # the acquirer's second presentment: its date
    representment_reference: str = ""
    represented_minor: int = 0
    pre_arbitration_at: float = 0.0  # when the issuer answered the representment
    # what it pre-arbitrated, at most the amount represented (0 with pre_arbitration_at: one
    # recorded before the amount was kept, which was all of it)
    pre_arbitration_minor: int = 0
    # A chargeback lowered after it was filed: the acquirer reversed part of the charge, so the
    # chargeback claims only what the charge still takes (the reconcile: admin.dispute_stages,
    # ``lowered_chargeback``). Each lowering (when, by how much) is a partial
    # recall line in the chargebacks file; ``chargeback_minor`` is what is claimed now. Kept
    # out of the stored JSON while empty, so that an older authhost still reads the dispute.
    recalls: tuple[tuple[float, int], ...] = ()
    # The acquirer's answer to the pre-arbitration (one of PRE_ARBITRATION_ANSWERS, "": none
    # recorded), when it was recorded, and what it accepted of the amount pre-arbitrated (all
    # of it, a part, or 0 declined); then the issuer's arbitration after a decline, and the
    # network's ruling on it (won or lost), which resolves the dispute. Like ``recalls``, each
    # is kept out of the stored JSON while unset (codec.dispute_to_json).
    pre_arbitration_answer: str = ""
    pre_arbitration_answered_at: float = 0.0
    pre_arbitration_accepted_minor: int = 0
    arbitration_at: float = 0.0
    arbitration_ruling: str = ""
    # The network's arbitration fee, recorded with its ruling: in minor units of its own
    # currency (ISO 4217 numeric: the network's settlement currency, not the dispute's), and
    # who bears it, the party the ruling went against (``issuer`` when lost, ``acquirer``
    # when won). The cardholder's amounts never include it. Kept out of the JSON while unset.
    arbitration_fee_minor: int = 0
    arbitration_fee_currency: str = ""
    arbitration_fee_payer: str = ""
    # What was taken back from the cardholder after the dispute was closed, for the acquirer's
    # reversals of the charge that came after its resolution (``disputes reconcile ID``: the
    # reversal gave the money back, the chargeback's recall returns it to the acquirer), and
    # when it was last taken. Kept out of the JSON while unset.
    late_taken_back_minor: int = 0
    late_taken_back_at: float = 0.0


@dataclass(frozen=True, slots=True)
class FraudReport:
    """What became known about one journalled transaction after it was decided: fraud or
    genuine. These are the labels the journal export hands to training and backtests; a later
    report on the same entry replaces the earlier one (a chargeback won back, say)."""

    journal_id: int
    card_id: str
    fraud: bool
    source: str  # one of FRAUD_REPORT_SOURCES
    reported_at: float
    note: str = ""
    # Its place in the order reports were written, which the store gives it (0: not stored
    # yet); a report replacing another gets a new one. Consumers page on this, not on the
    # journal id: a report filed late on an old entry, or a changed verdict, comes after
    # every report written before it.
    report_id: int = 0
