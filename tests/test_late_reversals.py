"""A reversal that comes before its original, through the real host on both stores: the
original is answered as decided, then reversed by the server's sweep (hold released, partial
kept, posting undone), once however many sweeps run; an orphan whose original never comes, or
comes after the window, changes nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import trio
from host_admin import cli_config, run_cli
from iso_client import Switch, next_stan
from test_e2e_auth import (  # noqa: F401 - fixture
    balances_of,
    field_90,
    purchase,
    start_host,
    store_url,
)

from authhost.auth.late_reversals import LATE_REASON, ORPHAN_INTENT, apply_late_reversals
from authhost.config import AuthConfig, ConfigError
from authhost.store import open_store
from authhost.store.interface import JournalQuery, StoreError

QUICK = AuthConfig(late_reversal_every_s=0.05)
IDLE = AuthConfig(late_reversal_every_s=3600)  # the test runs the sweep itself
WINDOW_S = 900.0


def reversal_of(original: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The acquirer's reversal of ``original`` (field 90 names it), its own STAN."""
    return {**original, "t": "0400", "11": next_stan(), "90": field_90(original), **fields}


async def late_entries(store: Any, account_id: str) -> list[Any]:
    entries = await store.journal(JournalQuery(account_id=account_id, limit=1000))
    return [e for e in entries if LATE_REASON in e.reason_codes.split(";")]


async def wait_for_balances(switch: Switch, card: dict[str, Any], want: tuple[int, int]) -> None:
    """Poll (a generous bound, never a speed assertion) until the account shows ``want``."""
    with trio.move_on_after(20):
        while await balances_of(switch, card) != want:
            await trio.sleep(0.05)
    assert await balances_of(switch, card) == want


async def at_host(
    nursery: trio.Nursery,
    tmp_path: Any,
    store_url: str,  # noqa: F811
    auth: AuthConfig,
) -> tuple[Any, Switch, dict[str, Any], int, int]:
    """A host, a switch connected to it, the demo Visa debit card and its ledger and
    available balances before the test."""
    host = await start_host(nursery, tmp_path, store_url, auth=auth)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    return (host, switch, card, *await balances_of(switch, card))


async def test_a_reversal_before_its_hold_releases_it_after(nursery, tmp_path, store_url):  # noqa: F811
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, QUICK)
    auth = purchase(card, amount=10_000)
    reply = await switch.send(reversal_of(auth))  # the original has not come yet
    assert (reply["t"], reply["39"]) == ("0410", "00")
    answer = await switch.send(auth)  # answered as decided: the acquirer sees an approval
    assert answer["39"] == "00"
    await wait_for_balances(switch, card, (ledger, available))
    await trio.sleep(0.3)  # more sweeps: nothing more
    assert await balances_of(switch, card) == (ledger, available)
    (late,) = await late_entries(host.runtime.store, card["account"])
    assert late.hold_amount == -10_000 and late.movement == "release"
    assert await host.runtime.store.intents(ORPHAN_INTENT, float("inf")) == []


async def test_a_partial_reversal_before_its_hold_keeps_field_95(nursery, tmp_path, store_url):  # noqa: F811
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, QUICK)
    auth = purchase(card, amount=10_000)
    partial = reversal_of(auth, **{"95": f"{4_000:012d}" + "0" * 30})
    assert (await switch.send(partial))["39"] == "00"
    assert (await switch.send(auth))["39"] == "00"
    await wait_for_balances(switch, card, (ledger, available - 4_000))
    (late,) = await late_entries(host.runtime.store, card["account"])
    assert late.hold_amount == -6_000 and "reversal.partial" in late.reason_codes


async def test_a_reversal_before_its_0200_undoes_the_posting(nursery, tmp_path, store_url):  # noqa: F811
    _, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, QUICK)
    sale = purchase(card, amount=7_000, t="0200")
    assert (await switch.send(reversal_of(sale)))["39"] == "00"
    assert (await switch.send(sale))["39"] == "00"
    await wait_for_balances(switch, card, (ledger, available))


