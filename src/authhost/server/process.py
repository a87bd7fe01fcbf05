"""The ``authhost serve`` process: signals, pid file, metrics endpoint, background services.

``run(config, demo=...)`` is the synchronous entry point the CLI calls; it returns the exit
code. With ``server.workers`` > 1 it hands over to ``workers.supervise``.
``serve_runtime`` is the async part, reusable by anything that already holds a runtime.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import trio

from authhost.admin.tokens import TokenConfigError
from authhost.auth.factory import UnknownStep
from authhost.config import Config, ConfigError
from authhost.models.registry import RegistryError
from authhost.rules.rulefile import RuleLoadError
from authhost.security.errors import KeyStoreError, MasterKeyMissing, SecurityError
from authhost.server.balance import SharedListeners
from authhost.server.connection import DecisionHandler
from authhost.server.health import Health, keep_beating
from authhost.server.logs import configure_logging, flush_logs
from authhost.server.metrics import MetricsEndpoint, ServerMetrics
from authhost.server.server import AuthServer, ServerConfigError, check_config
from authhost.server.sockets import ListenError
from authhost.store.interface import StoreError
from authhost.tls import TlsConfigError

# Start-up failures an operator fixes in the configuration or environment: exit code 2.
SETUP_ERRORS = (
    MasterKeyMissing,
    KeyStoreError,
    StoreError,
    RuleLoadError,
    RegistryError,
    TokenConfigError,
    TlsConfigError,
    UnknownStep,
    SecurityError,  # raised at start-up only: a [security] entry that cannot be used
)

log = logging.getLogger("authhost.server")

# A second stop signal this long after the first one stops at once (ignoring the grace time);
# sooner ones are the same stop seen twice (terminal SIGINT plus the supervisor's SIGTERM).
FORCE_AFTER_S = 1.0
# Cancelling cannot stop work that is shielded or in a thread: a commit waiting for a write
# lock another process holds (SQLite's busy timeout is 30 s). A forced stop ends the process
# this long after the second signal if it has not ended by itself; a graceful one this long
# after its grace time.
FORCED_EXIT_S = 2.0
GRACE_MARGIN_S = 5.0


class RuntimeLike(Protocol):
    """What ``serve_runtime`` needs from ``authhost.runtime.Runtime``."""

    handler: DecisionHandler
    services: list[Callable[[], Awaitable[None]]]
    banner: list[str]
    collectors: list[Any]  # extra Prometheus collectors (rules' per-rule counters)

    async def reload(self) -> list[str] | None: ...  # what it kept instead of reloading


class RuntimeFactory(Protocol):
    """``authhost.runtime.open_runtime``'s shape."""

    def __call__(
        self, config: Config, *, demo: bool = False
    ) -> AbstractAsyncContextManager[RuntimeLike]: ...


class PidFile:
    """Writes our pid on start, removes the file on exit if it is still ours.

    With ``when_listening`` the pid is written by ``write()`` once the server listens, not on
    entry: a second ``authhost serve`` started by mistake in the same directory fails on the
    port in use and must leave the running server's pid file alone (it used to overwrite it,
    then remove it as its own on exit)."""

    def __init__(self, path: str, *, when_listening: bool = False) -> None:
        self.path = Path(path) if path else None
        self._deferred = when_listening

    def __enter__(self) -> PidFile:
        if not self._deferred:
            self.write()
        return self

    def write(self) -> None:
        if self.path is None:
            return
        try:
            self.path.write_text(f"{os.getpid()}\n")
        except OSError as exc:  # a directory that does not exist, no permission
            raise ServerConfigError(
                f"server.pid_file {str(self.path)!r} cannot be written: {exc.strerror}"
            ) from None

    def __exit__(self, *exc: object) -> None:
        if self.path is None:
            return
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except OSError:
            pass


