"""The ``authhost_rules_*`` families are on a server's metrics endpoint from its start, with
or without a rules file: a server with no rules used to export none of them, so an alert on
``authhost_rules_active == 0`` or on refused reloads saw an absent series, never 0."""

from __future__ import annotations

import urllib.request

import trio
from conftest import free_port
from test_e2e_auth import start_host

from authhost.runtime import open_runtime
from authhost.server.process import serve_runtime


def scrape(port: int) -> set[str]:
    """The endpoint's sample lines."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return {line for line in response.read().decode().splitlines() if line[:1] != "#"}


async def test_the_rules_families_are_zero_without_rules_and_follow_a_loaded_set(
    nursery, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with_rules = free_port()
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}",
                            metrics_port=with_rules)  # fmt: skip
    without = free_port()
    config = host.config.replace("rules", file="").replace("server", port=0, metrics_port=without)

    async def serve(task_status: trio.TaskStatus) -> None:
        async with open_runtime(config, demo=True) as runtime:
            await serve_runtime(config, runtime, task_status=task_status)

    await nursery.start(serve)
    none = await trio.to_thread.run_sync(scrape, without)
    assert {
        "authhost_rules_loaded 0.0",
        'authhost_rules_active{version="none"} 0.0',
        "authhost_rules_ended 0.0",
        'authhost_rules_reloads_total{result="ok"} 0.0',
        'authhost_rules_reloads_total{result="refused"} 0.0',
    } <= none, sorted(x for x in none if "rule" in x)

    loaded = await trio.to_thread.run_sync(scrape, with_rules)
    assert "authhost_rules_loaded 1.0" in loaded
    assert 'authhost_rules_reloads_total{result="refused"} 0.0' in loaded
    assert any(x.startswith("authhost_rule_evaluations_total{rule=") for x in loaded)
