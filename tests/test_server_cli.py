"""``authhost serve --help`` documents every key; ``authhost config show`` prints the
effective configuration; bad configuration is one clear line, exit 2."""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.config import SECTIONS, ListenerConfig, load_config
from authhost.store import open_store
from authhost.store.interface import StoreError

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """``serve`` configures the authhost logger; give the next test the logger it had."""
    logger = logging.getLogger("authhost")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def test_serve_help_lists_every_configuration_key() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--config",
        "--host",
        "--port",
        "--store",
        "--demo",
        "--workers",
        "--dialect",
        "--framing",
    ):
        assert option in result.output
    for section, cls in SECTIONS.items():
        assert f"[{section}]" in result.output
        for key in dataclasses.fields(cls):
            assert f"AUTHHOST_{section.upper()}_{key.name.upper()}" in result.output
    listeners = result.output[result.output.index("[[listeners]]") :]
    for key in dataclasses.fields(ListenerConfig):  # tls_*, allow_from... were left out
        assert key.name in " ".join(listeners.split()), key.name


def test_config_show_merges_file_environment_and_options(tmp_path: Path) -> None:
    file = tmp_path / "authhost.toml"
    file.write_text('[server]\nport = 9000\ndeadline_ms = 150\n[admin]\ntokens = "t0k:operator"\n')
    result = runner.invoke(
        app,
        [
            "config",
            "show",
            "--config",
            str(file),
            "--port",
            "9100",
            "--store",
            "redis://:secret@127.0.0.1:6379/0",
        ],
        env={"AUTHHOST_SERVER_LOG_FORMAT": "text"},
    )
    assert result.exit_code == 0, result.output
    shown = tomllib.loads(result.output)
    assert shown["server"]["port"] == 9100  # option beats file
    assert shown["server"]["deadline_ms"] == 150  # file beats default
    assert shown["server"]["log_format"] == "text"  # environment
    assert shown["store"]["url"] == "redis://:***@127.0.0.1:6379/0"
    assert shown["admin"]["tokens"] == "***"
    assert "secret" not in result.output and "t0k" not in result.output
    # read back, "***" would be the token and the password: the lines say they are hidden
    hidden = [line for line in result.output.splitlines() if "***" in line]
    assert len(hidden) == 2 and all(
        line.endswith("# hidden: put the real value back") for line in hidden
    )
    # what it prints is a configuration file that loads back to the same values
    shown["admin"]["tokens"] = ""
    shown["store"]["url"] = "sqlite:///x.db"
    back = tmp_path / "back.toml"
    back.write_text(result.output.replace("***", "x"))
    assert load_config(back, env={}).server.port == 9100


async def test_a_store_password_in_the_query_is_hidden_too(tmp_path: Path) -> None:
    """coredis reads ``?password=`` as it reads ``:secret@``: config show and the error of a
    Redis that cannot be reached hid only the second (the URL is pasted into tickets)."""
    url = f"redis://127.0.0.1:{free_port()}/0?prefix=t&password=s3cret"
    result = runner.invoke(app, ["config", "show", "--store", url])
    assert result.exit_code == 0, result.output
    assert tomllib.loads(result.output)["store"]["url"].endswith("?prefix=t&password=***")
    assert "s3cret" not in result.output
    with pytest.raises(StoreError) as refused:
        await open_store(url)
    assert "password=***" in str(refused.value) and "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["serve", "--config", "/nonexistent/authhost.toml"], {}, "not found"),
        (["serve"], {"AUTHHOST_SERVER_PORT": "eighty"}, "port"),
        (["config", "show"], {"AUTHHOST_SERVER_WORKERS": "many"}, "workers"),
    ],
    ids=["missing file", "bad port in env", "bad workers in env"],
)
def test_bad_configuration_is_one_clear_line(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_serve_rejects_an_unknown_dialect_before_starting(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["serve", "--dialect", "ebcdic-something", "--port", "0"],
        env={
            "AUTHHOST_SERVER_PID_FILE": str(tmp_path / "pid"),
            "AUTHHOST_SERVER_METRICS_PORT": "0",
        },
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"dialect": "ebcdic"}, "unknown ISO 8583 dialect"),
        ({"framing": "binary4"}, "unknown framing"),
        ({"max_frame": 70000}, "max_frame"),
        ({"timeout_response_code": "XX"}, "timeout_response_code"),
        ({"deadline_ms": 0}, "deadline_ms"),
        ({"slow_ms": -1}, "slow_ms"),
        ({"workers": 0}, "workers"),
        ({"workers": 4, "node_id": 5}, "node_id"),
        ({"workers": 2, "port": 0}, "fixed ports"),
        ({"shutdown_grace_s": -1.0}, "shutdown_grace_s"),
    ],
    ids=lambda v: str(v),
)
def test_server_settings_are_checked_before_anything_opens(
    server: dict[str, object], message: str
) -> None:
    from authhost.config import Config, ServerConfig
    from authhost.server.server import ServerConfigError, check_config

    with pytest.raises(ServerConfigError, match=message):
        check_config(Config(server=ServerConfig(**server)))  # type: ignore[arg-type]


