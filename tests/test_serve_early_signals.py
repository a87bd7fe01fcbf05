"""Signals that reach ``authhost serve`` before its own handlers are in place (the store, keys,
demo cards and rules are opened first, a second or more): SIGTERM killed the process with
its default action (exit -15, nothing closed) and a SIGHUP did too. Now SIGTERM stops it
cleanly (exit 0, no pid file) and SIGHUP is ignored until the server handles it.

The real command runs in a scratch directory with its rules file a FIFO: start-up blocks
reading it, after the demo is ready and before the server's handlers, so the signal always
lands in that window."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import free_port, serve_process

RULES = 'version = "t1"\n\n[[rule]]\nname = "R1"\nexpression = "amount > 100000000"\n' \
        'action = "decline"\nresponse_code = "61"\nreason = "r.big"\n'  # fmt: skip


@pytest.fixture
def starting(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``authhost serve --demo`` blocked in its start-up on the FIFO rules file."""
    fifo = tmp_path / "rules.toml"
    os.mkfifo(fifo)
    proc = serve_process(
        tmp_path, ["-m", "authhost", "serve", "--demo"], AUTHHOST_SERVER_PORT="0",
        AUTHHOST_RULES_FILE=str(fifo), AUTHHOST_RULES_WATCH="false",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "demo-cards.json").exists():  # the demo is ready: rules next
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "authhost serve did not get to its rules"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_before_the_server_serves_stops_cleanly(
    starting: subprocess.Popen[str], tmp_path: Path
) -> None:
    starting.send_signal(signal.SIGTERM)
    _, stderr = starting.communicate(timeout=30)
    assert starting.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "SIGTERM during start-up" in stderr
    assert not (tmp_path / "authhost.pid").exists()


def test_sighup_before_the_server_serves_is_ignored(
    starting: subprocess.Popen[str], tmp_path: Path
) -> None:
    starting.send_signal(signal.SIGHUP)
    fd = os.open(tmp_path / "rules.toml", os.O_WRONLY | os.O_NONBLOCK)  # its reader is there
    try:
        os.write(fd, RULES.encode())
    finally:
        os.close(fd)
    pid_file = tmp_path / "authhost.pid"
    # written once it listens
    _until(starting, pid_file.exists, time.monotonic() + 60, "authhost serve did not start")
    starting.send_signal(signal.SIGTERM)
    _, stderr = starting.communicate(timeout=30)
    assert starting.returncode == 0, stderr
    assert "rules: " in stderr and "Traceback" not in stderr
    assert not pid_file.exists()


def _until(
    proc: subprocess.Popen[str], done: Callable[[], bool], deadline: float, what: str
) -> None:
    """Poll ``done`` while ``proc`` runs, failing with its stderr if it exits first or with
    ``what`` past ``deadline`` (a bound on the wait, not a timing)."""
    while not done():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _opening_a_fifo(pid: int) -> bool:
    """Whether ``pid`` is blocked opening a FIFO for a writer to come (the kernel's
    ``wait_for_partner``): no descriptor exists yet to look for."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "wait_for_partner"
    except OSError:  # it exited meanwhile
        return False


def test_sigterm_while_workers_start_stops_the_lot_with_exit_0(tmp_path: Path) -> None:
    """With --workers, the supervisor reads the rules once, then each worker reads them again
    (blocked here on the FIFO): a SIGTERM then ended the workers by its default action and
    the supervisor exited 1, as if a worker had failed."""
    fifo = tmp_path / "rules.toml"
    os.mkfifo(fifo)
    proc = serve_process(
        tmp_path, ["-m", "authhost", "serve", "--demo", "--workers", "2"],
        AUTHHOST_SERVER_PORT=str(free_port()),
        AUTHHOST_RULES_FILE=str(fifo), AUTHHOST_RULES_WATCH="false",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # a bound on the wait, not a timing
        while True:  # the supervisor's own read of the rules, before any worker starts
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the supervisor never read its rules"
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:  # no reader yet
                time.sleep(0.05)
        try:
            os.write(fd, RULES.encode())
        finally:
            os.close(fd)
        # both workers blocked reading the rules (the supervisor has other children too)
        _until(
            proc,
            lambda: sum(_opening_a_fifo(child) for child in _children(proc.pid)) >= 2,
            deadline,
            "the workers never got to their rules",
        )
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert not (tmp_path / "authhost.pid").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
