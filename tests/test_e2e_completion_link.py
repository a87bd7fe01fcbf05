"""A switch's 0220 completion without field 38 (matched to its pre-authorisation by field 90
alone) is answered an approval code of its own; the journal links it to the hold it completed
(``JournalEntry.completes``), so the clearing file's presentment under the pre-authorisation's
code is ``already_posted`` naming that 0220, not posted a second time. Over a running host, on
both stores."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from host_admin import cli_config, run_cli
from test_e2e_auth import (  # noqa: F401 - store_url is a fixture
    balances_of,
    field_90,
    purchase,
    store_url,
)
from test_e2e_clearing import held_at_host, one_presentment, write_clearing

from authhost.store import opened_store
from authhost.store.interface import JournalQuery
from authhost.store.sqlite_schema import SCHEMA_VERSION


async def _journal_id_of(url: str, stan: str) -> int:
    """The journal id of the 0220 the switch sent with ``stan``."""
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1_000))
    (entry,) = [e for e in entries if e.stan == stan and e.mti == "0220"]
    return entry.journal_id


async def _posted_already(config: str, file: Path, completion_id: int, *runs: str) -> None:
    """Import ``file`` (once per run: "" or "--dry-run"): its one row is ``already_posted``,
    naming the completion."""
    for run in runs:
        code, output = await run_cli("clearing", "import", str(file), *run.split(),
                                     "--config", config)  # fmt: skip
        assert code == 0, output
        report = json.loads(output)
        assert report["outcomes"] == {"already_posted": 1}, output
        assert report["rows"][0]["journal_id"] == completion_id


async def test_a_completion_without_field_38_is_not_posted_again_by_its_presentment(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """200.00 held, 150.00 posted by a 0220 naming the pre-authorisation in field 90 only:
    the presentment of that purchase under the pre-authorisation's code is ``already_posted``
    (dry run and real), its row naming the completion, and the balances do not move."""
    _, switch, visa, held = await held_at_host(nursery, tmp_path, store_url, 20_000)
    checkout = purchase(visa, amount=15_000, t="0220", **{"90": field_90(held)})
    answered = await switch.send(checkout)
    assert answered["39"] == "00" and answered["38"] != held["38"]  # a code of its own
    after_checkout = await balances_of(switch, visa)
    completion_id = await _journal_id_of(store_url, checkout["11"])
    file = one_presentment(tmp_path / "clearing.csv", visa, held["38"], 15_000,
                           "70000000000000000000011")  # fmt: skip
    config = cli_config(tmp_path, store_url)
    for dry_run in (["--dry-run"], [], []):  # and the same file again: still nothing posted
        code, output = await run_cli("clearing", "import", str(file), *dry_run, "--config",
                                     str(config))  # fmt: skip
        assert code == 0, output
        report = json.loads(output)
        assert report["outcomes"] == {"already_posted": 1}, output
        assert report["rows"][0]["journal_id"] == completion_id
    assert await balances_of(switch, visa) == after_checkout


async def test_split_completions_without_field_38_are_not_posted_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """An order of 300.00 shipped in two parcels, each a numbered 0220 (48 SE 62) without
    field 38: both parcels' presentments under the order's code are ``already_posted``, the
    newest completion named, and nothing is charged twice."""
    _, switch, visa, order = await held_at_host(nursery, tmp_path, store_url, 30_000)
    parcels: list[dict[str, Any]] = []
    for amount, sequence in ((8_000, "0102"), (12_000, "0202")):
        parcel = purchase(
            visa, amount=amount, t="0220", **{"90": field_90(order), "48": f"R6204{sequence}"}
        )
        answered = await switch.send(parcel)
        assert answered["39"] == "00" and answered["38"] != order["38"]
        parcels.append(parcel)
    after_parcels = await balances_of(switch, visa)
    last_id = await _journal_id_of(store_url, parcels[-1]["11"])
    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    row = {"pan": visa["pan"], "approval_code": order["38"], "currency": visa["currency"],
           "presented_at": when}  # fmt: skip
    file = write_clearing(tmp_path / "parcels.csv", [
        {**row, "amount_minor": 8_000, "arn": "70000000000000000000029"},
        {**row, "amount_minor": 12_000, "arn": "70000000000000000000037"},
    ])  # fmt: skip
    code, output = await run_cli("clearing", "import", str(file), "--config",
                                 str(cli_config(tmp_path, store_url)))  # fmt: skip
    assert code == 0, output
    report = json.loads(output)
    assert report["outcomes"] == {"already_posted": 2}, output
    assert [r["journal_id"] for r in report["rows"]] == [last_id, last_id]
    assert await balances_of(switch, visa) == after_parcels


async def test_a_presentment_under_an_increments_code_finds_the_chains_completion(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A hotel's 200.00 pre-authorisation, an incremental authorisation of 50.00 (its own
    approval code), and a 0220 completion of 230.00 without field 38: the presentment under
    the increment's code is ``already_posted`` naming the completion (it was posted again,
    230.00 more: the completion names the chain's first hold, the increment's entry
    another key)."""
    _, switch, visa, stay = await held_at_host(nursery, tmp_path, store_url, 20_000)
    increment = purchase(visa, amount=5_000, **{"90": field_90(stay)})
    extended = await switch.send(increment)
    assert extended["39"] == "00" and extended["38"] != stay["38"], extended
    checkout = purchase(visa, amount=23_000, t="0220", **{"90": field_90(stay)})
    answered = await switch.send(checkout)
    assert answered["39"] == "00" and answered["38"] not in (stay["38"], extended["38"])
    after_checkout = await balances_of(switch, visa)
    completion_id = await _journal_id_of(store_url, checkout["11"])
    file = one_presentment(tmp_path / "clearing.csv", visa, extended["38"], 23_000,
                           "70000000000000000000045")  # fmt: skip
    config = str(cli_config(tmp_path, store_url))
    await _posted_already(config, file, completion_id, "--dry-run", "")
    assert await balances_of(switch, visa) == after_checkout


