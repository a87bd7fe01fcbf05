"""Every route of the admin API, walked with careless and hostile input over real TCP.

The routes come from ``admin.api.ROUTES`` (a route added later is walked too): each path with
ids that do not exist, are malformed or are a card number; each body route with bodies that
are not JSON, JSON that is not an object, and a valid-looking body with one field at a time
given a wrong type, a huge or negative number, a null, a 10 kB string, a NUL byte or a card
number; each query parameter with garbage. Every answer must be a 4xx with a message (or the
route's success, or 503 for what needs a running server's pipeline), never a 500, never a
traceback, never the card number in clear, and the server goes on serving. The values are
drawn from a fixed seed, so a failure is the same on every run.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterator
from typing import Any

from test_admin_support import call, open_service, running_admin

from authhost.admin.api import ROUTES, Route

SEED = 20261128
PAN = "4761739001010010"  # a Visa test number: it must never come back in clear
PATH_VALUES = [
    "demo",
    "nope",
    "crd_0000000000000000",
    "%00",
    "a" * 300,
    PAN,
    "..%2F..%2Fetc",
    "-1",
    "0",
]
FIELD_VALUES: list[Any] = [
    "x", -1, 10**30, None, [], {"k": 1}, "\u0000", "A" * 10_000, 1.5, True, PAN, "",
]  # fmt: skip
QUERY_VALUES = ["x", "-1", "1e309", "9" * 40, "%00", "", "nan", PAN]
BODIES = [b"{", b"[]", b'"text"', b"1", b"null", b"{}", b"\xff\xfe", b'{"a": NaN}']


def _path(route: Route, rng: random.Random) -> str:
    return re.sub(r"\{\w+\}", lambda _: rng.choice(PATH_VALUES), route.template)


def _fields(route: Route) -> dict[str, Any]:
    """A body of the route's fields with plausible values: the mutations change one at a time,
    so most of the body still gets past the first check."""
    assert route.body is not None
    plausible: dict[str, Any] = {}
    for name, field in route.body.model_fields.items():
        text = str(field.annotation)
        if "int" in text:
            plausible[name] = 100
        elif "bool" in text:
            plausible[name] = False
        elif "list" in text:
            plausible[name] = []
        elif "dict" in text:
            plausible[name] = {}
        else:
            plausible[name] = "demo"
    return plausible


def _requests(rng: random.Random) -> Iterator[tuple[str, str, bytes | None, dict[str, str]]]:
    json_type = {"Content-Type": "application/json"}
    for route in ROUTES:
        for _ in range(2):
            yield route.method, _path(route, rng), None, {}
        for name in route.query:
            value = rng.choice(QUERY_VALUES)
            yield route.method, f"{_path(route, rng)}?{name}={value}", None, {}
        if route.body is None:
            if route.method == "POST":  # a body where none is read
                yield route.method, _path(route, rng), b'{"surprise": 1}', json_type
            continue
        for raw in BODIES:
            yield route.method, _path(route, rng), raw, json_type
        yield route.method, _path(route, rng), b"{}", {"Content-Type": "text/plain"}
        fields = _fields(route)
        for name in fields:
            for value in rng.sample(FIELD_VALUES, 4):
                body = json.dumps({**fields, name: value}).encode()
                yield route.method, _path(route, rng), body, json_type
        body = json.dumps({**fields, "unknown_field": 1}).encode()
        yield route.method, _path(route, rng), body, json_type


async def test_every_route_answers_bad_input_with_a_4xx_and_a_message(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    rng = random.Random(SEED)
    wrong: list[str] = []
    sent = 0
    statuses: dict[int, int] = {}
    async with open_service(tmp_path) as service, running_admin(service) as port:
        # something to find: an account, a product and a card, so some requests get deeper
        await call(port, "POST", "/v1/accounts", payload={"account_id": "demo"})
        for method, path, body, headers in _requests(rng):
            reply = await call(port, method, path, raw=body, headers=headers)
            sent += 1
            statuses[reply.status] = statuses.get(reply.status, 0) + 1
            text = reply.body.decode("utf-8", "replace")
            where = f"{method} {path[:80]} {body[:60] if body else b''!r}"
            if reply.status >= 500 and reply.status != 503:
                wrong.append(f"{where}: {reply.status} {text[:200]}")
            elif reply.status >= 400 and not reply.json.get("error"):
                wrong.append(f"{where}: {reply.status} without a message")
            if "Traceback" in text or PAN in text:
                wrong.append(f"{where}: leaks {text[:200]}")
        health = await call(port, "GET", "/v1/accounts/demo")
    assert sent > 1_000 and statuses.get(200, 0) > 20, statuses  # some got through, too
    assert not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong[:40])
    assert health.status == 200  # still serving
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PAN not in logged and "Traceback" not in logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ][:10]
