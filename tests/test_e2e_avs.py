"""Address verification (AVS) over TCP on both stores: a web purchase that asks the issuer to
verify the billing address (field 48 SE 82 "52", the address in field 120) is answered with the
result in field 48 SE 83 (Y, A, Z, N; U for a card without an address on file), approved or
not on its other merits, the journal keeps the result and rules may decline on it; the address
is set over the admin API and kept only as keyed hashes: never in the store's file, the log or
an answer."""

from __future__ import annotations

import logging

from host_admin import card_id_of, start_host_with_admin
from iso_client import Switch
from test_admin_support import call
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture

from authhost.iso.subfields import parse_additional_data
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

SHOP = "WEBSHOP00000082"


def checkout(card: dict, postcode: str, street: str, **changes: str) -> dict:
    """A web purchase with the card's CVV2 asking to verify this billing address."""
    additional = f"92{len(card['cvv2']):02d}{card['cvv2']}8202" + changes.pop("avs", "52")
    web = {"18": "5999", "22": "812", "25": "59", "35": None, "41": "WEB00082", "42": SHOP}
    return purchase(
        card, 1_000, **web, **{"48": additional, "120": postcode.ljust(9) + street}, **changes
    )


def avs_of(answer: dict) -> str:
    return parse_additional_data(answer.get("48", "")).get("83", "")


async def test_the_billing_address_is_verified_and_the_merchant_told(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    caplog,
):
    caplog.set_level(logging.INFO)
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]  # the demo's billing address: EC1A 1BB, 12 Lovelace St
    assert card["billing_address"] == {"postcode": "EC1A 1BB", "street": "12 Lovelace Street"}
    cases = [
        ("EC1A 1BB", "12 Lovelace Street", "Y"),
        ("ec1a-1bb", "12, Lovelace St.", "Y"),  # typed otherwise: the same postcode and number
        ("EC1A 1BB", "14 Lovelace Street", "Z"),  # the postcode only
        ("SW1A 2AA", "12 Lovelace Street", "A"),  # the house number only
        ("SW1A 2AA", "10 Downing Street", "N"),  # neither: approved all the same
    ]
    for postcode, street, result in cases:
        answer = await switch.send(checkout(card, postcode, street))
        assert (answer["39"], avs_of(answer)) == ("00", result), (postcode, street)
    no_address = await switch.send(checkout(host.cards["active-visa-low"], "EC1A 1BB", "12 X"))
    assert avs_of(no_address) == "U"
    plain = await switch.send(purchase(card, 500))  # no verification asked: none answered
    assert plain["39"] == "00" and "48" not in plain
    malformed = await switch.send(checkout(card, "EC1A 1BB", "12", avs="51"))
    assert malformed["39"] == "30"

    async with opened_store(store_url) as store:
        entries = await store.journal(JournalQuery(limit=100))
    answered = sorted((e for e in entries if e.merchant_id == SHOP), key=lambda e: e.journal_id)
    assert [e.avs_result for e in answered] == [r for *_, r in cases] + ["U"]
    logged = caplog.text
    for name in ("authhost.db", "authhost.db-wal"):  # the SQLite store's file (Redis: none)
        if (tmp_path / name).exists():
            logged += (tmp_path / name).read_bytes().decode("latin-1")
    for clear in ("EC1A 1BB", "EC1A1BB", "Lovelace", "Downing"):
        assert clear not in logged


AVS_RULE = """
[[rule]]
name = "AVS-01 a web purchase whose billing address matches nothing"
expression = "channel == 'ecommerce' and avs_result == 'N'"
action = "decline"
response_code = "05"
reason = "avs.no_match"
"""


async def test_rules_decline_on_the_avs_result(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url, rules=AVS_RULE)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    matching = await switch.send(checkout(card, "EC1A 1BB", "12 Lovelace Street"))
    wrong = await switch.send(checkout(card, "SW1A 2AA", "10 Downing Street"))
    assert (matching["39"], wrong["39"]) == ("00", "05")
    assert avs_of(wrong) == "N"  # the merchant hears why as well


async def test_the_billing_address_is_set_over_the_admin_api(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host, port = await start_host_with_admin(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa-low"]
    card_id = await card_id_of(port, card["pan"])
    path = f"/v1/cards/{card_id}/personalise"
    half = await call(port, "POST", path, payload={"billing_postcode": "10001"})
    assert half.status == 422 and "together" in half.json["error"]
    address = {"billing_postcode": "10001-1234", "billing_street": "350 Fifth Avenue"}
    view = await call(port, "POST", path, payload=address)
    assert view.status == 200 and view.json["billing_address_on_file"] is True
    assert "10001" not in view.body.decode() and "Fifth" not in view.body.decode()
    zip5 = await switch.send(checkout(card, "10001", "350 5th Ave"))  # ZIP+4 kept as ZIP
    assert avs_of(zip5) == "Y"
    cleared = await call(port, "POST", path, payload={"billing_postcode": "", "billing_street": ""})
    assert cleared.status == 200 and cleared.json["billing_address_on_file"] is False
    assert avs_of(await switch.send(checkout(card, "10001", "350 5th Ave"))) == "U"
