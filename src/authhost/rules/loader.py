"""Loading rule sets from files and holding the active one with atomic hot reload.

A reload builds the new RuleSet (and the file lists) completely, then replaces one
reference; an evaluation that started before the swap finishes on the old set, every later
one uses the new set, and none ever sees a mixture. A file that fails to load is refused,
logged with every error, and the rules in force stay in force. Pure: no trio, no store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from authhost.config import RulesConfig
from authhost.models.context import TxContext
from authhost.rules.engine import RuleOutcome, RuleSet, RuleStats, version_hash
from authhost.rules.lists import ListLoadError, directory_stamp, load_lists, merge_lists
from authhost.rules.rule import utc_text
from authhost.rules.rulefile import RuleError, RuleLoadError, detect_format, parse_rules
from authhost.rules.textfile import undecodable

log = logging.getLogger("authhost.rules")


def load_rule_set(
    path: str | Path, *, promote_shadow: bool = False, ignore_windows: bool = False
) -> RuleSet:
    """Read, check and compile a rules file; raises RuleLoadError with file/line/rule."""
    file = Path(path)
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise RuleLoadError([RuleError(str(file), 0, "", exc.strerror or str(exc))]) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, message = undecodable(content, exc)
        raise RuleLoadError([RuleError(str(file), line, "", message)]) from None
    parsed = parse_rules(text, str(file), detect_format(file))
    return RuleSet(
        parsed.rules,
        version=version_hash(content),
        source=str(file),
        label=parsed.label,
        promote_shadow=promote_shadow,
        ignore_windows=ignore_windows,
    )


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``ok`` False means the old rules stay in force."""

    ok: bool
    version: str
    changed: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class _Active:
    """The published state: swapped as one reference."""

    rules: RuleSet
    lists: Mapping[str, frozenset[str]]


