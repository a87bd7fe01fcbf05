"""Activations a crash cut short are finished, on both stores.

Activating a reissued card is several writes: the card with its audit entry and a PAN update
per wallet token it takes over (one write on SQLite and a single Redis, the entries appended
after the card on a Redis Cluster), then the old card's retirement. Here the process "dies" at a chosen one of them (the
store raises a BaseException there, as nothing in the service catches one), and a second
service on its own store connection, as the restarted server or ``authhost store
finish`` would be, finishes what was left: each write once, never twice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial

import pytest
import trio
from test_admin_service import _drive, _product_account_card, backend, store_args  # noqa: F401
from test_admin_support import open_service
from test_e2e_tokens import APPLE_PAY, token_number
from test_store_contract import redis_cluster_url  # noqa: F401 - a fixture

from authhost.admin import requests as rq
from authhost.admin.errors import ConflictError
from authhost.admin.service import CardService
from authhost.admin.service.lifecycle import ACTIVATION_INTENT
from authhost.cards.model import CardState
from authhost.runtime import finish_unfinished

EVERY_INTENT = float("inf")  # intents(kind, before=...): all of them


class Crash(BaseException):
    """The process dying at a write: nothing after it runs."""


def crash_at(service: CardService, action: str, nth: int = 1) -> None:
    """Make the ``nth`` audit entry of ``action`` the write the process dies at (it is not
    written)."""
    store, append = service.store, service.store.append_audit
    seen = []

    async def dying_append(entry, seal=None):
        if entry.action == action:
            seen.append(entry)
            if len(seen) == nth:
                raise Crash(action)
        return await append(entry, seal)

    store.append_audit = dying_append  # type: ignore[method-assign]


def crash_at_card_write(service: CardService, card_id: str) -> None:
    """Make the next write of ``card_id`` the one the process dies at (it is not written);
    the writes after it go through."""
    store, update_card = service.store, service.store.update_card
    died = []

    async def dying_update(card, *audit):
        if card.card_id == card_id and not died:
            died.append(card_id)
            raise Crash(f"writing {card_id}")
        return await update_card(card, *audit)

    store.update_card = dying_update  # type: ignore[method-assign]


@asynccontextmanager
async def restarted(service: CardService, store_args) -> AsyncIterator[CardService]:  # noqa: F811
    """Another process on the same store: its own connection, the same keys."""
    from authhost.store.redis import RedisCardStore
    from authhost.store.sqlite import SqliteCardStore

    tmp_path, kind, redis_url = store_args
    if kind == "sqlite":
        store = await SqliteCardStore.open(tmp_path / "authhost.db")
    else:
        store = await RedisCardStore.open(redis_url, prefix=service.store._keys.prefix)
    try:
        yield CardService(store, service.security, "server")
    finally:
        await store.close()


async def reissued_with_tokens(service: CardService) -> tuple[dict, dict, list[str]]:
    """An active card with two wallet tokens, and its reissue (a new PAN) shipped, not yet
    activated; the tokens' references."""
    old = await _drive(service, (await _product_account_card(service))["card_id"],
                       ["ship", "activate"])  # fmt: skip
    for seed in ("901", "902"):
        spec = rq.NewToken(token_pan=token_number(seed), requestor_id=APPLE_PAY, expiry="3112")
        old = await service.add_token(old["card_id"], spec)
    new = await service.apply(old["card_id"], "reissue")
    await service.apply(new["card_id"], "ship")
    return old, new, sorted(t["token_ref"] for t in old["tokens"])


async def activation_cut_short(service: CardService) -> tuple[dict, dict, list[str]]:
    """A reissue with tokens whose activation the process died in, at the old card's
    retirement: the one write a crash can still cut off on every store
    (``reissued_with_tokens``' cards and token references)."""
    old, new, refs = await reissued_with_tokens(service)
    crash_at_card_write(service, old["card_id"])
    with pytest.raises(Crash):
        await service.apply(new["card_id"], "activate")
    return old, new, refs


async def actions_on(service: CardService, card_id: str) -> list[str]:
    return [e["action"] for e in await service.audit(subject=card_id, limit=1000)]


async def pan_updates(service: CardService, card_id: str) -> list[str]:
    """The token references of the PAN updates sent for ``card_id``, in order."""
    entries = await service.audit(subject=card_id, limit=1000)
    return [
        token["token_ref"]
        for e in entries
        if e["action"] == "card.token_pan_update"
        for token in json.loads(e["after"])["tokens"]
    ]


