"""Structured logs: one JSON object per line, PANs masked on every path."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from authhost.server.logs import configure_logging, flush_logs, log_request

PAN = "4000001234567899"


@pytest.fixture
def authhost_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("authhost")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield logger
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]
    configure_logging_state_reset()


def configure_logging_state_reset() -> None:
    import authhost.server.logs as logs

    logs._fast = None  # noqa: SLF001 - back to "not configured"


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    flush_logs()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_request_line_fast_path_and_record_path_agree(
    authhost_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log_request("0100", PAN, "000001", "05", 0.000321, f"card {PAN} blocked", "10.0.0.1:5000")
    # a second handler on the tree turns the fast path off: same line through a LogRecord
    extra = logging.StreamHandler(io.StringIO())
    authhost_logger.addHandler(extra)
    log_request("0100", PAN, "000001", "05", 0.000321, f"card {PAN} blocked", "10.0.0.1:5000")
    authhost_logger.removeHandler(extra)
    fast, slow = _lines(stream)
    for line in (fast, slow):
        assert PAN not in json.dumps(line)
        assert line["pan"] == "400000******7899"
        assert line["detail"] == "card 400000******7899 blocked"
        assert line["latency_us"] == 321
        assert line["logger"] == "authhost.requests"
        assert line["level"] == "INFO"
    fast.pop("ts"), slow.pop("ts")
    assert fast == slow


def test_request_log_can_be_silenced_alone(authhost_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    logging.getLogger("authhost.requests").setLevel(logging.WARNING)
    try:
        log_request("0100", PAN, "000001", "00", 0.001, None, "peer")
        logging.getLogger("authhost.server").info("still here")
    finally:
        logging.getLogger("authhost.requests").setLevel(logging.NOTSET)
    [line] = _lines(stream)
    assert line["msg"] == "still here"


def test_warnings_are_written_at_once_and_info_is_batched(
    authhost_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log_request("0100", PAN, "000001", "00", 0.001, None, "peer")
    logging.getLogger("authhost.server").warning("port %s is busy", 8583)
    written = stream.getvalue().splitlines()
    assert len(written) == 2, "a warning flushes what was waiting, in order"
    assert json.loads(written[1])["msg"] == "port 8583 is busy"


def test_text_format_masks_too(authhost_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream=stream)
    logging.getLogger("authhost.server").error("lookup failed for %s", PAN)
    log_request("0100", PAN, "000001", "00", 0.001, None, "peer")
    flush_logs()
    text = stream.getvalue()
    assert PAN not in text
    assert text.count("400000******7899") == 2


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", "xml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("LOUD", "json")


def test_a_stream_that_refuses_lines_loses_them_counted_and_says_so_after(
    authhost_logger: logging.Logger,
) -> None:
    """A real pipe nobody reads, made non-blocking: once its buffer is full every write
    fails (EAGAIN), as a log shipper that stopped reading would make it. The warnings are
    lost and counted instead of raised into the server; once the pipe is read again, the
    next line written says how many were lost."""
    import os

    from authhost.server.logs import dropped_log_lines

    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        configure_logging("INFO", "json", stream=stream)
        log = logging.getLogger("authhost.server")
        for n in range(20_000):  # about 2 MB of warnings: far past a pipe's buffer
            log.warning("filling the pipe %d %s", n, "x" * 64)
        lost = dropped_log_lines()
        assert lost > 0

        while True:  # the shipper reads again
            os.set_blocking(read_end, False)
            try:
                if not os.read(read_end, 1 << 16):
                    break
            except BlockingIOError:
                break
        log.warning("back")
        flush_logs()
        os.set_blocking(read_end, False)
        tail = os.read(read_end, 1 << 16).decode(errors="replace")
        assert "log lines were lost: the log stream refused them" in tail
        assert '"msg":"back"' in tail
        assert dropped_log_lines() == lost  # nothing more lost
    finally:
        configure_logging_state_reset()
        authhost_logger.handlers[:] = []
        with contextlib.suppress(OSError):
            stream.close()
        os.close(read_end)