class RuleSource:
    """The active rule set and file lists; reloadable while other threads evaluate."""

    def __init__(self, path: str | Path | None = None, lists_dir: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.lists_dir = Path(lists_dir) if lists_dir else None
        self._lock = threading.Lock()  # serialises reloads, never taken by evaluate
        self._retired: dict[str, RuleStats] = {}
        self.reloads_ok = 0
        self.reloads_failed = 0
        self._stamp = self._file_stamp()
        rules, lists = self._build()  # a bad file at start-up is an error for the caller
        self._active = _Active(rules, lists)
        self._merged: tuple[object, object, Mapping[str, frozenset[str]]] = (None, None, {})
        self._log_loaded(rules, lists, "loaded")

    @classmethod
    def from_config(cls, config: RulesConfig) -> RuleSource:
        return cls(config.file or None, config.lists_dir or None)

    # -- reading -----------------------------------------------------------------------
    @property
    def rules(self) -> RuleSet:
        return self._active.rules

    @property
    def lists(self) -> Mapping[str, frozenset[str]]:
        return self._active.lists

    @property
    def version(self) -> str:
        return self._active.rules.version

    @property
    def reads_acceptors(self) -> bool:
        """The active set reads merchant or terminal counters (the store reads them only then)."""
        return self._active.rules.reads_acceptors

    def evaluate(
        self,
        ctx: TxContext,
        score: int | None = None,
        lists: Mapping[str, frozenset[str]] | None = None,
    ) -> RuleOutcome:
        """Evaluate on the active set; ``lists`` (the store's) win over file lists by name.

        The merge of file and store lists is cached per (store mapping, active set), so pass
        a new mapping when the store's lists change rather than mutating the old one.
        """
        active = self._active  # one read: this evaluation uses exactly this version
        if not lists:
            return active.rules.evaluate(ctx, score, active.lists)
        cached = self._merged  # the store's mapping is replaced, not mutated, when refreshed
        if cached[0] is lists and cached[1] is active:
            merged = cached[2]
        else:
            merged = merge_lists(active.lists, lists)
            self._merged = (lists, active, merged)
        return active.rules.evaluate(ctx, score, merged)

    # -- reloading ---------------------------------------------------------------------
    def reload(self) -> ReloadResult:
        """Re-read the file and lists; swap only if everything loads. Never raises."""
        with self._lock:
            stamp = self._file_stamp()
            try:
                rules, lists = self._build()
                self._refuse_emptied(rules)
            except Exception as exc:  # any file at all is refused, never the watcher stopped
                if not isinstance(exc, (RuleLoadError, ListLoadError)):
                    exc = RuleLoadError(
                        [RuleError(str(self.path), 0, "", f"cannot be read ({exc!r:.200})")]
                    )
                self.reloads_failed += 1
                self._stamp = stamp  # do not retry the same bad file on every poll
                log.error(
                    "rules reload refused, keeping version %s: %s",
                    self.version,
                    exc,
                    extra={"rules_version": self.version, "rules_file": str(self.path)},
                )
                return ReloadResult(False, self.version, False, str(exc))
            old = self._active.rules
            self._active = _Active(rules, lists)  # the swap: one reference
            self._stamp = stamp
            self.reloads_ok += 1
            self._retire(old)
            self._log_loaded(rules, lists, "reloaded", previous=old.version)
            return ReloadResult(True, rules.version, rules.version != old.version)

    def reload_if_changed(self) -> ReloadResult | None:
        """Reload when the rules file or a list file changed since the last load (for a
        file watcher that polls); None when nothing changed."""
        if self._file_stamp() == self._stamp:
            return None
        return self.reload()

    def rule_stats(self) -> dict[str, RuleStats]:
        """Counters by rule name since start-up, across reloads."""
        totals = {name: _copy(stats) for name, stats in self._retired.items()}
        for name, stats in self._active.rules.stats().items():
            totals.setdefault(name, RuleStats()).add(stats)
        return totals

    # -- internals ---------------------------------------------------------------------
    def _build(self) -> tuple[RuleSet, Mapping[str, frozenset[str]]]:
        rules = load_rule_set(self.path) if self.path else RuleSet([])
        lists = load_lists(self.lists_dir) if self.lists_dir else {}
        return rules, lists

    def _refuse_emptied(self, rules: RuleSet) -> None:
        """A reload to a file without a single rule while rules are in force is refused: it
        is what a file caught half-written (truncated, not yet filled) looks like, and taking
        it would run every request without fraud rules until the next reload. Rules are
        turned off with ``enabled = false``; an empty file is taken at start-up only."""
        in_force = len(self._active.rules.rules)
        if rules.all_rules or not in_force:
            return
        raise RuleLoadError(
            [
                RuleError(
                    str(self.path), 0, "",
                    f"holds no rules while {in_force} are in force: refused (a file being "
                    "written looks so); turn rules off with enabled = false",
                )
            ]
        )  # fmt: skip

    def _file_stamp(self) -> tuple[object, ...]:
        stamp: list[object] = []
        if self.path:
            try:
                st = self.path.stat()
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append(None)
        if self.lists_dir:
            stamp.append(directory_stamp(self.lists_dir))
        return tuple(stamp)

    def _retire(self, old: RuleSet) -> None:
        for name, stats in old.stats().items():
            self._retired.setdefault(name, RuleStats()).add(stats)

    def _log_loaded(
        self, rules: RuleSet, lists: Mapping[str, object], verb: str, previous: str = ""
    ) -> None:
        shadow = sum(1 for r in rules.rules if r.shadow)
        missing = sorted(rules.lists - set(lists))
        log.info(
            "rules %s: version %s%s, %d enabled (%d shadow) of %d, %d lists, file %s",
            verb,
            rules.version,
            f" (was {previous})" if previous else "",
            len(rules.rules),
            shadow,
            len(rules.all_rules),
            len(lists),
            rules.source or "(none)",
            extra={"rules_version": rules.version, "rules_file": rules.source},
        )
        if missing:
            log.warning(
                "rules read lists not in the lists directory (empty unless the store "
                "provides them): %s",
                ", ".join(missing),
            )
        ended = ended_rules(rules, time.time())
        if ended:  # a forgotten temporary rule: it costs nothing, but misleads a reader.
            # A warning when a reload brings it; at the first load an info line, as every
            # CLI command that builds the pipeline loads the rules too (`rules check` warns)
            log.log(
                logging.WARNING if verb == "reloaded" else logging.INFO,
                "rules past their active_until, which no longer run (remove them from the "
                "file): %s",
                ", ".join(ended),
            )


def ended_rules(rules: RuleSet, now: float) -> list[str]:
    """The enabled rules whose window has ended at ``now``, each with its end."""
    return [
        f"{rule.name} (until {utc_text(rule.active_until)})"
        for rule in rules.rules
        if rule.active_until is not None and rule.window_state(now) == "ended"
    ]


def _copy(stats: RuleStats) -> RuleStats:
    return RuleStats(
        stats.evaluated, stats.matched, stats.declined, stats.shadow_matches, stats.errors
    )
