"""Shared fixtures: real components only (a redis-server process, temporary SQLite files)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_process(cwd: Path, argv: list[str], **env: str) -> subprocess.Popen[str]:
    """A real server process (``python ARGV...``, e.g. ``-m authhost serve --demo``) in
    ``cwd``, on the defaults (no config file), its metrics and admin API on ports of their own,
    plus ``env``; stderr is kept for the test to read."""
    import sys

    environment = {**os.environ, "AUTHHOST_SERVER_METRICS_PORT": "0", "AUTHHOST_ADMIN_PORT": "0"}
    environment.pop("AUTHHOST_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, *argv], cwd=cwd, env={**environment, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@contextmanager
def redis_process(port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server process of our own on ``port``, keeping any dump in ``workdir`` (so a
    restart on the same directory reloads what it saved); stopped on exit if still running."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A redis-server process of our own on a free loopback port; yields its URL."""
    port = free_port()
    with redis_process(port, workdir):
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real redis-server: the one .ci/run started (AUTHHOST_TEST_REDIS_URL), else one
    started here for the session. It is shared: tests namespace their keys."""
    url = os.environ.get("AUTHHOST_TEST_REDIS_URL")
    if url:
        yield url
        return
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
async def redis_store(redis_url: str):
    """A Redis card store in a key space of its own (its ``prefix``) on the shared server."""
    import secrets

    from authhost.store import open_store

    store = await open_store(redis_url, prefix=f"t{secrets.token_hex(6)}")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server for one test alone, for tests that pause it or starve it of memory."""
    with redis_server(tmp_path) as url:
        yield url


def redis_command(url: str, *args: str) -> str:
    """Send one command to Redis over a plain socket (RESP); return the first reply line."""
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload.encode())
        return sock.recv(65536).decode().split("\r\n", 1)[0]


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "authhost.db"
