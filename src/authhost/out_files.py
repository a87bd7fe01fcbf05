"""A file a command is told to write (``--out FILE``), checked before any work is done: a
folder given for it, or a file in a folder that does not exist, is one line saying what is
wrong and what to give instead. Writers such as pyarrow otherwise say it their own way
("[Errno 21] Failed to open local file 'x'. Detail: [errno 21] Is a directory"), and only
after the work (a whole export, minutes of generated traffic) is done."""

from __future__ import annotations

from pathlib import Path


def out_file_problem(path: Path, option: str = "--out", example: str = "out.csv") -> str | None:
    """Why ``path`` cannot be the file ``option`` writes (one line, no "error:" prefix), or
    None when it may be: a folder needs a file name in it; a file's folder must exist."""
    if path.is_dir():
        return (
            f"cannot write {path}: it is a folder; {option} needs a file name "
            f"(e.g. {path / example})"
        )
    folder = path.parent  # as given: "nodir" for nodir/x.csv ("." exists)
    if not folder.is_dir():
        if folder.exists():
            return f"cannot write {path}: {folder} is a file, not a folder; name another folder"
        return f"cannot write {path}: the folder {folder} does not exist; create it first"
    return None
