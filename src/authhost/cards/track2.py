"""Track 2 (and chip track-2 equivalent) layout: PAN '=' YYMM service-code discretionary-data.

authhost's cards carry the card verification value in the first three digits of the
discretionary data (CVV on the stripe, iCVV in the chip's track-2 equivalent), followed by
filler digits. The layout is the issuer's choice; this module is its one definition, used by
the auth pipeline, the demo export and the simulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRACK2 = re.compile(r"^;?(\d{12,19})[=D](\d{4})(\d{3})(\d*)\??F*$")
# track 1 (ISO 7813 format B): PAN ^ name ^ YYMM service code, discretionary data
_TRACK1 = re.compile(r"^%?B(\d{12,19})\^[^^]{2,26}\^(\d{4})(\d{3})([^?]*)\??$")
FILLER = "00000"


class Track2Error(ValueError):
    """Track 2 data that does not have the expected layout (the message never holds the data)."""


@dataclass(frozen=True, slots=True)
class Track2:
    pan: str
    expiry: str  # YYMM
    service_code: str
    discretionary: str

    @property
    def verification_value(self) -> str:
        """CVV (stripe) or iCVV (chip) digits: the first three of the discretionary data."""
        return self.discretionary[:3]

    def __repr__(self) -> str:
        return f"Track2(expiry={self.expiry!r}, service_code={self.service_code!r})"


def parse_track2(text: str) -> Track2:
    match = _TRACK2.match(text.strip().upper())
    if match is None:
        raise Track2Error("track 2 data is not PAN=YYMM+service code+discretionary data")
    pan, expiry, service_code, discretionary = match.groups()
    return Track2(pan, expiry, service_code, discretionary)


def parse_track1(text: str) -> Track2:
    """Track 1 (field 45), whose discretionary data carries the CVV where track 2's does: a
    switch sends either track, and the stripe's CVV is checked in whichever came."""
    match = _TRACK1.match(text.strip().upper())
    if match is None:
        raise Track2Error("track 1 data is not B PAN^name^YYMM+service code+discretionary data")
    pan, expiry, service_code, discretionary = match.groups()
    return Track2(pan, expiry, service_code, discretionary)


def read_track(track2: str | None, track1: str | None) -> Track2 | None:
    """The stripe (or chip track-2 equivalent) read: track 2 when sent, else track 1, else
    None. Raises ``Track2Error`` when the one read cannot be."""
    if track2:
        return parse_track2(track2)
    return parse_track1(track1) if track1 else None


def build_track2(pan: str, expiry: str, service_code: str, verification_value: str) -> str:
    """Track 2 text with the CVV/iCVV in place, as a terminal reads it from the card."""
    return f"{pan}={expiry}{service_code}{verification_value}{FILLER}"
