"""One CardStore test suite, run against every backend (SQLite file, real redis-server).

Cards here come from test BINs with Luhn-valid random PANs; the PAN is hashed and sealed with
the real pan_protection functions under test keys.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from functools import partial

import anyio
import pytest
from conftest import free_port

from authhost.cards import lifecycle
from authhost.cards.acceptor_velocity import terminal_key
from authhost.cards.model import Account, Card, CardKind, CardState, Limits, Product
from authhost.cards.production import PanFacts, new_card, new_card_id, new_pan
from authhost.cards.velocity import VelocityEvent, compute_velocity
from authhost.security.pan_protection import open_pan, pan_index, seal_pan
from authhost.store import open_store
from authhost.store.interface import (
    ATC_WINDOW_S,
    BALANCE_BOUND,
    CAVV_WINDOW_S,
    PENDING_PREFIX,
    BeyondBound,
    CardStore,
    Commit,
    Conflict,
    InsufficientFunds,
    JournalQuery,
    LedgerRefused,
    MoneyMove,
    Movement,
    NotFound,
    SnapshotQuery,
    StoreError,
)
from authhost.store.records import AuditEntry, Dispute, FraudReport, JournalEntry

HASH_KEY = b"test-only pan hash key 32 bytes!"
DATA_KEY = b"T" * 32  # test AES-256 key
NOW = 1_780_000_000.0
BACKENDS = ["sqlite", "redis", "redis-cluster"]


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory) -> Iterator[str]:
    """A real one-node Redis Cluster (cluster mode on, all 16384 slots on one node): scripts
    that touch keys of two slots fail here exactly as on a big cluster."""
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("redis-cli") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server and redis-cli are required in CI")
        pytest.skip("redis-server not installed")
    port, bus_port = free_port(), free_port()  # the bus port defaults to port + 10000
    workdir = tmp_path_factory.mktemp("redis-cluster")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(bus_port),
            "--cluster-config-file",
            str(workdir / "nodes.conf"),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            done = subprocess.run(
                ["redis-cli", "-p", str(port), "cluster", "addslotsrange", "0", "16383"],
                capture_output=True,
                text=True,
            )
            if done.stdout.strip() == "OK" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        while time.monotonic() < deadline:
            info = subprocess.run(
                ["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, text=True
            ).stdout
            if "cluster_state:ok" in info:
                break
            time.sleep(0.05)
        else:
            pytest.fail("one-node Redis Cluster did not come up")
        yield f"redis+cluster://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=BACKENDS)
async def store(request, tmp_path) -> AsyncIterator[CardStore]:
    if request.param == "sqlite":
        reopen = partial(open_store, f"sqlite:///{tmp_path / 'cards.db'}")
    else:
        fixture = "redis_url" if request.param == "redis" else "redis_cluster_url"
        url = request.getfixturevalue(fixture)
        reopen = partial(open_store, url, prefix=f"t{secrets.token_hex(6)}")
    opened = await reopen()
    opened.reopen = reopen  # another process's store on the same data
    try:
        yield opened
    finally:
        if request.param != "sqlite":
            await opened.drop_all()  # only this test's prefix
        await opened.close()


PRODUCT = Product(
    product_id="debit-eur",
    issuer_id="bank1",
    name="Debit EUR",
    bin="400000",
    limits=Limits(per_transaction=50_000, daily_amount=100_000),
    blocked_mccs=frozenset({"7995"}),
)
CREDIT = replace(PRODUCT, product_id="credit-eur", bin="541333", kind=CardKind.CREDIT)


def make_card(
    product: Product = PRODUCT, account_id: str = "acc-1", **changes
) -> tuple[Card, str, bytes]:
    pan = new_pan(product.bin, product.pan_length)
    card_id = new_card_id()
    card = new_card(
        product,
        PanFacts.of(pan, pan_index(HASH_KEY, pan)),
        card_id=card_id,
        account_id=account_id,
        now=NOW,
        cardholder_name="A TESTER",
    )
    return replace(card, **changes), pan, seal_pan(DATA_KEY, 1, pan, card_id)


async def seeded(store: CardStore, balance: int = 100_000, **card_changes) -> tuple[Card, str]:
    await store.put_product(PRODUCT)
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=balance))
    card, pan, blob = make_card(state=CardState.ACTIVE, **card_changes)
    await store.create_card(card, blob)
    return card, pan


def entry(card: Card, n: int, amount: int = 1000, **changes) -> JournalEntry:
    values = dict(
        ts=NOW + n,
        mti="0100",
        message_class="authorisation",
        response_code="00",
        card_id=card.card_id,
        pan_masked=card.masked_pan,
        pan_index=card.pan_index,
        account_id=card.account_id,
        amount_minor=amount,
        currency="978",
        approval_code="A00001",
        stan=f"{n:06d}",
        dedupe_key=f"010|{n:06d}|rrn{n}|T1|1125120000",
        match_key=f"{n}|1125120000|123456|T1",
    )
    values.update(changes)
    return JournalEntry(**values)


def as_entry(card: Card, n: int, event: VelocityEvent) -> JournalEntry:
    """The journal entry whose velocity event is ``event`` (models.context.event_from_entry)."""
    return entry(
        card,
        n,
        event.amount_minor,
        ts=event.ts,
        response_code="00" if event.approved else "05",
        processing_code="260000" if event.credit else "010000" if event.cash else "000000",
        merchant_id=event.merchant_id,
        country=event.country,
        pin_failed=event.pin_failed,
        cvv_failed=event.cvv_failed,
    )


def hold(card: Card, n: int, amount: int, kind: MoneyMove = MoneyMove.HOLD, **changes) -> Commit:
    return Commit(
        journal=entry(card, n, amount, **changes),
        movement=Movement(card.account_id, kind, amount),
        card_id=card.card_id,
    )


# --- products, accounts, cards ---------------------------------------------------------------


async def test_products_round_trip(store):
    await store.put_product(PRODUCT)
    await store.put_product(CREDIT)
    assert await store.get_product("debit-eur") == PRODUCT
    assert await store.get_product("nope") is None
    assert [p.product_id for p in await store.list_products()] == ["credit-eur", "debit-eur"]
    changed = replace(PRODUCT, name="Renamed", channels=frozenset({"pos"}))
    await store.put_product(changed)
    assert await store.get_product("debit-eur") == changed


async def test_a_product_change_is_written_only_over_the_version_it_read(store):
    await store.put_product(PRODUCT)  # version 0, as every product before versions
    first = replace(PRODUCT, name="First", version=1)
    await store.put_product(first, expected_version=0)
    second = replace(PRODUCT, name="Second", version=1)  # made from version 0 too: too late
    with pytest.raises(Conflict):
        await store.put_product(second, expected_version=0)
    assert await store.get_product("debit-eur") == first
    with pytest.raises(Conflict):  # nothing stored to change
        await store.put_product(replace(CREDIT, version=1), expected_version=0)
    assert await store.get_product("credit-eur") is None


async def test_accounts_create_adjust_and_limit(store):
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=500))
    with pytest.raises(Conflict):
        await store.create_account(Account("acc-1", "978", CardKind.DEBIT))
    after = (await store.change_funds("acc-1", 250)).account
    assert after.balance == 750 and after.version == 1
    await store.create_account(Account("acc-2", "840", CardKind.CREDIT, credit_limit=1000))
    credit = await store.set_credit_limit("acc-2", 2000)
    assert credit.credit_limit == 2000 and credit.open_to_buy == 2000
    with pytest.raises(NotFound):
        await store.change_funds("missing", 1)
    with pytest.raises(NotFound):
        await store.change_funds("missing", 1, key="k", fingerprint="f")
    assert [a.account_id for a in await store.list_accounts()] == ["acc-1", "acc-2"]
    assert [a.account_id for a in await store.list_accounts(limit=1, offset=1)] == ["acc-2"]


async def test_a_funds_change_with_a_key_moves_money_once(store):
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=500))
    first = await store.change_funds("acc-1", 300, key="load-1", fingerprint="f1")
    assert (first.account.balance, first.repeated, first.fingerprint) == (800, False, "f1")
    again = await store.change_funds("acc-1", 300, key="load-1", fingerprint="f1")
    assert again.repeated and again.account == first.account  # the first change's account
    other = await store.change_funds("acc-1", 5, key="load-1", fingerprint="f2")
    assert other.repeated and other.fingerprint == "f1"  # the caller sees the key's misuse
    assert (await store.get_account("acc-1")).balance == 800
    assert (
        await store.change_funds("acc-1", 300, key="load-2", fingerprint="f1")
    ).repeated is False
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT))
    elsewhere = await store.change_funds("acc-2", 7, key="load-1", fingerprint="f3")
    assert not elsewhere.repeated and elsewhere.account.balance == 7  # keys are per account

    async def load() -> None:
        await store.change_funds("acc-2", 10, key="burst", fingerprint="f4")

    async with anyio.create_task_group() as tg:  # a client resending while the first is on
        for _ in range(8):
            tg.start_soon(load)
    assert (await store.get_account("acc-2")).balance == 17


async def test_a_funds_change_never_takes_more_than_is_available(store):
    card, _, _ = await _card_with_blob(store)  # acc-1: debit, 1,000
    assert (await store.commit(hold(card, 1, 600))).funds_ok
    with pytest.raises(InsufficientFunds) as refused:  # the hold's money is not there to take
        await store.change_funds("acc-1", -401, key="take", fingerprint="f")
    assert refused.value.account.open_to_buy == 400 and "400 available" in str(refused.value)
    taken = await store.change_funds("acc-1", -400, key="take", fingerprint="f")
    assert (taken.account.balance, taken.account.holds, taken.repeated) == (600, 600, False)
    await store.create_account(Account("cre", "978", CardKind.CREDIT, credit_limit=1_000))
    with pytest.raises(InsufficientFunds):  # a fee on a credit account: the debt may not pass
        await store.change_funds("cre", 1_001)
    assert (await store.change_funds("cre", 1_000)).account.open_to_buy == 0
    assert (await store.change_funds("cre", -300)).account.balance == 700  # a payment: always
    assert (await store.change_funds("acc-1", 5)).account.open_to_buy == 5  # a load: always


async def test_a_funds_change_never_takes_a_balance_beyond_the_bound(store):
    """SQLite turns an integer sum past 64 bits into a float (the balance then stuck at
    9.2e18, changes lost) and Lua computes in doubles: a balance stays within BALANCE_BOUND
    either way, refused in the write itself, nothing changed."""
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=BALANCE_BOUND - 10))
    assert (await store.change_funds("acc-1", 10)).account.balance == BALANCE_BOUND
    with pytest.raises(BeyondBound) as refused:
        await store.change_funds("acc-1", 1, key="one-more", fingerprint="f")
    assert refused.value.account.balance == BALANCE_BOUND
    assert "1,000,000,000,000,001" in str(refused.value), str(refused.value)
    with pytest.raises(BeyondBound):
        await store.change_funds("acc-1", BALANCE_BOUND)
    assert (await store.get_account("acc-1")).balance == BALANCE_BOUND
    after = await store.change_funds("acc-1", -5, key="one-more", fingerprint="f2")
    assert not after.repeated  # the refused change left no key behind
    assert after.account.balance == BALANCE_BOUND - 5
    assert (await store.change_funds("acc-1", 4)).account.balance == BALANCE_BOUND - 1
    # a credit account's payments may not take it beyond the bound in credit either
    await store.create_account(Account("cre", "978", CardKind.CREDIT, credit_limit=1_000))
    assert (await store.change_funds("cre", -BALANCE_BOUND)).account.balance == -BALANCE_BOUND
    with pytest.raises(BeyondBound):
        await store.change_funds("cre", -1)
    assert (await store.change_funds("cre", 1)).account.balance == -BALANCE_BOUND + 1


async def test_a_commit_beyond_the_bound_moves_nothing_and_says_why(store):
    card, _ = await seeded(store, balance=BALANCE_BOUND - 600)
    assert (await store.commit(hold(card, 1, 500, MoneyMove.POST))).funds_ok
    refund = await store.commit(hold(card, 2, 1_101, MoneyMove.CREDIT, processing_code="200000"))
    assert refund.balance_bound and refund.account.balance == BALANCE_BOUND - 1_100
    assert refund.journal.response_code == "61" and refund.journal.approval_code == ""
    assert refund.journal.reason_codes.endswith("funds.balance_bound")
    assert (refund.journal.hold_amount, refund.journal.balance_delta) == (0, 0)
    fits = await store.commit(hold(card, 3, 1_100, MoneyMove.CREDIT, processing_code="200000"))
    assert not fits.balance_bound and fits.account.balance == BALANCE_BOUND
    # the purchase reversed would give its 500 back: beyond the bound, so not now
    back = await store.commit(await reversal(card, 4, 1, 500))
    assert back.balance_bound and back.journal.response_code == "61"
    assert (await store.get_account("acc-1")).balance == BALANCE_BOUND
    await store.change_funds("acc-1", -500)  # room again: the purchase was not marked reversed
    again = await store.commit(await reversal(card, 5, 1, 500))
    assert not again.balance_bound and again.journal.hold_amount == -500
    assert (await store.get_account("acc-1")).balance == BALANCE_BOUND
    # holds are bound too (an advice holds without the funds check)
    advice = Commit(
        entry(card, 6, BALANCE_BOUND + 1, mti="0120", message_class="authorisation_advice"),
        Movement("acc-1", MoneyMove.HOLD, BALANCE_BOUND + 1, require_funds=False),
        card_id=card.card_id,
    )
    held = await store.commit(advice)
    assert held.balance_bound and held.account.holds == 0
    stored = {e.stan: e for e in await store.journal(JournalQuery(card_id=card.card_id))}
    assert [stored[f"{n:06d}"].response_code for n in range(1, 7)] == [
        "00", "61", "00", "61", "00", "61"
    ]  # fmt: skip
    account = await store.get_account("acc-1")
    moved = sum(e.balance_delta for e in stored.values())  # (and the 500 taken off)
    assert account.balance == BALANCE_BOUND - 600 - 500 + moved
    assert account.balance == BALANCE_BOUND and isinstance(account.balance, int)


async def test_a_ledger_sync_never_sets_a_balance_beyond_the_bound(store):
    card, _ = await seeded(store, balance=0)
    await store.commit(hold(card, 1, 1_000, MoneyMove.CREDIT, processing_code="200000"))
    with pytest.raises(BeyondBound):
        await store.sync_ledger("acc-1", BALANCE_BOUND, 0, NOW)
    assert (await store.get_account("acc-1")).balance == 1_000
    assert await store.ledger_state("acc-1") is None
    synced = await store.sync_ledger("acc-1", BALANCE_BOUND - 1_000, 0, NOW)
    assert synced.account.balance == BALANCE_BOUND


async def test_card_create_find_get_list_and_duplicate_pan(store):
    card, pan, _ = await _card_with_blob(store)
    assert await store.get_card(card.card_id) == card
    assert await store.find_card(pan_index(HASH_KEY, pan)) == card
    assert await store.find_card(pan_index(HASH_KEY, "4000000000000002")) is None
    same_pan = replace(card, card_id=new_card_id())
    with pytest.raises(Conflict):
        await store.create_card(same_pan, b"x" * 40)
    assert [c.card_id for c in await store.list_cards(account_id="acc-1")] == [card.card_id]
    assert await store.list_cards(state="active") == []
    assert open_pan(DATA_KEY, await store.pan_ciphertext(card.card_id), card.card_id) == pan


async def test_a_pan_is_resealed_only_over_the_ciphertext_read(store):
    """Compare-and-set: the new ciphertext replaces the one read, not one written meanwhile
    (a replacement card sealed again by another process)."""
    card, pan, _ = await _card_with_blob(store)
    first = await store.pan_ciphertext(card.card_id)
    second = seal_pan(DATA_KEY, 2, pan, card.card_id)
    assert await store.reseal_pan(card.card_id, first, second)
    assert await store.pan_ciphertext(card.card_id) == second
    third = seal_pan(DATA_KEY, 3, pan, card.card_id)
    assert not await store.reseal_pan(card.card_id, first, third)  # stale: changed meanwhile
    assert await store.pan_ciphertext(card.card_id) == second
    assert await store.get_card(card.card_id) == card  # nothing else of the card changed
    with pytest.raises(NotFound):
        await store.reseal_pan("no-such-card", first, third)


async def _card_with_blob(store):
    await store.put_product(PRODUCT)
    await store.create_account(Account("acc-1", "978", CardKind.DEBIT, balance=1000))
    card, pan, blob = make_card(limits=Limits(daily_count=5))
    await store.create_card(card, blob)
    return card, pan, blob


async def test_update_card_is_optimistic(store):
    card, _, _ = await _card_with_blob(store)
    shipped = await store.update_card(lifecycle.transition(card, "ship", now=NOW))
    assert shipped.state is CardState.ISSUED and shipped.version == 1
    assert await store.get_card(card.card_id) == shipped
    with pytest.raises(Conflict):  # stale version 0
        await store.update_card(lifecycle.transition(card, "ship", now=NOW))
    with pytest.raises(NotFound):
        await store.update_card(replace(card, card_id="crd_missing"))


async def test_last_used_is_the_newest_journal_entry(store):
    card, _ = await seeded(store)
    assert await store.last_used(card) is None  # never used
    await store.commit(Commit(entry(card, 1), card_id=card.card_id))
    declined = entry(card, 5, response_code="51")  # a decline is a use too
    await store.commit(Commit(declined, card_id=card.card_id))
    assert await store.last_used(card) == NOW + 5


async def test_renewal_keeps_pan_and_links_both_ways(store):
    card, pan = await seeded(store)
    old, new = lifecycle.renew(card, now=NOW, validity_months=48, new_card_id=new_card_id())
    await store.replace_card(old, new, seal_pan(DATA_KEY, 1, pan, new.card_id))
    stored_old = await store.get_card(card.card_id)
    assert stored_old.state is CardState.ACTIVE and stored_old.replaced_by == new.card_id
    assert open_pan(DATA_KEY, await store.pan_ciphertext(new.card_id), new.card_id) == pan

    async def current() -> tuple[str, str]:
        found = await store.find_card(card.pan_index)
        snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
        return found.card_id, snap.card.card_id

    # the old plastic keeps working while the new one is created and shipped ...
    assert await current() == (card.card_id, card.card_id)
    shipped = await store.update_card(
        lifecycle.transition(await store.get_card(new.card_id), "ship", now=NOW)
    )
    assert await current() == (card.card_id, card.card_id)
    # ... and the PAN means the new card once it is activated
    await store.update_card(lifecycle.transition(shipped, "activate", now=NOW))
    assert await current() == (new.card_id, new.card_id)
    assert (await store.find_card(card.pan_index)).replaces == card.card_id


async def test_lost_card_replacement_gets_new_pan_old_still_answers(store):
    card, pan = await seeded(store)
    lost = await store.update_card(lifecycle.transition(card, "report-lost", now=NOW))
    old, template = lifecycle.replace(lost, now=NOW, validity_months=36)
    new_pan_ = new_pan(PRODUCT.bin)
    new = replace(
        template,
        card_id=new_card_id(),
        pan_index=pan_index(HASH_KEY, new_pan_),
        last4=new_pan_[-4:],
    )
    await store.replace_card(old, new, seal_pan(DATA_KEY, 1, new_pan_, new.card_id))
    assert (await store.find_card(card.pan_index)).state is CardState.LOST
    successor = await store.find_card(pan_index(HASH_KEY, new_pan_))
    assert successor.replaces == card.card_id and successor.account_id == card.account_id
    assert (await store.get_card(card.card_id)).replaced_by == new.card_id


async def test_replacement_stays_on_the_account(store):
    card, pan = await seeded(store)
    old, new = lifecycle.renew(card, now=NOW, validity_months=36, new_card_id=new_card_id())
    with pytest.raises(StoreError, match="stays on the account"):
        await store.replace_card(old, replace(new, account_id="acc-2"), b"x" * 40)
    assert await store.get_card(new.card_id) is None


async def test_replace_with_stale_old_card_changes_nothing(store):
    card, pan = await seeded(store)
    await store.update_card(replace(card, cardholder_name="SOMEONE ELSE"))
    old, new = lifecycle.renew(card, now=NOW, validity_months=36, new_card_id=new_card_id())
    with pytest.raises(Conflict):
        await store.replace_card(old, new, seal_pan(DATA_KEY, 1, pan, new.card_id))
    assert await store.get_card(new.card_id) is None
    assert (await store.find_card(card.pan_index)).card_id == card.card_id


# --- snapshot and commit ---------------------------------------------------------------------


async def test_snapshot_reads_card_account_product(store):
    card, _ = await seeded(store)
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
    assert snap.card == card and snap.product == PRODUCT
    assert snap.account.open_to_buy == 100_000
    assert snap.previous is None and snap.original is None
    unknown = await store.snapshot(SnapshotQuery("0" * 64, NOW))
    assert unknown.card is None and unknown.account is None


async def test_hold_commit_reduces_open_to_buy_and_journals(store):
    card, _ = await seeded(store)
    result = await store.commit(hold(card, 1, 30_000))
    assert result.funds_ok and result.account.open_to_buy == 70_000
    assert result.journal.journal_id > 0
    [stored] = await store.journal(JournalQuery(card_id=card.card_id))
    assert stored == result.journal and stored.response_code == "00"


async def test_commit_rechecks_funds_and_moves_nothing(store):
    card, _ = await seeded(store, balance=10_000)
    result = await store.commit(hold(card, 1, 10_001))
    assert not result.funds_ok
    assert result.journal.response_code == "51" and result.journal.approval_code == ""
    assert "funds.recheck" in result.journal.reason_codes
    assert (await store.get_account("acc-1")).open_to_buy == 10_000
    [stored] = await store.journal(JournalQuery(card_id=card.card_id))
    assert stored.response_code == "51"


async def test_post_credit_and_advice_without_funds_check(store):
    card, _ = await seeded(store, balance=1000)
    await store.commit(hold(card, 1, 400, MoneyMove.POST))
    assert (await store.get_account("acc-1")).balance == 600
    refund = Commit(
        entry(card, 2, 100), Movement("acc-1", MoneyMove.CREDIT, 100), card_id=card.card_id
    )
    await store.commit(refund)
    assert (await store.get_account("acc-1")).balance == 700
    advice = Commit(
        entry(card, 3, 5000),
        Movement("acc-1", MoneyMove.POST, 5000, require_funds=False),
        card_id=card.card_id,
    )
    result = await store.commit(advice)
    assert result.funds_ok and result.account.balance == -4300


async def test_credit_account_spending_raises_debt(store):
    await store.put_product(CREDIT)
    await store.create_account(Account("acc-c", "978", CardKind.CREDIT, credit_limit=5000))
    card, _, blob = make_card(CREDIT, "acc-c", state=CardState.ACTIVE)
    await store.create_card(card, blob)
    await store.commit(hold(card, 1, 2000, MoneyMove.POST))
    account = await store.get_account("acc-c")
    assert account.balance == 2000 and account.open_to_buy == 3000
    assert not (await store.commit(hold(card, 2, 3001))).funds_ok


async def test_duplicate_dedupe_key_at_commit_returns_the_first(store):
    card, _ = await seeded(store)
    first = await store.commit(hold(card, 1, 1000))
    again = await store.commit(hold(card, 1, 1000))
    assert again.duplicate_of == first.journal
    assert (await store.get_account("acc-1")).holds == 1000
    assert len(await store.journal(JournalQuery(card_id=card.card_id))) == 1


async def test_dedupe_key_reused_on_another_account_is_a_duplicate(store):
    """A switch reusing one transmission's identifiers for another card: the store hands back
    the first entry (the service answers 94) and moves no money, on any account. Redis
    Cluster keeps the index per account (a script cannot reach another account's slot), so
    there it is a new transaction: the documented limitation (README, Known limitations)."""
    card, _ = await seeded(store)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=50_000))
    other, _, blob = make_card(account_id="acc-2", state=CardState.ACTIVE)
    await store.create_card(other, blob)
    first = await store.commit(hold(card, 1, 1000))
    reused = hold(other, 1, 2000)  # same dedupe key as the first
    assert reused.journal.dedupe_key == first.journal.dedupe_key
    again = await store.commit(reused)
    if store.info().backend == "redis-cluster":
        assert again.duplicate_of is None and again.funds_ok
        assert (await store.get_account("acc-2")).holds == 2000
        return
    assert again.duplicate_of == first.journal
    assert (await store.get_account("acc-2")).holds == 0
    assert await store.journal(JournalQuery(card_id=other.card_id)) == []


async def test_concurrent_holds_never_overspend(store):
    card, _ = await seeded(store, balance=10_000)
    results = []

    async def one(n: int) -> None:
        results.append(await store.commit(hold(card, n, 700)))

    async with anyio.create_task_group() as tg:
        for n in range(50):
            tg.start_soon(one, n)
    approved = [r for r in results if r.funds_ok]
    assert len(approved) == 10_000 // 700
    account = await store.get_account("acc-1")
    assert account.holds == 700 * len(approved) <= 10_000
    assert len(await store.journal(JournalQuery(card_id=card.card_id, limit=100))) == 50


async def test_many_at_once_answer_each_in_order_and_fail_alone(store):
    """snapshot_many / commit_many (requests read together): one outcome per item, in order;
    the commits re-check funds and duplicates among themselves, and one that fails (its
    account is missing) is an exception in its place that changes nothing."""
    card, _ = await seeded(store, balance=10_000)
    snaps = await store.snapshot_many(
        [SnapshotQuery(card.pan_index, NOW), SnapshotQuery("0" * 64, NOW)]
    )
    assert snaps[0].card == card and snaps[0].account.open_to_buy == 10_000
    assert snaps[1].card is None
    missing = replace(hold(card, 3, 100), movement=Movement("acc-missing", MoneyMove.HOLD, 100))
    outcomes = await store.commit_many(
        [hold(card, 1, 6_000), hold(card, 2, 6_000), missing, hold(card, 1, 6_000)]
    )
    first, second, failed, repeat = outcomes
    assert isinstance(failed, NotFound)
    # the commits may land in any order (Redis Cluster pipelines by slot): whichever of the
    # transmission and its retransmission lands first is kept, the other is its duplicate
    kept, duplicate = (first, repeat) if repeat.duplicate_of is not None else (repeat, first)
    assert duplicate.duplicate_of == kept.journal and kept.duplicate_of is None
    assert sorted([kept.journal.response_code, second.journal.response_code]) == ["00", "51"]
    loser = kept if not kept.funds_ok else second  # the funds re-check refused the later one
    assert not loser.funds_ok and "funds.recheck" in loser.journal.reason_codes
    assert (await store.get_account("acc-1")).holds == 6_000
    journal = await store.journal(JournalQuery(card_id=card.card_id))
    assert sorted(e.journal_id for e in journal) == sorted(
        [kept.journal.journal_id, second.journal.journal_id]
    )


async def reversal(card: Card, n: int, original_n: int, release: int) -> Commit:
    key = f"{original_n}|1125120000|123456|T1"
    return Commit(
        journal=entry(card, n, release, mti="0400", message_class="reversal", match_key=key),
        movement=Movement(
            card.account_id, MoneyMove.RELEASE, release, require_funds=False, match_key=key
        ),
        card_id=card.card_id,
    )


async def test_reversal_full_partial_and_repeated(store):
    card, _ = await seeded(store)
    await store.commit(hold(card, 1, 5000))
    key = "1|1125120000|123456|T1"
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 2, original_key=key))
    assert snap.original.amount_minor == 5000 and not snap.original.posted
    await store.commit(await reversal(card, 2, 1, 2000))  # partial: 3000 stays held
    assert (await store.get_account("acc-1")).holds == 3000
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 3, original_key=key))
    assert snap.original.amount_minor == 3000 and snap.original.reversed_minor == 2000
    over = await store.commit(await reversal(card, 3, 1, 9999))  # more than is left
    assert over.journal.hold_amount == -3000
    assert (await store.get_account("acc-1")).holds == 0
    repeat = await store.commit(await reversal(card, 4, 1, 3000))  # nothing left to release
    assert repeat.journal.hold_amount == 0 and (await store.get_account("acc-1")).holds == 0
    dup = await store.commit(await reversal(card, 3, 1, 3000))  # same transmission again
    assert dup.duplicate_of is not None


async def test_reversal_of_posted_amount_restores_balance(store):
    card, _ = await seeded(store, balance=1000)
    await store.commit(hold(card, 1, 600, MoneyMove.POST))
    await store.commit(await reversal(card, 2, 1, 600))
    account = await store.get_account("acc-1")
    assert account.balance == 1000 and account.holds == 0


async def test_each_entry_journals_what_it_added_to_the_balance(store):
    """The bank's ledger follows ``balance_delta``: the account's balance is its opening
    balance plus the deltas, whatever the movement, and a wrong guess is corrected."""
    card, _ = await seeded(store, balance=10_000)
    credit = hold(card, 5, 300, MoneyMove.CREDIT, processing_code="200000")
    commits = [
        (hold(card, 1, 1_000), 0),
        (
            replace(
                hold(card, 2, 600, MoneyMove.POST), journal=entry(card, 2, 600, balance_delta=-999)
            ),
            -600,
        ),  # fmt: skip
        (await reversal(card, 3, 2, 200), 200),  # a posting partly reversed: money back
        (await reversal(card, 4, 1, 1_000), 0),  # a hold released: no money moved
        (credit, 300),  # a refund
        (await reversal(card, 6, 5, 300), -300),  # the refund reversed: taken back
        (completion(card, 8, 7, 400), -400),
        (hold(card, 9, 99_999, MoneyMove.POST), 0),  # funds short: nothing moved
        (await reversal(card, 10, 42, 100), 0),  # no such original
    ]
    await store.commit(hold(card, 7, 500))
    for commit, _ in commits:
        await store.commit(commit)
    journal = await store.journal(JournalQuery(card_id=card.card_id, limit=100))
    stored = {e.stan: e.balance_delta for e in journal}
    assert [stored[c.journal.stan] for c, _ in commits] == [d for _, d in commits]
    account = await store.get_account("acc-1")
    assert account.balance == 10_000 + sum(d for d in stored.values())


async def test_a_ledger_sync_adds_what_the_entries_after_its_cursor_moved(store):
    card, _ = await seeded(store, balance=10_000)
    first = await store.commit(hold(card, 1, 700, MoneyMove.POST))
    cursor = first.journal.journal_id  # the bank's ledger has the first posting
    await store.commit(hold(card, 2, 1_000))  # a hold: no ledger effect
    await store.commit(hold(card, 3, 250, MoneyMove.POST))
    await store.commit(hold(card, 4, 80, MoneyMove.CREDIT, processing_code="200000"))
    assert await store.ledger_state("acc-1") is None  # never synchronised
    # the bank's ledger: the opening 10,000, the first posting, and a salary of 5,000 it
    # booked itself
    synced = await store.sync_ledger("acc-1", 10_000 - 700 + 5_000, cursor, NOW + 5)
    assert (synced.after_minor, synced.entries_after) == (-250 + 80, 2)
    assert synced.account.balance == 14_300 - 250 + 80 and synced.account.holds == 1_000
    assert await store.get_account("acc-1") == synced.account
    later = await store.commit(hold(card, 5, 30, MoneyMove.POST))  # lands after the sync
    assert (await store.get_account("acc-1")).balance == synced.account.balance - 30
    again = await store.sync_ledger("acc-1", 14_300, cursor, NOW + 6)  # the same, resent
    assert again.account.balance == 14_300 - 250 + 80 - 30
    with pytest.raises(LedgerRefused, match="older"):
        await store.sync_ledger("acc-1", 0, cursor - 1, NOW + 7)
    newer = await store.sync_ledger("acc-1", 14_000, later.journal.journal_id, NOW + 8)
    assert (newer.account.balance, newer.entries_after) == (14_000, 0)
    state = await store.ledger_state("acc-1")
    assert (state.through_id, state.ledger_balance, state.synced_at) == (
        later.journal.journal_id,
        14_000,
        NOW + 8,
    )
    with pytest.raises(NotFound):
        await store.sync_ledger("missing", 0, 0, NOW)
    assert (await store.get_account("acc-1")).balance == 14_000  # refusals changed nothing


async def test_a_ledger_sync_refuses_a_cursor_too_far_behind(store):
    """A sync adds up the entries after its cursor in one atomic step: past a bound it is
    refused (the bound made small here), and nothing changes."""
    card, _ = await seeded(store, balance=10_000)
    for n in range(1, 5):
        await store.commit(hold(card, n, 100, MoneyMove.POST))
    store.ledger_max_after = 3
    with pytest.raises(LedgerRefused, match="more than 3 journal entries after 0"):
        await store.sync_ledger("acc-1", 0, 0, NOW)
    assert (await store.get_account("acc-1")).balance == 9_600
    first = min(e.journal_id for e in await store.journal(JournalQuery(card_id=card.card_id)))
    synced = await store.sync_ledger("acc-1", 9_000, first, NOW)
    assert (synced.entries_after, synced.account.balance) == (3, 8_700)


async def test_a_ledger_sync_refuses_a_cursor_retention_has_pruned_past(store):
    card, _ = await seeded(store, balance=10_000)
    old = await store.commit(hold(card, 1, 700, MoneyMove.POST))
    await store.commit(replace(hold(card, 2, 300, MoneyMove.POST), journal=entry(
        card, 2, 300, ts=NOW + 10 * 86_400)))  # fmt: skip
    assert (await store.prune_journal(NOW + 86_400)).entries == 1
    with pytest.raises(LedgerRefused, match="pruned"):
        await store.sync_ledger("acc-1", 9_300, old.journal.journal_id - 1, NOW)
    synced = await store.sync_ledger("acc-1", 9_300, old.journal.journal_id, NOW)
    assert synced.account.balance == 9_000


def completion(
    card: Card, n: int, original_n: int, amount: int, *, in_part: bool = False
) -> Commit:
    """A 0220 completing the pre-authorisation journalled as ``original_n`` (one of several
    when ``in_part``)."""
    return Commit(
        journal=entry(
            card, n, amount, mti="0220", message_class="financial_advice", hold_amount=amount
        ),
        movement=Movement(
            card.account_id,
            MoneyMove.POST,
            amount,
            require_funds=False,
            completes=f"{original_n}|1125120000|123456|T1",
            completes_in_part=in_part,
        ),
        card_id=card.card_id,
    )


async def test_completion_posts_and_releases_its_preauthorisation(store):
    card, _ = await seeded(store, balance=10_000)
    await store.commit(hold(card, 1, 6_000))  # the hotel's pre-authorisation
    await store.commit(hold(card, 2, 1_000))  # another hold, which the completion leaves alone
    done = await store.commit(completion(card, 3, 1, 4_500))  # checkout: 45.00 of the 60.00
    assert done.funds_ok and done.journal.hold_amount == 4_500
    account = await store.get_account("acc-1")
    assert (account.balance, account.holds) == (5_500, 1_000)
    assert done.account == account
    key = "1|1125120000|123456|T1"
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 4, original_key=key))
    assert snap.original.amount_minor == 0  # a late reversal of the pre-authorisation: nothing
    again = await store.commit(completion(card, 4, 1, 500))  # a second completion: posts only
    account = await store.get_account("acc-1")
    assert (account.balance, account.holds) == (5_000, 1_000) and again.funds_ok
    # the completion itself can be reversed: it un-posts, by its own match key
    await store.commit(await reversal(card, 5, 3, 4_500))
    assert (await store.get_account("acc-1")).balance == 9_500
    # a completion naming a posted original or nothing held releases nothing
    await store.commit(hold(card, 6, 700, MoneyMove.POST))
    await store.commit(completion(card, 7, 6, 700))
    await store.commit(completion(card, 8, 99, 300))
    account = await store.get_account("acc-1")
    assert (account.balance, account.holds) == (9_500 - 700 - 700 - 300, 1_000)


async def test_split_completions_release_what_each_posts_and_the_last_the_rest(store):
    """An order of three parcels held as 90.00: the first two completions (one of several)
    each release what they post, the hold keeps the rest for the next; the last releases
    whatever is left, even when the parcels cost less than was held."""
    card, _ = await seeded(store, balance=20_000)
    await store.commit(hold(card, 1, 9_000))
    await store.commit(hold(card, 2, 1_000))  # another hold, which the completions leave alone
    first = await store.commit(completion(card, 3, 1, 3_000, in_part=True))
    account = await store.get_account("acc-1")
    assert (account.balance, account.holds) == (17_000, 7_000) and first.account == account
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 4, original_key=key(1)))
    assert snap.original.amount_minor == 6_000 and not snap.original.posted
    await store.commit(completion(card, 4, 1, 2_500, in_part=True))
    assert (await store.get_account("acc-1")).holds == 4_500
    await store.commit(completion(card, 5, 1, 1_500))  # the last parcel: all 35.00 left goes
    account = await store.get_account("acc-1")
    assert (account.balance, account.holds) == (20_000 - 7_000, 1_000)
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 6, original_key=key(1)))
    assert snap.original.amount_minor == 0
    # a part dearer than what is held releases only what is held
    await store.commit(hold(card, 6, 2_000))
    await store.commit(completion(card, 7, 6, 2_500, in_part=True))
    account = await store.get_account("acc-1")
    assert (account.balance, account.holds) == (20_000 - 9_500, 1_000)


async def test_acceptor_counters_count_every_cards_requests_at_a_merchant(store):
    """Card testing shows at the merchant, not on any one card: the counters of a merchant
    and of a terminal there count every card's requests, unknown card numbers included, in
    the process that committed them and in another one sharing the store (which reads the
    last hour when it starts)."""
    card, _ = await seeded(store)
    other, _, blob = make_card(state=CardState.ACTIVE)
    await store.create_card(other, blob)
    assert await store.prepare_acceptor_counters(NOW) == 0
    at_shop = dict(merchant_id="SHOP", terminal_id="T1")
    await store.commit(hold(card, 1, 100, **at_shop))
    declined = entry(other, 2, 100, response_code="05", cvv_failed=True, **at_shop)
    await store.commit(Commit(journal=declined, card_id=other.card_id))
    unknown = entry(card, 3, 100, response_code="14", card_id="", pan_index="idx-unknown")
    unknown = replace(unknown, account_id="", merchant_id="SHOP", terminal_id="T2")
    await store.commit(Commit(journal=unknown))
    await store.commit(hold(card, 4, 100, merchant_id="ELSEWHERE", terminal_id="T1"))
    reversal = entry(card, 5, 100, mti="0400", message_class="reversal", **at_shop)
    await store.commit(Commit(journal=reversal, card_id=card.card_id))

    def query(now: float) -> SnapshotQuery:
        return SnapshotQuery(
            card.pan_index, now, merchant="SHOP", terminal=terminal_key("SHOP", "T1")
        )

    later = await store.reopen()
    try:
        assert await later.prepare_acceptor_counters(NOW + 10) == 4  # not the reversal
        for reading in (store, later):
            [snapshot] = await reading.snapshot_many([query(NOW + 10)])
            shop, terminal = snapshot.merchant_velocity, snapshot.terminal_velocity
            assert (shop.count_10m, shop.distinct_cards_10m, shop.declined_count_10m) == (3, 3, 2)
            assert (shop.failed_cvv_10m, shop.unknown_card_count_10m) == (1, 1)
            assert (terminal.count_10m, terminal.distinct_cards_10m) == (2, 2)
            assert terminal.unknown_card_count_10m == 0
        # a request committed through one process is counted by the other at its next read
        await later.commit(hold(card, 6, 100, **at_shop))
        [snapshot] = await store.snapshot_many([query(NOW + 20)])
        assert snapshot.terminal_velocity.count_10m == 3
        # past ten minutes only the hour counts them
        [snapshot] = await store.snapshot_many([query(NOW + 3 + 601)])
        shop = snapshot.merchant_velocity
        assert (shop.count_10m, shop.count_1h, shop.distinct_cards_1h) == (1, 4, 3)
    finally:
        await later.close()


async def test_the_journal_of_one_merchant(store):
    """An analyst investigating a merchant reads its entries alone, every card's."""
    card, _ = await seeded(store)
    other, _, blob = make_card(state=CardState.ACTIVE)
    await store.create_card(other, blob)
    for n, (who, shop) in enumerate([(card, "SHOP"), (other, "ELSEWHERE"), (other, "SHOP")]):
        await store.commit(hold(who, n, 100, merchant_id=shop))
    at_shop = await store.journal(JournalQuery(merchant_id="SHOP"))
    assert [(e.card_id, e.merchant_id) for e in at_shop] == [
        (card.card_id, "SHOP"), (other.card_id, "SHOP")
    ]  # fmt: skip
    mine = await store.journal(JournalQuery(merchant_id="SHOP", card_id=other.card_id))
    assert [e.stan for e in mine] == [at_shop[1].stan]
    assert await store.journal(JournalQuery(merchant_id="NOWHERE")) == []


async def test_the_journal_by_approval_code(store):
    """Clearing finds a presentment's authorisation by card and approval code."""
    card, _ = await seeded(store)
    for n, code in enumerate(["A1B2C3", "D4E5F6", "A1B2C3"]):
        await store.commit(hold(card, n, 100, approval_code=code))
    found = await store.journal(JournalQuery(card_id=card.card_id, approval_code="A1B2C3"))
    assert [e.approval_code for e in found] == ["A1B2C3", "A1B2C3"]
    assert len({e.journal_id for e in found}) == 2
    assert await store.journal(JournalQuery(card_id=card.card_id, approval_code="ZZZZZZ")) == []


async def test_fraud_reports_label_journal_entries_and_leave_with_them(store):
    card, _ = await seeded(store, balance=20_000)
    for n in range(1, 5):
        await store.commit(hold(card, n, 100 * n))
    ids = [e.journal_id for e in await store.journal(JournalQuery(card_id=card.card_id))]
    first, second, third = sorted(ids)[:3]
    await store.put_fraud_report(FraudReport(third, card.card_id, True, "chargeback", NOW + 9))
    await store.put_fraud_report(FraudReport(first, card.card_id, True, "cardholder", NOW + 5))
    # the chargeback on the first was won back: the analyst's later verdict replaces it
    genuine = FraudReport(first, card.card_id, False, "analyst", NOW + 20, "merchant proved it")
    await store.put_fraud_report(genuine)
    reports = await store.fraud_reports()  # in the order written: the replacement last
    assert [(r.journal_id, r.fraud, r.source) for r in reports] == [
        (third, True, "chargeback"),
        (first, False, "analyst"),
    ]
    assert reports[1] == replace(genuine, report_id=reports[1].report_id)
    assert 0 < reports[0].report_id < reports[1].report_id
    after = await store.fraud_reports(after_id=reports[0].report_id)
    assert [r.journal_id for r in after] == [first]
    assert [r.journal_id for r in await store.fraud_reports(limit=1)] == [third]
    assert second not in {r.journal_id for r in reports}
    of = await store.fraud_reports_of([first, second, third])
    assert of == {first: reports[1], third: reports[0]}  # the second has none
    assert await store.fraud_reports_of([]) == {}
    await store.prune_journal(NOW + 3_600)  # every entry is older: their reports go too
    assert await store.fraud_reports() == []


async def test_a_late_or_changed_fraud_report_comes_after_a_consumers_cursor(store):
    """A consumer of the labels (a training job, the fraud-reports feed) pages with the
    report_id of the last report it read. A chargeback filed weeks later on an old entry, or
    a verdict changed on one it read already, is written after it, so its next page has
    them: nothing is skipped, and a changed report is listed once, with its new verdict.
    Another process's report (on the same data) is ordered with them."""
    card, _ = await seeded(store, balance=20_000)
    for n in range(1, 5):
        await store.commit(hold(card, n, 100 * n))
    first, second, third, fourth = sorted(
        e.journal_id for e in await store.journal(JournalQuery(card_id=card.card_id))
    )
    await store.put_fraud_report(FraudReport(third, card.card_id, True, "chargeback", NOW + 9))
    await store.put_fraud_report(FraudReport(fourth, card.card_id, True, "cardholder", NOW + 9))
    read = await store.fraud_reports(0, 100)
    assert [r.journal_id for r in read] == [third, fourth]
    cursor = read[-1].report_id
    await store.put_fraud_report(FraudReport(first, card.card_id, True, "chargeback", NOW + 99))
    won_back = FraudReport(third, card.card_id, False, "analyst", NOW + 99, "merchant proved it")
    await store.put_fraud_report(won_back)
    other = await store.reopen()  # another process
    try:
        await other.put_fraud_report(FraudReport(second, card.card_id, True, "analyst", NOW + 99))
    finally:
        await other.close()
    later = await store.fraud_reports(cursor, 100)
    assert [(r.journal_id, r.fraud) for r in later] == [(first, True), (third, False),
                                                       (second, True)]  # fmt: skip
    assert all(r.report_id > cursor for r in later)
    assert [r.report_id for r in later] == sorted(r.report_id for r in later)
    # paged one at a time from the start: each entry once, with its latest report
    paged, after = [], 0
    while page := await store.fraud_reports(after, 1):
        paged += page
        after = page[-1].report_id
    assert [(r.journal_id, r.fraud) for r in paged] == [(fourth, True), *[
        (r.journal_id, r.fraud) for r in later]]  # fmt: skip
    assert (await store.fraud_reports_of([third]))[third] == later[1]


async def test_a_report_id_is_never_handed_out_again_after_pruning(store):
    """The newest report can be a late one on an old entry, which retention prunes: the next
    report still gets a higher id than any handed out, or a consumer whose cursor passed the
    pruned one would never see it."""
    card, _ = await seeded(store, balance=20_000)
    posted = Movement(card.account_id, MoneyMove.POST, 100, require_funds=False)
    await store.commit(Commit(entry(card, 1, 100, ts=NOW - 40 * 86400), posted, card.card_id))
    await store.commit(hold(card, 2, 200))
    old, new = sorted(e.journal_id for e in await store.journal(JournalQuery(card_id=card.card_id)))
    await store.put_fraud_report(FraudReport(new, card.card_id, True, "cardholder", NOW))
    await store.put_fraud_report(FraudReport(old, card.card_id, True, "chargeback", NOW + 1))
    cursor = (await store.fraud_reports(0, 100))[-1].report_id
    await store.prune_journal(NOW - 35 * 86400)  # the old entry goes, its report with it
    assert [r.journal_id for r in await store.fraud_reports(0, 100)] == [new]
    await store.put_fraud_report(FraudReport(new, card.card_id, False, "analyst", NOW + 2))
    later = await store.fraud_reports(cursor, 100)
    assert [(r.journal_id, r.fraud) for r in later] == [(new, False)]
    assert later[0].report_id > cursor


async def test_the_review_queue_is_the_flagged_entries_in_journal_order(store):
    card, _ = await seeded(store, balance=20_000)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=20_000))
    other, _, blob = make_card(account_id="acc-2", state=CardState.ACTIVE)
    await store.create_card(other, blob)
    for n, (who, review) in enumerate(
        [(card, True), (card, False), (other, True), (card, True), (other, False)], start=1
    ):
        await store.commit(hold(who, n, 100, review=review))
    flagged = await store.journal(JournalQuery(review_only=True))
    assert [e.stan for e in flagged] == ["000001", "000003", "000004"]
    assert all(e.review for e in flagged)
    ids = [e.journal_id for e in flagged]
    assert ids == sorted(ids)
    after = await store.journal(JournalQuery(review_only=True, after_id=ids[0], limit=1))
    assert [e.stan for e in after] == ["000003"]
    mine = await store.journal(JournalQuery(review_only=True, card_id=card.card_id))
    assert [e.stan for e in mine] == ["000001", "000004"]
    await store.prune_journal(NOW + 3_600)
    assert await store.journal(JournalQuery(review_only=True)) == []


