"""Card testing caught at the merchant, over TCP on both stores: unknown card numbers and a
failed CVV2 at one web shop make a merchant rule decline the next card tried there, while the
same card still buys elsewhere."""

from __future__ import annotations

import urllib.request

import trio
from conftest import free_port
from iso_client import Switch
from test_e2e_auth import ecommerce, luhn_fix, start_host, store_url  # noqa: F401 - fixture

import authhost.runtime
from authhost.admin.service import CardService
from authhost.security.module import SecurityModule
from authhost.store import opened_store, redis_acceptors, sqlite_acceptors
from authhost.store.interface import JournalQuery

TESTING_RULES = """
[[rule]]
name = "merchant-card-testing"
expression = "merchant.distinct_cards_10m >= 3 and merchant.failed_cvv_10m + merchant.unknown_card_count_10m >= 2"
action = "decline"
reason = "FR-MCT"
"""
SHOP = "TESTSHOP0000001"
SHOP_NAME = "GADGETS ONLINE".ljust(23) + "TALLINN".ljust(13) + "  EE"  # field 43: 40 characters


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


async def test_many_cards_failing_at_one_merchant_decline_the_next(nursery, tmp_path, store_url):  # noqa: F811
    metrics_port = free_port()
    host = await start_host(
        nursery, tmp_path, store_url, rules=TESTING_RULES, metrics_port=metrics_port
    )
    switch = await Switch.connect(host.port)
    visa, credit = host.cards["active-visa"], host.cards["active-credit"]
    at_shop = {"42": SHOP, "41": "WEB00001", "43": SHOP_NAME}

    def unknown(n: int) -> dict:
        return {**visa, "pan": luhn_fix(f"4761739{n:08d}")}

    answers = []
    for n in (1, 2):  # numbers the issuer never issued: 14, and counted at the shop
        answers.append((await switch.send(ecommerce(unknown(n), "123", **at_shop)))["39"])
    # two cards seen at the shop so far (both unknown): the rule needs three
    answers.append((await switch.send(ecommerce(visa, visa["cvv2"], **at_shop)))["39"])
    # the third card at the shop after two unknown numbers: declined by the merchant rule
    blocked = await switch.send(ecommerce(credit, credit["cvv2"], **at_shop))
    answers.append(blocked["39"])
    # the same card at another merchant: nothing there
    elsewhere = await switch.send(ecommerce(credit, credit["cvv2"], **{"42": "OTHERSHOP000001"}))
    answers.append(elsewhere["39"])
    assert answers == ["14", "14", "00", "59", "00"]
    # what the process's counters hold: the four requests at the shop (and its terminal) that
    # the last snapshot read; the last request is counted by the next one
    scraped = await trio.to_thread.run_sync(metrics_text, metrics_port)
    assert "authhost_acceptor_counters_following 1.0" in scraped
    assert "authhost_acceptor_counters_events 4.0" in scraped
    assert "authhost_acceptor_counters_acceptors 2.0" in scraped
    assert "authhost_journal_pending_dropped_total 0.0" in scraped  # the runtime publishes it

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
        # the analyst's view of where cards fail now: the shop first
        service = CardService(store, SecurityModule.open(host.config.security, demo=True))
        busiest = await service.busiest_acceptors(by="unknown_card_count_10m")
        shop = busiest["acceptors"][0]
        assert (shop["merchant_id"], shop["terminal_id"]) == (SHOP, "")
        assert shop["merchant_name"] == SHOP_NAME.rstrip()
        assert (shop["unknown_card_count_10m"], shop["distinct_cards_10m"]) == (2, 4)
        assert (shop["count_10m"], shop["declined_count_10m"]) == (4, 3)
    at_shop_codes = sorted(e.response_code for e in entries if e.merchant_id == SHOP)
    assert at_shop_codes == ["00", "14", "14", "59"]
    [declined] = [e for e in entries if e.response_code == "59"]
    assert "FR-MCT" in declined.reason_codes.split(";")
    assert declined.rule_matches == "merchant-card-testing"
    assert declined.pan_masked.endswith(credit["pan"][-4:])