def test_a_mac_requirement_without_a_mac_key_is_refused() -> None:
    from authhost.config import Config, ListenerConfig
    from authhost.server.server import AuthServer, ServerConfigError, check_config

    config = Config(listeners=[ListenerConfig(port=8590, require_mac=True)])
    check_config(config)  # the setting itself is valid
    with pytest.raises(ServerConfigError, match="require_mac"):
        AuthServer(config, handler=None)  # type: ignore[arg-type]  # but needs the MAC key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no master key"),
        ({"AUTHHOST_SECURITY_DEMO": "1", "AUTHHOST_RULES_FILE": "bad.toml"}, "bad.toml:3"),
        ({"AUTHHOST_SECURITY_DEMO": "1", "AUTHHOST_AUTH_STEPS": "validate,teleport"}, "teleport"),
        ({"AUTHHOST_SECURITY_DEMO": "1", "AUTHHOST_STORE_URL": "mysql://x"}, "unknown store URL"),
    ],
    ids=["no master key", "bad rules file", "unknown pipeline step", "bad store URL"],
)
def test_start_up_errors_exit_2_with_one_clear_line(tmp_path, env, message) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "bad.toml").write_text('[[rule]]\nname = "x"\nexpression = "amount >"\n')
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOST_")}
    base |= {"AUTHHOST_ADMIN_PORT": "0", "AUTHHOST_SERVER_METRICS_PORT": "0", **env}
    result = subprocess.run(
        [sys.executable, "-m", "authhost", "serve", "--port", "0"],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert message in output
    assert "Traceback" not in output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_exits_2_with_one_clear_line(tmp_path, workers) -> None:
    """With --workers the supervisor opens the sockets itself; either way one line, exit 2."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOST_")}
        env |= {"AUTHHOST_ADMIN_PORT": "0", "AUTHHOST_SERVER_METRICS_PORT": "0"}
        result = subprocess.run(
            [sys.executable, "-m", "authhost", "serve", "--demo", "--workers", workers,
             "--port", str(port)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "(server.port or --port" in output  # the key to change
    assert "Traceback" not in output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_admin_port_in_use_exits_2_with_one_clear_line(tmp_path, workers) -> None:
    """It was logged as a background service that stopped, and the host ran on without its
    admin API (no card could be blocked) while /readyz said ready."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHHOST_")}
        env |= {"AUTHHOST_ADMIN_PORT": str(port), "AUTHHOST_SERVER_METRICS_PORT": "0"}
        result = subprocess.run(
            [sys.executable, "-m", "authhost", "serve", "--demo", "--workers", workers,
             "--port", str(free_port())],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"cannot serve the admin API on 127.0.0.1:{port}: Address already in use" in output
    assert "Traceback" not in output and "background service" not in output
