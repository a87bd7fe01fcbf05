"""PAN masking (first 6, last 4): the only form of a PAN that logs, errors and APIs show."""

from __future__ import annotations

import re

# A run of 13-19 digits standing on its own: not one inside a longer word, as in a keyed hash
# in hex (a card's PAN index, a token's reference) or an id ("crd_" and 16 hex digits), which
# can hold such a run by chance and must reach the audit log and the logs whole
_PAN_LIKE = re.compile(r"(?<![0-9A-Za-z_])(\d{6})(\d{3,9})(\d{4})(?![0-9A-Za-z_])")


def mask_pan(pan: str | None) -> str | None:
    """'400000******0002' for a 16-digit PAN; short or missing values are hidden whole."""
    if pan is None:
        return None
    digits = pan.strip()
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_pans_in_text(text: str) -> str:
    """Mask every 13-19 digit run in free text that is not part of a longer word (a last line
    of defence for log messages and audit entries)."""
    return _PAN_LIKE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
