#!/usr/bin/env python3
"""Common point of purchase report cost: the time per journal entry the report reads.

A fresh store (a temporary SQLite file, or the Redis of ``--redis-url`` under its own key
prefix) gets ``--cards`` cards and ``--entries`` approved purchases spread over 60 days at
``--merchants`` merchants (written with the server's own commit), and 2% of the cards a
fraud report on a purchase in the last 20 days. Then the report (``admin.common_points``,
as the API runs it: the fraud reports, one read per fraud card, the journal of the period and
its lookback streamed once) runs over the last 20 days with a 40-day lookback, and separately
its pure counting (``models.common_points``) over the same entries in memory.

    .venv/bin/python benchmarks/bench_common_points.py [--entries 50000] [--cards 2000]
    .venv/bin/python benchmarks/bench_common_points.py --redis-url redis://127.0.0.1:6379/1

On Redis the data stays under its own key prefix (bench-cpp-...): use a database to flush.
"""

from __future__ import annotations

import argparse
import random
import secrets
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import trio

from authhost.admin.common_points import common_points
from authhost.cards.model import Account, CardKind, CardState, Product
from authhost.cards.production import PanFacts, new_card, new_card_id, new_pan
from authhost.models.common_points import CommonPoints
from authhost.security.pan_protection import pan_index, seal_pan
from authhost.store import open_store
from authhost.store.interface import Commit, JournalQuery
from authhost.store.records import FraudReport, JournalEntry

HASH_KEY = b"benchmark-only pan hash key 32b!"
DATA_KEY = b"B" * 32
PRODUCT = Product("bench", "bank", "Bench debit", "476173")
DAY = 86_400.0


async def seed(store, cards: int, entries: int, merchants: int, now: float) -> None:  # type: ignore[no-untyped-def]
    await store.put_product(PRODUCT)
    await store.create_account(Account("acc-0", "978", CardKind.DEBIT, balance=10**15))
    made = []
    for _ in range(cards):
        pan = new_pan(PRODUCT.bin)
        card_id = new_card_id()
        card = new_card(PRODUCT, PanFacts.of(pan, pan_index(HASH_KEY, pan)), card_id=card_id,
                        account_id="acc-0", now=now)  # fmt: skip
        card = replace(card, state=CardState.ACTIVE)
        await store.create_card(card, seal_pan(DATA_KEY, 1, pan, card_id))
        made.append(card)
    rng = random.Random(7)
    times = sorted(now - rng.uniform(0, 60 * DAY) for _ in range(entries))
    for n, ts in enumerate(times):
        card = rng.choice(made)
        merchant = f"MERCHANT{rng.randrange(merchants):07d}"
        await store.commit(Commit(JournalEntry(
            ts=ts, mti="0100", message_class="authorisation", response_code="00",
            card_id=card.card_id, pan_masked=card.masked_pan, pan_index=card.pan_index,
            account_id="acc-0", processing_code="000000", amount_minor=1000, currency="978",
            mcc="5411", country="276", channel="pos", terminal_id="TERM0001",
            merchant_id=merchant, merchant_name=f"{merchant} BERLIN DE",
            dedupe_key=f"bench|{n}|{secrets.token_hex(4)}", match_key=f"bench|{n}",
        ), card_id=card.card_id))  # fmt: skip
    recent = await store.journal(JournalQuery(since=now - 20 * DAY, limit=entries))
    frauds = {e.card_id: e for e in recent}  # one entry of each card that shopped lately
    for entry in list(frauds.values())[: max(2, cards // 50)]:
        await store.put_fraud_report(FraudReport(entry.journal_id, entry.card_id, True,
                                                 "analyst", now))  # fmt: skip


async def run(url: str, prefix: str, cards: int, entries: int, merchants: int) -> None:
    now = time.time()
    store = await open_store(url, prefix=prefix) if prefix else await open_store(url)
    try:
        started = time.perf_counter()
        await seed(store, cards, entries, merchants, now)
        print(f"seeded {entries} entries in {time.perf_counter() - started:.1f} s")
        since, until = now - 20 * DAY, now + 1
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            report = await common_points(store, since, until, lookback_days=40, min_cards=2,
                                         by="merchant", limit=20)  # fmt: skip
            best = min(best, time.perf_counter() - started)
        read = report["entries_read"]
        print(f"report: {read} entries read, {report['fraud_cards']} fraud cards, "
              f"{best:.2f} s, {best / read * 1e6:.1f} µs per entry")  # fmt: skip
        window = [e async for e in store.export_journal(JournalQuery(since=since - 40 * DAY,
                                                                     until=until))]  # fmt: skip
        first = {e.card_id: now - DAY for e in window[: report["fraud_cards"]]}
        started = time.perf_counter()
        points = CommonPoints(first, 40 * DAY, (since - 40 * DAY, until))
        points.add_all(window)
        points.ranking()
        pure = time.perf_counter() - started
        print(f"counting alone: {pure / len(window) * 1e6:.1f} µs per entry")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--cards", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=500)
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.redis_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        prefix = f"bench-cpp-{secrets.token_hex(4)}" if args.redis_url else ""
        trio.run(run, url, prefix, args.cards, args.entries, args.merchants)


if __name__ == "__main__":
    main()
