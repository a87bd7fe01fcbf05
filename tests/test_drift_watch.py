"""The server's drift runs say when the state changes, never per run (``admin.drift_watch``):
drifted, back to normal, and runs working again after failing; the metrics carry each run."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from authhost.admin.drift_watch import DriftCollector, DriftWatch


def _report(psi: float) -> dict[str, Any]:
    status = "act" if psi > 0.25 else "watch" if psi >= 0.1 else "stable"
    return {
        "model": "hgb-1", "thresholds": {"watch": 0.1, "act": 0.25}, "rows": 1500,
        "score": {"psi": 0.02, "status": "stable"},
        "features": [{"feature": "cross_border", "psi": psi, "status": status}],
        "summary": {s: int(s == status) for s in ("act", "watch", "stable")},
    }  # fmt: skip


def test_each_change_is_said_once_and_each_run_counted() -> None:
    watch = DriftWatch()
    said = [watch.record(_report(psi), 1.0) for psi in (0.01, 0.05, 0.9, 1.2, 0.02, 0.03)]
    assert said[:2] == ["", ""]
    assert said[2] == "model hgb-1 drifted: drift at act or above: 1 of the period (cross_border)"
    assert said[3] == ""  # still drifted: no second line
    assert said[4].startswith("model hgb-1 back to normal") and said[5] == ""
    assert [watch.fail(), watch.fail()] == [True, False]  # the first failure said, not each
    assert watch.record(_report(0.01), 1.0) == "runs again"
    assert (watch.runs, watch.failed, watch.drifted) == (9, 2, False)


def test_the_metrics_say_nothing_of_a_run_before_the_first_and_then_its_values() -> None:
    watch = DriftWatch()
    registry = CollectorRegistry()
    registry.register(DriftCollector(watch))
    before = generate_latest(registry).decode()
    assert "authhost_model_drift_runs_total 0.0" in before
    assert "authhost_model_drift_drifted" not in before  # no 0 that would read as "fine"
    watch.fail()
    watch.record(_report(0.9), 2.5)
    after = generate_latest(registry).decode()
    assert 'authhost_model_drift_drifted{model="hgb-1"} 1.0' in after
    assert 'authhost_model_drift_feature_psi{feature="cross_border",model="hgb-1"} 0.9' in after
    assert 'authhost_model_drift_score_psi{model="hgb-1"} 0.02' in after
    assert "authhost_model_drift_runs_failed_total 1.0" in after
    assert "authhost_model_drift_run_seconds 2.5" in after


def test_a_failed_run_drops_the_report_of_a_model_no_longer_the_champion() -> None:
    """A drifted champion replaced (activate, rollback, clear) by one whose runs fail (no
    reference, no champion): its drifted == 1 was exported for ever, alerting on a retired
    model; the same champion with the store down keeps its last report."""
    watch = DriftWatch()
    registry = CollectorRegistry()
    registry.register(DriftCollector(watch))
    watch.record(_report(0.9), 2.5)
    watch.retire("hgb-1")  # the store down: the same champion
    watch.fail()
    assert 'authhost_model_drift_drifted{model="hgb-1"} 1.0' in generate_latest(registry).decode()
    watch.retire("hgb-2")
    watch.fail()
    after = generate_latest(registry).decode()
    assert 'model="hgb-1"' not in after and "authhost_model_drift_drifted" not in after
    assert "authhost_model_drift_runs_failed_total 2.0" in after


def test_a_new_champion_s_drift_is_said_and_not_the_old_one_s_end() -> None:
    """A drifted champion replaced by another drifted one: the new one's drift had no log line
    (the state was already drifted); replaced by a sound one, it was said back to normal."""
    watch = DriftWatch()
    assert watch.record(_report(0.9), 1.0).startswith("model hgb-1 drifted")
    assert watch.record({**_report(0.8), "model": "hgb-2"}, 1.0).startswith("model hgb-2 drifted")
    assert watch.record({**_report(0.01), "model": "hgb-3"}, 1.0) == ""
