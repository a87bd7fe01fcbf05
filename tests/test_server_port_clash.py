"""Two of the server's own sockets on one port are refused before anything opens, naming
both keys: the second to open used to fail with "Address already in use" on a port nothing
held once authhost had exited (metrics_port equal to a listener's was reported as the
listener's port in use; with workers, metrics_port + i ran into the admin port)."""

from __future__ import annotations

import pytest

from authhost.config import AdminConfig, Config, ListenerConfig, ServerConfig
from authhost.server.process import run
from authhost.server.server import ServerConfigError, check_config


def _config(listeners=(), admin: AdminConfig | None = None, **server) -> Config:
    return Config(
        server=ServerConfig(**server), admin=admin or AdminConfig(), listeners=list(listeners)
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            _config(port=9583, metrics_port=9583),
            "[server] port and server.metrics_port are both port 9583 on 127.0.0.1",
        ),
        (
            _config(metrics_port=9600, workers=3, admin=AdminConfig(port=9602)),
            "server.metrics_port + 2 (worker 2) and admin.port are both port 9602",
        ),
        (
            _config([ListenerConfig(port=8584), ListenerConfig(port=8584, framing="ascii4")]),
            "[[listeners]] #1 port and [[listeners]] #2 port are both port 8584",
        ),
        (
            _config(admin=AdminConfig(host="0.0.0.0", port=8583)),
            "[server] port and admin.port are both port 8583 on 127.0.0.1 / 0.0.0.0",
        ),
    ],
    ids=["metrics on the ISO port", "a worker's metrics on the admin port", "two listeners",
         "every interface"],
)  # fmt: skip
def test_two_sockets_on_one_port_are_refused_naming_both(config: Config, message: str) -> None:
    with pytest.raises(ServerConfigError) as refused:
        check_config(config)
    assert str(refused.value).startswith(message), refused.value


@pytest.mark.parametrize(
    "config",
    [
        _config(),  # the defaults: 8583, 9464, 8080
        _config([ListenerConfig(host="10.0.0.1", port=8583)], host="10.0.0.2"),
        _config([ListenerConfig(host="::", port=8583)]),  # IPv6 only beside 127.0.0.1
        _config(port=0, metrics_port=0, admin=AdminConfig(port=0)),  # ports picked for each
        _config(metrics_port=8080, admin=AdminConfig(port=0)),  # the admin API is off
    ],
    ids=["defaults", "two addresses", "ipv6 beside ipv4", "port 0", "admin off"],
)
def test_sockets_that_do_not_collide_pass(config: Config) -> None:
    check_config(config)


def test_serve_exits_2_before_opening_anything(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    def no_runtime(*args, **kwargs):  # pragma: no cover - refused before the runtime opens
        raise AssertionError("the runtime was opened")

    assert run(_config(port=9583, metrics_port=9583), runtime_factory=no_runtime) == 2
