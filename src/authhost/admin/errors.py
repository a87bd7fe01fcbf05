"""Errors of the card service, each with the HTTP status it maps to.

The CLI prints the message and exits non-zero; the HTTP API answers ``{"error": message}``
with ``status``. Messages are written for an operator and never carry a PAN, PIN or key.
"""

from __future__ import annotations

from pydantic import ValidationError


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


def invalid_request(exc: ValidationError) -> InvalidRequest:
    """A 422 naming each bad field; the offending values are never echoed (they may be PANs)."""
    details = [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return InvalidRequest(f"invalid request: {summary}", details=details)
