"""Card, product and account values to and from JSON text: one encoding for every backend.

The card's PAN never passes through here (a card holds only its keyed index, BIN and last
four); the encrypted PAN is stored beside the card by each backend.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from authhost.cards.cardholder_pass import CardholderPass
from authhost.cards.model import (
    Account,
    Card,
    CardControls,
    CardKind,
    CardState,
    Limits,
    PinMethod,
    Product,
    StopPayment,
)
from authhost.cards.tokens import PaymentToken, TokenState
from authhost.cards.travel import TravelNotice
from authhost.store.records import AuditEntry, Dispute, FraudReport, JournalEntry

_LIMIT_NAMES = tuple(f.name for f in dataclasses.fields(Limits))
_CARD_FIELDS = {f.name for f in dataclasses.fields(Card)}
_CONTROL_FIELDS = tuple(f.name for f in dataclasses.fields(CardControls))
_TOKEN_FIELDS = tuple(f.name for f in dataclasses.fields(PaymentToken))
_PRODUCT_FIELDS = {f.name for f in dataclasses.fields(Product)}
JOURNAL_FIELDS = {f.name: f.type for f in dataclasses.fields(JournalEntry)}


def _limits_dict(limits: Limits | None) -> dict[str, int | None] | None:
    return None if limits is None else {n: getattr(limits, n) for n in _LIMIT_NAMES}


def _limits(data: dict[str, Any] | None) -> Limits | None:
    if data is None:
        return None
    return Limits(**{k: v for k, v in data.items() if k in _LIMIT_NAMES})


def card_to_json(card: Card) -> str:
    data = {name: getattr(card, name) for name in _CARD_FIELDS}
    data["limits"] = _limits_dict(card.limits)
    data["controls"] = (
        None
        if card.controls is None
        else {name: sorted(getattr(card.controls, name)) for name in _CONTROL_FIELDS}
    )
    data["travel_notices"] = [
        {"countries": sorted(n.countries), "start": n.start, "end": n.end}
        for n in card.travel_notices
    ]
    data["stop_payments"] = [{"merchant_id": s.merchant_id, "until": s.until}
                             for s in card.stop_payments]  # fmt: skip
    data["tokens"] = [
        {name: getattr(t, name) for name in _TOKEN_FIELDS} for t in card.tokens
    ]  # fmt: skip
    data["cardholder_pass"] = (
        None if card.cardholder_pass is None else dataclasses.asdict(card.cardholder_pass)
    )
    if card.suspension_at_report is None:  # written only when set: older cards stay as they were
        del data["suspension_at_report"]
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def card_from_json(text: str | bytes, **overrides: Any) -> Card:
    data = json.loads(text)
    data = {k: v for k, v in data.items() if k in _CARD_FIELDS}
    data.update(overrides)
    data["state"] = CardState(data["state"])
    data["pin_method"] = PinMethod(data["pin_method"])
    data["limits"] = _limits(data.get("limits"))
    controls = data.get("controls")
    data["controls"] = (
        None
        if not controls
        else CardControls(**{name: frozenset(controls.get(name, ())) for name in _CONTROL_FIELDS})
    )
    data["travel_notices"] = tuple(
        TravelNotice(frozenset(n["countries"]), n["start"], n["end"])
        for n in data.get("travel_notices") or ()
    )
    data["chip_scripts"] = tuple(data.get("chip_scripts") or ())
    data["chip_scripts_sent"] = tuple(data.get("chip_scripts_sent") or ())
    data["stop_payments"] = tuple(StopPayment(**s) for s in data.get("stop_payments") or ())
    data["tokens"] = tuple(
        PaymentToken(**{**t, "state": TokenState(t["state"])}) for t in data.get("tokens") or ()
    )
    cardholder_pass = data.get("cardholder_pass")
    data["cardholder_pass"] = None if not cardholder_pass else CardholderPass(**cardholder_pass)
    return Card(**data)


def product_to_json(product: Product) -> str:
    data = {name: getattr(product, name) for name in _PRODUCT_FIELDS}
    data["limits"] = _limits_dict(product.limits)
    for name in ("channels", "blocked_mccs", "blocked_countries"):
        data[name] = sorted(data[name])
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def product_from_json(text: str | bytes) -> Product:
    data = json.loads(text)
    data = {k: v for k, v in data.items() if k in _PRODUCT_FIELDS}
    data["kind"] = CardKind(data["kind"])
    data["pin_method"] = PinMethod(data["pin_method"])
    data["limits"] = _limits(data.get("limits")) or Limits()
    for name in ("channels", "blocked_mccs", "blocked_countries"):
        data[name] = frozenset(data.get(name, ()))
    return Product(**data)


# CardKind by its stored value: a dict hit, not Enum's lookup by value (both stores' hot path)
CARD_KINDS = {kind.value: kind for kind in CardKind}
# One encoder for every value: json.dumps with options would build a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def compact_json(value: object) -> str:
    """``value`` as JSON without spaces (journal entries as Redis stores them, velocity
    events), from one shared encoder."""
    return _COMPACT.encode(value)


def journal_from_json(text: str | bytes) -> JournalEntry:
    data = json.loads(text)
    if "transaction_currency" not in data:  # journalled before fields 6/51 were read
        data["transaction_amount_minor"] = data.get("amount_minor", 0)
        data["transaction_currency"] = data.get("currency", "")
    data.setdefault("balance_delta", None)  # journalled before the balance effect was
    return JournalEntry(**{k: v for k, v in data.items() if k in JOURNAL_FIELDS})


def audit_to_json(entry: AuditEntry) -> str:
    return json.dumps(dataclasses.asdict(entry), separators=(",", ":"))


def audit_from_json(text: str | bytes) -> AuditEntry:
    return AuditEntry(**json.loads(text))


# a dispute's fields an older authhost does not know, written only once set (it refuses a
# field it does not know: a dispute that never had one stays readable by it)
DISPUTE_FIELDS_IF_SET = (
    "recalls", "pre_arbitration_answer", "pre_arbitration_answered_at",
    "pre_arbitration_accepted_minor", "arbitration_at", "arbitration_ruling",
    "arbitration_fee_minor", "arbitration_fee_currency", "arbitration_fee_payer",
    "late_taken_back_minor", "late_taken_back_at",
)  # fmt: skip


def dispute_to_json(dispute: Dispute) -> str:
    data = dataclasses.asdict(dispute)
    for name in DISPUTE_FIELDS_IF_SET:
        if not data[name]:
            del data[name]
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def dispute_from_json(text: str | bytes) -> Dispute:
    data = json.loads(text)
    if "recalls" in data:  # JSON's lists, as the dataclass's tuples (equal as read again)
        data["recalls"] = tuple(tuple(recall) for recall in data["recalls"])
    return Dispute(**data)


def fraud_report_to_json(report: FraudReport) -> str:
    return json.dumps(dataclasses.asdict(report), separators=(",", ":"))


def fraud_report_from_json(text: str | bytes) -> FraudReport:
    return FraudReport(**json.loads(text))


def account_fields(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "currency": account.currency,
        "kind": account.kind.value,
        "balance": account.balance,
        "credit_limit": account.credit_limit,
        "holds": account.holds,
        "version": account.version,
    }


def account_from_fields(data: dict[str, Any]) -> Account:
    return Account(
        account_id=str(data["account_id"]),
        currency=str(data["currency"]),
        kind=CardKind(data["kind"]),
        balance=int(data["balance"]),
        credit_limit=int(data["credit_limit"]),
        holds=int(data["holds"]),
        version=int(data["version"]),
    )


def funds_record(fingerprint: str, account: Account) -> str:
    """An idempotent funds change's record: the request's fingerprint and the account after."""
    fields = {f.name: getattr(account, f.name) for f in dataclasses.fields(Account)}
    fields["kind"] = account.kind.value
    return json.dumps({"request": fingerprint, "account": fields})


def funds_record_parts(text: str) -> tuple[str, Account]:
    """The fingerprint and account of ``funds_record`` (or of the Redis script's twin)."""
    data = json.loads(text)
    return str(data["request"]), account_from_fields(data["account"])
