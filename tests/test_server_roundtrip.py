"""Round trips over real TCP: every message class, both dialects, both framings, TPDU."""

from __future__ import annotations

import iso8583
import pytest
from test_server_support import (
    BINARY_BITMAP_SPEC,
    TEST_PAN,
    SwitchClient,
    financial_fields,
    network_fields,
    running_server,
    server_config,
)

from authhost.auth.decision import Decision
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest, MessageClass

WIRES = [
    pytest.param("ascii-binary-bitmap", "binary2", id="binary-bitmap/binary2"),
    pytest.param("ascii-binary-bitmap", "ascii4", id="binary-bitmap/ascii4"),
    pytest.param("ascii-hex-bitmap", "binary2", id="hex-bitmap/binary2"),
    pytest.param("ascii-hex-bitmap", "ascii4", id="hex-bitmap/ascii4"),
    pytest.param("bcd-binary-bitmap", "binary2", id="bcd/binary2"),
]

FINANCIAL = [
    pytest.param("0100", MessageClass.AUTHORISATION, id="0100 authorisation"),
    pytest.param("0200", MessageClass.FINANCIAL, id="0200 financial"),
    pytest.param("0120", MessageClass.AUTHORISATION_ADVICE, id="0120 auth advice"),
    pytest.param("0220", MessageClass.FINANCIAL_ADVICE, id="0220 financial advice"),
    pytest.param("0400", MessageClass.REVERSAL, id="0400 reversal"),
    pytest.param("0420", MessageClass.REVERSAL_ADVICE, id="0420 reversal advice"),
]


class Recorder:
    """A handler that approves and remembers what the server handed it."""

    def __init__(self) -> None:
        self.seen: list[tuple[AuthRequest, float]] = []

    async def __call__(self, request: AuthRequest, received_at: float) -> Decision:
        self.seen.append((request, received_at))
        return Decision(ResponseCode.APPROVED, approval_code="A1B2C3")


@pytest.mark.parametrize(("dialect", "framing"), WIRES)
async def test_every_message_class_round_trips(dialect: str, framing: str) -> None:
    recorder = Recorder()
    config = server_config(dialect=dialect, framing=framing)
    async with (
        running_server(recorder, config) as server,
        SwitchClient.connect(server.addresses[0], dialect=dialect, framing=framing) as client,
    ):
        for stan, (mti, message_class) in enumerate((p.values for p in FINANCIAL), start=100):
            request = financial_fields(mti, f"{stan:06d}")
            response = await client.request(request)
            assert response["t"] == mti[:2] + str(int(mti[2]) + 1) + mti[3]
            assert response["39"] == "00"
            assert response["11"] == request["11"]
            assert response["37"] == request["37"]
            assert response["41"] == request["41"]
            assert "2" not in response, "the PAN must not travel back"
            seen, received_at = recorder.seen[-1]
            assert seen.message_class is message_class
            assert seen.pan == TEST_PAN
            assert seen.amount_minor == 1000
            assert received_at > 1_600_000_000  # wall-clock seconds since the epoch

        for stan, code in enumerate(("001", "301", "201", "002"), start=200):
            response = await client.request(network_fields(code, f"{stan:06d}"))
            assert (response["t"], response["39"], response["70"]) == ("0810", "00", code)
            assert response["11"] == f"{stan:06d}"
    assert len(recorder.seen) == len(FINANCIAL), "0800s are answered by the server itself"


