"""Reading a rules file (TOML or YAML) into checked rules, with file and line for every error.

The file is a list of ``rule`` tables. TOML and YAML parsers do not report where a value
came from, so the line of each rule's keys is recovered from the text (TOML) or the YAML
node marks; an expression error is reported at the expression's own line in the file.
All errors of a file are collected, so an analyst fixes them in one pass.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from authhost.iso.codes import APPROVED_CODES, ResponseCode
from authhost.rules.language import ExpressionError, compile_expression
from authhost.rules.rule import Action, Mode, Rule
from authhost.rules.tomllines import toml_blocks, toml_inline_rules, unclosed_string
from authhost.rules.yamllines import duplicate_keys, folded_parts

RULE_KEYS = (
    "name",
    "expression",
    "action",
    "response_code",
    "points",
    "reason",
    "description",
    "owner",
    "enabled",
    "mode",
    "priority",
    "active_from",
    "active_until",
)
TOP_KEYS = ("version", "rule")
RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/\-]{0,79}$")
DECLINE_CODES = {c.value for c in ResponseCode} - APPROVED_CODES


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in a rules file, located for the analyst."""

    file: str
    line: int  # 0 when unknown
    rule: str  # "" for file-level problems
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f" rule {self.rule!r}:" if self.rule else ""
        return f"{where}:{who} {self.message}"


