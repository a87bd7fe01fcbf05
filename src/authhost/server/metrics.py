"""Prometheus metrics of the server, and the endpoint that exposes them.

The server's own metrics live in a registry owned by one ``ServerMetrics`` value (so that
tests can build many servers in one process). The endpoint also serves prometheus_client's
default ``REGISTRY``, so another area (rules, models, store) can publish a metric by creating
it the usual way (``prometheus_client.Counter(...)``), or hand a custom collector to
``ServerMetrics.register``.
"""

from __future__ import annotations

import socket
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from authhost.server.health import Health, health_response
from authhost.server.logs import dropped_log_lines
from authhost.server.sockets import ListenError

REQUESTS_HELP = "Messages answered, by request MTI and response code"
LATENCY_HELP = "Time from a frame's arrival to its response being queued for sending"
STEP_HELP = (
    "Time in each pipeline step and in the store's read and write (store_read, store_write): "
    "runs and total seconds; a declining step ends the run"
)
LOG_DROPPED_HELP = "Log lines the log stream refused (a broken pipe, a full disk): lost"

# a scraper or probe that sends no whole request within this long is closed (its thread freed)
CLIENT_TIMEOUT_S = 10.0

# Seconds; the default 200 ms deadline sits between buckets so timeouts stand out.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
)


class ServerMetrics:
    """Counters, gauges and the latency histogram the server updates on its hot path."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # Requests and latency are counted in plain ints on the hot path (no locks, no label
        # lookups) and turned into metric families when scraped; see _HotPathCollector.
        self._request_counts: dict[tuple[str, str], int] = {}
        self._latency_bounds = LATENCY_BUCKETS
        self._latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # last one is +Inf
        self._latency_sum = 0.0
        self._steps: dict[str, list[int]] = {}  # step -> [runs, total µs]
        r.register(_HotPathCollector(self))
        self.in_flight = Gauge(
            "authhost_requests_in_flight", "Requests received and not yet answered", registry=r
        )
        self.connections = Gauge(
            "authhost_open_connections", "Switch connections currently open", registry=r
        )
        self.timeouts = Counter(
            "authhost_timeouts",
            "Requests answered with the timeout code at the deadline",
            registry=r,
        )
        self.format_errors = Counter(
            "authhost_format_errors",
            "Frames that held no valid message (answered with 30 or the link closed)",
            registry=r,
        )
        self.responses_ignored = Counter(
            "authhost_responses_ignored",
            "Response-class messages received (0110, 0810, ...): logged, not answered",
            registry=r,
        )
        self.handler_errors = Counter(
            "authhost_handler_errors",
            "Requests whose decision raised (answered with 96)",
            registry=r,
        )
        self.connections_closed = Counter(
            "authhost_connections_closed",
            "Connections closed, by reason",
            ["reason"],
            registry=r,
        )
        self.connections_refused = Counter(
            "authhost_connections_refused",
            "Connections closed as soon as accepted: not_allowed (not from allow_from), "
            "too_many (max_connections reached), tls (no TLS handshake completed)",
            ["reason"],
            registry=r,
        )
        # Plain ints on the hot path; the gauges read them when scraped.
        self.in_flight_count = 0
        self.connection_count = 0
        self.in_flight.set_function(lambda: self.in_flight_count)
        self.connections.set_function(lambda: self.connection_count)

    def count_request(self, mti: str, response_code: str, latency_s: float) -> None:
        """Record one answered message (runs once per request: keep it cheap)."""
        key = (mti, response_code)
        counts = self._request_counts
        counts[key] = counts.get(key, 0) + 1
        self._latency_counts[bisect_left(self._latency_bounds, latency_s)] += 1
        self._latency_sum += latency_s

    def count_steps(self, timings_us: Mapping[str, int]) -> None:
        """Add one decision's time per pipeline step (µs): where the latency budget goes."""
        steps = self._steps
        for name, micros in timings_us.items():
            totals = steps.get(name)
            if totals is None:
                totals = steps[name] = [0, 0]
            totals[0] += 1
            totals[1] += micros

    def step_totals(self, step: str) -> tuple[int, int]:
        """(runs, total µs) of one pipeline step so far."""
        runs, micros = self._steps.get(step, (0, 0))
        return runs, micros

    def requests_total(self, mti: str, response_code: str) -> int:
        """How many messages with this MTI were answered with this code."""
        return self._request_counts.get((mti, response_code), 0)

    def register(self, collector: Collector) -> None:
        """Publish another area's collector on the same endpoint."""
        self.registry.register(collector)

    def exposed(self) -> CollectorRegistry:
        """What the endpoint serves: this registry plus prometheus_client's default one."""
        combined = CollectorRegistry()
        combined.register(_Forward(self.registry))
        combined.register(_Forward(REGISTRY))
        return combined


