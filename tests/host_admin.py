"""A running host with its admin API, and the CLI pointed at its store: what the back-office
end-to-end tests (clearing, totals, products, renewals, model comparison) share."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio
from conftest import free_port
from iso_client import Switch
from test_admin_support import AUDITOR_TOKEN, OPERATOR_TOKEN, call
from test_e2e_auth import Host, start_host
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.config import AdminConfig


async def start_host_with_admin(
    nursery: trio.Nursery, tmp_path: Path, store_url: str, **options: Any
) -> tuple[Host, int]:
    """The host, and the port of its admin API (the operator and auditor test tokens)."""
    port = free_port()
    tokens = f"{OPERATOR_TOKEN}:operator,{AUDITOR_TOKEN}:auditor"
    host = await start_host(
        nursery, tmp_path, store_url, admin=AdminConfig(port=port, tokens=tokens), **options
    )
    return host, port


async def card_id_of(port: int, pan: str) -> str:
    """The id of the card in use with this PAN, as the admin API finds it (by the PAN itself:
    two cards of one BIN can share the last four digits a masked PAN shows)."""
    found = await call(port, "POST", "/v1/cards/search", payload={"pan": pan}, token=AUDITOR_TOKEN)
    assert found.status == 200, found
    return found.json["card_id"]


@dataclass
class VisaAtHost:
    """A host with its admin API, a switch connected to it, and the demo's active Visa card
    (its export row and its card id): what most back-office tests start from."""

    host: Host
    port: int
    switch: Switch
    visa: dict[str, Any]
    card_id: str


async def visa_at_host(
    nursery: trio.Nursery, tmp_path: Path, store_url: str, **options: Any
) -> VisaAtHost:
    host, port = await start_host_with_admin(nursery, tmp_path, store_url, **options)
    switch = await Switch.connect(host.port)
    visa = host.cards["active-visa"]
    return VisaAtHost(host, port, switch, visa, await card_id_of(port, visa["pan"]))


def cli_config(tmp_path: Path, store_url: str, models_dir: Path | None = None) -> Path:
    """A configuration file for ``authhost`` commands on the host's store and key store."""
    config = tmp_path / "cli.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n'
        f'[security]\nkey_store = "{tmp_path / "keys.json"}"\ndemo = true\n'
        f'[models]\ndir = "{models_dir or tmp_path / "models"}"\n'
    )
    return config


async def run_cli(*args: str, input: str | None = None) -> tuple[int, str]:  # noqa: A002
    """``authhost ARGS`` in a worker thread (the host keeps serving), with ``input`` on its
    stdin: exit code and output."""
    invoke = partial(CliRunner().invoke, app, list(args), input=input)
    done = await trio.to_thread.run_sync(invoke)
    return done.exit_code, done.output
