"""A purchase declined for a limit is told in words that fit it, over a running host on both
stores: the card's timeline (what a support agent reads to the cardholder) says "exceeds
amount limit", not ISO's "exceeds withdrawal amount limit", which is about cash and sent an
agent looking for an ATM withdrawal the cardholder never made."""

from __future__ import annotations

from host_admin import visa_at_host
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import purchase, store_url  # noqa: F401 - fixture


async def test_a_purchase_over_the_limit_reads_as_an_amount_limit(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    limits = {"per_transaction": 1_000, "daily_count": 1}
    done = await call(at.port, "PUT", f"/v1/cards/{at.card_id}/limits", payload=limits)
    assert done.status == 200, done
    assert (await at.switch.send(purchase(at.visa, amount=1_001)))["39"] == "61"
    assert (await at.switch.send(purchase(at.visa, amount=500)))["39"] == "00"
    assert (await at.switch.send(purchase(at.visa, amount=500)))["39"] == "65"

    timeline = await call(at.port, "GET", f"/v1/cards/{at.card_id}/timeline", token=AUDITOR_TOKEN)
    summaries = [e["summary"] for e in timeline.json["events"] if e["journal_id"] is not None]
    said = " | ".join(summaries)
    assert "61 declined (exceeds amount limit)" in said, said
    assert "65 declined (exceeds frequency limit)" in said, said
    assert "withdrawal" not in said
