"""The load benchmark: split a plan over load processes, merge what they measured, report.

One process drives the connections with trio; when one process cannot saturate the server,
``processes`` > 1 starts that many (each with its share of connections, rate, concurrency and
count), releases them together once all are connected, and merges their HDR histograms.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio
from rich.table import Table

from authhost.iso.codes import meaning
from simulator.loadgen import NO_CODE, LoadPlan, LoadResult, run_load

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


@dataclass
class BenchReport:
    label: str
    plan: LoadPlan
    processes: int
    result: LoadResult

    @property
    def throughput(self) -> float:
        return self.result.completed / self.result.elapsed

    def latency_ms(self) -> dict[str, float]:
        histogram = self.result.histogram
        if histogram.get_total_count() == 0:
            return {}
        out = {name: histogram.get_value_at_percentile(p) / 1000 for name, p in PERCENTILES.items()}
        out["max"] = histogram.get_max_value() / 1000
        out["mean"] = histogram.get_mean_value() / 1000
        return {k: round(v, 3) for k, v in out.items()}

    def as_dict(self) -> dict[str, Any]:
        plan = self.plan
        result = self.result
        return {
            "label": self.label,
            "target": f"{plan.host}:{plan.port}",
            "mode": "open" if plan.rate is not None else "closed",
            "rate": plan.rate,
            "concurrency": None if plan.rate is not None else plan.concurrency,
            "connections": plan.connections,
            "processes": self.processes,
            "count": plan.count,
            "duration_s": plan.duration,
            "timeout_s": plan.timeout,
            "sent": result.sent,
            "completed": result.completed,
            "timeouts": result.timeouts,
            "errors": result.errors,
            "elapsed_s": round(result.elapsed, 3),
            "throughput_rps": round(self.throughput, 1),
            "latency_ms": self.latency_ms(),
            "codes": dict(sorted(result.codes.items())),
            "error_messages": result.error_messages,
        }

    def table(self) -> Table:
        data = self.as_dict()
        table = Table(title=f"authhost-sim bench: {self.label}", show_header=False)
        table.add_column("measure", style="bold")
        table.add_column("value", justify="right")
        load = (
            f"open loop, {data['rate']:,.0f}/s offered"
            if data["mode"] == "open"
            else f"closed loop, {data['concurrency']} in flight"
        )
        table.add_row("target", data["target"])
        table.add_row("load", f"{load}, {data['connections']} connections, "
                      f"{data['processes']} process(es)")  # fmt: skip
        table.add_row("sent / answered", f"{data['sent']:,} / {data['completed']:,}")
        table.add_row("timeouts / errors", f"{data['timeouts']:,} / {data['errors']:,}")
        table.add_row("elapsed", f"{data['elapsed_s']:.2f} s")
        table.add_row("throughput", f"{data['throughput_rps']:,.0f} /s")
        for name, value in data["latency_ms"].items():
            table.add_row(f"latency {name}", f"{value:.2f} ms")
        for code, count in data["codes"].items():
            text = "no response code" if code == NO_CODE else meaning(code)
            table.add_row(f"code {code} ({text})", f"{count:,}")
        for message in data["error_messages"]:
            table.add_row("error", message)
        return table


def split_plan(plan: LoadPlan, processes: int) -> list[LoadPlan]:
    """Each process's share of connections, rate, concurrency and count."""
    if processes < 1:
        raise ValueError("at least one load process")
    if processes > plan.connections:
        raise ValueError("each load process needs at least one connection")

    def share(total: int, i: int) -> int:
        base, extra = divmod(total, processes)
        return base + (1 if i < extra else 0)

    plans = []
    for i in range(processes):
        connections = share(plan.connections, i)
        plans.append(
            dataclasses.replace(
                plan,
                connections=connections,
                rate=None if plan.rate is None else plan.rate / processes,
                concurrency=max(share(plan.concurrency, i), connections),
                count=None if plan.count is None else share(plan.count, i),
                process_index=i,
            )
        )
    return plans


def _worker(
    plan: LoadPlan,
    fields: Sequence[Mapping[str, Any]],
    done: Any,  # multiprocessing Value
    barrier: Any,  # multiprocessing Barrier
    results: Any,  # multiprocessing Queue
) -> None:
    def progress(n: int) -> None:
        done.value = n

    try:
        result = trio.run(run_load, plan, fields, progress, partial(barrier.wait, 60))
        results.put(result.to_wire())
    except BaseException as error:  # report, never hang the parent
        barrier.abort()
        failed = LoadResult(errors=plan.count or 0, error_messages=[f"load process: {error!r}"])
        failed.started = failed.finished = time.monotonic()
        results.put(failed.to_wire())


def run_bench(
    plan: LoadPlan,
    fields: Sequence[Mapping[str, Any]],
    *,
    processes: int = 1,
    label: str = "",
    progress: Callable[[int], None] = lambda done: None,
) -> BenchReport:
    """Run the plan over ``processes`` load processes; ``progress`` gets the answered count."""
    fields = [dict(f) for f in fields]
    if processes == 1:
        result = trio.run(run_load, plan, fields, progress)
        return BenchReport(label or "bench", plan, 1, result)
    context = mp.get_context("spawn")
    plans = split_plan(plan, processes)
    counters = [context.Value("q", 0) for _ in plans]
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(p, fields, c, barrier, results), daemon=True)
        for p, c in zip(plans, counters, strict=True)
    ]
    for worker in workers:
        worker.start()
    merged = LoadResult()
    collected = 0
    while collected < processes:
        progress(sum(c.value for c in counters))
        try:
            merged.merge(LoadResult.from_wire(results.get(timeout=0.2)))
            collected += 1
        except queue.Empty:  # keep the progress moving
            if not any(w.is_alive() for w in workers) and results.empty():
                merged.error_messages.append("a load process died without a result")
                break
    for worker in workers:
        worker.join(timeout=5)
    progress(merged.completed)
    return BenchReport(label or "bench", plan, processes, merged)
