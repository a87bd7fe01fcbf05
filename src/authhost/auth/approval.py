"""Approval codes (field 38): six characters, unique per day per installation.

The code encodes the second of the day, the node (worker process) and a counter within the
second in base 36, so two workers never collide and a restart never reuses a code unless
it happens within the same second.
"""

from __future__ import annotations

import string

ALPHABET = string.digits + string.ascii_uppercase
PER_SECOND = 36**6 // 86400  # 25,200 codes per second of the day
MAX_NODES = 8


class ApprovalCodes:
    def __init__(self, node: int = 0) -> None:
        if not 0 <= node < MAX_NODES:
            raise ValueError(f"node must be in 0..{MAX_NODES - 1}")
        self._node = node
        self._per_node = PER_SECOND // MAX_NODES
        self._second = -1
        self._count = 0

    def next(self, now: float) -> str:
        second = int(now) % 86400
        if second != self._second:
            self._second, self._count = second, 0
        value = second * PER_SECOND + self._node * self._per_node + self._count % self._per_node
        self._count += 1
        chars = []
        for _ in range(6):
            value, digit = divmod(value, 36)
            chars.append(ALPHABET[digit])
        return "".join(reversed(chars))
