"""``/healthz`` and ``/readyz`` on the metrics endpoint of a real server.

Readiness follows the store: a paused redis-server makes the host not ready within a few
seconds while it stays live, and ready again once Redis answers. Liveness follows the event
loop: a loop held up for longer than the staleness bound is reported dead by the HTTP thread.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import trio
from conftest import free_port, redis_command
from test_e2e_auth import start_host, store_url  # noqa: F401  (fixture)

from authhost.server import health as health_module
from authhost.server.health import Health


def fetch(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def until(port: int, path: str, status: int, within_s: float = 10.0) -> dict[str, Any]:
    """Poll ``path`` until it answers ``status``; its body. Fails after ``within_s``."""
    deadline = trio.current_time() + within_s
    while True:
        got, body = await trio.to_thread.run_sync(fetch, port, path)
        if got == status:
            return body
        assert trio.current_time() < deadline, f"{path} still {got}: {body}"
        await trio.sleep(0.1)


async def test_a_serving_host_is_live_and_ready(nursery, tmp_path, store_url):  # noqa: F811
    url = store_url
    port = free_port()
    await start_host(nursery, tmp_path, url, metrics_port=port)
    ready = await until(port, "/readyz", 200)
    assert ready["live"] and ready["listening"] and not ready["draining"]
    assert ready["store"]["ok"] and ready["store"]["error"] == ""
    status, live = await trio.to_thread.run_sync(fetch, port, "/healthz")
    assert status == 200 and live["live"]
    metrics = await trio.to_thread.run_sync(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    )
    assert b"authhost_requests_in_flight" in metrics  # the metrics are still served


async def test_not_ready_while_the_store_is_paused_and_ready_again_after(
    nursery, tmp_path, monkeypatch, private_redis
):
    monkeypatch.chdir(tmp_path)
    url = f"{private_redis}?prefix=health-{uuid.uuid4().hex[:8]}"
    port = free_port()
    await start_host(nursery, tmp_path, url, metrics_port=port)
    await until(port, "/readyz", 200)
    # 6 s: longer than the probe's 2 s timeout; it ends by itself (UNPAUSE would wait too)
    assert redis_command(private_redis, "CLIENT", "PAUSE", "6000", "ALL") == "+OK"
    down = await until(port, "/readyz", 503)
    assert not down["ready"] and not down["store"]["ok"]
    assert "no answer" in down["store"]["error"]
    status, live = await trio.to_thread.run_sync(fetch, port, "/healthz")
    assert status == 200 and live["live"]  # the process is fine: do not restart it
    back = await until(port, "/readyz", 200)
    assert back["store"]["ok"]


async def test_a_held_up_event_loop_is_reported_dead(nursery, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(health_module, "STALE_S", 1.0)
    port = free_port()
    await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'a.db'}", metrics_port=port)
    await until(port, "/healthz", 200)
    seen: list[int] = []
    prober = threading.Thread(
        target=lambda: (time.sleep(2.2), seen.append(fetch(port, "/healthz")[0]))
    )
    prober.start()
    time.sleep(3.0)  # the event loop (the host's and this test's) is held up: no beats
    prober.join()
    assert seen == [503]
    await until(port, "/healthz", 200)  # it beats again


def test_readiness_needs_every_condition() -> None:
    now = 1_000.0
    good = Health(beat=now - 0.5, store_ok_at=now - 0.5, listening=True)
    assert good.report(now)["ready"] and good.report(now)["live"]
    for changed in (
        Health(beat=now - 0.5, store_ok_at=now - 0.5, listening=True, draining=True),
        Health(beat=now - 0.5, store_ok_at=now - 0.5, listening=False),
        Health(beat=now - 0.5, store_ok_at=now - 9.0, listening=True),  # store answer stale
        Health(beat=now - 0.5, store_ok_at=now - 0.5, listening=True, store_error="boom"),
        Health(beat=now - 9.0, store_ok_at=now - 0.5, listening=True),  # loop stalled
        Health(listening=True),  # nothing measured yet
    ):
        assert not changed.report(now)["ready"], changed
    assert not Health(beat=now - 9.0).report(now)["live"]
    assert Health(beat=now - 0.5, draining=True).report(now)["live"]  # draining is alive
