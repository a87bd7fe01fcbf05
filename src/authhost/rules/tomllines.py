"""Where the keys of a TOML rules file are: tomllib gives values, never their lines.

The lines are recovered from the text: ``[[rule]]`` headers and the keys under them, rules
written as inline tables, multi-line strings (skipped, and found when never closed), so an
error names the line an analyst opens the file at.
"""

from __future__ import annotations

import re

_TOML_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]\s*(#.*)?$")
_TOML_TABLE = re.compile(r"^\s*\[")
# a bare key, or the same name quoted ("expression" = ...), which TOML reads as the same key
_TOML_KEY = re.compile(r"""^\s*(["']?)([A-Za-z_][A-Za-z0-9_\-]*)\1\s*=(?!=)\s*(.*)$""")


def toml_blocks(text: str) -> list[tuple[dict[str, int], int, int]]:
    """For each [[rule]] header: the line of each key, the header line, expression offset."""
    blocks: list[tuple[dict[str, int], int, int]] = []
    current: dict[str, int] | None = None
    header = offset = 0
    lines, _ = _outside_strings(text)
    for number, line, match in lines:
        if _TOML_HEADER.match(line):
            if current is not None:
                blocks.append((current, header, offset))
            current, header, offset = {}, number, 0
            continue
        if _TOML_TABLE.match(line):
            if current is not None:
                blocks.append((current, header, offset))
            current = None
            continue
        if match and current is not None and match.group(2) not in current:
            key, value = match.group(2), match.group(3)
            current[key] = number
            if key == "expression" and _opens(value) and not value[3:].strip():
                offset = 1  # TOML drops the newline right after the opening quotes
    if current is not None:
        blocks.append((current, header, offset))
    return blocks


def unclosed_string(text: str) -> int:
    """The line of a multi-line string that is never closed, or 0: a missing closing \"\"\"
    was reported at "end of document", with no line to look at."""
    return _outside_strings(text)[1]


def _outside_strings(text: str) -> tuple[list[tuple[int, str, re.Match[str] | None]], int]:
    """The lines outside multi-line strings (number, text, its key match), and the line of a
    multi-line string still open at the end (0: none). A string ends at the first closing
    quotes: what follows them (a comment quoting \"\"\") opens nothing."""
    found: list[tuple[int, str, re.Match[str] | None]] = []
    opened, quote = 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if quote:
            if _closes(line, quote):
                opened, quote = 0, ""
            continue
        match = _TOML_KEY.match(line)
        found.append((number, line, match))
        value = match.group(3) if match else ""
        if opening := _opens(value):
            opened, quote = number, opening
    return found, opened


def _opens(value: str) -> str:
    """The quotes of a multi-line string ``value`` opens and does not close on its line."""
    for quote in ('"""', "'''"):
        if value.startswith(quote) and not _closes(value[3:], quote):
            return quote
    return ""


def toml_inline_rules(text: str, keys: tuple[str, ...]) -> list[tuple[dict[str, int], int, int]]:
    """For ``rule = [ {...}, {...} ]``: the line of each inline table (TOML keeps one on a
    single line) as the line of all its keys. Errors in such a file had no line at all."""
    blocks: list[tuple[dict[str, int], int, int]] = []
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not inside:
            opening = _TOML_RULE_ARRAY.match(line)
            if opening is None:
                continue
            inside, line = True, line[opening.end() :]
        elif _TOML_TABLE.match(line):
            break  # a table header: the array was closed above
        for _ in _TOML_INLINE_TABLE.finditer(_TOML_STRING.sub("", line)):  # not "{" in text
            keys = {key: number for key in keys}
            blocks.append((keys, number, 0))
    return blocks


_TOML_RULE_ARRAY = re.compile(r"^\s*rule\s*=\s*\[")
_TOML_INLINE_TABLE = re.compile(r"\{\s*[A-Za-z0-9_\-]*\s*=")  # a quoted key: stripped
_TOML_STRING = re.compile(r"""\"(?:[^\"\\]|\\.)*\"|'[^']*'""")


def _closes(line: str, quote: str) -> bool:
    """The line ends a multi-line string opened with ``quote``: the quotes appear unescaped
    (a basic string's ``\\\"`` is an escaped quote; a literal string has no escapes)."""
    start = 0
    while (found := line.find(quote, start)) >= 0:
        backslashes = len(line[:found]) - len(line[:found].rstrip("\\"))
        if quote == "'''" or backslashes % 2 == 0:
            return True
        start = found + 1
    return False
