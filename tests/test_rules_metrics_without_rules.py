"""The ``authhost_rules_*`` families are on a server's metrics endpoint from its start, with
or without a rules file: a server with no rules used to export none of them, so an alert on
``authhost_rules_active == 0`` or on refused reloads saw an absent series, never 0."""

from __future__ import annotations

import urllib.request

import trio
from conftest import free_port
from test_e2e_auth import RULES, start_host

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


async def test_a_reload_of_a_server_started_without_rules_says_it_takes_none(
    nursery, tmp_path, monkeypatch, caplog
):
    """An operator who set ``[rules] file`` after the start and sent SIGHUP (``authhost rules
    reload``, which said the log would show the new version) read nothing in the log, and the
    server ran on without fraud rules (``authhost_rules_loaded`` 0). The reload now says so."""
    monkeypatch.chdir(tmp_path)
    host = await start_host(nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}")
    port = free_port()
    config = host.config.replace("rules", file="").replace("server", port=0, metrics_port=port)
    (tmp_path / "rules.toml").write_text(RULES)  # the file the operator wrote since

    async with open_runtime(config, demo=True) as runtime:
        caplog.clear()
        await runtime.reload()  # what SIGHUP runs
    said = [r.getMessage() for r in caplog.records if r.name == "authhost.runtime"]
    assert any("started without a rules file" in m and "restart" in m for m in said), said
