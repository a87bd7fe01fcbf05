"""A clearing presentment matched to its authorisation is journalled with the authorisation's
merchant data, so the journal, the statement and the movements feed show the purchase it
settles; a forced presentment (no authorisation) and a refund have the file's own ``mcc``,
``merchant_name`` and ``merchant_country`` when it has them, none otherwise; and a product that blocks the MCC since still posts the
presentment (an advice runs no controls). Over a running host, on both stores."""

from __future__ import annotations

import time
from collections.abc import Iterable

from host_admin import card_id_of, start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import balances_of, ecommerce, luhn_fix, store_url  # noqa: F401 - fixture

from authhost.admin.demo import PRODUCTS
from authhost.admin.service import CardService
from authhost.security.module import SecurityModule
from authhost.store import opened_store

SHOP = "SHOP00000000042"
SHOP_NAME = "GADGETS ONLINE".ljust(23) + "TALLINN".ljust(13) + "  EE"  # field 43: 40 characters
MERCHANT = {"mcc": "5732", "merchant_name": SHOP_NAME.rstrip(), "country": "233",
            "channel": "ecommerce", "merchant_id": SHOP, "terminal_id": "WEB00042"}  # fmt: skip
NONE = {"mcc": "", "merchant_name": "", "country": ""}
# a clearing record's own merchant columns: a forced row's and a refund's merchant data
FILED = {"mcc": "5812", "merchant_name": "CAFE NORD".ljust(23) + "RIGA".ljust(13) + "  LV",
         "country": "428"}  # fmt: skip


def _merchant(entry: dict[str, object], names: Iterable[str]) -> dict[str, object]:
    return {name: entry[name] for name in names}


async def test_a_presentment_carries_its_authorisations_merchant(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    visa = host.cards["active-visa"]
    since = int(time.time()) - 1
    at_shop = {"18": MERCHANT["mcc"], "19": MERCHANT["country"], "41": MERCHANT["terminal_id"],
               "42": SHOP, "43": SHOP_NAME}  # fmt: skip
    held = await switch.send(ecommerce(visa, visa["cvv2"], **{"4": f"{8_000:012d}", **at_shop}))
    assert held["39"] == "00", held
    # the product blocks the shop's MCC after the authorisation: the presentment still posts
    [product_id] = [p.product_id for p in PRODUCTS if visa["pan"].startswith(p.bin)]
    blocked = await call(
        port, "PATCH", f"/v1/products/{product_id}", payload={"blocked_mccs": [MERCHANT["mcc"]]}
    )
    assert blocked.status == 200, blocked
    assert (await switch.send(ecommerce(visa, visa["cvv2"], **at_shop)))["39"] == "57"
    ledger, available = await balances_of(switch, visa)

    matched_arn, forced_arn = luhn_fix("7" * 22), luhn_fix("8" * 22)
    filed_arn, refund_arn = luhn_fix("6" * 22), luhn_fix("5" * 22)
    filed = f"{FILED['mcc']},{FILED['merchant_name']},{FILED['country']}"
    text = (
        "pan,approval_code,amount_minor,currency,presented_at,arn,type,mcc,merchant_name,"
        "merchant_country\n"
        f"{visa['pan']},{held['38']},9000,{visa['currency']},{time.time()},{matched_arn},,"
        f"{filed}\n"  # the authorisation's merchant, not the file's
        f"{visa['pan']},,1500,{visa['currency']},{time.time()},{forced_arn},,,,\n"
        f"{visa['pan']},,700,{visa['currency']},{time.time()},{filed_arn},,{filed}\n"
        f"{visa['pan']},,300,{visa['currency']},{time.time()},{refund_arn},refund,{filed}\n"
    )
    done = await call(port, "POST", "/v1/clearing", payload={"csv": text})
    assert done.status == 200, done
    assert done.json["outcomes"] == {"matched": 1, "forced": 2, "refund": 1}, done
    assert [r["response_code"] for r in done.json["rows"]] == ["00"] * 4
    # 90.00, 15.00 and 7.00 posted, 3.00 refunded, the 80.00 hold released
    assert await balances_of(switch, visa) == (ledger - 10_900, available - 2_900)

    card_id = await card_id_of(port, visa["pan"])
    journal = await call(port, "GET", f"/v1/cards/{card_id}/journal", token=AUDITOR_TOKEN)
    assert journal.status == 200, journal
    by_rrn = {e["rrn"]: e for e in journal.json["journal"] if e["mti"] == "0220"}
    matched, forced = by_rrn[matched_arn[-12:]], by_rrn[forced_arn[-12:]]
    assert _merchant(matched, MERCHANT) == MERCHANT
    assert _merchant(forced, NONE) == NONE
    # before 2026-11-29 a forced row's and a refund's 0220 had no MCC, name or country
    with_file = {**FILED, "merchant_name": FILED["merchant_name"].rstrip()}
    filed_entry, refund = by_rrn[filed_arn[-12:]], by_rrn[refund_arn[-12:]]
    assert _merchant(filed_entry, with_file) == with_file
    assert _merchant(refund, with_file) == with_file
    assert (filed_entry["movement"], refund["movement"]) == ("post", "credit")
    assert (matched["movement"], forced["movement"]) == ("post", "post")

    statement = await call(
        port, "GET",
        f"/v1/accounts/{visa['account']}/statement?since={since}&until={int(time.time()) + 1}",
        token=AUDITOR_TOKEN,
    )  # fmt: skip
    assert statement.status == 200, statement
    lines = {ln["journal_id"]: ln for ln in statement.json["lines"]}
    shown = ("mcc", "merchant_name", "merchant_id")
    assert _merchant(lines[matched["journal_id"]], shown) == _merchant(MERCHANT, shown)
    assert _merchant(lines[forced["journal_id"]], ("mcc", "merchant_name")) == {
        "mcc": "",
        "merchant_name": "",
    }
    for entry in (filed_entry, refund):
        assert _merchant(lines[entry["journal_id"]], ("mcc", "merchant_name")) == _merchant(
            with_file, ("mcc", "merchant_name")
        )

    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:  # the feed once its entries have settled
        later = CardService(store, security, clock=lambda: time.time() + 10)
        feed = (await later.money_movements(0, 1000))["movements"]
    moved = {m["rrn"]: m for m in feed if m["mti"] == "0220"}
    assert moved[matched_arn[-12:]]["mcc"] == MERCHANT["mcc"]
    assert moved[forced_arn[-12:]]["mcc"] == ""
    assert moved[filed_arn[-12:]]["mcc"] == moved[refund_arn[-12:]]["mcc"] == FILED["mcc"]
