"""``authhost serve`` (run the authorisation server) and ``authhost config show``."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from authhost.config import Config, ConfigError, describe_keys, load_config
from authhost.store.opener import printable_url

SECRET_KEYS = {("admin", "tokens")}  # shown as *** by ``config show``


def _keys_epilog() -> str:
    # typer renders help with rich: escape "[server]" so it is not read as markup.
    text = "Configuration keys (file authhost.toml, env AUTHHOST_<SECTION>_<KEY>):\n\n"
    return escape(text + describe_keys())


def effective_config(
    config_file: Path | None,
    *,
    host: str | None = None,
    port: int | None = None,
    store: str | None = None,
    workers: int | None = None,
    dialect: str | None = None,
    framing: str | None = None,
) -> Config:
    """File, then environment, then command-line options (later wins)."""
    config = load_config(config_file)
    config = config.replace(
        "server", host=host, port=port, workers=workers, dialect=dialect, framing=framing
    )
    return config.replace("store", url=store)


def _load_or_exit(config_file: Path | None, **overrides: Any) -> Config:
    try:
        return effective_config(config_file, **overrides)
    except ConfigError as exc:
        typer.echo(f"authhost: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def render_toml(config: Config) -> str:
    """The configuration as a TOML file that ``--config`` would read back."""
    lines: list[str] = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if section.name == "listeners":
            continue
        lines.append(f"[{section.name}]")
        for key in dataclasses.fields(value):
            item = getattr(value, key.name)
            shown = item
            if (section.name, key.name) in SECRET_KEYS and item:
                shown = "***"
            elif (section.name, key.name) == ("store", "url"):
                shown = printable_url(item)
            # read back, a hidden secret is "***" itself: say so where the reader sees it
            hidden = "  # hidden: put the real value back" if shown != item else ""
            lines.append(f"{key.name} = {_toml_value(shown)}{hidden}")
        lines.append("")
    for listener in config.listeners:
        lines.append("[[listeners]]")
        for key in dataclasses.fields(listener):
            lines.append(f"{key.name} = {_toml_value(getattr(listener, key.name))}")
        lines.append("")
    return "\n".join(lines)


def running_server(pid_file: str) -> int | None:
    """The pid of a live authhost the pid file names (None: no file, not a pid, a process
    gone, or one that is not authhost: its pid reused after a crash)."""
    if not pid_file:
        return None
    try:
        pid = int(Path(pid_file).read_text().strip())
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no /proc to ask: the file's word is taken
    return pid if _is_authhost_serve(command.decode(errors="replace").split("\0")) else None


def _is_authhost_serve(argv: list[str]) -> bool:
    """``authhost serve ...`` or ``python -m authhost serve ...`` (a path with authhost in a
    folder name, an editor on authhost.toml, is not)."""
    for i, arg in enumerate(argv):
        if Path(arg).name == "authhost" or (arg == "authhost" and argv[i - 1 : i] == ["-m"]):
            return argv[i + 1 : i + 2] == ["serve"]
    return False


def _serve(config: Config, demo: bool) -> int:
    """Run the server; a SIGTERM before it served is a stop like any other: exit 0. Refused
    while another server lives under the same pid file: a second ``serve`` on another port
    replaced its pid with its own and removed the file on exit, leaving the first one
    running with no pid file to stop it by."""
    import logging

    from authhost.cli.entry import sigterm_received
    from authhost.server.process import run

    other = running_server(config.server.pid_file)
    if other is not None:
        typer.echo(
            f"authhost: already running with pid {other} (server.pid_file "
            f"{config.server.pid_file}): stop it first (kill {other}), or give this server "
            "a pid_file of its own",
            err=True,
        )
        return 2
    try:
        code = run(config, demo=demo)
    except KeyboardInterrupt:  # raised out of the start-up (e.g. preparing workers)
        code = 130
    if code == 130 and sigterm_received():
        logging.getLogger("authhost.server").info("SIGTERM during start-up: stopped")
        return 0
    return code


ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="configuration file (default: $AUTHHOST_CONFIG, else authhost.toml if present)",
    dir_okay=False,
)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``config show`` to the root app."""

    @app.command("serve", epilog=_keys_epilog())
    def serve(
        config_file: Path | None = ConfigOption,
        host: str | None = typer.Option(None, "--host", help="listen address (server.host)"),
        port: int | None = typer.Option(None, "--port", help="listen port (server.port)"),
        store: str | None = typer.Option(
            None, "--store", help="store URL: sqlite:///PATH, redis://HOST:PORT/DB (store.url)"
        ),
        demo: bool = typer.Option(
            False, "--demo", help="demo mode: generate test keys and sample cards if none exist"
        ),
        workers: int | None = typer.Option(
            None, "--workers", help="server processes sharing the port (server.workers)"
        ),
        dialect: str | None = typer.Option(
            None,
            "--dialect",
            help="ascii-binary-bitmap, ascii-hex-bitmap, bcd-binary-bitmap or ebcdic-binary-bitmap "
            "(server.dialect)",
        ),
        framing: str | None = typer.Option(
            None, "--framing", help="length header: binary2 or ascii4 (server.framing)"
        ),
    ) -> None:
        """Run the ISO 8583 authorisation server until SIGINT/SIGTERM (SIGHUP reloads)."""
        config = _load_or_exit(
            config_file,
            host=host,
            port=port,
            store=store,
            workers=workers,
            dialect=dialect,
            framing=framing,
        )
        raise typer.Exit(_serve(config, demo))

    config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("show", epilog=_keys_epilog())
    def show(
        config_file: Path | None = ConfigOption,
        host: str | None = typer.Option(None, "--host", help="as for serve"),
        port: int | None = typer.Option(None, "--port", help="as for serve"),
        store: str | None = typer.Option(None, "--store", help="as for serve"),
        workers: int | None = typer.Option(None, "--workers", help="as for serve"),
        dialect: str | None = typer.Option(None, "--dialect", help="as for serve"),
        framing: str | None = typer.Option(None, "--framing", help="as for serve"),
    ) -> None:
        """Print the effective configuration (defaults, file, environment, options) as TOML."""
        config = _load_or_exit(
            config_file,
            host=host,
            port=port,
            store=store,
            workers=workers,
            dialect=dialect,
            framing=framing,
        )
        typer.echo(render_toml(config))