def increment(card: Card, n: int, original_n: int, amount: int) -> Commit:
    """An incremental authorisation (an 0100 naming ``original_n`` in field 90)."""
    return Commit(
        journal=entry(card, n, amount, hold_amount=amount),
        movement=Movement(
            card.account_id, MoneyMove.HOLD, amount, extends=f"{original_n}|1125120000|123456|T1"
        ),
        card_id=card.card_id,
    )


def key(n: int) -> str:
    return f"{n}|1125120000|123456|T1"


async def test_an_increment_grows_its_preauthorisation_and_leaves_with_it(store):
    card, _ = await seeded(store, balance=20_000)
    await store.commit(hold(card, 1, 6_000))  # check-in
    await store.commit(hold(card, 2, 1_000))  # another hold, which nothing here touches
    grown = await store.commit(increment(card, 3, 1, 2_000))  # the stay is extended
    assert grown.funds_ok and grown.journal.hold_amount == 2_000
    assert (await store.get_account("acc-1")).holds == 9_000
    root = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 9, original_key=key(1)))
    assert (root.original.amount_minor, root.original.parent) == (8_000, "")
    child = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 9, original_key=key(3)))
    assert child.original.parent == key(1) and child.original.amount_minor == 2_000
    assert not child.original.posted
    await store.commit(increment(card, 4, 1, 500))  # a second increment of the same stay
    assert (await store.get_account("acc-1")).holds == 9_500
    # check-out: 70.00 posted, and the pre-authorisation with both increments released
    done = await store.commit(completion(card, 5, 1, 7_000))
    account = await store.get_account("acc-1")
    assert (account.balance, account.holds) == (13_000, 1_000) and done.account == account
    # a late reversal of an increment finds nothing left: its parent was released
    late = await store.commit(await reversal(card, 6, 3, 2_000))
    assert late.journal.hold_amount == 0
    assert (await store.get_account("acc-1")).holds == 1_000


