"""Who may connect: a listener's allow_from closes connections from other addresses before
reading a byte, max_connections closes those beyond the limit; both are counted and the
admitted connections are served as before. A bad network in the config is refused at start."""

from __future__ import annotations

import pytest
import trio
from test_server_support import SwitchClient, financial_fields, running_server, server_config

from authhost.config import Config, ListenerConfig, ServerConfig
from authhost.server.admission import Admission, AdmissionError
from authhost.server.metrics import ServerMetrics
from authhost.server.server import ServerConfigError, check_config


async def closed_by_server(address: tuple[str, int]) -> bool:
    """The server closes the connection without answering a request sent on it (a reset
    may even reach the client while it connects)."""
    try:
        stream = await trio.open_tcp_stream(*address)
    except OSError:
        return True
    client = SwitchClient(stream)
    try:
        await client.send(financial_fields("0100", "000001"))
        with trio.fail_after(5):
            return await stream.receive_some(4096) == b""
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return True  # reset: closed before it could even send
    finally:
        await stream.aclose()


async def test_a_listener_admits_only_its_switches_addresses() -> None:
    metrics = ServerMetrics()
    others = ListenerConfig(port=0, allow_from=["10.0.0.0/8", "192.0.2.7"])
    ours = ListenerConfig(port=0, allow_from=["127.0.0.0/8"])
    base = server_config()
    config = Config(server=base.server, listeners=[others, ours])
    async with running_server(config=config, metrics=metrics) as server:
        default, elsewhere, loopback = server.addresses
        assert await closed_by_server(elsewhere)
        async with SwitchClient.connect(loopback) as client:
            assert (await client.request(financial_fields("0100", "000002")))["39"] == "00"
        async with SwitchClient.connect(default) as client:  # no allow_from: anyone
            assert (await client.request(financial_fields("0100", "000003")))["39"] == "00"
        refused = metrics.connections_refused.labels("not_allowed")._value.get()
        assert refused == 1


async def test_connections_beyond_the_limit_are_closed_and_the_rest_served() -> None:
    metrics = ServerMetrics()
    config = server_config(max_connections=2)
    async with running_server(config=config, metrics=metrics) as server:
        (address,) = server.addresses
        async with SwitchClient.connect(address) as first, SwitchClient.connect(address) as second:
            assert (await first.request(financial_fields("0100", "000004")))["39"] == "00"
            assert (await second.request(financial_fields("0100", "000005")))["39"] == "00"
            assert await closed_by_server(address)  # the third
            assert (await first.request(financial_fields("0100", "000006")))["39"] == "00"
        assert metrics.connections_refused.labels("too_many")._value.get() == 1
        for _ in range(100):  # the two closed: room again
            if metrics.connection_count == 0:
                break
            await trio.sleep(0.01)
        async with SwitchClient.connect(address) as again:
            assert (await again.request(financial_fields("0100", "000007")))["39"] == "00"


def test_a_bad_network_is_refused_at_start_naming_the_listener() -> None:
    config = Config(server=ServerConfig(port=0, allow_from=["10.0.0.0/33"]))
    with pytest.raises(ServerConfigError, match="10.0.0.0/33"):
        check_config(config)
    with pytest.raises(AdmissionError, match="max_connections"):
        Admission(max_connections=-1)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("10.1.2.3", True), ("192.0.2.7", True), ("192.0.2.8", False), ("::ffff:10.9.9.9", True),
     ("2001:db8::1", True), ("2001:db9::1", False), ("fe80::1%eth0", False), ("", False)],
)  # fmt: skip
def test_addresses_are_matched_against_networks(host: str, allowed: bool) -> None:
    admission = Admission(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])
    assert (admission.refusal(host) is None) is allowed


async def test_a_peer_dripping_bytes_without_a_whole_frame_is_closed_as_idle() -> None:
    """Idle means no whole frame: a length header and then a byte every half second (a frame
    never completed) does not hold the link past idle_timeout_s."""
    config = server_config(idle_timeout_s=1.0)
    async with running_server(config=config) as server:
        (address,) = server.addresses
        stream = await trio.open_tcp_stream(*address)
        closed = False
        with trio.move_on_after(10):  # far past the timeout: a link still open then is a bug
            await stream.send_all(b"\x00\x64")  # a 100-byte frame announced
            try:
                while True:
                    await stream.send_all(b"0")
                    with trio.move_on_after(0.5):
                        if await stream.receive_some(4096) == b"":
                            closed = True
                            break
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                closed = True
        await stream.aclose()
        assert closed


async def test_keep_alives_alone_keep_a_link_open_past_the_idle_timeout() -> None:
    """Some switches keep an idle link up with zero-length frames only: each one is a sign of
    life (they used to be skipped without resetting the idle clock, so such a switch was
    closed as idle however often it sent them)."""
    metrics = ServerMetrics()
    config = server_config(idle_timeout_s=1.0)
    async with running_server(config=config, metrics=metrics) as server:
        (address,) = server.addresses
        async with SwitchClient.connect(address) as switch:
            for _ in range(15):  # 3 s in all, a keep-alive every 0.2 s: never 1 s without one
                await switch.send_raw(b"\x00\x00")
                await trio.sleep(0.2)
            response = await switch.request(financial_fields("0100", "000031"))
            assert response["39"] == "00"  # still open, and keep-alives are never answered
            assert response["11"] == "000031"
        assert metrics.connections_closed.labels("idle")._value.get() == 0


async def test_a_link_without_frames_for_the_idle_timeout_is_closed() -> None:
    """A switch that keeps its echo tests going keeps its link; one that goes silent (its end
    gone without a FIN) is closed after idle_timeout_s, and counted."""
    metrics = ServerMetrics()
    config = server_config(idle_timeout_s=2.0)
    async with running_server(config=config, metrics=metrics) as server:
        (address,) = server.addresses
        async with SwitchClient.connect(address) as busy:
            for n in range(6):  # 3 s in all, a frame every half second: never 2 s without one
                assert (await busy.request(financial_fields("0100", f"{n + 10:06d}")))["39"] == "00"
                await trio.sleep(0.5)
            async with SwitchClient.connect(address) as silent:
                assert (await silent.request(financial_fields("0100", "000020")))["39"] == "00"
                with trio.fail_after(10):
                    assert await silent.stream.receive_some(4096) == b""  # closed by the server
        # the silent one, and the busy one too once it went quiet meanwhile
        assert metrics.connections_closed.labels("idle")._value.get() == 2
    with pytest.raises(ServerConfigError, match="idle_timeout_s"):
        check_config(server_config(idle_timeout_s=-1))
