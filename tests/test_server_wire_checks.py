"""What a switch can send that is not a request we can decide, over TCP: hex fields with
whitespace in them get 30, a response (0810, 0110) is not answered, and the link and the
server live on."""

from __future__ import annotations

import pytest
import trio
from test_server_support import (
    SwitchClient,
    financial_fields,
    frame,
    network_fields,
    running_server,
    server_config,
)

from authhost.server.logs import LogLimits
from authhost.server.metrics import ServerMetrics

HEX_DIALECT = "ascii-hex-bitmap"
PIN_BLOCK = "0123456789ABCDEF"


@pytest.mark.parametrize(
    "fields",
    [
        {"52": "01 23 45 67 89AB"},  # 16 characters, 6 bytes to bytes.fromhex
        {"52": "\t0123456789ABCD\t"},  # 7 bytes
        {"3": "920000", "52": PIN_BLOCK, "125": "01 23 45 67 89 AB CD EF"},
        {"3": "920000", "52": PIN_BLOCK, "125": PIN_BLOCK + "0123"},  # not a PIN block
        {"55": "9F27 01 80 "},
    ],
    ids=["PIN block with spaces", "PIN block with a tab", "new PIN block with spaces",
         "new PIN block of 10 bytes", "ICC data with spaces"],
)  # fmt: skip
async def test_whitespace_in_a_hex_field_is_a_format_error(fields: dict[str, str]) -> None:
    async with (
        running_server(config=server_config(dialect=HEX_DIALECT)) as server,
        SwitchClient.connect(server.addresses[0], dialect=HEX_DIALECT) as client,
    ):
        response = await client.request(financial_fields("0200", "000301", **fields))
        assert (response["t"], response["11"], response["39"]) == ("0210", "000301", "30")
        good = financial_fields("0200", "000302", **{"52": PIN_BLOCK, "55": "9F270180"})
        assert (await client.request(good))["39"] == "00"  # the link lives on


async def test_a_response_sent_to_the_host_is_logged_and_skipped(caplog) -> None:
    """An 0810 (a switch answering an echo test nobody sent) and an 0110 whose fields do not
    even decode are not answered; the link stays open for the next request."""
    metrics = ServerMetrics()
    async with (
        running_server(metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        await client.send({**network_fields("301", "000401"), "t": "0810", "39": "00"})
        broken = client.encode({**financial_fields("0110", "000402"), "39": "00"})
        await client.send_raw(frame(broken[:-5]))  # cut inside its last field
        response = await client.request(financial_fields("0100", "000403"))
        assert (response["t"], response["11"], response["39"]) == ("0110", "000403", "00")
        assert metrics.responses_ignored._value.get() == 2  # noqa: SLF001
        assert metrics.format_errors._value.get() == 0  # noqa: SLF001
        assert metrics.connections_closed.labels("format_error")._value.get() == 0  # noqa: SLF001
    logged = [
        r for r in caplog.records if r.getMessage() == "a response sent to the host, not answered"
    ]
    # both counted; the second of the same second is held back (a flood gives a line a second)
    assert [r.__dict__["fields"]["held_back"] for r in logged] == [0]
    assert financial_fields("0100", "1")["2"] not in caplog.text


async def _flood_of_responses(address: tuple[str, int], count: int, first_stan: int) -> None:
    async with SwitchClient.connect(address) as client:
        for i in range(count):
            await client.send({**network_fields("301", f"{first_stan + i:06d}"), "t": "0810"})
        response = await client.request(financial_fields("0100", f"{first_stan + count:06d}"))
        assert response["39"] == "00"


async def test_a_flood_of_warnings_gives_a_line_a_second_per_server(caplog) -> None:
    """A switch sending a stream of what the host does not answer (here 0810s; bad MACs and
    failing decisions alike) gave one warning per frame, each written at once. Now a line a
    second per kind, saying how many it held back; and the limit is each server's own, so
    one server's flood does not silence another server's first warning."""
    first = ServerMetrics()
    async with running_server(metrics=first) as flooded, running_server() as other:
        started = trio.current_time()
        await _flood_of_responses(flooded.addresses[0], 50, 500)
        elapsed = trio.current_time() - started
        await _flood_of_responses(other.addresses[0], 1, 600)
    assert first.responses_ignored._value.get() == 50  # noqa: SLF001 - every one counted
    lines = [
        r.__dict__["fields"]
        for r in caplog.records
        if r.getMessage() == "a response sent to the host, not answered"
    ]
    flood = [line for line in lines if int(line["stan"]) < 600]
    assert 1 <= len(flood) <= 1 + elapsed  # one a second at most, the first at once
    assert len(flood) + sum(line["held_back"] for line in flood) <= 50
    assert [line["stan"] for line in lines if int(line["stan"]) >= 600] == ["000600"]


def test_log_limits_hold_back_within_a_second_and_say_how_many() -> None:
    now = [100.0]
    limits = LogLimits(clock=lambda: now[0])
    assert limits.allow("mac") == 0
    assert limits.allow("mac") is None
    assert limits.allow("mac") is None
    assert limits.allow("bad_frame") == 0  # each kind its own
    now[0] += 0.99
    assert limits.allow("mac") is None
    now[0] += 0.02
    assert limits.allow("mac") == 3  # the line after says how many were not written
    assert limits.allow("mac") is None
