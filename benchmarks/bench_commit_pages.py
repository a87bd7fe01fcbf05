"""Pages an authorisation commit writes to SQLite's WAL, alone and in a group commit.

A WAL frame is one page written (two write calls, a checksum and a WAL-index entry); a commit
writes every page it changed once, however many authorisations changed it. This counts the
frames per authorisation of commits of 1, 4 and 12 holds (``commit_many``, as a read of
requests or a group commit writes them) on a store seeded like ``bench_store.py``'s, and
names the B-tree each page belongs to (SQLite's ``dbstat``, when compiled in).

    .venv/bin/python benchmarks/bench_commit_pages.py
    .venv/bin/python benchmarks/bench_commit_pages.py --commits 600
"""

from __future__ import annotations

import argparse
import collections
import os
import sqlite3
import struct
import tempfile
import time
from pathlib import Path

import trio
from bench_store import authorisation, seed

from authhost.store import open_store

WAL_HEADER, FRAME_HEADER = 32, 24


def frame_pages(wal: Path, start: int, page_size: int) -> list[int]:
    """The page number of every frame appended to ``wal`` after byte ``start``."""
    data = wal.read_bytes()[start:]
    step = FRAME_HEADER + page_size
    return [struct.unpack(">I", data[o : o + 4])[0] for o in range(0, len(data) - step + 1, step)]


def owners(db: Path) -> dict[int, str]:
    try:
        with sqlite3.connect(db) as conn:
            return dict(conn.execute("SELECT pageno, name FROM dbstat"))
    except sqlite3.OperationalError as error:  # dbstat not compiled in
        print(f"(no page owners: {error})")
        return {}


async def main(commits: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="authhost-pages-"))
    db = work / "cards.db"
    wal = work / "cards.db-wal"
    store = await open_store(f"sqlite:///{db}")
    pin: sqlite3.Connection | None = None
    try:
        cards = await seed(store)
        counter = iter(range(10**12))
        one = authorisation(store, cards, counter)
        for _ in range(200):  # past the first pages of every tree
            await one()
        page_size = 4096
        with sqlite3.connect(db) as conn:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"{'batch':>5} {'frames/auth':>12} {'µs CPU/auth':>12}  pages of one batch")
        # a reader kept in the WAL's past: the WAL cannot restart from its beginning while it
        # reads, so every frame written is appended and counted
        pin = sqlite3.connect(db, isolation_level=None)
        for batch in (1, 4, 12):
            pin.execute("BEGIN")
            pin.execute("SELECT count(*) FROM products").fetchone()
            start = max(wal.stat().st_size, WAL_HEADER)
            began = time.thread_time()
            for _ in range(commits // batch):
                async with trio.open_nursery() as nursery:  # ready together: one transaction
                    for _ in range(batch):
                        nursery.start_soon(one)
            cpu = (time.thread_time() - began) / (commits // batch * batch) * 1e6
            pages = frame_pages(wal, start, page_size)
            pin.execute("COMMIT")
            per_auth = len(pages) / (commits // batch * batch)
            last = pages[-max(1, round(per_auth * batch)) :]
            names = owners(db)  # now: the trees have grown since the seed
            named = collections.Counter(names.get(p, "?") for p in last)
            shown = ", ".join(f"{name} {n}" for name, n in named.most_common())
            print(f"{batch:>5} {per_auth:>12.2f} {cpu:>12.0f}  {shown}")
    finally:
        if pin is not None:
            pin.close()
        await store.close()
        for leftover in work.iterdir():
            os.remove(leftover)
        work.rmdir()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=480, help="authorisations per batch size")
    trio.run(main, parser.parse_args().commits)
