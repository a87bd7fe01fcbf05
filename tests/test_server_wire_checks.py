"""What a switch can send that is not a request we can decide, over TCP: hex fields with
whitespace in them get 30, a response (0810, 0110) is not answered, and the link and the
server live on."""

from __future__ import annotations

import pytest
from test_server_support import (
    SwitchClient,
    financial_fields,
    frame,
    network_fields,
    running_server,
    server_config,
)

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
    logged = [r.getMessage() for r in caplog.records if r.name == "authhost.server"]
    assert logged.count("a response sent to the host, not answered") == 2
    assert financial_fields("0100", "1")["2"] not in caplog.text
