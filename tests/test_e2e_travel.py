"""Travel notices over a running host, on both stores: a rule that declines purchases abroad
unless the cardholder announced the trip lets them through once a notice covers the country
and the day, and only then; the journal records it for backtests (card.travel_notice)."""

from __future__ import annotations

import json
import time

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

ABROAD_WITHOUT_NOTICE = """
[[rule]]
name = "TRAVEL-01 abroad without notice"
expression = 'country != card.home_country and not card.travel_notice'
action = "decline"
response_code = "05"
reason = "travel.no_notice"
"""
USA, CANADA = "840", "124"


def day(offset_days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + offset_days * 86_400))


async def test_a_travel_notice_lets_the_announced_trip_through(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url, rules=ABROAD_WITHOUT_NOTICE)
    port, switch, visa, card_id = at.port, at.switch, at.visa, at.card_id
    in_usa = {"19": USA}
    assert (await switch.send(purchase(visa, **in_usa)))["39"] == "05"  # not announced
    assert (await switch.send(purchase(visa)))["39"] == "00"  # at home: no rule

    trips = {"notices": [
        {"countries": [USA], "start": day(-1), "end": day(10)},  # going on now
        {"countries": [CANADA], "start": day(20), "end": day(25)},  # later
    ]}  # fmt: skip
    done = await call(port, "PUT", f"/v1/cards/{card_id}/travel-notices", payload=trips)
    assert done.status == 200, done
    assert [n["countries"] for n in done.json["travel_notices"]] == [[USA], [CANADA]]
    approved = await switch.send(purchase(visa, **in_usa))
    assert approved["39"] == "00"
    assert (await switch.send(purchase(visa, **{"19": CANADA})))["39"] == "05"  # not yet

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(card_id=card_id, limit=100))
    noticed = {e.stan: e.travel_notice for e in entries}
    assert noticed[approved["11"]] is True
    assert sum(noticed.values()) == 1  # the home purchase and the others were not covered

    for bad in (
        {"notices": [{"countries": [USA], "start": day(5), "end": day(1)}]},  # ends first
        {"notices": [{"countries": ["US"], "start": day(0), "end": day(1)}]},  # not numeric
        {"notices": [{"countries": [USA], "start": day(0), "end": day(400)}]},  # too long
        {"notices": [{"countries": [], "start": day(0), "end": day(1)}]},
    ):
        refused = await call(port, "PUT", f"/v1/cards/{card_id}/travel-notices", payload=bad)
        assert refused.status == 422, bad
    auditor = await call(port, "PUT", f"/v1/cards/{card_id}/travel-notices",
                         payload={"notices": []}, token=AUDITOR_TOKEN)  # fmt: skip
    assert auditor.status == 403

    # the CLI adds a trip to the ones still to come, and clears them all
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli(
        "cards", "travel", card_id, "--countries", "276,250", "--start", day(30), "--end",
        day(31), "--config", str(config),
    )  # fmt: skip
    assert code == 0, output
    assert len(json.loads(output)["travel_notices"]) == 3
    code, output = await run_cli("cards", "travel", card_id, "--clear", "--config", str(config))
    assert code == 0 and json.loads(output)["travel_notices"] == [], output
    assert (await switch.send(purchase(visa, **in_usa)))["39"] == "05"  # the trip is off
    audit = await call(port, "GET", f"/v1/audit?subject={card_id}", token=AUDITOR_TOKEN)
    assert [a["action"] for a in audit.json["audit"]].count("card.travel_notices") == 3
