"""The rule engine: a checked rule set compiled once into one Python function, and its outcome.

Why one generated function: every expression has already been validated and rewritten by
``rules.language`` into plain Python over local names, so the whole set is emitted as a
single function that binds the variables the set reads (once per transaction), then tests
each enabled rule in priority order inside its own ``try`` (free in CPython 3.11 unless it
raises) and returns the indexes that matched. A rule costs about what a hand-written ``if``
costs; 100 rules run in a few microseconds (benchmarks/bench_rules.py). The generated code
runs with empty ``__builtins__`` and only ``abs``, ``min``, ``max`` and ``bool`` in scope.

Outcome semantics: rules run in priority order; every match is recorded; shadow matches are
recorded apart and never change the outcome; the first enforced decline sets the response
code; enforced review flags, score rules add points; an enforced allow stops every later rule.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authhost.iso.codes import ResponseCode
from authhost.models.context import TxContext
from authhost.rules.language import list_local
from authhost.rules.rule import Action, Rule
from authhost.rules.variables import ACCEPTORS, PER_MAJOR, VARIABLES, local_name, per_major

SUSPECTED_FRAUD = ResponseCode.SUSPECTED_FRAUD.value  # what a cardholder's pass may lift

log = logging.getLogger("authhost.rules")

Lists = Mapping[str, "frozenset[str] | set[str]"]
EMPTY_LIST: frozenset[str] = frozenset()


def _contains(text: str, needles: tuple[str, ...]) -> bool:
    """contains(): any of the (upper-case) needles in the text, ignoring case."""
    upper = text.upper()
    return any(needle in upper for needle in needles)


_SAFE_GLOBALS = {
    "abs": abs,
    "min": min,
    "max": max,
    "bool": bool,
    "Exception": Exception,
    "_minor_per_major": per_major,  # a function of ours, called with the context's currency
    "_contains": _contains,
}


@dataclass(slots=True)
class RuleOutcome:
    """What the rules say about one transaction.

    ``matched`` lists every rule that matched, shadow ones included (the journal's
    ``rule_matches``); ``shadow_matches`` is the shadow subset. ``reason_codes`` come from
    enforced matches only, in priority order, the deciding decline first.
    """

    decline_code: str | None = None
    reason_codes: list[str] = field(default_factory=list)
    review: bool = False
    score_delta: int = 0
    matched: list[str] = field(default_factory=list)
    shadow_matches: list[str] = field(default_factory=list)
    allowed: bool = False  # an enforced allow rule matched
    # the first enforced decline that is not a suspicion of fraud (59): a policy, which a
    # cardholder's "it was me" does not lift (auth.steps.fraud) even when a 59 ranks first
    policy_decline: tuple[str, str] | None = None  # (response code, reason)
    errors: list[str] = field(default_factory=list)  # rules that raised (treated as no match)
    version: str = ""

    @property
    def declined(self) -> bool:
        return self.decline_code is not None


@dataclass(slots=True)
class RuleStats:
    """Per-rule counters since start-up (they survive reloads, keyed by rule name)."""

    evaluated: int = 0
    matched: int = 0
    declined: int = 0  # times this rule's decline decided the outcome
    shadow_matches: int = 0
    errors: int = 0

    def add(self, other: RuleStats) -> None:
        self.evaluated += other.evaluated
        self.matched += other.matched
        self.declined += other.declined
        self.shadow_matches += other.shadow_matches
        self.errors += other.errors


def version_hash(content: bytes) -> str:
    """The version of a rule set: a short hash of the file's bytes."""
    return hashlib.sha256(content).hexdigest()[:12]


