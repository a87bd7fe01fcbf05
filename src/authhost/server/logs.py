"""Structured logs: one JSON object per line, PANs masked, built on stdlib logging.

The request log (logger ``authhost.requests``) writes one line per message answered. It is
the only per-request log, so it has a fast path: when ``configure_logging`` set up the process
(our buffered handler is the only one on the ``authhost`` tree) ``log_request`` writes the
JSON line straight into that handler's buffer, skipping the LogRecord machinery (which costs
more than decoding the message). In any other set-up (a test's ``caplog``, an embedding
application's own handlers) it makes an ordinary LogRecord, so nothing is lost. Operators
silence the request log alone with that logger's level.

Other records carry their fields in ``extra={"fields": {...}}``; the JSON formatter puts them
at the top level of the object.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from authhost.security.masking import mask_pan, mask_pans_in_text

REQUEST_LOGGER = "authhost.requests"
LOG_FORMATS = ("json", "text")
# One encoder for every line: json.dumps with options would build a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False)


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds; strftime once a second, not once a line."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def stamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._text}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record; free text and field text pass through PAN masking."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self._clock.stamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_pans_in_text(record.getMessage()),
        }
        fields = record.__dict__.get("fields")
        if fields:
            for key, value in fields.items():
                line[key] = mask_pans_in_text(value) if isinstance(value, str) else value
        if record.exc_info:
            line["error"] = mask_pans_in_text(self.formatException(record.exc_info))
        return _ENCODER.encode(line)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal; fields appended as key=value, PANs masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = record.__dict__.get("fields")
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return mask_pans_in_text(text)


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes lines in batches: one write per many request lines.

    Lines are written when ``BATCH_LINES`` are waiting, when ``BATCH_SECONDS`` have passed
    since the last write (checked on each line and by the server's periodic ``flush``), on
    any WARNING or worse, and on ``flush()``/``close()`` (logging flushes at exit).
    """

    BATCH_LINES = 256
    BATCH_SECONDS = 0.25

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._last_write = time.monotonic()
        self.dropped_lines = 0  # lines the stream refused: lost, counted (a metric)
        self._unreported = 0  # ... of which no line has said so yet
        self._refusal = ""  # why the stream refused the last of them

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line, urgent=record.levelno >= logging.WARNING)

    def write_line(self, line: str, urgent: bool = False) -> None:
        """Queue one formatted line (also the request log's fast path)."""
        pending = self._pending
        pending.append(line)
        if (
            urgent
            or len(pending) >= self.BATCH_LINES
            or time.monotonic() - self._last_write >= self.BATCH_SECONDS
        ):
            self._write()

    def _write(self) -> None:
        """Write the waiting lines. A stream that refuses them (its pipe's reader died, a
        full disk, a closed file) loses them, counted, and never stops the server: it goes on
        authorising without a log rather than not at all. The first line written again says
        how many were lost."""
        pending, self._pending = self._pending, []
        self._last_write = time.monotonic()
        if self._unreported and pending:
            pending.insert(0, self._lost_lines_note())
        try:
            if pending:
                self.stream.write("\n".join(pending) + "\n")
            self.stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed file
            lost = len(pending) - (1 if self._unreported and pending else 0)
            self.dropped_lines += lost
            self._unreported += lost
            self._refusal = f"{type(exc).__name__}: {exc}"[:200]
        else:
            self._unreported = 0

    def _lost_lines_note(self) -> str:
        record = logging.LogRecord(
            "authhost.server", logging.WARNING, "", 0,
            "%d log lines were lost: the log stream refused them (%s)",
            (self._unreported, self._refusal), None,
        )  # fmt: skip
        return self.format(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()


class LogLimits:
    """At most one line a second per kind of repeated warning, and how many it held back.

    A flood (a switch whose every MAC fails after a bad key change, an accept failing ten
    times a second, a store outage failing every decision) costs one line a second per kind,
    not one per event: each warning is written at once, so a line per event would also cost a
    write per event on the event loop. The events themselves stay counted in the metrics and
    the request log. One value per server (never module state): one server's flood, or one
    test's, never silences another's.
    """

    def __init__(self, every_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, kind: str) -> int | None:
        """None when a line of ``kind`` was written less than ``every_s`` ago (this one is
        held back); else how many were held back since that line (log this one)."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._every_s:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._held.pop(kind, 0)


def dropped_log_lines() -> int:
    """Lines the server's log streams refused (``BufferedStreamHandler``): lost."""
    return sum(
        h.dropped_lines
        for h in logging.getLogger("authhost").handlers
        if isinstance(h, BufferedStreamHandler)
    )


def flush_logs() -> None:
    """Write out buffered lines (the server calls this a few times a second)."""
    for handler in logging.getLogger("authhost").handlers:
        handler.flush()


_request_logger = logging.getLogger(REQUEST_LOGGER)
_authhost_logger = logging.getLogger("authhost")
_fast: BufferedStreamHandler | None = None  # set by configure_logging(fmt="json")
_clock = _Clock()


def _fast_handler() -> BufferedStreamHandler | None:
    """Our handler, if it alone would receive request records (nobody added another)."""
    fast = _fast
    handlers = _authhost_logger.handlers
    if (
        fast is None
        or len(handlers) != 1
        or handlers[0] is not fast
        or _request_logger.handlers
        or _request_logger.filters
        or _authhost_logger.filters
    ):
        return None
    return fast


def _quote(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def log_request(
    mti: str,
    pan: str | None,
    stan: str | None,
    response_code: str,
    latency_s: float,
    detail: str | None,
    peer: str,
) -> None:
    """One request-log line (PAN masked here). Runs per request: checks the level first,
    then writes the line directly when it can (see the module docstring)."""
    if not _request_logger.isEnabledFor(logging.INFO):
        return
    masked = mask_pan(pan)
    if detail is not None:
        detail = mask_pans_in_text(detail)
    latency_us = int(latency_s * 1_000_000)
    fast = _fast_handler()
    if fast is not None:
        line = (
            f'{{"ts":"{_clock.stamp(time.time())}","level":"INFO",'
            f'"logger":"{REQUEST_LOGGER}","msg":"answered",'
            f'"mti":{_quote(mti)},"pan":{_quote(masked)},"stan":{_quote(stan)},'
            f'"rc":{_quote(response_code)},"latency_us":{latency_us},'
            f'"detail":{_quote(detail)},"peer":{_quote(peer)}}}'
        )
        fast.acquire()
        try:
            fast.write_line(line)
        finally:
            fast.release()
        return
    fields = {
        "mti": mti,
        "pan": masked,
        "stan": stan,
        "rc": response_code,
        "latency_us": latency_us,
        "detail": detail,
        "peer": peer,
    }
    record = _request_logger.makeRecord(
        REQUEST_LOGGER, logging.INFO, "", 0, "answered", (), None, extra={"fields": fields}
    )
    _request_logger.handle(record)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Install one handler on the ``authhost`` logger tree (idempotent: replaces ours)."""
    global _fast
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = BufferedStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("authhost")
    root = _authhost_logger
    for old in [h for h in root.handlers if h.get_name() == "authhost"]:
        old.flush()
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    root.propagate = False
    _fast = handler if fmt == "json" else None
