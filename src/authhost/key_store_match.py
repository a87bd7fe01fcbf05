"""Refuse to serve a store with a key store whose PAN hash key did not index its cards.

The store finds a card by the keyed hash of its PAN (``pan-hash``). A server started on
another installation's key store, or on one whose ``pan-hash`` was generated anew (a
key store restored from the wrong backup, ``security.key_store`` pointing elsewhere and the
keys made again), found no card for any PAN: it started without a word, said it was ready,
and declined every request 14. One card's PAN, opened and hashed again, tells at start.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from authhost.cards.model import Card
from authhost.security.errors import KeyStoreError, SecurityError
from authhost.security.module import PAN_DATA_KEY
from authhost.security.pan_protection import PanProtectionError, blob_version
from authhost.store.interface import CardStore

log = logging.getLogger("authhost.runtime")


async def check_pan_keys(store: CardStore, security: Any) -> None:
    """KeyStoreError when a stored card's PAN hashes, under the key store's ``pan-hash``
    key, to another index than the one the card is stored under. A PAN that does not open
    (a retired PAN data key version, another installation's data key) is logged at ERROR
    and does not stop the start: the cards are still found by their index."""
    cards = await store.list_cards(limit=1)
    if not cards:
        return
    card = cards[0]
    blob = await store.pan_ciphertext(card.card_id)
    try:
        pan = security.decrypt_pan(blob, card.card_id)
    except SecurityError as exc:
        if _sealed_under_a_live_version(security, blob):  # the key is there, and not its key
            raise KeyStoreError(_mismatch(security, card)) from None
        log.error(
            "card %s: its stored PAN does not open under this key store (%s): what needs the "
            "PAN (renewals, the exception and account updater files) will fail for such cards",
            card.card_id, exc,
        )  # fmt: skip
        return
    if not hmac.compare_digest(security.pan_index(pan), card.pan_index):
        raise KeyStoreError(_mismatch(security, card))


def _sealed_under_a_live_version(security: Any, blob: bytes) -> bool:
    """The PAN data key version the blob names is one this key store holds (not retired):
    so the blob not opening means this is not the key store it was sealed with."""
    try:
        version = blob_version(blob)
    except PanProtectionError:
        return False
    return version in security.key_store.versions(PAN_DATA_KEY)


def _mismatch(security: Any, card: Card) -> str:
    return (
        f"the key store ({security.key_store.path}) is not the one this store's cards were "
        f"made with: card {card.card_id} ({card.masked_pan}) is not found or opened by its "
        "pan-hash and pan-data keys, so no card would be found and every request would be "
        "declined 14; configure the installation's key store ([security] key_store) and "
        "master key"
    )
