"""The two stores side by side: cases where SQLite and Redis once answered differently (found by
running the same random operations on both), and that differential run itself, which compares
every commit's result, the accounts, the open holds, the PIN counters and the journal."""

from __future__ import annotations

import copy
import dataclasses
import random
import secrets
from dataclasses import replace

import pytest
from test_store_contract import (  # noqa: F401 - fixtures
    CREDIT,
    NOW,
    PRODUCT,
    entry,
    hold,
    make_card,
    redis_cluster_url,
    seeded,
    store,
)

from authhost.cards.model import Account, CardKind, CardState
from authhost.store import open_store
from authhost.store.interface import (
    BALANCE_BOUND,
    Commit,
    JournalQuery,
    MoneyMove,
    Movement,
    SnapshotQuery,
)
from authhost.store.records import JournalEntry


async def test_a_movement_of_nothing_moves_nothing(store):  # noqa: F811
    """A posting, a refund or a hold of 0 is written like any other (Redis refused the
    negative zero its script computed, "-0", after writing the hold: 96 and a half-write)."""
    card, _ = await seeded(store, balance=5_000)
    for n, kind in enumerate((MoneyMove.POST, MoneyMove.CREDIT, MoneyMove.HOLD), start=1):
        done = await store.commit(hold(card, n, 0, kind))
        assert done.funds_ok and not done.balance_bound
        assert (done.account.balance, done.account.holds) == (5_000, 0)
        assert done.journal.balance_delta == 0
    await store.create_account(Account("acc-c", "978", CardKind.CREDIT, credit_limit=1_000))
    credit_card, _, blob = make_card(CREDIT, "acc-c", state=CardState.ACTIVE)
    await store.create_card(credit_card, blob)
    for n, kind in enumerate((MoneyMove.POST, MoneyMove.CREDIT), start=10):
        assert (await store.commit(hold(credit_card, n, 0, kind))).account.balance == 0
    assert (await store.get_account("acc-1")).balance == 5_000


async def test_a_right_pin_refused_for_a_used_3ds_value_keeps_the_wrong_tries(store):  # noqa: F811
    """A refused request (here: its 3-D Secure value was used already) is no proof that the
    cardholder is there: its right PIN resets the wrong-PIN counter on neither store, as a
    refused chip counter's does not (SQLite reset it before looking at the value)."""
    card, _ = await seeded(store)
    await store.commit(replace(hold(card, 1, 100), cavv_atn="0000000000000001"))
    await store.commit(Commit(entry(card, 2, 0, response_code="55"), card_id=card.card_id,
                              pin_wrong=True))  # fmt: skip
    again = await store.commit(replace(hold(card, 3, 100), cavv_atn="0000000000000001",
                                       pin_limit=3))  # fmt: skip
    assert again.cavv_reused and again.journal.response_code == "05"
    assert (await store.get_card(card.card_id)).pin_tries == 1
    right = await store.commit(replace(hold(card, 4, 100), pin_limit=3))
    assert right.journal.response_code == "00"
    assert (await store.get_card(card.card_id)).pin_tries == 0


async def test_issuer_scripts_sent_with_a_right_pin_leave_the_card(store):  # noqa: F811
    """A chip answer that carries the card's queued issuer script commands empties the queue,
    also when its right PIN resets a wrong-PIN count in the same write (SQLite reset the count
    first, which moved the card's version, and then kept the commands queued)."""
    card, _ = await seeded(store, chip_scripts=("application_unblock",))
    await store.commit(Commit(entry(card, 1, 0, response_code="55"), card_id=card.card_id,
                              pin_wrong=True))  # fmt: skip
    seen = await store.get_card(card.card_id)
    assert seen.pin_tries == 1 and seen.chip_scripts
    delivered = replace(hold(card, 2, 100), pin_limit=3,
                        delivered_card=replace(seen, chip_scripts=()))  # fmt: skip
    assert (await store.commit(delivered)).journal.response_code == "00"
    now = await store.get_card(card.card_id)
    assert (now.pin_tries, now.chip_scripts) == (0, ())


