"""``authhost journal show CARD -o table`` says what each entry did to the money, over a
running host on both stores: a support agent reading a cardholder's entries tells a refund
(credit) from a purchase (hold) of the same amount. Before, the table had no such column and a
refund, or a dispute's provisional credit, read as a second charge."""

from __future__ import annotations

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import field_90, next_stan, purchase, store_url  # noqa: F401 - fixture


async def test_the_journal_table_tells_a_refund_from_a_purchase(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    bought = purchase(at.visa, amount=2_000)
    assert (await at.switch.send(bought))["39"] == "00"
    refund = purchase(at.visa, amount=2_000, **{"3": "200000", "t": "0200"})
    assert (await at.switch.send(refund))["39"] == "00"

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("journal", "show", at.card_id, "-o", "table", "--config", config)
    assert code == 0, out
    header = next(line for line in out.splitlines() if "mti" in line)
    assert "money" in header
    rows = [
        [cell.strip() for cell in line.split("│")]
        for line in out.splitlines()
        if "20.00 978" in line
    ]
    assert len(rows) == 2, out
    assert {(row[3], row[6]) for row in rows} == {("0100", "hold"), ("0200", "credit")}


async def test_the_reversal_of_a_refund_reads_as_money_taken_back(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A refund reversed takes the money back out of the account: the table says
    ``take_back``, as the statement and the movement sums do. Before, it printed the journal's
    raw ``release`` (a hold freed: money back to the cardholder), the opposite of what
    happened, and a purchase reversed read the same as a refund reversed."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    refund = purchase(at.visa, amount=3_000, **{"3": "200000", "t": "0200"})
    assert (await at.switch.send(refund))["39"] == "00"
    reversed_refund = {**refund, "t": "0400", "11": next_stan(), "90": field_90(refund)}
    assert (await at.switch.send(reversed_refund))["39"] == "00"
    bought = purchase(at.visa, amount=3_000)
    assert (await at.switch.send(bought))["39"] == "00"
    reversed_buy = {**bought, "t": "0400", "11": next_stan(), "90": field_90(bought)}
    assert (await at.switch.send(reversed_buy))["39"] == "00"

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("journal", "show", at.card_id, "-o", "table", "--config", config)
    assert code == 0, out
    rows = [
        [cell.strip() for cell in line.split("│")]
        for line in out.splitlines()
        if "30.00 978" in line
    ]
    moves = sorted((row[3], row[6]) for row in rows)
    assert moves == [
        ("0100", "hold"),
        ("0200", "credit"),
        ("0400", "release"),  # the purchase's hold freed
        ("0400", "take_back"),  # the refund taken back out
    ], out


async def test_a_lost_disputes_take_back_does_not_read_as_a_second_charge(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A dispute's own movements say so in the table's money column, as the timeline and the
    statement's ``dispute_movement`` do. Before, the bank's take-back of a lost dispute's
    credit read "0220 ... post" at the merchant: a second charge of the disputed amount, which
    is what the column was added to stop an agent telling a cardholder."""
    at = await visa_at_host(nursery, tmp_path, store_url)
    charged = await at.switch.send(purchase(at.visa, amount=6_000, t="0200"))
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

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli("journal", "show", at.card_id, "-o", "table", "--config", config)
    assert code == 0, out
    rows = [
        [cell.strip() for cell in line.split("│")]
        for line in out.splitlines()
        if "60.00 978" in line
    ]
    assert sorted((row[3], row[6]) for row in rows) == [
        ("0200", "post"),
        ("0220", "credit: dispute provisional credit"),
        ("0220", "post: dispute credit taken back"),
    ], out