async def test_an_activation_cut_short_after_the_card_is_finished_once(store_args):  # noqa: F811
    async with open_service(*store_args) as service:
        old, new, refs = await activation_cut_short(service)
        # what the crash left: the new card active with the tokens, audited and the token
        # service told (its PAN updates in the card's own write), the old one still live
        assert (await service.store.get_card(new["card_id"])).state is CardState.ACTIVE
        left = await service.store.get_card(old["card_id"])
        assert left.state is CardState.ACTIVE and len(left.tokens) == 2
        assert sorted(await pan_updates(service, new["card_id"])) == refs

        async with restarted(service, store_args) as later:
            fresh = await later.finish_activations()  # begun a moment ago: may be running
            assert fresh == {"finished": [], "failed": [], "dropped": 0}
            result = await later.finish_activations(older_than_s=0)
            assert [d["card_id"] for d in result["finished"]] == [new["card_id"]]
            assert result["finished"][0]["activation_audited"] is False  # it was
            assert result["finished"][0]["pan_updates_sent"] == 0  # with the card
            again = await later.finish_activations(older_than_s=0)
            assert again == {"finished": [], "failed": [], "dropped": 0}

            retired = await later.store.get_card(old["card_id"])
            assert retired.state is CardState.REPLACED and retired.tokens == ()
            assert sorted(await pan_updates(later, new["card_id"])) == refs
            actions = await actions_on(later, new["card_id"])
            assert actions.count("card.activate") == 1
            assert actions[-1] == "card.activation_finished"
            assert (await actions_on(later, old["card_id"]))[-1] == "card.retire"
            assert await later.store.intents(ACTIVATION_INTENT, EVERY_INTENT) == []


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def any_store_args(request, tmp_path) -> tuple:
    """``store_args`` with a one-node Redis Cluster too."""
    if request.param == "sqlite":
        return tmp_path, "sqlite", None
    fixture = "redis_url" if request.param == "redis" else "redis_cluster_url"
    return tmp_path, request.param, request.getfixturevalue(fixture)


async def test_a_card_change_and_its_audit_entry_are_one_write(any_store_args):
    """On SQLite the activation's audit entry is written in the card's own transaction, on a
    single Redis in the card's own script, so a crash keeps both or neither; on a Redis
    Cluster (another hash slot) it follows the card's write, and an activation cut short
    between the two is audited by the finisher, with the details it was begun with."""
    tmp_path, kind, _ = any_store_args
    async with open_service(*any_store_args) as service:
        old, new, refs = await reissued_with_tokens(service)
        crash_at(service, "card.activate")
        if kind != "redis-cluster":
            await service.apply(new["card_id"], "activate")  # no separate audit write to die at
            assert "card.activate" in await actions_on(service, new["card_id"])
            return
        with pytest.raises(Crash):
            await service.apply(new["card_id"], "activate")
        assert (await service.store.get_card(new["card_id"])).state is CardState.ACTIVE
        assert "card.activate" not in await actions_on(service, new["card_id"])
        async with restarted(service, any_store_args) as later:
            result = await later.finish_activations(older_than_s=0)
            assert result["finished"][0]["activation_audited"] is True
            assert result["finished"][0]["pan_updates_sent"] == 2
            entries = await later.audit(subject=new["card_id"], limit=1000)
            [activate] = [e for e in entries if e["action"] == "card.activate"]
            assert json.loads(activate["after"])["tokens_moved"] == 2  # as begun
            assert sorted(await pan_updates(later, new["card_id"])) == refs
            assert (await later.store.get_card(old["card_id"])).state is CardState.REPLACED


@pytest.mark.parametrize("any_store_args", ["redis-cluster"], indirect=True)
async def test_only_the_pan_updates_not_sent_are_sent(any_store_args):
    """On a Redis Cluster the PAN updates follow the card's write (another hash slot): a
    crash after the first leaves the second to the finisher, which sends it alone."""
    async with open_service(*any_store_args) as service:
        old, new, refs = await reissued_with_tokens(service)
        crash_at(service, "card.token_pan_update", 2)  # the first went out
        with pytest.raises(Crash):
            await service.apply(new["card_id"], "activate")
        [sent] = await pan_updates(service, new["card_id"])
        async with restarted(service, any_store_args) as later:
            result = await later.finish_activations(older_than_s=0)
            assert result["finished"][0]["activation_audited"] is False  # it was
            assert result["finished"][0]["pan_updates_sent"] == 1
            updates = await pan_updates(later, new["card_id"])
            assert updates[0] == sent and sorted(updates) == refs  # each token once
            assert (await later.store.get_card(old["card_id"])).state is CardState.REPLACED