async def test_an_increment_reversed_alone_releases_it_from_its_parent(store):
    card, _ = await seeded(store, balance=20_000)
    await store.commit(hold(card, 1, 6_000))
    await store.commit(increment(card, 2, 1, 2_000))
    undone = await store.commit(await reversal(card, 3, 2, 9_999))  # the increment alone
    assert undone.journal.hold_amount == -2_000
    assert (await store.get_account("acc-1")).holds == 6_000
    root = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 9, original_key=key(1)))
    assert root.original.amount_minor == 6_000 and root.original.reversed_minor == 2_000
    again = await store.commit(await reversal(card, 4, 2, 2_000))  # repeated: nothing more
    assert again.journal.hold_amount == 0
    whole = await store.commit(await reversal(card, 5, 1, 6_000))  # then the rest of it
    assert whole.journal.hold_amount == -6_000 and (await store.get_account("acc-1")).holds == 0


async def test_an_increment_expires_with_its_parent_once(store):
    card, _ = await seeded(store, balance=20_000)
    await store.commit(hold(card, 1, 6_000))
    await store.commit(increment(card, 50, 1, 2_000))
    assert await store.expire_holds(NOW + 20) == 0  # the increment extended the hold's life
    assert (await store.get_account("acc-1")).holds == 8_000
    assert await store.expire_holds(NOW + 100) == 1  # one hold: the pre-authorisation's
    assert (await store.get_account("acc-1")).holds == 0
    late = await store.commit(await reversal(card, 3, 50, 2_000))
    assert late.journal.hold_amount == 0 and (await store.get_account("acc-1")).holds == 0


