"""Cardholder alerts for the notification service, over a running host on both stores: a
suspected fraud declined, a lost card used, the PIN locked, money received and a payment
from a wallet token registered today are always alerts; approvals are alerts only as the service's policy asks (amount, card not present,
abroad); each once, in journal order, held back until settled."""

from __future__ import annotations

import time
from pathlib import Path

from host_admin import start_host_with_admin
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, call
from test_e2e_auth import ecommerce, purchase, store_url, with_pin  # noqa: F401 - fixture
from test_e2e_credits import transfer
from test_e2e_tokens import wallet_payment

from authhost.admin.service import CardService
from authhost.security.module import SecurityModule
from authhost.store import opened_store


async def test_alerts_follow_what_the_cardholder_must_hear_of(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    rules = Path(__file__).parent.parent / "examples" / "rules" / "transfer_rules.toml"
    host, port = await start_host_with_admin(nursery, tmp_path, store_url, rules=rules.read_text())
    switch = await Switch.connect(host.port)
    visa, low = host.cards["active-visa"], host.cards["active-visa-low"]
    wrong = "9999" if low["pin"] != "9999" else "8888"
    atm = {"3": "010000", "18": "6011", "t": "0200"}
    sent = {
        "small": purchase(visa, amount=1_000),
        "large": purchase(visa, amount=60_000),
        "web": ecommerce(visa, visa["cvv2"], **{"4": f"{2_000:012d}"}),
        "abroad": purchase(visa, amount=1_500, **{"19": "840"}),
        "lost": purchase(host.cards["lost"], amount=1_000),
        "paid": transfer(low, 80_000),
        "emptied": with_pin(purchase(low, amount=45_000, **atm), host, low, low["pin"]),
        "wallet": wallet_payment(visa, visa["token"], 1_200),  # a token registered today
    }
    sent.update({f"wrong{i}": with_pin(purchase(low, amount=100), host, low, wrong)
                 for i in range(3)})  # fmt: skip
    codes = {name: (await switch.send(fields))["39"] for name, fields in sent.items()}
    assert codes == {"small": "00", "large": "00", "web": "00", "abroad": "00", "lost": "41",
                     "paid": "00", "emptied": "59", "wallet": "00", "wrong0": "55",
                     "wrong1": "55", "wrong2": "75"}  # fmt: skip

    young = await call(port, "GET", "/v1/journal/alerts", token=AUDITOR_TOKEN)
    assert young.status == 200 and young.json == {"alerts": [], "next_after_id": 0}

    security = SecurityModule.open(host.config.security, demo=True)
    async with opened_store(store_url) as store:
        later = CardService(store, security, clock=lambda: time.time() + 10)
        always = await later.cardholder_alerts(0, 1000)
        every = await later.cardholder_alerts(
            0, 1000, amount_minor=50_000, card_not_present=True, abroad=True
        )
        first = await later.cardholder_alerts(0, 2, amount_minor=50_000, abroad=True,
                                              card_not_present=True)  # fmt: skip
        rest = await later.cardholder_alerts(first["next_after_id"], 1000, amount_minor=50_000,
                                             abroad=True, card_not_present=True)  # fmt: skip

    def by_name(feed: dict) -> dict[str, list[str]]:
        """Each alert's request (the RRN ends with the STAN), and why it is an alert."""
        names = {fields["11"]: name for name, fields in sent.items()}
        return {names[alert["rrn"][-6:]]: alert["alerts"] for alert in feed["alerts"]}

    assert by_name(always) == {"lost": ["lost_card_used"], "paid": ["money_received"],
                               "emptied": ["suspected_fraud_declined"],
                               "wallet": ["new_wallet_token"],
                               "wrong2": ["pin_locked"]}  # fmt: skip
    assert by_name(every) == {**by_name(always), "large": ["large_amount"],
                              "web": ["card_not_present"], "abroad": ["abroad"],
                              "wallet": ["new_wallet_token", "card_not_present"]}  # fmt: skip
    [paid_by_phone] = [a for a in every["alerts"] if a["wallet"]]
    assert paid_by_phone["wallet"] == "google_pay"
    assert first["alerts"] + rest["alerts"] == every["alerts"]  # paging loses none
    ids = [a["journal_id"] for a in every["alerts"]]
    assert ids == sorted(ids)
    assert all("*" in a["pan"] and visa["pan"] not in str(a) for a in every["alerts"])
    bad = await call(port, "GET", "/v1/journal/alerts?abroad=maybe", token=AUDITOR_TOKEN)
    assert bad.status == 400 and "abroad" in bad.json["error"]
