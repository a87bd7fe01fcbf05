"""A product's limits change as a card's do (``authhost products update`` and ``products
limits``, PATCH /v1/products/{id}): the limits named are set, the product's others kept, a
null or ``--remove`` drops one, ``--replace`` (PUT .../limits) sets the whole set; the change
is merged into the product as read and written only over that version, so another writer's
change in between is kept. Both stores. ``limits`` used to replace the whole set: tuning one
limit of a prepaid product silently dropped its ``max_balance``."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from host_admin import cli_config, run_cli
from test_admin_support import demo_security
from test_e2e_auth import store_url  # noqa: F401 - fixture

from authhost.admin import requests as rq
from authhost.admin.service import CardService
from authhost.admin.service.base import MERGE_TRIES
from authhost.cards.model import CardKind, Product
from authhost.store import opened_store

PREPAID = {"per_transaction": 10_000, "daily_count": 20, "max_balance": 50_000}


async def prepaid_product(tmp_path, store_url: str) -> type:  # noqa: F811
    """A prepaid product ``pp`` with three limits, ``max_balance`` among them; the store's
    class."""
    async with opened_store(store_url) as store:
        service = CardService(store, demo_security(tmp_path), "test")
        await service.create_product(
            rq.NewProduct(
                product_id="pp",
                issuer_id="bank",
                name="Prepaid",
                bin="476173",
                kind=CardKind.PREPAID,
                limits=rq.LimitsSpec(**PREPAID),
            )
        )
        return type(store)


async def limits_of(store_url: str) -> dict[str, Any]:  # noqa: F811
    async with opened_store(store_url) as store:
        product = await store.get_product("pp")
    return {k: v for k, v in vars_of(product.limits).items() if v is not None}


def vars_of(limits: Any) -> dict[str, Any]:
    return {name: getattr(limits, name) for name in limits.__slots__}


async def cli(tmp_path, store_url: str, *args: str) -> dict[str, Any]:  # noqa: F811
    code, output = await run_cli(*args, "--config", str(cli_config(tmp_path, store_url)))
    assert code == 0, output
    return json.loads(output)


async def test_products_update_sets_the_limits_named_and_keeps_the_others(
    tmp_path,
    store_url,  # noqa: F811
):
    await prepaid_product(tmp_path, store_url)
    change = tmp_path / "change.json"
    change.write_text(json.dumps({"limits": {"daily_count": 5}}))
    shown = await cli(tmp_path, store_url, "products", "update", "pp", "--json", str(change))
    assert shown["limits"]["max_balance"] == 50_000  # was dropped: no limit any more
    assert await limits_of(store_url) == {**PREPAID, "daily_count": 5}

    change.write_text(json.dumps({"limits": {"per_transaction": None}}))  # null: that one off
    await cli(tmp_path, store_url, "products", "update", "pp", "--json", str(change))
    assert await limits_of(store_url) == {"daily_count": 5, "max_balance": 50_000}


async def test_products_limits_sets_removes_and_replaces(
    tmp_path,
    store_url,  # noqa: F811
):
    await prepaid_product(tmp_path, store_url)
    await cli(tmp_path, store_url, "products", "limits", "pp", "--atm-daily-count", "3")
    assert await limits_of(store_url) == {**PREPAID, "atm_daily_count": 3}
    await cli(tmp_path, store_url, "products", "limits", "pp", "--remove", "per-transaction")
    assert await limits_of(store_url) == {"daily_count": 20, "max_balance": 50_000,
                                          "atm_daily_count": 3}  # fmt: skip
    await cli(tmp_path, store_url, "products", "limits", "pp", "--replace", "--max-balance", "9")
    assert await limits_of(store_url) == {"max_balance": 9}
    await cli(tmp_path, store_url, "products", "limits", "pp")  # no option: none left
    assert await limits_of(store_url) == {}

    config = str(cli_config(tmp_path, store_url))
    for bad in (("--remove", "per-transction"), ("--remove", "max-balance", "--max-balance", "1"),
                ("--replace", "--remove", "max-balance")):  # fmt: skip
        code, output = await run_cli("products", "limits", "pp", *bad, "--config", config)
        assert code == 1 and output.startswith("error:"), (bad, output)


def interfere_after_reads(monkeypatch: pytest.MonkeyPatch, cls: type, times: int) -> list[int]:
    """Make the next ``times`` reads of product ``pp`` (by any store of class ``cls``: the
    CLI's) each followed by another writer's change of its ``atm_daily_amount``, before the
    reader writes; the amounts written."""
    get_product, put_product = cls.get_product, cls.put_product
    written: list[int] = []

    async def read_then_changed(self, wanted: str) -> Product | None:
        product = await get_product(self, wanted)
        if product is not None and wanted == "pp" and len(written) < times:
            amount = 1_000 + len(written)
            limits = replace(product.limits, atm_daily_amount=amount)
            other = replace(product, limits=limits, version=product.version + 1)
            await put_product(self, other, product.version)
            written.append(amount)
        return product  # as read: the other change lands after it

    monkeypatch.setattr(cls, "get_product", read_then_changed)
    return written


async def test_another_writers_change_between_the_read_and_the_write_is_kept(
    tmp_path,
    monkeypatch,
    store_url,  # noqa: F811
):
    cls = await prepaid_product(tmp_path, store_url)
    interfere_after_reads(monkeypatch, cls, 1)
    change = tmp_path / "change.json"
    change.write_text(json.dumps({"limits": {"daily_count": 5}}))
    await cli(tmp_path, store_url, "products", "update", "pp", "--json", str(change))
    monkeypatch.undo()
    assert await limits_of(store_url) == {**PREPAID, "daily_count": 5, "atm_daily_amount": 1_000}


async def test_a_product_changing_at_every_try_is_refused_and_its_changes_kept(
    tmp_path,
    monkeypatch,
    store_url,  # noqa: F811
):
    cls = await prepaid_product(tmp_path, store_url)
    written = interfere_after_reads(monkeypatch, cls, 100)
    config = str(cli_config(tmp_path, store_url))
    code, output = await run_cli("products", "limits", "pp", "--daily-count", "5",
                                 "--config", config)  # fmt: skip
    assert code != 0 and f"changed at each of {MERGE_TRIES} tries" in output, output
    assert "Traceback" not in output
    monkeypatch.undo()
    assert await limits_of(store_url) == {**PREPAID, "atm_daily_amount": written[-1]}
