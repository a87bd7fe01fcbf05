"""JSON views of products, accounts, cards, journal and audit entries.

These are what the API answers, the CLI prints and the audit log records as before/after, so
there is one place that decides what may be shown: a card appears with its masked PAN only
(first 6, last 4); the keyed PAN hash and the PIN reference are never shown. Each view is a
pydantic model, so the OpenAPI document's response schemas are these very definitions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authhost.admin.dispute_stages import DisputeLimits, amounts, next_action
from authhost.cards.model import Account, Card, Limits, Product
from authhost.cards.tokens import PaymentToken
from authhost.store.records import AuditEntry, Dispute, FraudReport, JournalEntry


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsView(_View):
    per_transaction: int | None
    daily_amount: int | None
    daily_count: int | None
    monthly_amount: int | None
    monthly_count: int | None
    atm_per_transaction: int | None
    atm_daily_amount: int | None
    atm_daily_count: int | None
    max_balance: int | None = None


class ProductView(_View):
    product_id: str
    issuer_id: str
    name: str
    bin: str
    pan_length: int
    kind: str
    currency: str
    home_country: str
    validity_months: int
    service_code: str
    limits: LimitsView
    channels: list[str]
    blocked_mccs: list[str]
    blocked_countries: list[str]
    pin_method: str
    pvk_name: str
    cvk_name: str
    pvki: str
    imk_ac_name: str = ""
    chip_cvn: int = 18
    imk_smi_name: str = ""
    imk_smc_name: str = ""
    version: int = 0
    atc_jump_limit: int | None = None
    cavv_key_name: str = ""


class TokenRequestAnswer(_View):
    decision: str = Field(description="approved, authentication_required or declined")
    reasons: list[str] = Field(description="why (provisioning.*): every one found")
    card_id: str
    token_ref: str = Field(description="the registered token's reference; '' when declined")


class AccountView(_View):
    account_id: str
    currency: str
    kind: str
    balance: int = Field(description="debit/prepaid: funds; credit: amount owed (minor units)")
    credit_limit: int
    holds: int
    open_to_buy: int
    ledger_sync: dict[str, Any] | None = Field(
        default=None,
        description="one account's view and a sync's answer: the last ledger balance sync "
        "(through_journal_id, ledger_balance_minor, synced_at in epoch seconds), null when never",
    )
    closed_at: str | None = Field(
        default=None,
        description="one account's view: when it was closed (ISO 8601 UTC; no card is issued, "
        "replaced or moved onto it since), null while open",
    )


class CardView(_View):
    card_id: str
    pan: str = Field(description="masked PAN: first 6 and last 4 digits")
    product_id: str
    account_id: str
    state: str
    expiry: str = Field(description="YYMM")
    service_code: str
    sequence: str
    cardholder_name: str
    address_ref: str
    billing_address_on_file: bool = Field(
        default=False, description="a billing address for AVS is kept (as keyed hashes only)"
    )
    pin_method: str
    pin_set: bool
    pin_tries: int
    limits: LimitsView | None
    home_country: str
    created_at: float
    activated_at: float | None
    closed_at: float | None = Field(default=None, description="when it was cancelled")
    replaces: str | None
    replaced_by: str | None
    previous_expiry: str = Field(
        description="a renewal under the same PAN: the renewed card's expiry (YYMM), which a "
        "merchant charging the card on file (field 48 SE 22, M...) may still send; '' none"
    )
    controls: dict[str, list[str]] | None = Field(
        description="what the cardholder switched off on this card: blocked_channels, "
        "blocked_mccs, blocked_countries (null: only the product's controls)"
    )
    travel_notices: list[dict[str, Any]] = Field(
        description="trips the cardholder announced: countries (ISO 3166 numeric), start and "
        "end (UTC days, included); rules read card.travel_notice"
    )
    last_used: float | None = Field(
        None,
        description="one card's view only: epoch seconds of its newest journal entry (null: "
        "never used, or pruned)",
    )
    chip_scripts: list[str] = Field(
        default_factory=list,
        description="issuer script commands waiting for the chip's next online request "
        "(application_block, application_unblock, pin_unblock)",
    )
    tokens: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the card's payment tokens (wallets, merchants' cards on file): token_ref "
        "(keyed index), last4, requestor_id, wallet, expiry, device, state (active, suspended, "
        "deleted), created_at, changed_at; never the token number",
    )
    stop_payments: list[dict[str, str]] = Field(
        default_factory=list,
        description="merchants whose recurring (merchant-initiated) charges the cardholder "
        "revoked: merchant_id (field 42; * every merchant), until (last UTC day; '' until "
        "withdrawn)",
    )
    cardholder_pass: dict[str, Any] | None = Field(
        default=None,
        description="the cardholder answered an alert 'it was me': until (epoch seconds) a "
        "payment at merchant_id ('' any) of at most max_amount_minor (the account's currency) "
        "is not declined as suspected fraud; journal_id is the payment they confirmed",
    )


class AuditView(_View):
    audit_id: int
    ts: float
    actor: str
    action: str
    subject: str
    before: str = Field(description="JSON of the state before (masked)")
    after: str = Field(description="JSON of the state after (masked)")
    chain: str = Field(
        description="the audit log's hash chain value (hex; empty for an entry written "
        "before the chain existed): GET /v1/audit/verify checks it"
    )


class AuditBreak(_View):
    audit_id: int
    action: str
    problem: str = Field(description="changed, removed (entries before it) or unsealed")
    detail: str


class AuditVerification(_View):
    ok: bool
    entries: int
    unchained_before: int = Field(description="entries written before the chain existed")
    chained: int
    verified: int = Field(description="entries whose link to the one before them holds")
    breaks: list[AuditBreak] = Field(description="the first 20 breaks, oldest first")
    break_count: int
    key_mismatch: bool = Field(
        description="no chained entry verifies: the log was written under another master key"
    )
    head: str = Field(description="the newest entry's chain value: record it off-host")
    head_id: int
    error: str | None = None


class ProductList(_View):
    products: list[ProductView]


class AccountList(_View):
    accounts: list[AccountView]


class CardList(_View):
    cards: list[CardView]


class MoneyMovements(_View):
    movements: list[dict[str, Any]] = Field(
        description="journal_id, time, account_id, movement (hold, post, credit, release, "
        "take_back), amount_minor, currency, card_id, pan (masked), mti, processing_code, "
        "approval_code (a completion's: its pre-authorisation's when field 38 carried it), rrn, "
        "merchant_id, mcc, hold_ref (shared by a hold or posting and its reversal), "
        "balance_delta_minor (what it added to the account's balance: what the ledger books; "
        "null for an entry journalled before it was recorded)"
    )
    next_after_id: int = Field(description="the after_id of the next poll")


class CardholderAlerts(_View):
    alerts: list[dict[str, Any]] = Field(
        description="journal_id, time, card_id, account_id, pan (masked), alerts (why: "
        "suspected_fraud_declined, lost_card_used, stolen_card_used, pin_locked, "
        "money_received, new_wallet_token, large_amount, card_not_present, abroad), "
        "response_code, rrn, amount_minor, currency, merchant_name, mcc, country, channel, "
        "wallet"
    )
    next_after_id: int = Field(description="the after_id of the next poll")


class WalletEvents(_View):
    events: list[dict[str, Any]] = Field(
        description="audit_id, time, card_id, event (token_added, token_requested, "
        "token_activated, token_suspended, token_deleted, token_pan_updated), pan (masked), "
        "token (token_ref, last4, wallet, device, state, requestor_id; null for a declined "
        "request), for a request its decision and reasons, and for a PAN update (the token "
        "moved to the card's successor under a new PAN) previous_card_id, previous_pan "
        "(masked) and card_expiry"
    )
    next_after_id: int = Field(description="the after_id of the next poll (an audit id)")


class JournalList(_View):
    journal: list[dict[str, Any]] = Field(
        description="rows with the journal export columns, plus verdict: null (none reported), "
        "fraud or genuine"
    )


class TimelineEvent(_View):
    at: str = Field(description="when, ISO 8601 UTC")
    ts: float = Field(description="when, epoch seconds")
    kind: str = Field(
        description="authorisation, financial, advice or reversal (a journal entry); "
        "fraud_report; dispute.open, dispute.resolve; else the audited action (card.suspend, "
        "pin.set, card.limits, card.token_add, card.reissue, card.search...)"
    )
    card_id: str = Field(description="the card of the chain it happened to")
    pan: str = Field(description="that card's masked PAN")
    summary: str = Field(description="one line for a person")
    actor: str = Field(description="who made the change (an audited one), else ''")
    journal_id: int | None
    audit_id: int | None
    dispute_id: str | None
    verdict: str | None = Field(description="a journal entry's fraud report: fraud, genuine")


class TimelineCard(_View):
    card_id: str
    pan: str
    state: str
    replaces: str | None
    replaced_by: str | None


class CardTimelineView(_View):
    card_id: str
    cards: list[TimelineCard] = Field(
        description="the cards whose events are listed, oldest first (the chain of renewals, "
        "replacements and reissues; only the card with chain=false)"
    )
    since: str | None
    until: str | None
    events: list[TimelineEvent] = Field(description="newest first")
    next_before: float | None = Field(
        description="the before of the next page (the events older than this page's); null: none"
    )


class AuditList(_View):
    audit: list[AuditView]


class FraudReportView(_View):
    journal_id: int
    card_id: str
    fraud: bool
    source: str
    reported_at: float
    note: str = Field(description="free text (masked)")
    report_id: int | None = Field(
        description="its place in the order reports were written (GET /v1/fraud-reports "
        "pages on it; a report replacing another gets a new one); in a write's answer null "
        "only when another report on the entry replaced it before it was read back"
    )


class CardholderAnswerView(_View):
    journal_id: int
    was_cardholder: bool
    fraud_report: FraudReportView = Field(description="the payment's label: the answer")
    card: CardView = Field(description="the card after the answer (its pass, or suspended)")
    successor: CardView | None = Field(
        description="the card reissued under a new PAN (reissue), else null"
    )


class FraudReportList(_View):
    reports: list[FraudReportView]
    next_after_id: int = Field(description="after_id for the next page: the last report_id")


class ReviewQueue(_View):
    reviews: list[dict[str, Any]] = Field(
        description="journal rows (export columns) plus verdict: null (open), fraud or genuine"
    )
    next_after_id: int = Field(description="after_id for the next page")


class BusiestAcceptors(_View):
    by: str = Field(description="the counter they are ranked by, highest first")
    at: float = Field(description="when they were counted (epoch seconds)")
    requests_counted: int = Field(description="journal entries of the last hour counted")
    acceptors: list[dict[str, Any]] = Field(
        description="merchant_id, merchant_name (field 43, the newest in the hour), "
        "terminal_id (empty for a merchant) and the ten counters rules read as merchant.* / "
        "terminal.*"
    )


class NextActionView(_View):
    owner: str = Field(description="issuer, acquirer or network (an arbitration's ruling)")
    action: str = Field(
        description="chargeback, representment, pre_arbitration, pre_arbitration_answer, "
        "arbitration, arbitration_ruling or resolve (a limit passed: too late to charge back, "
        "pre-arbitrate or arbitrate, or the acquirer did not answer, so the issuer won; or the "
        "acquirer accepted the pre-arbitration in full: resolve it at once)"
    )
    deadline: float | None = Field(
        description="when the action's time limit ends, epoch seconds (null: no limit known)"
    )
    overdue: bool = Field(description="the limit passed: the issuer's resolution is due now")
    todo: str = Field(description="what to do, in words, with the command")


class DisputeAmountsView(_View):
    """What the network stages settled, and what the cardholder keeps (README, "Disputes")."""

    disputed_minor: int = Field(description="disputed (what the charge still takes, at most)")
    charged_back_minor: int = Field(description="charged back (0: not yet)")
    not_charged_back_minor: int = Field(
        description="disputed but not charged back, once charged back: the issuer did not "
        "pursue it, so the cardholder does not keep it (the bank credits it by hand if it "
        "chooses)"
    )
    represented_minor: int = Field(description="contested by the acquirer's representment")
    recalled_minor: int = Field(
        description="what partial recalls lowered the chargeback by since it was filed (the "
        "acquirer reversed part of the charge: the chargeback claims only what the charge "
        "still takes); charged_back_minor is what it claims now"
    )
    accepted_by_acquirer_minor: int = Field(
        description="charged back and not contested by the representment, and what the "
        "acquirer's answer accepted of the pre-arbitration: the cardholder's for good, won or "
        "lost (0 until a representment is recorded)"
    )
    pre_arbitration_accepted_minor: int = Field(
        description="what the acquirer's answer accepted of the pre-arbitration (all of it, a "
        "part; 0: declined or not answered)"
    )
    cardholder_keeps_minor: int | None = Field(
        description="once closed: what the cardholder ended with of the disputed amount "
        "(null while open)"
    )
    pre_arbitration_minor: int = Field(description="pre-arbitrated (0: not taken to it)")
    conceded_by_issuer_minor: int = Field(
        description="represented but not pre-arbitrated: the issuer accepted that part of the "
        "representment, so the cardholder does not keep it"
    )
    if_won_minor: int | None = Field(
        description="while open: what resolving it won would leave the cardholder (the "
        "chargeback less what the issuer conceded; once the acquirer answered accepting, what "
        "it accepted; the disputed amount when none was filed); null once closed"
    )
    if_lost_minor: int | None = Field(
        description="while open: what resolving it lost would leave the cardholder (what the "
        "acquirer accepted); null once closed"
    )
    if_withdrawn_minor: int | None = Field(description="while open: 0; null once closed")
    arbitration_minor: int = Field(
        description="what an arbitration is (or would be) for: the amount pre-arbitrated the "
        "acquirer's answer did not accept (all of it declined, the rest accepted in part)"
    )
    arbitration_fee_minor: int = Field(
        description="the network's arbitration fee its ruling charged, in "
        "arbitration_fee_currency (0: none); borne by arbitration_fee_payer, never counted in "
        "the cardholder's amounts"
    )


class RecallView(_View):
    at: float = Field(description="when the chargeback was lowered (a reconcile, a resolution)")
    amount_minor: int = Field(description="what it was lowered by")


class LateReversalsView(_View):
    """What the acquirer's reversals of the charge after a won or lost resolution owe."""

    recalls: list[RecallView] = Field(
        description="the chargeback's recalls they owe: the chargebacks file's partial recall "
        "lines (when: the reversal's time, or the resolution's)"
    )
    recalled_minor: int = Field(description="what those recalls give back to the acquirer")
    cardholder_excess_minor: int = Field(
        description="what the cardholder holds twice, the dispute's credit and the "
        "reversal's release (0: taken back, or none)"
    )
    todo: str = Field(description="what the operator does, with the command")


