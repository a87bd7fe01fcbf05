"""Where a file stops being UTF-8 text: the line and column an analyst opens the file at.

A rules or list file saved in Latin-1 (an ``é`` in a description, a merchant name) was refused
as "not UTF-8 text" with no line, leaving the analyst to hunt for one byte in a long file.
"""

from __future__ import annotations


def undecodable(content: bytes, error: UnicodeDecodeError) -> tuple[int, str]:
    """The 1-based line of the first byte that is not UTF-8, and a message naming the byte
    and its column (the bytes before it on that line, plus one)."""
    start = error.start
    line_start = content.rfind(b"\n", 0, start) + 1
    line = content.count(b"\n", 0, start) + 1
    byte = content[start : start + 1].hex()
    return line, f"not UTF-8 text: byte 0x{byte} at column {start - line_start + 1}"