async def test_approval_code_only_on_approval() -> None:
    async def decline(request: AuthRequest, received_at: float) -> Decision:
        return Decision(ResponseCode.INSUFFICIENT_FUNDS, reason_codes=["funds"])

    async with (
        running_server(decline) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        response = await client.request(financial_fields("0100", "000001"))
    assert response["39"] == "51"
    assert "38" not in response


async def test_unknown_network_code_is_invalid_transaction() -> None:
    async with running_server() as server, SwitchClient.connect(server.addresses[0]) as client:
        response = await client.request(network_fields("999", "000007"))
    assert (response["t"], response["39"]) == ("0810", "12")


async def test_a_cutover_is_answered_and_logged_with_its_business_date(caplog) -> None:
    """The switch's daily cutover (0800, field 70 = 201, field 15 the new settlement date) is
    acknowledged, not refused with 12 as an unknown network code, and logged for operations."""
    caplog.set_level("INFO", logger="authhost.server")
    async with running_server() as server, SwitchClient.connect(server.addresses[0]) as client:
        response = await client.request({**network_fields("201", "000031"), "15": "1128"})
    assert (response["t"], response["39"], response["70"]) == ("0810", "00", "201")
    [line] = [r for r in caplog.records if r.getMessage() == "cutover"]
    assert line.fields["business_date"] == "1128"  # type: ignore[attr-defined]


async def test_unknown_mti_gets_its_response_class_with_12() -> None:
    recorder = Recorder()
    async with (
        running_server(recorder) as server,
        SwitchClient.connect(server.addresses[0]) as client,
    ):
        response = await client.request(financial_fields("0600", "000008"))
    assert (response["t"], response["39"], response["11"]) == ("0610", "12", "000008")
    assert recorder.seen == []


async def test_tpdu_is_accepted_and_returned() -> None:
    tpdu = bytes.fromhex("6000030000")
    config = server_config(tpdu=True)
    async with (
        running_server(config=config) as server,
        SwitchClient.connect(server.addresses[0], tpdu=tpdu) as client,
    ):
        await client.send(financial_fields("0100", "000009"))
        client.tpdu = None  # read the raw payload, TPDU included
        payload = await client.receive_body()
    assert payload is not None
    assert payload[:5] == bytes.fromhex("6000000003"), "TPDU addresses swapped"
    response, _ = iso8583.decode(payload[5:], BINARY_BITMAP_SPEC)
    assert (response["t"], response["39"]) == ("0110", "00")


async def test_several_listeners_with_their_own_dialects() -> None:
    from authhost.config import ListenerConfig

    base = server_config()
    extra = ListenerConfig(port=0, dialect="ascii-hex-bitmap", framing="ascii4")
    config = type(base)(server=base.server, listeners=[extra])
    async with running_server(config=config) as server:
        first, second = server.addresses
        async with SwitchClient.connect(first) as client:
            assert (await client.request(financial_fields("0100", "000010")))["39"] == "00"
        async with SwitchClient.connect(
            second, dialect="ascii-hex-bitmap", framing="ascii4"
        ) as client:
            assert (await client.request(financial_fields("0100", "000011")))["39"] == "00"


@pytest.mark.parametrize(("dialect", "framing"), WIRES)
async def test_every_answer_goes_back_with_its_institution_codes(
    dialect: str, framing: str
) -> None:
    """A switch that forwarded a request (field 33, the forwarding institution) routes the
    answer back by 32 and 33: every answer, a format error's and an 0810 included, carries
    them as the request did, and an 0810 carries the network code (70) it answers."""
    route = {"32": "00123456", "33": "6543210"}  # odd length: BCD pads a nibble
    config = server_config(dialect=dialect, framing=framing)
    async with (
        running_server(config=config) as server,
        SwitchClient.connect(server.addresses[0], dialect=dialect, framing=framing) as client,
    ):
        requests = [financial_fields(mti, f"{300 + i:06d}", **route) for i, mti in enumerate(
            ("0100", "0101", "0120", "0200", "0220", "0400", "0421", "0600"))]  # fmt: skip
        requests.append(financial_fields("0200", "000320", **route, **{"15": "1332"}))  # 30
        for code in ("001", "301", "002", "999"):
            requests.append({**network_fields(code, f"000{code}"), **route})
        requests.append({**network_fields("301", "000330"), **route, "15": "0230"})  # 30
        for request in requests:
            response = await client.request(request)
            assert response["11"] == request["11"]
            assert (response["32"], response["33"]) == (route["32"], route["33"]), request["t"]
            if request["t"] == "0800":
                assert response["70"] == request["70"]


@pytest.mark.parametrize(("dialect", "framing"), WIRES)
async def test_a_reversal_answer_echoes_the_original_it_names(dialect: str, framing: str) -> None:
    """Field 90 (original data elements) is a mandatory echo in the 0410 and 0430
    (Mastercard "ME"): the switch matches the answer to the original by it. A 30 answer
    echoes it too, unless it is the malformed field: the other echoes still go back."""
    config = server_config(dialect=dialect, framing=framing)
    async with (
        running_server(config=config) as server,
        SwitchClient.connect(server.addresses[0], dialect=dialect, framing=framing) as client,
    ):
        for stan, mti in enumerate(("0400", "0401", "0420", "0421"), start=400):
            request = financial_fields(mti, f"{stan:06d}")
            response = await client.request(request)
            assert (response["39"], response["90"]) == ("00", request["90"]), mti
        broken = financial_fields("0400", "000410", **{"15": "1332"})  # not a date: 30
        response = await client.request(broken)
        assert (response["39"], response["90"]) == ("30", broken["90"])
        unreadable = financial_fields("0400", "000411", **{"90": "A" * 42})
        response = await client.request(unreadable)
        assert (response["t"], response["39"], response["37"]) == ("0410", "30", "000000000411")
        assert "90" not in response
