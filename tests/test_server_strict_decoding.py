"""What the ISO fuzzing found the decoder too lenient about, over TCP: a length prefix that is
not exactly digits (a space, a sign, an underscore: Python's int() takes them all), an ASCII
hex bitmap with spaces in it (bytes.fromhex skips them), the fields of an 0800 beyond its
numeric ones (a cutover logged its settlement date as sent), and a STAN that is not digits
(logged as sent with its 30). Each is a format error: 30 when the MTI and STAN were read
before it, else the link closes, logged naming what was wrong; the link or the server lives
on either way, and no log line carries a value that was not checked."""

from __future__ import annotations

import logging

import pytest
from iso_peers import peer_encode
from test_server_support import (
    TEST_PAN,
    SwitchClient,
    financial_fields,
    frame,
    network_fields,
    running_server,
    server_config,
)

from authhost.server.logs import TextFormatter
from authhost.server.metrics import ServerMetrics

HEX = "ascii-hex-bitmap"
EBCDIC = "ebcdic-binary-bitmap"
BCD = "bcd-binary-bitmap"
# LLLVAR in every dialect; read as Visa's field 60, whose 60.8 "90" (an e-commerce indicator
# authhost does not know: no authentication) declines nothing
LLL_FIELD = {"60": "1234567890"}

# (dialect, the bytes of a good length prefix and its field's value, what replaces them)
# Field 32 (LL, "123456") and field 60 (LLL, ten characters) come after the STAN.
BAD_PREFIXES = [
    pytest.param("ascii-binary-bitmap", b"06123456", b" 6123456", id="ascii LL space"),
    pytest.param("ascii-binary-bitmap", b"06123456", b"+6123456", id="ascii LL plus"),
    pytest.param("ascii-binary-bitmap", b"06123456", b"6 123456", id="ascii LL trailing space"),
    pytest.param("ascii-binary-bitmap", b"06123456", b"\t6123456", id="ascii LL tab"),
    pytest.param("ascii-binary-bitmap", b"0101234567890", b"1_01234567890", id="ascii LLL 1_0"),
    pytest.param("ascii-binary-bitmap", b"0101234567890", b"+101234567890", id="ascii LLL +10"),
    pytest.param("ascii-binary-bitmap", b"0101234567890", b"-00", id="ascii LLL -00 (empty)"),
    pytest.param(HEX, b"06123456", b" 6123456", id="hex LL space"),
    pytest.param(HEX, b"0101234567890", b" 101234567890", id="hex LLL space"),
    pytest.param(EBCDIC, "06123456".encode("cp500"), b"\x40\xf6" + "123456".encode("cp500"),
                 id="ebcdic LL 40F6"),
    pytest.param(EBCDIC, "06123456".encode("cp500"), b"\x4e\xf6" + "123456".encode("cp500"),
                 id="ebcdic LL plus"),
    pytest.param(EBCDIC, "06123456".encode("cp500"), b"\x41\xf6" + "123456".encode("cp500"),
                 id="ebcdic LL no-break space"),
    pytest.param(EBCDIC, "06123456".encode("cp500"), b"\x25\xf6" + "123456".encode("cp500"),
                 id="ebcdic LL line feed"),
    pytest.param(EBCDIC, "0101234567890".encode("cp500"),
                 b"\xf1\x6d\xf0" + "1234567890".encode("cp500"), id="ebcdic LLL 1_0"),
    # BCD prefixes were refused before (pyiso8583 reads them with int(hex, 10)), named as the
    # others now
    pytest.param(BCD, b"\x06\x12\x34\x56", b"\x0a\x12\x34\x56", id="bcd LL nibble A"),
]  # fmt: skip


def _field_of(good: bytes) -> str:
    return "60" if len(good) > 10 else "32"  # see BAD_PREFIXES


