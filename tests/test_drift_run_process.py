"""A scheduled drift run's process never outlives its wait (``admin.drift_watch.measure_apart``):
a run on a store that took the connection and never answers is stopped at its time limit and
counted failed, a run whose process is killed (the OOM killer) fails instead of hanging, and a
server stop kills and reaps the process. A multiprocessing pool waited for the run without
limit: the next run never started and the metrics froze, with no failure counted.

Real processes and a real TCP listener that accepts and never answers (a Redis behind a
network partition)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
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
