"""The simulator's chip cards' application transaction counters (ATC), kept between runs.

A real card counts its own transactions and never repeats a counter; the host refuses a
cryptogram whose counter the card used already (a replay). The simulator's cards are rows of a
demo card file, so their counters live beside it, in ``<file>.atc`` (JSON: card -> last
counter, the card named by a hash of its test PAN). Without a file (one session only), a card's
first counter comes from the clock in tenths of a second, as the STAN does in milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

ATC_MAX = 0xFFFF


class ChipCounters:
    def __init__(self, path: Path | None = None, *, save_each: bool = True) -> None:
        """``save_each`` False: the file is written by ``save`` only (a replay building
        thousands of requests at once saves once, before any is sent)."""
        self._path = path
        self._save_each = save_each
        self._last: dict[str, int] = {}
        if path is not None and path.exists():
            try:
                loaded = json.loads(path.read_text())
                self._last = {str(k): int(v) for k, v in loaded.items()}
            except (OSError, ValueError, AttributeError):
                self._last = {}  # unreadable: start again from the clock

    def next(self, pan: str) -> int:
        """The card's next counter (1 to 65535), remembered in the file if there is one."""
        card = hashlib.sha256(pan.encode()).hexdigest()[:16]
        last = self._last.get(card)
        if last is None:
            last = int(time.time() * 10) % ATC_MAX
        value = last % ATC_MAX + 1
        self._last[card] = value
        if self._save_each:
            self.save()
        return value

    def save(self) -> None:
        if self._path is not None:
            # in a read-only place the counters still hold for this session
            with contextlib.suppress(OSError):
                self._path.write_text(json.dumps(self._last))
