"""Named lists kept in files: one value per line, the file name (without extension) is the name.

``merchant_block.txt`` holding merchant ids makes ``merchant in list("merchant_block")``
work. Blank lines and ``#`` comments are skipped; values are stripped. The store's lists
(edited through the admin API) come in as a mapping of the same shape and win over files
of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from authhost.rules.language import LIST_NAME
from authhost.rules.textfile import undecodable

LIST_SUFFIXES = (".txt", ".list", ".csv", "")


class ListLoadError(ValueError):
    """A lists directory that cannot be read; the message names the file."""


def read_list(path: Path) -> frozenset[str]:
    """The values of one list file."""
    content = path.read_bytes()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, message = undecodable(content, exc)
        raise ListLoadError(f"{path}:{line}: {message}") from None
    return list_values(text)


def list_values(text: str) -> frozenset[str]:
    """The values of a list file's text: one a line, stripped, ``#`` comments and blank
    lines skipped. ``authhost lists put`` reads a file by the same rule, so a list moved from
    the lists directory into the store keeps its values (a comment kept in one would never
    match)."""
    values = set()
    for line in text.splitlines():
        value = line.split("#", 1)[0].strip()
        if value:
            values.add(value)
    return frozenset(values)


def load_lists(directory: str | Path) -> dict[str, frozenset[str]]:
    """Every list file in ``directory`` (empty mapping when ``directory`` is empty)."""
    if not directory:
        return {}
    root = Path(directory)
    if not root.is_dir():
        raise ListLoadError(f"{root}: lists directory not found")
    found: dict[str, frozenset[str]] = {}
    files: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix not in LIST_SUFFIXES:
            continue
        if not LIST_NAME.match(path.stem):
            raise ListLoadError(f"{path}: bad list name (letters, digits, _ . - only)")
        if path.stem in files:  # which one would win is an accident of the file names
            raise ListLoadError(
                f"{path}: list {path.stem!r} is also {files[path.stem].name}: keep one file"
            )
        files[path.stem] = path
        try:
            found[path.stem] = read_list(path)
        except OSError as exc:
            raise ListLoadError(f"{path}: {exc}") from None
    return found


def merge_lists(*layers: Mapping[str, frozenset[str]] | None) -> dict[str, frozenset[str]]:
    """Later layers win by name (files first, then the store's lists)."""
    merged: dict[str, frozenset[str]] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged


def directory_stamp(directory: str | Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a list file is added, removed or edited (for reload_if_changed)."""
    if not directory or not Path(directory).is_dir():
        return ()
    stamp = []
    for path in sorted(Path(directory).iterdir()):
        try:  # an editor's temporary file may be gone between the listing and its stat
            if path.is_file():
                info = path.stat()
                stamp.append((path.name, info.st_mtime_ns, info.st_size))
        except OSError:
            continue
    return tuple(stamp)
