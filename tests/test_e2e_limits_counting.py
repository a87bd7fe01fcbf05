"""What counts toward a card's amount and count limits, over a running host on both stores:
approved spending once. A completion does not count again (its pre-authorisation did: a hotel
stay, and every purchase cleared through the pipeline, would count twice), nor an advice that
moved nothing (the network declined it; an unconverted amount in another currency), nor a
balance inquiry."""

from __future__ import annotations

from host_admin import visa_at_host
from test_admin_support import call
from test_e2e_auth import field_90, purchase, store_url  # noqa: F401 - fixture


async def test_approved_spending_counts_once(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    limits = {"daily_amount": 50_000, "daily_count": 4}  # 500.00 and four a day
    reply = await call(at.port, "PUT", f"/v1/cards/{at.card_id}/limits", payload=limits)
    assert reply.status == 200, reply

    visa = at.visa
    hotel = purchase(visa, amount=30_000)  # 300.00 held at check-in
    sent = {
        "check-in": hotel,
        "check-out": purchase(visa, amount=30_000, t="0220", **{"90": field_90(hotel)}),
        "network declined": purchase(visa, amount=40_000, t="0220", **{"39": "05"}),
        "dollars unconverted": purchase(visa, amount=40_000, t="0220", **{"49": "840"}),
        "balance": purchase(visa, **{"3": "310000", "4": None}),
        "balance again": purchase(visa, **{"3": "310000", "4": None}),
    }
    codes = {name: (await at.switch.send(fields))["39"] for name, fields in sent.items()}
    assert codes == dict.fromkeys(sent, "00")

    # counted: the 300.00 once, one approval. 150.00 more fits in 500.00 (it did not when the
    # completion counted again: 61), and two more approvals fit in four (the inquiries are not
    # approvals of spending)
    assert (await at.switch.send(purchase(visa, amount=15_000)))["39"] == "00"
    assert (await at.switch.send(purchase(visa, amount=5_000)))["39"] == "00"
    # 500.00 reached: now the daily amount declines, and then the count
    assert (await at.switch.send(purchase(visa, amount=100)))["39"] == "61"
    reply = await call(at.port, "PUT", f"/v1/cards/{at.card_id}/limits",
                       payload={"daily_count": 4})  # fmt: skip
    assert reply.status == 200, reply
    assert (await at.switch.send(purchase(visa, amount=100)))["39"] == "00"  # the fourth
    assert (await at.switch.send(purchase(visa, amount=100)))["39"] == "65"  # a fifth
