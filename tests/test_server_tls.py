"""An ISO 8583 listener over TLS: with a certificate it speaks TLS only; with a client CA, a
switch must present a certificate that CA signed (mutual TLS). A client without one, a
rogue certificate or plain TCP gets no answer and is counted; admitted links are served."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_server_support import SwitchClient, financial_fields, running_server, server_config

from authhost.server.metrics import ServerMetrics
from authhost.server.server import ServerConfigError, check_config


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: str, key, issuer: str, issuer_key, *, ca: bool = False, ip: bool = False):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert, key=None) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )  # fmt: skip
        )
        path.with_suffix(".key").chmod(0o600)  # a private key: its owner's alone, or refused
    return path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, the host's certificate and a switch's, both signed by it, and a rogue switch."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test switch CA", ca_key, "test switch CA", ca_key, ca=True)
    files = {"ca": _write(tmp_path / "ca.pem", ca)}
    for name, issuer, issuer_key in (("host", "test switch CA", ca_key),
                                     ("switch", "test switch CA", ca_key),
                                     ("rogue", "rogue", None)):  # fmt: skip
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(name, key, issuer, issuer_key or key, ip=name == "host")
        files[name] = _write(tmp_path / f"{name}.pem", cert, key)
    return files


def client_context(pki: dict[str, Path], who: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if who is not None:
        context.load_cert_chain(str(pki[who]), str(pki[who].with_suffix(".key")))
    return context


async def answered(address: tuple[str, int], context: ssl.SSLContext | None) -> bool:
    """A request on a new link (TLS with ``context``, else plain TCP) gets its answer."""
    try:
        if context is None:
            stream: trio.abc.Stream = await trio.open_tcp_stream(*address)
        else:
            stream = await trio.open_ssl_over_tcp_stream(*address, ssl_context=context)
        async with stream:
            with trio.fail_after(10):
                return (await SwitchClient(stream).request(financial_fields("0100", "000042")))[
                    "39"
                ] == "00"
    except (
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        OSError,
        ssl.SSLError,
        AssertionError,
    ):  # fmt: skip  (AssertionError: the client saw the link closed)
        return False


async def test_a_listener_over_mutual_tls_serves_only_the_switch_it_trusts(pki) -> None:
    metrics = ServerMetrics()
    config = server_config(
        tls_cert_file=str(pki["host"]),
        tls_key_file=str(pki["host"].with_suffix(".key")),
        tls_client_ca_file=str(pki["ca"]),
    )
    async with running_server(config=config, metrics=metrics) as server:
        (address,) = server.addresses
        assert await answered(address, client_context(pki, "switch"))
        assert await answered(address, client_context(pki, "switch"))  # and again
        assert not await answered(address, client_context(pki, None))  # no certificate
        assert not await answered(address, client_context(pki, "rogue"))  # not the CA's
        assert not await answered(address, None)  # plain TCP
        assert await answered(address, client_context(pki, "switch"))  # still serving
        for _ in range(100):
            if metrics.connections_refused.labels("tls")._value.get() >= 3:
                break
            await trio.sleep(0.05)
        assert metrics.connections_refused.labels("tls")._value.get() == 3


def test_tls_settings_that_cannot_work_are_refused_at_start(pki) -> None:
    host, key = str(pki["host"]), str(pki["host"].with_suffix(".key"))
    for settings, message in (
        ({"tls_cert_file": host}, "go together"),
        ({"tls_client_ca_file": str(pki["ca"])}, "needs tls_cert_file"),
        ({"tls_cert_file": key, "tls_key_file": host}, "cannot be loaded"),
    ):
        with pytest.raises(ServerConfigError, match=message):
            check_config(server_config(**settings))
    check_config(server_config(tls_cert_file=host, tls_key_file=key))


async def test_the_simulator_talks_to_a_tls_listener(pki) -> None:
    """authhost-sim's client (send, terminal) with --tls-ca, --tls-cert and --tls-key."""
    from simulator.client import ClientError, IsoClient, Link

    config = server_config(
        tls_cert_file=str(pki["host"]),
        tls_key_file=str(pki["host"].with_suffix(".key")),
        tls_client_ca_file=str(pki["ca"]),
    )
    async with running_server(config=config) as server:
        (address,) = server.addresses
        switch = str(pki["switch"])
        link = Link(*address, tls_ca=str(pki["ca"]), tls_cert=switch,
                    tls_key=str(pki["switch"].with_suffix(".key")))  # fmt: skip
        async with await IsoClient.connect(link) as client:
            assert (await client.exchange(financial_fields("0100", "000077")))["39"] == "00"
        with pytest.raises(ClientError, match=r"speaks TLS \(give its CA: --tls-ca"):  # plain TCP
            async with await IsoClient.connect(Link(*address, timeout=2)) as plain:
                await plain.exchange(financial_fields("0100", "000078"))
        with pytest.raises(ClientError, match="need --tls-ca"):
            await IsoClient.connect(Link(*address, tls_cert=switch))