async def test_an_increment_of_a_closed_authorisation_is_held_on_its_own(store):
    card, _ = await seeded(store, balance=20_000)
    await store.commit(hold(card, 1, 6_000))
    await store.commit(await reversal(card, 2, 1, 6_000))  # cancelled before the increment
    await store.commit(hold(card, 3, 500, MoneyMove.POST))  # a posted amount is not extended
    await store.commit(increment(card, 4, 1, 2_000))
    await store.commit(increment(card, 5, 3, 300))
    await store.commit(increment(card, 6, 99, 100))  # nothing there at all
    assert (await store.get_account("acc-1")).holds == 2_400
    for n, amount in ((4, 2_000), (5, 300), (6, 100)):
        own = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 9, original_key=key(n)))
        assert (own.original.amount_minor, own.original.parent) == (amount, "")
    released = await store.commit(await reversal(card, 7, 4, 2_000))
    assert released.journal.hold_amount == -2_000
    assert (await store.get_account("acc-1")).holds == 400


async def journal_to_prune(store: CardStore) -> Card:
    """A journal to prune at ``NOW + 50``: six entries and three closed holds older, an open
    hold older too (it stays), two entries newer; the card."""
    card, _ = await seeded(store, balance=50_000)
    await store.commit(hold(card, 1, 1_000))  # old and still open: stays
    await store.commit(hold(card, 2, 2_000))  # old, released below: goes
    await store.commit(await reversal(card, 3, 2, 2_000))
    await store.commit(hold(card, 4, 300, MoneyMove.POST))  # old, posted: goes
    await store.commit(increment(card, 5, 1, 400))  # old increment of the open hold: goes
    await store.commit(Commit(entry(card, 6, 0, response_code="05")))  # old decline, no card
    await store.commit(hold(card, 60, 500))  # newer than the cut: stays
    await store.commit(hold(card, 61, 600, MoneyMove.POST))
    return card


