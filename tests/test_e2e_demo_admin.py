"""`serve --demo` without configured tokens: the admin API gets a generated operator token,
written to a private file (never logged), and refuses requests without it."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import trio
from conftest import free_port
from test_e2e_auth import start_host

from authhost.config import AdminConfig
from authhost.runtime import DEMO_TOKEN


async def get(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    await stream.send_all(request.encode())
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_demo_admin_token_is_generated_private_and_required(
    nursery, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO)
    port = free_port()
    host = await start_host(
        nursery, tmp_path, f"sqlite:///{tmp_path / 'authhost.db'}", admin=AdminConfig(port=port)
    )
    token_file = Path(DEMO_TOKEN)
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert DEMO_TOKEN in caplog.text  # the start-up banner says where the token is...
    assert token not in caplog.text  # ...never what it is

    status, body = await get(port, "/v1/cards")
    assert status == 401 and "Authorization" in body["error"]
    status, body = await get(port, "/v1/cards", token)
    assert status == 200
    pans = {card["pan"] for card in body["cards"]}
    assert all("*" in pan for pan in pans)  # masked only
    assert not pans & {card["pan"] for card in host.cards.values()}