async def test_a_pin_change_over_a_changed_card_moves_no_money(store):  # noqa: F811
    """A PIN change refused because the card changed since its snapshot (96) moves none of
    its money either (SQLite moved it, then refused the change)."""
    card, _ = await seeded(store, balance=5_000)
    seen = await store.get_card(card.card_id)
    await store.commit(Commit(entry(card, 1, 0, response_code="55"), card_id=card.card_id,
                              pin_wrong=True))  # fmt: skip
    late = replace(hold(card, 2, 1_000), changed_card=replace(seen, pin_reference="7531"))
    done = await store.commit(late)
    assert done.pin_change_conflict and done.journal.response_code == "96"
    assert (await store.get_account("acc-1")).holds == 0
    assert (await store.get_card(card.card_id)).pin_reference == seen.pin_reference


async def test_a_shorter_hold_goes_no_sooner_than_the_expiry_looks(store):  # noqa: F811
    """``expire_holds(older_than, shorter_by)`` takes a fuel pump's hold at most ``shorter_by``
    before the others, whatever shorter life the hold was given (the configuration changed
    since): SQLite looks no further past the cutoff, and Redis, which reads every hold, used
    the hold's own life."""
    card, _ = await seeded(store)
    pump = replace(hold(card, 100, 8_000), movement=Movement(card.account_id, MoneyMove.HOLD,
                                                             8_000, extra_life_s=-300))  # fmt: skip
    await store.commit(pump)  # created at NOW + 100, 50 s after the cutoff below
    assert await store.expire_holds(older_than=NOW + 50) == 0
    assert await store.expire_holds(older_than=NOW + 50, shorter_by=30) == 0
    assert await store.expire_holds(older_than=NOW + 50, shorter_by=60) == 1
    assert (await store.get_account("acc-1")).holds == 0


async def test_a_match_key_reused_on_another_account_is_that_accounts_own_hold(store):  # noqa: F811
    """Two accounts' holds under one match key (same STAN, transmission time, acquirer and
    terminal; another RRN, so no duplicate) are two holds, each released and expired on its
    own account, as Redis keeps them. SQLite kept holds by match key alone: the second
    account's amount was added to the first's row, its own hold could never be released
    (held for good) and the first account's expiry took the two amounts."""
    card, _ = await seeded(store, balance=5_000)
    await store.create_account(Account("acc-2", "978", CardKind.DEBIT, balance=5_000))
    other, _, blob = make_card(PRODUCT, "acc-2", state=CardState.ACTIVE)
    await store.create_card(other, blob)
    await store.commit(hold(card, 1, 1_000))
    reused = hold(other, 1, 700, dedupe_key="010|000001|rrn-other|T1|1125120000")
    assert (await store.commit(reused)).journal.response_code == "00"
    shared_key = reused.journal.match_key
    query = SnapshotQuery(other.pan_index, NOW + 3, original_key=shared_key)
    found = await store.snapshot(query)
    assert (found.original.account_id, found.original.amount_minor) == ("acc-2", 700)

    reversal = Commit(
        entry(other, 2, 700, mti="0400", match_key="", dedupe_key="040|2"),
        movement=Movement("acc-2", MoneyMove.RELEASE, 700, require_funds=False,
                          match_key=shared_key),
        card_id=other.card_id,
    )  # fmt: skip
    assert (await store.commit(reversal)).journal.hold_amount == -700
    assert [(await store.get_account(a)).holds for a in ("acc-1", "acc-2")] == [1_000, 0]
    assert await store.expire_holds(older_than=NOW + 100) == 1  # the first account's only
    after = [await store.get_account(a) for a in ("acc-1", "acc-2")]
    assert [(a.balance, a.holds) for a in after] == [(5_000, 0), (5_000, 0)]


# --- the differential run -----------------------------------------------------------------------


def _plain(value):
    """A result as data, without what each store numbers its own way (journal ids)."""
    if isinstance(value, Exception):
        return ("raised", type(value).__name__)
    if isinstance(value, JournalEntry):
        row = dataclasses.asdict(value)
        row.pop("journal_id")
        return row
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


@pytest.fixture
async def both(tmp_path, redis_url):
    sqlite = await open_store(f"sqlite:///{tmp_path / 'cards.db'}")
    redis = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        yield sqlite, redis
    finally:
        await redis.drop_all()
        await redis.close()
        await sqlite.close()


