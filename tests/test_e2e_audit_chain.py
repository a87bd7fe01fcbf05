"""The audit log's keyed hash chain over a running host, on both stores: the entries the
admin API and the CLI write form one chain, and an entry changed or removed directly in the
store (by whoever can write it but holds no master key) is named by ``GET /v1/audit/verify``
and ``authhost audit verify``; another installation's master key is told apart from tampering.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

import coredis
import trio
from conftest import free_port
from host_admin import card_id_of, cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, OPERATOR_TOKEN, call
from test_e2e_auth import start_host, store_url  # noqa: F401 - fixture

from authhost.config import AdminConfig
from authhost.store import opened_store
from authhost.store.records import AuditEntry
from authhost.store.redis_keys import Keys

VERIFY = "/v1/audit/verify"


async def verified(port: int, head: str = "") -> dict[str, Any]:
    answer = await call(port, "GET", VERIFY + (f"?head={head}" if head else ""),
                        token=AUDITOR_TOKEN)  # fmt: skip
    assert answer.status == 200, answer
    return answer.json


async def audited_changes(port: int, card_id: str, rounds: int = 3) -> None:
    """Per round: a card suspended and resumed, a list, a load (sent twice with its key: one
    entry), an overdraft: each change and its entry one write (a list: its entry alone)."""
    account = (await call(port, "GET", f"/v1/cards/{card_id}")).json["account_id"]
    for n in range(rounds):
        for action in ("suspend", "resume"):
            assert (await call(port, "POST", f"/v1/cards/{card_id}/{action}")).status == 200
        listed = await call(port, "PUT", "/v1/lists/blocked", payload={"values": [f"M{n}"]})
        assert listed.status == 200, listed
        key = {"Idempotency-Key": f"load-{secrets.token_hex(4)}"}
        for _ in range(2):
            loaded = await call(port, "POST", f"/v1/accounts/{account}/funds",
                                payload={"amount_minor": 100 + n}, headers=key)  # fmt: skip
            assert loaded.status == 200, loaded
        limit = await call(port, "PUT", f"/v1/accounts/{account}/credit-limit",
                           payload={"credit_limit": 1_000 * n})  # fmt: skip
        assert limit.status == 200, limit


class Tamper:
    """Changing the store's audit entries behind authhost's back, as an intruder would."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def change(self, audit_id: int, **fields: Any) -> None:
        if self.url.startswith("sqlite"):
            sets = ", ".join(f"{name} = ?" for name in fields)
            self._sql(f"UPDATE audit SET {sets} WHERE audit_id = ?", (*fields.values(), audit_id))
            return
        client, keys = self._redis()
        async with client:
            entry = json.loads(await client.hget(keys.audit, str(audit_id)))
            await client.hset(keys.audit, {str(audit_id): json.dumps({**entry, **fields})})

    async def remove(self, audit_id: int) -> None:
        if self.url.startswith("sqlite"):
            self._sql("DELETE FROM audit WHERE audit_id = ?", (audit_id,))
            return
        client, keys = self._redis()
        async with client:
            await client.hdel(keys.audit, [str(audit_id)])
            await client.zrem(keys.audit_all, [str(audit_id)])

    def _sql(self, sql: str, args: tuple[Any, ...]) -> None:
        with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
            assert conn.execute(sql, args).rowcount == 1

    def _redis(self) -> tuple[Any, Keys]:
        parts = urlsplit(self.url)
        prefix = parse_qs(parts.query)["prefix"][0]
        client = coredis.Redis.from_url(f"{parts.scheme}://{parts.netloc}{parts.path}")
        return client, Keys(prefix)