class RuleLoadError(ValueError):
    """A rules file that was refused; ``errors`` lists every problem found."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class _Entry:
    """One raw rule table and the file lines of its keys."""

    values: Mapping[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    header_line: int = 0
    expression_offset: int = 0  # added to the expression-relative line
    # a YAML expression folded into one line (``>`` or plain over several lines): the file
    # line and the column where each of its parts starts in the folded text
    folded: tuple[tuple[int, int], ...] = ()


@dataclass
class ParsedFile:
    """The rules of one file and its optional version label."""

    rules: list[Rule]
    label: str = ""


def detect_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return "yaml" if suffix in (".yaml", ".yml") else "toml"


def parse_rules(text: str, source: str = "<rules>", fmt: str = "toml") -> ParsedFile:
    """Parse and check a whole rules file; raises RuleLoadError listing every problem."""
    if fmt == "yaml":
        data, entries = _read_yaml(text, source)
    else:
        data, entries = _read_toml(text, source)
    errors: list[RuleError] = []
    unknown = sorted(str(key) for key in set(data) - set(TOP_KEYS))  # (YAML: `1:` is a number)
    if unknown:  # `[[rules]]` for `[[rule]]` said only "unknown top-level key(s): rules"
        close = [m for key in unknown for m in difflib.get_close_matches(key, TOP_KEYS, n=1)]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if close[:1] == ["rule"]:
            table = "an item of the `rule:` list" if fmt == "yaml" else "a [[rule]] table"
            hint = f" (did you mean 'rule'? each rule is {table})"
        errors.append(
            RuleError(source, 0, "", f"unknown top-level key(s): {', '.join(unknown)}{hint}")
        )
    label = data.get("version", "")
    if not isinstance(label, (str, int, float)):
        errors.append(RuleError(source, 0, "", "version must be a text label"))
        label = ""
    elif bad := control_character(label):
        errors.append(RuleError(source, 0, "", f"version must not contain {bad}"))
        label = ""
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        rule = _build_rule(entry, index, source, errors)
        if rule is None:
            continue
        if rule.name in seen:
            errors.append(
                RuleError(
                    source,
                    entry.lines.get("name", entry.header_line),
                    rule.name,
                    f"duplicate rule name (first at line {seen[rule.name]})",
                )
            )
            continue
        seen[rule.name] = entry.lines.get("name", entry.header_line)
        rules.append(rule)
    if errors:
        raise RuleLoadError(errors)
    return ParsedFile(rules, str(label))


# -- TOML ----------------------------------------------------------------------------------


def _read_toml(text: str, source: str) -> tuple[dict[str, Any], list[_Entry]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        message = f"TOML: {exc}"
        opened = 0 if line else unclosed_string(text)
        if opened:  # tomllib says only "at end of document"
            message += f": the multi-line string opened on line {opened} is never closed"
        elif not line and "end of document" in str(exc):  # a one-line string at the very end
            opened = len(text.rstrip().splitlines())
        raise RuleLoadError(
            [RuleError(source, int(line.group(1)) if line else opened, "", message)]
        ) from None
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        table = re.search(r"^[ \t]*\[[ \t]*rule[ \t]*\]", text, re.M)  # [rule]: one table
        line = text.count("\n", 0, table.start()) + 1 if table else 0
        raise RuleLoadError([RuleError(source, line, "", "'rule' must be an array: use [[rule]]")])
    blocks = toml_blocks(text) or toml_inline_rules(text, RULE_KEYS)
    entries = []
    for i, values in enumerate(raw_rules):
        lines, header, offset = blocks[i] if i < len(blocks) else ({}, 0, 0)
        entries.append(_Entry(values if isinstance(values, dict) else {}, lines, header, offset))
    return data, entries


# -- YAML ----------------------------------------------------------------------------------


def _read_yaml(text: str, source: str) -> tuple[dict[str, Any], list[_Entry]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleLoadError([RuleError(source, line, "", f"YAML: {problem}")]) from None
    if duplicates := duplicate_keys(root):
        raise RuleLoadError([RuleError(source, line, "", message) for line, message in duplicates])
    if not isinstance(data, dict):
        raise RuleLoadError([RuleError(source, 1, "", "the file must be a mapping with 'rule:'")])
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RuleLoadError([RuleError(source, 0, "", "'rule' must be a list of rules")])
    nodes: list[Any] = []
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "rule" and isinstance(value, yaml.SequenceNode):
                nodes = value.value
    entries = []
    source_lines = text.splitlines()
    for i, values in enumerate(raw_rules):
        lines: dict[str, int] = {}
        header, offset = 0, 0
        folded: tuple[tuple[int, int], ...] = ()
        if i < len(nodes) and isinstance(nodes[i], yaml.MappingNode):
            header = nodes[i].start_mark.line + 1
            for key, value in nodes[i].value:
                lines[str(key.value)] = value.start_mark.line + 1
                if key.value == "expression" and getattr(value, "style", None) in ("|", ">"):
                    offset = 1  # block scalar: the text starts on the next line
                if key.value == "expression":
                    folded = folded_parts(value, source_lines)
        entry = _Entry(values if isinstance(values, dict) else {}, lines, header, offset, folded)
        entries.append(entry)
    return data, entries


# -- building one rule ---------------------------------------------------------------------


def _build_rule(entry: _Entry, index: int, source: str, errors: list[RuleError]) -> Rule | None:
    values = entry.values
    name = values.get("name")
    label = name if isinstance(name, str) else f"#{index + 1}"

    def fail(key: str, message: str) -> None:
        errors.append(RuleError(source, entry.lines.get(key, entry.header_line), label, message))

    if not values:
        errors.append(RuleError(source, entry.header_line, label, "a rule must be a table"))
        return None
    before = len(errors)
    for key in values:
        if not isinstance(key, str):  # YAML reads `1:` or `on:` as a number or a boolean
            fail("", f"key {key!r} is not a name: quote it, or use one of {', '.join(RULE_KEYS)}")
        elif key not in RULE_KEYS:
            close = difflib.get_close_matches(key, RULE_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(key, f"unknown key {key!r}{hint}")
    if isinstance(name, (int, float)) and not isinstance(name, bool):  # `name: 123` in YAML
        fail("name", f'name must be quoted text ("{name}"), not a number')  # not missing
    elif not isinstance(name, str) or not RULE_NAME.match(name):
        fail("name", "name is required: letters, digits, space _ . : / - (at most 80)")
    action = _enum(values.get("action"), Action, "action", fail)
    mode = _enum(values.get("mode", "enforce"), Mode, "mode", fail)
    response_code = None
    if action == Action.DECLINE:
        response_code = _response_code(values.get("response_code", "59"), fail)
    elif "response_code" in values:
        fail("response_code", "response_code is only for action = 'decline'")
    points = values.get("points", 0)
    if action == Action.SCORE and (
        not isinstance(points, int) or isinstance(points, bool) or points == 0
    ):
        fail("points", "action 'score' needs points = a non-zero whole number (may be negative)")
    elif action != Action.SCORE and "points" in values:
        fail("points", "points is only for action = 'score'")
    for key in ("reason", "description", "owner"):
        if key in values and not isinstance(values[key], str):
            fail(key, f"{key} must be text")
    if isinstance(values.get("reason"), str) and ";" in values["reason"]:
        fail("reason", "reason must not contain ';' (the journal separates reasons with it)")
    for key in ("reason", "owner", "description", "expression"):
        bad = control_character(values.get(key), allow_lines=key in ("description", "expression"))
        if bad:
            fail(key, f"{key} must not contain control characters: {bad}")
    enabled = values.get("enabled", True)
    if not isinstance(enabled, bool):
        fail("enabled", "enabled must be true or false")
    priority = values.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool):
        fail("priority", "priority must be a whole number (lower runs first)")
    active_from = _instant(values, "active_from", fail)
    active_until = _instant(values, "active_until", fail)
    if active_from is not None and active_until is not None and active_until <= active_from:
        fail("active_until", "active_until must be after active_from (the window would be empty)")
    expression = values.get("expression")
    compiled = None
    if not isinstance(expression, str):
        fail("expression", "expression is required (quoted text)")
    elif not control_character(expression, allow_lines=True):  # (refused above)
        try:
            compiled = compile_expression(expression)
        except ExpressionError as exc:
            base = entry.lines.get("expression", entry.header_line)
            line = base + entry.expression_offset + exc.line - 1 if base else 0
            column = exc.column
            if entry.folded and exc.line == 1:  # back to the line the analyst wrote it on
                line, start = next(p for p in reversed(entry.folded) if p[1] <= exc.column)
                column = exc.column - start + 1
            errors.append(RuleError(source, line, label, f"{exc.message} (column {column})"))
        except (RecursionError, MemoryError):  # the parser's own limits
            fail("expression", "expression is nested too deeply: split it into simpler parts")
    if len(errors) > before or compiled is None or action is None or mode is None:
        return None
    assert isinstance(name, str) and isinstance(expression, str)
    reason = values.get("reason") or f"rule:{name}"
    return Rule(
        name=name,
        expression=expression,
        action=action,
        reason=str(reason),
        code=compiled.source,
        response_code=response_code,
        points=int(points) if action == Action.SCORE else 0,
        description=str(values.get("description", "")),
        owner=str(values.get("owner", "")),
        enabled=bool(enabled),
        mode=mode,
        priority=int(priority),
        line=entry.lines.get("expression", 0) + entry.expression_offset,
        variables=frozenset(compiled.variables),
        lists=frozenset(compiled.lists),
        active_from=active_from,
        active_until=active_until,
    )


_INSTANT_FORM = "a date and time with its UTC offset, e.g. 2026-12-05T18:00:00Z or +01:00"


def _instant(values: Mapping[str, Any], key: str, fail: Any) -> float | None:
    """An ``active_from``/``active_until`` as epoch seconds. Only a full date-time with its
    offset is taken: a bare date or a local time would mean a different instant on each
    server's clock setting, and a rule ending hours early or late is the mistake to avoid."""
    if key not in values:
        return None
    value = values[key]
    if isinstance(value, str):
        try:
            text = value.strip()
            value = (
                dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
            )
        except ValueError:
            fail(key, f"{key} {values[key]!r} is not {_INSTANT_FORM}")
            return None
    if isinstance(value, dt.datetime):  # (before date: a datetime is a date too)
        if value.tzinfo is None or value.utcoffset() is None:
            fail(key, f"{key} has no UTC offset: write it as {_INSTANT_FORM}")
            return None
        return value.timestamp()
    if isinstance(value, dt.date):
        fail(key, f"{key} is a date without a time: write it as {_INSTANT_FORM}")
        return None
    fail(key, f"{key} must be {_INSTANT_FORM}")
    return None