class _Run:
    """One random sequence of store operations, applied to both stores alike."""

    def __init__(self, stores, seed: int) -> None:
        self.stores = stores
        self.rnd = random.Random(seed)
        self.accounts: list[Account] = []
        self.cards = []
        self.keys: dict[str, list[str]] = {}  # match keys by account
        self.dedupe: list[str] = []
        self.atc: dict[str, int] = {}
        self.ts = NOW
        self.n = 0

    async def both(self, call):
        out = []
        for one in self.stores:
            try:
                out.append(_plain(await call(one)))
            except Exception as exc:  # the same refusal on both is agreement too
                out.append(_plain(exc))
        return out

    async def setup(self) -> None:
        rnd = self.rnd
        for one in self.stores:
            await one.put_product(PRODUCT)
            await one.put_product(CREDIT)
        kinds = (CardKind.DEBIT, CardKind.CREDIT, CardKind.PREPAID, CardKind.DEBIT)
        for i, kind in enumerate(kinds):
            near_bound = rnd.random() < 0.2
            balance = BALANCE_BOUND - 1_000 if near_bound else rnd.randint(0, 200_000)
            if kind is CardKind.CREDIT:
                balance = BALANCE_BOUND - 500 if near_bound else rnd.choice([0, 1_000])
            limit = 0 if kind is CardKind.PREPAID else rnd.choice([0, 10_000, BALANCE_BOUND])
            account = Account(f"acc-{i}", "978", kind, balance=balance, credit_limit=limit)
            self.accounts.append(account)
            self.keys[account.account_id] = []
            for one in self.stores:
                await one.create_account(account)
            for _ in range(2):
                product = CREDIT if kind is CardKind.CREDIT else PRODUCT
                card, _, blob = make_card(product, account.account_id, state=CardState.ACTIVE)
                for one in self.stores:
                    await one.create_card(card, blob)
                self.cards.append(card)
                self.atc[card.card_id] = 0

    def commit(self) -> tuple[Commit, str]:
        rnd = self.rnd
        self.n += 1
        n = self.n
        card = rnd.choice(self.cards)
        account_id = card.account_id
        what = rnd.choices(
            ["hold", "post", "credit", "release", "complete", "increment", "none"],
            [5, 4, 2, 4, 2, 2, 1],
        )[0]
        amount = rnd.choice(
            [0, 1, rnd.randint(1, 30_000), rnd.randint(1, 300_000), 10**14, BALANCE_BOUND]
        )
        keys = self.keys[account_id]
        target = rnd.choice(keys) if keys else ""
        dedupe = rnd.choice(self.dedupe) if self.dedupe and rnd.random() < 0.07 else f"d{n}"
        self.dedupe.append(dedupe)
        journal = JournalEntry(
            ts=self.ts,
            mti="0100",
            message_class=rnd.choice(
                ["authorisation", "financial", "authorisation_advice", "financial_advice"]
            ),
            response_code=rnd.choice(["00", "00", "00", "05", "10"]),
            card_id=card.card_id,
            pan_masked=card.masked_pan,
            pan_index=card.pan_index,
            account_id=account_id,
            processing_code=rnd.choice(["000000", "000000", "010000", "200000"]),
            amount_minor=amount,
            currency="978",
            merchant_id=f"m{rnd.randint(0, 3)}",
            country="276",
            stan=f"{n % 1_000_000:06d}",
            approval_code="A00001",
            reason_codes=rnd.choice(["", "rule.x"]),
            review=rnd.random() < 0.1,
            pin_failed=rnd.random() < 0.1,
            dedupe_key=dedupe,
            match_key=f"{n}|{account_id}",
        )
        movement = None
        require = rnd.random() < 0.8
        if what in ("hold", "post", "credit"):
            life = rnd.choice([0.0, 0.0, 86_400.0, -7_200.0])
            movement = Movement(account_id, MoneyMove(what), amount, require, extra_life_s=life)
        elif what == "complete":
            movement = Movement(account_id, MoneyMove.POST, amount, False, completes=target,
                                completes_in_part=rnd.random() < 0.4)  # fmt: skip
        elif what == "increment":
            movement = Movement(account_id, MoneyMove.HOLD, amount, require, extends=target)
        elif what == "release":
            journal.mti, journal.message_class, journal.match_key = "0400", "reversal", target
            keep = rnd.choice([0, 0, rnd.randint(0, 20_000)])
            movement = Movement(account_id, MoneyMove.RELEASE, amount, False, match_key=target,
                                keep_minor=keep)  # fmt: skip
        if movement is not None and movement.kind is not MoneyMove.RELEASE:
            journal.hold_amount, journal.movement = amount, movement.kind.value
        keys.append(journal.match_key)
        commit = Commit(journal, movement, card_id=card.card_id, pin_wrong=journal.pin_failed)
        if not journal.pin_failed and rnd.random() < 0.3:
            commit.pin_limit = 3
        if rnd.random() < 0.2:
            commit.atc = max(0, self.atc[card.card_id] + rnd.choice([1, 1, 2, 0, -1, 200]))
            commit.atc_jump_limit = rnd.choice([0, 100])
            self.atc[card.card_id] = max(self.atc[card.card_id], commit.atc)
        if rnd.random() < 0.1:
            commit.cavv_atn = f"atn{rnd.randint(0, 4)}"
        return commit, target

    async def step(self) -> tuple[object, list]:
        rnd = self.rnd
        self.ts += rnd.choice([0.5, 1.0, 30.0, 600.0, 3600.0, 86_400 * rnd.random()])
        account_id = rnd.choice(self.accounts).account_id
        r = rnd.random()
        if r < 0.06:
            delta = rnd.choice([rnd.randint(-50_000, 50_000), BALANCE_BOUND, -BALANCE_BOUND, 0])
            key = rnd.choice(["", "", f"k{rnd.randint(0, 5)}"])
            what = ("change_funds", account_id, delta, key)
            return what, await self.both(
                lambda s: s.change_funds(account_id, delta, key=key, fingerprint=f"fp{key}")
            )
        if r < 0.08:
            limit = rnd.choice([0, 5_000, 100_000, BALANCE_BOUND])
            what = ("set_credit_limit", account_id, limit)
            return what, await self.both(lambda s: s.set_credit_limit(account_id, limit))
        if r < 0.11:
            cutoff = self.ts - rnd.choice([60, 3600, 86_400, 7 * 86_400])
            shorter = rnd.choice([0.0, 3600.0, 7200.0])
            what = ("expire_holds", cutoff, shorter)
            return what, await self.both(lambda s: s.expire_holds(cutoff, shorter))
        commit, target = self.commit()
        card = next(c for c in self.cards if c.card_id == commit.card_id)
        query = SnapshotQuery(card.pan_index, self.ts, original_key=target)
        snapshots = [await s.snapshot(query) for s in self.stores]
        seen = [(s.card.pin_tries, s.velocity, s.original, s.account) for s in snapshots]
        assert seen[0] == seen[1], f"snapshot before {commit}"
        with_mark = rnd.random() < 0.2
        results = []
        for snapshot in snapshots:
            each = copy.deepcopy(commit)  # a store numbers the entry it is given
            if with_mark:
                each.velocity_mark = snapshot.velocity_mark
            results.append(each)
        out = []
        for one, each in zip(self.stores, results, strict=True):
            try:
                out.append(_plain(await one.commit(each)))
            except Exception as exc:
                out.append(_plain(exc))
        return ("commit", commit), out

    async def state(self) -> list:
        out = []
        for one in self.stores:
            accounts = [await one.get_account(a.account_id) for a in self.accounts]
            holds = [await one.open_holds(a.account_id) for a in self.accounts]
            tries = [(await one.get_card(c.card_id)).pin_tries for c in self.cards]
            out.append((accounts, holds, tries))
        return out


@pytest.mark.parametrize("seed", range(6))
async def test_random_operations_agree_on_both_stores(both, seed):
    """Holds, postings, refunds, completions (whole and in part), increments, reversals (whole,
    partial, of what is gone), duplicates, PIN counters, chip counters, 3-D Secure values,
    velocity marks, balances near the bound, funds changes, credit limits and hold expiry:
    the same results, accounts, open holds, PIN counters and journal on SQLite and Redis."""
    run = _Run(both, seed)
    await run.setup()
    for number in range(120):
        what, (sqlite, redis) = await run.step()
        assert sqlite == redis, f"step {number}: {what}"
        state = await run.state()
        assert state[0] == state[1], f"after step {number}: {what}"
    journals = [[_plain(e) for e in await s.journal(JournalQuery(limit=10_000))] for s in both]
    assert journals[0] == journals[1]
