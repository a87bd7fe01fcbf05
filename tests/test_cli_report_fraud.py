"""``authhost journal report-fraud`` prints the id of the report it wrote (it printed
report_id null: the service answers a write before the store's id is read), the id an
analyst pages ``journal fraud-reports --after-id`` with."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.store import opened_store
from authhost.store.interface import Commit, JournalQuery
from authhost.store.records import JournalEntry

runner = CliRunner()


async def _journal_entry(url: str, card_id: str, account_id: str) -> int:
    async with opened_store(url) as store:
        entry = JournalEntry(ts=1.0, mti="0100", message_class="authorisation",
                             response_code="00", card_id=card_id, stan="000001",
                             account_id=account_id, review=True)  # fmt: skip
        await store.commit(Commit(journal=entry, card_id=card_id))
        (stored,) = await store.journal(JournalQuery(card_id=card_id))
        return stored.journal_id


def test_report_fraud_prints_the_new_reports_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    config = tmp_path / "authhost.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n\n[security]\nkey_store = "{tmp_path / "k.json"}"\ndemo = true\n'
    )
    args = ["--config", str(config)]
    demo = runner.invoke(app, ["demo", *args])
    assert demo.exit_code == 0, demo.output
    card_id, _, _, account_id = demo.stdout.splitlines()[0].split()
    journal_id = trio.run(_journal_entry, url, card_id, account_id)

    ids = []
    for source in ("analyst", "chargeback"):  # a second report replaces the first: a new id
        result = runner.invoke(
            app, ["journal", "report-fraud", card_id, str(journal_id), "--source", source, *args]
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["source"] == source and report["journal_id"] == journal_id
        ids.append(report["report_id"])

    listed = runner.invoke(app, ["journal", "fraud-reports", "--output", "json", *args])
    assert listed.exit_code == 0, listed.output
    (only,) = json.loads(listed.stdout)
    assert isinstance(ids[0], int) and 0 < ids[0] < ids[1] == only["report_id"]
