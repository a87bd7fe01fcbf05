"""SIGHUP runs every reloader of the runtime: one that fails (a key store caught mid-rotation)
no longer keeps the ones after it (the rules, the model) from reloading."""

from __future__ import annotations

import logging

import pytest

from authhost.runtime import Runtime
from authhost.security.errors import KeyStoreError


async def _approve(request, received_at):  # pragma: no cover - never called
    raise AssertionError


async def test_a_failed_reloader_does_not_stop_the_others(caplog) -> None:
    ran: list[str] = []

    def reloader(name: str, error: Exception | None = None):
        async def reload() -> None:
            ran.append(name)
            if error is not None:
                raise error

        return reload

    runtime = Runtime(
        handler=_approve,
        reloaders=[
            reloader("keys", KeyStoreError("key store: not JSON")),
            reloader("rules"),
            reloader("model", ValueError("model file truncated")),
        ],
    )
    with (
        caplog.at_level(logging.ERROR, "authhost.runtime"),
        pytest.raises(KeyStoreError, match="not JSON"),
    ):
        await runtime.reload()
    assert ran == ["keys", "rules", "model"]
    assert "model file truncated" in caplog.text  # the later failure is not lost either
