"""A period's totals over a running host, on both stores: every hold, post, refund and
reversal the switch and the clearing file caused is counted once, in the account's currency
and per acquirer, and declines by response code (``authhost journal totals`` and
GET /v1/journal/totals)."""

from __future__ import annotations

import datetime as dt
import json
import time

from conftest import free_port
from host_admin import cli_config, run_cli, visa_at_host
from iso_client import Switch, next_stan
from test_admin_support import AUDITOR_TOKEN, OPERATOR_TOKEN, call
from test_e2e_auth import (  # noqa: F401 - store_url is a fixture
    balances_of,
    field_90,
    purchase,
    start_host,
    store_url,
)
from test_e2e_clearing import write_clearing

from authhost.config import AdminConfig
from authhost.store import opened_store
from authhost.store.interface import JournalQuery


async def test_totals_add_up_what_the_host_moved(nursery, tmp_path, store_url):  # noqa: F811
    at = await visa_at_host(nursery, tmp_path, store_url)
    host, port, switch, visa = at.host, at.port, at.switch, at.visa
    since = time.time() - 1

    held = await switch.send(purchase(visa, amount=10_000))  # 100.00 held, presented below
    assert (await switch.send(purchase(visa, amount=2_000, t="0200")))["39"] == "00"
    elsewhere = purchase(visa, amount=700, t="0200", **{"32": "654321"})  # another acquirer
    assert (await switch.send(elsewhere))["39"] == "00"
    refund = purchase(visa, amount=500, t="0200", **{"3": "200000"})
    assert (await switch.send(refund))["39"] == "00"
    undone = purchase(visa, amount=3_000)
    assert (await switch.send(undone))["39"] == "00"
    reversal = {**undone, "t": "0400", "11": next_stan(), "90": field_90(undone)}
    assert (await switch.send(reversal))["39"] == "00"
    assert (await switch.send(purchase(host.cards["lost"], amount=400)))["39"] == "41"
    assert held["39"] == "00"

    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    file = write_clearing(
        tmp_path / "clearing.csv",
        [{"pan": visa["pan"], "approval_code": held["38"], "amount_minor": 12_000,
          "currency": visa["currency"], "presented_at": when, "arn": "70000000000000000000011"}],
    )  # fmt: skip
    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("clearing", "import", str(file), "--config", str(config))
    assert code == 0 and json.loads(output)["outcomes"] == {"matched": 1}, output
    until = time.time() + 1

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(since=since, limit=100))
    moved = [(e.mti, e.movement, e.hold_amount) for e in entries]
    assert moved == [
        ("0100", "hold", 10_000), ("0200", "post", 2_000), ("0200", "post", 700),
        ("0200", "credit", 500), ("0100", "hold", 3_000), ("0400", "release", -3_000),
        ("0100", "", 0), ("0220", "post", 12_000),
    ]  # fmt: skip

    code, output = await run_cli(
        "journal", "totals", "--since", str(since), "--until", str(until), "--config", str(config)
    )
    assert code == 0, output
    totals = json.loads(output)
    assert totals["entries"] == 8
    assert totals["by_message_class"] == {
        "authorisation": {"approved": 2, "declined": 1},
        "financial": {"approved": 3, "declined": 0},
        "financial_advice": {"approved": 1, "declined": 0},  # the presentment's 0220
        "reversal": {"approved": 1, "declined": 0},
    }
    [euros] = totals["currencies"]
    assert euros["currency"] == visa["currency"]
    assert euros["authorised"] == {"count": 2, "amount_minor": 13_000}
    assert euros["posted"] == {"count": 3, "amount_minor": 2_000 + 700 + 12_000}
    assert euros["credited"] == {"count": 1, "amount_minor": 500}
    assert euros["released"] == {"count": 1, "amount_minor": 3_000}
    assert euros["net_posted_minor"] == 14_700 - 500
    assert (euros["approved"], euros["declined_by_code"]) == (7, {"41": 1})
    by_acquirer = {a["acquirer_id"]: a for a in euros["acquirers"]}
    assert by_acquirer["654321"]["posted"] == {"count": 1, "amount_minor": 700}
    assert sum(a["posted"]["amount_minor"] for a in euros["acquirers"]) == 14_700

    # the account's statement: the same movements, line by line, and the account now
    account = visa["account"]
    statement = await call(
        port, "GET", f"/v1/accounts/{account}/statement?since={since}&until={until}",
        token=AUDITOR_TOKEN,
    )  # fmt: skip
    assert statement.status == 200, statement
    lines = statement.json["lines"]
    # the account was opened (with its demo load) in the period too: the bank's booking
    card_lines = [ln for ln in lines if ln["journal_id"] is not None]
    assert [ln["movement"] for ln in lines if ln["journal_id"] is None] == ["opened"]
    assert [(ln["mti"], ln["movement"], ln["amount_minor"]) for ln in card_lines] == [
        (e.mti, e.movement, abs(e.hold_amount)) for e in entries if e.hold_amount
    ]
    assert statement.json["opening_balance_minor"] == 0  # before it was opened
    assert statement.json["closing_balance_minor"] == sum(ln["balance_delta_minor"] for ln in lines)
    assert {ln["approval_code"] for ln in card_lines if ln["mti"] == "0100"} >= {held["38"]}
    assert all(
        ln["pan"].endswith(visa["pan"][-4:]) and visa["pan"] not in str(ln) for ln in card_lines
    )
    for movement in ("authorised", "posted", "credited", "released"):
        assert statement.json[movement] == euros[movement], movement
    now = await call(port, "GET", f"/v1/accounts/{account}", token=AUDITOR_TOKEN)
    assert statement.json["account"] == now.json
    code, output = await run_cli(
        "accounts", "statement", account, "--since", str(since), "--until", str(until),
        "--config", str(config),
    )  # fmt: skip
    assert code == 0 and json.loads(output)["lines"] == lines, output
    missing = await call(port, "GET", f"/v1/accounts/nope/statement?since={since}&until={until}")
    assert missing.status == 404

    # a switch asks about a transaction by its RRN: what was answered
    asked = await call(port, "GET", f"/v1/journal?rrn={held['37']}&since={since}&until={until}",
                       token=AUDITOR_TOKEN)  # fmt: skip
    assert asked.status == 200, asked
    found = asked.json["journal"]
    assert (found[0]["mti"], found[0]["stan"], found[0]["approval_code"]) == (
        "0100", held["11"], held["38"]
    )  # fmt: skip
    # every entry carries it (the clearing 0220 too when this test's ARN ends as the RRN does)
    assert {e["rrn"] for e in found} == {held["37"]} and len(found) <= 2
    code, output = await run_cli(
        "journal", "find", "--rrn", held["37"], "--since", str(since), "--until", str(until),
        "--config", str(config),
    )  # fmt: skip
    assert code == 0 and json.loads(output) == asked.json["journal"], output
    nothing = await call(port, "GET", f"/v1/journal?rrn=999999999999&since={since}&until={until}")
    assert nothing.status == 200 and nothing.json["journal"] == []
    assert (await call(port, "GET", "/v1/journal?rrn=&day=2026-11-27")).status == 422

    # the admin API answers the same, and refuses what is not a period
    query = f"since={since}&until={until}"
    over_http = await call(port, "GET", f"/v1/journal/totals?{query}", token=AUDITOR_TOKEN)
    assert over_http.status == 200 and over_http.json == totals
    today = dt.datetime.now(dt.UTC).date().isoformat()
    day = await call(port, "GET", f"/v1/journal/totals?day={today}")
    assert day.status == 200 and day.json["since"] == f"{today}T00:00:00Z"
    for bad in ("day=2026-13-01", "since=abc&until=1", "since=5&until=4", f"day={today}&since=1"):
        refused = await call(port, "GET", f"/v1/journal/totals?{bad}")
        assert 400 <= refused.status < 500 and refused.json["error"], bad
    # nothing in a period before the host ran
    code, output = await run_cli(
        "journal", "totals", "--day", "2001-01-01", "--config", str(config)
    )
    assert code == 0 and json.loads(output)["entries"] == 0 and not json.loads(output)["currencies"]
    code, output = await run_cli(
        "journal", "totals", "--day", "01/01/2001", "--config", str(config)
    )
    assert code == 1 and "not a date" in output


