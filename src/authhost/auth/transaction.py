"""The working state of one authorisation as it moves through the pipeline's steps."""

from __future__ import annotations

from dataclasses import dataclass, field

from authhost.cards.model import Limits
from authhost.cards.tokens import PaymentToken
from authhost.iso.messages import AuthRequest
from authhost.security.emv import Cryptogram
from authhost.store.interface import Movement, Snapshot


@dataclass(slots=True)
class Transaction:
    """A request, what the store knew about it, and what the steps found out so far."""

    request: AuthRequest
    snapshot: Snapshot
    now: float
    limits: Limits = field(default_factory=Limits)  # product limits with card overrides
    pin_checked: bool = False
    pin_failed: bool = False
    cvv_failed: bool = False
    pin_limit: int = 0  # a right PIN: the tries limit it was checked under (the commit's)
    new_pin_reference: str | None = None  # a PIN change: the new PIN's PVV or offset
    fraud_score: int | None = None
    model_score: int | None = None  # the champion's own, before score rules' points
    challenger_score: int | None = None
    model_skipped: bool = False
    model_reasons: str = ""  # the champion's top reasons for a high score
    rule_matches: list[str] = field(default_factory=list)
    review: bool = False
    reasons: list[str] = field(default_factory=list)  # non-declining findings (e.g. review)
    movement: Movement | None = None
    # a partial approval (10): what the funds step approved of a larger amount, in the
    # cardholder's currency (which is field 4's: only unconverted amounts are partly approved)
    partial_amount_minor: int | None = None
    cryptogram: Cryptogram | None = None  # the chip's ARQC, checked: the answer's ARPC needs it
    # the CAVV results code of a checked 3-D Secure authentication value (security.cavv);
    # "" when the request carried none or its product does not check them
    cavv_result: str = ""
    cavv_atn: str = ""  # a passed CAVV's authentication: an approval uses it up (the store)
    avs_result: str = ""  # the billing address verified (cards.avs); "" none asked for
    # the card-not-present CVV2, checked: M it matched, N it did not; "" none checked
    cvv2_result: str = ""
    token: PaymentToken | None = None  # the card's token the request was paid with