async def test_pruning_the_journal_keeps_what_is_newer_and_every_open_hold(store, monkeypatch):
    import authhost.store.redis
    import authhost.store.sqlite

    # batches of two rows (SQLite) and pages of two entries or holds (Redis): several of each
    monkeypatch.setattr(authhost.store.sqlite, "PRUNE_BATCH", 2)
    monkeypatch.setattr(authhost.store.redis, "PRUNE_PAGE", 2)
    card = await journal_to_prune(store)
    before = (await store.get_account("acc-1")).holds

    pruned = await store.prune_journal(NOW + 50)
    assert (pruned.entries, pruned.holds) == (6, 3)
    assert (await store.get_account("acc-1")).holds == before  # no money moved
    left = await store.journal(JournalQuery(limit=100))
    assert sorted(e.stan for e in left) == ["000060", "000061"]
    by_card = await store.journal(JournalQuery(card_id=card.card_id, limit=100))
    assert sorted(e.stan for e in by_card) == ["000060", "000061"]
    # the duplicate index went with the entries: the same identifiers are a new transmission
    again = await store.commit(hold(card, 2, 200, ts=NOW + 80))
    assert again.duplicate_of is None and again.journal.response_code == "00"
    # the open hold kept its row: its reversal still finds it (with its increment's amount)
    undo = await store.commit(await reversal(card, 70, 1, 9_999))
    assert undo.journal.hold_amount == -1_400
    assert (await store.prune_journal(NOW + 50)).entries == 0  # nothing more to do


