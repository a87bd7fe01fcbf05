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
import trio
from test_store_contract import PRODUCT
from typer.testing import CliRunner

from authhost.cards.model import Account, CardKind
from authhost.cards.production import PanFacts, new_card, new_card_id, new_pan
from authhost.cli.app import app
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
    await _another_card(store, security)


async def _another_card(store: CardStore, security: SecurityModule) -> None:
    """One more card on the account ``_issue`` opened, its PAN sealed under the newest
    PAN data key version."""
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


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "redis":
        return f"{request.getfixturevalue('redis_url')}?prefix=t{secrets.token_hex(6)}"
    return f"sqlite:///{tmp_path / 'cards.db'}"


def test_clearing_import_on_another_key_store_says_why_in_one_line(store_url, tmp_path) -> None:
    """The CLI commands that open a whole runtime meet the same refusal: `clearing import`
    printed it as a traceback."""

    async def issue() -> None:
        opened = await open_store(store_url)
        try:
            await _issue(opened, _module(tmp_path / "ours.json"))
        finally:
            await opened.close()

    trio.run(issue)
    config = tmp_path / "authhost.toml"
    config.write_text(
        f'[security]\nkey_store = "{tmp_path / "theirs.json"}"\ndemo = true\n'
        f'[store]\nurl = "{store_url}"\n'
    )
    file = tmp_path / "clearing.csv"
    file.write_text(
        "pan,approval_code,amount_minor,currency,presented_at,arn\n"
        f"{new_pan(PRODUCT.bin, PRODUCT.pan_length)},,100,978,2026-11-29T10:00:00+00:00,"
        "70000000000000000000011\n"
    )
    done = CliRunner().invoke(
        app, ["clearing", "import", str(file), "--dry-run", "--config", str(config)],
        catch_exceptions=False,
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "every request would be declined 14" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.output


async def test_a_key_store_whose_first_cards_version_it_retired_is_still_checked(
    store, tmp_path, caplog
) -> None:
    """Another installation's key store that rotated its PAN data key and retired version 1
    was let through on the store's first card (sealed under version 1: "retired, only
    logged"), while the store's newer cards, under version 2, told it is not theirs."""
    ours = _module(tmp_path / "ours.json")
    await _issue(store, ours)  # under version 1
    ours.rotate_pan_key()
    await _another_card(store, ours)  # under version 2
    theirs = _module(tmp_path / "theirs.json")
    theirs.rotate_pan_key()
    theirs.key_store.retire("pan-data", 1)
    with pytest.raises(KeyStoreError, match="every request would be declined 14"):
        await check_pan_keys(store, _module(tmp_path / "theirs.json"))
    # our own key store, version 1 retired since (an old store backup): it starts, saying so
    ours.key_store.retire("pan-data", 1)
    caplog.clear()
    with caplog.at_level(logging.ERROR, "authhost.runtime"):
        await check_pan_keys(store, _module(tmp_path / "ours.json"))
    assert caplog.text.count("its stored PAN does not open under this key store") == 1