# text a terminal or a log reader would act on: C0 and C1 controls (escape sequences, new
# lines), line and paragraph separators, and the bidirectional overrides that reorder text
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def control_character(value: Any, allow_lines: bool = False) -> str:
    """The first control character of a text, described ('U+001B at position 3'), or ''.

    A rule's reason and owner are printed on terminals, in the log and in the journal's
    reason codes: an escape sequence there recolours or rewrites what an analyst reads, a
    new line forges a log line. A description may span lines (a TOML multi-line string)."""
    if not isinstance(value, str):
        return ""
    for position, char in enumerate(value, start=1):
        if allow_lines and char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or ord(char) in _BIDI:
            return f"U+{ord(char):04X} at position {position}"
    return ""


def _enum(value: Any, enum: type, key: str, fail: Any) -> Any:
    choices = ", ".join(m.value for m in enum)
    if value is None:
        fail(key, f"{key} is required: one of {choices}")
        return None
    try:
        return enum(str(value).lower())
    except ValueError:
        fail(key, f"{key} {value!r} is not one of {choices}")
        return None


def _response_code(value: Any, fail: Any) -> str | None:
    code = f"{value:02d}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    code = code.upper()
    if code not in DECLINE_CODES:
        fail("response_code", f"response_code {value!r} is not a decline code authhost knows")
        return None
    return code
