"""The files of clear card data (the bureau's personalisation file, the networks' exception
file, the merchants' account updates) audited before anything is written in them, on both
stores (PCI DSS 10): the file is on disk and the audit log in the store, never one write, so
each is audited as begun (``*_begun``, with its ``run_id``) once it is created and empty, and
as done after it is written (the same ``run_id``). A process that dies between leaves the
file begun and not done, where before it left a file of clear PANs the log never named."""

from __future__ import annotations

import json

import pytest
from test_admin_service import _drive, _product_account_card, backend, store_args  # noqa: F401
from test_admin_support import open_service
from test_store_card_audit import BrokenSeal

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError
from authhost.security.errors import SecurityError


class Crash(BaseException):
    """The process dying at an audit entry: nothing after it runs."""


def dies_at(service, action: str) -> None:  # noqa: ANN001
    """The process dies when the entry ``action`` is appended (not written)."""
    append = service.store.append_audit

    async def dying(entry, seal=None):  # noqa: ANN001, ANN202
        if entry.action == action:
            raise Crash(action)
        return await append(entry, seal)

    service.store.append_audit = dying


async def cards_audit(service) -> list[tuple[str, dict]]:  # noqa: ANN001
    return [(e["action"], json.loads(e["after"])) for e in await service.audit(subject="cards")]


async def test_a_personalisation_file_cut_short_is_audited_as_begun(store_args, tmp_path):  # noqa: F811
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        out = tmp_path / "bureau.jsonl"
        dies_at(service, "card.export_personalisation")
        with pytest.raises(Crash):
            await service.export_personalisation([card["card_id"]], out)
        assert out.exists() and len(out.read_text().splitlines()) == 1  # clear data written
        [(action, begun)] = await cards_audit(service)
        assert action == "card.export_personalisation_begun"
        assert begun["file"] == str(out.resolve()) and begun["cards"] == 1 and begun["run_id"]
        actions = [e["action"] for e in await service.audit(subject=card["card_id"])]
        assert "card.export_personalisation" not in actions  # the done entry never came


async def test_each_file_is_begun_then_done_under_one_run_id(store_args, tmp_path):  # noqa: F811
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        await service.export_personalisation([card["card_id"]], tmp_path / "bureau.jsonl")
        await _drive(service, card["card_id"], ["ship", "activate", "report-lost"])
        await service.export_exception_file(tmp_path / "exceptions.jsonl")
        await service.export_account_updates(tmp_path / "updates.jsonl", day="2026-11-27")
        audited = await cards_audit(service)
        assert [a for a, _ in audited] == [
            "card.export_personalisation_begun",
            "card.exception_file_begun",
            "card.exception_file",
            "card.account_updates_begun",
            "card.account_updates",
        ]
        [exported] = [
            e for e in await service.audit(subject=card["card_id"])
            if e["action"] == "card.export_personalisation"
        ]  # fmt: skip
        assert json.loads(exported["after"])["run_id"] == audited[0][1]["run_id"]
        assert audited[1][1]["run_id"] == audited[2][1]["run_id"] != audited[0][1]["run_id"]
        assert audited[1][1]["listed"] == audited[2][1]["listed"] == 1
        assert audited[3][1]["run_id"] == audited[4][1]["run_id"]


async def test_a_file_refused_or_whose_entry_fails_leaves_no_file_and_no_entry(
    store_args,  # noqa: F811
    tmp_path,
):
    """A file that exists is refused before any entry; a begun entry that fails (the
    security module gone) removes the file, still empty: no clear data without its entry."""
    async with open_service(*store_args) as service:
        card = await _product_account_card(service)
        taken = tmp_path / "taken.jsonl"
        taken.write_text("")
        with pytest.raises(ConflictError, match="exists"):
            await service.export_personalisation([card["card_id"]], taken)
        assert await cards_audit(service) == []
        service.security.audit_seal = BrokenSeal()
        out = tmp_path / "bureau.jsonl"
        with pytest.raises(OSError):
            await service.export_personalisation([card["card_id"]], out)
        assert not out.exists()


async def test_a_run_that_fails_after_it_began_removes_its_file_and_says_so(
    store_args,  # noqa: F811
    tmp_path,
):
    """The security module fails at the second card (the first card's clear data written):
    the file is removed and its run ends in the log as removed, with why, under the run's
    id; begun and never done is left to a crash."""
    async with open_service(*store_args) as service:
        first = await _product_account_card(service)
        second = await service.issue_card(rq.IssueCard(product_id="p1", account_id="a1"))
        values, made = service.security.card_values, []

        def gone_at_the_second(*args, **options):  # noqa: ANN002, ANN003, ANN202
            if made:
                raise SecurityError("the security module is gone")
            made.append(1)
            return values(*args, **options)

        service.security.card_values = gone_at_the_second
        out = tmp_path / "bureau.jsonl"
        with pytest.raises(SecurityError):
            await service.export_personalisation([first["card_id"], second["card_id"]], out)
        assert not out.exists()
        [(begun, started), (ended, removed)] = await cards_audit(service)
        assert (begun, ended) == (
            "card.export_personalisation_begun",
            "card.export_personalisation",
        )
        assert removed == {
            "file": str(out.resolve()), "run_id": started["run_id"], "removed": True,
            "stopped": "SecurityError",
        }  # fmt: skip