async def test_an_entry_changed_or_removed_in_the_store_is_named(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    await audited_changes(at.port, at.card_id)
    clean = await verified(at.port)
    assert clean["ok"] and clean["break_count"] == 0, clean
    assert clean["chained"] == clean["verified"] == clean["entries"] >= 15, clean
    audit = (await call(at.port, "GET", "/v1/audit?limit=1000", token=AUDITOR_TOKEN)).json["audit"]
    assert clean["head"] == audit[-1]["chain"] and clean["head_id"] == audit[-1]["audit_id"]
    assert len({a["chain"] for a in audit}) == len(audit)  # each value its own
    assert [a["action"] for a in audit].count("account.funds") == 3  # a load resent: once

    # an intruder edits who suspended the card: that entry, and only it, is named
    suspended = next(a for a in audit if a["action"] == "card.suspend")
    await Tamper(store_url).change(suspended["audit_id"], actor="nobody")
    changed = await verified(at.port)
    assert not changed["ok"] and changed["break_count"] == 1, changed
    assert changed["breaks"][0]["audit_id"] == suspended["audit_id"], changed
    assert changed["breaks"][0]["problem"] == "changed" and not changed["key_mismatch"]
    await Tamper(store_url).change(suspended["audit_id"], actor=suspended["actor"])
    assert (await verified(at.port))["ok"]  # put back as it was: whole again

    # and deletes the list change after it: the entry after the gap is named
    gone = next(a for a in audit if a["audit_id"] > suspended["audit_id"] + 2)
    await Tamper(store_url).remove(gone["audit_id"])
    removed = await verified(at.port)
    assert not removed["ok"] and removed["break_count"] == 1, removed
    [gap] = removed["breaks"]
    assert gap["problem"] == "removed" and gap["audit_id"] == gone["audit_id"] + 1, gap
    assert str(gone["audit_id"]) in gap["detail"]


async def test_the_newest_entries_removed_are_caught_by_a_recorded_head(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Deleting the newest entries leaves a chain that verifies; the head an earlier verify
    printed (and the operator kept off-host) is then missing from it."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    await audited_changes(at.port, at.card_id, rounds=1)
    recorded = (await verified(at.port))["head"]
    assert (await verified(at.port, recorded))["ok"]
    await audited_changes(at.port, at.card_id, rounds=1)
    assert (await verified(at.port, recorded))["ok"]  # more entries since: still there

    latest = await verified(at.port)
    await Tamper(store_url).remove(latest["head_id"])
    truncated = await verified(at.port, latest["head"])
    assert truncated["break_count"] == 0 and not truncated["ok"], truncated
    assert "no entry has the expected head" in truncated["error"]
    bad = await call(at.port, "GET", f"{VERIFY}?head=xyz", token=AUDITOR_TOKEN)
    assert bad.status == 422 and "64 hex digits" in bad.json["error"], bad


async def test_writers_in_several_processes_make_one_chain(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The CLI (its own store connection, as another process has) appends while the admin
    API does: each append is sealed after the newest entry in the same atomic step, so the
    two still make one chain (sealed after a head read earlier, one would break it)."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    config = cli_config(tmp_path, store_url)
    values = tmp_path / "values.txt"
    values.write_text("M1\nM2\n")
    codes: list[int] = []

    async def cli_writes() -> None:
        for _ in range(6):
            code, output = await run_cli("lists", "put", "cli-list", str(values),
                                         "--config", str(config))  # fmt: skip
            codes.append(code)

    async with trio.open_nursery() as writers:
        writers.start_soon(cli_writes)
        writers.start_soon(audited_changes, at.port, at.card_id, 4)
    assert codes == [0] * 6
    result = await verified(at.port)
    assert result["ok"] and result["verified"] == result["chained"] == result["entries"], result
    code, output = await run_cli("audit", "verify", "--config", str(config))
    assert code == 0 and json.loads(output)["head"] == result["head"], output


async def test_older_entries_are_counted_and_another_master_key_is_not_tampering(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """Entries written before the chain existed are counted, not flagged; a verify under
    another installation's master key says so instead of naming every entry."""
    async with opened_store(store_url) as store:  # an older authhost's entries
        for n in range(2):
            await store.append_audit(AuditEntry(1_700_000_000.0 + n, "op", "card.issue", f"c{n}"))
    at = await visa_at_host(nursery, tmp_path, store_url)
    await audited_changes(at.port, at.card_id, rounds=1)
    result = await verified(at.port)
    assert result["ok"] and result["unchained_before"] == 2, result
    assert result["chained"] == result["entries"] - 2 == result["verified"], result

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = elsewhere / "cli.toml"
    other.write_text(
        f'[store]\nurl = "{store_url}"\n'
        f'[security]\nkey_store = "{elsewhere / "keys.json"}"\ndemo = true\n'
    )
    code, output = await run_cli("audit", "verify", "--config", str(other))
    view = json.loads(output)
    assert code == 1 and view["key_mismatch"] and view["breaks"] == [], output
    assert "another one" in view["error"], output


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        return page.read().decode()


async def _metric_until(port: int, line: str, within_s: float = 20.0) -> str:
    with trio.fail_after(within_s):
        while line not in (text := await trio.to_thread.run_sync(_scrape, port)):
            await trio.sleep(0.2)
    return text


async def test_the_server_walks_the_chain_and_raises_the_alarm(
    nursery,
    tmp_path,
    caplog,
    store_url,  # noqa: F811 - the fixture
):
    """PCI DSS 10.3.4 wants a change to the log to raise an alert: with [admin]
    audit_verify_every_s the server walks the chain itself; a changed entry turns
    authhost_audit_chain_ok to 0 and is logged at ERROR, naming it."""
    caplog.set_level(logging.INFO, logger="authhost")
    port, metrics_port = free_port(), free_port()
    tokens = f"{OPERATOR_TOKEN}:operator,{AUDITOR_TOKEN}:auditor"
    admin = AdminConfig(port=port, tokens=tokens, audit_verify_every_s=1)
    host = await start_host(nursery, tmp_path, store_url, admin=admin, metrics_port=metrics_port)
    card_id = await card_id_of(port, host.cards["active-visa"]["pan"])
    await audited_changes(port, card_id, rounds=1)
    text = await _metric_until(metrics_port, "authhost_audit_chain_ok 1.0")
    assert "authhost_audit_chain_breaks 0.0" in text

    audit = (await call(port, "GET", "/v1/audit?limit=1000", token=AUDITOR_TOKEN)).json["audit"]
    changed = next(a for a in audit if a["action"] == "card.suspend")
    await Tamper(store_url).change(changed["audit_id"], after="{}")
    text = await _metric_until(metrics_port, "authhost_audit_chain_ok 0.0")
    assert "authhost_audit_chain_breaks 1.0" in text
    [alarm] = {r.fields["break_count"]: r for r in caplog.records
               if r.getMessage().startswith("audit chain broken")}.values()  # fmt: skip
    assert alarm.levelno == logging.ERROR
    assert alarm.fields["breaks"][0]["audit_id"] == changed["audit_id"]


async def _walked_host(nursery, tmp_path, url: str) -> tuple[int, int, list[dict[str, Any]]]:
    """A host walking its chain every second, some audited changes, and a good walk of them
    all: its admin and metrics ports and the entries."""
    port, metrics_port = free_port(), free_port()
    tokens = f"{OPERATOR_TOKEN}:operator,{AUDITOR_TOKEN}:auditor"
    admin = AdminConfig(port=port, tokens=tokens, audit_verify_every_s=1)
    host = await start_host(nursery, tmp_path, url, admin=admin, metrics_port=metrics_port)
    await audited_changes(port, await card_id_of(port, host.cards["active-visa"]["pan"]), rounds=1)
    audit = (await call(port, "GET", "/v1/audit?limit=1000", token=AUDITOR_TOKEN)).json["audit"]
    await _metric_until(metrics_port, f"authhost_audit_chain_entries {float(len(audit))}")
    await _metric_until(metrics_port, "authhost_audit_chain_ok 1.0")
    return port, metrics_port, audit


async def test_the_server_remembers_the_head_it_verified_between_its_walks(
    nursery,
    tmp_path,
    caplog,
    store_url,  # noqa: F811 - the fixture
):
    """An intruder who blanks every entry's chain value makes the whole log read as written
    before the chain existed (`verify` alone: ok), and one who deletes the newest entries
    leaves a log that still verifies: the server's walks compare with the head their last
    good walk saw, so both raise the alarm."""
    caplog.set_level(logging.INFO, logger="authhost")
    port, metrics_port, audit = await _walked_host(nursery, tmp_path, store_url)

    for entry in audit:  # every chain value blanked: no break inside the log any more
        await Tamper(store_url).change(entry["audit_id"], chain="")
    blanked = await verified(port)
    assert blanked["ok"] and blanked["chained"] == 0, blanked  # what verify alone sees
    await _metric_until(metrics_port, "authhost_audit_chain_ok 0.0")
    alarm = next(r for r in caplog.records if r.getMessage().startswith("audit chain broken"))
    assert alarm.levelno == logging.ERROR and "head" in alarm.getMessage(), alarm.getMessage()


async def test_the_server_catches_the_newest_entries_removed(
    nursery,
    tmp_path,
    caplog,
    store_url,  # noqa: F811 - the fixture
):
    caplog.set_level(logging.INFO, logger="authhost")
    port, metrics_port, audit = await _walked_host(nursery, tmp_path, store_url)

    for entry in audit[-2:]:
        await Tamper(store_url).remove(entry["audit_id"])
    assert (await verified(port))["ok"]  # what is left verifies by itself
    await _metric_until(metrics_port, "authhost_audit_chain_ok 0.0")
