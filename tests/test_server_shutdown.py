"""Graceful shutdown: stop accepting, answer what is in flight, then stop (exit 0)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from conftest import serve_process
from iso_peers import peer_decode
from test_server_support import SwitchClient, financial_fields, server_config

from authhost.auth.decision import Decision
from authhost.iso.codes import ResponseCode
from authhost.iso.messages import AuthRequest
from authhost.server.server import AuthServer

TESTS_DIR = Path(__file__).parent


async def test_shutdown_answers_requests_in_flight_then_refuses_connections() -> None:
    entered = 0
    all_in = trio.Event()

    async def slow(request: AuthRequest, received_at: float) -> Decision:
        nonlocal entered
        entered += 1
        if entered == 5:
            all_in.set()
        await trio.sleep(0.1)
        return Decision(ResponseCode.APPROVED, approval_code="000001")

    server = AuthServer(server_config(deadline_ms=5000), slow)
    async with trio.open_nursery() as nursery:
        [address] = await nursery.start(server.run)
        async with SwitchClient.connect(address) as client:
            for i in range(1, 6):
                await client.send(financial_fields("0100", f"{i:06d}"))
            with trio.fail_after(5):
                await all_in.wait()
            server.shutdown()
            stans = sorted([(await client.receive())["11"] for _ in range(5)])
            assert stans == [f"{i:06d}" for i in range(1, 6)]
            assert await client.closed_by_server()
        with trio.fail_after(5):
            await server.stopped.wait()
    try:
        await trio.open_tcp_stream(*address)
    except OSError:
        pass
    else:
        raise AssertionError("the listener must be closed after shutdown")


async def test_grace_time_bounds_the_shutdown() -> None:
    async def forever(request: AuthRequest, received_at: float) -> Decision:
        await trio.sleep_forever()
        raise AssertionError

    config = server_config(deadline_ms=60_000, shutdown_grace_s=0.2)
    server = AuthServer(config, forever)
    async with trio.open_nursery() as nursery:
        [address] = await nursery.start(server.run)
        async with SwitchClient.connect(address) as client:
            await client.send(financial_fields("0100", "000001"))
            await trio.sleep(0.05)
            started = trio.current_time()
            server.shutdown()
            with trio.fail_after(5):
                await server.stopped.wait()
            assert trio.current_time() - started < 2
    # cut off by the grace time, not by its deadline: abandoned, not counted as a timeout
    assert server.metrics.timeouts._value.get() == 0  # noqa: SLF001
    assert server.metrics.in_flight_count == 0


# -- the real process: signals, pid file, exit code ----------------------------------------

SCRIPT = """
import sys
from authhost.config import Config, ServerConfig
from authhost.server.process import run
import test_server_support

