"""``--workers N``: N server processes sharing the supervisor's listening sockets.

The supervisor (the process the operator started) opens the listening sockets, writes the pid
file, starts the workers (who accept from the shared sockets, fewest connections first:
``server.balance``), forwards SIGTERM/SIGINT/SIGHUP to them, restarts a worker that dies on
its own and exits 0 when every worker stopped gracefully. Each worker is a normal single
server process with its own runtime; worker i uses node number ``node_id + i`` in its approval
codes and exposes its metrics on ``metrics_port + i`` (each process has its own counters);
worker 0 alone runs the admin API and the scheduled model drift runs.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import trio

from authhost.config import Config
from authhost.server.balance import NOT_ACCEPTING, ConnectionBalance, SharedListeners
from authhost.server.logs import flush_logs
from authhost.server.parent_death import stop_with_parent
from authhost.server.process import PidFile, RuntimeFactory, innermost_error, run_single
from authhost.server.server import ServerConfigError
from authhost.server.sockets import ListenError, listening_socket

log = logging.getLogger("authhost.server")

RESTART_DELAY_S = 1.0
# a replacement that could not start (its slot's first worker did: the configuration works,
# so most likely the store is down) is tried again this often, while the others serve
RETRY_DELAY_S = 2.0
CANNOT_START = 2  # run_single's exit code for a configuration or listen error


def worker_config(config: Config, index: int) -> Config:
    """Worker ``index``'s view of the configuration: its own node number (approval codes),
    its own metrics port, and the admin API and the scheduled drift runs on worker 0 only."""
    server = config.server
    config = config.replace("server", workers=1, node_id=server.node_id + index)
    if server.metrics_port:
        config = config.replace("server", metrics_port=server.metrics_port + index)
    if index > 0:  # one admin API; one drift run (the same read of the same journal)
        config = config.replace("admin", port=0)
        config = config.replace("models", drift_every_s=0.0)
    return config


def worker_main(
    config: Config,
    demo: bool,
    index: int,
    runtime_factory: RuntimeFactory | None,
    sockets: list[socket.socket],
    counts: Any,
    supervisor_pid: int = 0,
) -> None:
    """Entry point of one worker process (spawned: a fresh interpreter)."""
    from authhost.server.logs import configure_logging

    if supervisor_pid:
        stop_with_parent(supervisor_pid)  # never outlive a supervisor that was killed
    configure_logging(config.server.log_level, config.server.log_format)
    config = worker_config(config, index)
    shared = SharedListeners(sockets, ConnectionBalance(counts, index))
    code = run_single(
        config, demo=demo, shared=shared, pid_file="", runtime_factory=runtime_factory
    )
    raise SystemExit(code)


def prepare_once(
    config: Config, *, demo: bool, runtime_factory: RuntimeFactory | None = None
) -> int:
    """Open and close the runtime once before any worker starts, so that store migrations and
    demo keys and cards are created by one process instead of raced by N. 0 when it worked."""
    if runtime_factory is None:
        from authhost.runtime import open_runtime as runtime_factory
    quiet = worker_config(config, 1)  # no admin API; nothing is served here

    async def open_and_close() -> None:
        async with runtime_factory(quiet, demo=demo):
            pass

    try:
        trio.run(open_and_close)
    except BaseException as error:  # noqa: BLE001 - reported as one line, like run_single
        inner = innermost_error(error)
        if isinstance(inner, KeyboardInterrupt | SystemExit):
            raise
        log.error("cannot start: %s: %s", type(inner).__name__, inner)
        return CANNOT_START
    return 0


def supervise(config: Config, *, demo: bool, runtime_factory: RuntimeFactory | None = None) -> int:
    """Run ``config.server.workers`` workers until told to stop; the exit code of the lot."""
    code = prepare_once(config, demo=demo, runtime_factory=runtime_factory)
    if code:
        return code
    try:
        sockets = [listening_socket(x.host, x.port) for x in config.all_listeners()]
    except ListenError as error:
        log.error("cannot start: %s", error)
        return CANNOT_START
    context = multiprocessing.get_context("spawn")
    counts = context.RawArray("i", [NOT_ACCEPTING] * config.server.workers)
    workers: list[BaseProcess] = []
    replaced: set[int] = set()  # slots whose first worker ran: their configuration works
    stopping = False

    def start(index: int) -> BaseProcess:
        counts[index] = NOT_ACCEPTING  # a replacement counts from zero once it accepts
        process = context.Process(
            target=worker_main,
            args=(config, demo, index, runtime_factory, sockets, counts, os.getpid()),
            name=f"authhost-worker-{index}",
        )
        process.start()
        log.info("worker %d started (pid %s)", index, process.pid)
        return process

    def signal_workers(signum: int) -> None:
        for process in workers:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if signum == signal.SIGHUP:
            signal_workers(signal.SIGHUP)
            return
        stopping = True
        signal_workers(signal.SIGTERM)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    exit_code = 0
    pid_file = PidFile(config.server.pid_file, when_listening=True)  # the sockets are open
    try:
        pid_file.write()
    except ServerConfigError as error:
        log.error("cannot start: %s", error)
        for sock in sockets:
            sock.close()
        return CANNOT_START
    with pid_file:
        for s in previous:
            signal.signal(s, on_signal)
        try:
            workers.extend(start(i) for i in range(config.server.workers))
            while any(p.is_alive() for p in workers):
                time.sleep(0.2)
                flush_logs()  # no event loop here to do it
                for index, process in enumerate(workers):
                    if process.is_alive() or stopping:
                        continue
                    delay = RESTART_DELAY_S
                    if process.exitcode == CANNOT_START and index not in replaced:
                        log.error("worker %d could not start; stopping all workers", index)
                        exit_code = CANNOT_START
                        stopping = True
                        signal_workers(signal.SIGTERM)
                        break
                    if process.exitcode == CANNOT_START:
                        # a crash while the store is down used to stop every worker: the
                        # whole host down for one worker, the others serving until then
                        log.error(
                            "worker %d could not start again (its first start worked: the "
                            "store down?); retrying in %.0f s",
                            index,
                            RETRY_DELAY_S,
                        )
                        delay = RETRY_DELAY_S
                    else:
                        log.error(
                            "worker %d exited with code %s; restarting", index, process.exitcode
                        )
                    replaced.add(index)
                    time.sleep(delay)
                    if not stopping:
                        workers[index] = start(index)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    for sock in sockets:
        sock.close()
    codes = [p.exitcode for p in workers]
    log.info("all workers stopped", extra={"fields": {"exit_codes": codes}})
    if exit_code:
        return exit_code
    return 0 if all(_stopped_well(code, stopping) for code in codes) else 1


def _stopped_well(code: int | None, stopping: bool) -> bool:
    """A worker's exit: 0, or killed by the supervisor's own SIGTERM while it was still
    starting (a worker takes SIGTERM in hand once it serves: before, the signal's default
    action ends it, with nothing accepted and so nothing lost)."""
    return code == 0 or (stopping and code == -signal.SIGTERM)
