"""The model registry: artifact directories under ``[models] dir`` and which of them serve.

The ``active`` file (JSON) names the champion (its score is used), an optional challenger
(scored in shadow and journalled, never used), and the champions before, newest last, so that
``rollback`` can go back. It is replaced atomically (written beside, then ``os.replace``):
a server reading it sees the old or the new state, never half of one. An artifact is loaded
and checked before it is activated, so a broken artifact can never become active.

It also keeps ``changes``: when each change was written (epoch seconds), what it was, and the
champion and challenger before and after, the last ``CHANGES_KEPT``. The journal does not
record which model scored a request, so this is how the drift report tells which requests
of a period a model scored (``admin.model_drift``). A server reads only the champion and the
challenger, and an ``active`` file written before the log (or by an older authhost, which
drops it) has none; a damaged log is ignored, never an obstacle to serving.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authhost.models.artifact import METADATA_FILE, ArtifactError, read_metadata
from authhost.models.scorer import Scorer

ACTIVE_FILE = "active"
NAME_MAX = 255  # bytes of an artifact's name: a directory's, as file systems bound it
HISTORY_KEPT = 20
CHANGES_KEPT = 200


class RegistryError(ValueError):
    """A registry operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class ActiveState:
    champion: str | None = None
    challenger: str | None = None
    history: list[str] = field(default_factory=list)  # earlier champions, newest last

    def as_json(self) -> dict[str, Any]:
        return {"champion": self.champion, "challenger": self.challenger, "history": self.history}


@dataclass(frozen=True)
class Change:
    """One change of the active models, written at ``at`` (epoch seconds): what it was
    (activate, challenger, rollback, clear-challenger) and the roles before and after."""

    at: float
    action: str
    champion: str | None
    challenger: str | None
    was_champion: str | None
    was_challenger: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "action": self.action,
            "champion": self.champion,
            "challenger": self.challenger,
            "was_champion": self.was_champion,
            "was_challenger": self.was_challenger,
        }

    @classmethod
    def from_json(cls, data: Any) -> Change | None:
        """The change, or None for anything not of its shape."""
        if not isinstance(data, dict):
            return None
        at, action = data.get("at"), data.get("action")
        names = [data.get(k) for k in ("champion", "challenger", "was_champion", "was_challenger")]
        number = isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at)
        if not number or not isinstance(action, str):
            return None
        if not all(n is None or isinstance(n, str) for n in names):
            return None
        return cls(float(at), action, *names)


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    kind: str
    created: str
    threshold: int
    metrics: dict[str, Any]
    error: str = ""  # why the artifact cannot be used, if it cannot
    feature_set: str = ""
    # how its features read amounts: "currency" (each currency's exponent) or "two_decimals"
    # (trained before 2026-11-29: a yen or dinar card's amounts read as if they had cents)
    amount_units: str = ""