async def test_a_chip_counter_used_twice_is_a_replay(store):
    card, _ = await seeded(store, balance=10_000)

    def chip(n: int, atc: int, ts: float | None = None, **changes) -> Commit:
        commit = hold(card, n, 1_000, hold_amount=1_000, **changes)
        if ts is not None:
            commit.journal.ts = ts
        return replace(commit, atc=atc)

    first = await store.commit(chip(1, 7))
    assert not first.atc_replay and first.journal.response_code == "00"
    again = await store.commit(chip(2, 7))  # another transmission, the same cryptogram
    assert again.atc_replay and again.journal.response_code == "82"
    assert again.journal.approval_code == "" and again.journal.hold_amount == 0
    assert "chip.atc_replay" in again.journal.reason_codes
    assert (await store.get_account("acc-1")).holds == 1_000  # the replay moved nothing
    stored = {e.journal_id: e for e in await store.journal(JournalQuery(card_id=card.card_id))}
    assert stored[again.journal.journal_id].response_code == "82"
    declined = await store.commit(chip(3, 7, response_code="55", approval_code=""))
    assert declined.atc_replay and declined.journal.response_code == "55"  # stays declined
    assert not (await store.commit(chip(4, 8))).atc_replay  # the next counter
    older = await store.commit(chip(5, 6))  # below the newest (8), never seen: made before
    assert older.atc_replay and older.journal.response_code == "82"
    later = NOW + 5 + ATC_WINDOW_S + 60  # the card's counters of before are forgotten by then,
    assert (await store.commit(chip(6, 7, ts=later))).atc_replay  # but not its newest
    assert (await store.commit(chip(7, 8, ts=later + 1))).atc_replay
    assert not (await store.commit(chip(8, 9, ts=later + 2))).atc_replay
    other, _, blob = make_card(state=CardState.ACTIVE)  # another card may use the same number
    await store.create_card(other, blob)
    assert not (await store.commit(replace(hold(other, 9, 100), atc=7))).atc_replay
    assert (await store.get_account("acc-1")).holds == 3_100


async def test_a_3ds_authentication_buys_one_approval(store):
    """An approval's CAVV authentication (ATN) is remembered; another approval with it is
    refused 05 and moves nothing, until CAVV_WINDOW_S has passed; a refusal for funds uses
    nothing up; another card may have the same number."""
    card, _ = await seeded(store, balance=3_000)

    def with_cavv(n: int, atn: str, amount: int = 1_000, ts: float | None = None) -> Commit:
        commit = hold(card, n, amount, hold_amount=amount, cavv_result="2")
        if ts is not None:
            commit.journal.ts = ts
        return replace(commit, cavv_atn=atn)

    first = await store.commit(with_cavv(1, "0000000000000001"))
    assert not first.cavv_reused and first.journal.response_code == "00"
    again = await store.commit(with_cavv(2, "0000000000000001"))
    assert again.cavv_reused and again.journal.response_code == "05"
    assert again.journal.approval_code == "" and again.journal.hold_amount == 0
    assert again.journal.reason_codes.endswith("3ds.cavv_reused")
    assert (await store.get_account("acc-1")).holds == 1_000  # the reuse moved nothing
    stored = {e.journal_id: e for e in await store.journal(JournalQuery(card_id=card.card_id))}
    assert stored[again.journal.journal_id].response_code == "05"
    assert stored[again.journal.journal_id].cavv_result == "2"
    short = await store.commit(with_cavv(3, "0000000000000002", amount=5_000))
    assert not short.funds_ok and not short.cavv_reused  # 51: the authentication is not used
    assert not (await store.commit(with_cavv(4, "0000000000000002"))).cavv_reused
    later = NOW + 5 + CAVV_WINDOW_S + 60
    assert not (await store.commit(with_cavv(5, "0000000000000001", 100, ts=later))).cavv_reused
    other, _, blob = make_card(state=CardState.ACTIVE)
    await store.create_card(other, blob)
    theirs = replace(hold(other, 6, 100, hold_amount=100), cavv_atn="0000000000000002")
    assert not (await store.commit(theirs)).cavv_reused
    assert (await store.get_account("acc-1")).holds == 2_200


async def test_a_chip_counter_too_far_ahead_is_refused(store):
    card, _ = await seeded(store, balance=10_000)

    def chip(n: int, atc: int, limit: int = 100) -> Commit:
        return replace(hold(card, n, 1_000, hold_amount=1_000), atc=atc, atc_jump_limit=limit)

    assert not (await store.commit(chip(1, 500))).atc_jump  # a card's first: no newest yet
    assert not (await store.commit(chip(2, 600))).atc_jump  # 100 ahead: within the limit
    ahead = await store.commit(chip(3, 701))
    assert ahead.atc_jump and not ahead.atc_replay and ahead.journal.response_code == "82"
    assert "chip.atc_jump" in ahead.journal.reason_codes and ahead.journal.hold_amount == 0
    stored = {e.journal_id: e for e in await store.journal(JournalQuery(card_id=card.card_id))}
    assert stored[ahead.journal.journal_id].response_code == "82"
    assert (await store.get_account("acc-1")).holds == 2_000  # it moved nothing
    assert not (await store.commit(chip(4, 650))).atc_jump  # the refused one was not recorded
    assert not (await store.commit(chip(5, 5_000, limit=0))).atc_jump  # no limit
    assert (await store.get_account("acc-1")).holds == 4_000


async def test_velocity_in_snapshot_equals_compute_velocity(store):
    card, _ = await seeded(store, balance=10**9)
    events = [
        VelocityEvent(NOW - 40 * 86400, 111, True, "m0", "276"),  # too old
        VelocityEvent(NOW - 3 * 86400, 2000, True, "m1", "276"),
        VelocityEvent(NOW - 7200, 300, False, "m2", "840", pin_failed=True),
        VelocityEvent(NOW - 60, 4500, True, "m3", "840", cash=True),
        VelocityEvent(NOW - 30, 100, True, "m3", "840", cvv_failed=True),
        VelocityEvent(NOW - 30 * 86400, 50, True, "m5", "250"),  # exactly 30 days: counts
        VelocityEvent(NOW, 70, False, "m4", "250"),  # same instant as the request: counts
        # money to the card: received, not spending (a refused one is not received)
        VelocityEvent(NOW - 2 * 86400, 60_000, True, "m6", "276", credit=True),
        VelocityEvent(NOW - 900, 25_000, True, "m6", "276", credit=True),
        VelocityEvent(NOW - 800, 90_000, False, "m6", "276", credit=True),
    ]
    for n, event in enumerate(events):
        kind = MoneyMove.CREDIT if event.credit else MoneyMove.HOLD
        movement = Movement(card.account_id, kind, event.amount_minor, require_funds=False)
        await store.commit(Commit(as_entry(card, n, event), movement, card_id=card.card_id))
    reversal = replace(as_entry(card, 99, events[3]), mti="0400", message_class="reversal")
    await store.commit(Commit(reversal, card_id=card.card_id))  # not a velocity event
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
    assert snap.velocity == compute_velocity(events, NOW)
    assert snap.velocity.count_24h == 4 and snap.velocity.cash_amount_24h == 4500
    assert snap.velocity.count_30d == 6
    assert (snap.velocity.received_count_24h, snap.velocity.received_amount_24h) == (1, 25_000)
    assert snap.velocity.received_amount_7d == 85_000
    assert snap.velocity.seconds_since_received == 900
    # a request of the card received after this one (on another connection) but written first
    # counts too, a limit must see it: the counters are as at its time
    later = VelocityEvent(NOW + 5, 70, True, "m4", "250")
    movement = Movement(card.account_id, MoneyMove.HOLD, 70, require_funds=False)
    await store.commit(Commit(as_entry(card, 100, later), movement, card_id=card.card_id))
    snap = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
    assert snap.velocity == compute_velocity([*events, later], NOW + 5)
    assert snap.velocity.count_24h == 5 and snap.velocity.count_30d == 6  # 30 days and 5 s left


async def test_a_commit_decided_on_an_out_of_date_history_is_stale(store):
    """Two requests of one card decided on snapshots read at the same moment (two connections,
    two processes): the first commit naming its snapshot's velocity mark is written, the
    second finds the card's history moved on and writes nothing at all (the caller decides
    it again). What is not a velocity event (a reversal), or history a first read did not
    count (older than the window), does not make a commit stale; a commit without a mark is
    never refused."""
    card, _ = await seeded(store, balance=10**6)
    old = Movement(card.account_id, MoneyMove.POST, 111, require_funds=False)
    await store.commit(Commit(entry(card, 0, 111, ts=NOW - 40 * 86400), old, card.card_id))
    first = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
    second = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
    assert first.velocity_mark is not None and first.velocity_mark == second.velocity_mark
    done = await store.commit(replace(hold(card, 1, 500), velocity_mark=first.velocity_mark))
    assert not done.stale and done.journal.response_code == "00"
    late = await store.commit(replace(hold(card, 2, 700), velocity_mark=second.velocity_mark))
    assert late.stale
    assert (await store.get_account(card.account_id)).holds == 500  # nothing moved
    stored = await store.journal(JournalQuery(card_id=card.card_id))
    assert sorted(e.stan for e in stored) == ["000000", "000001"]  # nor journalled
    again = await store.snapshot(SnapshotQuery(card.pan_index, NOW + 10))
    assert again.velocity_mark != first.velocity_mark and again.velocity.count_24h == 1
    reversal = replace(entry(card, 3, 500), mti="0400", message_class="reversal")
    release = Movement(card.account_id, MoneyMove.RELEASE, 500, match_key=entry(card, 1).match_key)
    await store.commit(Commit(reversal, release, card_id=card.card_id))  # no velocity event
    retried = await store.commit(replace(hold(card, 2, 700), velocity_mark=again.velocity_mark))
    assert not retried.stale and retried.journal.journal_id
    assert (await store.get_account(card.account_id)).holds == 700
    unchecked = await store.commit(hold(card, 4, 300))  # decided on ``first`` too: no mark
    assert not unchecked.stale and (await store.get_account(card.account_id)).holds == 1000
    # a retransmission of a written request is its duplicate, however stale its snapshot
    repeat = await store.commit(replace(hold(card, 1, 500), velocity_mark=first.velocity_mark))
    assert (
        repeat.duplicate_of is not None
        and repeat.duplicate_of.journal_id == done.journal.journal_id
    )


