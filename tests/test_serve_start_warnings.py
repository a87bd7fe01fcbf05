"""What ``authhost serve`` says at start about a store it should not serve as it is.

A store that holds no card: a mistyped store URL, a relative SQLite path resolved from
another working directory (a service manager's), or a Redis that came back without its data.
Before, the server started as usual, said ready and declined every authorisation 14
(invalid card) without a word. A second server on the same store and approval-code node:
both handed out the same approval codes, silently. The real command runs on the key store
of a demo installation whose own store has cards.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import serve_process

WARNING = "holds no card"


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo installation: keys, a master key file and a store with the demo cards."""
    workdir = tmp_path_factory.mktemp("bank")
    import sys

    subprocess.run(
        [sys.executable, "-m", "authhost", "demo"], cwd=workdir, check=True, capture_output=True
    )
    return workdir


def serve(workdir: Path, store_url: str, **env: str) -> subprocess.Popen[str]:
    """``authhost serve`` on the installation's keys and ``store_url``."""
    return serve_process(
        workdir, ["-m", "authhost", "serve"], AUTHHOST_SERVER_PORT="0", AUTHHOST_STORE_URL=store_url,
        AUTHHOST_SERVER_PID_FILE="",
        AUTHHOST_SECURITY_MASTER_KEY_FILE=str(workdir / "authhost-keys.json.demo-master-key"),
        **env,
    )  # fmt: skip


def until_listening(proc: subprocess.Popen[str]) -> str:
    """The server's log up to the line that says it listens."""
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "listening on" in line:
            break
    assert proc.poll() is None, "".join(lines)
    return "".join(lines)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def start_log(workdir: Path, store_url: str, **env: str) -> str:
    """The server's log up to the line that says it listens; then it is stopped."""
    proc = serve(workdir, store_url, **env)
    try:
        return until_listening(proc)
    finally:
        stop(proc)


def test_a_store_with_cards_starts_without_the_warning(installation: Path) -> None:
    assert WARNING not in start_log(installation, "sqlite:///authhost.db")


def test_a_mistyped_sqlite_path_is_told(installation: Path) -> None:
    log = start_log(installation, "sqlite:///authhots.db")
    assert WARNING in log and str(installation) in log, log


def test_an_empty_redis_is_told(installation: Path, redis_url: str) -> None:
    log = start_log(installation, f"{redis_url}?prefix=empty{secrets.token_hex(4)}")
    assert WARNING in log and "declined until cards are issued" in log, log


def node_log(workdir: Path, store_url: str, node_id: int) -> str:
    """A second server's log, started while a first one (node 0) serves on the same store."""
    first = serve(workdir, store_url)
    try:
        until_listening(first)
        return start_log(workdir, store_url, AUTHHOST_SERVER_NODE_ID=str(node_id))
    finally:
        stop(first)


NODE_IN_USE = "approval-code node 0 is in use by another server"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_second_server_on_the_same_node_is_told(
    installation: Path, redis_url: str, backend: str
) -> None:
    """Two servers on one store with the same ``node_id`` hand out the same approval codes
    (unique per day per node): before, nothing said so."""
    url = (
        "sqlite:///authhost.db"
        if backend == "sqlite"
        else f"{redis_url}?prefix=n{secrets.token_hex(4)}"
    )
    assert NODE_IN_USE in node_log(installation, url, 0)
    assert "approval-code node" not in node_log(installation, url, 1)


def test_a_command_posting_through_the_pipeline_holds_no_node(installation: Path) -> None:
    """``disputes reconcile`` (as ``clearing import`` and ``disputes resolve``) opens a
    runtime of its own to post through the pipeline: it took approval-code node 0's lease and
    never let go of it, so beside a server it logged that the node was in use by another
    server, and a ``serve`` started within the next minute logged at ERROR that the node was
    in use by the command's pid, which had exited."""
    import os
    import sys

    env = {
        **os.environ, "AUTHHOST_STORE_URL": "sqlite:///authhost.db",
        "AUTHHOST_SECURITY_MASTER_KEY_FILE": str(installation / "authhost-keys.json.demo-master-key"),
    }  # fmt: skip
    env.pop("AUTHHOST_CONFIG", None)
    command = [sys.executable, "-m", "authhost", "disputes", "reconcile"]

    first = serve(installation, "sqlite:///authhost.db")
    try:
        until_listening(first)
        beside = subprocess.run(command, cwd=installation, env=env, capture_output=True, text=True)
    finally:
        stop(first)
    assert beside.returncode == 0 and "approval-code node" not in beside.stderr, beside.stderr

    alone = subprocess.run(command, cwd=installation, env=env, capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr
    assert "approval-code node" not in start_log(installation, "sqlite:///authhost.db")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_server_started_again_after_a_kill_is_not_told_of_a_second_server(
    installation: Path, redis_url: str, backend: str
) -> None:
    """A server killed outright (the OOM killer, ``kill -9``) and started again by its service
    manager found its node's lease, not yet expired, held by the dead pid: it logged at ERROR
    that another server was using the node (and again at each renewal until the lease
    expired). The dead process's lease is taken over now, and the log says so at INFO."""
    url = (
        "sqlite:///authhost.db"
        if backend == "sqlite"
        else f"{redis_url}?prefix=k{secrets.token_hex(4)}"
    )
    killed = serve(installation, url)
    try:
        until_listening(killed)
    finally:
        killed.kill()
        killed.communicate(timeout=30)  # reaped, as a service manager does
    log = start_log(installation, url)
    assert "is in use by another server" not in log, log
    assert f"taken over from {socket.gethostname()} pid {killed.pid}, which has exited" in log, log


def metrics_text(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


def test_a_second_server_on_the_same_node_is_in_the_metrics(installation: Path) -> None:
    """The ERROR line alone was easy to miss: the gauge gives an alert something to watch."""
    from conftest import free_port

    ports = free_port(), free_port()
    first = serve(installation, "sqlite:///authhost.db", AUTHHOST_SERVER_METRICS_PORT=str(ports[0]))
    try:
        until_listening(first)
        second = serve(
            installation, "sqlite:///authhost.db", AUTHHOST_SERVER_METRICS_PORT=str(ports[1])
        )
        try:
            until_listening(second)
            shared = metrics_text(ports[1])
        finally:
            stop(second)
        alone = metrics_text(ports[0])
    finally:
        stop(first)
    assert 'authhost_approval_node_shared{node="0"} 1.0' in shared, shared
    assert 'authhost_approval_node_shared{node="0"} 0.0' in alone, alone
