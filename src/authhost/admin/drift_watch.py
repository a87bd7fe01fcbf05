"""The server's scheduled drift runs ([models] drift_every_s): the champion's drift over the
last ``drift_window_s`` of journal, measured as ``authhost models drift`` measures it, kept
for the metrics endpoint, so a drifted score or feature raises an alert instead of waiting for
someone to run the command.

A run replays weeks of journal (tens of µs a row of pure Python and numpy), so it runs in a
process of its own (spawned, on a store connection of its own), waited for from a worker
thread: in a thread of the server it shared the interpreter's lock with the authorisation
loop, whose 1 ms ticks then stalled up to 128 ms (p99 30 ms, against 3 ms without) during a
run over 51,000 journal entries.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from authhost.admin.errors import ServiceError
from authhost.admin.model_drift import drifted, model_drift
from authhost.store.opener import opened_store

DRIFT_NICENESS = 10  # the run's process, below the server's own priority
DRIFTED_AT = "act"  # the documented level a 'drifted' state means (PSI above 0.25)


def measure_drift(store_url: str, models_dir: str | Path, window_s: float, now: float) -> Any:
    """One run, in the calling (worker) thread: the champion's report over ``[now - window_s,
    now)``, on a store connection opened and closed here."""
    import trio

    async def run() -> dict[str, Any]:
        async with opened_store(store_url) as store:
            return await model_drift(store, models_dir, now - window_s, now)

    return trio.run(run)


class DriftRunError(Exception):
    """A run the report refused (no champion, no reference, no traffic) or that failed."""


# a run still going this long after it started is stuck (a store that took the connection and
# never answers): its process is killed and the run counted failed, so the next one can start
DRIFT_RUN_TIMEOUT_S = 3600.0


async def measure_apart(
    store_url: str,
    models_dir: str | Path,
    window_s: float,
    now: float,
    timeout_s: float = DRIFT_RUN_TIMEOUT_S,
) -> Any:
    """One run (``measure_drift``) in a spawned process of its own, its answer read from a
    worker thread: its CPU work never holds this interpreter's lock. The process is killed
    and reaped however the wait ends (a run past ``timeout_s``, a stop of the server): a
    multiprocessing pool waited for it without limit, for ever on a store that never
    answered or a process the OOM killer took, and left it running past a stop. Its refusal,
    failure or end is raised here as ``DriftRunError`` with its words."""
    import trio

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_measure_or_say,
        args=(send, os.getpid(), store_url, str(models_dir), window_s, now),
        name="authhost-drift-run",
        daemon=True,
    )
    try:
        process.start()
        send.close()  # the child's end: its exit (killed or not) is then an EOF here
        with trio.move_on_after(timeout_s) as waited:
            outcome = await trio.to_thread.run_sync(_answer, receive, abandon_on_cancel=True)
    finally:
        with trio.CancelScope(shield=True):
            await _end(process)
        receive.close()
    if waited.cancelled_caught:
        raise DriftRunError(f"no answer within {timeout_s:.0f} s: the run was stopped")
    if "error" in outcome:
        raise DriftRunError(outcome["error"])
    return outcome["report"]


def _answer(receive: Connection) -> dict[str, Any]:
    try:
        outcome: dict[str, Any] = receive.recv()
    except (EOFError, OSError):  # the process ended without answering (killed, crashed)
        return {"error": "the run's process ended without an answer (killed? out of memory?)"}
    return outcome


async def _end(process: BaseProcess) -> None:
    """Kill the run's process if it still runs, and reap it (no zombie)."""
    import trio

    if process.pid is None:  # never started
        return
    if process.is_alive():
        process.kill()
    await trio.to_thread.run_sync(process.join)


def _measure_or_say(
    send: Connection, parent: int, store_url: str, models_dir: str, window_s: float, now: float
) -> None:
    """In the child: the report, or what went wrong in words (an exception need not
    unpickle in the parent), sent back. It ends with the server: a server killed (SIGKILL,
    the OOM killer) could not kill it, and it ran on (for ever on a store that never
    answers), a process of the old server beside the new one's."""
    from authhost.server.parent_death import stop_with_parent

    stop_with_parent(parent)
    os.nice(DRIFT_NICENESS)  # the CPU goes to the authorisations first when both want it
    try:
        outcome: dict[str, Any] = {"report": measure_drift(store_url, models_dir, window_s, now)}
    except ServiceError as exc:
        outcome = {"error": exc.message}
    except Exception as exc:  # noqa: BLE001 - the store down, a broken artifact: said
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    send.send(outcome)