class DisputeView(_View):
    dispute_id: str
    journal_id: int = Field(description="the disputed journal entry")
    card_id: str
    account_id: str
    reason: str = Field(
        description="fraud, not_received, not_as_described, duplicate, amount, other"
    )
    amount_minor: int = Field(description="disputed, in the account's currency")
    currency: str
    opened_at: float
    state: str = Field(description="open, won, lost, withdrawn or reversed (by the acquirer)")
    credited_minor: int = Field(description="given back to the cardholder")
    closed_at: float
    note: str
    resolving: str = Field(
        description="while open: the outcome a resolution has claimed and is moving the money "
        "for ('' none); only that outcome may resolve it (again, after a failure). "
        "'reconciling:...': a reconcile's plan against a reversal, finished by the next "
        "reconcile or resolution"
    )
    charged_at: float = Field(
        description="the disputed charge's time, which the chargeback's limit counts from "
        "(for a dispute recorded before it was kept, read from the charge's journal entry; 0 "
        "when that is gone)"
    )
    stage: str = Field(
        description="the last network step: opened (not charged back yet), chargeback, "
        "represented (the acquirer's second presentment), pre_arbitration, "
        "pre_arbitration_accepted (in full or in part), pre_arbitration_declined, arbitration; "
        "a closed dispute keeps the stage it reached"
    )
    network: str = Field(description="visa or mastercard by the card's BIN, once charged back")
    reason_code: str = Field(description="the network reason code charged back under (10.4, 4837)")
    chargeback_minor: int = Field(description="charged back (at most the disputed amount)")
    charged_back_at: float
    arn: str = Field(
        description="the charge's full ARN (23 digits) when a clearing import kept it, else "
        "its reference as journalled (its RRN, 12 characters); set when charged back"
    )
    pan_masked: str = Field(description="the card's masked PAN, once charged back")
    represented_at: float = Field(description="the acquirer's representment: its date")
    representment_reference: str
    represented_minor: int
    pre_arbitration_at: float
    pre_arbitration_minor: int = Field(
        description="what the issuer's pre-arbitration is for (0 with pre_arbitration_at: "
        "recorded before the amount was kept, all of the representment)"
    )
    recalls: list[RecallView] = Field(
        description="the chargeback's partial recalls, oldest first: each a recall line in "
        "the chargebacks file"
    )
    pre_arbitration_answer: str = Field(
        description="the acquirer's answer to the pre-arbitration: accepted, accepted_in_part, "
        "declined ('' none recorded)"
    )
    pre_arbitration_answered_at: float = Field(
        description="its date: the start of the UTC day given, else when it was recorded (0: none)"
    )
    pre_arbitration_accepted_minor: int = Field(
        description="what it accepted of the amount pre-arbitrated (0: declined, none)"
    )
    arbitration_at: float = Field(description="when the issuer filed arbitration (0: not)")
    arbitration_ruling: str = Field(
        description="the network's ruling on the arbitration, won or lost ('' none), which "
        "resolved the dispute"
    )
    arbitration_fee_minor: int = Field(
        description="the network's arbitration fee recorded with the ruling, in minor units "
        "of arbitration_fee_currency (0: none)"
    )
    arbitration_fee_currency: str = Field(
        description="ISO 4217 numeric: the network's currency, not the dispute's ('' none)"
    )
    arbitration_fee_payer: str = Field(
        description="who bears the fee: the party the ruling went against, acquirer (won) or "
        "issuer (lost) ('' none)"
    )
    late_taken_back_minor: int = Field(
        description="taken back from the cardholder after the dispute was closed, for the "
        "acquirer's reversals of the charge since (disputes reconcile ID)"
    )
    late_taken_back_at: float = Field(description="when it was last taken back (0: never)")
    late_reversals: LateReversalsView | None = Field(
        None,
        description="a dispute resolved won or lost whose charge the acquirer reversed "
        "since (GET one dispute, reconcile): what that owes and what to do; absent otherwise",
    )
    next_action: NextActionView | None = Field(
        description="what the open dispute waits for (null once closed)"
    )
    amounts: DisputeAmountsView