class Registry:
    """Artifacts in one directory and the ``active`` pointer file beside them."""

    def __init__(self, root: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.clock = clock  # when a change is written (the change log's times)

    def list(self) -> list[ArtifactInfo]:
        """Every artifact directory, oldest first; broken ones are listed with their error."""
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.iterdir()):
            if not (path / METADATA_FILE).is_file():
                continue
            try:
                meta = read_metadata(path)
            except ArtifactError as exc:
                out.append(ArtifactInfo(path.name, "?", "", 0, {}, str(exc)))
                continue
            out.append(
                ArtifactInfo(
                    path.name,
                    str(meta["kind"]),
                    str(meta.get("created", "")),
                    int(meta["threshold"]),
                    dict(meta.get("metrics") or {}),
                    feature_set=str(meta["feature_set"]),
                    amount_units=str(meta.get("amount_units") or "two_decimals"),
                )
            )
        return sorted(out, key=lambda a: (a.created, a.name))

    def state(self) -> ActiveState:
        file = self.root / ACTIVE_FILE
        if not file.is_file():
            return ActiveState()
        try:
            data = json.loads(file.read_text())
            state = ActiveState(
                champion=data.get("champion"),
                challenger=data.get("challenger"),
                history=[str(h) for h in data.get("history", [])],
            )
        except (json.JSONDecodeError, AttributeError, TypeError) as exc:
            raise RegistryError(f"{file}: unreadable ({exc}); activate a model again") from None
        for name in (state.champion, state.challenger):
            if name is not None and not isinstance(name, str):
                raise RegistryError(f"{file}: model names must be strings; activate a model again")
        return state

    def changes(self) -> list[Change]:
        """The logged changes of the active models, oldest first (none: an ``active`` file
        without a log, or an unreadable one; entries not of a change's shape are skipped)."""
        try:
            data = json.loads((self.root / ACTIVE_FILE).read_text())
        except (OSError, ValueError):
            return []
        log = data.get("changes") if isinstance(data, dict) else None
        changes = [Change.from_json(c) for c in log] if isinstance(log, list) else []
        return sorted((c for c in changes if c is not None), key=lambda c: c.at)

    def _path(self, name: str) -> Path:
        # longer than a file name may be, the lookup itself fails (OSError), not "no artifact"
        too_long = len(name.encode("utf-8", "surrogatepass")) > NAME_MAX
        if not name or "/" in name or name.startswith(".") or name == ACTIVE_FILE or too_long:
            raise RegistryError(f"{name!r} is not an artifact name")
        return self.root / name

    def load(self, name: str) -> Scorer:
        """Load one artifact by name (checked; raises RegistryError with the reason)."""
        path = self._path(name)
        if not path.is_dir():
            # "in models" (the default directory's name) read as a word missing
            raise RegistryError(f"no artifact named {name!r} in the models directory {self.root}")
        try:
            return Scorer.load(path)
        except ArtifactError as exc:
            raise RegistryError(str(exc)) from None

    def activate(self, name: str, *, challenger: bool = False) -> ActiveState:
        """Make ``name`` the champion (the old one goes to history) or the challenger."""
        self.load(name)
        state = self.state()
        if challenger:
            if name == state.champion:
                raise RegistryError(f"{name} is the champion; it cannot also be the challenger")
            new = ActiveState(state.champion, name, state.history)
            self._write(new, "challenger", state)
            return new
        else:
            history = state.history
            if state.champion and state.champion != name:
                history = [*history, state.champion][-HISTORY_KEPT:]
            new = ActiveState(name, None if state.challenger == name else state.challenger, history)
        self._write(new, "activate", state)
        return new

    def clear_challenger(self) -> ActiveState:
        state = self.state()
        new = ActiveState(state.champion, None, state.history)
        self._write(new, "clear-challenger", state)
        return new

    def rollback(self) -> ActiveState:
        """Make the previous champion the champion again."""
        state = self.state()
        history = list(state.history)
        while history:
            previous = history.pop()
            if self._path(previous).is_dir():
                self.load(previous)
                # a model is never its own challenger: the restored champion leaves that role
                challenger = None if state.challenger == previous else state.challenger
                new = ActiveState(previous, challenger, history)
                self._write(new, "rollback", state)
                return new
        raise RegistryError("no earlier champion to roll back to")

    def load_active(self) -> tuple[Scorer | None, Scorer | None]:
        """The champion and challenger scorers (None where none is active)."""
        state = self.state()
        champion = self.load(state.champion) if state.champion else None
        challenger = self.load(state.challenger) if state.challenger else None
        return champion, challenger

    def _write(self, state: ActiveState, action: str, before: ActiveState) -> None:
        change = Change(
            self.clock(), action, state.champion, state.challenger,
            before.champion, before.challenger,
        )  # fmt: skip
        log = [c.as_json() for c in self.changes()] + [change.as_json()]
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".active.", dir=self.root)
        with os.fdopen(fd, "w") as handle:
            json.dump(state.as_json() | {"changes": log[-CHANGES_KEPT:]}, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.root / ACTIVE_FILE)
