"""An ISO listener whose process is out of file descriptors, over real TCP: each failed
accept is retried ten times a second, and was logged each time (ten error lines a second for
as long as it lasts, the flood the admin listener was already spared); now at most once a
second, without a traceback, and the server serves again once descriptors are back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio
from conftest import free_port
from test_server_support import SwitchClient, financial_fields

import authhost

TESTS = Path(__file__).parent
SRC = Path(authhost.__file__).parent.parent  # the server runs the code under test

SERVER = textwrap.dedent(
    """
    import logging, os, resource, sys
    import trio
    sys.path.insert(0, sys.argv[1])
    from test_server_support import approve, server_config
    from authhost.server.server import AuthServer

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")

    async def main():
        server = AuthServer(server_config(host="127.0.0.1", port=int(sys.argv[2])), approve)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            opened = len(os.listdir("/proc/self/fd"))
            resource.setrlimit(resource.RLIMIT_NOFILE, (opened + 8, opened + 8))
            print("ready", flush=True)

    trio.run(main)
    """
)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts its fds in /proc")
async def test_out_of_file_descriptors_iso_accepts_are_logged_once_a_second(tmp_path) -> None:
    """8 file descriptors to spare and 60 connections: the accepts beyond them fail with
    EMFILE until the clients go away."""
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    log_file = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}"}
    with log_file.open("w") as log_out:
        process = subprocess.Popen(
            [sys.executable, str(script), str(TESTS), str(port)],
            stdout=subprocess.PIPE, stderr=log_out, env=env, text=True,
        )  # fmt: skip
    try:
        ready = await trio.to_thread.run_sync(process.stdout.readline)
        assert ready.strip() == "ready", log_file.read_text()
        started = trio.current_time()
        clients = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(60)]
        with trio.fail_after(20):
            while "Too many open files" not in log_file.read_text():
                await trio.sleep(0.05)
        await trio.sleep(1.5)  # a second and a half of failing accepts
        text = log_file.read_text()
        failed = [line for line in text.splitlines() if "accept failed" in line]
        elapsed = trio.current_time() - started
        assert "Traceback" not in text, text[:3000]
        assert "Too many open files" in failed[0]
        assert len(failed) <= elapsed + 1, failed  # once a second, not ten times
        for client in clients:
            await trio.aclose_forcefully(client)
        with trio.fail_after(20):  # descriptors back: the listener serves again
            while True:
                try:
                    async with SwitchClient.connect(("127.0.0.1", port)) as client:
                        response = await client.request(financial_fields("0200", "000501"))
                        break
                except (OSError, AssertionError, trio.BrokenResourceError):
                    await trio.sleep(0.05)  # a close not seen yet, or refused for now
        assert (response["11"], response["39"]) == ("000501", "00")
    finally:
        process.terminate()
        process.wait(timeout=10)