port, pid_file, workers = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
runtime_factory = getattr(test_server_support, sys.argv[4])
config = Config(server=ServerConfig(
    port=port, metrics_port=0, deadline_ms=5000, pid_file=pid_file, workers=workers,
    shutdown_grace_s=5,
))
sys.exit(run(config, runtime_factory=runtime_factory))
"""


class ServerProcess:
    """authhost's server in a subprocess; its JSON log lines collected from stderr."""

    def __init__(
        self, tmp_path: Path, workers: int = 1, runtime: str = "approving_runtime"
    ) -> None:
        from test_server_support import free_port_number

        self.port = free_port_number()
        self.pid_file = tmp_path / "authhost.pid"
        env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SCRIPT,
                str(self.port),
                str(self.pid_file),
                str(workers),
                runtime,
            ],  # fmt: skip
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in self.lines) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} in the server log:\n" + "".join(self.lines))

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def worker_pid(self, index: int) -> int:
        """The pid of worker ``index`` as the supervisor logged it starting (the first)."""
        started = [str(r["msg"]) for r in self.records()
                   if str(r["msg"]).startswith(f"worker {index} started")]  # fmt: skip
        return int(started[0].split("pid ")[1].rstrip(")"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def _send_requests(port: int, count: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    client = SwitchClient(None)  # type: ignore[arg-type] - used for encoding only
    from test_server_support import frame

    sock.sendall(
        b"".join(
            frame(client.encode(financial_fields("0100", f"{i:06d}"))) for i in range(1, count + 1)
        )
    )
    return sock


def _one_request(port: int) -> bytes:
    """Send one request, close our side, and read every byte the server sends back."""
    sock = _send_requests(port, 1)
    sock.shutdown(socket.SHUT_WR)
    try:
        return _read_all(sock)
    finally:
        sock.close()


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _answers(data: bytes) -> list[bytes]:
    """The MTIs of the 2-byte-length-framed messages in ``data``. Counting b"0110" in the raw
    bytes is not the same: the approval code these tests' handler gives is the worker's pid,
    and pid 11038 reads "011038"."""
    mtis = []
    while len(data) >= 2:
        length = int.from_bytes(data[:2], "big")
        mtis.append(data[2:6])
        data = data[2 + length :]
    return mtis


def test_sigterm_finishes_requests_in_flight_and_exits_0(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        server.wait_for_log("listening on")
        assert server.pid_file.read_text().strip() == str(server.proc.pid)
        sock = _send_requests(server.port, 4)
        time.sleep(0.1)  # the 300 ms decisions are in flight
        server.proc.send_signal(signal.SIGTERM)
        data = _read_all(sock)  # the server answers, then closes
        sock.close()
        assert server.proc.wait(10) == 0
    finally:
        server.stop()
    assert _answers(data) == [b"0110"] * 4, server.lines
    assert all(b"%06d" % i in data for i in range(1, 5))
    assert not server.pid_file.exists()
    records = server.records()
    assert any(r["msg"] == "test runtime ready" for r in records)
    assert sum(r.get("logger") == "authhost.requests" for r in records) == 4


def test_sighup_runs_the_reloaders(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        server.wait_for_log("listening on")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for_log("test reloader ran")
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(10) == 0
    finally:
        server.stop()


def test_workers_share_one_port(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, workers=2)
    try:
        server.wait_for_log("listening on", count=2, timeout=40)
        # several connections at once: the kernel spreads them over the workers
        socks = [_send_requests(server.port, 1) for _ in range(6)]
        for sock in socks:
            sock.shutdown(socket.SHUT_WR)
        answered = sum(_answers(_read_all(sock)).count(b"0110") for sock in socks)
        for sock in socks:
            sock.close()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
    finally:
        server.stop()
    assert answered == 6
    assert not server.pid_file.exists()


def _one_answer(sock: socket.socket) -> dict[str, Any]:
    data = b""
    while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    decoded = peer_decode(data[2:], "ascii-binary-bitmap")
    return decoded


def test_workers_take_connections_in_turn(tmp_path: Path) -> None:
    """A switch keeps a few connections open; each worker must get its share of them, not
    whatever a hash of the ports decides (least connections first)."""
    server = ServerProcess(tmp_path, workers=2)
    socks = []
    try:
        server.wait_for_log("listening on", count=2, timeout=40)
        answered_by = []
        for _ in range(6):  # kept open, one after the other
            sock = _send_requests(server.port, 1)
            socks.append(sock)
            answered_by.append(_one_answer(sock)["38"])
        assert sorted(answered_by.count(pid) for pid in set(answered_by)) == [3, 3]
        server.proc.send_signal(signal.SIGTERM)
        for sock in socks:
            sock.close()
        assert server.proc.wait(20) == 0
    finally:
        server.stop()


def test_real_authhost_serve_demo_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The real command with the real runtime (SQLite store, demo keys) in a scratch dir."""
    from test_server_support import free_port_number, network_fields

    port = free_port_number()
    proc = serve_process(tmp_path, ["-m", "authhost", "serve", "--demo", "--port", str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "authhost serve did not start"
                time.sleep(0.1)
        pid_file = tmp_path / "authhost.pid"
        assert pid_file.read_text().strip() == str(proc.pid)
        client = SwitchClient(None)  # type: ignore[arg-type] - encoding only
        from test_server_support import frame

        sock.sendall(frame(client.encode(network_fields("301", "000042"))))
        sock.shutdown(socket.SHUT_WR)
        answer = _read_all(sock)
        sock.close()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert b"0810" in answer and b"000042" in answer
    assert not pid_file.exists()
    assert (tmp_path / "authhost.db").exists()
    messages = [json.loads(line)["msg"] for line in stderr.splitlines() if line.startswith("{")]
    assert f"listening on 127.0.0.1:{port}" in messages
    assert "server stopped" in messages


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, workers=2)
    try:
        server.wait_for_log("listening on", count=2, timeout=40)
        os.kill(server.worker_pid(1), signal.SIGKILL)
        server.wait_for_log("restarting")
        server.wait_for_log("listening on", count=3, timeout=40)
        answers = _one_request(server.port)
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(20)
    finally:
        server.stop()
    assert _answers(answers) == [b"0110"], f"answers {answers!r}\n" + "".join(server.lines)
    assert code == 0, f"exit code {code}\n" + "".join(server.lines)


def test_a_replacement_that_cannot_start_is_retried_while_the_others_serve(tmp_path: Path) -> None:
    """A worker killed while the store is down: its replacement cannot open the store and
    exits as a worker that cannot start does. That stopped every worker, the whole host down
    for one crash during a store blip; the slot's first worker ran, so the configuration
    works: the replacement is tried again while the other worker serves."""
    server = ServerProcess(tmp_path, workers=2, runtime="store_outage_runtime")
    try:
        server.wait_for_log("listening on", count=2, timeout=40)
        (tmp_path / "store-down").touch()
        os.kill(server.worker_pid(1), signal.SIGKILL)
        server.wait_for_log("could not start again", count=2, timeout=40)
        assert server.proc.poll() is None, "".join(server.lines)
        answers = _one_request(server.port)  # worker 0 serves on
        (tmp_path / "store-down").unlink()  # the store is back: the replacement starts
        server.wait_for_log("listening on", count=3, timeout=40)
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(20)
    finally:
        server.stop()
    assert _answers(answers) == [b"0110"], f"answers {answers!r}\n" + "".join(server.lines)
    assert code == 0, f"exit code {code}\n" + "".join(server.lines)


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie nobody has reaped yet has stopped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """A supervisor SIGKILLed (or OOM-killed) left its workers serving with no parent and
    holding the port, so the restart failed with "address in use": now each worker gets
    SIGTERM from the kernel, drains and exits, and the port is free again."""
    server = ServerProcess(tmp_path, workers=2)
    workers: list[int] = []
    try:
        server.wait_for_log("listening on", count=2, timeout=40)
        workers = [server.worker_pid(0), server.worker_pid(1)]
        assert len(workers) == 2 and all(_running(pid) for pid in workers)
        server.proc.kill()
        server.proc.wait(10)
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _running(pid)], "".join(server.lines)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", server.port))  # nobody listens on it any more
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.stop()
