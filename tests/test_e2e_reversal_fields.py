"""Field 90 and 95 edge cases of a reversal, through the real host: each gets the right
answer (00 acknowledged, or 30 for a layout the host cannot read), never 96."""

from __future__ import annotations

from typing import Any

from iso_client import Switch, next_stan
from test_e2e_auth import purchase, start_host, store_url  # noqa: F401 - fixture


def _balance(response: dict[str, Any]) -> int:
    at = response["54"].index("02978")
    return int(response["54"][at + 6 : at + 18])


async def test_reversal_field_90_and_95_edge_cases(nursery, tmp_path, store_url):  # noqa: F811
    host = await start_host(nursery, tmp_path, store_url)
    switch = await Switch.connect(host.port)
    card = host.cards["active-visa"]
    available = int(card["available"])
    auth = purchase(card, amount=10_000)
    assert _balance(await switch.send(auth)) == available - 10_000
    original = f"0100{auth['11']}{auth['7']}{'123456':0>11}{'0' * 11}"

    def reversal(**fields: str) -> dict[str, Any]:
        return {**auth, "t": "0400", "11": next_stan(), "90": original, **fields}

    def inquiry() -> dict[str, Any]:
        return purchase(card, **{"3": "310000", "4": None})

    # malformed original data elements: refused at the wire, nothing released
    for bad in (original[:-1] + "A", " " * 42, original[:10] + "AB" + original[12:]):
        reply = await switch.send(reversal(**{"90": bad}))
        assert (reply["t"], reply["39"]) == ("0410", "30"), bad
    # field 95 that cannot be read: 30, never taken as a full reversal
    for bad in ("00000000X000" + "0" * 30, f"{4_000:012d}" + "0" * 12 + "X" * 18):
        reply = await switch.send(reversal(**{"95": bad}))
        assert (reply["t"], reply["39"]) == ("0410", "30"), bad
    assert _balance(await switch.send(inquiry())) == available - 10_000

    # a replacement amount above the original: acknowledged, the hold is left as it was
    above = await switch.send(reversal(**{"95": f"{25_000:012d}" + "0" * 30}))
    assert (above["t"], above["39"]) == ("0410", "00")
    assert _balance(await switch.send(inquiry())) == available - 10_000
    # field 90 all zeros names no original: acknowledged, nothing released
    zeros = await switch.send(reversal(**{"90": "0" * 42}))
    assert (zeros["t"], zeros["39"]) == ("0410", "00")
    assert _balance(await switch.send(inquiry())) == available - 10_000
    # a replacement amount of zero: nothing remains, the whole hold is released
    full = await switch.send(reversal(**{"95": "0" * 42}))
    assert (full["t"], full["39"]) == ("0410", "00")
    assert _balance(await switch.send(inquiry())) == available