@pytest.mark.parametrize("any_store_args", ["sqlite", "redis"], indirect=True)
async def test_the_pan_updates_are_written_with_the_activated_card(any_store_args):
    """On SQLite and a single Redis the activation's PAN updates are in the card's own write,
    after its entry: an append after the write dies (it is never called), a seal that fails
    on the last PAN update leaves the card as it was and no entry, and the chain verifies."""
    async with open_service(*any_store_args) as service:
        old, new, refs = await reissued_with_tokens(service)
        store, seal = service.store, service.security.audit_seal
        shipped = await store.get_card(new["card_id"])
        history = await actions_on(service, new["card_id"])

        class FailsAtTheLastPanUpdate:
            def __init__(self) -> None:
                self.sealed = 0

            def seal(self, previous, fields):  # noqa: ANN001, ANN201
                self.sealed += 1
                if self.sealed == 1 + len(refs):  # the activation's entry, then each update
                    raise OSError("disk full")
                return seal.seal(previous, fields)

        service.security.audit_seal = FailsAtTheLastPanUpdate()
        with pytest.raises(OSError):
            await service.apply(new["card_id"], "activate")
        assert await store.get_card(new["card_id"]) == shipped  # neither the card
        assert await actions_on(service, new["card_id"]) == history  # nor an entry
        service.security.audit_seal = seal
        crash_at(service, "card.token_pan_update")  # an append after the write: never made
        crash_at(service, "card.activate")
        await service.apply(new["card_id"], "activate")
        assert (await actions_on(service, new["card_id"]))[-3:] == [
            "card.activate", "card.token_pan_update", "card.token_pan_update"
        ]  # fmt: skip
        assert sorted(await pan_updates(service, new["card_id"])) == refs
        assert (await store.get_card(old["card_id"])).state is CardState.REPLACED
        verified = await service.verify_audit()
        assert verified["ok"], verified


async def test_a_refused_activation_leaves_nothing_to_finish(store_args):  # noqa: F811
    async with open_service(*store_args) as service:
        old, new, _ = await reissued_with_tokens(service)
        done = await service.apply(new["card_id"], "activate")
        assert done["state"] == "active"
        assert await service.store.intents(ACTIVATION_INTENT, EVERY_INTENT) == []  # dropped
        # an activation begun and refused (the card changed meanwhile): its intent names a
        # card that was never activated, dropped without a change
        other_old, other_new, _ = await _renewed_card(service)
        _race_every_card_write(service, other_new["card_id"])
        with pytest.raises(ConflictError):
            await service.apply(other_new["card_id"], "activate")
        assert len(await service.store.intents(ACTIVATION_INTENT, EVERY_INTENT)) == 1
        result = await service.finish_activations(older_than_s=0)
        assert result == {"finished": [], "failed": [], "dropped": 1}
        assert (await service.store.get_card(other_new["card_id"])).state is CardState.ISSUED
        assert (await service.store.get_card(other_old["card_id"])).state is CardState.ACTIVE
        assert await service.store.intents(ACTIVATION_INTENT, EVERY_INTENT) == []


async def _renewed_card(service: CardService) -> tuple[dict, dict, None]:
    """A second card of the account, active, and its renewal shipped."""
    spec = rq.IssueCard(product_id="p1", account_id="a1")
    old = await _drive(service, (await service.issue_card(spec))["card_id"], ["ship", "activate"])
    new = await service.apply(old["card_id"], "renew")
    await service.apply(new["card_id"], "ship")
    return old, new, None


def _race_every_card_write(service: CardService, card_id: str) -> None:
    """Another writer changes ``card_id`` (a real update, its version moves) just before each
    of the service's own writes to it, so that they are refused as stale."""
    store, update_card = service.store, service.store.update_card

    async def racing_update(card, *audit):
        if card.card_id == card_id:
            await update_card(await store.get_card(card_id))
        return await update_card(card, *audit)

    store.update_card = racing_update  # type: ignore[method-assign]