def _request_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every captured record as the text log format writes it (no escaping: a newline in a
    value would start a forged line)."""
    formatter = TextFormatter()
    return [formatter.format(record) for record in caplog.records]


@pytest.mark.parametrize(("dialect", "good", "bad"), BAD_PREFIXES)
async def test_a_length_prefix_that_is_not_digits_gets_30(
    dialect: str, good: bytes, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authhost")
    metrics = ServerMetrics()
    async with (
        running_server(config=server_config(dialect=dialect), metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0], dialect=dialect) as client,
    ):
        body = peer_encode(financial_fields("0200", "000301", **LLL_FIELD), dialect)
        assert body.count(good) == 1
        await client.send_raw(frame(body.replace(good, bad)))
        response = await client.receive()
        assert (response["t"], response["11"], response["39"]) == ("0210", "000301", "30")
        again = await client.request(financial_fields("0200", "000302", **LLL_FIELD))
        assert (again["11"], again["39"]) == ("000302", "00")  # the link lives on
    assert metrics.format_errors._value.get() == 1  # noqa: SLF001
    [answered] = [r for r in caplog.records if r.name == "authhost.requests"
                  and r.fields["stan"] == "000301"]  # type: ignore[attr-defined]  # fmt: skip
    detail = answered.fields["detail"]  # type: ignore[attr-defined]
    assert f"field {_field_of(good)}: length prefix is not digits" in detail


async def test_a_bad_length_prefix_before_the_stan_closes_the_link_naming_the_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Field 2 comes before field 11: with its length unreadable so is the STAN, and there is
    nothing to answer 30 to. The link closes, the log says which field, never the PAN."""
    caplog.set_level(logging.INFO, logger="authhost")
    short_pan = TEST_PAN[:7]  # a one-digit length, so that " 7" can stand for it
    async with (
        running_server() as server,
        SwitchClient.connect(server.addresses[0]) as bystander,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        body = peer_encode(
            financial_fields("0200", "000311", **{"2": short_pan}), "ascii-binary-bitmap"
        )
        good = b"07" + short_pan.encode()
        assert body.count(good) == 1
        await client.send_raw(frame(body.replace(good, b" 7" + short_pan.encode())))
        assert await client.closed_by_server()
        assert (await bystander.request(financial_fields("0200", "000312")))["39"] == "00"
    [closed] = [r for r in caplog.records if r.getMessage().startswith("unreadable message")]
    assert "field 2: length prefix is not digits" in closed.fields["error"]  # type: ignore[attr-defined]
    assert short_pan not in caplog.text


def _hex_bitmap_with_spaces(body: bytes, gap: bytes) -> bytes:
    """The 16-character primary bitmap rewritten as 14 hex digits and two ``gap``s: the same
    7 first bytes to bytes.fromhex, and the message's fields are all among their 56 bits."""
    text = body[4:20]
    assert text.endswith(b"00")
    return body[:4] + text[:4] + gap + text[4:8] + gap + text[8:14] + body[20:]


@pytest.mark.parametrize("gap", [b" ", b"\t"], ids=["space", "tab"])
async def test_a_hex_bitmap_with_whitespace_is_refused(
    gap: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Without its bitmap no field can be found, the STAN neither: the link closes (as for
    any other bitmap that is not hex), logged naming the bitmap; other links are served."""
    caplog.set_level(logging.INFO, logger="authhost")
    metrics = ServerMetrics()
    async with (
        running_server(config=server_config(dialect=HEX), metrics=metrics) as server,
        SwitchClient.connect(server.addresses[0], dialect=HEX) as bystander,
        SwitchClient.connect(server.addresses[0], dialect=HEX) as client,
    ):
        body = peer_encode(financial_fields("0200", "000321"), HEX)
        await client.send_raw(frame(_hex_bitmap_with_spaces(body, gap)))
        assert await client.closed_by_server()
        assert (await bystander.request(financial_fields("0200", "000322")))["39"] == "00"
    assert metrics.format_errors._value.get() == 1  # noqa: SLF001
    assert metrics.connections_closed.labels("format_error")._value.get() == 1  # noqa: SLF001
    [closed] = [r for r in caplog.records if r.getMessage().startswith("unreadable message")]
    assert "primary bitmap: not hex digits" in closed.fields["error"]  # type: ignore[attr-defined]


async def test_a_lower_case_hex_bitmap_is_read() -> None:
    """Hex digits in either case are hex (pyiso8583 and jPOS read both): not a leniency."""
    async with (
        running_server(config=server_config(dialect=HEX)) as server,
        SwitchClient.connect(server.addresses[0], dialect=HEX) as client,
    ):
        body = peer_encode(financial_fields("0200", "000331"), HEX)
        assert body[4:20] != body[4:20].lower()
        await client.send_raw(frame(body[:4] + body[4:20].lower() + body[20:]))
        response = await client.receive()
        assert (response["11"], response["39"]) == ("000331", "00")


# -- 0800 network management: every field it carries is checked like an authorisation's ---

NETWORK_CASES = [
    pytest.param("ascii-binary-bitmap", "201", {"15": "12\n1"}, id="cutover date with a newline"),
    pytest.param("ascii-binary-bitmap", "201", {"15": "1399"}, id="cutover date 13/99"),
    pytest.param("ascii-binary-bitmap", "201", {"15": "0230"}, id="cutover date 30 February"),
    pytest.param("ascii-binary-bitmap", "301", {"90": "A" * 42}, id="echo with field 90 letters"),
    pytest.param("ascii-binary-bitmap", "301", {"95": "X" * 42}, id="echo with field 95 letters"),
    pytest.param(EBCDIC, "201", {"15": "1 28"}, id="ebcdic cutover date with a space"),
    pytest.param(BCD, "201", {"15": "1A28"}, id="bcd cutover date with nibble A"),
    pytest.param(BCD, "301", {"90": "A" * 42}, id="bcd field 90 of nibbles A"),
]  # fmt: skip


@pytest.mark.parametrize(("dialect", "code", "extra"), NETWORK_CASES)
async def test_a_malformed_field_of_an_0800_gets_30_and_is_never_logged(
    dialect: str, code: str, extra: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authhost")
    async with (
        running_server(config=server_config(dialect=dialect)) as server,
        SwitchClient.connect(server.addresses[0], dialect=dialect) as client,
    ):
        response = await client.request({**network_fields(code, "000341"), **extra})
        assert (response["t"], response["11"], response["39"]) == ("0810", "000341", "30")
        assert response["70"] == code  # an 0810 says which network request it answers
        echo = await client.request(network_fields("301", "000342"))
        assert (echo["11"], echo["39"]) == ("000342", "00")  # the link lives on
    assert not [r for r in caplog.records if r.getMessage() == "cutover"]
    [value] = extra.values()
    assert not [line for line in _request_logs(caplog) if value in line]


async def test_an_0800_without_field_70_is_a_format_error() -> None:
    """Field 70 is what a network management request asks for: one without it is malformed
    (30), unlike one asking for a code the host does not serve (12); the link lives on."""
    async with running_server() as server, SwitchClient.connect(server.addresses[0]) as client:
        fields = {k: v for k, v in network_fields("301", "000361").items() if k != "70"}
        response = await client.request(fields)
        assert (response["t"], response["11"], response["39"]) == ("0810", "000361", "30")
        unknown = await client.request(network_fields("999", "000362"))
        assert (unknown["39"], unknown["70"]) == ("12", "999")
        echo = await client.request(network_fields("301", "000363"))
        assert echo["39"] == "00"


async def test_a_good_cutover_is_logged_with_its_checked_date(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="authhost")
    async with running_server() as server, SwitchClient.connect(server.addresses[0]) as client:
        response = await client.request({**network_fields("201", "000351"), "15": "0229"})
    assert (response["39"], response["70"]) == ("00", "201")
    [line] = [r for r in caplog.records if r.getMessage() == "cutover"]
    assert line.fields["business_date"] == "0229"  # type: ignore[attr-defined]


async def test_a_stan_that_is_not_digits_is_echoed_but_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The switch matches the 30 by its STAN, so it goes back as sent; the log line, which
    only checked values may reach, has none."""
    caplog.set_level(logging.INFO, logger="authhost")
    forged = "12\n456"
    async with running_server() as server, SwitchClient.connect(server.addresses[0]) as client:
        response = await client.request(financial_fields("0200", "000361", **{"11": forged}))
        assert (response["11"], response["39"]) == (forged, "30")
    [answered] = [r for r in caplog.records if r.name == "authhost.requests"]
    assert answered.fields["stan"] is None  # type: ignore[attr-defined]
    assert not [line for line in _request_logs(caplog) if forged in line]
