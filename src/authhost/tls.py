"""TLS for the host's listeners: the admin API and the switches' ISO 8583 links.

Card numbers travel on both (the ISO 8583 requests, the admin API's searches and compromise
alerts); over a network that is not private they must be encrypted (PCI DSS 4.2). A listener
given a certificate and key speaks TLS 1.2 and above only; given a CA as well, it asks every
client for a certificate signed by that CA (mutual TLS: the switch proves who it is, which an
address alone does not).
"""

from __future__ import annotations

import datetime
import os
import ssl

from authhost.private_files import open_to_others


class TlsConfigError(ValueError):
    """A certificate, key or CA that cannot be used; the message names the keys."""


def server_context(
    cert_file: str, key_file: str, client_ca_file: str = "", where: str = ""
) -> ssl.SSLContext | None:
    """The server side's TLS context, or None for plain TCP (no certificate nor key)."""
    if not (cert_file or key_file):
        if client_ca_file:
            raise TlsConfigError(f"{where}tls_client_ca_file needs tls_cert_file and tls_key_file")
        return None
    if not (cert_file and key_file):
        raise TlsConfigError(f"{where}tls_cert_file and tls_key_file go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for key, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file),
                      ("tls_client_ca_file", client_ca_file)):  # fmt: skip
        # ssl's own errors say "No such file or directory" without saying which file
        if path and not os.path.isfile(path):
            reason = "is not a file" if os.path.exists(path) else "does not exist"
            raise TlsConfigError(f"{where}{key} {path!r} {reason}")
    try:
        context.load_cert_chain(cert_file, key_file)
        if client_ca_file:
            context.load_verify_locations(cafile=client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"{where}TLS certificate, key or CA cannot be loaded ({cert_file}, {key_file}"
            f"{', ' + client_ca_file if client_ca_file else ''}): {exc}"
        ) from None
    _refuse_shared_key(key_file, where)
    _refuse_expired(cert_file, where)
    return context


def _refuse_shared_key(key_file: str, where: str) -> None:
    """The private key file readable by group or others has leaked the key already (anyone
    on the machine can then pose as this host), as the master key file would: refused at
    start, by the same rule (a file of ours ours alone; one of another user, root, may be
    open to its group, through which the service reads it, never to others)."""
    if (mode := open_to_others(os.stat(key_file))) is not None:
        raise TlsConfigError(
            f"{where}tls_key_file {key_file!r} is open to group or others (mode {mode:04o}); "
            f"it must be readable by its owner only: chmod 600 {key_file}"
        )


def _refuse_expired(cert_file: str, where: str) -> None:
    """A certificate past its end (or before its start) loads, and then every client refuses
    the handshake: the listener would start and serve no one. Refused at start-up instead."""
    from cryptography import x509

    try:
        with open(cert_file, "rb") as file:
            certificate = x509.load_pem_x509_certificates(file.read())[0]
    except (OSError, ValueError):
        return  # ssl loaded it; a form cryptography does not read is left to the handshake
    now = datetime.datetime.now(datetime.UTC)
    if now > certificate.not_valid_after_utc:
        raise TlsConfigError(
            f"{where}tls_cert_file {cert_file!r} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: clients refuse it"
        )
    if now < certificate.not_valid_before_utc:
        raise TlsConfigError(
            f"{where}tls_cert_file {cert_file!r} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: clients refuse it"
        )