async def test_a_stale_commit_is_not_counted_at_its_merchant(store):
    """A commit refused as stale wrote nothing, so the merchant's and terminal's counters do
    not count it either (its request, decided again, is counted once when it is written)."""
    card, _ = await seeded(store, balance=10**6)
    assert await store.prepare_acceptor_counters(NOW) == 0
    at_shop = dict(merchant_id="SHOP", terminal_id="T1")
    first = await store.snapshot(SnapshotQuery(card.pan_index, NOW))
    mark = first.velocity_mark
    assert not (
        await store.commit(replace(hold(card, 1, 500, **at_shop), velocity_mark=mark))
    ).stale
    assert (await store.commit(replace(hold(card, 2, 700, **at_shop), velocity_mark=mark))).stale
    query = SnapshotQuery(card.pan_index, NOW + 5, merchant="SHOP",
                          terminal=terminal_key("SHOP", "T1"))  # fmt: skip
    [snapshot] = await store.snapshot_many([query])
    assert snapshot.merchant_velocity.count_10m == 1
    assert snapshot.terminal_velocity.count_10m == 1


async def test_the_pin_counter_is_counted_in_the_write(store):
    """Wrong PINs decided together on one snapshot each count (the counter goes up in the
    write, not to a value read before it); a right PIN resets it, or, when wrong ones reached
    the limit first, is refused: 75, nothing moves."""
    card, _ = await seeded(store)
    for n in (1, 2):  # two guesses decided on the same snapshot (pin_tries 0)
        await store.commit(Commit(entry(card, n, 0, response_code="55"), card_id=card.card_id,
                                  pin_wrong=True))  # fmt: skip
    assert (await store.get_card(card.card_id)).pin_tries == 2
    right = replace(hold(card, 3, 500), pin_limit=3)
    done = await store.commit(right)
    assert not done.pin_locked and done.journal.response_code == "00"
    assert (await store.get_card(card.card_id)).pin_tries == 0  # reset
    for n in (4, 5, 6):
        await store.commit(Commit(entry(card, n, 0, response_code="55"), card_id=card.card_id,
                                  pin_wrong=True))  # fmt: skip
    held = (await store.get_account(card.account_id)).holds
    late = await store.commit(replace(hold(card, 7, 700), pin_limit=3))  # decided before them
    assert late.pin_locked and late.journal.response_code == "75"
    assert "pin.locked_meanwhile" in late.journal.reason_codes and not late.journal.approval_code
    assert (await store.get_account(card.account_id)).holds == held  # nothing moved
    assert (await store.get_card(card.card_id)).pin_tries == 3  # still locked
    unblock = await store.commit(replace(hold(card, 8, 0), movement=None, pin_limit=5))
    assert not unblock.pin_locked and (await store.get_card(card.card_id)).pin_tries == 0
    stored = {e.journal_id: e for e in await store.journal(JournalQuery(card_id=card.card_id))}
    assert (stored[late.journal.journal_id].response_code,
            stored[late.journal.journal_id].hold_amount) == ("75", 0)  # fmt: skip


async def test_a_pin_change_writes_the_new_reference_unless_the_card_moved(store):
    card, _ = await seeded(store)
    for n in (1, 2):
        await store.commit(Commit(entry(card, -n, 0, response_code="55"), card_id=card.card_id,
                                  pin_wrong=True))  # fmt: skip
    seen = await store.get_card(card.card_id)  # the snapshot the PIN change was decided on
    changed = replace(seen, pin_reference="7531", pin_tries=0)
    done = await store.commit(
        Commit(
            entry(card, 2, 0, processing_code="920000"),
            card_id=card.card_id,
            pin_limit=3,
            changed_card=changed,
        )  # fmt: skip
    )
    assert not done.pin_change_conflict and done.journal.response_code == "00"
    now = await store.get_card(card.card_id)
    assert (now.pin_reference, now.pin_tries, now.version) == ("7531", 0, seen.version + 1)
    # decided on the old snapshot again (the card moved since): refused, the PIN stays
    stale = replace(seen, pin_reference="1111", pin_tries=0)
    late = await store.commit(
        Commit(
            entry(card, 3, 0, processing_code="920000"), card_id=card.card_id, changed_card=stale
        )  # fmt: skip
    )
    assert late.pin_change_conflict and late.journal.response_code == "96"
    assert "pin.change_conflict" in late.journal.reason_codes and not late.journal.approval_code
    assert (await store.get_card(card.card_id)).pin_reference == "7531"
    stored = {e.journal_id: e for e in await store.journal(JournalQuery(card_id=card.card_id))}
    assert stored[late.journal.journal_id].response_code == "96"


# --- journal, audit, lists, idempotency --------------------------------------------------------


async def test_journal_paging_and_export(store):
    card, _ = await seeded(store, balance=10**9)
    for n in range(25):
        await store.commit(hold(card, n, 10))
    first = await store.journal(JournalQuery(card_id=card.card_id, limit=10))
    assert [e.stan for e in first] == [f"{n:06d}" for n in range(10)]
    second = await store.journal(
        JournalQuery(card_id=card.card_id, limit=10, after_id=first[-1].journal_id)
    )
    assert second[0].stan == "000010"
    window = await store.journal(JournalQuery(since=NOW + 5, until=NOW + 8))
    assert [e.stan for e in window] == ["000005", "000006", "000007"]
    exported = [e async for e in store.export_journal(JournalQuery(account_id="acc-1"))]
    assert len(exported) == 25


async def test_audit_append_and_filter(store):
    await store.append_audit(AuditEntry(NOW, "alice", "card.activate", "crd_1", "{}", '{"s":1}'))
    await store.append_audit(AuditEntry(NOW + 1, "bob", "pin.unlock", "crd_2"))
    everything = await store.audit()
    assert [a.actor for a in everything] == ["alice", "bob"]
    only = await store.audit(subject="crd_2")
    assert only[0].action == "pin.unlock" and only[0].audit_id == everything[1].audit_id
    assert await store.audit(after_id=everything[1].audit_id) == []


async def test_the_audit_log_pages_back_from_the_newest(store):
    """Newest first, a page at a time back to the oldest, with a subject or without: what a
    security officer reads first is what changed last."""
    for n in range(7):
        await store.append_audit(AuditEntry(NOW + n, "alice", "card.block", f"crd_{n % 2}"))
    ids = [a.audit_id for a in await store.audit()]
    newest = await store.audit(limit=3, newest_first=True)
    assert [a.audit_id for a in newest] == ids[::-1][:3]
    back = await store.audit(limit=3, newest_first=True, before_id=newest[-1].audit_id)
    assert [a.audit_id for a in back] == ids[::-1][3:6]
    last = await store.audit(limit=3, newest_first=True, before_id=back[-1].audit_id)
    assert [a.audit_id for a in last] == ids[:1]
    assert await store.audit(newest_first=True, before_id=ids[0]) == []
    ones = await store.audit(subject="crd_1", limit=2, newest_first=True)
    assert [a.audit_id for a in ones] == [ids[5], ids[3]]


async def test_text_fields_are_stored_verbatim_whatever_they_say(store):
    """The acquirer's fields (terminal, merchant) and an admin's names reach the store as
    they came: text that looks like a value the store fills in at commit must stay text, and
    the value it fills in must still land in its own field."""
    card, _ = await seeded(store)
    looks_like = ["__HOLD__", '"hold_amount":"__HOLD__"', "__ID__"]
    result = await store.commit(
        hold(card, 1, 700, terminal_id=looks_like[0], merchant_id=looks_like[1], hold_amount=700)
    )
    assert result.funds_ok
    (stored,) = await store.journal(JournalQuery(card_id=card.card_id))
    assert stored.terminal_id == looks_like[0] and stored.merchant_id == looks_like[1]
    assert stored.hold_amount == 700 and stored == result.journal
    await store.append_audit(AuditEntry(NOW, looks_like[2], looks_like[2], looks_like[2]))
    (audit,) = await store.audit()
    assert (audit.actor, audit.action, audit.subject) == tuple(looks_like[2:] * 3)
    assert isinstance(audit.audit_id, int) and audit.audit_id > 0


async def test_named_lists_and_idempotency(store):
    assert await store.list_names() == []
    await store.put_list("blocked_merchants", ["m1", "m2"])
    await store.put_list("empty", [])
    assert await store.get_list("blocked_merchants") == {"m1", "m2"}
    await store.put_list("blocked_merchants", ["m3"])
    assert await store.get_list("blocked_merchants") == {"m3"}
    assert await store.list_names() == ["blocked_merchants", "empty"]
    assert await store.idempotent_result("k1") is None
    await store.remember_result("k1", '{"card_id": "c1"}')
    await store.remember_result("k1", '{"card_id": "c2"}')  # first result wins
    assert await store.idempotent_result("k1") == '{"card_id": "c1"}'


async def test_an_idempotency_key_is_reserved_by_one_caller(store):
    """Whoever reserves a key first does the work (in any process); the others see its
    placeholder, then its result; a failed attempt's placeholder is forgotten."""
    placeholder = PENDING_PREFIX + ',"request":"r1"}'
    assert await store.reserve_result("k2", placeholder) is None  # ours
    assert await store.reserve_result("k2", placeholder) == placeholder  # another caller
    await store.remember_result("k2", '{"result":1}')  # over the placeholder
    assert await store.reserve_result("k2", placeholder) == '{"result":1}'
    await store.forget_reservation("k2")  # a result is not a reservation: it stays
    await store.remember_result("k2", '{"result":2}')
    assert await store.idempotent_result("k2") == '{"result":1}'
    assert await store.reserve_result("k3", placeholder) is None
    await store.forget_reservation("k3")  # the work failed: free to ask again
    assert await store.idempotent_result("k3") is None
    assert await store.reserve_result("k3", placeholder) is None


async def test_a_hold_with_a_longer_life_outlives_the_others(store):
    """A hotel's pre-authorisation (extra_life_s) is still held when ordinary holds of the same
    age expire, and expires once its own life is over; an increment keeps its root's life."""
    card, _ = await seeded(store)
    hotel = replace(hold(card, 1, 1_000), movement=Movement(card.account_id, MoneyMove.HOLD,
                                                            1_000, extra_life_s=500))  # fmt: skip
    await store.commit(hotel)
    await store.commit(hold(card, 2, 300))  # a shop's, the same age
    assert await store.expire_holds(older_than=NOW + 50) == 1  # the shop's only
    assert (await store.get_account("acc-1")).holds == 1_000
    grown = await store.commit(increment(card, 3, 1, 200))  # the stay is extended at NOW + 3
    assert grown.funds_ok and (await store.get_account("acc-1")).holds == 1_200
    assert await store.expire_holds(older_than=NOW + 502) == 0  # 3 + 500 is not over yet
    assert await store.expire_holds(older_than=NOW + 504) == 1  # now it is, increment and all
    assert (await store.get_account("acc-1")).holds == 0


