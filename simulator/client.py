"""A plain ISO 8583 client for people: send one request, wait for its answer (trio).

The load generator has its own fast path; this one decodes every answer in full, for
``authhost-sim send``, the interactive terminal and traffic replays.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import trio

from authhost.iso.codec import decode_fields, encode_request
from authhost.iso.dialects import Dialect, get_dialect
from authhost.iso.framing import FrameDecoder, FrameError, Framing, encode_frame
from authhost.iso.macs import MacPlacementError, split_mac
from authhost.security.mac import retail_mac


class ClientError(Exception):
    """The host could not be reached or did not answer properly (message is for a person)."""


@dataclass(frozen=True, slots=True)
class Link:
    """Where the host is and how it frames and encodes messages."""

    host: str = "127.0.0.1"
    port: int = 8583
    dialect: str = "ascii-binary-bitmap"
    framing: str = "binary2"
    tpdu: bool = False
    timeout: float = 5.0
    # TLS to a listener that speaks it: the CA that signed the host's certificate, and the
    # switch's own certificate and key for a listener that asks for one (mutual TLS)
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # the link's clear test MAC key (a require_mac listener): requests carry its MAC in
    # field 64 (128 with a secondary bitmap), as the listener checks them
    mak: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError("--port is 1 to 65535")
        if self.mak and len(self.mak) != 16:
            raise ValueError("--mak is a double-length TDES key: 32 hex digits")
        if not 0 < self.timeout < math.inf:  # also refuses NaN
            raise ValueError("--timeout is a number of seconds above 0")

    def make_dialect(self) -> Dialect:
        return get_dialect(self.dialect)

    def make_framing(self) -> Framing:
        return Framing(header=self.framing, tpdu=self.tpdu)

    def tls_context(self) -> ssl.SSLContext | None:
        """The client's TLS context, or None for plain TCP (no --tls-ca)."""
        if not self.tls_ca:
            if self.tls_cert or self.tls_key:
                raise ValueError("--tls-cert and --tls-key need --tls-ca (the host's CA)")
            return None
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert or self.tls_key:
                context.load_cert_chain(self.tls_cert, self.tls_key or None)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"TLS files cannot be loaded: {error}") from None
        return context


def _cannot_connect(link: Link, error: BaseException) -> str:
    """Why a connection failed, in words: a TLS handshake's failure comes wrapped in a
    ``BrokenResourceError`` whose own text is empty ("cannot connect to HOST:PORT:  (is
    authhost serve running there?" while it was, its certificate refused)."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"cannot connect to {link.host}:{link.port}: the host's certificate was refused: "
            f"{cause.verify_message or cause} (--tls-ca must be the CA that signed it, and the "
            "certificate must name the address connected to in its subjectAltName)"
        )
    said = str(error) or (str(cause) if cause is not None else "") or type(error).__name__
    return (
        f"cannot connect to {link.host}:{link.port}: {said} (is authhost serve running there? "
        "its log's 'listening on' line names the address: --host, --port)"
    )


class IsoClient:
    """One TCP connection to the host; ``exchange`` sends a request and returns its answer."""

    def __init__(self, stream: trio.abc.Stream, link: Link) -> None:
        self._stream = stream
        self.link = link
        self.dialect = link.make_dialect()
        self._framing = link.make_framing()
        self._decoder = FrameDecoder(self._framing)
        # with --mak: whether the last answer's MAC verified under the link's key, as a
        # switch checks it (None without a key)
        self.answer_mac_ok: bool | None = None

    @classmethod
    async def connect(cls, link: Link) -> IsoClient:
        try:
            context = link.tls_context()
            with trio.fail_after(link.timeout):
                if context is None:
                    stream: trio.abc.Stream = await trio.open_tcp_stream(link.host, link.port)
                else:
                    stream = await trio.open_ssl_over_tcp_stream(
                        link.host, link.port, ssl_context=context
                    )
                    await stream.do_handshake()
        except ValueError as error:
            raise ClientError(str(error)) from None
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as error:
            raise ClientError(_cannot_connect(link, error)) from None
        return cls(stream, link)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> IsoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def encode(self, fields: Mapping[str, str | bytes]) -> bytes:
        mak = self.link.mak
        if not mak:
            return encode_request(fields, self.dialect)
        return encode_request(fields, self.dialect, lambda data: retail_mac(mak, data))

    async def exchange(self, fields: Mapping[str, str | bytes]) -> dict[str, str]:
        """Send ``fields``; return the decoded answer with the same STAN (and RRN)."""
        body = self.encode(fields)
        try:
            await self._stream.send_all(encode_frame(body, self._framing))
            with trio.fail_after(self.link.timeout):
                while True:
                    answer = await self._next_message()
                    if answer.get("11") == fields.get("11") and answer.get("37") == fields.get(
                        "37"
                    ):
                        return answer
        except trio.TooSlowError:
            raise ClientError(f"no answer within {self.link.timeout:g} s") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            # a reset instead of a close: the same reasons (which one depends on timing)
            raise ClientError(f"connection lost: {error}; {self._why_no_answer()}") from None

    def _why_no_answer(self) -> str:
        """What a person reads when the host hangs up instead of answering: the usual
        reasons, each with its way out (a bare "closed the connection" left them guessing)."""
        reasons = [
            "its allow_from or max_connections refused this client",
            "it does not read this framing or dialect (--framing, --dialect, --tpdu)",
        ]
        if not self.link.tls_ca:
            reasons.insert(0, "the listener speaks TLS (give its CA: --tls-ca FILE)")
        return "perhaps " + "; or ".join(reasons)

    def _mac_ok(self, body: bytes, answer: dict[str, str]) -> bool | None:
        """Whether ``answer`` carries a MAC that verifies under the link's key."""
        if not self.link.mak:
            return None
        try:
            covered, received = split_mac(body, answer, self.dialect)
        except MacPlacementError:
            return False
        return retail_mac(self.link.mak, covered) == received

    async def _next_message(self) -> dict[str, str]:
        while True:
            try:
                body = self._decoder.next_frame()
            except FrameError as error:
                raise ClientError(f"the host sent a bad frame: {error}") from None
            if body is not None:
                try:
                    answer = decode_fields(body, self.dialect)
                except ValueError as error:
                    raise ClientError(f"the host sent an undecodable message: {error}") from None
                self.answer_mac_ok = self._mac_ok(body, answer)
                return answer
            data = await self._stream.receive_some(65536)
            if not data:
                raise ClientError(
                    f"the host closed the connection without an answer; {self._why_no_answer()}"
                )
            self._decoder.feed(data)