async def test_the_server_finishes_them_itself(store_args):  # noqa: F811
    """The server's look, as the runtime starts it (here with no wait and no grace): the
    activation finished, and its metrics say one was (a crash cut it short) and when it looked."""
    from prometheus_client import CollectorRegistry, generate_latest

    from authhost.admin.service.unfinished import FinishWatch
    from authhost.store.metrics import UnfinishedWorkCollector

    watch, registry = FinishWatch(), CollectorRegistry()
    registry.register(UnfinishedWorkCollector(watch))
    assert "authhost_unfinished" not in generate_latest(registry).decode()  # before a look
    async with open_service(*store_args) as service:
        old, new, refs = await activation_cut_short(service)
        async with restarted(service, store_args) as later, trio.open_nursery() as nursery:
            nursery.start_soon(partial(finish_unfinished, later, 0.05, 0.0, 0.0, watch=watch))
            while not watch.activations_finished:
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        assert await service.store.intents(ACTIVATION_INTENT, EVERY_INTENT) == []
        assert (await service.store.get_card(old["card_id"])).state is CardState.REPLACED
        assert sorted(await pan_updates(service, new["card_id"])) == refs
    text = generate_latest(registry).decode()
    assert "authhost_unfinished_activations_finished_total 1.0" in text
    assert "authhost_unfinished_failed 0.0" in text
    [looked] = [line for line in text.splitlines() if line.startswith("authhost_unfinished_looked")]
    assert float(looked.split()[-1]) == pytest.approx(watch.looked_at) and watch.looked_at > 0


def test_the_cli_finishes_them(tmp_path):
    from typer.testing import CliRunner

    from authhost.cli.app import app

    async def cut_short() -> tuple[dict, dict]:
        async with open_service(tmp_path) as service:
            old, new, _ = await activation_cut_short(service)
        return old, new

    old, new = trio.run(cut_short)
    config = tmp_path / "authhost.toml"  # the same SQLite file and key store
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "authhost.db"}"\n\n'
        f'[security]\nkey_store = "{tmp_path / "keys.json"}"\ndemo = true\n'
    )

    def cli(*args: str) -> dict:
        result = CliRunner().invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == 0, (result.output, result.stderr)
        return json.loads(result.stdout)

    [waiting] = cli("store", "finish", "--list")["unfinished"]
    assert (waiting["kind"], waiting["subject"]) == ("activation", new["card_id"])
    assert waiting["age_s"] >= 0
    assert cli("store", "finish")["activations"]["finished"] == []  # too young to be a crash's
    done = cli("store", "finish", "--older-than", "0")["activations"]
    assert [d["card_id"] for d in done["finished"]] == [new["card_id"]]
    assert done["finished"][0]["pan_updates_sent"] == 0  # written with the card
    assert cli("cards", "show", old["card_id"])["state"] == "replaced"
    assert cli("store", "finish", "--older-than", "0")["activations"]["finished"] == []
    assert cli("store", "finish", "--list")["unfinished"] == []


async def test_a_card_write_whose_audit_entry_fails_is_not_written(store_args):  # noqa: F811
    """Both or neither: the audit entry fails in the card's transaction on SQLite, before the
    card's one script on a single Redis (its seal raises, as a full disk would fail the
    insert), so the card stays as it was."""
    from authhost.store.records import AuditEntry

    class BrokenSeal:
        def seal(self, previous, fields):  # noqa: ANN001, ANN201
            raise OSError("disk full")

    async with open_service(*store_args) as service:
        card = await service.store.get_card((await _product_account_card(service))["card_id"])
        entry = AuditEntry(ts=1.0, actor="t", action="card.ship", subject=card.card_id)
        with pytest.raises(OSError):
            await service.store.update_card(
                replace(card, state=CardState.ISSUED), entry, BrokenSeal()
            )
        assert await service.store.get_card(card.card_id) == card
        assert "card.ship" not in await actions_on(service, card.card_id)
        stored = await service.store.update_card(replace(card, state=CardState.ISSUED), entry)
        assert stored.version == card.version + 1
        assert (await actions_on(service, card.card_id))[-1] == "card.ship"


async def test_one_process_finishes_at_a_time(store_args):  # noqa: F811
    """While another process holds the finishing lease, a look does nothing and says whose
    it is; once it is dropped, the look finishes."""
    from authhost.admin.service.unfinished import FINISH_LEASE

    async with open_service(*store_args) as service:
        old, new, refs = await activation_cut_short(service)
        async with restarted(service, store_args) as later:
            assert await later.store.take_lease(FINISH_LEASE, "worker-1#abc", 60)
            busy = await service.finish_unfinished(older_than_s=0)
            assert busy["busy"] == "worker-1 is finishing them now"
            assert busy["activations"]["finished"] == []
            assert (await later.store.get_card(old["card_id"])).state is CardState.ACTIVE
            await later.store.drop_lease(FINISH_LEASE, "worker-1#abc")
            done = await service.finish_unfinished(older_than_s=0)
            assert "busy" not in done
            assert [d["card_id"] for d in done["activations"]["finished"]] == [new["card_id"]]
            assert await later.store.lease_of(FINISH_LEASE) is None  # dropped after the look


