"""The OpenAPI document states what the admin API really accepts, over real TCP.

Integrators generate clients from ``/openapi.json``. For every route and every query or path
parameter the document constrains (minimum, maximum, enum, pattern, format), the values it
admits at the edges (each bound, each enum member, examples of each pattern) are sent to a
real server and must not be refused for that parameter (400/422 naming it), and a value just
outside must be refused with a 4xx and a message. Request bodies: the constraints the models
state (channel enums, days, a non-zero amount, fields given together, a prepaid account's
limit) hold both ways too. The routes and constraints are read from the document, so a route
or a bound added later is checked as well; a pattern without an example here fails the test.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from test_admin_support import call, open_service, running_admin

from authhost.admin import requests as rq
from authhost.admin.demo import ensure_demo
from authhost.admin.service import CardService
from authhost.store.interface import Commit, JournalQuery
from authhost.store.records import JournalEntry

DAY_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"  # 2000-2099
# values each pattern of the document admits (its edges), and one just outside it
PATTERN_VALUES: dict[str, tuple[list[str], str]] = {
    DAY_PATTERN: (["2000-01-01", "2026-02-28", "2099-12-31"], "2100-01-01"),
    r"^[0-9A-Fa-f]{64}$": (["ab" * 32, "0F" * 32], "g" * 64),
    r"^[^./][^/]*$": (["champion-2026"], ".champion"),
    r"^([ -~]{1,12}|[0-9]{13,23})$": (
        ["1", "A1 ~42-77 X9", "1234567890123", "74123456331000000047110"],
        "741234563310000000471100",
    ),
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$": (["b", "Blocked.mcc_2-" + "x" * 50], "-blocked"),
    r"^[0-9]{4}$": (["0000", "9999"], "12345"),
}
PERIOD = ("day", "since", "until")
FUTURE = "4000000000"  # 2096: an until after every since below now
# admitted values the server refuses for a fact of its state, not of the value: each is
# stated in the parameter's description
STATEFUL = {
    ("since", "99999999999"): "after now and after any until: the clock's bound, which no "
    "schema can state",
    ("after_id", "1000000000000000"): "beyond the journal's newest entry: a journal feed "
    "refuses it (422, naming the newest), which no schema can state",
}
# (route, parameter): refused for the server's configuration whatever the value
NOT_CONFIGURED = {
    ("GET /v1/cards/{card_id}/journal/{journal_id}/explain", "model"): "no such artifact",
    ("GET /v1/cards/{card_id}/journal/{journal_id}/explain", "journal_id"): "no active model",
    ("GET /v1/cards/{card_id}/journal/{journal_id}/rules", "journal_id"): "no rules file",
    ("GET /v1/models/drift", "model"): "no such artifact",
}


def _admitted(schema: dict[str, Any]) -> list[str]:
    """The edges of what the schema admits, as query text."""
    if "enum" in schema:
        return [str(member) for member in schema["enum"]]
    if schema["type"] == "boolean":
        return ["true", "false"]
    if "pattern" in schema:
        assert schema["pattern"] in PATTERN_VALUES, f"no example of {schema['pattern']}"
        return PATTERN_VALUES[schema["pattern"]][0]
    if schema["type"] == "integer":
        high = schema.get("maximum", schema.get("exclusiveMaximum", 0) - 1)
        return [str(schema["minimum"]), str(high)]
    return []


def _outside(schema: dict[str, Any]) -> list[str]:
    """Values just outside what the schema admits."""
    if "enum" in schema:
        return ["nope"]
    if schema["type"] == "boolean":
        return ["yes"]
    if "pattern" in schema:
        return [PATTERN_VALUES[schema["pattern"]][1]]
    if schema["type"] == "integer":
        high = schema.get("maximum", schema.get("exclusiveMaximum", 0) - 1)
        return [str(schema["minimum"] - 1), str(high + 1)]
    return []


def _constrained(schema: dict[str, Any]) -> bool:
    facts = {"minimum", "maximum", "exclusiveMaximum", "enum", "pattern", "format"}
    return bool(facts & set(schema)) or schema["type"] == "boolean"


def _names(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}s?\b", text) is not None  # "list names are..."


async def _state(service: CardService) -> dict[str, str]:
    """Real ids for the path parameters: a demo card, its account, a journal entry of it."""
    card = (await ensure_demo(service))[0]
    entry = JournalEntry(ts=1.0, mti="0100", message_class="authorisation", response_code="00",
                         card_id=card["card_id"], stan="000001", account_id=card["account_id"],
                         merchant_id="MERCHANT0000001")  # fmt: skip
    await service.store.commit(Commit(journal=entry, card_id=card["card_id"]))
    (stored,) = await service.store.journal(JournalQuery(card_id=card["card_id"]))
    await service.put_list("blocked", rq.ListValues(values=["x"]))
    return {
        "card_id": card["card_id"],
        "account_id": card["account_id"],
        "product_id": card["product_id"],
        "journal_id": str(stored.journal_id),
        "name": "blocked",
        "dispute_id": "nope",
        "token_ref": "nope",
    }


BODIES = {  # a body each write route with a constrained parameter takes
    "/v1/cards/{card_id}/journal/{journal_id}/fraud-report": {"source": "analyst"},
    "/v1/cards/{card_id}/journal/{journal_id}/cardholder-answer": {
        "was_cardholder": True,
        "pass_minutes": 0,
    },
    "/v1/cards/{card_id}/journal/{journal_id}/dispute": {"reason": "other"},
    "/v1/lists/{name}": {"values": ["x"]},
}


def _query(route_params: dict[str, dict], tested: str, value: str) -> dict[str, str]:
    """The parameter under test, and what the route needs beside it: its required ones, a
    period where it needs one (a day; with since an until after it, with until a since)."""
    query = {
        p["name"]: _admitted(p["schema"])[0]
        for p in route_params.values()
        if p["required"] and p["in"] == "query"
    }
    if "day" in route_params and tested not in PERIOD:
        query["day"] = "2026-01-15"
    if tested == "since" and "until" in route_params:
        query["until"] = FUTURE
    if tested == "until" and "since" in route_params:
        query["since"] = "1"
    query[tested] = value
    return query


async def test_every_constrained_parameter_is_taken_at_its_edges_and_refused_outside(tmp_path):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        ids = await _state(service)
        doc = (await call(port, "GET", "/openapi.json", token=None)).json
        checked: set[str] = set()
        wrong: list[str] = []
        for template, operations in doc["paths"].items():
            for method, operation in operations.items():
                label = f"{method.upper()} {template}"
                params = {p["name"]: p for p in operation["parameters"] if p["in"] != "header"}
                for name, param in params.items():
                    schema = param["schema"]
                    if param["in"] == "query" and schema["type"] == "integer":
                        assert {"minimum"} <= set(schema), (label, name, schema)
                    if not _constrained(schema):
                        continue
                    checked.add(name)
                    trials = [(v, True) for v in _admitted(schema)]
                    trials += [(v, False) for v in _outside(schema)]
                    for value, admitted in trials:
                        path = template
                        for other in re.findall(r"\{(\w+)\}", template):
                            text = value if other == name else ids[other]
                            path = path.replace(f"{{{other}}}", quote(text, safe=""))
                        query = {}
                        if param["in"] == "query":
                            query = _query(params, name, value)
                        if query:
                            path += "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
                        payload = BODIES.get(template)
                        reply = await call(port, method.upper(), path, payload=payload)
                        message = reply.json.get("error", "") if reply.body else ""
                        said = f"{label} {name}={value!r}: {reply.status} {message}"
                        if reply.status >= 500:
                            wrong.append(f"5xx: {said}")
                        elif admitted:
                            refused = reply.status in (400, 422)
                            if refused and (label, name) in NOT_CONFIGURED:
                                continue
                            if refused and _names(message, name):
                                if (name, value) not in STATEFUL:
                                    wrong.append(f"admitted but refused: {said}")
                            elif refused and param["in"] == "path":
                                wrong.append(f"admitted but refused: {said}")
                        elif not (400 <= reply.status < 500 and message):
                            wrong.append(f"outside but taken: {said}")
                        elif reply.status in (400, 422) and not (
                            _names(message, name) or value in message
                        ):
                            wrong.append(f"refused without naming it: {said}")
        assert not wrong, "\n".join(wrong)
        # the document constrains these (it said only "integer" or "string" before)
        expected = {"limit", "offset", "after_id", "months", "days", "older_than_s", "day",
                    "since", "until", "before", "unused_since", "state", "show", "by", "of",
                    "head", "rrn", "chain", "journal_id", "name", "champion_threshold",
                    "amount_minor"}  # fmt: skip
        assert expected <= checked, sorted(expected - checked)


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


async def test_body_constraints_are_stated_in_the_document_and_hold(tmp_path):
    async with open_service(tmp_path) as service, running_admin(service) as port:
        ids = await _state(service)
        doc = (await call(port, "GET", "/openapi.json", token=None)).json
        card = f"/v1/cards/{ids['card_id']}"

        channels = _schema(doc, "CardControlsSpec")["properties"]["blocked_channels"]["items"]
        for channel in channels["enum"]:
            reply = await call(port, "PUT", f"{card}/controls",
                               payload={"blocked_channels": [channel]})  # fmt: skip
            assert reply.status == 200, (channel, reply)
        for channel in ("", "POS", "web"):
            reply = await call(port, "PUT", f"{card}/controls",
                               payload={"blocked_channels": [channel]})  # fmt: skip
            assert reply.status == 422 and "blocked_channels" in reply.json["error"], reply

        until = _schema(doc, "StopPaymentSpec")["properties"]["until"]["anyOf"][0]
        assert until["format"] == "date" and until["pattern"] == DAY_PATTERN
        merchant = _schema(doc, "StopPaymentSpec")["properties"]["merchant_id"]
        assert re.fullmatch(merchant["pattern"][1:-1], "MERCHANT 0001")
        for day in PATTERN_VALUES[DAY_PATTERN][0]:
            stops = {"stops": [{"merchant_id": "MERCHANT 0001", "until": day}]}
            reply = await call(port, "PUT", f"{card}/stop-payments", payload=stops)
            assert reply.status == 200, (day, reply)
        for day in ("2100-01-01", "0000-00-00", "2026-02-30"):
            stops = {"stops": [{"merchant_id": "MERCHANT 0001", "until": day}]}
            reply = await call(port, "PUT", f"{card}/stop-payments", payload=stops)
            assert reply.status == 422 and day in reply.json["error"], reply
        start = _schema(doc, "TravelNoticeSpec")["properties"]["start"]
        assert start["format"] == "date" and start["pattern"] == DAY_PATTERN

        amount = _schema(doc, "FundsChange")["properties"]["amount_minor"]
        assert amount["not"] == {"const": 0}
        funds = f"/v1/accounts/{ids['account_id']}/funds"
        reply = await call(port, "POST", funds, payload={"amount_minor": 0})
        assert reply.status == 422 and "must not be 0" in reply.json["error"], reply
        assert (await call(port, "POST", funds, payload={"amount_minor": 1})).status == 200

        personalise = _schema(doc, "Personalise")
        assert personalise["dependentRequired"] == {
            "billing_postcode": ["billing_street"],
            "billing_street": ["billing_postcode"],
        }
        assert {"required": ["address_ref"]} in personalise["anyOf"]
        for field in ("billing_postcode", "billing_street"):
            assert "null" not in str(personalise["properties"][field]), field
        half = await call(port, "POST", f"{card}/personalise",
                          payload={"billing_postcode": "10115"})  # fmt: skip
        assert half.status == 422 and "together" in half.json["error"], half
        whole = {"billing_postcode": "10115", "billing_street": "12"}
        assert (await call(port, "POST", f"{card}/personalise", payload=whole)).status == 200
        empty = await call(port, "POST", f"{card}/personalise", payload={})
        assert empty.status == 422 and "nothing to change" in empty.json["error"], empty

        change = _schema(doc, "ProductChange")
        assert "null" not in str(change["properties"]["channels"])
        assert {"required": ["name"]} in change["anyOf"]
        assert {"required": ["version"]} not in change["anyOf"]

        account = _schema(doc, "NewAccount")
        assert account["then"] == {"properties": {"credit_limit": {"const": 0}}}
        prepaid = {"account_id": "pp1", "kind": "prepaid", "credit_limit": 1}
        reply = await call(port, "POST", "/v1/accounts", payload=prepaid)
        assert reply.status == 422 and "prepaid" in reply.json["error"], reply
        prepaid["credit_limit"] = 0
        assert (await call(port, "POST", "/v1/accounts", payload=prepaid)).status == 201

        answer = _schema(doc, "CardholderAnswer")
        assert answer["then"] == {"properties": {"reissue": {"const": False}}}
        product = _schema(doc, "NewProduct")
        assert len(product["allOf"]) == 2  # each chip key needs the one before it


async def test_a_model_name_longer_than_a_file_name_is_refused_not_a_server_error(tmp_path):
    """?model= of 256 bytes or more failed the artifact's lookup itself (OSError: file name too
    long) and answered 500; it is not an artifact name (422), as the document's maxLength says."""
    async with open_service(tmp_path) as service, running_admin(service) as port:
        ids = await _state(service)
        service.models_dir = tmp_path / "models"
        service.models_dir.mkdir()
        explain = f"/v1/cards/{ids['card_id']}/journal/{ids['journal_id']}/explain"
        for name in ("a" * 256, "é" * 128, "a" * 5000):
            reply = await call(port, "GET", f"{explain}?model={quote(name)}")
            assert reply.status == 422 and "not an artifact name" in reply.json["error"], reply
        absent = await call(port, "GET", f"{explain}?model={'a' * 63}")
        assert absent.status == 422 and "no artifact named" in absent.json["error"], absent