async def test_a_purchase_reversed_after_it_posted_is_not_owed(nursery, tmp_path, store_url):  # noqa: F811
    """A 0200 reversed in full and one reversed in part: the money came back to the account,
    so the totals and the statement owe the acquirer only what still stands (a released hold
    was never owed), and net posted equals what the account's balance lost."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    since = time.time() - 1
    ledger_before, _ = await balances_of(switch, visa)
    whole = purchase(visa, amount=2_000, t="0200")
    part = purchase(visa, amount=1_000, t="0200")
    held = purchase(visa, amount=3_000)
    for sent in (whole, part, held):
        assert (await switch.send(sent))["39"] == "00"
    undo = [{**whole, "t": "0400", "11": next_stan(), "90": field_90(whole)},
            {**part, "t": "0400", "11": next_stan(), "90": field_90(part),
             "95": f"{600:012d}" + "0" * 30},  # fmt: skip
            {**held, "t": "0400", "11": next_stan(), "90": field_90(held)}]  # fmt: skip
    for sent in undo:
        assert (await switch.send(sent))["39"] == "00"
    until = time.time() + 1

    query = f"since={since}&until={until}"
    totals = await call(port, "GET", f"/v1/journal/totals?{query}", token=AUDITOR_TOKEN)
    [euros] = totals.json["currencies"]
    assert euros["posted"] == {"count": 2, "amount_minor": 3_000}
    assert euros["released"] == {"count": 3, "amount_minor": 2_000 + 400 + 3_000}
    assert euros["reversed_posted"] == {"count": 2, "amount_minor": 2_400}
    assert euros["net_posted_minor"] == 600
    ledger_after, _ = await balances_of(switch, visa)
    assert ledger_before - ledger_after == euros["net_posted_minor"]
    statement = await call(
        port, "GET", f"/v1/accounts/{visa['account']}/statement?{query}", token=AUDITOR_TOKEN
    )
    assert statement.json["reversed_posted"] == euros["reversed_posted"]
    assert statement.json["net_posted_minor"] == 600


async def test_an_accounts_open_holds_are_listed_with_their_authorisations(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    port, switch, visa = at.port, at.switch, at.visa
    hotel = await switch.send(purchase(visa, amount=10_000, **{"18": "7011"}))
    undone = purchase(visa, amount=3_000)
    assert (await switch.send(undone))["39"] == "00"
    reversal = {**undone, "t": "0400", "11": next_stan(), "90": field_90(undone)}
    assert (await switch.send(reversal))["39"] == "00"  # released: not listed
    shop = await switch.send(purchase(visa, amount=2_500))
    assert (await switch.send(purchase(visa, amount=700, t="0200")))["39"] == "00"  # posted

    account = visa["account"]
    listed = await call(port, "GET", f"/v1/accounts/{account}/holds", token=AUDITOR_TOKEN)
    assert listed.status == 200, listed
    holds = listed.json["holds"]
    assert [(h["approval_code"], h["held_minor"]) for h in holds] == [
        (hotel["38"], 10_000), (shop["38"], 2_500)
    ]  # fmt: skip
    assert [h["mcc"] for h in holds] == ["7011", "5411"]
    now = (await call(port, "GET", f"/v1/accounts/{account}", token=AUDITOR_TOKEN)).json
    assert listed.json["held_minor"] == now["holds"] == 12_500
    for held in holds:
        assert held["pan"].endswith(visa["pan"][-4:]) and visa["pan"] not in str(held)
        since = dt.datetime.fromisoformat(held["held_since"])
        expires = dt.datetime.fromisoformat(held["expires_at"])
        assert expires - since == dt.timedelta(days=7, seconds=held["extra_life_s"])
    # a hotel's hold lives longer than a shop's ([auth] hold_days_by_mcc, lodging)
    assert holds[0]["extra_life_s"] > 0 and holds[1]["extra_life_s"] == 0

    config = cli_config(tmp_path, store_url)
    code, output = await run_cli("accounts", "holds", account, "--config", str(config))
    assert code == 0, output
    assert json.loads(output)["holds"] == holds
    missing = await call(port, "GET", "/v1/accounts/nope/holds")
    assert missing.status == 404


async def test_an_entry_at_midnight_counts_in_the_day_it_starts_only(nursery, tmp_path, store_url):  # noqa: F811
    """Days are [midnight, next midnight): an entry journalled exactly at midnight is in the
    next day's totals and statement, not in both (nor in neither), on both stores."""
    from authhost.store.interface import Commit
    from authhost.store.records import JournalEntry

    at = await visa_at_host(nursery, tmp_path, store_url)
    midnight = dt.datetime(2026, 11, 28, tzinfo=dt.UTC).timestamp()
    account = at.visa["account"]
    async with opened_store(store_url) as store:
        for ts, amount in ((midnight - 0.5, 100), (midnight, 200), (midnight + 0.5, 400)):
            entry = JournalEntry(ts=ts, mti="0200", message_class="financial",
                                 response_code="00", card_id=at.card_id, account_id=account,
                                 processing_code="000000", amount_minor=amount, currency="978",
                                 hold_amount=amount, movement="post")  # fmt: skip
            await store.commit(Commit(journal=entry, card_id=at.card_id))
    posted = {}
    for day in ("2026-11-27", "2026-11-28"):
        totals = await call(at.port, "GET", f"/v1/journal/totals?day={day}", token=AUDITOR_TOKEN)
        lines = await call(at.port, "GET", f"/v1/accounts/{account}/statement?day={day}",
                           token=AUDITOR_TOKEN)  # fmt: skip
        [euros] = totals.json["currencies"]
        assert euros["posted"] == lines.json["posted"], (totals.json, lines.json)
        posted[day] = euros["posted"]["amount_minor"]
    assert posted == {"2026-11-27": 100, "2026-11-28": 600}


