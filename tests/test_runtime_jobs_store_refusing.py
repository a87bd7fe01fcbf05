"""A background job of the server meeting a store that refuses writes (Redis at its
``maxmemory``): one clear line a run, with the store's own words, not a traceback as for a
bug (found in a failure drill: the crash-finisher's lease write logged a full traceback
every run)."""

from __future__ import annotations

import logging

import trio
from conftest import redis_command
from test_admin_support import open_service

from authhost.runtime import finish_unfinished


def said(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "authhost.runtime"]


async def test_the_crash_finisher_says_redis_at_its_maxmemory_in_one_line(
    tmp_path, private_redis, caplog
):
    async with open_service(tmp_path, "redis", private_redis) as service:
        assert (
            redis_command(private_redis, "CONFIG", "SET", "maxmemory-policy", "noeviction") == "+OK"
        )
        assert redis_command(private_redis, "CONFIG", "SET", "maxmemory", "1") == "+OK"
        try:
            with caplog.at_level(logging.WARNING, "authhost.runtime"):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(finish_unfinished, service, 0.05, 0.0)
                    while not said(caplog):
                        await trio.sleep(0.05)
                    nursery.cancel_scope.cancel()
        finally:
            assert redis_command(private_redis, "CONFIG", "SET", "maxmemory", "0") == "+OK"
    record = said(caplog)[0]
    assert record.levelno == logging.WARNING and record.exc_info is None, caplog.text
    assert "cannot look for work a crash cut short now" in record.getMessage()
    assert "OOM" in record.getMessage(), record.getMessage()
