"""A log stream that breaks under a running server: ``authhost serve 2>&1 | some-shipper``
whose shipper dies. Writing to the pipe then fails (EPIPE), and the server used to die of it
at its next log line, having just approved a request: exit 1, the port closed. Now the lines
are lost and counted (``authhost_log_lines_dropped_total``), the server goes on authorising,
and a SIGTERM still stops it cleanly.

The real ``authhost serve --demo`` runs as a process whose stderr is a pipe the test closes;
the simulator sends real requests over TCP.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import free_port, serve_process
from typer.testing import CliRunner

from simulator.cli import app as sim_app


def _started(proc: subprocess.Popen[str]) -> int:
    """Read the log until the server listens (or exits): its ISO port."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if found := re.search(r"listening on [\d.]+:(\d+)", line):
            return int(found.group(1))
    raise AssertionError(f"the server exited before it listened: {proc.wait()}")


def _purchase(tmp_path: Path, port: int) -> str:
    sent = CliRunner().invoke(
        sim_app,
        ["send", "purchase", "--cards", str(tmp_path / "demo-cards.json"), "--pin", "card",
         "--amount", "1.00", "--port", str(port)],
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    [code] = re.findall(r"│\s+39 │ Response Code\s+│ (\d\d)", sent.output)
    return code


def _dropped(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    [value] = re.findall(r"^authhost_log_lines_dropped_total (\S+)$", text, re.MULTILINE)
    return float(value)


def test_a_broken_log_pipe_loses_lines_not_the_server(tmp_path: Path) -> None:
    metrics_port = free_port()
    proc = serve_process(
        tmp_path, ["-m", "authhost", "serve", "--demo"], AUTHHOST_SERVER_PORT="0",
        AUTHHOST_SERVER_METRICS_PORT=str(metrics_port),
    )  # fmt: skip
    try:
        port = _started(proc)
        assert _purchase(tmp_path, port) == "00"
        assert _dropped(metrics_port) == 0

        assert proc.stderr is not None
        proc.stderr.close()  # the shipper is gone: the next write gets EPIPE
        assert _purchase(tmp_path, port) == "00"
        for _ in range(100):  # the request log is written a few times a second
            if _dropped(metrics_port) > 0 or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, f"the server exited {proc.returncode}"
        assert _dropped(metrics_port) >= 1
        assert _purchase(tmp_path, port) == "00"  # still authorising, on a new connection

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
