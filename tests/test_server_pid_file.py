"""The pid file: written once the server listens, removed on exit only if it is still ours,
and a pid file that cannot be written is a configuration error (found by a review).

Real ``authhost serve`` processes, a real port in use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOST_")}
    return env | {"AUTHHOST_ADMIN_PORT": "0", "AUTHHOST_SERVER_METRICS_PORT": "0", **extra}


def _serve(port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "authhost", "serve", "--demo", "--port", str(port), *args]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_pid_file(path: Path, process: subprocess.Popen[str]) -> str:
    for _ in range(600):  # a bound on the wait, not a timing: start-up takes what it takes
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("the server never wrote its pid file")


def test_a_second_serve_on_the_same_port_leaves_the_running_servers_pid_file(
    tmp_path: Path,
) -> None:
    port = _free_port()
    first = subprocess.Popen(
        _serve(port), cwd=tmp_path, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        pid_file = tmp_path / "authhost.pid"
        assert _wait_for_pid_file(pid_file, first) == str(first.pid)
        second = subprocess.run(
            _serve(port), cwd=tmp_path, env=_env(), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert f"already running with pid {first.pid}" in second.stderr  # before it listens
        # was: overwritten with the second's pid, then removed by it as its own on exit
        assert pid_file.read_text().strip() == str(first.pid)
        os.kill(int(pid_file.read_text()), signal.SIGTERM)  # what the README tells operators
        assert first.wait(timeout=60) == 0
        assert not pid_file.exists()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_pid_file_that_cannot_be_written_exits_2_with_one_clear_line(
    tmp_path: Path, workers: str
) -> None:
    result = subprocess.run(
        _serve(_free_port(), "--workers", workers),
        cwd=tmp_path,
        env=_env(AUTHHOST_SERVER_PID_FILE=str(tmp_path / "no-such-dir" / "authhost.pid")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output  # was: "stopped on an error: FileNotFoundError", 1
    assert "server.pid_file" in output and "No such file or directory" in output
    assert "Traceback" not in output


def test_a_second_serve_on_another_port_is_refused_and_the_pid_file_kept(tmp_path: Path) -> None:
    """It listened, replaced the first one's pid with its own and removed the file on exit:
    the first server ran on with no pid file to stop it by."""
    first = subprocess.Popen(
        _serve(_free_port()), cwd=tmp_path, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        pid_file = tmp_path / "authhost.pid"
        assert _wait_for_pid_file(pid_file, first) == str(first.pid)
        second = subprocess.run(
            _serve(_free_port()), cwd=tmp_path, env=_env(), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert f"already running with pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert pid_file.read_text().strip() == str(first.pid)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
        assert not pid_file.exists()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_a_stale_pid_file_does_not_stop_a_start(tmp_path: Path) -> None:
    """A pid file left by a server that was killed, its pid gone or reused by another
    program, is taken over."""
    from authhost.cli.serve_command import running_server

    pid_file = tmp_path / "authhost.pid"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    other = subprocess.Popen(  # a live program that is not authhost, named like it
        [sys.executable, "-c", "import sys; sys.stdin.read()", "/srv/authhost/authhost.toml"],
        stdin=subprocess.PIPE,
    )
    try:
        for text in (f"{gone.pid}\n", "not a pid\n", "", f"{other.pid}\n"):
            pid_file.write_text(text)
            assert running_server(str(pid_file)) is None, text
    finally:
        other.communicate(b"")
    assert running_server(str(tmp_path / "none.pid")) is None
