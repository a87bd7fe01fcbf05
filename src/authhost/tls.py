"""TLS for the host's listeners: the admin API and the switches' ISO 8583 links.

Card numbers travel on both (the ISO 8583 requests, the admin API's searches and compromise
alerts); over a network that is not private they must be encrypted (PCI DSS 4.2). A listener
given a certificate and key speaks TLS 1.2 and above only; given a CA as well, it asks every
client for a certificate signed by that CA (mutual TLS: the switch proves who it is, which an
address alone does not).
"""

from __future__ import annotations

import ssl


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
    try:
        context.load_cert_chain(cert_file, key_file)
        if client_ca_file:
            context.load_verify_locations(cafile=client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{where}TLS certificate, key or CA cannot be loaded: {exc}") from None
    return context
