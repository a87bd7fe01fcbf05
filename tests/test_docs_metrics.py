"""docs/server.md's metrics table names exactly what the server's endpoint exports.

The table lacked ``authhost_connections_refused_total`` and the text named counters without
their ``_total`` suffix, so an operator copying a name into a query or an alert got nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from authhost.admin.drift_watch import DriftCollector, DriftWatch
from authhost.rules.metrics import RuleMetricsCollector
from authhost.server.metrics import ServerMetrics

DOC = Path(__file__).parent.parent / "docs" / "server.md"
RULES_DOC = DOC.parent / "rules.md"
KINDS = {"counter", "gauge", "histogram", "summary"}


def _exported() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, label names) of every family the server's registry exports (each
    labelled metric given one sample so that its labels show)."""
    metrics = ServerMetrics()
    metrics.count_request("0100", "00", 0.001)
    metrics.count_steps({"funds": 1})
    metrics.connections_closed.labels("eof").inc()
    metrics.connections_refused.labels("tls").inc()
    metrics.register(DriftCollector(_drift_run()))
    text = generate_latest(metrics.registry).decode()
    families: dict[str, tuple[str, frozenset[str]]] = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        if name.endswith("_created"):  # prometheus_client's start time of each counter
            continue
        labels = set()
        for sample_labels in re.findall(rf"^{name}\w*\{{([^}}]*)\}}", text, re.MULTILINE):
            labels |= {pair.split("=", 1)[0] for pair in sample_labels.split(",")}
        families[name] = (kind, frozenset(labels - {"le"}))
    return families


def _drift_run() -> DriftWatch:
    """The scheduled drift runs' state after one run ([models] drift_every_s)."""
    watch = DriftWatch()
    feature = {"feature": "amount_log", "psi": 0.3, "status": "act"}
    watch.record(
        {"model": "hgb-1", "thresholds": {"watch": 0.1, "act": 0.25}, "rows": 1000,
         "score": {"psi": 0.05, "status": "stable"}, "features": [feature],
         "summary": {"act": 1, "watch": 0, "stable": 0}},
        1.0,
    )  # fmt: skip
    return watch


def _documented() -> dict[str, tuple[str, frozenset[str]]]:
    section = DOC.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(authhost_\w+)(?:\{([^}]*)\})?` \| (\w+)", section, re.MULTILINE)
    documented = {}
    for name, labels, kind in rows:
        assert kind in KINDS, (name, kind)
        assert name not in documented, f"{name} is in the table twice"
        documented[name] = (kind, frozenset(x.strip() for x in labels.split(",") if x.strip()))
    return documented


def test_the_metrics_table_lists_every_exported_metric_with_its_type_and_labels() -> None:
    assert _documented() == _exported()


def test_every_server_metric_named_in_the_server_docs_is_exported_under_that_name() -> None:
    exported = set(_exported()) | _rules_exported()
    named = set(re.findall(r"authhost_[a-z_]+", DOC.read_text()))
    assert named <= set(exported), f"not exported under these names: {named - set(exported)}"


def test_every_rules_metric_the_docs_name_is_exported_by_a_server_without_rules() -> None:
    """A server without a rules file exports the rules' families too (at 0): they used to be
    absent, and an alert on them saw nothing."""
    exported = _rules_exported()
    text = DOC.read_text() + RULES_DOC.read_text()
    named = set(re.findall(r"authhost_rules?_[a-z_]+[a-z]", text))
    assert named and named <= exported, f"not exported: {named - exported}"


def _rules_exported() -> set[str]:
    """The rules' families a server without rules exports (what it registers then)."""
    registry = CollectorRegistry()
    registry.register(RuleMetricsCollector(None))
    return set(re.findall(r"^# TYPE (\S+) ", generate_latest(registry).decode(), re.MULTILINE))