async def test_an_activation_begun_again_while_the_finisher_looks_is_left_to_it(store_args):  # noqa: F811
    """The finisher read an intent; before it reads the card, the activation is begun again
    (another try writes its own intent first): the finisher leaves it to that try, which
    would otherwise send the same PAN updates beside it."""
    async with open_service(*store_args) as service:
        old, new, refs = await activation_cut_short(service)
        async with restarted(service, store_args) as later:
            store, get_card = later.store, later.store.get_card
            [read] = await store.intents(ACTIVATION_INTENT, EVERY_INTENT)

            async def begun_again(card_id):
                if card_id == new["card_id"]:  # another try's intent, as it writes it
                    await trio.sleep(0.01)  # (a later time than the one read)
                    await store.put_intent(ACTIVATION_INTENT, card_id, read.data)
                return await get_card(card_id)

            store.get_card = begun_again  # type: ignore[method-assign]
            result = await later.finish_activations(older_than_s=0)
            assert result == {"finished": [], "failed": [], "dropped": 0}
            assert (await store.get_card(old["card_id"])).state is CardState.ACTIVE  # untouched
            [kept] = await store.intents(ACTIVATION_INTENT, EVERY_INTENT)
            assert kept.ts > read.ts  # the new try's intent stays


async def test_a_finishing_run_whose_lease_lapsed_stops(store_args, monkeypatch):  # noqa: F811
    """A run that stalled past its lease's life while another process took the lease stops
    before the next piece of work rather than finish beside the other."""
    from authhost.admin.service import unfinished
    from authhost.admin.service.unfinished import FINISH_LEASE

    monkeypatch.setattr(unfinished, "FINISH_LEASE_TTL_S", 0.4)  # renewal due after 0.1 s
    async with open_service(*store_args) as service:
        old, new, refs = await activation_cut_short(service)
        store, intents, get_card = service.store, service.store.intents, service.store.get_card

        async def lapsed(kind, before):  # the run stalls here; its lease lapses, another takes it
            found = await intents(kind, before)
            await trio.sleep(0.2)
            for lease in [await store.lease_of(FINISH_LEASE)]:
                await store.drop_lease(FINISH_LEASE, lease.owner)
                await store.take_lease(FINISH_LEASE, "worker-2#x", 60)
            return found

        store.intents = lapsed  # type: ignore[method-assign]
        result = await service.finish_unfinished(older_than_s=0)
        assert result["busy"].startswith("this run stopped: its lease lapsed")
        old_card = await get_card(old["card_id"])
        assert old_card.state is CardState.ACTIVE  # nothing done beside the other
        assert (await store.lease_of(FINISH_LEASE)).owner == "worker-2#x"  # the other's stays


async def test_the_admin_api_lists_and_finishes_them(store_args):  # noqa: F811
    """GET /v1/store/unfinished lists what waits (any role); POST /v1/store/finish finishes
    it (operators only; older_than_s bounded)."""
    from test_admin_support import AUDITOR_TOKEN, call, running_admin

    async with open_service(*store_args) as service:
        old, new, refs = await activation_cut_short(service)
        async with running_admin(service) as port:
            listed = await call(port, "GET", "/v1/store/unfinished", token=AUDITOR_TOKEN)
            assert listed.status == 200, listed.json
            [waiting] = listed.json["unfinished"]
            assert (waiting["kind"], waiting["subject"]) == ("activation", new["card_id"])
            refused = await call(port, "POST", "/v1/store/finish", token=AUDITOR_TOKEN)
            assert refused.status == 403
            young = await call(port, "POST", "/v1/store/finish")
            assert young.status == 200 and young.json["activations"]["finished"] == []
            bad = await call(port, "POST", "/v1/store/finish?older_than_s=-1")
            assert bad.status in (400, 422) and "older_than_s" in bad.json["error"]
            done = await call(port, "POST", "/v1/store/finish?older_than_s=0")
            assert done.status == 200, done.json
            assert [d["card_id"] for d in done.json["activations"]["finished"]] == [new["card_id"]]
            listed = await call(port, "GET", "/v1/store/unfinished", token=AUDITOR_TOKEN)
            assert listed.json["unfinished"] == []
        assert (await service.store.get_card(old["card_id"])).state is CardState.REPLACED
        assert sorted(await pan_updates(service, new["card_id"])) == refs
