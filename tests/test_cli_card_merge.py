"""``authhost cards limits``, ``stop-payments`` and ``travel`` merge one option into the
card's whole list: a change another writer made between the command's read and its write is
kept (the write is refused for the field as read, and the merge made again on a fresh read),
on both stores. The store's ``get_card`` is wrapped so the other change lands right after the
command's read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from host_admin import cli_config, run_cli
from test_admin_service import _product_account_card
from test_admin_support import demo_security
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.admin.service import CardService
from authhost.admin.service.base import MERGE_TRIES
from authhost.cards.model import Card, Limits, StopPayment
from authhost.cards.travel import TravelNotice
from authhost.store import opened_store


def interfere_after_reads(
    monkeypatch: pytest.MonkeyPatch, cls: type, card_id: str, times: int, change: Any
) -> list[Card]:
    """Make the next ``times`` reads of ``card_id`` (by any store of class ``cls``: the
    CLI's) each followed by another writer's ``change`` of the card, before the reader
    writes."""
    get_card, update_card = cls.get_card, cls.update_card
    changed: list[Card] = []

    async def read_then_changed(self, wanted: str) -> Card | None:
        card = await get_card(self, wanted)
        if card is not None and wanted == card_id and len(changed) < times:
            changed.append(await update_card(self, change(card, len(changed))))
        return card  # as read: the other change lands after it

    monkeypatch.setattr(cls, "get_card", read_then_changed)
    return changed


def daily_count(card: Card, nth: int) -> Card:
    return replace(card, limits=replace(card.limits or Limits(), daily_count=7 + nth))


def other_stop(card: Card, nth: int) -> Card:
    stop = StopPayment(f"OTHERSHOP{nth:06d}", "")
    return replace(card, stop_payments=(*card.stop_payments, stop))


def other_trip(card: Card, nth: int) -> Card:
    trip = TravelNotice(frozenset({"124"}), "2099-01-01", f"2099-01-{10 + nth:02d}")
    return replace(card, travel_notices=(*card.travel_notices, trip))


COMMANDS = {
    "limits": (("--per-transaction", "5000"), daily_count),
    "stop-payments": (("--merchant", "MERCHANT0000001"), other_stop),
    "travel": (("--countries", "840", "--start", "2099-02-01", "--end", "2099-02-05"), other_trip),
}


async def issued(tmp_path, store_url: str) -> tuple[type, str]:  # noqa: F811
    """A card issued on the store (with the key store the CLI reads); the store's class."""
    async with opened_store(store_url) as store:
        service = CardService(store, demo_security(tmp_path), "test")
        return type(store), (await _product_account_card(service))["card_id"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_another_writers_change_between_the_read_and_the_write_is_kept(
    tmp_path,
    monkeypatch,
    store_url,  # noqa: F811
    command,
):
    options, change = COMMANDS[command]
    cls, card_id = await issued(tmp_path, store_url)
    interfere_after_reads(monkeypatch, cls, card_id, 1, change)
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("cards", command, card_id, *options, "--config", str(config))
    assert code == 0, output
    monkeypatch.undo()
    async with opened_store(store_url) as store:
        card = await store.get_card(card_id)
    if command == "limits":
        assert (card.limits.per_transaction, card.limits.daily_count) == (5000, 7)
    elif command == "stop-payments":
        merchants = [x.merchant_id for x in card.stop_payments]
        assert merchants == ["OTHERSHOP000000", "MERCHANT0000001"]
    else:
        assert [sorted(n.countries) for n in card.travel_notices] == [["124"], ["840"]]


async def test_a_card_changing_at_every_try_is_refused_409_and_its_changes_kept(
    tmp_path,
    monkeypatch,
    store_url,  # noqa: F811
):
    cls, card_id = await issued(tmp_path, store_url)
    changed = interfere_after_reads(monkeypatch, cls, card_id, 100, daily_count)
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli(
        "cards", "limits", card_id, "--per-transaction", "5000", "--config", str(config)
    )
    assert code != 0 and f"changed at each of {MERGE_TRIES} tries" in output, output
    assert "Traceback" not in output
    monkeypatch.undo()
    async with opened_store(store_url) as store:
        card = await store.get_card(card_id)
    assert card.limits.per_transaction is None  # nothing of the command written
    assert card.limits.daily_count == changed[-1].limits.daily_count