async def test_a_hold_with_a_shorter_life_goes_before_the_others(store):
    """A fuel pump's pre-authorisation (negative extra_life_s) expires while an ordinary hold
    of the same age stays; the expiry looks that much past the default's cutoff."""
    card, _ = await seeded(store)
    pump = replace(hold(card, 100, 8_000), movement=Movement(card.account_id, MoneyMove.HOLD,
                                                             8_000, extra_life_s=-300))  # fmt: skip
    await store.commit(pump)  # created at NOW + 100: younger than the cutoff below
    await store.commit(hold(card, 101, 500))
    assert await store.expire_holds(older_than=NOW + 50, shorter_by=300) == 1  # the pump's
    assert (await store.get_account("acc-1")).holds == 500
    assert await store.expire_holds(older_than=NOW + 50, shorter_by=300) == 0


async def test_expire_holds_releases_only_old_open_holds(store):
    card, _ = await seeded(store)
    await store.commit(hold(card, 1, 1000))  # ts NOW + 1: old
    await store.commit(hold(card, 2, 500, MoneyMove.POST))  # posted: stays posted
    await store.commit(hold(card, 100, 300))  # ts NOW + 100: young
    await store.commit(await reversal(card, 101, 1, 400))  # 600 of the old hold left
    assert await store.expire_holds(older_than=NOW + 50) == 1
    account = await store.get_account("acc-1")
    assert account.holds == 300 and account.balance == 100_000 - 500
    assert await store.expire_holds(older_than=NOW + 50) == 0  # idempotent
    snap = await store.snapshot(
        SnapshotQuery(card.pan_index, NOW + 200, original_key="1|1125120000|123456|T1")
    )
    assert snap.original.amount_minor == 0  # a late reversal finds nothing left to release


async def test_info_names_the_backend(store):
    info = store.info()
    assert info.backend in ("sqlite", "redis", "redis-cluster") and info.shared_between_processes


async def test_open_holds_are_what_the_account_holds(store):
    """The support desk's list: every hold still holding money, oldest first, an increment
    counted in its pre-authorisation's, a hotel's longer life with it; posted amounts,
    released and completed holds are not listed; together they are the account's holds."""
    card, _ = await seeded(store, balance=50_000)
    hotel = replace(hold(card, 1, 6_000), movement=Movement(card.account_id, MoneyMove.HOLD,
                                                            6_000, extra_life_s=500))  # fmt: skip
    await store.commit(hotel)
    await store.commit(hold(card, 2, 1_000))
    await store.commit(hold(card, 3, 700, kind=MoneyMove.POST))  # posted: holds nothing
    await store.commit(increment(card, 4, 1, 2_000))  # the hotel's stay, extended
    await store.commit(hold(card, 5, 900))
    await store.commit(await reversal(card, 6, 5, 400))  # partly reversed: 500 left
    await store.commit(hold(card, 7, 300))
    await store.commit(await reversal(card, 8, 7, 300))  # wholly reversed: gone
    held = await store.open_holds("acc-1")
    assert [(h.match_key, h.amount_minor) for h in held] == [
        (key(2), 1_000), (key(1), 8_000), (key(5), 500)  # the increment moved the hotel's on
    ]  # fmt: skip
    assert held[1].extra_life_s == 500 and held[0].extra_life_s == 0
    assert sum(h.amount_minor for h in held) == (await store.get_account("acc-1")).holds
    await store.commit(completion(card, 9, 1, 7_500))  # the hotel checks out
    assert [h.match_key for h in await store.open_holds("acc-1")] == [key(2), key(5)]
    assert await store.open_holds("no-such-account") == []


async def test_disputes_one_per_journal_entry_listed_by_state(store):
    first = Dispute("dsp0000000001000000001", 11, "crd-1", "acc-1", "fraud", 5_000, "978", 1.0)
    second = replace(first, dispute_id="dsp0000000002000000001", journal_id=12, reason="amount")
    await store.open_dispute(first)
    await store.open_dispute(second)
    with pytest.raises(Conflict):  # the same entry again, under another id
        await store.open_dispute(replace(first, dispute_id="dsp0000000003000000001"))
    assert await store.get_dispute(first.dispute_id) == first
    assert await store.get_dispute("dsp-none") is None
    won = replace(first, state="won", credited_minor=5_000, closed_at=9.0, note="merchant agreed")
    await store.update_dispute(won)
    assert await store.get_dispute(first.dispute_id) == won
    assert await store.disputes() == [won, second]
    assert await store.disputes(state="open") == [second]
    assert await store.disputes(after=first.dispute_id) == [second]
    assert await store.disputes(limit=1) == [won]
    # a charge's dispute is found by its journal entry, as it is now (not as it was opened)
    assert await store.dispute_of_entry(first.journal_id) == won
    assert await store.dispute_of_entry(second.journal_id) == second
    assert await store.dispute_of_entry(99) is None


async def test_disputes_of_a_card_are_found_by_card(store):
    """A card's disputes, as they are now, in id order; another card's, a card whose id
    begins like it, and a card without any are kept apart."""
    first = Dispute("dsp0000000001000000001", 11, "crd_1", "acc-1", "fraud", 5_000, "978", 1.0)
    second = replace(first, dispute_id="dsp0000000002000000001", journal_id=12, reason="amount")
    other = replace(first, dispute_id="dsp0000000003000000001", journal_id=13, card_id="crd_2")
    longer = replace(first, dispute_id="dsp0000000004000000001", journal_id=14, card_id="crd_10")
    for dispute in (second, other, first, longer):
        await store.open_dispute(dispute)
    won = replace(first, state="won", credited_minor=5_000, closed_at=9.0, version=1)
    await store.update_dispute(won)
    assert await store.disputes_of_card("crd_1") == [won, second]
    assert await store.disputes_of_card("crd_2") == [other]
    assert await store.disputes_of_card("crd_10") == [longer]
    assert await store.disputes_of_card("crd_3") == []


async def test_open_disputes_page_in_id_order_as_they_close(store):
    """What the server's reconcile runs read every minute: the open disputes, a page at a
    time after the last id, never a closed one, a dispute that closes leaving the list and
    one opened later joining it."""
    base = Dispute("dsp0000000000000000000", 0, "crd-1", "acc-1", "fraud", 5_000, "978", 1.0)
    opened = [replace(base, dispute_id=f"dsp00000000{i:02d}000000001", journal_id=100 + i)
              for i in range(7)]  # fmt: skip
    for dispute in opened:
        await store.open_dispute(dispute)
    await store.update_dispute(replace(opened[2], state="lost", version=1), expected_version=0)
    await store.update_dispute(replace(opened[5], state="reversed", version=1))
    still = [d for i, d in enumerate(opened) if i not in (2, 5)]
    pages, after = [], ""
    while page := await store.disputes("open", 2, after):
        pages.append([d.dispute_id for d in page])
        after = page[-1].dispute_id
    assert pages == [[d.dispute_id for d in still[i : i + 2]] for i in range(0, 5, 2)]
    claimed = replace(opened[0], resolving="won", version=1)  # still open while it resolves
    await store.update_dispute(claimed, expected_version=0)
    late = replace(base, dispute_id="dsp0000000099000000001", journal_id=199)
    await store.open_dispute(late)
    assert await store.disputes("open", 100) == [claimed, *still[1:], late]


async def test_a_dispute_is_updated_only_over_the_version_it_was_read_at(store):
    """Compare-and-set: of several changes made from one version, one is written (two
    resolutions of one dispute at once cannot both win)."""
    first = Dispute("dsp0000000001000000001", 11, "crd-1", "acc-1", "fraud", 5_000, "978", 1.0)
    await store.open_dispute(first)
    claimed = replace(first, resolving="lost", version=1)
    await store.update_dispute(claimed, expected_version=0)
    with pytest.raises(Conflict):  # made from version 0 too: too late
        await store.update_dispute(replace(first, resolving="won", version=1), expected_version=0)
    assert await store.get_dispute(first.dispute_id) == claimed
    with pytest.raises(NotFound):
        await store.update_dispute(replace(first, dispute_id="dsp-none"), expected_version=0)
    written: list[str] = []

    async def close(outcome: str) -> None:
        closed = replace(claimed, state=outcome, resolving="", version=2)
        try:
            await store.update_dispute(closed, expected_version=1)
        except Conflict:
            return
        written.append(outcome)

    async with anyio.create_task_group() as tg:
        for outcome in ("won", "lost", "withdrawn", "lost", "won", "lost"):
            tg.start_soon(close, outcome)
    assert len(written) == 1
    stored = await store.get_dispute(first.dispute_id)
    assert (stored.state, stored.version) == (written[0], 2)
    assert await store.disputes(state=written[0]) == [stored]


async def test_the_journal_by_retrieval_reference(store):
    card, _ = await seeded(store)
    await store.commit(hold(card, 1, 100, rrn="000000004711"))
    await store.commit(hold(card, 2, 200, rrn="000000004712"))
    found = await store.journal(JournalQuery(rrn="000000004712"))
    assert [e.amount_minor for e in found] == [200]
    assert await store.journal(JournalQuery(rrn="999999999999")) == []


async def test_a_dispute_lowered_by_partial_recalls_reads_back_as_written(store):
    """A dispute whose chargeback partial recalls lowered keeps them (times and amounts)
    through every read, by id, by charge, by card and in the open and all listings; one
    never lowered is stored as an older authhost wrote it, without the field, and reads back
    with none."""
    base = Dispute("dsp0000000001000000002", 21, "crd-1", "acc-1", "fraud", 5_000, "978", 1.0)
    await store.open_dispute(base)
    lowered = replace(
        base, stage="chargeback", chargeback_minor=3_000, charged_back_at=2.0, version=1,
        recalls=((1_795_000_000.123456, 1_500), (1_795_000_100.5, 500)),
    )  # fmt: skip
    await store.update_dispute(lowered, expected_version=0)
    other = replace(base, dispute_id="dsp0000000001000000003", journal_id=22)
    await store.open_dispute(other)
    assert await store.get_dispute(base.dispute_id) == lowered
    assert await store.dispute_of_entry(21) == lowered
    assert await store.disputes_of_card("crd-1") == [lowered, other]
    assert await store.disputes("open", 10) == [lowered, other]
    assert await store.disputes("", 10) == [lowered, other]
    assert (await store.get_dispute(other.dispute_id)).recalls == ()
    closed = replace(lowered, state="reversed", version=2)
    await store.update_dispute(closed, expected_version=1)
    assert await store.disputes("open", 10) == [other]
    assert await store.get_dispute(base.dispute_id) == closed
