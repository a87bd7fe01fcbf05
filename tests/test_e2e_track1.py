"""Track 1 (field 45) over a real server: a switch sends the stripe's track 1 or its track 2,
and the CVV on the one that came is checked (docs/iso.md, "Card verification")."""

from __future__ import annotations

from iso_client import Switch
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401


def track1(card: dict, cvv: str, expiry: str | None = None) -> str:
    """Track 1 as a stripe carries it: B PAN ^ name ^ YYMM service code, CVV, filler."""
    return (
        f"B{card['pan']}^TEST/CARDHOLDER^{expiry or card['expiry']}{card['service_code']}{cvv}00000"
    )


async def test_a_stripes_track_1_has_its_cvv_checked(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    """A swipe sent with track 1 and no track 2 carried a CVV nobody checked: a wrong one (a
    counterfeit stripe) was approved 00, and a CVV2 beside it was checked instead."""
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    values = host.runtime.security.card_values(
        card["pan"], card["expiry"], card["service_code"], "cvk"
    )
    wrong = "000" if values.cvv != "000" else "111"
    swipe = {"22": "901", "35": None}

    def swiped(cvv: str, **changes: str) -> dict:
        return purchase(card, **{**swipe, "45": track1(card, cvv), **changes})

    assert (await switch.send(swiped(values.cvv)))["39"] == "00"
    # without field 2, the card number is track 1's, as it is track 2's
    assert (await switch.send(swiped(values.cvv, **{"2": None})))["39"] == "00"
    assert (await switch.send(swiped(wrong)))["39"] == "82"
    # the stripe is the check: a CVV2 beside a genuine track 1 is not processed
    wrong_cvv2 = "000" if card["cvv2"] != "000" else "111"
    assert (await switch.send(swiped(values.cvv, **{"48": "9203" + wrong_cvv2})))["39"] == "00"
    # another card's track, or one that cannot be read, is refused as a track 2 is
    assert (await switch.send(swiped(values.cvv, **{"45": "B1234^X^"})))["39"] == "30"
    old_plastic = purchase(card, **{**swipe, "45": track1(card, values.cvv, expiry="2001")})
    assert (await switch.send(old_plastic))["39"] == "54"