class HardStop:
    """Ends the process (exit 1) when a stop does not finish in time by itself: the store
    write a decision waits for cannot be cancelled (found by a review: with the SQLite write
    lock held by another process, a second SIGTERM and the grace time both waited for SQLite's
    30 s busy timeout). The pid file is removed first, if it is ours."""

    def __init__(self, pid_file: PidFile | None = None) -> None:
        self._pid_file = pid_file
        self._timer: threading.Timer | None = None

    def arm(self, after_s: float, why: str) -> None:
        self.cancel()
        self._timer = threading.Timer(after_s, self._exit, (why,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _exit(self, why: str) -> None:
        log.error("%s; exiting now (exit 1)", why)
        flush_logs()
        if self._pid_file is not None:
            self._pid_file.__exit__(None, None, None)
        os._exit(1)


async def serve_runtime(
    config: Config,
    runtime: RuntimeLike,
    *,
    shared: SharedListeners | None = None,
    metrics: ServerMetrics | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
    listening: Callable[[], None] | None = None,
    hard_stop: HardStop | None = None,
) -> bool:
    """Serve until SIGINT/SIGTERM; SIGHUP reloads. True when the stop was graceful.
    ``listening`` is called once every listener is open (the pid file is written then);
    ``hard_stop`` (a whole process only) ends the process when a stop does not finish."""
    metrics = metrics if metrics is not None else ServerMetrics()
    for collector in runtime.collectors:
        metrics.register(collector)
    server = AuthServer(
        config,
        runtime.handler,
        metrics=metrics,
        shared=shared,
        macs=getattr(runtime, "macs", None),
        key_exchange=getattr(runtime, "key_exchange", None),
    )
    health = Health()
    endpoint = None
    if config.server.metrics_port:
        endpoint = MetricsEndpoint(
            metrics, config.server.metrics_host, config.server.metrics_port, health=health
        )
    graceful = True
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:

                async def watch_signals() -> None:
                    nonlocal graceful
                    first_stop: float | None = None
                    async for signum in signals:
                        if signum == signal.SIGHUP:
                            log.info("SIGHUP: reloading")
                            nursery.start_soon(_reload, runtime)
                        elif first_stop is None:
                            first_stop = trio.current_time()
                            log.info("%s: stopping gracefully", signal.Signals(signum).name)
                            health.draining = True
                            server.shutdown()
                            if hard_stop is not None:
                                hard_stop.arm(
                                    config.server.shutdown_grace_s + GRACE_MARGIN_S,
                                    "requests still unfinished past shutdown_grace_s",
                                )
                        elif trio.current_time() - first_stop > FORCE_AFTER_S:
                            log.warning("second stop signal: stopping now")
                            graceful = False
                            nursery.cancel_scope.cancel()
                            if hard_stop is not None:
                                hard_stop.arm(FORCED_EXIT_S, "second stop signal")

                nursery.start_soon(watch_signals)
                nursery.start_soon(_flush_logs_periodically)
                nursery.start_soon(
                    keep_beating,
                    health,
                    getattr(runtime, "read_store", None),
                    getattr(runtime, "journal_backlog", None),
                )
                for service in runtime.services:
                    nursery.start_soon(_run_service, service)
                addresses = await nursery.start(server.run)
                if listening is not None:
                    listening()
                health.listening = True
                for line in runtime.banner:
                    log.info(line)
                for host, port in addresses:
                    log.info("listening on %s:%d", host, port)
                if endpoint is not None:
                    log.info(
                        "metrics on http://%s:%d/metrics (health: /healthz, /readyz)",
                        config.server.metrics_host,
                        endpoint.port,
                    )
                task_status.started(addresses)
                # server.run returns after a graceful shutdown; then stop the services.
                await _wait_for_stop(server)
                nursery.cancel_scope.cancel()
    finally:
        if endpoint is not None:
            endpoint.close()
    return graceful


async def _wait_for_stop(server: AuthServer) -> None:
    await server.stopped.wait()


async def _flush_logs_periodically() -> None:
    """Buffered log lines reach the file within a quarter second even when traffic stops."""
    while True:
        await trio.sleep(0.25)
        flush_logs()


async def _reload(runtime: RuntimeLike) -> None:
    try:
        kept = await runtime.reload()
        if kept:  # a refused rules file: "reload complete" alone read as if it was taken
            log.warning("reload complete, keeping %s", "; ".join(kept))
        else:
            log.info("reload complete")
    except (SecurityError, RuleLoadError, RegistryError) as exc:  # a bad file: its own words
        log.error("reload failed; the previous configuration stays active: %s", exc)
    except Exception:
        log.exception("reload failed; the previous configuration stays active")


async def _run_service(service: Callable[[], Awaitable[None]]) -> None:
    """A background service that fails is logged; authorisation keeps going without it.
    One that cannot open its port stops the server (exit 2), as the ISO and metrics ports do:
    a host up without its admin API leaves card staff unable to block a stolen card while
    every probe says ready."""
    target = getattr(service, "func", service)  # functools.partial
    name = getattr(target, "__qualname__", repr(target))
    try:
        await service()
    except ListenError:  # the admin API's port in use: the server cannot start as configured
        raise
    except OSError as exc:  # a link a service reads from failing and the like: one clear line
        log.error("background service %s stopped: %s", name, exc)
    except Exception:
        log.exception("background service %s failed", name)


def run(
    config: Config, *, demo: bool = False, runtime_factory: RuntimeFactory | None = None
) -> int:
    """Run ``authhost serve`` to completion and return the process exit code.

    ``runtime_factory`` defaults to ``authhost.runtime.open_runtime``; tests pass their own
    (with workers it must be an importable module-level function: workers are spawned).
    """
    try:
        configure_logging(config.server.log_level, config.server.log_format)
    except ValueError as exc:
        print(f"authhost: server.log_level/log_format: {exc}", file=sys.stderr)
        return 2
    try:
        check_config(config)
    except ServerConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    if config.server.workers > 1:
        from authhost.server.workers import supervise

        return supervise(config, demo=demo, runtime_factory=runtime_factory)
    return run_single(
        config, demo=demo, pid_file=config.server.pid_file, runtime_factory=runtime_factory
    )


GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def tune_garbage_collector() -> None:
    """Collect garbage less often. A server keeps many long-lived objects (parsed cards,
    velocity counters, models); with CPython's defaults the cyclic collector walks them often
    enough to add tens of milliseconds to p99 (measured: p99 53 ms -> 22 ms at 860 auth/s, and
    7% less CPU). Objects from start-up are frozen out of every collection."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def run_single(
    config: Config,
    *,
    demo: bool,
    shared: SharedListeners | None = None,
    pid_file: str = "",
    runtime_factory: RuntimeFactory | None = None,
) -> int:
    """One server process: open the runtime, serve, exit 0 after a graceful stop."""
    if runtime_factory is None:
        from authhost.runtime import open_runtime as runtime_factory
    tune_garbage_collector()
    try:
        with PidFile(pid_file, when_listening=True) as pid:
            hard_stop = HardStop(pid)
            try:
                graceful = trio.run(
                    _serve_with_runtime, config, demo, shared, runtime_factory, pid.write,
                    hard_stop,
                )  # fmt: skip
            finally:
                hard_stop.cancel()
        flush_logs()
    except KeyboardInterrupt:  # SIGINT before the signal receiver was in place
        return 130
    except BaseException as group:  # noqa: BLE001 - every failure becomes one clear line
        error = innermost_error(group)
        if isinstance(error, (ListenError, ServerConfigError, ConfigError, *SETUP_ERRORS)):
            log.error("%s", error)
            return 2
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        log.error("authhost stopped on an error: %s: %s", type(error).__name__, error)
        log.debug("traceback", exc_info=error)
        return 1
    return 0 if graceful else 1


async def _serve_with_runtime(
    config: Config,
    demo: bool,
    shared: SharedListeners | None,
    runtime_factory: RuntimeFactory,
    listening: Callable[[], None],
    hard_stop: HardStop,
) -> bool:
    async with runtime_factory(config, demo=demo) as runtime:
        return await serve_runtime(
            config, runtime, shared=shared, listening=listening, hard_stop=hard_stop
        )


def innermost_error(error: BaseException) -> BaseException:
    """The one real error inside trio's exception groups (the first, if there are several)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error
