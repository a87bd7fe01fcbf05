"""Errors of the card service, each with the HTTP status it maps to.

The CLI prints the message and exits non-zero; the HTTP API answers ``{"error": message}``
with ``status``. Messages are written for an operator and never carry a PAN, PIN or key.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

from pydantic import BaseModel, ValidationError


class ServiceError(Exception):
    """A request the service refuses; nothing was changed."""

    status = 400

    def __init__(self, message: str, *, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidRequest(ServiceError):
    """The request is well-formed JSON but its values cannot be used."""

    status = 422


class NotFoundError(ServiceError):
    status = 404


class ConflictError(ServiceError):
    """The current state forbids the change (illegal lifecycle transition, duplicate id, a
    reused idempotency key with a different request, or a concurrent update)."""

    status = 409


class Unavailable(ServiceError):
    """The security module or store cannot do this now (e.g. a key is missing)."""

    status = 503


def _fields_at(model: Any, path: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) request model at ``path``; [] when not found."""
    for part in path:
        if isinstance(part, int):  # an item of a list: its model is the list's
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        nested = [t for t in (field.annotation, *get_args(field.annotation)) if isinstance(t, type)]
        model = next((t for t in nested if issubclass(t, BaseModel)), None)
    return list(getattr(model, "model_fields", {}))


def _grouped(message: str, err: Any) -> str:
    """The limits pydantic names grouped (1,000,000,000,000,000): ungrouped, a limit of 13
    digits or more is masked as if it were a PAN. Only the limits are rewritten, never text
    from the request."""
    for limit in (err.get("ctx") or {}).values():
        if type(limit) is int and abs(limit) >= 10**12:
            message = message.replace(str(limit), f"{limit:,}")
    return message


def _said(err: Any, model: Any) -> str:
    """pydantic's words, but for a field the request does not take: its "Extra inputs are not
    permitted" left a reader who misspelt a field, or sent back what a view shows
    (``products show``'s JSON, with its version, as ``products create --json``), guessing."""
    if err["type"] != "extra_forbidden":
        # a check of ours (a ValueError in a validator) says its own words: without
        # pydantic's "Value error, " before them ("end is before start")
        return _grouped(str(err["msg"]).removeprefix("Value error, "), err)
    name = str(err["loc"][-1]) if err["loc"] else ""
    close = difflib.get_close_matches(name, _fields_at(model, tuple(err["loc"][:-1])), n=1)
    if close:
        return f"not a field of this request (did you mean {close[0]!r}?)"
    return (
        "not a field of this request: remove it (what a view shows but a request does not "
        "set, such as version, is not sent back)"
    )


# pydantic names each branch of a union it tried in the error's location
# (``cvv2.constrained-str``, ``cvv2.literal['']``): words of its own, no field of the request
_UNION_BRANCH = re.compile(r"^[a-z]+(-[a-z-]+)?\[.*\]$|^[a-z]+-[a-z-]+$")


def _field_of(err: Any) -> str:
    """The field as the request names it, without pydantic's union branch tags."""
    loc = err["loc"]
    if err["type"] != "extra_forbidden":  # there the last part is the client's own key
        loc = [p for i, p in enumerate(loc) if not (i and _UNION_BRANCH.match(str(p)))]
    return ".".join(str(p) for p in loc) or "(body)"


def _details(errors: list[Any], model: Any) -> list[dict[str, str]]:
    """One detail per field: a union's branches (a pattern, or empty) said as one message,
    where each used to be a field of its own ("cvv2.literal['']: Input should be ''")."""
    said: dict[str, list[str]] = {}
    for err in errors:
        message = _said(err, model)
        if err["type"] == "literal_error" and err.get("ctx", {}).get("expected") == "''":
            message = "or empty"
        said.setdefault(_field_of(err), []).append(message)
    details = []
    for field, messages in said.items():
        plain = [m for m in messages if m != "or empty"]
        message = "; ".join(plain) or "must be empty"
        if plain and len(plain) < len(messages):
            message += " (or empty)"
        details.append({"field": field, "message": message})
    return details


def invalid_request(exc: ValidationError) -> InvalidRequest:
    """A 422 naming each bad field; the offending values are never echoed (they may be PANs)."""
    from authhost.admin import requests  # the request models, named by the error's title

    model = getattr(requests, exc.title, None)
    details = _details(exc.errors(include_url=False, include_input=False), model)
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return InvalidRequest(f"invalid request: {summary}", details=details)
