"""The core ledger's movements feed across `authhost store restore`, over a real server: the
ledger's cursor is a journal id the replaced store gave out, so the restored store must
number its next entries after it, or the ledger never lists the movements made after the
restore (SQLite: Redis has no restore command; its dump or AOF brings its counter back)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import trio
from conftest import free_port
from iso_client import Switch
from test_e2e_auth import purchase
from test_e2e_crash import start_server, wait_for_port
from typer.testing import CliRunner

from authhost.admin.movements import next_movements
from authhost.cli.app import app
from authhost.store import opened_store


async def _purchases(workdir: Path, url: str, count: int) -> list[str]:
    """``count`` approved purchases through a freshly started server, then stop it: their
    RRNs."""
    port = free_port()
    proc = start_server(workdir, port, url)
    try:
        await wait_for_port(port, proc)
        card = json.loads((workdir / "demo-cards.json").read_text())["cards"][0]
        switch = await Switch.connect(port)
        rrns = []
        for _ in range(count):
            fields = purchase(card, amount=100)
            assert (await switch.send(fields))["39"] == "00"
            rrns.append(fields["37"])
        return rrns
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


async def _feed(url: str, after_id: int) -> dict:
    """The movements feed as a poll well after the entries settled reads it."""
    async with opened_store(url) as store:
        return await next_movements(store.journal, after_id, 10_000, time.time() + 10)


def _cli(*args: str) -> None:
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 0, done.output


async def test_a_movement_after_a_restore_is_listed_after_the_ledgers_cursor(tmp_path, monkeypatch):
    """Before the fix the restored store handed out again the journal ids between the
    backup's newest and the replaced store's newest: the purchase after the restore got an
    id the ledger's cursor had passed, and the feed never listed it (money moved on the
    card that the core ledger never booked)."""
    monkeypatch.chdir(tmp_path)  # the demo key store: the restore's audit entry is sealed
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    await _purchases(tmp_path, url, 2)
    await trio.to_thread.run_sync(
        _cli, "store", "backup", str(tmp_path / "nightly.db"), "--store", url
    )
    await _purchases(tmp_path, url, 3)  # after the backup: the ledger books them
    before = await _feed(url, 0)
    cursor = before["next_after_id"]
    assert len(before["movements"]) == 5

    await trio.to_thread.run_sync(
        _cli, "store", "restore", str(tmp_path / "nightly.db"), "--store", url
    )
    [after_restore] = await _purchases(tmp_path, url, 1)

    listed = await _feed(url, cursor)
    assert [m["rrn"] for m in listed["movements"]] == [after_restore]
    assert listed["next_after_id"] > cursor
    # nothing the ledger had booked is listed again from its cursor, and polling on is quiet
    assert (await _feed(url, listed["next_after_id"]))["movements"] == []


def _reports(url: str, after_id: int) -> list[dict]:
    done = CliRunner().invoke(
        app, ["journal", "fraud-reports", "--after-id", str(after_id), "-o", "json", "--store", url]
    )
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


async def test_a_fraud_report_after_a_restore_is_listed_after_the_case_managers_cursor(
    tmp_path, monkeypatch
):
    """The fraud case manager pages `journal fraud-reports` by report id: before the fix a
    report filed after a restore took a report id its cursor had passed, and was never
    listed."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    await _purchases(tmp_path, url, 2)
    await trio.to_thread.run_sync(
        _cli, "store", "backup", str(tmp_path / "nightly.db"), "--store", url
    )
    first, second = (await _feed(url, 0))["movements"]
    for entry in (first, second):  # reported after the backup: the case manager reads them
        await trio.to_thread.run_sync(
            _cli, "journal", "report-fraud", entry["card_id"], str(entry["journal_id"]),
            "--source", "analyst", "--store", url,
        )  # fmt: skip
    cursor = max(r["report_id"] for r in await trio.to_thread.run_sync(_reports, url, 0))

    await trio.to_thread.run_sync(
        _cli, "store", "restore", str(tmp_path / "nightly.db"), "--store", url
    )
    await trio.to_thread.run_sync(
        _cli, "journal", "report-fraud", first["card_id"], str(first["journal_id"]),
        "--source", "chargeback", "--store", url,
    )  # fmt: skip
    listed = await trio.to_thread.run_sync(_reports, url, cursor)
    assert [(r["journal_id"], r["source"]) for r in listed] == [(first["journal_id"], "chargeback")]
