"""A server on a key store that did not make the store's cards refuses to start: it started
without a word, said it was ready, and declined every card 14 (found walking docs/security.md:
a store restored beside another installation's key store). A key store whose PAN data key
version is retired (an old store backup) only logs, as its cards are still found."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_store_contract import PRODUCT

from authhost.cards.model import Account, CardKind
from authhost.cards.production import PanFacts, new_card, new_card_id, new_pan
from authhost.config import SecurityConfig
from authhost.key_store_match import check_pan_keys
from authhost.security.errors import KeyStoreError
from authhost.security.module import SecurityModule
from authhost.store import open_store
from authhost.store.interface import CardStore


@pytest.fixture(params=["sqlite", "redis"])
async def store(request, tmp_path: Path) -> AsyncIterator[CardStore]:
    if request.param == "sqlite":
        opened = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    else:
        opened = await open_store(
            request.getfixturevalue("redis_url"), prefix=f"t{secrets.token_hex(6)}"
        )
    try:
        yield opened
    finally:
        await opened.close()


def _module(path: Path) -> SecurityModule:
    return SecurityModule.open(SecurityConfig(key_store=str(path)), demo=True)


async def _issue(store: CardStore, security: SecurityModule) -> None:
    await store.put_product(PRODUCT)
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=1000))
    pan, card_id = new_pan(PRODUCT.bin, PRODUCT.pan_length), new_card_id()
    card = new_card(
        PRODUCT, PanFacts.of(pan, security.pan_index(pan)), card_id=card_id,
        account_id="acc-1", now=1_795_000_000.0, cardholder_name="A TESTER",
    )  # fmt: skip
    await store.create_card(card, security.encrypt_pan(pan, card_id))


async def test_another_installations_key_store_is_refused(store, tmp_path) -> None:
    ours = _module(tmp_path / "ours.json")
    await check_pan_keys(store, ours)  # no card yet: nothing to tell
    await _issue(store, ours)
    await check_pan_keys(store, ours)
    with pytest.raises(KeyStoreError, match="every request would be declined 14") as refused:
        await check_pan_keys(store, _module(tmp_path / "theirs.json"))
    assert "theirs.json" in str(refused.value)


async def test_a_pan_key_version_retired_since_logs_and_starts(store, tmp_path, caplog) -> None:
    """A store backup older than a PAN data key's retirement: its cards are still found by
    their index, so the start goes on, saying what will fail."""
    security = _module(tmp_path / "ours.json")
    await _issue(store, security)
    security.rotate_pan_key()
    # the old version destroyed, as `retire-pan-key 1` does once the stores it knew are resealed
    security.key_store.retire("pan-data", 1)
    with caplog.at_level(logging.ERROR, "authhost.runtime"):
        await check_pan_keys(store, _module(tmp_path / "ours.json"))
    assert "its stored PAN does not open under this key store" in caplog.text
