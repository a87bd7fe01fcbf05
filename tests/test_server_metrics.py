"""The Prometheus endpoint exposes the server's counters, and other areas' collectors."""

from __future__ import annotations

import urllib.request

import trio
from prometheus_client import CollectorRegistry, Counter
from test_server_support import SwitchClient, financial_fields, network_fields, running_server

from authhost.server.metrics import MetricsEndpoint, ServerMetrics


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


async def test_endpoint_exposes_requests_latency_connections_and_extra_collectors() -> None:
    metrics = ServerMetrics()
    extra = CollectorRegistry()
    rule_hits = Counter("authhost_rule_matches", "per rule", ["rule"], registry=extra)
    rule_hits.labels("CT-01").inc(3)
    for collector in list(extra._collector_to_names):  # noqa: SLF001 - move it over
        metrics.register(collector)
    endpoint = MetricsEndpoint(metrics, "127.0.0.1", 0)
    try:
        async with (
            running_server(metrics=metrics) as server,
            SwitchClient.connect(server.addresses[0]) as client,
        ):
            await client.request(financial_fields("0100", "000001"))
            await client.request(financial_fields("0100", "000002"))
            await client.request(network_fields("301", "000003"))
            text = await trio.to_thread.run_sync(_scrape, endpoint.port)
    finally:
        endpoint.close()
    assert 'authhost_requests_total{mti="0100",response_code="00"} 2.0' in text
    assert 'authhost_requests_total{mti="0800",response_code="00"} 1.0' in text
    assert "authhost_request_latency_seconds_count 3.0" in text
    assert "authhost_open_connections 1.0" in text
    assert "authhost_requests_in_flight 0.0" in text
    assert "authhost_timeouts_total 0.0" in text
    assert "authhost_format_errors_total 0.0" in text
    assert 'authhost_rule_matches_total{rule="CT-01"} 3.0' in text


def test_two_servers_in_one_process_keep_separate_counters() -> None:
    first, second = ServerMetrics(), ServerMetrics()
    first.count_request("0100", "00", 0.001)
    assert first.requests_total("0100", "00") == 1
    assert second.requests_total("0100", "00") == 0
