#!/usr/bin/env python3
"""Issue many active test cards on a demo installation and write them as a demo card file.

The demo data has four usable cards; a benchmark that sends thousands of authorisations a
second to four cards measures hot-row contention and ever-growing velocity histories, not an
issuer's normal load (a real card makes a few transactions a day). This issues ``--cards``
cards on a benchmark product without spending limits, spread over accounts with ample funds,
sets their PINs the way production does (an ISO 9564 format 0 block under the test zone PIN
key), activates them, and writes the same file format as ``authhost demo --export`` so that
``authhost-sim bench --mix auth --cards FILE`` can use them. Idempotent: run it again and it
issues nothing twice. Demo installations only (the security module must run on test keys).

    cd WORKDIR && authhost demo && python benchmarks/bench_cards.py --cards 200 --out cards.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import trio

from authhost.admin import requests as rq
from authhost.admin.demo import demo_export, is_demo_installation
from authhost.cards.model import CardKind
from authhost.cards.track2 import build_track2
from authhost.config import load_config
from authhost.security.pinblock import PinBlockFormat, encrypt_pin_block

try:
    from authhost.cli.admin_support import open_card_service
except ImportError:  # a revision before the commands were split (same_time.py --base REV)
    from authhost.cli.admin_commands import open_card_service  # type: ignore[no-redef]

PRODUCT = rq.NewProduct(
    product_id="bench-debit",
    issuer_id="demo",
    name="Benchmark debit (test BIN, no limits)",
    bin="54133399",
    kind=CardKind.DEBIT,
    currency="978",
    home_country="276",
)
CARDS_PER_ACCOUNT = 10
FUNDS = 10**11  # 1 000 000 000.00: never the reason for a decline in a benchmark


async def issue(config_file: Path | None, count: int) -> dict:
    config = load_config(config_file).replace("security", demo=True)
    async with open_card_service(config, "bench") as service:
        if not is_demo_installation(service):
            raise SystemExit("bench_cards: not a demo installation (security.demo is false)")
        keys = (await demo_export(service))["keys"]
        zpk = bytes.fromhex(keys["zpk"])
        await service.create_product(PRODUCT, idempotency_key="bench:product")
        cards = []
        for i in range(count):
            account_id = f"bench-acc-{i // CARDS_PER_ACCOUNT}"
            if i % CARDS_PER_ACCOUNT == 0:
                await service.create_account(
                    rq.NewAccount(account_id=account_id, balance=FUNDS),
                    idempotency_key=f"bench:{account_id}",
                )
            issued = await service.issue_card(
                rq.IssueCard(product_id=PRODUCT.product_id, account_id=account_id),
                idempotency_key=f"bench:card:{i}",
            )
            card_id = issued["card_id"]
            card = await service.get_card(card_id)
            pan = service.security.decrypt_pan(await service.store.pan_ciphertext(card_id), card_id)
            pin = f"{(i * 7919) % 10_000:04d}"
            if card["state"] == "created" and not card["pin_set"]:
                block = encrypt_pin_block(zpk, pin, pan, PinBlockFormat.ISO0)
                await service.set_pin(card_id, rq.PinChange(pin_block=block.hex().upper()))
            for action, before in (("ship", "created"), ("activate", "issued")):
                if (await service.get_card(card_id))["state"] == before:
                    await service.apply(card_id, action, reason="benchmark card")
            card = await service.get_card(card_id)
            values = service.security.card_values(pan, card["expiry"], card["service_code"], "cvk")
            cards.append(
                {
                    "pan": pan,
                    "expiry": card["expiry"],
                    "service_code": card["service_code"],
                    "cvv2": values.cvv2,
                    "track2": build_track2(pan, card["expiry"], card["service_code"], values.icvv),
                    "pin": pin,
                    "state": card["state"],
                    "account": account_id,
                    "currency": "978",
                    "available": FUNDS,
                }
            )
        return {"test_only": True, "keys": keys, "cards": cards}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args(argv)
    doc = trio.run(issue, args.config, args.cards)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(doc, file, indent=1)
    print(f"wrote {len(doc['cards'])} benchmark cards to {args.out} (test use only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
