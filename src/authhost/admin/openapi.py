"""The OpenAPI 3.1 document of the admin API, built from the route table and request models.

Nothing here is written twice: paths, methods and roles come from ``admin.api.ROUTES``, body
schemas from the pydantic models that also validate the bodies, and each query and path
parameter's schema (bounds, enums, patterns, formats) from the ``admin.params.Param`` its
parser enforces.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic.json_schema import models_json_schema

import authhost

if TYPE_CHECKING:
    from authhost.admin.api import Route
    from authhost.admin.params import Param

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, for a human"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


_TEXT = {"type": "string"}  # an id: any text; one that names nothing is a 404


def _described(param: Param | None) -> dict[str, str]:
    return {"description": param.description} if param is not None else {}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    from authhost.admin.api import PATH_PARAMS

    bodies = {(r.body, "validation") for r in routes if r.body is not None}
    answers = {(r.response, "serialization") for r in routes if r.response is not None}
    refs, definitions = models_json_schema(
        sorted(bodies | answers, key=lambda pair: (pair[0].__name__, pair[1])),
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    schemas["Error"] = _ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route),
            "tags": [route.tag] if route.tag else [],
            "description": "Role: operator." if route.write else "Role: operator or auditor.",
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": PATH_PARAMS[name].schema() if name in PATH_PARAMS else _TEXT,
                    **_described(PATH_PARAMS.get(name)),
                }
                for name in re.findall(r"\{(\w+)\}", route.template)
            ]
            + [
                {
                    "name": name,
                    "in": "query",
                    "required": param.required,
                    "schema": param.schema(),
                    "description": param.description,
                }
                for name, param in route.query_params.items()
            ],
            "responses": {
                str(route.status): {
                    "description": "done",
                    "content": {
                        "application/json": {
                            "schema": refs[(route.response, "serialization")]
                            if route.response is not None
                            else {"type": "object"}
                        }
                    },
                },
                "400": _error("bad request (malformed JSON, unknown query parameter)"),
                "401": _error("missing or invalid token"),
                "403": _error("the token's role may not do this"),
                "404": _error("no such object"),
                "409": _error("the current state forbids it (e.g. illegal lifecycle transition)"),
                "422": _error("a field has an invalid value"),
            },
        }
        if route.idempotent:
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "repeat the request safely: the same key, the first result",
                }
            )
        if route.body is not None:
            operation["requestBody"] = {
                "required": not route.body_optional,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        paths.setdefault(route.template, {})[route.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "authhost admin API",
            "version": authhost.__version__ if hasattr(authhost, "__version__") else "0",
            "description": (
                "Card management for authhost. Bearer token authentication; role operator "
                "reads and writes, role auditor only reads. PANs are always masked."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.template).strip("/").replace("-", "_").split("/")[1:]
    return "_".join([route.method.lower(), *words])
