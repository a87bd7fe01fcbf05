"""``authhost serve`` on a store that holds no card says so at start.

A mistyped store URL, a relative SQLite path resolved from another working directory (a
service manager's), or a Redis that came back without its data: before, the server started
as usual, said ready and declined every authorisation 14 (invalid card) without a word. The
real command runs on the key store of a demo installation whose own store has cards.
"""

from __future__ import annotations

import secrets
import signal
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


def start_log(workdir: Path, store_url: str) -> str:
    """The server's log up to the line that says it listens; then it is stopped."""
    proc = serve_process(
        workdir, ["-m", "authhost", "serve"], AUTHHOST_SERVER_PORT="0", AUTHHOST_STORE_URL=store_url,
        AUTHHOST_SERVER_PID_FILE="",
        AUTHHOST_SECURITY_MASTER_KEY_FILE=str(workdir / "authhost-keys.json.demo-master-key"),
    )  # fmt: skip
    lines = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "listening on" in line:
                break
        assert proc.poll() is None, "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    return "".join(lines)


def test_a_store_with_cards_starts_without_the_warning(installation: Path) -> None:
    assert WARNING not in start_log(installation, "sqlite:///authhost.db")


def test_a_mistyped_sqlite_path_is_told(installation: Path) -> None:
    log = start_log(installation, "sqlite:///authhots.db")
    assert WARNING in log and str(installation) in log, log


def test_an_empty_redis_is_told(installation: Path, redis_url: str) -> None:
    log = start_log(installation, f"{redis_url}?prefix=empty{secrets.token_hex(4)}")
    assert WARNING in log and "declined 14" in log, log
