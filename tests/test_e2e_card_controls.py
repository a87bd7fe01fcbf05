"""A card's own controls over a running host, on both stores: what the cardholder switched
off (a channel, a merchant category, a country) is declined 57 from the next request with the
reason, the rest of the card works, and switching it back on restores it."""

from __future__ import annotations

import json

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import ecommerce, purchase, store_url  # noqa: F401 - fixture

from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def reasons_of(url: str, stan: str) -> str:
    async with opened_store(url) as store:
        entries = await store.journal(JournalQuery(limit=1000))
    (entry,) = [e for e in entries if e.stan == stan]
    return entry.reason_codes


async def test_what_the_cardholder_switched_off_is_declined(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa, card_id = at.port, at.switch, at.visa, at.card_id
    online = ecommerce(visa, visa["cvv2"])
    assert (await switch.send(online))["39"] == "00"

    off = {"blocked_channels": ["ecommerce"], "blocked_countries": ["643"],
           "blocked_mccs": ["7995"]}  # fmt: skip
    done = await call(port, "PUT", f"/v1/cards/{card_id}/controls", payload=off)
    assert done.status == 200, done
    assert done.json["controls"] == {k: sorted(v) for k, v in off.items()}
    refused = await switch.send(ecommerce(visa, visa["cvv2"]))
    assert refused["39"] == "57"
    assert "card_controls.channel_ecommerce" in await reasons_of(store_url, refused["11"])
    betting = await switch.send(purchase(visa, **{"18": "7995"}))
    assert betting["39"] == "57"
    assert "card_controls.mcc_blocked" in await reasons_of(store_url, betting["11"])
    assert (await switch.send(purchase(visa, **{"19": "643"})))["39"] == "57"
    assert (await switch.send(purchase(visa)))["39"] == "00"  # the shop at home still works

    bad = await call(port, "PUT", f"/v1/cards/{card_id}/controls",
                     payload={"blocked_channels": ["telepathy"]})  # fmt: skip
    assert bad.status == 422
    # the CLI: switch everything back on
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("cards", "controls", card_id, "--config", str(config))
    assert code == 0 and json.loads(output)["controls"] is None, output
    assert (await switch.send(ecommerce(visa, visa["cvv2"])))["39"] == "00"
    code, output = await run_cli(
        "cards", "controls", card_id, "--block-channels", "atm,moto", "--config", str(config)
    )
    assert code == 0 and json.loads(output)["controls"]["blocked_channels"] == ["atm", "moto"]
    audit = await call(port, "GET", f"/v1/audit?subject={card_id}", token=AUDITOR_TOKEN)
    assert [a["action"] for a in audit.json["audit"]].count("card.controls") == 3


async def test_a_limit_set_from_the_cli_keeps_the_cards_other_limits(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """`cards limits CARD --daily-count 10` on a card with a per-transaction limit used to
    remove that limit without a word (the command sent the whole set, the others empty): a
    card the bank had capped at 50.00 a payment then paid 60.00. The limits named are set,
    the others kept; --remove drops one; no option at all still removes them all."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    switch, visa, card_id = at.switch, at.visa, at.card_id
    config = cli_config(tmp_path, store_url)

    async def limits(*options: str) -> dict | None:
        code, output = await run_cli("cards", "limits", card_id, *options, "--config", str(config))
        assert code == 0, output
        return json.loads(output)["limits"]

    assert (await limits("--per-transaction", "5000"))["per_transaction"] == 5000
    both = await limits("--daily-count", "10")
    assert (both["per_transaction"], both["daily_count"]) == (5000, 10)
    assert (await switch.send(purchase(visa, amount=6_000)))["39"] == "61"
    one = await limits("--remove", "per-transaction")
    assert (one["per_transaction"], one["daily_count"]) == (None, 10)
    assert (await switch.send(purchase(visa, amount=6_000)))["39"] == "00"
    code, output = await run_cli("cards", "limits", card_id, "--remove", "daily",
                                 "--config", str(config))  # fmt: skip
    assert code == 1 and "not a limit" in output, output
    assert await limits() is None
