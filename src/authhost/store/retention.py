"""How long the stores keep a card's velocity events.

``compute_velocity`` counts events up to ``RETENTION_S`` (30 days) old. Stores prune only events
older than that plus ``PRUNE_MARGIN_S``, so a snapshot whose clock is a little behind the commit
that pruned (another process, requests committed out of order) still sees every event
``compute_velocity`` would count; and they fetch a little more than the retention and let
``compute_velocity`` draw the exact line.
"""

from __future__ import annotations

from authhost.cards.velocity import RETENTION_S

PRUNE_MARGIN_S = 3600.0
FETCH_SPAN_S = RETENTION_S + 1.0
