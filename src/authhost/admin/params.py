"""The admin API's query and path parameters: each one's constraints, written once.

A ``Param`` is what the OpenAPI document publishes for a parameter (``Param.schema()``) and
what the parsers below enforce, so a value the document admits is taken and one it does not
is refused naming the parameter (400; 422 for a path's number). Integrators generate
clients from that document: a bound stated here and another checked in a handler would
drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

from authhost.admin.errors import InvalidRequest, ServiceError

# epoch seconds as the API takes them: a plain decimal below this (the year 5138)
EPOCH_END = 100_000_000_000
# a plain decimal number: float() also takes "1_000", " 5 ", "1e9", "inf" and any script's
# digits ("١٧٠٠")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class Param:
    """One parameter's type and constraints (JSON schema terms), and its default."""

    type: Literal["integer", "number", "string", "boolean"]
    description: str
    default: int | str | bool | None = None
    minimum: int | None = None
    maximum: int | None = None
    exclusive_maximum: int | None = None
    enum: tuple[str, ...] = ()
    pattern: str = ""
    format: str = ""
    min_length: int | None = None
    max_length: int | None = None
    required: bool = False

    def but(self, **changes: Any) -> Param:
        """This parameter as one route takes it (its own page size, its own states)."""
        return dataclasses.replace(self, **changes)

    def schema(self) -> dict[str, Any]:
        """The JSON schema the OpenAPI document states for it."""
        schema: dict[str, Any] = {"type": self.type}
        facts = {
            "minimum": self.minimum,
            "maximum": self.maximum,
            "exclusiveMaximum": self.exclusive_maximum,
            "enum": list(self.enum) or None,
            "pattern": self.pattern or None,
            "format": self.format or None,
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "default": self.default,
        }
        schema.update({name: value for name, value in facts.items() if value is not None})
        return schema


def integer(raw: str | None, name: str, param: Param) -> int:
    """An integer parameter within its bounds, or its default when not given."""
    assert param.minimum is not None and param.maximum is not None, name
    low, high = param.minimum, param.maximum
    if raw is None or raw == "":
        return int(param.default or 0)
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))
    if not digits or not low <= int(raw) <= high:
        # grouped (1,000,000...): a limit of 13 digits or more is not taken for a PAN and masked
        raise ServiceError(f"query parameter {name} must be an integer from {low:,} to {high:,}")
    return int(raw)


def number(raw: str | None, name: str, param: Param) -> float:
    """A plain decimal number within the parameter's bounds, or its default when not given."""
    assert param.minimum is not None and param.maximum is not None, name
    if raw is None or raw == "":
        return float(param.default or 0)
    if not _DECIMAL.fullmatch(raw) or not param.minimum <= float(raw) <= param.maximum:
        raise ServiceError(
            f"query parameter {name} must be a number from {param.minimum} to {param.maximum}"
        )
    return float(raw)


def boolean(raw: str | None, name: str, param: Param) -> bool:
    """true or false, or the default when not given."""
    if raw is None or raw == "":
        return bool(param.default)
    if raw not in ("true", "false"):
        raise ServiceError(f"query parameter {name} must be true or false")
    return raw == "true"


def choice(raw: str | None, name: str, param: Param) -> str:
    """One of the parameter's enum, or its default when not given."""
    if raw is None:
        return str(param.default or "")
    if raw not in param.enum:
        *first, last = param.enum
        known = f"{first[0]} or {last}" if len(first) == 1 else f"one of {', '.join(param.enum)}"
        raise ServiceError(f"query parameter {name} must be {known}")
    return raw


def epoch(raw: str | None, name: str, param: Param) -> float:
    """Epoch seconds, a plain decimal below ``exclusive_maximum``; 0.0 when not given."""
    if not raw:
        return 0.0
    if not _DECIMAL.fullmatch(raw):
        raise ServiceError(f"query parameter {name} must be a number (epoch seconds)")
    value = float(raw)
    if not value < (param.exclusive_maximum or EPOCH_END):
        raise ServiceError(f"query parameter {name} must be epoch seconds")
    return value


def path_integer(raw: str, param: Param, message: str) -> int:
    """A path segment that is a number (a journal id): digits within the bounds; else 422."""
    assert param.minimum is not None and param.maximum is not None
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(param.maximum))
    if not digits or not param.minimum <= int(raw) <= param.maximum:
        raise InvalidRequest(message)
    return int(raw)
