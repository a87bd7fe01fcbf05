"""JSON views of products, accounts, cards, journal and audit entries.

These are what the API answers, the CLI prints and the audit log records as before/after, so
there is one place that decides what may be shown: a card appears with its masked PAN only
(first 6, last 4); the keyed PAN hash and the PIN reference are never shown.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from authhost.cards.model import Account, Card, Limits, Product
from authhost.store.records import AuditEntry, JournalEntry


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


def account_view(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "currency": account.currency,
        "kind": account.kind.value,
        "balance": account.balance,
        "credit_limit": account.credit_limit,
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
        "pin_method": card.pin_method.value,
        "pin_set": card.pin_reference is not None,
        "pin_tries": card.pin_tries,
        "limits": limits_view(card.limits),
        "home_country": card.home_country,
        "created_at": card.created_at,
        "activated_at": card.activated_at,
        "replaces": card.replaces,
        "replaced_by": card.replaced_by,
    }


def journal_view(entry: JournalEntry) -> dict[str, Any]:
    return entry.as_row()


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return dataclasses.asdict(entry)
