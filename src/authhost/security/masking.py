"""PAN masking (first 6, last 4): the only form of a PAN that logs, errors and APIs show."""

from __future__ import annotations

import re

_PAN_LIKE = re.compile(r"(?<!\d)(\d{6})(\d{3,9})(\d{4})(?!\d)")


def mask_pan(pan: str | None) -> str | None:
    """'400000******0002' for a 16-digit PAN; short or missing values are hidden whole."""
    if pan is None:
        return None
    digits = pan.strip()
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_pans_in_text(text: str) -> str:
    """Mask every 13-19 digit run in free text (a last line of defence for log messages)."""
    return _PAN_LIKE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
