"""A scheduled drift run's process never outlives its wait (``admin.drift_watch.measure_apart``):
a run on a store that took the connection and never answers is stopped at its time limit and
counted failed, a run whose process is killed (the OOM killer) fails instead of hanging, and a
server stop kills and reaps the process. A multiprocessing pool waited for the run without
limit: the next run never started and the metrics froze, with no failure counted.

Real processes and a real TCP listener that accepts and never answers (a Redis behind a
network partition)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import trio

from authhost.admin.drift_watch import DriftRunError, measure_apart

BOUND_S = 120.0  # generous: a spawned interpreter's start on a shared machine


@pytest.fixture
def silent_store() -> Iterator[str]:
    """A redis:// URL whose server accepts connections and answers nothing."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def _runs() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "authhost-drift-run"]


async def _started_run() -> multiprocessing.process.BaseProcess:
    deadline = time.monotonic() + BOUND_S
    while not _runs():
        assert time.monotonic() < deadline, "no drift run process started"
        await trio.sleep(0.05)
    return _runs()[0]


def test_a_run_on_a_store_that_never_answers_is_stopped(silent_store: str, tmp_path) -> None:
    async def main() -> None:
        with pytest.raises(DriftRunError, match="no answer within 1 s"):
            await measure_apart(silent_store, tmp_path, 3600, time.time(), timeout_s=1.0)

    trio.run(main)
    assert _runs() == []  # killed and reaped: no process left, no zombie


def test_a_run_whose_process_is_killed_fails_instead_of_waiting_for_ever(
    silent_store: str, tmp_path
) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def kill() -> None:
                os.kill((await _started_run()).pid or 0, signal.SIGKILL)

            nursery.start_soon(kill)
            with pytest.raises(DriftRunError, match="ended without an answer"):
                await measure_apart(silent_store, tmp_path, 3600, time.time())

    trio.run(main)
    assert _runs() == []


def test_a_stop_kills_and_reaps_the_run(silent_store: str, tmp_path) -> None:
    async def main() -> multiprocessing.process.BaseProcess:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(measure_apart, silent_store, tmp_path, 3600, time.time())
            run = await _started_run()
            nursery.cancel_scope.cancel()  # the server stopping
        return run

    run = trio.run(main)
    assert run.exitcode == -signal.SIGKILL and _runs() == []


def _children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_killed_server_takes_its_run_with_it(silent_store: str, tmp_path) -> None:
    """The server SIGKILLed (the OOM killer) while a run waits on a store that never answers:
    the run's process ends too, never left running beside the next server."""
    code = (
        "import sys, time, trio\n"
        "from authhost.admin.drift_watch import measure_apart\n"
        "if __name__ == '__main__':\n"
        f"    trio.run(measure_apart, {silent_store!r}, {str(tmp_path)!r}, 3600, time.time())\n"
    )
    script = tmp_path / "server.py"
    script.write_text(code)
    server = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    runs: list[int] = []
    try:
        deadline = time.monotonic() + BOUND_S
        while not runs:  # the run's process (the resource tracker is not spawned here)
            assert time.monotonic() < deadline and server.poll() is None
            runs = [p for p in _children(server.pid) if b"spawn_main" in _cmdline(p)]
            time.sleep(0.1)
        server.kill()
        server.wait()
        while _running(runs[0]):
            assert time.monotonic() < deadline, "the run outlived its server"
            time.sleep(0.1)
    finally:
        server.kill()
        server.wait()
        for pid in runs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""
