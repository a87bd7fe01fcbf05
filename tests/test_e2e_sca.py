"""Strong customer authentication as a rule, over TCP on both stores: an e-commerce purchase
over 30 EUR whose cardholder was not authenticated (field 48 subelement 42) gets the soft
decline 65; authenticated, exempt or smaller ones go through; the journal records how each
cardholder was authenticated, and a broken subelement is a format error (30)."""

from __future__ import annotations

from pathlib import Path

from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture

from authhost.store import opened_store
from authhost.store.interface import JournalQuery

ROOT = Path(__file__).resolve().parent.parent
SCA_RULES = (ROOT / "examples" / "rules" / "sca_rules.toml").read_text()


def ecommerce(card: dict, amount: int, security_level: str | None) -> dict:
    """A web purchase with the card's CVV2 and, when given, the security level indicator."""
    additional = f"92{len(card['cvv2']):02d}{card['cvv2']}"
    if security_level is not None:
        additional += f"42{len(security_level):02d}{security_level}"
    web = {"18": "5999", "22": "812", "25": "59", "35": None, "41": "WEB00001"}
    return purchase(card, amount, **web, **{"42": "WEBSHOP00000001", "48": additional})


async def test_an_unauthenticated_web_purchase_over_30_euros_is_soft_declined(
    nursery,
    tmp_path,
    store_url,  # noqa: F811
):
    host = await start_host(nursery, tmp_path, store_url, rules=SCA_RULES)
    switch = await Switch.connect(host.port)
    card = host.cards["active-credit"]
    cases = [
        ("210", 4_000, "65", "none"),  # not authenticated, over 30 EUR: retry with 3-D Secure
        ("212", 4_000, "00", "authenticated"),
        ("0103216", 4_000, "00", "exempt"),  # Mastercard's subfield form, an exemption
        ("210", 2_500, "00", "none"),  # under the threshold
        (None, 4_000, "00", ""),  # the request does not say: the rule cannot tell
        ("21", 4_000, "30", None),  # broken: a format error, not a decision
    ]
    for level, amount, code, _ in cases:
        answer = await switch.send(ecommerce(card, amount, level))
        assert answer["39"] == code, (level, amount, answer["39"])
    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    web = [e for e in entries if e.merchant_id == "WEBSHOP00000001" and e.response_code != "30"]
    assert [(e.response_code, e.authentication) for e in web] == [
        (code, authentication) for _, _, code, authentication in cases if code != "30"
    ]
    [declined] = [e for e in web if e.response_code == "65"]
    assert declined.reason_codes.split(";")[0] == "sca.required"
