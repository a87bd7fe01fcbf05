"""Per-rule counters on the Prometheus metrics endpoint, read from a RuleSource when scraped.

The engine counts in plain integers on its hot path; this collector turns them into metric
families only when Prometheus scrapes, so counting costs nothing extra per request. Register
it once: ``prometheus_client.REGISTRY.register(RuleMetricsCollector(source))``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from authhost.rules.loader import RuleSource, ended_rules


class RuleMetricsCollector(Collector):
    """authhost_rule_* families: evaluations, matches, declines, shadow matches, errors."""

    def __init__(self, source: RuleSource) -> None:
        self._source = source

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
        for name, stats in sorted(self._source.rule_stats().items()):
            for field, family in families.items():
                family.add_metric([name], getattr(stats, field))
        yield from families.values()
        info = GaugeMetricFamily(
            "authhost_rules_active", "Enabled rules of the active rule set", labels=["version"]
        )
        info.add_metric([self._source.version], len(self._source.rules))
        yield info
        ended = GaugeMetricFamily(
            "authhost_rules_ended",
            "Enabled rules past their active_until, which no longer run (remove them)",
        )
        ended.add_metric([], len(ended_rules(self._source.rules, time.time())))
        yield ended
        reloads = CounterMetricFamily(
            "authhost_rules_reloads", "Rule set reloads by result", labels=["result"]
        )
        reloads.add_metric(["ok"], self._source.reloads_ok)
        reloads.add_metric(["refused"], self._source.reloads_failed)
        yield reloads
