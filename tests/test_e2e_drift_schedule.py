"""The server's scheduled drift runs ([models] drift_every_s) over a real ``authhost serve``
process, on both stores: the champion's drift over the last drift_window_s of journal is
published as metrics after a run, traffic shifted abroad and tenfold flips
``authhost_model_drift_drifted`` to 1 with one log line (not one a run), and a run that fails
is counted while the server goes on authorising.

Before, drift was only a command (``authhost models drift``): a running server published
nothing, and a drifted model showed only when someone remembered to run it.
"""

from __future__ import annotations

import math
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import free_port, serve_process
from test_e2e_auth import store_url  # noqa: F401 - fixture
from test_e2e_model_drift import CARDS, _abroad, _journalled, _no_pan, drift_models  # noqa: F401
from test_server_log_pipe import _purchase

from authhost.models.registry import Registry
from authhost.models.synthetic import DAY, START_TS, generate_rows
from authhost.store import opened_store
from authhost.store.interface import Commit

WEEK = 7 * DAY
BOUND_S = 180.0  # generous: a run replays 20 days of 300 cards on a shared machine


def _metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            return page.read().decode()
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return ""


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Each sample of ``name``: its labels and value."""
    found = re.findall(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.MULTILINE)
    return [(dict(re.findall(r'(\w+)="([^"]*)"', labels)), float(v)) for labels, v in found]


def _value(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample of ``name`` with these labels (None: none)."""
    found = [v for have, v in _samples(text, name) if have == labels]
    return found[0] if found else None


def _until(proc: subprocess.Popen[str], port: int, ready: object) -> str:
    """Poll the metrics endpoint until ``ready(text)`` (generous bound, not a timing)."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited {proc.returncode}"
        text = _metrics(port)
        if text and ready(text):  # type: ignore[operator]
            return text
        time.sleep(0.5)
    raise AssertionError(f"not within {BOUND_S}s:\n{_metrics(port)[-3000:]}")


def _started(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening on" in line:
            return
    raise AssertionError(f"the server exited before it listened: {proc.wait()}")


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM; the rest of its log."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return err


async def _journal(url: str, models: Path, rows: list[dict]) -> None:
    entries = _journalled(rows, models)
    async with opened_store(url) as store:
        for i in range(0, len(entries), 500):
            await store.commit_many([Commit(e) for e in entries[i : i + 500]])


async def test_scheduled_runs_publish_drift_and_flag_a_shift_once(
    tmp_path,
    store_url,  # noqa: F811 - the fixture
    drift_models,  # noqa: F811 - the fixture
):
    # the training traffic's kind, the same weekdays, its last five days the last days before
    # now: the window measures them against the held-out days, weekday for weekday
    now = time.time()
    start = START_TS + WEEK * math.floor((now - 20 * DAY - START_TS) / WEEK)
    await _journal(store_url, drift_models, generate_rows(cards=CARDS, days=20, seed=6,
                                                          start_ts=start))  # fmt: skip
    window = now - (start + 15 * DAY)
    champion = Registry(drift_models).state().champion
    metrics_port = free_port()
    proc = serve_process(
        tmp_path, ["-m", "authhost", "serve", "--demo", "--port", str(free_port())],
        AUTHHOST_STORE_URL=store_url, AUTHHOST_MODELS_DIR=str(drift_models),
        AUTHHOST_MODELS_DRIFT_EVERY_S="1", AUTHHOST_MODELS_DRIFT_WINDOW_S=f"{window:.0f}",
        AUTHHOST_SERVER_METRICS_PORT=str(metrics_port),
    )  # fmt: skip
    try:
        _started(proc)
        text = _until(
            proc,
            metrics_port,
            lambda t: _value(t, "authhost_model_drift_last_run_timestamp_seconds"),
        )
        assert _value(text, "authhost_model_drift_drifted", model=champion) == 0.0, text
        assert _value(text, "authhost_model_drift_rows", model=champion) > 2000
        assert _value(text, "authhost_model_drift_runs_failed_total") == 0.0
        psis = [v for labels, v in _samples(text, "authhost_model_drift_feature_psi")
                if labels["model"] == champion]  # fmt: skip
        assert len(psis) == 47 and max(psis) < 0.25, psis
        assert 0 <= _value(text, "authhost_model_drift_score_psi", model=champion) < 0.25
        assert _value(text, "authhost_model_drift_features", model=champion, status="act") == 0.0
        assert _value(text, "authhost_model_drift_run_seconds") > 0

        # the same traffic again, tenfold and abroad: half the window's purchases moved
        shifted = [_abroad(r) for r in generate_rows(cards=CARDS, days=20, seed=7,
                                                     start_ts=start)]  # fmt: skip
        await _journal(store_url, drift_models, shifted)
        text = _until(proc, metrics_port,
                      lambda t: _value(t, "authhost_model_drift_drifted", model=champion) == 1.0)  # fmt: skip
        cross = _value(
            text, "authhost_model_drift_feature_psi", model=champion, feature="cross_border"
        )
        assert cross > 0.25, text
        assert _value(text, "authhost_model_drift_features", model=champion, status="act") >= 2
        flipped = _value(text, "authhost_model_drift_runs_total")
        _until(proc, metrics_port,
               lambda t: _value(t, "authhost_model_drift_runs_total") >= flipped + 2)  # fmt: skip
        log = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _no_pan(log)
    # one line when it drifted, however many runs saw it drifted
    drifted = [line for line in log.splitlines() if f"model {champion} drifted:" in line]
    assert len(drifted) == 1, drifted
    assert "cross_border" in drifted[0] and "back to normal" not in log


def test_a_failed_run_is_counted_and_the_server_goes_on(tmp_path: Path) -> None:
    """No champion in the models directory: every run fails, is counted, said once."""
    (tmp_path / "models").mkdir()
    metrics_port = free_port()
    proc = serve_process(
        tmp_path, ["-m", "authhost", "serve", "--demo", "--port", "0"],
        AUTHHOST_MODELS_DIR=str(tmp_path / "models"), AUTHHOST_MODELS_DRIFT_EVERY_S="1",
        AUTHHOST_SERVER_METRICS_PORT=str(metrics_port),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        port = 0
        for line in proc.stderr:
            if found := re.search(r"listening on [\d.]+:(\d+)", line):
                port = int(found.group(1))
                break
        assert port, f"the server exited before it listened: {proc.wait()}"
        text = _until(proc, metrics_port,
                      lambda t: (_value(t, "authhost_model_drift_runs_failed_total") or 0) >= 2)  # fmt: skip
        assert _value(text, "authhost_model_drift_last_run_timestamp_seconds") is None
        assert _value(text, "authhost_model_drift_runs_total") >= 2
        assert _purchase(tmp_path, port) == "00"  # still authorising
        log = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    failures = [line for line in log.splitlines() if "scheduled model drift run failed" in line]
    assert len(failures) == 1, failures
    assert "authhost models activate" in failures[0]
