"""Files that hold secrets (the master key, clear admin tokens, a TLS private key) must be
their owner's alone, as ssh treats a private key: one that group or others can read has
leaked already, and loading it silently would hide that. One rule for all of them."""

from __future__ import annotations

import os
import stat


def open_to_others(status: os.stat_result) -> int | None:
    """The file's mode (``stat.S_IMODE``) when it is open beyond the rule, else None. A file
    of ours must be ours alone; one another user owns (root) may be shared with its group
    (0640, the service's group: how the service reads it), never with others."""
    shared = 0o077 if status.st_uid == os.geteuid() else 0o007
    mode = stat.S_IMODE(status.st_mode)
    return mode if mode & shared else None
