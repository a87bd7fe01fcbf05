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

SAMPLE = 50  # cards looked at, at most, for one whose PAN opens (one when the first does)


async def check_pan_keys(store: CardStore, security: Any) -> None:
    """KeyStoreError when a stored card's PAN hashes, under the key store's ``pan-hash``
    key, to another index than the one the card is stored under, or does not open under a
    PAN data key version this key store holds. A PAN that does not open because its version
    is not live here (retired: an old store backup) is logged at ERROR and the next cards
    are tried, up to ``SAMPLE``: a wrong key store whose own versions were all retired
    since was let through on the first card alone, and every card declined 14. None of
    them opening does not stop the start: the cards are still found by their index."""
    first = await store.list_cards(limit=1)
    if not first or await _checked(store, security, first[0], say=True):
        return
    for card in (await store.list_cards(limit=SAMPLE))[1:]:
        if await _checked(store, security, card, say=False):
            return


async def _checked(store: CardStore, security: Any, card: Card, *, say: bool) -> bool:
    """True when the card's PAN opens and hashes to its index; False when it does not open
    under a version this key store has live; KeyStoreError when it is not this key store's."""
    blob = await store.pan_ciphertext(card.card_id)
    try:
        pan = security.decrypt_pan(blob, card.card_id)
    except SecurityError as exc:
        if _sealed_under_a_live_version(security, blob):  # the key is there, and not its key
            raise KeyStoreError(_mismatch(security, card)) from None
        if say:
            log.error(
                "card %s: its stored PAN does not open under this key store (%s): what needs "
                "the PAN (renewals, the exception and account updater files) will fail for "
                "such cards",
                card.card_id, exc,
            )  # fmt: skip
        return False
    if not hmac.compare_digest(security.pan_index(pan), card.pan_index):
        raise KeyStoreError(_mismatch(security, card))
    return True


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
