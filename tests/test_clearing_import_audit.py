"""A clearing import's audit entries (PCI DSS 10), over the admin API of a running host on both
stores: its writes are 0220 advices posted through the authorisation pipeline, journalled
each with its outcome and no audit entry (the authorisation path's cost), so the import is
audited before its first write (``clearing.import_begun``) and after its last
(``clearing.import``, the same ``import_id``). An import cut short after it posted shows as
begun and never ended, where before it was not in the audit log at all."""

from __future__ import annotations

import json
import time
from typing import Any

import trio
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import balances_of, luhn_fix, store_url  # noqa: F401 - a fixture
from test_e2e_clearing import held_at_host_with_admin

from authhost.admin import clearing
from authhost.admin.service import clearing_imports
from authhost.store.interface import StoreUnavailable


async def clearing_audit(port: int) -> list[dict[str, Any]]:
    """The clearing imports' audit entries, oldest first: (action, after)."""
    reply = await call(port, "GET", "/v1/audit?subject=clearing", token=AUDITOR_TOKEN)
    entries = sorted(reply.json["audit"], key=lambda a: a["audit_id"])
    return [(a["action"], json.loads(a["after"])) for a in entries]


def clearing_csv(visa: dict[str, Any], approval_code: str, arn: str) -> str:
    """A file of two lines: the held purchase presented at 120.00, and an unknown card."""
    now = time.time()
    return (
        "pan,approval_code,amount_minor,currency,presented_at,arn\n"
        f"{visa['pan']},{approval_code},12000,{visa['currency']},{now},{luhn_fix(arn * 22)}\n"
        f"{luhn_fix('476173' + '8' * 9)},ABC123,500,{visa['currency']},{now},"
        f"{luhn_fix('9' * 22)}\n"
    )


async def test_an_import_is_audited_when_it_begins_and_when_it_ends(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host, port, switch, visa, held = await held_at_host_with_admin(
        nursery, tmp_path, store_url, 10_000
    )
    done = await call(
        port, "POST", "/v1/clearing", payload={"csv": clearing_csv(visa, held["38"], "7")}
    )
    assert done.status == 200 and done.json["outcomes"] == {"matched": 1, "unknown_card": 1}
    (begun, started), (ended, summary) = await clearing_audit(port)
    assert (begun, ended) == ("clearing.import_begun", "clearing.import")
    assert started["presentments"] == 2 and started["lines"] == [2, 3]
    assert summary["import_id"] == started["import_id"] and summary["presentments"] == 2
    assert visa["pan"] not in json.dumps([started, summary])
    dry = await call(port, "POST", "/v1/clearing",
                     payload={"csv": clearing_csv(visa, held["38"], "6"), "dry_run": True})  # fmt: skip
    assert dry.status == 200
    assert len(await clearing_audit(port)) == 2  # a dry run writes nothing: no entry


async def test_an_import_cut_short_after_it_posted_shows_as_begun_and_not_ended(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    monkeypatch,
):
    """The store fails after the file's 0220s were posted (before its end was audited): the
    API answers 503, the money moved, and the audit log has the import begun with no end; the
    file imported again is replayed (nothing posted twice), begun and ended."""
    host, port, switch, visa, held = await held_at_host_with_admin(
        nursery, tmp_path, store_url, 10_000
    )
    ledger, available = await balances_of(switch, visa)
    real = clearing.post_presentments

    async def posted_then_the_store_fails(*args, **options):  # noqa: ANN002, ANN003, ANN202
        await real(*args, **options)
        raise StoreUnavailable("the store stopped taking writes")

    monkeypatch.setattr(clearing, "post_presentments", posted_then_the_store_fails)
    text = clearing_csv(visa, held["38"], "7")
    cut = await call(port, "POST", "/v1/clearing", payload={"csv": text})
    assert cut.status == 503, cut.json
    assert await balances_of(switch, visa) == (ledger - 12_000, available - 2_000)
    [(action, begun)] = await clearing_audit(port)
    assert action == "clearing.import_begun" and begun["presentments"] == 2

    monkeypatch.undo()
    again = await call(port, "POST", "/v1/clearing", payload={"csv": text})
    assert again.status == 200 and again.json["outcomes"] == {"duplicate": 1, "unknown_card": 1}
    assert await balances_of(switch, visa) == (ledger - 12_000, available - 2_000)
    audited = await clearing_audit(port)
    assert [a for a, _ in audited] == ["clearing.import_begun"] * 2 + ["clearing.import"]
    assert audited[2][1]["import_id"] == audited[1][1]["import_id"] != begun["import_id"]


async def test_an_import_whose_lease_lapsed_is_audited_as_stopped(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    monkeypatch,
):
    """An import that stops itself (its lease lapsed before its first presentment: another
    import may run) answers 409 and, the store answering, ends its audit with why it
    stopped: begun and never ended is left to a crash or a store that stopped answering."""
    host, port, switch, visa, held = await held_at_host_with_admin(
        nursery, tmp_path, store_url, 10_000
    )
    monkeypatch.setattr(clearing_imports, "LEASE_TTL_S", 0.01)  # renewed each step, lapses
    real = clearing.post_presentments

    async def the_lease_lapses_first(*args, **options):  # noqa: ANN002, ANN003, ANN202
        await trio.sleep(0.05)  # past its life: the next renewal finds it lapsed
        return await real(*args, **options)

    monkeypatch.setattr(clearing, "post_presentments", the_lease_lapses_first)
    stopped = await call(
        port, "POST", "/v1/clearing", payload={"csv": clearing_csv(visa, held["38"], "7")}
    )
    assert stopped.status == 409, stopped.json
    (begun, started), (ended, summary) = await clearing_audit(port)
    assert (begun, ended) == ("clearing.import_begun", "clearing.import")
    assert summary["import_id"] == started["import_id"]
    assert "not renewed" in summary["stopped"] and "outcomes" not in summary