async def test_two_sweeps_at_once_or_one_cut_short_reverse_once(nursery, tmp_path, store_url):  # noqa: F811
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, IDLE)
    first, second = purchase(card, amount=3_000), purchase(card, amount=5_000)
    for original in (first, second):
        assert (await switch.send(reversal_of(original)))["39"] == "00"
        assert (await switch.send(original))["39"] == "00"
    assert await balances_of(switch, card) == (ledger, available - 8_000)
    # two processes' stores over the same data, sweeping at the same moment; the second
    # dies after its writes, before dropping their intents
    runs: list[Any] = []

    async def cut_short(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("stopped before the intent was dropped")

    async def sweep(cut: bool) -> None:
        store = await open_store(host.store_url)
        try:
            if cut:
                store.drop_intent = cut_short  # type: ignore[method-assign]
            runs.append(await apply_late_reversals(store, time.time(), WINDOW_S))
        except RuntimeError:
            runs.append(None)
        finally:
            await store.close()

    async with trio.open_nursery() as both:
        both.start_soon(sweep, False)
        both.start_soon(sweep, True)
    store = host.runtime.store
    await apply_late_reversals(store, time.time(), WINDOW_S)  # the cut one's, run again
    assert len(runs) == 2
    assert await store.intents(ORPHAN_INTENT, float("inf")) == []
    assert (await apply_late_reversals(store, time.time(), WINDOW_S)).applied == []
    assert await balances_of(switch, card) == (ledger, available)
    late = await late_entries(host.runtime.store, card["account"])
    assert sorted(-e.hold_amount for e in late) == [3_000, 5_000]


async def test_an_orphan_whose_original_never_comes_changes_nothing(nursery, tmp_path, store_url):  # noqa: F811
    host, switch, card, *before = await at_host(nursery, tmp_path, store_url, IDLE)
    store = host.runtime.store
    assert (await switch.send(reversal_of(purchase(card, amount=2_000))))["39"] == "00"
    waiting = await apply_late_reversals(store, time.time(), WINDOW_S)
    assert (waiting.applied, waiting.waiting) == ([], 1)
    gone = await apply_late_reversals(store, time.time() + WINDOW_S + 1, WINDOW_S)
    assert (gone.applied, gone.expired) == ([], 1)
    assert await store.intents(ORPHAN_INTENT, float("inf")) == []
    assert await balances_of(switch, card) == tuple(before)
    assert await late_entries(store, card["account"]) == []


async def test_an_original_after_the_window_stays_held(nursery, tmp_path, store_url):  # noqa: F811
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, IDLE)
    store = host.runtime.store
    auth = purchase(card, amount=2_500)
    assert (await switch.send(reversal_of(auth)))["39"] == "00"
    # the window passes before the original comes: the orphan is no longer waited for
    assert (await apply_late_reversals(store, time.time() + WINDOW_S + 1, WINDOW_S)).expired == 1
    assert (await switch.send(auth))["39"] == "00"
    assert (await apply_late_reversals(store, time.time(), WINDOW_S)).applied == []
    # held until it expires ([auth] hold_days), as any approval
    assert await balances_of(switch, card) == (ledger, available - 2_500)


async def test_store_late_reversals_does_the_sweep_from_the_shell(nursery, tmp_path, store_url):  # noqa: F811
    _, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, IDLE)
    auth = purchase(card, amount=4_200)
    assert (await switch.send(reversal_of(auth)))["39"] == "00"
    command = ("store", "late-reversals", "--config", str(cli_config(tmp_path, store_url)))
    code, output = await run_cli(*command)
    assert code == 0, output
    assert json.loads(output) == {
        "applied": [],
        "expired": 0,
        "nothing_left": 0,
        "waiting": 1,
        "failed": 0,
    }
    assert (await switch.send(auth))["39"] == "00"
    code, output = await run_cli(*command)
    assert code == 0, output
    [applied] = json.loads(output)["applied"]
    assert (applied["account_id"], applied["released_minor"]) == (card["account"], 4_200)
    assert await balances_of(switch, card) == (ledger, available)
    # 0 would forget every reversal still waiting; nan or inf would never forget one
    for bad in ("-1", "0", "nan", "inf"):
        code, output = await run_cli(*command, "--window", bad)
        assert code == 2 and "must be above 0" in output and "Traceback" not in output


def test_a_sweep_interval_or_window_that_cannot_work_is_refused() -> None:
    for name, value in (("late_reversal_every_s", 0), ("late_reversal_window_s", 86_401)):
        try:
            AuthConfig(**{name: value})
        except ConfigError as error:
            assert f"[auth] {name} must be above 0" in str(error)
        else:
            raise AssertionError(f"{name} = {value} was taken")


async def test_an_unreadable_intent_is_dropped_and_the_others_applied(nursery, tmp_path, store_url):  # noqa: F811
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, IDLE)
    store = host.runtime.store
    await store.put_intent(ORPHAN_INTENT, "card|written-by-another-version", '{"entry": 1}')
    auth = purchase(card, amount=1_500)
    assert (await switch.send(reversal_of(auth)))["39"] == "00"
    assert (await switch.send(auth))["39"] == "00"
    run = await apply_late_reversals(store, time.time(), WINDOW_S)
    assert [-e.hold_amount for e in run.applied] == [1_500]
    assert await store.intents(ORPHAN_INTENT, float("inf")) == []
    assert await balances_of(switch, card) == (ledger, available)


