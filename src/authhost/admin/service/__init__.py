"""The card service: every card-management operation, once, for the API, the CLI and the demo.

Answers are JSON-ready views (``admin.views``): a card leaves the service with its masked PAN
only. The clear PAN exists here only in a local variable while a card is produced, a PIN
block is checked, or a record is written to a file an operator names (``export_personalisation``
for the card bureau, ``generate_pins`` for the PIN mailer printer, ``export_exception_file``
for the networks: the sanctioned ways out, each audited).

``CardService`` is put together from one part per family of operations, each its own module
on the shared ``ServiceBase`` (store, keys, actor, audit, idempotency):
``accounts`` (products, accounts, funds, the ledger balance), ``cards`` (issuing, what is set
on a card), ``tokens``, ``lifecycle``,
``cardholder_answers`` (answers to alerts), ``pins``,
``journal`` (history, explanations, reviews, feeds, totals, retention, audit, lists),
``dispute_cases``, ``clearing_imports`` (on the disputes: a duplicate presentment is disputed)
and ``files``; ``unfinished`` finishes what a crash cut short (activations, dispute
openings).
"""

from __future__ import annotations

from authhost.admin.service.accounts import ProductsAndAccounts
from authhost.admin.service.base import LIFECYCLE_ACTIONS, RETIRE_TRIES, ServiceBase
from authhost.admin.service.cardholder_answers import CardholderAnswers
from authhost.admin.service.cards import CardData
from authhost.admin.service.clearing_imports import ClearingImports
from authhost.admin.service.files import OperatorFiles
from authhost.admin.service.journal import JournalAnalysis
from authhost.admin.service.lifecycle import CardLifecycle
from authhost.admin.service.pins import Pins
from authhost.admin.service.timeline import CardTimeline
from authhost.admin.service.tokens import PaymentTokens
from authhost.admin.service.unfinished import UnfinishedWork

__all__ = ["LIFECYCLE_ACTIONS", "RETIRE_TRIES", "CardService"]


class CardService(
    ProductsAndAccounts,
    CardData,
    PaymentTokens,
    CardholderAnswers,
    UnfinishedWork,
    CardLifecycle,
    Pins,
    JournalAnalysis,
    CardTimeline,
    ClearingImports,
    OperatorFiles,
    ServiceBase,
):
    """Card management over one store and one security module, acting as ``actor``."""
