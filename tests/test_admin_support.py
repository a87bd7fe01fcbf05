"""Shared pieces of the admin tests: a real service (real store, demo security module), a real
admin HTTP server on a free port, and an independent HTTP client (the standard library's
``http.client``, not authhost's code). This module holds no tests of its own.
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from conftest import free_port

from authhost.admin.http import serve_admin
from authhost.admin.lockout import AdminLockout
from authhost.admin.service import CardService
from authhost.admin.tokens import TokenTable
from authhost.config import AdminConfig, SecurityConfig
from authhost.security.module import SecurityModule

OPERATOR_TOKEN = "operator-" + secrets.token_hex(8)
AUDITOR_TOKEN = "auditor-" + secrets.token_hex(8)
TOKENS = TokenTable.of(**{OPERATOR_TOKEN: "operator", AUDITOR_TOKEN: "auditor"})


def demo_security(tmp_path: Path) -> SecurityModule:
    """A security module on a fresh demo key store (generated test keys) under tmp_path."""
    config = SecurityConfig(key_store=str(tmp_path / "keys.json"), demo=True)
    return SecurityModule.open(config, env={})


@asynccontextmanager
async def open_store_for(backend: str, tmp_path: Path, redis_url: str | None = None):
    """A real store: a SQLite file under tmp_path, or Redis under a unique key prefix."""
    if backend == "sqlite":
        from authhost.store.sqlite import SqliteCardStore

        store = await SqliteCardStore.open(tmp_path / "authhost.db")
        try:
            yield store
        finally:
            await store.close()
        return
    from authhost.store.redis import RedisCardStore

    prefix = f"test-admin-{secrets.token_hex(6)}"
    store = await RedisCardStore.open(redis_url, prefix=prefix)
    try:
        yield store
    finally:
        await store.drop_all()
        await store.close()


@asynccontextmanager
async def open_service(
    tmp_path: Path, backend: str = "sqlite", redis_url: str | None = None
) -> AsyncIterator[CardService]:
    async with open_store_for(backend, tmp_path, redis_url) as store:
        yield CardService(store, demo_security(tmp_path), "test")


@asynccontextmanager
async def running_admin(
    service: CardService,
    tokens: TokenTable = TOKENS,
    lockout: AdminLockout | None = None,
    **settings: Any,
) -> AsyncIterator[int]:
    """The admin API on 127.0.0.1:<free port> for the duration of the block; yields the port.
    ``settings`` are other ``[admin]`` keys (max_connections, timeout_s); ``lockout`` one
    with its own clock (else the one the settings make)."""
    async with trio.open_nursery() as nursery:
        config = AdminConfig(host="127.0.0.1", port=free_port(), **settings)
        port = await nursery.start(
            lambda task_status: serve_admin(
                service, config, tokens=tokens, lockout=lockout, task_status=task_status
            )
        )
        try:
            yield port
        finally:
            nursery.cancel_scope.cancel()


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


def _call(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


async def call(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = OPERATOR_TOKEN,
    payload: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One HTTP request with the standard library client, run in a worker thread."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    body = raw
    if payload is not None:
        body = json.dumps(payload).encode()
        sent.setdefault("Content-Type", "application/json")
    return await trio.to_thread.run_sync(_call, port, method, path, body, sent)


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes (for malformed HTTP)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                received += chunk
        return received
