"""The ``authhost`` executable. For ``serve``, stop signals are taken in hand before anything
is imported or opened: until the server's own handlers are in place (after the store, keys,
rules and demo cards are open, a second or more), SIGTERM had its default action and killed
the process mid start-up, and a SIGHUP (a reload) did too."""

from __future__ import annotations

import signal
import sys
from types import FrameType

_sigterm_received = False


def sigterm_received() -> bool:
    """Whether a SIGTERM arrived before the server's own signal handling took over."""
    return _sigterm_received


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM during start-up stops as SIGINT does then: KeyboardInterrupt unwinds what was
    opened (the store closed, no pid file written). Raised as SIGINT so that inside trio's
    event loop trio's own protected delivery handles it."""
    global _sigterm_received
    _sigterm_received = True
    if callable(signal.getsignal(signal.SIGINT)):  # Python's or trio's handler
        signal.raise_signal(signal.SIGINT)
    else:  # SIGINT ignored (started in the background by a shell): stop all the same
        raise KeyboardInterrupt


def take_stop_signals() -> None:
    """Install the start-up handlers: SIGTERM stops, SIGHUP is ignored (everything is read
    fresh at start; workers inherit the ignore until their own handlers are in place). The
    server replaces both once it serves."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def main() -> None:
    if sys.argv[1:2] != ["serve"]:
        from authhost.cli.app import main as run

        run()
        return
    take_stop_signals()
    try:
        from authhost.cli.app import main as run

        run()
    except KeyboardInterrupt:  # while importing, before the command ran
        if not _sigterm_received:
            raise
        sys.exit(0)
    except SystemExit as done:  # the command line parser's 130 for an interrupt
        if _sigterm_received and done.code == 130:
            sys.exit(0)
        raise
