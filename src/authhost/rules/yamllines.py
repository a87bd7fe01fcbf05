"""Where the text of a YAML rules file is, from its composed nodes: keys written twice in one
mapping (the parser keeps the last silently), and the lines an expression folded into one
line came from.
"""

from __future__ import annotations

from typing import Any

import yaml


def folded_parts(node: Any, source_lines: list[str]) -> tuple[tuple[int, int], ...]:
    """For an expression YAML folded into one line (``>``, or a plain scalar over several
    lines), each source line's number and the column of the folded text where it starts;
    () when the text was not folded that simple way. Without this an error on its third
    line was reported on its first, at a column of the joined text."""
    style = getattr(node, "style", None)
    if not isinstance(node, yaml.ScalarNode) or style not in (">", None):
        return ()
    first, last = node.start_mark.line, node.end_mark.line
    if style == ">":
        first += 1  # the text starts below the indicator
    if node.end_mark.column == 0:
        last -= 1  # the mark is past the final line break: the text ended a line above
    parts: list[tuple[int, int]] = []
    pieces: list[str] = []
    column = 1
    for number in range(first, min(last + 1, len(source_lines))):
        raw = source_lines[number]
        if number == node.start_mark.line:
            raw = raw[node.start_mark.column :]
        piece = raw.strip()
        if not piece or piece.startswith("#"):
            continue
        parts.append((number + 1, column))
        pieces.append(piece)
        column += len(piece) + 1
    if len(parts) < 2 or " ".join(pieces) != node.value.strip():
        return ()
    return tuple(parts)


def duplicate_keys(root: Any) -> list[tuple[int, str]]:
    """Every key written twice in one YAML mapping, at the line of the second.

    A YAML parser keeps the last of two equal keys without a word: a second ``rule:`` block
    pasted below the first dropped every rule above it, and a second ``expression:`` replaced
    the first, where TOML refuses both. The file is refused instead: (line, message) each."""
    errors: list[tuple[int, str]] = []
    seen_nodes: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:  # aliases share nodes (and may be cyclic)
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                stack.append(value)
                if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                    continue  # a merge key may repeat; complex keys are refused later
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    errors.append(
                        (
                            line,
                            f"key {key.value!r} is written twice in one mapping (first at line "
                            f"{first[key.tag, key.value]}): YAML would keep only the last",
                        )
                    )
                else:
                    first[key.tag, key.value] = line
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(errors)