class RuleSet:
    """An immutable, compiled set of rules. Build it fully, then publish one reference."""

    def __init__(
        self,
        rules: Sequence[Rule],
        version: str = "empty",
        source: str = "",
        label: str = "",
        promote_shadow: bool = False,
        ignore_windows: bool = False,
    ) -> None:
        ordered = sorted(enumerate(rules), key=lambda pair: (pair[1].priority, pair[0]))
        self.all_rules: tuple[Rule, ...] = tuple(rule for _, rule in ordered)
        self.rules: tuple[Rule, ...] = tuple(r for r in self.all_rules if r.enabled)
        self.version = version
        self.source = source
        self.label = label
        self.promote_shadow = promote_shadow
        self.ignore_windows = ignore_windows  # (a backtest's what-if: every rule, any time)
        self.lists: frozenset[str] = frozenset().union(*(r.lists for r in self.rules))
        # a rule reads merchant.* or terminal.*: the store must keep and read those counters
        self.reads_acceptors = any(
            "." in name and name.partition(".")[0] in ACCEPTORS
            for rule in self.rules
            for name in rule.variables
        )
        self.code = _generate(self.rules, windows=not ignore_windows)
        self._run: Callable[[Any, Any, Any], tuple[list[int], list[int] | None]] = _compile(
            self.code, version
        )
        self._plan = tuple(
            (
                rule.name,
                rule.shadow and not promote_shadow,
                rule.action,
                rule.response_code,
                rule.reason,
                rule.points,
            )
            for rule in self.rules
        )
        n = len(self.rules)
        self._runs = 0
        self._stops = [0] * n  # evaluations an allow at this index stopped
        self._matched = [0] * n
        self._declined = [0] * n
        self._shadow = [0] * n
        self._errors = [0] * n
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.rules)

    def evaluate(
        self, ctx: TxContext, score: int | None = None, lists: Lists | None = None
    ) -> RuleOutcome:
        """Run every enabled rule against one transaction (pure apart from the counters)."""
        hits, errors = self._run(ctx, score, lists if lists is not None else {})
        self._runs += 1
        if errors:
            return self._outcome(hits, errors)
        if not hits:
            return RuleOutcome(version=self.version)
        return self._outcome(hits, None)

    def _outcome(self, hits: list[int], errors: list[int] | None) -> RuleOutcome:
        out = RuleOutcome(version=self.version)
        plan = self._plan
        stop = len(plan)
        for i in hits:
            name, shadow, action, code, reason, points = plan[i]
            out.matched.append(name)
            if shadow:
                out.shadow_matches.append(name)
                self._shadow[i] += 1
                continue
            self._matched[i] += 1
            if action is Action.DECLINE:
                if code != SUSPECTED_FRAUD and out.policy_decline is None:
                    out.policy_decline = (code, reason)
                if out.decline_code is None:
                    out.decline_code = code
                    out.reason_codes.insert(0, reason)
                    self._declined[i] += 1
                else:
                    out.reason_codes.append(reason)
            elif action is Action.REVIEW:
                out.review = True
                out.reason_codes.append(reason)
            elif action is Action.SCORE:
                out.score_delta += points
                out.reason_codes.append(reason)
            else:  # allow: later rules are not evaluated
                out.allowed = True
                out.reason_codes.append(reason)
                self._stops[i] += 1
                stop = i
                break
        if errors:
            for i in errors:
                if i <= stop:
                    out.errors.append(plan[i][0])
                    self._errors[i] += 1
            new = [name for name in out.errors if name not in self._warned]
            if new:  # once per rule and rule set: a rule that raises on every request
                self._warned.update(new)  # must not flood the log
                log.warning(
                    "rule(s) raised and were treated as no match (counted in "
                    "authhost_rule_errors_total; logged once): %s",
                    ", ".join(new),
                )
        return out

    def stats(self) -> dict[str, RuleStats]:
        """Counters of this set's enabled rules, by name."""
        found: dict[str, RuleStats] = {}
        stopped_before = 0
        for i, rule in enumerate(self.rules):
            found[rule.name] = RuleStats(
                evaluated=self._runs - stopped_before,
                matched=self._matched[i],
                declined=self._declined[i],
                shadow_matches=self._shadow[i],
                errors=self._errors[i],
            )
            stopped_before += self._stops[i]
        return found


def _generate(rules: Sequence[Rule], windows: bool = True) -> str:
    """Python source of the set's function: bind used variables and lists, test each rule
    (a rule with a time window first tests the request's time: outside it, no match)."""
    used = set().union(*(r.variables for r in rules)) if rules else set()
    lines = ["def run(ctx, score, L):"]
    if windows and any(rule.windowed for rule in rules):
        lines.append("    _ts = ctx.ts")
    if any(VARIABLES[v].source.startswith("vel.") for v in used):
        lines.append("    vel = ctx.velocity")
    if any(PER_MAJOR in VARIABLES[v].source for v in used):  # only a set reading amounts
        lines.append(f"    {PER_MAJOR} = _minor_per_major(ctx.currency)")
    for name in sorted(used):
        lines.append(f"    {local_name(name)} = {VARIABLES[name].source}")
    for name in sorted(set().union(*(r.lists for r in rules)) if rules else ()):
        lines.append(f"    {list_local(name)} = L.get({name!r}, EMPTY_LIST)")
    lines += ["    hits = []", "    errors = None"]
    for i, rule in enumerate(rules):
        test = (
            f"({_window_test(rule)}) and ({rule.code})" if windows and rule.windowed else rule.code
        )
        lines += [
            "    try:",
            f"        if {test}:",
            f"            hits.append({i})",
            "    except Exception:",
            "        errors = (errors or [])",
            f"        errors.append({i})",
        ]
    lines.append("    return hits, errors")
    return "\n".join(lines) + "\n"


def _window_test(rule: Rule) -> str:
    """The request's time within the rule's window: from is in it, until is not."""
    tests = {"from": ">=", "until": "<"}
    return " and ".join(f"_ts {tests[word]} {ts!r}" for word, ts in rule.window_ends())


def _compile(code: str, version: str) -> Callable[[Any, Any, Any], tuple[list[int], Any]]:
    namespace: dict[str, Any] = {"__builtins__": {}, "EMPTY_LIST": EMPTY_LIST, **_SAFE_GLOBALS}
    exec(compile(code, f"<rules {version}>", "exec"), namespace)  # noqa: S102 - validated code
    return namespace["run"]


def variable_values(ctx: TxContext, score: int | None, names: Sequence[str]) -> dict[str, Any]:
    """The values the named variables had for ``ctx`` (as the rules read them): what an
    analyst looks at to see why a rule did or did not match. Not for the request path."""
    known = sorted(name for name in set(names) if name in VARIABLES)
    lines = ["def values(ctx, score):", "    vel = ctx.velocity", "    found = {}",
             f"    {PER_MAJOR} = _minor_per_major(ctx.currency)"]  # fmt: skip
    for name in known:
        lines += [
            "    try:",
            f"        found[{name!r}] = {VARIABLES[name].source}",
            "    except Exception:",
            f"        found[{name!r}] = None",
        ]
    lines.append("    return found")
    namespace: dict[str, Any] = {"__builtins__": {}, **_SAFE_GLOBALS}
    exec(compile("\n".join(lines) + "\n", "<rule variables>", "exec"), namespace)  # noqa: S102
    return namespace["values"](ctx, score)