async def test_a_merchant_rule_loaded_later_starts_the_counters(nursery, tmp_path, store_url):  # noqa: F811
    """While no rule reads the counters the server neither keeps nor (on Redis) records them.
    A rule file that starts reading them makes it read the last hour: on SQLite that is the
    journal, so the card testing before the change counts; on Redis it is the stream, which
    holds only what was appended while some process followed it, so counting starts then."""
    host = await start_host(nursery, tmp_path, store_url, rules=NO_RULES, watch_rules=True)
    switch = await Switch.connect(host.port)
    visa, credit = host.cards["active-visa"], host.cards["active-credit"]
    at_shop = {"42": SHOP, "41": "WEB00001"}

    async def unknown_numbers(first: int) -> None:
        for n in range(first, first + 3):
            unknown = {**visa, "pan": luhn_fix(f"4761739{n:08d}")}
            assert (await switch.send(ecommerce(unknown, "123", **at_shop)))["39"] == "14"

    async def buy(card: dict, **where: str) -> str:
        return (await switch.send(ecommerce(card, card["cvv2"], **where)))["39"]

    await unknown_numbers(1)
    assert await buy(visa, **at_shop) == "00"

    (tmp_path / "rules.toml").write_text(UNKNOWN_NUMBERS_RULES)
    with trio.fail_after(15):  # the file is polled each second
        while await buy(visa, **{"42": "PROBESHOP000001", "4": "000000000007"}) != "05":
            await trio.sleep(0.2)
    # the new rules are in force, and the first batch that asked started the counters
    codes = []
    with trio.fail_after(15):  # SQLite reads the hour on a thread of its own
        while not codes or codes[-1] == "00":
            await trio.sleep(0.1)
            codes.append(await buy(credit, **at_shop))
            if store_url.startswith("redis") and len(codes) == 3:
                await unknown_numbers(11)  # counted from now on
    assert codes[-1] == "59"  # on SQLite from the three numbers sent before the change alone
    if store_url.startswith("redis"):
        assert len(codes) >= 4  # the earlier numbers were not recorded
    assert await buy(credit, **{"42": "OTHERSHOP000001"}) == "00"


NO_RULES = """
[[rule]]
name = "big-ticket"
expression = "amount > 5000.00"
action = "review"
"""
UNKNOWN_NUMBERS_RULES = """
[[rule]]
name = "unknown-numbers-at-a-merchant"
expression = "merchant.unknown_card_count_1h >= 3"
action = "decline"
reason = "FR-UNK"

[[rule]]
name = "probe"
expression = "merchant == 'PROBESHOP000001' and amount_minor == 7"
action = "decline"
response_code = "05"
"""


async def test_the_counters_stay_current_through_a_quiet_spell(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
    monkeypatch,
):
    """While a rule reads them the server brings the counters up to date without traffic, so
    after a quiet spell longer than their staleness they are still followed, and the first
    request of a card-testing run is decided on them (not on an hour being read afresh)."""
    monkeypatch.setattr(authhost.runtime, "ACCEPTOR_FOLLOW_S", 0.1)
    for module in (sqlite_acceptors, redis_acceptors):
        monkeypatch.setattr(module, "ACCEPTOR_STALE_S", 1.0)
    metrics_port = free_port()
    host = await start_host(
        nursery, tmp_path, store_url, rules=UNKNOWN_NUMBERS_RULES, metrics_port=metrics_port
    )
    switch = await Switch.connect(host.port)
    visa, credit = host.cards["active-visa"], host.cards["active-credit"]
    at_shop = {"42": SHOP, "41": "WEB00001"}
    for n in (1, 2, 3):
        unknown = {**visa, "pan": luhn_fix(f"4761739{n:08d}")}
        assert (await switch.send(ecommerce(unknown, "123", **at_shop)))["39"] == "14"
    await trio.sleep(2.5)  # quiet for more than twice the staleness
    scraped = await trio.to_thread.run_sync(metrics_text, metrics_port)
    assert "authhost_acceptor_counters_following 1.0" in scraped
    assert (await switch.send(ecommerce(credit, credit["cvv2"], **at_shop)))["39"] == "59"