class DisputeList(_View):
    disputes: list[DisputeView]


class ChargebackLine(_View):
    dispute_id: str
    arn: str = Field(
        description="the charge's full ARN (23 digits) when a clearing import kept it, else "
        "its reference as journalled (its RRN, 12 characters); set when charged back"
    )
    pan: str = Field(description="masked: first six and last four digits")
    amount_minor: int = Field(
        description="a chargeback line: charged back, as filed; a recall line: what goes back "
        "to the acquirer (the chargeback less what a representment took back; a partial "
        "recall: what the chargeback was lowered by)"
    )
    currency: str
    network: str
    reason_code: str
    charged_back_at: str = Field(description="when it was filed, ISO 8601 UTC")
    journal_id: int = Field(description="the disputed charge's journal entry")
    action: Literal["chargeback", "recall"] = Field(
        description="chargeback: filed in the period; recall: the dispute was withdrawn (or lost "
        "before any representment) in the period after its chargeback was filed, and the "
        "network is to be told"
    )
    recalled_at: str = Field(
        description="a recall line: when it was withdrawn (or lost), ISO 8601 UTC"
    )
    withdrawn_at_stage: str = Field(
        description="a recall line: the stage it was withdrawn at (chargeback, represented, "
        "pre_arbitration); empty for a partial recall (the dispute goes on)"
    )


