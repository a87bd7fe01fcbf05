"""A clearing presentment matched to its authorisation is journalled with the authorisation's
merchant data (the file carries no MCC, field 43, country or channel), so the journal, the
statement and the movements feed show the purchase it settles; a forced presentment (no
authorisation) has none; and a product that blocks the MCC since still posts the
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
    text = (
        "pan,approval_code,amount_minor,currency,presented_at,arn\n"
        f"{visa['pan']},{held['38']},9000,{visa['currency']},{time.time()},{matched_arn}\n"
        f"{visa['pan']},,1500,{visa['currency']},{time.time()},{forced_arn}\n"
    )
    done = await call(port, "POST", "/v1/clearing", payload={"csv": text})
    assert done.status == 200 and done.json["outcomes"] == {"matched": 1, "forced": 1}, done
    assert [r["response_code"] for r in done.json["rows"]] == ["00", "00"]
    # 90.00 and 15.00 posted, the 80.00 hold released
    assert await balances_of(switch, visa) == (ledger - 10_500, available - 2_500)

    card_id = await card_id_of(port, visa["pan"])
    journal = await call(port, "GET", f"/v1/cards/{card_id}/journal", token=AUDITOR_TOKEN)
    assert journal.status == 200, journal
    by_rrn = {e["rrn"]: e for e in journal.json["journal"] if e["mti"] == "0220"}
    matched, forced = by_rrn[matched_arn[-12:]], by_rrn[forced_arn[-12:]]
    assert _merchant(matched, MERCHANT) == MERCHANT
    assert _merchant(forced, NONE) == NONE
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

    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:  # the feed once its entries have settled
        later = CardService(store, security, clock=lambda: time.time() + 10)
        feed = (await later.money_movements(0, 1000))["movements"]
    moved = {m["rrn"]: m for m in feed if m["mti"] == "0220"}
    assert moved[matched_arn[-12:]]["mcc"] == MERCHANT["mcc"]
    assert moved[forced_arn[-12:]]["mcc"] == ""
