"""docs/admin.md's journal export table names every column the export writes, and no other:
the data warehouse builds its schema from it (before 2026-11-29 no column was documented)."""

from __future__ import annotations

import re
from pathlib import Path

from authhost.store.records import JOURNAL_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "admin.md"


def _documented() -> list[str]:
    text = DOC.read_text()
    section = text.split("### Journal export (data warehouse)", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row.split(" | ")[0])]


def test_every_exported_column_is_documented_once():
    documented = _documented()
    assert sorted(documented) == sorted(JOURNAL_COLUMNS)
    assert len(documented) == len(set(documented))