class ChargebacksFiled(_View):
    since: float
    until: float
    chargebacks: list[ChargebackLine]


class RepresentmentLineView(_View):
    line: int = Field(description="the line of the file (the header is line 1)")
    dispute_id: str
    stage: str = Field(description="the dispute's stage after it (represented); '' refused")
    error: str = Field(description="why the line was refused ('' recorded): nothing of it written")


class RepresentmentsImported(_View):
    lines: int
    recorded: int
    failed: int
    rows: list[RepresentmentLineView]


class ExpiringCards(_View):
    months: list[dict[str, Any]] = Field(
        description="expiry (YYMM) and due: live cards expiring that month without a successor"
    )


class CompromiseReport(_View):
    pans: int = Field(description="PANs in the alert")
    not_ours: int = Field(description="PANs of no card of this issuer")
    card_ids: int = Field(0, description="card ids in the alert")
    unknown_ids: int = Field(0, description="card ids of no card")
    not_live: int = Field(description="this issuer's, but created, closed, lost, replaced...")
    not_allowed: int = Field(
        description="live, but the action does not apply: an issued card (suspend), one with a "
        "successor already (reissue), or one changed meanwhile"
    )
    action: str
    cards: list[dict[str, Any]] = Field(description="the live cards found, masked")


class DormantCards(_View):
    unused_since: str = Field(description="the cut-off (UTC): not used since then")
    suspended: bool = Field(description="whether this call suspended them")
    cards: list[dict[str, Any]] = Field(
        description="each card's view with last_used (epoch seconds of its newest journal "
        "entry; null: never used, counted from its activation)"
    )