class _HotPathCollector:
    """Exposes the plain-int request counters and latency buckets of a ServerMetrics.

    Runs in the scrape thread: ``dict.copy()`` and ``list()`` are atomic under the GIL, so a
    scrape sees a consistent-enough snapshot without the hot path ever taking a lock.
    """

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return [
            CounterMetricFamily(
                "authhost_requests", REQUESTS_HELP, labels=["mti", "response_code"]
            ),
            HistogramMetricFamily("authhost_request_latency_seconds", LATENCY_HELP),
            SummaryMetricFamily("authhost_pipeline_step_seconds", STEP_HELP, labels=["step"]),
            CounterMetricFamily("authhost_log_lines_dropped", LOG_DROPPED_HELP),
        ]

    def collect(self) -> Iterable[Metric]:
        m = self._metrics
        requests = CounterMetricFamily(
            "authhost_requests", REQUESTS_HELP, labels=["mti", "response_code"]
        )
        for (mti, code), value in sorted(m._request_counts.copy().items()):
            requests.add_metric([mti, code], value)
        yield requests
        counts = list(m._latency_counts)
        buckets, running = [], 0
        for bound, count in zip((*m._latency_bounds, float("inf")), counts, strict=True):
            running += count
            buckets.append((floatToGoString(bound), running))
        yield HistogramMetricFamily(
            "authhost_request_latency_seconds",
            LATENCY_HELP,
            buckets=buckets,
            sum_value=m._latency_sum,
        )
        steps = SummaryMetricFamily("authhost_pipeline_step_seconds", STEP_HELP, labels=["step"])
        for name, (runs, micros) in sorted(m._steps.copy().items()):
            steps.add_metric([name], count_value=runs, sum_value=micros / 1_000_000)
        yield steps
        yield CounterMetricFamily(
            "authhost_log_lines_dropped", LOG_DROPPED_HELP, value=dropped_log_lines()
        )


class _Forward:
    """A collector that yields another registry's metrics (no describe: never name-checked)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class MetricsEndpoint:
    """The HTTP endpoint in a daemon thread: ``/metrics`` (prometheus_client's WSGI app), and
    ``/healthz`` and ``/readyz`` when given the process's ``Health``; GET and HEAD only."""

    def __init__(
        self,
        metrics: ServerMetrics,
        host: str,
        port: int,
        health: Health | None = None,
        client_timeout_s: float = CLIENT_TIMEOUT_S,
    ) -> None:
        app = _routed(make_wsgi_app(metrics.exposed()), health)
        try:
            self._server, self._thread = _serve_wsgi(host, port, app, client_timeout_s)
        except OSError as exc:
            raise ListenError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
                "(server.metrics_port; 0 disables the endpoint)"
            ) from None

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


_App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
METHODS = ("GET", "HEAD")


def _text(start_response: Callable[..., Any], status: str, text: str, *extra: tuple[str, str]):
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
               *extra]  # fmt: skip
    start_response(status, headers)
    return [body]


def _routed(metrics_app: _App, health: Health | None) -> _App:
    """``/metrics`` (and the health probes) for GET and HEAD; 404 for any other path and 405
    for any other method, with a short text body. prometheus_client's app answers every
    path with the metrics, so a scraper or probe pointed at a wrong path got 200 and looked
    fine; and it refuses HEAD."""
    paths = ("/metrics", "/healthz", "/readyz") if health is not None else ("/metrics",)
    not_found = f"not found: {', '.join(paths)}\n"

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path not in paths:
            return _text(start_response, "404 Not Found", not_found)
        if method not in METHODS:
            return _text(start_response, "405 Method Not Allowed",
                         "method not allowed: GET or HEAD\n", ("Allow", "GET, HEAD"))  # fmt: skip
        if path == "/metrics":
            body = metrics_app({**environ, "REQUEST_METHOD": "GET"}, start_response)
        else:
            assert health is not None
            status, payload = health_response(health, path) or ("404 Not Found", b"")
            headers = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("Cache-Control", "no-store"),
            ]
            start_response(status, headers)
            body = [payload]
        return [] if method == "HEAD" else body

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape or probe."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def _serve_wsgi(
    host: str, port: int, app: _App, client_timeout_s: float
) -> tuple[WSGIServer, Thread]:
    """prometheus_client's ``start_wsgi_server`` with our own app (IPv6 hosts too), and a
    timeout on each client's socket: without one a client that connects and sends nothing
    (or half a request) holds a thread for as long as it likes, and many hold many."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    class Handler(_QuietHandler):
        timeout = client_timeout_s

    httpd = make_server(host, port, app, Server, handler_class=Handler)
    thread = Thread(target=httpd.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return httpd, thread