async def test_a_completion_journalled_before_the_link_gets_it_from_migration_43(nursery, tmp_path):
    """A store upgraded from before migration 41 has completions without ``completes``: the
    presentment of such a pre-authorisation was posted a second time. Migration 43 links a
    completion to the one earlier hold at its terminal that holds nothing now: here the
    second of two pre-authorisations there (the first is still open). SQLite only: Redis
    has no migrations (README, Known limitations)."""
    url = f"sqlite:///{tmp_path / 'authhost.db'}"
    _, switch, visa, still_open = await held_at_host(nursery, tmp_path, url, 5_000)
    stay = await switch.send(purchase(visa, amount=20_000))
    assert stay["39"] == "00"
    checkout = purchase(visa, amount=15_000, t="0220", **{"90": field_90(stay)})
    assert (await switch.send(checkout))["39"] == "00"
    after_checkout = await balances_of(switch, visa)
    completion_id = await _journal_id_of(url, checkout["11"])
    with sqlite3.connect(tmp_path / "authhost.db") as conn:  # as journalled before 41
        (linked,) = conn.execute(
            "SELECT completes FROM journal WHERE journal_id = ?", (completion_id,)
        ).fetchone()
        conn.execute("UPDATE journal SET completes = ''")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    assert linked
    file = one_presentment(tmp_path / "clearing.csv", visa, stay["38"], 15_000,
                           "70000000000000000000052")  # fmt: skip
    await _posted_already(str(cli_config(tmp_path, url)), file, completion_id, "")
    assert await balances_of(switch, visa) == after_checkout
    with sqlite3.connect(tmp_path / "authhost.db") as conn:
        assert conn.execute(
            "SELECT journal_id, completes FROM journal WHERE completes <> ''"
        ).fetchall() == [(completion_id, linked)]
    assert still_open["39"] == "00"


async def test_link_completions_gives_an_old_completion_its_link_on_either_store(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """What migration 43 does on SQLite, ``authhost store link-completions`` does on either
    store (Redis has no migrations): a completion journalled without its link (made so here
    by writing it empty, as an older authhost journalled it) gets it from the journal, the
    pre-authorisation still open at the terminal aside; its presentment is then
    ``already_posted``, and a second run links nothing."""
    _, switch, visa, still_open = await held_at_host(nursery, tmp_path, store_url, 5_000)
    stay = await switch.send(purchase(visa, amount=20_000))
    checkout = purchase(visa, amount=15_000, t="0220", **{"90": field_90(stay)})
    assert stay["39"] == still_open["39"] == (await switch.send(checkout))["39"] == "00"
    after_checkout = await balances_of(switch, visa)
    completion_id = await _journal_id_of(store_url, checkout["11"])
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=1_000))
        (completion,) = [e for e in entries if e.journal_id == completion_id]
        linked = completion.completes
        assert linked and await store.set_journal_completes(completion, "")
    config = str(cli_config(tmp_path, store_url))
    for expected in (1, 0):
        code, output = await run_cli("store", "link-completions", "--config", config)
        assert code == 0, output
        assert json.loads(output)["completions_linked"] == expected, output
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=1_000))
    assert [(e.journal_id, e.completes) for e in entries if e.completes] == [
        (completion_id, linked)
    ]
    file = one_presentment(tmp_path / "clearing.csv", visa, stay["38"], 15_000,
                           "70000000000000000000060")  # fmt: skip
    await _posted_already(config, file, completion_id, "")
    assert await balances_of(switch, visa) == after_checkout


async def test_an_increments_presentment_is_not_taken_for_another_stays_completion(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Two rooms on one card at one hotel's terminal: room 1's 200.00 pre-authorisation,
    room 2's 100.00, then room 1 extended by 50.00 (an increment, its own code). Only room 2
    is completed online (room 1 checks out through the clearing alone). The presentment of
    250.00 under room 1's increment's code is posted: room 2's completion posted room 2, not
    room 1 (it was taken as the increment chain's completion, the newest hold's, and room 1's
    250.00 was never charged)."""
    _, switch, visa, room_1 = await held_at_host(nursery, tmp_path, store_url, 20_000)
    room_2 = await switch.send(purchase(visa, amount=10_000))
    extended = await switch.send(purchase(visa, amount=5_000, **{"90": field_90(room_1)}))
    assert room_2["39"] == extended["39"] == "00", (room_2, extended)
    checkout_2 = purchase(visa, amount=10_000, t="0220", **{"90": field_90(room_2)})
    assert (await switch.send(checkout_2))["39"] == "00"
    before = await balances_of(switch, visa)
    file = one_presentment(tmp_path / "clearing.csv", visa, extended["38"], 25_000,
                           "70000000000000000000078")  # fmt: skip
    code, output = await run_cli("clearing", "import", str(file),
                                 "--config", str(cli_config(tmp_path, store_url)))  # fmt: skip
    assert code == 0, output
    assert json.loads(output)["outcomes"] == {"matched": 1}, output
    after = await balances_of(switch, visa)
    assert after[0] == before[0] - 25_000  # room 1's 250.00 charged
