"""Structured logs: one JSON object per line, PANs masked, built on stdlib logging.

The request log (logger ``authhost.requests``) writes one line per message answered; its
fields travel in ``extra={"fields": {...}}`` so that the JSON formatter can put them at the top
level of the object. Operators can silence it alone with the logger's level.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from authhost.security.masking import mask_pan, mask_pans_in_text

REQUEST_LOGGER = "authhost.requests"
# One encoder for every line: json.dumps with options would build a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False)
LOG_FORMATS = ("json", "text")


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record; free text passes through PAN masking."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_pans_in_text(record.getMessage()),
        }
        fields = record.__dict__.get("fields")
        if fields:
            line.update(fields)
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
    since the last write (checked on each record and by the server's periodic ``flush``),
    on any WARNING or worse, and on ``flush()``/``close()`` (logging flushes at exit).
    """

    BATCH_LINES = 256
    BATCH_SECONDS = 0.25

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._last_write = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if (
            record.levelno >= logging.WARNING
            or len(self._pending) >= self.BATCH_LINES
            or time.monotonic() - self._last_write >= self.BATCH_SECONDS
        ):
            self._write()

    def _write(self) -> None:
        pending, self._pending = self._pending, []
        self._last_write = time.monotonic()
        if pending:
            self.stream.write("\n".join(pending) + "\n")
        self.stream.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()


def flush_logs() -> None:
    """Write out buffered lines (the server calls this a few times a second)."""
    for handler in logging.getLogger("authhost").handlers:
        handler.flush()


def log_request(
    mti: str,
    pan: str | None,
    stan: str | None,
    response_code: str,
    latency_s: float,
    detail: str | None,
    peer: str,
) -> None:
    """One request-log line (PAN masked here). Runs per request, so it checks the level
    before building anything and skips the caller lookup that ``Logger.info`` does."""
    if not _request_logger.isEnabledFor(logging.INFO):
        return
    fields = {
        "mti": mti,
        "pan": mask_pan(pan),
        "stan": stan,
        "rc": response_code,
        "latency_us": int(latency_s * 1_000_000),
        "detail": detail,
        "peer": peer,
    }
    record = _request_logger.makeRecord(
        REQUEST_LOGGER, logging.INFO, "", 0, "answered", (), None, extra={"fields": fields}
    )
    _request_logger.handle(record)


_request_logger = logging.getLogger(REQUEST_LOGGER)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Install one handler on the ``authhost`` logger tree (idempotent: replaces ours)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = BufferedStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("authhost")
    root = logging.getLogger("authhost")
    for old in [h for h in root.handlers if h.get_name() == "authhost"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    root.propagate = False