async def test_an_original_that_came_in_its_window_is_reversed_by_a_late_run(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """No run looked between the original's answer and the end of its reversal's window (its
    last seconds, every server down, the store out): the run that forgets the reversal
    still reverses the original it finds."""
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, IDLE)
    store = host.runtime.store
    auth = purchase(card, amount=3_300)
    assert (await switch.send(reversal_of(auth)))["39"] == "00"
    assert (await switch.send(auth))["39"] == "00"
    run = await apply_late_reversals(store, time.time() + WINDOW_S + 1, WINDOW_S)
    assert [-e.hold_amount for e in run.applied] == [3_300]
    assert await store.intents(ORPHAN_INTENT, float("inf")) == []
    assert await balances_of(switch, card) == (ledger, available)


async def test_one_orphan_that_fails_holds_up_no_other(nursery, tmp_path, store_url):  # noqa: F811
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, IDLE)
    store = host.runtime.store
    first, second = purchase(card, amount=1_100), purchase(card, amount=2_200)
    for original in (first, second):
        assert (await switch.send(reversal_of(original)))["39"] == "00"
        assert (await switch.send(original))["39"] == "00"
    commit = store.commit

    async def refusing_the_first(one: Any) -> Any:  # the store refuses the older one's write
        if one.journal.hold_amount == -1_100:
            raise StoreError("refused")
        return await commit(one)

    store.commit = refusing_the_first
    try:
        run = await apply_late_reversals(store, time.time(), WINDOW_S)
    finally:
        store.commit = commit
    assert ([-e.hold_amount for e in run.applied], run.failed) == ([2_200], 1)
    assert await balances_of(switch, card) == (ledger, available - 1_100)
    assert len(await store.intents(ORPHAN_INTENT, float("inf"))) == 1  # tried again next run
    run = await apply_late_reversals(store, time.time(), WINDOW_S)
    assert [-e.hold_amount for e in run.applied] == [1_100]
    assert await balances_of(switch, card) == (ledger, available)


async def test_a_full_then_a_partial_reversal_before_the_original_release_it_all(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    """The same two reversals after the original release it all (the partial one finds
    nothing beyond its amount left): so do they before it."""
    host, switch, card, ledger, available = await at_host(nursery, tmp_path, store_url, IDLE)
    store = host.runtime.store
    auth = purchase(card, amount=10_000)
    assert (await switch.send(reversal_of(auth)))["39"] == "00"
    partial = reversal_of(auth, **{"95": f"{4_000:012d}" + "0" * 30})
    assert (await switch.send(partial))["39"] == "00"
    assert (await switch.send(auth))["39"] == "00"
    run = await apply_late_reversals(store, time.time(), WINDOW_S)
    assert ([-e.hold_amount for e in run.applied], run.nothing_left) == ([10_000], 1)
    assert await balances_of(switch, card) == (ledger, available)
    assert await store.intents(ORPHAN_INTENT, float("inf")) == []


async def test_the_totals_count_a_late_reversal_once(nursery, tmp_path, store_url):  # noqa: F811
    """One reversal message answered, one release: the sweep's entry adds the money it
    released, not a second approved reversal."""
    host, switch, card, *_ = await at_host(nursery, tmp_path, store_url, IDLE)
    since = time.time()  # (after the host's start-up requests)
    auth = purchase(card, amount=4_400)
    assert (await switch.send(reversal_of(auth)))["39"] == "00"
    assert (await switch.send(auth))["39"] == "00"
    assert len((await apply_late_reversals(host.runtime.store, time.time(), WINDOW_S)).applied)
    config = str(cli_config(tmp_path, store_url))
    window = ("--since", str(since), "--until", str(time.time() + 1))
    code, output = await run_cli("journal", "totals", *window, "--config", config)
    assert code == 0, output
    totals = json.loads(output)
    assert totals["by_message_class"] == {
        "authorisation": {"approved": 1, "declined": 0},
        "reversal": {"approved": 1, "declined": 0},
    }
    [money] = totals["currencies"]
    assert (money["approved"], money["released"]) == (2, {"count": 1, "amount_minor": 4_400})


async def test_a_late_reversal_is_journalled_when_written(nursery, tmp_path, store_url):  # noqa: F811
    """A run whose reads took seconds (many waiting) dates its entries at their write: the
    movements feed passes an entry SETTLE_S old by its time, every lower journal id taken
    as written by then."""
    host, switch, card, *_ = await at_host(nursery, tmp_path, store_url, IDLE)
    auth = purchase(card, amount=1_200)
    assert (await switch.send(reversal_of(auth)))["39"] == "00"
    assert (await switch.send(auth))["39"] == "00"
    before_the_write = time.time()
    run = await apply_late_reversals(host.runtime.store, before_the_write - 5, WINDOW_S)
    (late,) = await late_entries(host.runtime.store, card["account"])
    assert [e.journal_id for e in run.applied] == [late.journal_id]
    assert late.ts >= before_the_write
