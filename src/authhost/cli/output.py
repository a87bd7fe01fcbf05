"""Consoles for lines that carry users' text: rule names and reasons, file paths, model names,
fraud scenarios.

rich reads ``[...]`` in a printed string as markup: a path like ``rules/[old]/x.toml`` lost its
``[old]`` and a reason like ``R-[/x]`` raised a markup error. It also wraps at 80 columns when
stdout is a pipe or a file, cutting a ``file:line: reason`` line (or a table row) mid-token for
the grep or script reading it. These consoles interpret no markup, highlight nothing and never
wrap a line (a terminal wraps on its own); tables are as wide as they need away from a terminal.
Colour is given as ``Text`` styles, never as markup in the text.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

PIPE_WIDTH = 400  # a table's room in a pipe or file: its own width, never cut short


def plain_console(stderr: bool = False) -> Console:
    """A console that prints text as written: no markup, no highlighting, no wrapping."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True, width=width)


def labelled(label: str, style: str, text: str) -> Text:
    """``label`` in ``style`` (``error:`` in red), then the user's text as written."""
    return Text.assemble((label, style), " ", text)
