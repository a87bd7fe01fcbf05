"""A switch's key change (0800, field 70 = 161) over TCP, on both stores: the new zone PIN key
is installed and used at once, a key that does not check is refused with 63 and changes
nothing, a malformed one is 30, another key class 12; each change is audited, never the key."""

from __future__ import annotations

from iso_client import Switch, next_stan
from test_e2e_auth import (  # noqa: F401 - fixture
    purchase,
    start_host,
    store_url,
    with_pin,
    wrong_pins,
)
from test_e2e_key_changes import key_change

from authhost.iso.subfields import build_additional_data
from authhost.security.keys import KeyAlgorithm, generate_material
from authhost.store import opened_store


async def test_a_key_change_installs_the_new_zone_pin_key(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    [wrong] = wrong_pins(host, card)
    zmk, old_zpk = bytes.fromhex(host.keys["zmk"]), host.zpk()
    assert (await switch.send(with_pin(purchase(card), host, card, card["pin"])))["39"] == "00"

    new_zpk = generate_material(KeyAlgorithm.TDES, 16)
    answer = await switch.send(key_change(zmk, new_zpk))
    assert (answer["t"], answer["39"], answer["70"]) == ("0810", "00", "161")
    assert set(answer) - {"p", "1"} == {"t", "7", "11", "32", "39", "70"}  # not the key (48)
    assert answer["32"] == "123456"  # the acquirer whose key changed
    host.keys["zpk"] = new_zpk.hex()
    assert (await switch.send(with_pin(purchase(card), host, card, card["pin"])))["39"] == "00"
    # a block encrypted under the old key before the switch changed keys, arriving now: read
    # under the key before (security.zone_key_overlap_s), its wrong PIN still counted as wrong
    host.keys["zpk"] = old_zpk.hex()
    assert (await switch.send(with_pin(purchase(card), host, card, card["pin"])))["39"] == "00"
    assert (await switch.send(with_pin(purchase(card), host, card, wrong)))["39"] == "55"

    async with opened_store(store_url) as store:
        (audit,) = [e for e in await store.audit(subject="zpk") if e.action == "key.exchange"]
    assert audit.actor == "switch:123456" and '"version": 2' in audit.after
    assert new_zpk.hex() not in audit.after.lower() and "kcv" in audit.after


async def test_a_key_change_that_fails_leaves_the_key_in_use(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    zmk = bytes.fromhex(host.keys["zmk"])
    new_zpk = generate_material(KeyAlgorithm.TDES, 16)

    wrong_check = key_change(zmk, new_zpk)
    block = wrong_check["48"]
    wrong_check["48"] = block[:-16] + "0" * 16
    no_block = {**key_change(zmk, new_zpk), "48": build_additional_data({"92": "123"})}
    short_key = {**key_change(zmk, new_zpk)}
    short_key["48"] = build_additional_data({"11": "PK0101ABCDEF"})
    data_key = key_change(zmk, new_zpk)  # a data key: no switch changes those here
    data_key["48"] = data_key["48"].replace("PK", "DK", 1)
    replayed = key_change(zmk, bytes.fromhex(host.keys["zpk"]))  # the key in use, sent again
    cases = [(wrong_check, "63"), (no_block, "30"), (short_key, "30"), (data_key, "12"),
             (replayed, "63")]  # fmt: skip
    for request, code in cases:
        answer = await switch.send({**request, "11": next_stan()})
        assert (answer["t"], answer["39"]) == ("0810", code), request["48"][:12]
    # the link lives on and PIN blocks are still read under the key in use
    assert (await switch.send(with_pin(purchase(card), host, card, card["pin"])))["39"] == "00"
    async with opened_store(store_url) as store:
        assert not [e for e in await store.audit(subject="zpk") if e.action == "key.exchange"]


async def test_a_listener_can_refuse_key_changes(nursery, tmp_path, store_url):  # noqa: F811
    """A listener facing terminals, say, where no switch should change keys: 12, and the key
    in use stays."""
    host = await start_host(nursery, tmp_path, store_url, key_exchange=False)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    new_zpk = generate_material(KeyAlgorithm.TDES, 16)
    answer = await switch.send(key_change(bytes.fromhex(host.keys["zmk"]), new_zpk))
    assert (answer["t"], answer["39"]) == ("0810", "12")
    assert (await switch.send(with_pin(purchase(card), host, card, card["pin"])))["39"] == "00"
