"""``open_store(url)``: the one place a store URL becomes a backend.

``sqlite:///relative.db``, ``sqlite:////abs/path.db`` (or a bare path) open the embedded
SQLite store; ``redis://host:port/db``, ``rediss://`` and ``redis+cluster://host:port`` open the
Redis store. Backends are imported only when chosen, so SQLite users need no Redis client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authhost.store.interface import CardStore, StoreError

DEFAULT_PREFIX = "authhost"


class BadStoreUrl(StoreError):
    pass


def printable_url(url: str) -> str:
    """The store URL without its secrets, for logs, errors and ``config show`` (often pasted):
    the password of ``redis://user:secret@host`` and a ``password`` query parameter (which
    coredis reads too) become ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user, colon, _ = credentials.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*"
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing hidden: as written (urlunsplit would drop sqlite:///'s slashes)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (``sqlite:///:memory:`` is refused: the store
    uses two connections and an in-memory database is not shared between them)."""
    path = url[len("sqlite://") :]
    if path.startswith("/"):  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
        path = path[1:]
    if not path or path == ":memory:":
        raise BadStoreUrl("sqlite URLs name a file: sqlite:///authhost.db or sqlite:////abs/x.db")
    return path


async def open_store(url: str, *, prefix: str = DEFAULT_PREFIX) -> CardStore:
    """Open the store at ``url``; the caller closes it (``await store.close()``).

    ``prefix`` namespaces Redis keys (tests use a unique one each); SQLite ignores it.
    """
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in ("", "sqlite", "file"):
        from authhost.store.sqlite import SqliteCardStore

        path = sqlite_path(url) if scheme == "sqlite" else url.removeprefix("file://")
        if not path.strip():  # sqlite3 opens "" as a private temporary database per connection
            raise BadStoreUrl(
                "the store URL is empty: sqlite:///authhost.db or redis://HOST:PORT/DB"
            )
        return await SqliteCardStore.open(path)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from authhost.store.redis import RedisCardStore

        url, prefix = _url_prefix(url, prefix)
        return await RedisCardStore.open(url, prefix=prefix)
    raise BadStoreUrl(
        f"unknown store URL scheme {scheme!r}: use sqlite:///PATH, redis://HOST:PORT/DB or "
        "redis+cluster://HOST:PORT"
    )


def _url_prefix(url: str, default: str) -> tuple[str, str]:
    """``redis://h:p/0?prefix=bank1`` -> (``redis://h:p/0``, ``bank1``): several installations
    (or test runs) can share one Redis, each in its own key space, chosen in the URL alone."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    prefix = next((v for k, v in query if k == "prefix"), default)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


@asynccontextmanager
async def opened_store(url: str, *, prefix: str = DEFAULT_PREFIX) -> AsyncIterator[CardStore]:
    """``async with opened_store(url) as store:`` closes the store on exit."""
    store = await open_store(url, prefix=prefix)
    try:
        yield store
    finally:
        await store.close()