async def test_a_day_is_the_banks_business_day(nursery, tmp_path, store_url):  # noqa: F811
    """With ``[admin] business_day_timezone`` (here UTC+14, where the day starts 14 hours
    before UTC's), a report's day is the bank's: the purchase made now counts to today in
    Kiribati, in the admin API and the CLI alike, and to neither day beside it."""
    port = free_port()
    tokens = f"{OPERATOR_TOKEN}:operator,{AUDITOR_TOKEN}:auditor"
    zone = "Etc/GMT-14"  # (POSIX signs: UTC+14)
    admin = AdminConfig(port=port, tokens=tokens, business_day_timezone=zone)
    host = await start_host(nursery, tmp_path, store_url, admin=admin)
    switch = await Switch.connect(host.port)
    made_at = time.time()
    assert (await switch.send(purchase(host.cards["active-visa"], amount=1_234)))["39"] == "00"

    local = dt.datetime.fromtimestamp(made_at, dt.timezone(dt.timedelta(hours=14)))
    day = local.date()
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=14)))
    counted = {}
    for offset in (-1, 0, 1):
        asked = (day + dt.timedelta(days=offset)).isoformat()
        totals = await call(port, "GET", f"/v1/journal/totals?day={asked}", token=AUDITOR_TOKEN)
        assert totals.status == 200, totals
        counted[offset] = totals.json["entries"]
        if offset == 0:
            since = midnight.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            assert totals.json["since"] == since, totals.json
    assert counted == {-1: 0, 0: 1, 1: 0}, counted

    config = cli_config(tmp_path, store_url)
    config.write_text(config.read_text() + f'[admin]\nbusiness_day_timezone = "{zone}"\n')
    code, output = await run_cli("journal", "totals", "--day", day.isoformat(), "--config",
                                 str(config))  # fmt: skip
    assert code == 0 and json.loads(output)["entries"] == 1, output
    await switch.aclose()