class RenewalRunView(_View):
    expiry: str = Field(description="the month renewed, YYMM")
    dry_run: bool
    due: int = Field(description="live cards expiring that month without a successor")
    renewed: int
    already_renewed: int = Field(description="cards of that month renewed before: skipped")
    failed: int
    cards: list[dict[str, Any]] = Field(
        description="card_id, masked_pan and new_card_id, new_expiry (dry run: state); the "
        "first 1,000"
    )
    cards_listed_in_part: bool
    failures: list[dict[str, str]] = Field(description="card_id and error")


class LedgerSynced(AccountView):
    after_minor: int = Field(
        description="what the account's journal entries after the sync's cursor added"
    )
    entries_after: int = Field(description="how many of those entries moved the balance")


class AccountClosed(_View):
    account_id: str
    cancelled_cards: list[str] = Field(description="the cards cancelled (closed: 62 from now)")


class AccountHolds(_View):
    account: dict[str, Any] = Field(description="the account as it stands now")
    held_minor: int = Field(description="what the open holds hold together")
    open_holds: int = Field(description="how many there are")
    holds_listed_in_part: bool = Field(description="more than the 1,000 listed")
    holds: list[dict[str, Any]] = Field(
        description="oldest first: held_minor, held_since, extra_life_s, expires_at, and the "
        "authorisation that placed it (journal_id, authorised_at, authorised_minor, currency, "
        "card_id, masked pan, merchant, mcc, approval_code; journal_id null when pruned)"
    )


