"""A dispute's money movements read as the bank's in the card's timeline and the account's
statement, over a running host on both stores: the provisional credit is "dispute provisional
credit ... by the bank" (the statement line's ``dispute_movement``), and what a lost dispute
takes back "dispute credit taken back". Before, the credit read "0220 refund 50.00 at
MERCHANT", and a support agent told the cardholder the merchant had paid them back, money the
bank takes back if the dispute is lost."""

from __future__ import annotations

from host_admin import visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture


async def test_a_disputes_credit_reads_as_the_banks_not_a_merchant_refund(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    charged = await at.switch.send(purchase(at.visa, amount=5_000, t="0200"))  # posted at once
    assert charged["39"] == "00"
    journal = await call(at.port, "GET", f"/v1/cards/{at.card_id}/journal", token=AUDITOR_TOKEN)
    (charge,) = [e for e in journal.json["journal"] if e["stan"] == charged["11"]]
    url = f"/v1/cards/{at.card_id}/journal/{charge['journal_id']}/dispute"
    opened = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert opened.status == 200, opened
    lost = await call(
        at.port, "POST", f"/v1/disputes/{opened.json['dispute_id']}/resolve",
        payload={"outcome": "lost"},
    )  # fmt: skip
    assert lost.status == 200, lost

    timeline = await call(at.port, "GET", f"/v1/cards/{at.card_id}/timeline", token=AUDITOR_TOKEN)
    moves = [
        e["summary"]
        for e in timeline.json["events"]
        if e["journal_id"] is not None and e["journal_id"] != charge["journal_id"]
    ]
    assert len(moves) == 2, moves
    taken, credited = moves  # newest first
    assert credited.startswith("0220 dispute provisional credit 50.00 978 by the bank"), credited
    assert taken.startswith("0220 dispute credit taken back 50.00 978 by the bank"), taken
    assert not any(" refund " in m or m.startswith("0220 purchase") for m in moves)

    account = (await call(at.port, "GET", f"/v1/cards/{at.card_id}", token=AUDITOR_TOKEN)).json
    statement = await call(
        at.port, "GET", f"/v1/accounts/{account['account_id']}/statement?since=1",
        token=AUDITOR_TOKEN,
    )  # fmt: skip
    assert statement.status == 200, statement
    said = {
        line["journal_id"]: (line["movement"], line["dispute_movement"])
        for line in statement.json["lines"]
        if line["journal_id"] is not None
    }
    assert said[charge["journal_id"]] == ("post", "")
    assert sorted(v for k, v in said.items() if k != charge["journal_id"]) == [
        ("credit", "provisional credit"),
        ("post", "credit taken back"),  # a forced post: without the field, a second charge
    ]
    assert all("dispute_movement" in line for line in statement.json["lines"])  # one shape


SHOP_NAME = "GADGETS ONLINE".ljust(23) + "TALLINN".ljust(13) + "  EE"  # field 43: 40 characters


async def test_a_disputes_movements_name_the_merchant_the_cardholder_knows(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """The credit and its take-back name the disputed charge's merchant as the charge does
    (field 43), in the timeline and on the statement. Before, the movements were journalled
    with no name: the timeline read "on the dispute of a charge at <merchant id>" beside the
    charge "at GADGETS ONLINE", and the statement line had no merchant name."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    named = purchase(at.visa, amount=4_000, t="0200", **{"43": SHOP_NAME})
    charged = await at.switch.send(named)
    assert charged["39"] == "00"
    journal = await call(at.port, "GET", f"/v1/cards/{at.card_id}/journal", token=AUDITOR_TOKEN)
    (charge,) = [e for e in journal.json["journal"] if e["stan"] == charged["11"]]
    url = f"/v1/cards/{at.card_id}/journal/{charge['journal_id']}/dispute"
    opened = await call(at.port, "POST", url, payload={"reason": "fraud"})
    assert opened.status == 200, opened
    lost = await call(
        at.port, "POST", f"/v1/disputes/{opened.json['dispute_id']}/resolve",
        payload={"outcome": "lost"},
    )  # fmt: skip
    assert lost.status == 200, lost

    timeline = await call(at.port, "GET", f"/v1/cards/{at.card_id}/timeline", token=AUDITOR_TOKEN)
    moves = [
        e["summary"]
        for e in timeline.json["events"]
        if e["journal_id"] is not None and e["journal_id"] != charge["journal_id"]
    ]
    assert len(moves) == 2, moves
    assert all("on the dispute of a charge at GADGETS ONLINE TALLINN" in m for m in moves), moves
    account = (await call(at.port, "GET", f"/v1/cards/{at.card_id}", token=AUDITOR_TOKEN)).json
    statement = await call(
        at.port, "GET", f"/v1/accounts/{account['account_id']}/statement?since=1",
        token=AUDITOR_TOKEN,
    )  # fmt: skip
    names = {
        line["dispute_movement"]: line["merchant_name"]
        for line in statement.json["lines"]
        if line["journal_id"] is not None
    }
    assert names["provisional credit"] == names["credit taken back"] == names[""], names
    assert names[""].startswith("GADGETS ONLINE"), names