@dataclass
class DriftWatch:
    """The last successful run's report, the runs and failures, and the drifted state whose
    changes are logged (not each run)."""

    runs: int = 0
    failed: int = 0
    ran_at: float = 0.0  # when the last successful run ended (0: none yet)
    run_seconds: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)
    drifted: bool = False
    failing: bool = False

    def record(self, report: dict[str, Any], seconds: float) -> str:
        """Keep a run's report; what changed, for one log line ("" when nothing did). A new
        champion starts as normal, as at the start: a drifted one that replaced a drifted
        one was never logged, and one that replaced it undrifted was said "back to normal"."""
        self.runs += 1
        same = self.report.get("model") == report["model"]
        self.ran_at, self.run_seconds, self.report = time.time(), seconds, report
        found = drifted(report, DRIFTED_AT)
        was, self.drifted = self.drifted and same, bool(found)
        recovered, self.failing = self.failing, False
        if self.drifted and not was:
            return f"model {report['model']} drifted: {found}"
        if was and not self.drifted:
            return f"model {report['model']} back to normal: no PSI at {DRIFTED_AT} any more"
        return "runs again" if recovered else ""

    def retire(self, champion: str | None) -> None:
        """After a failed run: forget the last report if its model is no longer the champion
        (activated, rolled back or cleared since). Its gauges went on being exported, a
        retired model's drifted == 1 alerting for ever while every run failed on the new one
        (no reference, no champion); a store down with the same champion keeps them."""
        if self.report and self.report.get("model") != champion:
            self.report, self.ran_at, self.run_seconds, self.drifted = {}, 0.0, 0.0, False

    def fail(self) -> bool:
        """Count a failed run; True for the first of a series (logged once)."""
        self.runs += 1
        self.failed += 1
        first, self.failing = not self.failing, True
        return first


def champion_of(models_dir: str | Path) -> str | None:
    """The models directory's champion now (None: none, or the directory unreadable)."""
    from authhost.models.registry import Registry

    try:
        return Registry(Path(models_dir)).state().champion
    except Exception:  # noqa: BLE001 - unreadable: no champion to keep a report for
        return None


class DriftCollector(Collector):
    """authhost_model_drift_*: the last scheduled drift run's PSI of the score and of each
    feature, the drifted state, the features per status, and the runs that failed. Alert on
    drifted == 1, on failed runs growing, and on a run time that stops moving. The run
    counters from the start; the report's families only after a first successful run."""

    def __init__(self, watch: DriftWatch) -> None:
        self._watch = watch

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        watch = self._watch
        runs = CounterMetricFamily("authhost_model_drift_runs", "Scheduled drift runs")
        runs.add_metric([], watch.runs)
        yield runs
        failed = CounterMetricFamily(
            "authhost_model_drift_runs_failed",
            "Scheduled drift runs that failed (no champion, no reference, no traffic, the store)",
        )
        failed.add_metric([], watch.failed)
        yield failed
        if not watch.ran_at:
            return
        yield from _report_families(watch)


def _report_families(watch: DriftWatch) -> Iterator[Metric]:
    report, model = watch.report, [watch.report["model"]]
    for name, text, value in (
        ("last_run_timestamp_seconds", "When the last successful drift run ended", watch.ran_at),
        ("run_seconds", "How long the last successful drift run took", watch.run_seconds),
    ):
        family = GaugeMetricFamily(f"authhost_model_drift_{name}", text)
        family.add_metric([], value)
        yield family
    for name, text, value in (
        (
            "drifted",
            f"1 if a feature's or the score's PSI was {DRIFTED_AT} at the last run "
            f"(above {report['thresholds'][DRIFTED_AT]})",
            float(watch.drifted),
        ),
        ("rows", "Scored requests the last drift run measured", report["rows"]),
    ):
        family = GaugeMetricFamily(f"authhost_model_drift_{name}", text, labels=["model"])
        family.add_metric(model, value)
        yield family
    score = GaugeMetricFamily(
        "authhost_model_drift_score_psi",
        "The score's Population Stability Index at the last drift run",
        labels=["model"],
    )
    if report["score"] is not None:  # no journalled score in the window: no sample
        score.add_metric(model, report["score"]["psi"])
    yield score
    features = GaugeMetricFamily(
        "authhost_model_drift_feature_psi",
        "Each feature's Population Stability Index at the last drift run",
        labels=["model", "feature"],
    )
    for feature in report["features"]:
        features.add_metric([*model, feature["feature"]], feature["psi"])
    yield features
    statuses = GaugeMetricFamily(
        "authhost_model_drift_features",
        "Features per status (stable, watch, act) at the last drift run",
        labels=["model", "status"],
    )
    for status, count in report["summary"].items():
        statuses.add_metric([*model, status], count)
    yield statuses
