"""The admin API over TLS: with a certificate and key it speaks HTTPS only (a client that
trusts the certificate is served; plain HTTP gets no answer); a certificate that cannot be
loaded stops the start with a configuration error."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
import trio
from conftest import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_admin_support import AUDITOR_TOKEN, OPERATOR_TOKEN
from test_e2e_auth import start_host, store_url  # noqa: F401 - fixture

from authhost.admin.http import tls_context
from authhost.config import AdminConfig
from authhost.tls import TlsConfigError


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authhost admin test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "admin.crt", tmp_path / "admin.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)  # a private key: its owner's alone, or refused
    return cert_file, key_file


async def https_get(port: int, path: str, cafile: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=context)
    async with stream:
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {AUDITOR_TOKEN}"
            "\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := await stream.receive_some(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_the_admin_api_speaks_https_only_when_given_a_certificate(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    cert, key = self_signed(tmp_path)
    port = free_port()
    tokens = f"{OPERATOR_TOKEN}:operator,{AUDITOR_TOKEN}:auditor"
    admin = AdminConfig(port=port, tokens=tokens, tls_cert_file=str(cert), tls_key_file=str(key))
    await start_host(nursery, tmp_path, store_url, admin=admin)
    answer = await https_get(port, "/v1/cards?limit=1", cert)
    assert answer.startswith(b"HTTP/1.1 200") and b'"cards"' in answer

    plain = await trio.open_tcp_stream("127.0.0.1", port)  # a client speaking plain HTTP
    async with plain:
        await plain.send_all(b"GET /v1/cards HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(10):
            try:
                reply = await plain.receive_some(65536)
            except trio.BrokenResourceError:
                reply = b""
    assert not reply.startswith(b"HTTP/1.1 200")


def test_a_certificate_that_cannot_be_loaded_is_a_configuration_error(tmp_path) -> None:
    cert, key = self_signed(tmp_path)
    with pytest.raises(TlsConfigError, match="go together"):
        tls_context(AdminConfig(tls_cert_file=str(cert)))
    with pytest.raises(TlsConfigError, match="cannot be loaded"):
        tls_context(AdminConfig(tls_cert_file=str(key), tls_key_file=str(cert)))
    assert tls_context(AdminConfig()) is None
    assert tls_context(AdminConfig(tls_cert_file=str(cert), tls_key_file=str(key))) is not None