class AccountStatement(_View):
    account: dict[str, Any] = Field(description="the account as it stands now")
    since: str = Field(description="start of the period (UTC, inclusive)")
    until: str = Field(description="end of the period (UTC, exclusive)")
    authorised: dict[str, int] = Field(description="holds placed: count and amount_minor")
    posted: dict[str, int]
    credited: dict[str, int] = Field(description="refunds")
    released: dict[str, int] = Field(description="reversals")
    taken_back: dict[str, int] = Field(
        default_factory=dict, description="refunds and transfers reversed: taken back"
    )
    reversed_posted: dict[str, int] = Field(
        default_factory=dict,
        description="of the released, the postings reversed: posted money given back",
    )
    net_posted_minor: int = Field(
        description="posted less reversed_posted and credited, plus taken back"
    )
    opening_balance_minor: int = Field(
        description="the balance at the start of the period: with each line's "
        "balance_delta_minor it adds up to closing_balance_minor"
    )
    closing_balance_minor: int = Field(description="the balance at the end of the period")
    balances_settled: bool = Field(
        description="false when the balance moved during each of the statement's 3 reads "
        "(a busy account): the balances may be off by what landed meanwhile; ask again"
    )
    bookings: dict[str, dict[str, int]] = Field(
        description="the bank's own bookings (funds, ledger_sync, opened): count and "
        "balance_delta_minor"
    )
    lines: list[dict[str, Any]] = Field(
        description="each change of the balance, oldest first (the first 1,000): an entry "
        "that moved money (time, movement, amount, card (masked PAN), merchant, approval and "
        "response code) or a booking (journal_id null, audit_id, movement funds, ledger_sync "
        "or opened, reason, by); each with balance_delta_minor and balance_after_minor"
    )
    lines_listed_in_part: bool


class JournalTotals(_View):
    since: str = Field(description="start of the period (UTC, inclusive)")
    until: str = Field(description="end of the period (UTC, exclusive)")
    entries: int = Field(description="journal entries in the period")
    by_message_class: dict[str, dict[str, int]] = Field(
        description="approved and declined requests per message class"
    )
    currencies: list[dict[str, Any]] = Field(
        description="per account currency: authorised (holds placed), posted, credited "
        "(refunds and transfers), released (reversals), reversed_posted (of the released, "
        "postings given back) and taken_back (credits reversed), each a count and amount_minor; "
        "net_posted_minor (posted - reversed_posted - credited + taken_back); approved, "
        "declined and declined_by_code; and the same money per acquirer (field 32)"
    )


class RulePerformanceReport(_View):
    since: str = Field(description="start of the period (UTC, inclusive)")
    until: str = Field(description="end of the period (UTC, exclusive)")
    rules_file: str = Field(
        description="the rules file whose rules named actions and modes ('' none configured)"
    )
    entries: int = Field(description="journal entries in the period")
    entries_with_matches: int = Field(description="of which some rule matched")
    rules: list[dict[str, Any]] = Field(
        description="one per rule that matched (most of its own declines reported genuine "
        "first, then most declined genuine) and per rule of "
        "the file that did not: rule, in_rules_file, action, shadow, matches, approved, "
        "declined, declined_by_rule (declined with its reason first; null when the file does "
        "not have it), passed (approved through a cardholder's pass), reviewed, fraud, "
        "genuine, genuine_by_cardholder, declined_genuine (declined by anything), "
        "declined_genuine_by_rule (its own declines; null as declined_by_rule), precision "
        "(fraud / labelled "
        "matches; null none labelled), fraud_amount_minor (by account currency)"
    )


class CommonPointsReport(_View):
    since: str = Field(description="start of the period (UTC, inclusive)")
    until: str = Field(description="end of the period (UTC, exclusive)")
    lookback_days: int = Field(description="days before each card's first fraud looked at")
    by: str = Field(description="merchant or terminal")
    min_cards: int = Field(description="fraud cards a row needs")
    entries_read: int = Field(description="journal entries of the period and its lookback read")
    fraud_cards: int = Field(
        description="cards whose first fraud (the earliest entry reported fraud) is in the period"
    )
    fraud_cards_with_visits: int = Field(description="of them, with a visit in their lookback")
    cards_with_visits: int = Field(description="cards with a visit counted anywhere")
    base_rate: float | None = Field(description="fraud_cards_with_visits / cards_with_visits")
    points_total: int = Field(description="rows of the whole ranking (every page)")
    next_offset: int | None = Field(
        description="offset of the next page (the same query with it), null on the last page"
    )
    points: list[dict[str, Any]] = Field(
        description="limit rows from offset on, most fraud cards first, then the highest lift: "
        "merchant_id, terminal_id "
        "(by=terminal), merchant_name (field 43), mcc, country, fraud_cards, cards, share "
        "(fraud_cards / cards), lift (share / base_rate), first_visit and last_visit (of the "
        "fraud cards, ISO 8601 UTC)"
    )
    at_risk: list[dict[str, Any]] = Field(
        description="the cards of the top 3 rows of the whole ranking whose lift is above 1 "
        "with no fraud reported, on the first page (offset 0) only: merchant_id, "
        "terminal_id, card_id, pan (masked), first_visit, last_visit, visits, in_fraud_span "
        "(visited between the fraud cards' first and last visit there)"
    )
    hint: str = Field(description="how to act on them (nothing is changed by this report)")


