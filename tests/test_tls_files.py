"""TLS files that cannot work are refused at start-up naming the file and why (found by a
review): a missing file used to be "[Errno 2] No such file or directory" without saying which
of the three, and an expired certificate loaded and let the listener start and serve no one
(every client refuses it). Real PEM files, generated here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authhost.tls import TlsConfigError, server_context


def _certificate(
    tmp_path: Path, name: str, start: dt.datetime, end: dt.datetime
) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"authhost test {name}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)  # a private key: its owner's alone, or refused
    return str(cert_file), str(key_file)


NOW = dt.datetime.now(dt.UTC)


def test_an_expired_certificate_is_refused_with_its_end_date(tmp_path: Path) -> None:
    cert, key = _certificate(
        tmp_path, "old", NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1)
    )
    with pytest.raises(TlsConfigError, match=r"old\.crt' expired on"):
        server_context(cert, key, where="listener 127.0.0.1:8583: ")


def test_a_certificate_not_yet_valid_is_refused(tmp_path: Path) -> None:
    cert, key = _certificate(
        tmp_path, "new", NOW + dt.timedelta(days=2), NOW + dt.timedelta(days=9)
    )
    with pytest.raises(TlsConfigError, match="is not valid before"):
        server_context(cert, key)


def test_a_valid_certificate_loads(tmp_path: Path) -> None:
    cert, key = _certificate(
        tmp_path, "ok", NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=1)
    )
    assert server_context(cert, key, client_ca_file=cert) is not None


@pytest.mark.parametrize("which", ["cert", "key", "ca"])
@pytest.mark.parametrize("instead", ["missing", "a directory"])
def test_a_tls_file_that_is_not_there_is_named(tmp_path: Path, which: str, instead: str) -> None:
    cert, key = _certificate(
        tmp_path, "ok", NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=1)
    )
    bad = tmp_path / "bad.pem"
    if instead == "a directory":
        bad.mkdir()
    files = {"cert": cert, "key": key, "ca": cert} | {which: str(bad)}
    key_name = {"cert": "tls_cert_file", "key": "tls_key_file", "ca": "tls_client_ca_file"}[which]
    reason = "does not exist" if instead == "missing" else "is not a file"
    with pytest.raises(TlsConfigError, match=f"{key_name} '.*bad.pem' {reason}"):
        server_context(files["cert"], files["key"], files["ca"])


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_private_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    """config.py says the key is readable by this user only; as the master key file, one
    that group or others can read has leaked and the listener must not start on it."""
    cert, key = _certificate(
        tmp_path, "host", NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=1)
    )
    Path(key).chmod(mode)
    with pytest.raises(TlsConfigError, match=f"mode {mode:04o}.*chmod 600"):
        server_context(cert, key, where="admin.")
    Path(key).chmod(0o600)
    assert server_context(cert, key, where="admin.") is not None
