"""The card acceptor's name and location (field 43) over TCP on both stores: journalled as
sent, and searched by a rule with contains(), so an analyst can decline by what a merchant is
called as well as by its category code."""

from __future__ import annotations

from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

BETTING_RULES = """
[[rule]]
name = "betting-by-name"
expression = "contains(merchant_name, ('BET', 'CASINO')) and amount > 100.00"
action = "decline"
response_code = "05"
reason = "merchant.betting_name"
"""
# field 43 is 40 characters: name 23, city 13, region 2 (blank here), country 2
BOOKMAKER = "ACME BET LTD".ljust(23) + "VALLETTA".ljust(13) + "  MT"
GROCER = "CORNER GROCERY".ljust(23) + "BERLIN".ljust(13) + "  DE"


async def test_a_rule_declines_by_the_merchants_name(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url, rules=BETTING_RULES)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]
    sent = [
        (BOOKMAKER, 20_000, "05"),
        (BOOKMAKER, 5_000, "00"),  # under the rule's amount
        (GROCER, 20_000, "00"),
        (None, 20_000, "00"),  # no field 43: nothing to search
    ]
    for name, amount, code in sent:
        answer = await switch.send(purchase(card, amount=amount, **{"43": name}))
        assert answer["39"] == code, (name, amount, answer["39"])
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    ours = [e for e in entries if e.amount_minor in (20_000, 5_000)]
    assert [(e.merchant_name, e.response_code) for e in ours] == [
        ((name or "").rstrip(), code) for name, _, code in sent
    ]
    assert ours[0].reason_codes.split(";")[0] == "merchant.betting_name"