class ModelComparison(_View):
    since: str = Field(description="start of the period (UTC, inclusive)")
    until: str = Field(description="end of the period (UTC, exclusive)")
    champion_model: str | None = Field(description="the active champion artifact")
    challenger_model: str | None = Field(description="the active challenger artifact")
    scored_by_both: int = Field(description="requests both models scored in the period")
    declined_before_fraud_step: int = Field(
        description="requests of the period a step before the fraud step declined (an unknown "
        "card 14, a failed CVV 82/N7, a wrong PIN 55...): no model scored them, so they are "
        "left out (models.scored)"
    )
    reported_frauds: int = Field(description="of them, reported as fraud")
    reported_fraud_amount_minor: dict[str, int] = Field(
        description="their amounts, minor units by currency (ISO 4217 numeric): never added "
        "across currencies"
    )
    reported_genuine: int = Field(description="of them, reported as genuine")
    champion: dict[str, Any] = Field(
        description="threshold, alerts, alert_rate, frauds_caught, fraud_amount_caught_minor "
        "(minor units by currency), alerts_reported_genuine"
    )
    challenger: dict[str, Any] = Field(description="the same for the challenger")
    agreement: dict[str, int] = Field(
        description="both_alert, champion_only, challenger_only, neither"
    )
    score_correlation: float | None = Field(description="Pearson's r of the two scores")
    frauds_only_challenger_catches: list[int] = Field(description="journal ids (first 20)")
    frauds_only_champion_catches: list[int] = Field(description="journal ids (first 20)")


class ModelDrift(_View):
    since: str = Field(description="start of the period (UTC, inclusive)")
    until: str = Field(description="end of the period (UTC, exclusive)")
    model: str = Field(description="the artifact whose drift this is")
    role: str | None = Field(description="champion, challenger, or null: neither now")
    feature_set: str
    score_source: str = Field(
        description="where the period's scores come from: model_score (the champion's, "
        "journalled), challenger_score, or replayed (the model scored the replayed features)"
    )
    declined_before_fraud_step: int = Field(
        description="requests of the period a step before the fraud step declined: no model "
        "scored them, so they are left out (models.scored)"
    )
    thresholds: dict[str, float] = Field(description="watch and act, the PSI cut-offs")
    rows: int = Field(description="requests of the period the model scores")
    score_rows: int = Field(description="of them, with a score")
    reference_rows: int = Field(description="requests of the reference")
    reference_source: str = Field(
        description="held-out days A..B (the artifact's, from training) or journal A..B"
    )
    score: dict[str, Any] | None = Field(
        description="the score's psi, status and bins (as a feature's); null without scores"
    )
    summary: dict[str, int] = Field(description="features per status: act, watch, stable")
    features: list[dict[str, Any]] = Field(
        description="most drifted first: feature, psi, status (stable below watch, watch, "
        "act above act), bins (the bins that moved most: bin, live and reference shares)"
    )
    notes: list[str] = Field(
        description="what to bear in mind reading it (a short period, few requests, a history "
        "the journal retention cut into, a champion change in the period)"
    )
    score_other_model: int = Field(
        description="requests journalled while another model (or none) held this model's "
        "role, by the models registry's change times: left out of the score's PSI"
    )
    segment: str | None = Field(
        None, description="the segment kind asked for (segment=): channel, entry, ..."
    )
    segments: list[dict[str, Any]] | None = Field(
        None,
        description="with segment=, each segment of the period or the reference, the most "
        "drifted first: segment, share and reference_share (of the requests), rows, "
        "score_rows, reference_rows, score, summary and features as the whole report's "
        "(against the same segment of the reference; null and [] where it has none), notes",
    )


class UnfinishedItem(_View):
    kind: str = Field(description="activation or dispute.open")
    subject: str = Field(
        description="the card being activated, or the disputed charge's journal id"
    )
    begun_at: str = Field(description="when it was begun, ISO 8601 UTC")
    age_s: float


class UnfinishedWork(_View):
    unfinished: list[UnfinishedItem] = Field(description="work begun and not finished")
    grace_s: float = Field(description="work younger than this may still be running")


class FinishedActivations(_View):
    finished: list[dict[str, Any]] = Field(
        description="card_id, begun_at, activation_audited, pan_updates_sent"
    )
    failed: list[dict[str, str]] = Field(description="card_id and error: tried again later")
    dropped: int = Field(description="activations begun and refused: nothing to finish")


class RecordedOpenings(_View):
    recorded: list[dict[str, Any]] = Field(description="the disputes recorded (their views)")
    dropped: int = Field(description="openings whose credit never posted: nothing to record")


