"""A worker stops when its supervisor dies: the supervisor SIGKILLed or OOM-killed left its
workers serving with no parent, holding the port, so that a restart failed with "address in
use" until someone killed them by pid.

Linux's ``prctl(PR_SET_PDEATHSIG)`` has the kernel send the worker SIGTERM (a graceful drain,
as the supervisor's own stop does) when the process that started it ends. Elsewhere nothing
is set up, and the worker behaves as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def stop_with_parent(parent_pid: int) -> bool:
    """Ask for SIGTERM when the parent dies; True when set up. A parent already gone before
    the request took effect (the worker is then a child of init) gets the same SIGTERM now."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)
    return True
