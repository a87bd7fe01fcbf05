"""Random money movements on every backend against a plain Python model of the rules.

The SQLite backend moves money in SQL and the Redis backend in Lua; this holds both to one
definition: open-to-buy checks, holds, posts, refunds, completions, incremental authorisations,
and releases clamped to what is left (a released refund or transfer is taken back).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from test_store_contract import (  # noqa: F401  (fixtures: store, redis_cluster_url)
    PRODUCT,
    entry,
    make_card,
    redis_cluster_url,
    store,
)

from authhost.cards.model import Account, CardKind, CardState
from authhost.store.interface import Commit, JournalQuery, MoneyMove, Movement
from authhost.store.records import JournalEntry


@dataclass
class Model:
    kind: CardKind
    balance: int
    credit_limit: int
    holds: int = 0
    # match key -> [amount, posted (0 hold, 1 posted, 2 increment, 3 credited), reversed,
    # parent]
    held: dict[str, list] = field(default_factory=dict)

    @property
    def open_to_buy(self) -> int:
        if self.kind is CardKind.CREDIT:
            return self.credit_limit - self.balance - self.holds
        return self.balance + self.credit_limit - self.holds

    def spend(self, amount: int) -> int:
        return amount if self.kind is CardKind.CREDIT else -amount

    def apply(
        self,
        kind: MoneyMove,
        amount: int,
        check: bool,
        key: str,
        completes: str = "",
        extends: str = "",
        in_part: bool = False,
    ) -> tuple[bool, int]:
        """(funds_ok, journal hold_amount) after one movement."""
        if kind in (MoneyMove.HOLD, MoneyMove.POST):
            if check and amount > self.open_to_buy:
                return False, 0
            completed = self.held.get(completes)
            if kind is MoneyMove.POST and completed and completed[1] == 0 and completes != key:
                # a completion releases all its original still holds; one of several, at most
                # its own amount
                left = completed[0] - completed[2]
                release = min(left, amount) if in_part else left
                self.holds -= min(release, self.holds)
                completed[2] += release
            posted, parent = int(kind is MoneyMove.POST), ""
            extended = self.held.get(extends)
            opened = extended and extended[1] == 0 and extended[0] > extended[2]
            if kind is MoneyMove.HOLD and opened and extends != key:
                extended[0] += amount  # an open pre-authorisation grows by the increment
                posted, parent = 2, extends
            if kind is MoneyMove.HOLD:
                self.holds += amount
            else:
                self.balance += self.spend(amount)
            record = self.held.setdefault(key, [0, 0, 0, parent])
            record[0] += amount
            record[1] = posted
            return True, amount
        if kind is MoneyMove.CREDIT:
            self.balance -= self.spend(amount)
            self.held[key] = [amount, 3, 0, ""]  # its reversal takes it back
            return True, amount
        record = self.held.get(key)
        if record is None:
            return True, 0
        release = max(0, min(amount, record[0] - record[2]))
        if record[1] == 2:  # an increment: released from its parent's hold too
            parent = self.held[record[3]]
            release = min(release, parent[0] - parent[2])
            parent[2] += release
        if release:
            if record[1] == 1:
                self.balance -= self.spend(release)
            elif record[1] == 3:  # a credit taken back, whatever the account holds now
                self.balance += self.spend(release)
            else:
                self.holds -= min(release, self.holds)
            record[2] += release
        return True, -release


@pytest.mark.parametrize("kind", [CardKind.DEBIT, CardKind.CREDIT], ids=lambda k: k.value)
@pytest.mark.parametrize("seed", [1, 2])
async def test_random_movements_match_the_model(store, kind, seed):  # noqa: F811
    rng = random.Random(seed)
    model = Model(kind, balance=0 if kind is CardKind.CREDIT else 50_000, credit_limit=50_000)
    await store.put_product(PRODUCT)
    await store.create_account(
        Account("acc-1", "978", kind, balance=model.balance, credit_limit=model.credit_limit)
    )
    card, _, blob = make_card(state=CardState.ACTIVE)
    await store.create_card(card, blob)
    keys: list[str] = []
    committed: list[JournalEntry] = []
    for n in range(100):
        move = rng.choice(
            [MoneyMove.HOLD, MoneyMove.HOLD, MoneyMove.POST, MoneyMove.CREDIT, MoneyMove.RELEASE]
        )
        amount = rng.randint(1, 8_000)
        check = rng.random() < 0.8
        # a post may complete an earlier hold (or a post, or nothing: those release nothing)
        completes = extends = ""
        in_part = False
        if move is MoneyMove.POST and keys and rng.random() < 0.5:
            completes = rng.choice(keys[-5:])
            in_part = rng.random() < 0.5  # one of a split shipment's completions
        if move is MoneyMove.HOLD and keys and rng.random() < 0.6:
            # an incremental authorisation names its chain's first hold, as the pipeline does
            extends = rng.choice(keys[-5:])  # recent ones, so that chains grow and get released
            extends = model.held.get(extends, [0, 0, 0, ""])[3] or extends
        if move is MoneyMove.RELEASE:
            key = rng.choice(keys[-5:]) if keys and rng.random() < 0.9 else "nothing-held-here"
        else:
            key = f"mk{n}"
            keys.append(key)
        journal = entry(card, n, amount, match_key=key, hold_amount=amount)
        commit = Commit(
            journal,
            Movement(
                "acc-1",
                move,
                amount,
                require_funds=check,
                match_key=key,
                completes=completes,
                extends=extends,
                completes_in_part=in_part,
            ),
            card_id=card.card_id,
        )
        result = await store.commit(commit)
        balance_before = model.balance
        funds_ok, hold_amount = model.apply(move, amount, check, key, completes, extends, in_part)
        assert result.funds_ok is funds_ok, (n, move)
        assert result.journal.hold_amount == hold_amount, (n, move)
        # what the ledger is told the entry did to the balance is what it did
        assert result.journal.balance_delta == model.balance - balance_before, (n, move)
        account = await store.get_account("acc-1")
        assert (account.balance, account.holds) == (model.balance, model.holds), (n, move)
        assert account.open_to_buy == model.open_to_buy
        committed.append(result.journal)
    # what the store kept is what each commit answered (51 on a failed re-check, the amount a
    # release really freed), not the entry as it was handed in
    stored = await store.journal(JournalQuery(card_id=card.card_id, limit=200))
    assert stored == committed
