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

from authhost.security.masking import mask_pans_in_text

REQUEST_LOGGER = "authhost.requests"
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
        return json.dumps(line, separators=(",", ":"), default=str)


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


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Install one handler on the ``authhost`` logger tree (idempotent: replaces ours)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("authhost")
    root = logging.getLogger("authhost")
    for old in [h for h in root.handlers if h.get_name() == "authhost"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    root.propagate = False