async def test_a_client_stuck_in_its_handshake_does_not_hold_up_a_stop(pki) -> None:
    """A graceful stop waits for the requests in flight, not for a client that connected and
    never completed its TLS handshake (it has sent no request): that used to hold the stop
    for the 10 s handshake timeout (a load balancer's health check, a port scan)."""
    config = server_config(
        tls_cert_file=str(pki["host"]),
        tls_key_file=str(pki["host"].with_suffix(".key")),
        shutdown_grace_s=60,
    )
    async with running_server(config=config) as server:
        (address,) = server.addresses
        silent = await trio.open_tcp_stream(*address)  # no ClientHello, ever
        with trio.fail_after(5):
            while server._admissions[0].open == 0:  # noqa: SLF001 - accepted, in its handshake
                await trio.sleep(0.01)
        server.shutdown()
        with trio.fail_after(5):  # far below the handshake's 10 s and the grace's 60 s
            await server.stopped.wait()
            assert await silent.receive_some(1024) == b""  # closed, nothing sent
        await silent.aclose()


async def test_an_unreadable_frame_ends_a_tls_link_with_a_clean_tls_close(pki) -> None:
    """A switch's TLS stack tells a close_notify (the host ended the link) from a bare TCP
    close (a truncation it must treat as an attack or a fault): the host sends close_notify."""
    config = server_config(
        tls_cert_file=str(pki["host"]), tls_key_file=str(pki["host"].with_suffix(".key"))
    )
    async with running_server(config=config) as server:
        context = client_context(pki, None)
        stream = await trio.open_ssl_over_tcp_stream(*server.addresses[0], ssl_context=context)
        async with stream:
            await stream.send_all(b"\x00\x0b\xff\xfe\x00\x01garbage")  # no MTI: unanswerable
            with trio.fail_after(10):
                assert await stream.receive_some(1024) == b""  # BrokenResourceError if unclean
        assert await answered(server.addresses[0], context)  # the listener still serves


async def test_the_simulator_says_why_the_hosts_certificate_was_refused(pki) -> None:
    """A host certificate that does not name the address (no subjectAltName, as
    ``openssl req -x509 -subj /CN=127.0.0.1`` makes) or a CA that did not sign it: the
    simulator said "cannot connect to 127.0.0.1:PORT:  (is authhost serve running there?"
    with nothing after the colon, while the server ran (found following docs/server.md)."""
    from simulator.client import ClientError, IsoClient, Link

    config = server_config(
        tls_cert_file=str(pki["rogue"]), tls_key_file=str(pki["rogue"].with_suffix(".key"))
    )
    async with running_server(config=config) as server:
        (address,) = server.addresses
        with pytest.raises(ClientError, match="the host's certificate was refused: .*--tls-ca"):
            await IsoClient.connect(Link(*address, tls_ca=str(pki["ca"]), timeout=5))
