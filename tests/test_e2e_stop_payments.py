"""Stop payments over a running host, on both stores: the cardholder cancelled a
subscription that keeps charging; the merchant's merchant-initiated charges are declined R1
(every merchant's: R3) through the stop's last day, while the cardholder's own purchases at
the same merchant, and other merchants' charges, go through; withdrawn, they pass again."""

from __future__ import annotations

import time

from host_admin import cli_config, run_cli, visa_at_host
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import store_url  # noqa: F401 - fixture
from test_e2e_renewal import card_on_file

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

STREAMING = "MERCHANT0000001"  # what test_e2e_auth.purchase sends in field 42


async def test_a_stopped_merchant_cannot_charge_the_card_on_file(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, card, card_id = at.port, at.switch, at.visa, at.card_id

    def subscription(merchant: str = STREAMING, indicator: str | None = "M103") -> dict:
        return {**card_on_file(card, card["expiry"], indicator), "42": merchant}

    async def code(fields: dict) -> str:
        return (await switch.send(fields))["39"]

    assert await code(subscription()) == "00"
    stop = {"stops": [{"merchant_id": STREAMING, "until": ""}]}
    set_ = await call(port, "PUT", f"/v1/cards/{card_id}/stop-payments", payload=stop)
    assert set_.status == 200 and set_.json["stop_payments"] == stop["stops"]
    stopped = subscription()
    assert await code(stopped) == "R1"
    assert await code(subscription(indicator="C101")) == "00"  # the cardholder buys there
    assert await code(subscription(indicator=None)) == "00"  # a request that does not say
    assert await code(subscription(merchant="OTHERSHOP000001")) == "00"

    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400))
    config = cli_config(tmp_path, store_url)
    code_, output = await run_cli("cards", "stop-payments", card_id, "--all-merchants",
                                  "--withdraw", STREAMING, "--config", str(config))  # fmt: skip
    assert code_ == 0, output
    everyone = subscription(merchant="OTHERSHOP000001")
    assert await code(everyone) == "R3"
    code_, output = await run_cli("cards", "stop-payments", card_id, "--withdraw", "*",
                                  "--merchant", STREAMING, "--until", yesterday,
                                  "--config", str(config))  # fmt: skip
    assert code_ == 0, output
    assert await code(subscription()) == "00"  # a stop over since yesterday: no longer
    assert await code(subscription(merchant="OTHERSHOP000001")) == "00"

    # a merchant named again is changed: its stop until withdrawn used to stay in force beside
    # the new --until (two stops of one merchant), so the stop never ended
    for until in ("", yesterday):
        code_, output = await run_cli("cards", "stop-payments", card_id, "--merchant", STREAMING,
                                      "--until", until, "--config", str(config))  # fmt: skip
        assert code_ == 0, output
    stops = (await call(port, "GET", f"/v1/cards/{card_id}")).json["stop_payments"]
    assert stops == [{"merchant_id": STREAMING, "until": yesterday}]
    assert await code(subscription()) == "00"

    async with opened_store(store_url) as store:
        entries = {e.stan: e for e in await store.journal(JournalQuery(card_id=card_id))}
    assert "stop_payment.merchant" in entries[stopped["11"]].reason_codes
    assert "stop_payment.all_merchants" in entries[everyone["11"]].reason_codes
    bad = await call(port, "PUT", f"/v1/cards/{card_id}/stop-payments",
                     payload={"stops": [{"merchant_id": " x", "until": "tomorrow"}]})  # fmt: skip
    assert bad.status == 422 and "Traceback" not in str(bad.json)


async def test_declines_tell_the_merchant_whether_to_try_again(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """On a listener with merchant_advice, a decline carries Mastercard's merchant advice
    code (field 48 SE 84): 03 do not try again (a lost card), 02 later (no funds), 21 the
    cardholder cancelled (a stop payment); an approval carries none."""
    from test_e2e_auth import purchase, start_host

    from authhost.iso.subfields import parse_additional_data

    host = await start_host(nursery, tmp_path, store_url, merchant_advice=True)
    switch = await Switch.connect(host.port)
    visa, low = host.cards["active-visa"], host.cards["active-visa-low"]

    async def advice(fields: dict) -> tuple[str, str | None]:
        reply = await switch.send(fields)
        return reply["39"], parse_additional_data(reply.get("48", "")).get("84")

    assert await advice(purchase(visa)) == ("00", None)
    assert await advice(purchase(host.cards["lost"])) == ("41", "03")
    assert await advice(purchase(low, amount=9_000)) == ("51", "02")  # 50.00 on its account
    assert await advice(purchase(host.cards["suspended"])) == ("62", "02")  # may work again
    assert await advice(purchase(host.cards["closed"])) == ("62", "03")
