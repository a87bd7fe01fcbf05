"""Store counters on the Prometheus metrics endpoint, read from the store when scraped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class GroupCommitCollector(Collector):
    """authhost_sqlite_group_commit_*: the SQLite store's authorisation commits, the
    transactions they shared (commits / batches = the mean batch), the waits for a write lock
    another process held, and the hand-overs to the writer thread (a second process or an
    admin write held the lock for long)."""

    def __init__(self, store: Any) -> None:  # a store with group_commit_stats()
        self._store = store

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        stats = self._store.group_commit_stats()
        for name, value, text in (
            ("batches", stats.batches, "Write transactions of authorisation commits"),
            ("commits", stats.commits, "Authorisation commits written in those transactions"),
            ("handed_over", stats.handed_over, "Commits handed to the writer thread"),
            ("lock_waits", stats.lock_waits, "Waits for a write lock another process held"),
        ):
            family = CounterMetricFamily(f"authhost_sqlite_group_commit_{name}", text)
            family.add_metric([], value)
            yield family


class AcceptorCountersCollector(Collector):
    """authhost_acceptor_counters_*: what this process's merchant and terminal counters hold
    (requests kept and their memory, acceptors) and whether it follows them (a loaded rule
    reads them)."""

    def __init__(self, store: Any) -> None:  # a CardStore
        self._store = store

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        stats = self._store.acceptor_stats()
        for name, value, text in (
            ("events", stats.events, "Requests of the last hour kept (about 140 bytes each)"),
            ("acceptors", stats.acceptors, "Merchants and terminals kept (about 400 bytes each)"),
            ("following", int(stats.following), "1 while a loaded rule reads the counters"),
        ):
            family = GaugeMetricFamily(f"authhost_acceptor_counters_{name}", text)
            family.add_metric([], value)
            yield family


class AuditChainCollector(Collector):
    """authhost_audit_chain_ok / _breaks / _entries / _checked_timestamp_seconds: the server's
    last walk of the audit log's hash chain (PCI DSS 10.3.4 wants a change to raise an alert:
    alert on ok == 0, and on a checked time that stops moving). Nothing before the first."""

    def __init__(self, watch: Any) -> None:  # an admin.audit_verify.AuditWatch
        self._watch = watch

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        watch = self._watch
        if not watch.checked_at:
            return
        for name, text, value in (
            ("ok", "1 if the audit chain verified at the last walk, 0 if it broke", watch.ok),
            ("breaks", "Entries changed, removed or unsealed at the last walk", watch.breaks),
            ("entries", "Audit entries walked at the last walk", watch.entries),
            ("checked_timestamp_seconds", "When the last walk ended", watch.checked_at),
        ):
            family = GaugeMetricFamily(f"authhost_audit_chain_{name}", text)
            family.add_metric([], float(value))
            yield family


class AdminLockoutCollector(Collector):
    """authhost_admin_lockouts_total / authhost_admin_locked_requests_total: client addresses
    this process locked out of the admin API for wrong tokens (PCI DSS 8.3.4), and the
    requests it answered 429 for it. Alert on any lockout: someone is guessing tokens."""

    def __init__(self, lockout: Any) -> None:  # an admin.lockout.AdminLockout
        self._lockout = lockout

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        for name, text, value in (
            ("lockouts", "Client addresses locked out of the admin API for wrong tokens",
             self._lockout.lockouts),
            ("locked_requests", "Admin API requests answered 429 while their address was "
             "locked out", self._lockout.refused),
        ):  # fmt: skip
            counter = CounterMetricFamily(f"authhost_admin_{name}", text)
            counter.add_metric([], float(value))
            yield counter


class UnfinishedWorkCollector(Collector):
    """authhost_unfinished_activations_finished_total / _disputes_recorded_total / _failed /
    _looked_timestamp_seconds: the server's looks for work a crash cut short
    (``admin.service.unfinished``). A finished one means a crash or an outage cut it short;
    alert on failed > 0 and on a look time that stops moving. Nothing before the first look."""

    def __init__(self, watch: Any) -> None:  # an admin.service.unfinished.FinishWatch
        self._watch = watch

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        watch = self._watch
        if not watch.looked_at:
            return
        for name, text, value in (
            ("activations_finished", "Activations cut short and finished by this process",
             watch.activations_finished),
            ("disputes_recorded", "Disputes whose credit posted, recorded by this process",
             watch.disputes_recorded),
        ):  # fmt: skip
            counter = CounterMetricFamily(f"authhost_unfinished_{name}", text)
            counter.add_metric([], float(value))
            yield counter
        for name, text, value in (
            ("failed", "Activations the last look could not finish", watch.failed),
            ("looked_timestamp_seconds", "When the last look ended", watch.looked_at),
        ):
            family = GaugeMetricFamily(f"authhost_unfinished_{name}", text)
            family.add_metric([], float(value))
            yield family


class PendingJournalCollector(Collector):
    """authhost_journal_pending / authhost_journal_pending_dropped_total: the journal entries of
    requests answered off the pipeline (91 at the deadline, 30, 63) waiting for the store, and
    those dropped past the bound; a rising gauge says the store has been failing."""

    def __init__(self, service: Any) -> None:  # an AuthService
        self._service = service

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "authhost_journal_pending", "Journal entries answered off the pipeline, not written"
        )
        waiting.add_metric([], self._service.pending)
        yield waiting
        dropped = CounterMetricFamily(
            "authhost_journal_pending_dropped", "Such entries dropped past the queue's bound"
        )
        dropped.add_metric([], self._service.pending_dropped)
        yield dropped
