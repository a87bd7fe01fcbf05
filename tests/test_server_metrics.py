"""The Prometheus endpoint exposes the server's counters, and other areas' collectors."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import trio
from prometheus_client import CollectorRegistry, Counter
from test_server_support import SwitchClient, financial_fields, network_fields, running_server

from authhost.server.health import Health
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


def _ask(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_the_endpoint_answers_its_paths_and_methods_only() -> None:
    """A scraper or probe pointed at a wrong path (a typo, an old dashboard) used to get 200
    and the metrics, and so did a POST: a misconfiguration looked like success. Now the
    documented paths answer GET and HEAD; any other path is 404 and another method 405."""
    metrics = ServerMetrics()
    health = Health()
    endpoint = MetricsEndpoint(metrics, "127.0.0.1", 0, health=health)
    try:
        port = endpoint.port
        status, headers, body = _ask(port, "GET", "/metrics")
        assert status == 200 and b"authhost_requests_in_flight" in body
        assert headers["Content-Type"].startswith("text/plain")
        status, _, body = _ask(port, "HEAD", "/metrics")
        assert (status, body) == (200, b"")
        for path in ("/healthz", "/readyz"):
            assert _ask(port, "GET", path)[0] == 503  # no heartbeat yet: answered, not 404
        for path in ("/", "/metric", "/metrics/x", "/favicon.ico", "/healthz/"):
            status, headers, body = _ask(port, "GET", path)
            assert (status, body) == (404, b"not found: /metrics, /healthz, /readyz\n"), path
            assert headers["Content-Type"].startswith("text/plain")
        for method in ("POST", "PUT", "DELETE"):
            for path in ("/metrics", "/readyz"):
                status, headers, body = _ask(port, method, path)
                assert (status, body) == (405, b"method not allowed: GET or HEAD\n")
                assert headers["Allow"] == "GET, HEAD"
        assert _ask(port, "GET", "/metrics?name[]=authhost_open_connections")[0] == 200
    finally:
        endpoint.close()
    # without health probes their paths are not found either
    endpoint = MetricsEndpoint(metrics, "127.0.0.1", 0)
    try:
        status, _, body = _ask(endpoint.port, "GET", "/healthz")
        assert (status, body) == (404, b"not found: /metrics\n")
    finally:
        endpoint.close()


def test_a_client_that_sends_no_whole_request_is_closed() -> None:
    """A client that connects to the endpoint and sends half a request (or nothing) held one
    of its threads for as long as it stayed connected; now it is closed after the client
    timeout, and the endpoint serves on."""
    endpoint = MetricsEndpoint(ServerMetrics(), "127.0.0.1", 0, client_timeout_s=0.3)
    try:
        with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as slow:
            slow.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
            assert slow.recv(4096) == b""  # closed by the endpoint (10 s: a bound for a hang)
        assert _ask(endpoint.port, "GET", "/metrics")[0] == 200
    finally:
        endpoint.close()
