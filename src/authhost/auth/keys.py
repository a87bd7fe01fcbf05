"""How a reversal, a completion or an incremental authorisation finds its original: the match
key, one definition for both sides.

The original authorisation is journalled with ``match_key(request)``; a reversal looks it up
with ``original_key(reversal)``, built from field 90 (original MTI, STAN, transmission time,
acquirer) and the terminal, or from the reversal's own STAN/time/acquirer when field 90 is
absent (acquirers repeat them in a reversal).
"""

from __future__ import annotations

from authhost.iso.messages import AuthRequest, MessageClass

_REVERSALS = frozenset({MessageClass.REVERSAL, MessageClass.REVERSAL_ADVICE})
# a completion (0220) and an incremental authorisation (0100) name their pre-authorisation
_NAMING_ORIGINAL = frozenset({MessageClass.FINANCIAL_ADVICE, MessageClass.AUTHORISATION})
_ADVICES = frozenset({MessageClass.AUTHORISATION_ADVICE, MessageClass.FINANCIAL_ADVICE})


def _key(stan: str, transmission_time: str, acquirer: str, terminal: str) -> str:
    return f"{stan.lstrip('0')}|{transmission_time}|{acquirer.lstrip('0')}|{terminal.strip()}"


def match_key(request: AuthRequest) -> str:
    """The key under which an authorisation can later be reversed."""
    return _key(
        request.stan or "",
        request.transmission_time or "",
        request.acquirer_id or "",
        request.terminal_id or "",
    )


def original_key(reversal: AuthRequest) -> str:
    """The match key of the transaction a reversal (0400/0420) refers to."""
    if names_original(reversal):
        data = (reversal.original_data or "").strip()
        # field 90: MTI(4) STAN(6) transmission date-time(10) acquirer(11) forwarder(11)
        return _key(data[4:10], data[10:20], data[20:31], reversal.terminal_id or "")
    return match_key(reversal)


def looked_up_original(request: AuthRequest) -> str:
    """The match key a request's snapshot reads the hold of: a reversal's original, the
    pre-authorisation that a completion (a 0220 with field 90) names, the one an incremental
    authorisation (an 0100 with field 90) adds to, or the request an advice without field 90
    repeats the identifiers of (the network's stand-in advice of a request the host answered
    too late); "" for every other."""
    if request.message_class in _REVERSALS:
        return original_key(request)
    if request.message_class in _NAMING_ORIGINAL and names_original(request):
        return original_key(request)
    if request.message_class in _ADVICES:
        return match_key(request)
    return ""


def names_original(request: AuthRequest) -> bool:
    """Field 90 names an original request (its STAN and time are not all zeros)."""
    data = (request.original_data or "").strip()
    return len(data) >= 20 and bool(data[4:20].strip("0"))


def replacement_amount(reversal: AuthRequest) -> int | None:
    """What remains after a partial reversal, in the cardholder's currency: field 95's actual
    amount (first 12 digits, in field 4's currency), converted at the rate of fields 4 and 6
    when the network converted the original (a card used abroad)."""
    data = (reversal.replacement_amounts or "").strip()
    if not (len(data) >= 12 and data[:12].isdigit() and data[:12].isascii()):
        return None
    actual = int(data[:12])
    billing, amount = reversal.billing_amount_minor, reversal.amount_minor
    if billing is not None and amount:
        return (actual * billing + amount // 2) // amount  # rounded half up
    return actual
