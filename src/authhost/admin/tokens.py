"""Admin API tokens: who is calling and what they may do.

Two roles: ``operator`` (read and write) and ``auditor`` (read only). Tokens come from
``[admin] tokens_file`` (TOML or JSON) and/or ``[admin] tokens`` ('token:role,...').

The file may list tokens in clear or, better, only their SHA-256 so the file itself is no
secret worth stealing::

    [[token]]
    name = "alice"            # shown in the audit log as the actor
    role = "operator"
    sha256 = "9f86d08..."     # hex SHA-256 of the token (or: token = "...")

A plain mapping ``{"TOKEN": "operator"}`` is accepted too. Tokens are looked up by their
digest, so the comparison never walks the secret byte by byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from authhost.config import AdminConfig
from authhost.private_files import open_to_others


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"


class TokenConfigError(ValueError):
    """The token configuration cannot be used; the message never holds a token."""


class AuthFailure(Exception):
    """Authentication (401) or authorisation (403) failure, with a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # actor in the audit log
    role: Role

    @property
    def can_write(self) -> bool:
        return self.role is Role.OPERATOR


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _role(value: Any, where: str) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise TokenConfigError(f"{where}: role must be operator or auditor") from None


@dataclass(frozen=True)
class TokenTable:
    """Digest of each token -> the principal it authenticates."""

    by_digest: dict[str, Principal]

    @classmethod
    def from_config(cls, config: AdminConfig) -> TokenTable:
        entries: dict[str, Principal] = {}
        if config.tokens_file:
            entries.update(_read_file(Path(config.tokens_file)))
        if config.tokens:
            entries.update(parse_inline(config.tokens))
        return cls(entries)

    @classmethod
    def of(cls, **tokens: Role | str) -> TokenTable:
        """Clear tokens named by keyword (tests, demo): ``TokenTable.of(secret='operator')``."""
        return cls({_digest(t): _principal_for(t, _role(r, "token")) for t, r in tokens.items()})

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an ``Authorization`` header, or AuthFailure(401)."""
        if not self.by_digest:
            raise AuthFailure(401, "no admin API tokens are configured ([admin] tokens_file)")
        if not authorization:
            raise AuthFailure(401, "missing Authorization header (expected: Bearer <token>)")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure(401, "Authorization must use the Bearer scheme")
        principal = self.by_digest.get(_digest(token.strip()))
        if principal is None:
            raise AuthFailure(401, "invalid token")
        return principal


MIN_TOKEN_CHARS = 16  # a bearer token is a password nobody types: long enough not to guess


def _long_enough(token: str, where: str) -> str:
    """A clear token as configured, refused when short: the API answers a wrong token at once
    and without limit, so a token's length is all that stands against guessing (PCI DSS
    8.3.6). Never named in the message."""
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenConfigError(
            f"{where}: a token must be at least {MIN_TOKEN_CHARS} characters (this one has "
            f"{len(token)}): make one with `openssl rand -hex 16`"
        )
    return token


def _principal_for(token: str, role: Role, name: str = "") -> Principal:
    # Unnamed tokens appear in the audit log by role and a short digest prefix, never the token.
    return Principal(name or f"{role.value}:{_digest(token)[:8]}", role)


def parse_inline(text: str) -> dict[str, Principal]:
    """'token:role,token:role' -> digest -> principal."""
    entries: dict[str, Principal] = {}
    for number, item in enumerate(filter(None, (p.strip() for p in text.split(","))), 1):
        token, sep, role = item.rpartition(":")
        if not sep or not token:
            raise TokenConfigError(f"[admin] tokens entry {number}: expected token:role")
        where = f"[admin] tokens #{number}"
        entries[_digest(_long_enough(token, where))] = _principal_for(token, _role(role, where))
    return entries


def _read_file(path: Path) -> dict[str, Principal]:
    try:
        with open(path, "rb") as handle:
            mode = open_to_others(os.fstat(handle.fileno()))
            text = handle.read().decode("utf-8")
    except OSError as exc:
        raise TokenConfigError(f"{path}: cannot read tokens file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TokenConfigError(f"{path}: the tokens file is not UTF-8 text") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise TokenConfigError(f"{path}: not valid {path.suffix or 'TOML'} ({exc})") from None
    if not isinstance(data, dict):
        raise TokenConfigError(f"{path}: expected a table/object")
    listed = data.get("token", data.get("tokens"))
    if isinstance(listed, list):
        clear = any(isinstance(item, dict) and "sha256" not in item for item in listed)
        entries = dict(
            _listed_entry(item, f"{path}: token #{i}") for i, item in enumerate(listed, 1)
        )
    else:
        clear = bool(data)
        entries = {}
        for token, role in data.items():
            where = f"{path}: a token"
            entries[_digest(_long_enough(token, where))] = _principal_for(token, _role(role, where))
    if clear and mode is not None:  # a password file; one of SHA-256 digests may be shared
        raise TokenConfigError(
            f"{path}: the tokens file holds clear tokens and is open to group or others "
            f"(mode {mode:04o}): chmod 600 {path}, or list only their sha256"
        )
    return entries


def _listed_entry(item: Any, where: str) -> tuple[str, Principal]:
    if not isinstance(item, dict):
        raise TokenConfigError(f"{where}: expected a table with name, role and token or sha256")
    role = _role(item.get("role"), where)
    name = str(item.get("name", "")).strip()
    if "sha256" in item:
        digest = str(item["sha256"]).strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise TokenConfigError(f"{where}: sha256 must be 64 hex digits")
        return digest, Principal(name or f"{role.value}:{digest[:8]}", role)
    if "token" in item and str(item["token"]):
        token = _long_enough(str(item["token"]), where)
        return _digest(token), _principal_for(token, role, name)
    raise TokenConfigError(f"{where}: needs token or sha256")
