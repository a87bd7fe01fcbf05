"""The wire path over TCP, on both stores: an answer never fails on what it reports (a balance
too large for field 54), a malformed field 90 or 95 is a format error rather than a reversal
of something else, and a non-ASCII "digit" in an EBCDIC key change is 30."""

from __future__ import annotations

from iso_client import Switch, next_stan
from test_e2e_auth import balances_of, field_90, purchase, start_host, store_url  # noqa: F401
from test_e2e_key_changes import key_change

from authhost.security.keys import KeyAlgorithm, generate_material
from authhost.store import opened_store
from authhost.store.interface import JournalQuery

TOO_MUCH = 999_999_999_999  # the largest amount field 4 carries


async def test_a_balance_too_large_for_field_54_leaves_the_answers_intact(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    caplog,
):
    """Two advices (posted without a funds check) take the balance past 12 digits: every
    answer on the account still carries the decision the journal has, without field 54."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    for _ in range(2):
        reply = await switch.send(purchase(card, amount=TOO_MUCH, t="0220"))
        assert (reply["t"], reply["39"]) == ("0230", "00")
        assert "54" not in reply or len(reply["54"]) % 20 == 0
    inquiry = await switch.send(purchase(card, **{"3": "310000", "4": None}))
    assert (inquiry["t"], inquiry["39"]) == ("0110", "00")
    assert "54" not in inquiry  # neither balance fits 12 digits: left out, not wrapped
    declined = await switch.send(purchase(card, amount=1_000))
    assert declined["39"] not in ("00", "96")  # the limits or the funds decline it
    async with opened_store(store_url) as store:
        entries = {e.stan: e for e in await store.journal(JournalQuery(limit=100))}
    assert entries[inquiry["11"]].response_code == "00"
    assert entries[declined["11"]].response_code == declined["39"]
    warned = [r for r in caplog.records if "field 54" in r.getMessage()]
    assert warned and card["pan"] not in caplog.text  # logged, without the PAN
    # the other accounts are answered with their balances as before
    other = await switch.send(purchase(host.cards["active-credit"], **{"3": "310000", "4": None}))
    assert other["39"] == "00" and len(other["54"]) % 20 == 0


async def test_a_malformed_field_95_or_90_is_a_format_error_and_releases_nothing(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    held = purchase(card, amount=10_000)
    assert (await switch.send(held))["39"] == "00"
    before = await balances_of(switch, card)

    def reversal(**fields: str) -> dict[str, str]:
        return {**held, "t": "0400", "11": next_stan(), "90": field_90(held), **fields}

    bad = [
        reversal(**{"95": "4000.00     " + "0" * 30}),  # an amount that is not 12 digits
        reversal(**{"95": f"{4_000:012d}" + "0" * 12 + "X00000000C00000000"}),  # a bad fee
        reversal(**{"90": field_90(held)[:-1] + "X"}),  # field 90 is 42 digits
    ]
    for request in bad:
        reply = await switch.send(request)
        assert (reply["t"], reply["39"], reply["11"]) == ("0410", "30", request["11"])
    assert await balances_of(switch, card) == before  # nothing released
    partial = reversal(**{"95": f"{4_000:012d}" + "0" * 12 + "C00000000D00000000"})
    assert (await switch.send(partial))["39"] == "00"  # x+n fees: C or D, then 8 digits
    assert await balances_of(switch, card) == (before[0], before[1] + 6_000)


async def test_a_non_ascii_digit_in_an_ebcdic_key_change_is_a_format_error(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """'²' (0xEA in code page 500) is a digit to Python's isdigit but not to ISO 8583: a key
    change carrying one was answered 96 (or installed), a 3-D Secure level read as "none"."""
    host = await start_host(nursery, tmp_path, store_url, dialect="ebcdic-binary-bitmap")
    switch = await Switch.connect(host.port, dialect="ebcdic-binary-bitmap")
    new_zpk = generate_material(KeyAlgorithm.TDES, 16)
    request = key_change(bytes.fromhex(host.keys["zmk"]), new_zpk)
    block = request["48"]
    for broken in ("110²" + block[4:], "11" + block[2:6] + "0²" + block[8:]):
        answer = await switch.send({**request, "11": next_stan(), "48": broken})
        assert (answer["t"], answer["39"]) == ("0810", "30"), broken[:8]
    answer = await switch.send({**request, "11": next_stan()})  # the link lives on
    assert (answer["t"], answer["39"]) == ("0810", "00")
    # a purchase's 3-D Secure level (subelement 42) with the same false digit
    reply = await switch.send(purchase(host.cards["active-visa"], **{"48": "R420321²"}))
    assert (reply["t"], reply["39"]) == ("0110", "30")