class FinishRun(_View):
    busy: str | None = Field(None, description="another process is finishing: nothing done")
    activations: FinishedActivations
    dispute_openings: RecordedOpenings


class IdempotencyPruned(_View):
    before: float = Field(description="the cut (epoch seconds): results written before it went")
    results: int = Field(description="idempotency results (and interrupted placeholders) deleted")


class ListNames(_View):
    lists: list[str]


class NamedList(_View):
    name: str
    values: list[str]


def limits_view(limits: Limits | None) -> dict[str, int | None] | None:
    if limits is None:
        return None
    return {name: getattr(limits, name) for name in Limits.__slots__}


def product_view(product: Product) -> dict[str, Any]:
    view = {f.name: getattr(product, f.name) for f in dataclasses.fields(product)}
    view["kind"] = product.kind.value
    view["pin_method"] = product.pin_method.value
    view["limits"] = limits_view(product.limits)
    for name in ("channels", "blocked_mccs", "blocked_countries"):
        view[name] = sorted(view[name])
    return view


def token_view(token: PaymentToken) -> dict[str, Any]:
    view = {f.name: getattr(token, f.name) for f in dataclasses.fields(token)}
    view["state"] = token.state.value
    return view


def audited_account_view(account: Account) -> dict[str, Any]:
    """What an account's audit entry records of it: what its write checks has not moved
    (the balance and credit limit) and what never changes; not its holds and open-to-buy,
    which the authorisations move meanwhile (``store.interface.AccountAudit``)."""
    return {
        "account_id": account.account_id,
        "currency": account.currency,
        "kind": account.kind.value,
        "balance": account.balance,
        "credit_limit": account.credit_limit,
    }


def account_view(account: Account) -> dict[str, Any]:
    return {
        **audited_account_view(account),
        "holds": account.holds,
        "open_to_buy": account.open_to_buy,
    }


def card_view(card: Card) -> dict[str, Any]:
    return {
        "card_id": card.card_id,
        "pan": card.masked_pan,
        "product_id": card.product_id,
        "account_id": card.account_id,
        "state": card.state.value,
        "expiry": card.expiry,
        "service_code": card.service_code,
        "sequence": card.sequence,
        "cardholder_name": card.cardholder_name,
        "address_ref": card.address_ref,
        # a billing address for AVS is on file (only its keyed hashes are: never the address)
        "billing_address_on_file": bool(card.avs_postcode_ref or card.avs_street_ref),
        "pin_method": card.pin_method.value,
        "pin_set": card.pin_reference is not None,
        "pin_tries": card.pin_tries,
        "limits": limits_view(card.limits),
        "home_country": card.home_country,
        "created_at": card.created_at,
        "activated_at": card.activated_at,
        "closed_at": card.closed_at,
        "replaces": card.replaces,
        "replaced_by": card.replaced_by,
        "previous_expiry": card.previous_expiry,
        "controls": None
        if card.controls is None
        else {
            "blocked_channels": sorted(card.controls.blocked_channels),
            "blocked_mccs": sorted(card.controls.blocked_mccs),
            "blocked_countries": sorted(card.controls.blocked_countries),
        },
        "travel_notices": [
            {"countries": sorted(n.countries), "start": n.start, "end": n.end}
            for n in card.travel_notices
        ],
        "chip_scripts": list(card.chip_scripts),
        "tokens": [token_view(t) for t in card.tokens],
        "stop_payments": [
            {"merchant_id": x.merchant_id, "until": x.until} for x in card.stop_payments
        ],  # fmt: skip
        "cardholder_pass": None
        if card.cardholder_pass is None
        else dataclasses.asdict(card.cardholder_pass),
    }


def dispute_view(dispute: Dispute, limits: DisputeLimits, now: float) -> dict[str, Any]:
    """The dispute as stored (but its version), what it waits for (``next_action``, null
    once closed): who acts next, what, by when, at ``now``; and its stages' ``amounts``."""
    view = dataclasses.asdict(dispute)
    del view["version"]  # the store's compare-and-set counter
    del view["resolving_minor"]  # a resolution's plan while it moves the money
    action = next_action(dispute, limits, now)
    view["recalls"] = [{"at": at, "amount_minor": amount} for at, amount in dispute.recalls]
    view["next_action"] = dataclasses.asdict(action) if action.owner else None
    view["amounts"] = amounts(dispute)
    return view


def journal_view(entry: JournalEntry) -> dict[str, Any]:
    return entry.as_row()


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return dataclasses.asdict(entry)


def fraud_report_view(report: FraudReport) -> dict[str, Any]:
    """The report; its report_id null until the store has given it one (a write's answer)."""
    return {**dataclasses.asdict(report), "report_id": report.report_id or None}
