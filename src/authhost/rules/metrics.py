"""Per-rule counters on the Prometheus metrics endpoint, read from a RuleSource when scraped.

The engine counts in plain integers on its hot path; this collector turns them into metric
families only when Prometheus scrapes, so counting costs nothing extra per request. Register
it once: ``prometheus_client.REGISTRY.register(RuleMetricsCollector(source))``. A server
without rules registers it with no source: every family is there from the start, at 0, with
``authhost_rules_loaded`` 0, so an alert on them sees 0 rather than an absent series.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from authhost.rules.loader import RuleSource, ended_rules


class RuleMetricsCollector(Collector):
    """authhost_rule_* families: evaluations, matches, declines, shadow matches, errors."""

    def __init__(self, source: RuleSource | None) -> None:
        self._source = source  # None: the server runs without rules

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are fixed; avoid a collect() at registration

    def collect(self) -> Iterator[Metric]:
        families = {
            "evaluated": CounterMetricFamily(
                "authhost_rule_evaluations", "Transactions a rule was evaluated on", labels=["rule"]
            ),
            "matched": CounterMetricFamily(
                "authhost_rule_matches", "Enforced matches of a rule", labels=["rule"]
            ),
            "declined": CounterMetricFamily(
                "authhost_rule_declines", "Declines decided by a rule", labels=["rule"]
            ),
            "shadow_matches": CounterMetricFamily(
                "authhost_rule_shadow_matches", "Matches of a rule in shadow mode", labels=["rule"]
            ),
            "errors": CounterMetricFamily(
                "authhost_rule_errors",
                "Evaluations where a rule raised (no match)",
                labels=["rule"],
            ),
        }
        source = self._source
        for name, stats in sorted(source.rule_stats().items() if source else ()):
            for field, family in families.items():
                family.add_metric([name], getattr(stats, field))
        yield from families.values()
        loaded = GaugeMetricFamily(
            "authhost_rules_loaded", "1: a rules file is in force; 0: no rules (none configured)"
        )
        loaded.add_metric([], int(source is not None and source.path is not None))
        yield loaded
        info = GaugeMetricFamily(
            "authhost_rules_active", "Enabled rules of the active rule set", labels=["version"]
        )
        info.add_metric([source.version if source else "none"], len(source.rules) if source else 0)
        yield info
        ended = GaugeMetricFamily(
            "authhost_rules_ended",
            "Enabled rules past their active_until, which no longer run (remove them)",
        )
        ended.add_metric([], len(ended_rules(source.rules, time.time())) if source else 0)
        yield ended
        reloads = CounterMetricFamily(
            "authhost_rules_reloads", "Rule set reloads by result", labels=["result"]
        )
        reloads.add_metric(["ok"], source.reloads_ok if source else 0)
        reloads.add_metric(["refused"], source.reloads_failed if source else 0)
        yield reloads
